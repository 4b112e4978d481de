"""Throwaway certificates for the C2PA tests, made with `cryptography` (a dependency of c2pa-python).

`make_pki(folder, name)` writes a test CA (`<name>-ca.pem`), a signing certificate it issued with the chain
(`<name>-cert.pem`: leaf first, then the CA) and the leaf's key (`<name>-key.pem`). Two calls with different names
give two unrelated CAs: one to trust, one not to.
"""

from __future__ import annotations

import datetime
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PEM = serialization.Encoding.PEM


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA certificate alone: a trust anchor
    cert: Path  # the signing certificate and the CA, PEM, leaf first: --sign-cert
    key: Path  # the signing certificate's private key: --sign-key
    ca_key: Path  # the CA's private key: with `ca` a pair that matches but that C2PA refuses (a self-signed CA)


def certificate(subject: str, issuer: str, public_key, signing_key, *, ca: bool, days: int = 30) -> x509.Certificate:
    """An X.509 v3 certificate valid from yesterday for `days`, with the extensions C2PA checks: basic
    constraints, key usage (certificate signing for a CA, digital signature for a leaf), and for a leaf the
    emailProtection extended key usage and the issuer's key identifier."""
    now = datetime.datetime.now(datetime.timezone.utc)
    usage = dict.fromkeys(
        ["content_commitment", "key_encipherment", "data_encipherment", "key_agreement", "encipher_only"], False
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=not ca, key_cert_sign=ca, crl_sign=ca, decipher_only=False, **usage),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        ).add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def make_pki(folder: Path, name: str) -> Pki:
    """A P-256 CA '<name> CA' and a signer '<name> signer' it issued, written as PEM files into `folder`."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = certificate(f"{name} CA", f"{name} CA", ca_key.public_key(), ca_key, ca=True)
    leaf = certificate(f"{name} signer", f"{name} CA", key.public_key(), ca_key, ca=False)
    pki = Pki(*(folder / f"{name}-{part}.pem" for part in ("ca", "cert", "key", "ca-key")))
    pki.ca.write_bytes(ca.public_bytes(PEM))
    pki.cert.write_bytes(leaf.public_bytes(PEM) + ca.public_bytes(PEM))
    write_key(pki.key, key)
    write_key(pki.ca_key, ca_key)
    return pki


def write_key(path: Path, key=None) -> Path:
    """`key` (default: a fresh P-256 key that belongs to no certificate) as unencrypted PKCS#8 PEM."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return path


def change_a_pixel(data: bytes, offset: int = 100) -> bytes:
    """The PNG with one pixel byte (at `offset` of the raw scanlines) inverted: IDAT re-compressed with a valid CRC,
    every other chunk (the C2PA manifest too) kept, so it still decodes but no longer matches its signed hash."""
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        chunks.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    raw = bytearray(zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT")))
    raw[offset] ^= 0xFF
    out, written = bytearray(data[:8]), False
    for kind, body in chunks:
        if kind == b"IDAT":
            if written:
                continue
            body, written = zlib.compress(bytes(raw)), True
        out += struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return bytes(out)
