"""C2PA content credentials: a signed manifest inside each generated PNG, and reading/verifying one.

The manifest says who made the image (claim generator `stylegan <version>`), that it was created by a trained
model (a `c2pa.created` action with the IPTC digital source type trainedAlgorithmicMedia) and with which settings
(an `org.stylegan.generation` assertion: model, seed, truncation, ...). It is signed with the user's certificate and
key; the signature covers a hash of the whole file, so changing a pixel afterwards breaks it.

Uses the `c2pa-python` package (the `c2pa` extra, imported only here and only when used). Certificates: C2PA wants
an end-entity certificate (not a CA, not self-signed) with the digitalSignature key usage and an extended key usage
such as emailProtection or documentSigning, plus its issuer chain; ES256/ES384/ES512 (EC keys), PS256 (RSA) and
Ed25519 are supported. A certificate from your own test CA signs and verifies, but is reported as untrusted: it is
on no C2PA trust list.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

from stylegan.forensics.metadata import DIGITAL_SOURCE_TYPE, PREFIX, software

EXTRA_HINT = "C2PA support needs the c2pa extra: pip install stylegan[c2pa]"
GENERATION_LABEL = "org.stylegan.generation"
UNTRUSTED = "signingCredential.untrusted"


@dataclass(frozen=True)
class SigningCredentials:
    """A PEM certificate chain (end-entity first), its PEM private key and the C2PA algorithm name for that key."""

    cert_chain: bytes
    private_key: bytes
    alg: str


def available() -> bool:
    """Whether c2pa-python can be imported."""
    try:
        import c2pa  # noqa: F401
    except ImportError:
        return False
    return True


def require() -> None:
    """Raises ValueError naming the extra when c2pa-python is missing (call before any work is done)."""
    if not available():
        raise ValueError(EXTRA_HINT)


def load_credentials(cert_path: str | Path, key_path: str | Path) -> SigningCredentials:
    """Reads a PEM certificate chain and private key; checks that they belong together and picks the algorithm.

    Raises ValueError (one line) for a missing extra, unreadable files, an unsupported key type or a key that does
    not match the certificate.
    """
    require()
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    chain, key_pem = _read(cert_path, "--sign-cert"), _read(key_path, "--sign-key")
    try:
        leaf = x509.load_pem_x509_certificates(chain)[0]
    except ValueError:
        raise ValueError(f"--sign-cert {cert_path}: not a PEM certificate") from None
    key = _private_key(key_pem, key_path)
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, public) != leaf.public_key().public_bytes(
        serialization.Encoding.DER, public
    ):
        raise ValueError(f"--sign-key {key_path} does not belong to the first certificate in {cert_path}")
    return SigningCredentials(chain, key_pem, _algorithm(key))


def _private_key(key_pem: bytes, key_path):
    """The PEM private key, or one line: not a key, or an encrypted one (which cryptography reports as TypeError)."""
    from cryptography.hazmat.primitives import serialization

    problem = None
    try:
        return serialization.load_pem_private_key(key_pem, password=None)
    except ValueError:
        problem = "not a PEM private key"
    except TypeError:
        problem = "an encrypted private key (give an unencrypted one)"
    raise ValueError(f"--sign-key {key_path}: {problem}")


def _read(path: str | Path, flag: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise ValueError(f"{flag} {path}: {(err.strerror or str(err)).lower()}") from None


def _algorithm(key) -> str:
    """C2PA's name for the signature algorithm of a private key (EC curve -> ES256/384/512, RSA -> PS256)."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(key, ec.EllipticCurvePrivateKey):
        by_curve = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}
        if key.curve.name in by_curve:
            return by_curve[key.curve.name]
        raise ValueError(f"EC curve {key.curve.name} is not allowed by C2PA; use P-256, P-384 or P-521")
    if isinstance(key, rsa.RSAPrivateKey):
        return "ps256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    raise ValueError(f"{type(key).__name__} keys cannot sign C2PA manifests; use an EC (P-256), RSA or Ed25519 key")


def manifest(chunks: dict[str, str], title: str = "image.png") -> dict:
    """The manifest definition for one generated image, from its metadata chunks (metadata.generation_metadata)."""
    name, _, ver = software().partition(" ")
    settings = {k.removeprefix(PREFIX): v for k, v in chunks.items() if k.startswith(PREFIX)}
    created = {
        "action": "c2pa.created",
        "digitalSourceType": DIGITAL_SOURCE_TYPE,
        "softwareAgent": {"name": software()},
    }
    return {
        "claim_generator_info": [{"name": name, "version": ver or "unknown"}],
        "title": title,
        "format": "image/png",
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [created]}},
            {"label": GENERATION_LABEL, "data": settings},
        ],
    }


