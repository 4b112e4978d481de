"""C2PA content credentials: `generate --sign-cert/--sign-key` writes a signed manifest that `detect` verifies; a
file changed after signing reports the broken hash; bad credentials give one line."""

import datetime
import json
import struct
import zlib

import pytest
from click.testing import CliRunner
from PIL import Image

c2pa_lib = pytest.importorskip("c2pa", reason="the c2pa extra is not installed")

from cryptography import x509  # noqa: E402  (a dependency of c2pa-python)
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

from stylegan.cli.main import main  # noqa: E402
from stylegan.forensics import c2pa  # noqa: E402

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _cert(subject, issuer, public_key, signing_key, *, ca: bool):  # noqa: PLR0913
    """An X.509 v3 certificate valid from yesterday for 30 days, with the extensions C2PA checks."""
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
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=not ca, key_cert_sign=ca, crl_sign=ca, decipher_only=False, **usage),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if not ca:  # an end-entity certificate: what it may sign, and which key signed it
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        ).add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


@pytest.fixture(scope="module")
def credentials(tmp_path_factory):
    """(cert.pem, key.pem): a P-256 signing certificate issued by a throwaway test CA, chain included."""
    folder = tmp_path_factory.mktemp("pki")
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _cert("stylegan test CA", "stylegan test CA", ca_key.public_key(), ca_key, ca=True)
    leaf = _cert("stylegan test signer", "stylegan test CA", key.public_key(), ca_key, ca=False)
    pem = serialization.Encoding.PEM
    (folder / "cert.pem").write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    (folder / "key.pem").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return folder / "cert.pem", folder / "key.pem"


@pytest.fixture(scope="module")
def signed(credentials, tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    cert, key = credentials
    res = run("generate", "--seeds", "7", "--outdir", out, "--no-mark", "--sign-cert", cert, "--sign-key", key)
    assert res.exit_code == 0, res.output
    return out / "seed0007.png"


def test_signed_manifest_is_written_and_verifies(signed):
    assert b"caBX" in signed.read_bytes()  # the PNG chunk type C2PA stores its JUMBF box in
    with Image.open(signed) as img:
        assert img.text["stylegan:seed"] == "7"  # the ordinary metadata is kept beside the manifest
    # read back with c2pa-python directly (not through our reader): the claim as the spec defines it
    with c2pa_lib.Reader(str(signed)) as reader:
        store = json.loads(reader.json())
        state = reader.get_validation_state()
    active = store["manifests"][store["active_manifest"]]
    assert state == "Valid"  # signature and hashes verify; not "Trusted": the test CA is on no trust list
    assert active["claim_generator_info"][0]["name"] == "stylegan"
    actions = next(a["data"]["actions"] for a in active["assertions"] if a["label"].startswith("c2pa.actions"))
    assert actions[0]["action"] == "c2pa.created" and actions[0]["digitalSourceType"] == IPTC
    generation = next(a["data"] for a in active["assertions"] if a["label"] == "org.stylegan.generation")
    assert generation["seed"] == "7" and generation["model"] == "default"


def test_detect_reports_valid_but_untrusted(signed):
    result = c2pa.read(signed)
    assert result["status"] == "valid" and not result["trusted"] and result["failures"] == []
    assert result["signer"] == "stylegan test signer" and result["digital_source_type"] == IPTC
    res = run("detect", signed)
    assert "C2PA: valid signature" in res.output and "untrusted" in res.output, res.output


def _replace_pixels(data: bytes) -> bytes:
    """The PNG with one pixel byte inverted: IDAT re-compressed, every other chunk (the manifest too) kept."""
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        chunks.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    raw = bytearray(zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT")))
    raw[40] ^= 0xFF
    out, done = bytearray(data[:8]), False
    for kind, body in chunks:
        if kind == b"IDAT":
            if done:
                continue
            body, done = zlib.compress(bytes(raw)), True
        out += struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return bytes(out)


def test_tampered_pixels_break_the_hash(signed, tmp_path):
    bad = tmp_path / "tampered.png"
    bad.write_bytes(_replace_pixels(signed.read_bytes()))
    result = c2pa.read(bad)
    assert result["status"] == "invalid" and "assertion.dataHash.mismatch" in result["failures"]
    res = run("detect", bad)
    assert "C2PA: INVALID" in res.output and "dataHash.mismatch" in res.output, res.output


def test_unsigned_image_has_no_manifest(tmp_path):
    res = run("generate", "--seeds", "1", "--outdir", tmp_path, "--no-mark")
    assert res.exit_code == 0 and c2pa.read(tmp_path / "seed0001.png") == {"status": "none"}


def test_bad_credentials_fail_before_work(credentials, tmp_path):
    cert, key = credentials
    other = tmp_path / "other.pem"
    other.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    for args, words in [
        (["--sign-cert", cert], "go together"),
        (["--sign-cert", cert, "--sign-key", other], "does not belong"),
        (["--sign-cert", key, "--sign-key", key], "not a PEM certificate"),
        (["--sign-cert", tmp_path / "nope.pem", "--sign-key", key], "no such file"),
    ]:
        res = run("generate", "--seeds", "1", "--outdir", tmp_path / "o", *args)
        assert res.exit_code != 0 and words in res.output and len(res.output.strip().splitlines()) == 1, res.output
        assert not (tmp_path / "o").exists()
