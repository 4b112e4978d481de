"""The Check view's C2PA verdict, over HTTP and in a real browser (Playwright + Debian's Chromium).

A marked PNG signed under a throwaway test CA (tests/c2pa_pki.py) is uploaded with STYLEGAN_TRUST_ANCHORS naming
that CA (trusted), another CA (untrusted signer) or nothing; the same PNG with one pixel changed must be invalid.
The server reads the variable at each check, as `stylegan detect` reads it per run. c2pa-python itself is the
oracle for what the verdicts must be.
"""

from __future__ import annotations

import pytest

pytest.importorskip("c2pa", reason="the c2pa extra (c2pa-python) is not installed")

from serve_helpers import marked_generated_png  # noqa: E402

from c2pa_pki import change_a_pixel, make_pki  # noqa: E402
from stylegan.forensics import c2pa  # noqa: E402

SIGNER = "check signer"


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    """{'png': signed marked PNG bytes, 'tampered': the same with one pixel changed, 'ca', 'other': CA files}."""
    folder = tmp_path_factory.mktemp("check-pki")
    pki, other = make_pki(folder, "check"), make_pki(folder, "other")
    png = c2pa.sign_png(marked_generated_png(seed=5), c2pa.load_credentials(pki.cert, pki.key), "seed5.png")
    return {"png": png, "tampered": change_a_pixel(png), "ca": pki.ca, "other": other.ca}


def check(server, data: bytes) -> dict:
    reply = server.request("POST", "/api/check", body=data)
    assert reply.status == 200, reply.body
    return reply.json()


def c2pa_row(report: dict) -> str:
    return dict(map(tuple, report["verdicts"]))["C2PA"]


def test_check_reports_trusted_untrusted_and_invalid(server, signed, monkeypatch):
    monkeypatch.setenv("STYLEGAN_TRUST_ANCHORS", str(signed["ca"]))
    report = check(server, signed["png"])
    assert report["c2pa"]["status"] == "valid" and report["c2pa"]["trusted"] and report["mark"]["seed"] == 5
    assert c2pa_row(report) == f"valid, trusted (signer: CN={SIGNER})"

    monkeypatch.setenv("STYLEGAN_TRUST_ANCHORS", str(signed["other"]))
    report = check(server, signed["png"])
    assert report["c2pa"]["status"] == "valid" and not report["c2pa"]["trusted"]
    assert c2pa_row(report).startswith(f"valid, untrusted signer (CN={SIGNER}; not issued under the trust anchors")

    monkeypatch.delenv("STYLEGAN_TRUST_ANCHORS")
    assert c2pa_row(check(server, signed["png"])).endswith("no --trust-anchors given)")

    monkeypatch.setenv("STYLEGAN_TRUST_ANCHORS", str(signed["ca"]))
    report = check(server, signed["tampered"])
    assert report["c2pa"]["status"] == "invalid" and "assertion.dataHash.mismatch" in report["c2pa"]["failures"]
    assert c2pa_row(report).startswith("invalid: assertion.dataHash.mismatch")


def test_bad_trust_anchors_variable_is_one_line(server, signed, monkeypatch, tmp_path):
    (tmp_path / "empty.pem").write_text("no certificate here")
    monkeypatch.setenv("STYLEGAN_TRUST_ANCHORS", str(tmp_path / "empty.pem"))
    reply = server.request("POST", "/api/check", body=signed["png"])
    assert 400 <= reply.status < 500 and "STYLEGAN_TRUST_ANCHORS" in reply.json()["error"], reply.body


def credentials_line(page) -> tuple[str, str]:
    page.wait_for_function("() => document.querySelector('#view-check [data-testid=state]').dataset.state === 'done'")
    line = page.locator("#view-check [data-testid=c2pa]")
    return line.get_attribute("data-c2pa"), line.inner_text()


def upload(page, name: str, data: bytes) -> None:
    page.evaluate("() => { document.querySelector('#view-check [data-testid=state]').dataset.state = ''; }")
    page.locator("#view-check input[name=image]").set_input_files(
        {"name": name, "mimeType": "image/png", "buffer": data}
    )


def test_check_view_shows_the_c2pa_verdict(page, signed, monkeypatch):
    page.locator("#tabs button[data-view=check]").click()
    monkeypatch.setenv("STYLEGAN_TRUST_ANCHORS", str(signed["ca"]))
    upload(page, "signed.png", signed["png"])
    state, text = credentials_line(page)
    assert state == "trusted" and f"trusted signer (CN={SIGNER})" in text
    assert page.locator("#view-check tr[data-label=C2PA] td").inner_text() == f"valid, trusted (signer: CN={SIGNER})"

    monkeypatch.setenv("STYLEGAN_TRUST_ANCHORS", str(signed["other"]))
    upload(page, "signed.png", signed["png"])
    state, text = credentials_line(page)
    assert state == "untrusted" and f"the signer (CN={SIGNER}) is not trusted" in text

    upload(page, "tampered.png", signed["tampered"])
    state, text = credentials_line(page)
    assert state == "invalid" and "assertion.dataHash.mismatch" in text
    assert page.locator("#view-check [data-testid=headline]").get_attribute("data-verdict") == "marked"


def test_serve_trust_anchors_option(signed, monkeypatch, tmp_path):
    """`stylegan serve --trust-anchors`: a bad file stops it in one line before anything starts; good files become
    the Check view's anchors (the variable it reads per check), after which the signed PNG checks as trusted."""
    from click.testing import CliRunner

    from stylegan.cli.serve import _use_trust_anchors, serve
    from stylegan.serve.check import ANCHORS_ENV, Checker
    from stylegan.serve.uploads import UploadLimits

    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    result = CliRunner().invoke(serve, ["--trust-anchors", str(bad), "--port", "0"])
    assert result.exit_code == 1 and "no PEM certificate" in result.output and "Traceback" not in result.output
    monkeypatch.setenv(ANCHORS_ENV, "")  # restored (unset) after the test, whatever _use_trust_anchors sets
    _use_trust_anchors([signed["ca"]])
    anchors = Checker(UploadLimits()).trust_anchors()
    assert anchors == c2pa.load_trust_anchors([signed["ca"]])
    path = tmp_path / "signed.png"
    path.write_bytes(signed["png"])
    assert c2pa.read(path, trust_anchors=anchors)["trusted"] is True