def sign_png(data: bytes, credentials: SigningCredentials, chunks: dict[str, str], title: str = "image.png") -> bytes:
    """PNG bytes -> the same PNG with a signed C2PA manifest (a caBX chunk); the other chunks are kept.

    Raises ValueError when c2pa refuses the certificate (e.g. a self-signed or CA certificate).
    """
    import c2pa

    info = c2pa.C2paSignerInfo(
        alg=credentials.alg.encode(), sign_cert=credentials.cert_chain, private_key=credentials.private_key, ta_url=None
    )
    context = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}})  # no JPEG copy of the image
    out = io.BytesIO()
    try:
        with c2pa.Signer.from_info(info) as signer, c2pa.Builder(manifest(chunks, title), context=context) as builder:
            builder.sign(signer, "image/png", io.BytesIO(data), out)
    except c2pa.C2paError as err:
        raise ValueError(f"C2PA signing failed: {_reason(err)}") from None
    return out.getvalue()


def sign_file(path: str | Path, credentials: SigningCredentials) -> Path:
    """Adds a signed manifest to a PNG written by images.save_png, in place (atomic); its text chunks give the
    manifest's settings. Raises ValueError for a file that is not a PNG or a certificate c2pa refuses."""
    import PIL.Image

    from stylegan.forensics.metadata import read_metadata
    from stylegan.io.native import atomic_write

    path = Path(path)
    data = path.read_bytes()
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError(f"{path}: only PNG files are signed")
    with PIL.Image.open(io.BytesIO(data)) as img:
        chunks = read_metadata(img)
    signed = sign_png(data, credentials, chunks, path.name)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(signed))
    return path


def read(path: str | Path) -> dict:
    """What the file's C2PA manifest says and whether it verifies.

    Returns {'status': 'none'} when there is no manifest, {'status': 'not checked', 'reason'} without the extra, else
    {'status': 'valid' | 'invalid', 'trusted': bool, 'signer', 'issuer', 'generator', 'digital_source_type',
    'generation': {...}, 'failures': [codes]} ('failures' leaves out the untrusted-signer code: 'trusted' says it).
    """
    if not available():
        return {"status": "not checked", "reason": EXTRA_HINT}
    import c2pa

    try:
        with c2pa.Reader(str(path)) as reader:
            state = reader.get_validation_state()
            store = json.loads(reader.json())
    except c2pa.C2paError as err:
        if type(err).__name__ in ("_C2paManifestNotFound", "_C2paNotSupported"):
            return {"status": "none"}
        return {"status": "invalid", "trusted": False, "failures": [_reason(err)]}
    return _summary(state, store)


def _summary(state: str | None, store: dict) -> dict:
    active = store.get("manifests", {}).get(store.get("active_manifest"), {})
    codes = [s["code"] for s in store.get("validation_status") or []]
    assertions = {a["label"]: a.get("data", {}) for a in active.get("assertions", [])}
    actions = next((v["actions"] for k, v in assertions.items() if k.startswith("c2pa.actions")), [])
    created = next((a for a in actions if a.get("action") == "c2pa.created"), {})
    signature = active.get("signature_info", {})
    generators = [f"{g.get('name')} {g.get('version', '')}".strip() for g in active.get("claim_generator_info", [])]
    return {
        "status": "valid" if state in ("Valid", "Trusted") else "invalid",
        "trusted": state == "Trusted",
        "signer": signature.get("common_name"),
        "issuer": signature.get("issuer"),
        "generator": generators[0] if generators else active.get("claim_generator"),
        "digital_source_type": created.get("digitalSourceType"),
        "generation": assertions.get(GENERATION_LABEL, {}),
        "failures": [c for c in codes if c != UNTRUSTED],
    }


def describe(result: dict) -> str:
    """One phrase for `stylegan detect`: 'C2PA: valid signature (untrusted signer CN=...)', 'C2PA: none', ..."""
    status = result["status"]
    if status == "none":
        return "C2PA: none"
    if status == "not checked":
        return "C2PA: not checked (pip install stylegan[c2pa])"
    who = f"signer {result.get('signer')!r}, issuer {result.get('issuer')!r}" if result.get("signer") else "signer ?"
    if status == "valid":
        trust = "trusted" if result["trusted"] else "untrusted: certificate on no C2PA trust list"
        return f"C2PA: valid signature ({who}; {trust})"
    return f"C2PA: INVALID ({', '.join(result['failures']) or 'signature does not verify'}; {who})"


def _reason(err: Exception) -> str:
    return (str(err).splitlines() or [type(err).__name__])[0]
