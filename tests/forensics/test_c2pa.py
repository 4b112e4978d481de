"""C2PA content credentials: `generate --sign-cert/--sign-key` writes a signed manifest that `detect` verifies; a
file changed after signing reports the broken hash; bad credentials give one line; `detect --trust-anchors` trusts
a signer only when its certificate was issued by an anchor (the test makes two unrelated CAs: the oracle is which
one issued the signer)."""

import json

import pytest
from click.testing import CliRunner
from PIL import Image

c2pa_lib = pytest.importorskip("c2pa", reason="the c2pa extra is not installed")

from c2pa_pki import change_a_pixel, make_pki, write_key  # noqa: E402  (needs cryptography, a dependency of c2pa-python)
from stylegan.cli.main import main  # noqa: E402
from stylegan.forensics import c2pa  # noqa: E402

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def run(*args, **kwargs):
    return CliRunner().invoke(main, [str(a) for a in args], **kwargs)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """The signer's PKI ('alpha': its CA issued the signing certificate) and an unrelated one ('beta')."""
    folder = tmp_path_factory.mktemp("pki")
    return make_pki(folder, "alpha"), make_pki(folder, "beta")


@pytest.fixture(scope="module")
def credentials(pki):
    return pki[0].cert, pki[0].key


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
    assert result["signer"] == "alpha signer" and result["digital_source_type"] == IPTC
    res = run("detect", signed)
    assert "C2PA: valid, untrusted signer (CN=alpha signer; no --trust-anchors given)" in res.output, res.output


def test_trust_follows_the_issuing_ca(signed, pki):
    alpha, beta = pki
    cases = [([alpha.ca], True), ([beta.ca], False), ([beta.ca, alpha.ca], True)]
    for anchors, trusted in cases:
        result = c2pa.read(signed, trust_anchors=c2pa.load_trust_anchors(anchors))
        assert result["status"] == "valid" and result["trusted"] is trusted, (anchors, result)
    res = run("detect", signed, "--trust-anchors", alpha.ca)
    assert "C2PA: valid, trusted (signer: CN=alpha signer)" in res.output, res.output
    res = run("detect", signed, "--trust-anchors", beta.ca, "--json")
    report = json.loads(res.output)["c2pa"]
    assert report["status"] == "valid" and report["trusted"] is False
    assert report["verdict"] == "valid, untrusted signer (CN=alpha signer; not issued under the trust anchors)"


def test_trust_anchors_from_the_environment(signed, pki):
    alpha, beta = pki
    env = {"STYLEGAN_TRUST_ANCHORS": f"{beta.ca}:{alpha.ca}"}  # several, separated like PATH
    res = run("detect", signed, "--json", env=env)
    assert json.loads(res.output)["c2pa"]["verdict"] == "valid, trusted (signer: CN=alpha signer)", res.output


def test_bad_trust_anchors_are_one_line(signed, pki, tmp_path):
    for path, words in [(pki[0].key, "no PEM certificate"), (tmp_path / "nope.pem", "no such file")]:
        res = run("detect", signed, "--trust-anchors", path)
        assert res.exit_code != 0 and words in res.output and len(res.output.strip().splitlines()) == 1, res.output


def test_tampered_pixels_break_the_hash(signed, pki, tmp_path):
    bad = tmp_path / "tampered.png"
    bad.write_bytes(change_a_pixel(signed.read_bytes(), offset=40))
    with c2pa_lib.Reader(str(bad)) as reader:  # c2pa-python itself, as the oracle
        assert reader.get_validation_state() == "Invalid"
    result = c2pa.read(bad, trust_anchors=c2pa.load_trust_anchors([pki[0].ca]))  # a trusted signer does not help
    assert result["status"] == "invalid" and not result["trusted"]
    assert "assertion.dataHash.mismatch" in result["failures"]
    res = run("detect", bad, "--trust-anchors", pki[0].ca)
    assert "C2PA: invalid: assertion.dataHash.mismatch" in res.output and "CN=alpha signer" in res.output, res.output


def test_unsigned_image_has_no_manifest(tmp_path):
    res = run("generate", "--seeds", "1", "--outdir", tmp_path, "--no-mark")
    assert res.exit_code == 0 and c2pa.read(tmp_path / "seed0001.png") == {"status": "none"}


def test_bad_credentials_fail_before_work(credentials, pki, tmp_path):
    cert, key = credentials
    other = write_key(tmp_path / "other.pem")
    for args, words in [
        (["--sign-cert", cert], "go together"),
        (["--sign-cert", cert, "--sign-key", other], "does not belong"),
        (["--sign-cert", key, "--sign-key", key], "not a PEM certificate"),
        (["--sign-cert", tmp_path / "nope.pem", "--sign-key", key], "no such file"),
        (["--sign-cert", pki[0].ca, "--sign-key", pki[0].ca_key], "the certificate was self-signed"),  # c2pa's trial
    ]:
        res = run("generate", "--seeds", "1", "--outdir", tmp_path / "o", *args)
        assert res.exit_code != 0 and words in res.output and len(res.output.strip().splitlines()) == 1, res.output
        assert not (tmp_path / "o").exists()
