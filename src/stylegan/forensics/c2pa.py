"""C2PA content credentials: a signed manifest inside each generated PNG, GIF or MP4, and reading/verifying one.

The manifest says who made the image (claim generator `stylegan <version>`), that it was created by a trained
model (a `c2pa.created` action with the IPTC digital source type trainedAlgorithmicMedia, or
compositeWithTrainedAlgorithmicMedia for a face swap: a real photo with a generated face) and with which settings
(an `org.stylegan.generation` assertion: model, seed, truncation, ...). It is signed with the user's certificate and
key; the signature covers a hash of the whole file (of every box but the manifest's for an MP4), so changing a
pixel or a frame afterwards breaks it.

Uses the `c2pa-python` package (the `c2pa` extra, imported only here and only when used; 0.38 signs PNG, GIF and
MP4 alike). Certificates: C2PA wants an end-entity certificate (c2pa refuses a self-signed CA) with the
digitalSignature key usage and an extended key usage such as emailProtection or documentSigning, plus its issuer
chain; ES256/ES384/ES512 (EC keys), PS256 (RSA) and Ed25519 are supported. A certificate from your own test CA
signs and verifies, but is reported as untrusted unless its CA is given as a trust anchor (`read(path,
trust_anchors=...)`; c2pa-python's `trust.trust_anchors` setting, which checks the chain, the validity dates and the
extended key usage).
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
# IPTC digital source type of a picture that combines a real one with generated parts (a face swap, a side-by-side).
COMPOSITE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
MIME_TYPES = {".png": "image/png", ".gif": "image/gif", ".mp4": "video/mp4"}  # what the toolkit writes and signs
_NO_THUMBNAIL = {"builder": {"thumbnail": {"enabled": False}}}  # no JPEG copy of the image inside the manifest


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
    credentials = SigningCredentials(chain, key_pem, _algorithm(key))
    _trial_signature(credentials, cert_path)
    return credentials


def _trial_signature(credentials: SigningCredentials, cert_path) -> None:
    """Signs a 1x1 PNG, so that a certificate c2pa refuses (self-signed, a CA, expired, no digitalSignature usage)
    is reported before any work is done rather than after the first image. About 10 ms."""
    import PIL.Image

    buffer = io.BytesIO()
    PIL.Image.new("L", (1, 1)).save(buffer, format="PNG")
    try:
        sign_bytes(buffer.getvalue(), credentials, manifest({}, "check.png"))
    except ValueError as err:
        raise ValueError(f"--sign-cert {cert_path}: {err}") from None


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


def manifest(
    chunks: dict[str, str], title: str = "image.png", mime: str = "image/png", source_type: str = DIGITAL_SOURCE_TYPE
) -> dict:
    """The manifest definition for one generated image or video, from its metadata chunks
    (metadata.generation_metadata, plus any `stylegan:` extras); source_type: an IPTC digital source type URI."""
    name, _, ver = software().partition(" ")
    settings = {k.removeprefix(PREFIX): v for k, v in chunks.items() if k.startswith(PREFIX)}
    created = {
        "action": "c2pa.created",
        "digitalSourceType": source_type,
        "softwareAgent": {"name": software()},
    }
    return {
        "claim_generator_info": [{"name": name, "version": ver or "unknown"}],
        "title": title,
        "format": mime,
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [created]}},
            {"label": GENERATION_LABEL, "data": settings},
        ],
    }


def sign_bytes(data: bytes, credentials: SigningCredentials, definition: dict) -> bytes:
    """File contents -> the same file with the signed manifest `definition` embedded (PNG: a caBX chunk; GIF: an
    application extension; MP4: a `uuid` box, hashed per BMFF box). Raises ValueError when c2pa refuses."""
    source, out = io.BytesIO(data), io.BytesIO()
    _sign_stream(source, out, credentials, definition)
    return out.getvalue()


def _sign_stream(source, dest, credentials: SigningCredentials, definition: dict) -> None:
    """Signs the file in stream `source` into stream `dest`; the format is definition['format'] (a MIME type)."""
    import c2pa

    info = c2pa.C2paSignerInfo(
        alg=credentials.alg.encode(), sign_cert=credentials.cert_chain, private_key=credentials.private_key, ta_url=None
    )
    try:
        context = c2pa.Context.from_dict(_NO_THUMBNAIL)
        with c2pa.Signer.from_info(info) as signer, c2pa.Builder(definition, context=context) as builder:
            builder.sign(signer, definition["format"], source, dest)
    except c2pa.C2paError as err:
        raise ValueError(f"C2PA signing failed: {_reason(err)}") from None


def sign_png(data: bytes, credentials: SigningCredentials, title: str = "image.png") -> bytes:
    """PNG bytes (images.png_bytes) -> the same PNG with a signed C2PA manifest; its text chunks give the manifest's
    settings and are kept. Raises ValueError when c2pa refuses the certificate."""
    return sign_bytes(data, credentials, manifest(_png_chunks(data), title))


def _png_chunks(data: bytes) -> dict[str, str]:
    """The text chunks of a PNG's bytes; ValueError when they are not a PNG."""
    import PIL.Image

    from stylegan.forensics.metadata import read_metadata

    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("not a PNG file")
    with PIL.Image.open(io.BytesIO(data)) as img:
        return read_metadata(img)


