"""The Edit, Project and Check views in a real browser (Playwright + Debian's Chromium, headless; browser_helpers.py).

Each view loads with no console error (the `page` fixture fails the test otherwise). Edit: moving the strength
slider changes the pixels, and the shown CLI line, run through `stylegan edit`, writes the pixels the page shows.
Project: an uploaded image (the built-in model's, enlarged) shows live progress and ends with a projection, which
"Edit it" hands to the Edit view. Check: a generated PNG gets "mark found", an AT&T Laboratories Cambridge face
photo gets no provenance and a detector score. With STYLEGAN_SCREENSHOTS=DIR: DIR/serve-edit.png,
serve-project.png and serve-check.png.
"""

from __future__ import annotations

import shlex

import numpy as np
from browser_helpers import cli, pixels_of, screenshot, set_range, shown
from serve_helpers import ATT_FACE, generated_photo, marked_generated_png
from test_http import pixels, run_cli


def upload(page, selector: str, name: str, data: bytes, mime: str = "image/png") -> None:
    page.locator(selector).set_input_files({"name": name, "mimeType": mime, "buffer": data})


def test_edit_view_strength_moves_the_image_and_its_cli_line_reproduces_it(page, tmp_path, monkeypatch):
    page.locator("#tabs button[data-view=edit]").click()
    w, h, start = shown(page, "edit", "strength=0")
    assert (w, h) == (32, 32)

    page.locator("#view-edit select[name=direction]").select_option("sefa:1")
    set_range(page, "#view-edit input[name=strength]", "2.5")
    _, _, moved = shown(page, "edit", "strength=2.5")
    assert np.abs(moved - start).mean() > 0.5
    line = cli(page, "edit")
    assert "--direction sefa:1 --strengths 2.5" in line

    run_cli(shlex.split(line), tmp_path, monkeypatch)
    np.testing.assert_array_equal(moved[:, :, 0], pixels((tmp_path / "edit.png").read_bytes()))
    page.locator("#view-edit [data-name=layers] button[data-value=coarse]").click()
    shown(page, "edit", "layers=coarse")
    screenshot(page, "edit")


def test_project_view_shows_progress_and_hands_the_result_to_edit(page):
    page.locator("#tabs button[data-view=project]").click()
    upload(page, "#view-project input[name=photo]", "shirt.png", generated_photo(3))
    page.locator("#view-project input[name=steps]").fill("24")
    page.locator("#view-project button[name=start]").click()
    page.wait_for_function(  # a preview while the job runs: progress is live, not only at the end
        "() => { const i = document.querySelector('#view-project img[data-testid=projection]');"
        " return i.dataset.state === 'running' && i.complete && i.naturalWidth > 0; }"
    )
    page.wait_for_function("() => document.querySelector('#view-project [data-testid=state]').dataset.state === 'done'")
    page.wait_for_function(
        "() => { const i = document.querySelector('#view-project img[data-testid=projection]');"
        " return i.dataset.state === 'done' && i.complete && i.naturalWidth === 32; }"
    )
    assert page.locator("#view-project progress").evaluate("p => [p.value, p.max]") == [24, 24]
    assert "LPIPS" in page.locator("#view-project [data-testid=state]").inner_text()
    assert cli(page, "project") == "stylegan project --target photo.png --steps 24 --outdir out/proj"
    w, h, _ = pixels_of(page, "#view-project img[data-testid=target]")
    assert (w, h) == (32, 32)
    screenshot(page, "project")

    page.locator("#view-project button[name=edit-it]").click()
    shown(page, "edit", "projection=")
    assert "--projected-w projected_w.npz" in cli(page, "edit")
    assert page.locator("#view-edit a[download]").is_visible()


def verdict(page) -> str:
    page.wait_for_function("() => document.querySelector('#view-check [data-testid=state]').dataset.state === 'done'")
    return page.locator("#view-check [data-testid=headline]").get_attribute("data-verdict")


def test_check_view_gives_verdicts_for_a_generated_png_and_a_real_photo(page):
    page.locator("#tabs button[data-view=check]").click()
    upload(page, "#view-check input[name=image]", "att-s1-1.pgm", ATT_FACE.read_bytes(), "image/x-portable-graymap")
    assert verdict(page) == "none"
    detector = page.locator("#view-check tr[data-label=detector] td").inner_text()
    calibration = page.locator("#view-check [data-testid=calibration]").inner_text()
    assert "p(generated)" in detector and "calibrated" in calibration
    assert cli(page, "check") == "stylegan detect att-s1-1.pgm"
    page.wait_for_function(  # Chromium shows no PGM: the page says so instead of a broken picture
        "() => document.querySelector('#view-check figcaption').textContent.includes('cannot show')"
    )

    page.evaluate("() => { document.querySelector('#view-check [data-testid=state]').dataset.state = ''; }")
    upload(page, "#view-check input[name=image]", "generated seed 3.png", marked_generated_png(seed=3))
    assert verdict(page) == "marked"
    assert page.locator("#view-check tr[data-label=mark] td").inner_text().startswith("found")
    assert cli(page, "check") == "stylegan detect 'generated seed 3.png'"
    page.wait_for_function("() => document.querySelector('#view-check img[data-testid=spectrum]').naturalWidth === 192")
    screenshot(page, "check")