def sign_file(
    path: str | Path,
    credentials: SigningCredentials,
    chunks: dict[str, str] | None = None,
    *,
    source_type: str = DIGITAL_SOURCE_TYPE,
) -> Path:
    """Adds a signed manifest to a PNG, GIF or MP4 the toolkit has just written, in place and atomically (the file
    is at all times either the unsigned or the complete signed one).

    chunks: the settings for the manifest (metadata.generation_metadata and `stylegan:` extras); default for a PNG:
    its own text chunks. Raises ValueError for another format or a certificate c2pa refuses.
    """
    from stylegan.io.native import atomic_write

    path = Path(path)
    mime = MIME_TYPES.get(path.suffix.lower())
    if mime is None:
        raise ValueError(f"{path}: only {', '.join(MIME_TYPES)} files are signed")
    if chunks is None and mime == "image/png":
        try:
            chunks = _png_chunks(path.read_bytes())
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
    definition = manifest(chunks or {}, path.name, mime, source_type)
    atomic_write(path, lambda tmp: sign_copy(path, tmp, credentials, definition))
    return path


def sign_output(
    path: str | Path,
    credentials: SigningCredentials | None,
    chunks: dict[str, str] | None = None,
    *,
    source_type: str = DIGITAL_SOURCE_TYPE,
) -> Path:
    """sign_file for an output just written (no-op without credentials): if signing fails, the unsigned file is
    removed before the ValueError goes on, so nothing is left that lacks the credentials asked for."""
    if credentials is None:
        return Path(path)
    try:
        return sign_file(path, credentials, chunks, source_type=source_type)
    except ValueError:
        Path(path).unlink(missing_ok=True)
        raise


def sign_copy(source: str | Path, dest: str | Path, credentials: SigningCredentials, definition: dict) -> None:
    """Writes `source` with the signed manifest `definition` to `dest` (streamed: a long video is not read into
    memory). The format comes from `definition['format']`."""
    with open(source, "rb") as src, open(dest, "w+b") as out:
        _sign_stream(src, out, credentials, definition)


def load_trust_anchors(paths) -> str:
    """The PEM certificates (root or intermediate CAs) in the files `paths`, joined, for read(trust_anchors=...).

    Raises ValueError (one line) for a file that cannot be read or holds no PEM certificate.
    """
    from cryptography import x509

    pems = []
    for path in paths:
        data = _read(path, "--trust-anchors")
        try:
            certs = x509.load_pem_x509_certificates(data)
        except ValueError:
            raise ValueError(f"--trust-anchors {path}: no PEM certificate in it") from None
        pems += [cert.public_bytes(_pem()).decode() for cert in certs]
    return "".join(pems)


def _pem():
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.PEM


def read(path: str | Path, trust_anchors: str | None = None) -> dict:
    """What the file's C2PA manifest says, whether it verifies, and whether its signer is trusted.

    trust_anchors: PEM certificates (load_trust_anchors); the signer is trusted when its certificate chains up to
    one of them (checked by c2pa-python, with validity dates and extended key usage). None: nothing is trusted.

    Returns {'status': 'none'} when there is no manifest, {'status': 'not checked', 'reason'} without the extra, else
    {'status': 'valid' | 'invalid', 'trusted': bool, 'anchors': bool, 'signer', 'issuer', 'generator',
    'digital_source_type', 'generation': {...}, 'failures': [codes], 'reasons': [explanations], 'verdict': text}
    ('failures' leaves out the untrusted-signer code: 'trusted' says it; 'verdict' is describe() without 'C2PA: ').
    """
    if not available():
        return {"status": "not checked", "reason": EXTRA_HINT}
    import c2pa

    try:
        settings = {"trust": {"trust_anchors": trust_anchors}, "verify": {"verify_trust": True}}
        context = c2pa.Context.from_dict(settings if trust_anchors else {})
        with c2pa.Reader(str(path), context=context) as reader:
            state = reader.get_validation_state()
            store = json.loads(reader.json())
    except c2pa.C2paError as err:
        if type(err).__name__ in ("_C2paManifestNotFound", "_C2paNotSupported"):
            return {"status": "none"}
        result = {"status": "invalid", "trusted": False, "failures": [_reason(err)], "reasons": []}
    else:
        result = _summary(state, store)
    result["anchors"] = bool(trust_anchors)
    result["verdict"] = describe(result).removeprefix("C2PA: ")
    return result


def _summary(state: str | None, store: dict) -> dict:
    active = store.get("manifests", {}).get(store.get("active_manifest"), {})
    problems = [s for s in store.get("validation_status") or [] if s.get("code") != UNTRUSTED]
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
        "failures": [p["code"] for p in problems],
        "reasons": [p.get("explanation", "") for p in problems],
    }


def describe(result: dict) -> str:
    """One phrase for `stylegan detect`, as C2PA's own tools decide:

    'C2PA: valid, trusted (signer: CN=...)', 'C2PA: valid, untrusted signer (CN=...; ...)', 'C2PA: invalid: <why>',
    'C2PA: none' or 'C2PA: not checked (...)'.
    """
    status = result["status"]
    if status == "none":
        return "C2PA: none"
    if status == "not checked":
        return "C2PA: not checked (pip install stylegan[c2pa])"
    signer = f"CN={result['signer']}" if result.get("signer") else "CN unknown"
    if status == "valid" and result["trusted"]:
        return f"C2PA: valid, trusted (signer: {signer})"
    if status == "valid":
        why = "not issued under the trust anchors" if result.get("anchors") else "no --trust-anchors given"
        return f"C2PA: valid, untrusted signer ({signer}; {why})"
    return f"C2PA: invalid: {_why(result)} (signer: {signer})"


def _why(result: dict) -> str:
    """'<code>: <explanation>' of the first failure, and the codes of the others."""
    codes, reasons = result.get("failures") or [], result.get("reasons") or []
    if not codes:
        return "the signature does not verify"
    first = f"{codes[0]}: {reasons[0]}" if reasons and reasons[0] else codes[0]
    return "; ".join([first, *codes[1:]])


def _reason(err: Exception) -> str:
    return (str(err).splitlines() or [type(err).__name__])[0]
