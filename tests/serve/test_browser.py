"""The page in a real browser: Playwright for Python driving Debian's Chromium (headless) against the test server.

Checks what a person sees: the page loads without console errors, moving the seed and psi controls changes the
pixels of the shown image, the mixing grid appears with the paper's layout, the CLI line follows the controls.
With STYLEGAN_SCREENSHOTS=DIR the tests also save DIR/serve-generate.png and DIR/serve-mix.png (docs/figures).
Fixtures and helpers: browser_helpers.py.
"""

from __future__ import annotations

import numpy as np
from browser_helpers import cli, screenshot, set_range, shown


def test_generate_view_follows_seed_and_psi(page):
    w, h, first = shown(page, "generate", "seed=0")
    assert (w, h) == (32, 32)
    assert cli(page, "generate") == "stylegan generate --seeds 0 --trunc 1 --outdir out"

    page.locator("#view-generate input[name=seed]").fill("5")
    _, _, seed5 = shown(page, "generate", "seed=5")
    assert np.abs(seed5 - first).mean() > 1
    assert "--seeds 5" in cli(page, "generate")

    set_range(page, "#view-generate input[name=psi]", "-0.5")
    _, _, negative = shown(page, "generate", "psi=-0.5")
    assert np.abs(negative - seed5).mean() > 1
    page.wait_for_function(
        "() => document.querySelector('#view-generate [data-testid=cli]').textContent.includes('--trunc=-0.5')"
    )
    set_range(page, "#view-generate input[name=psi]", "0.7")
    shown(page, "generate", "psi=0.7")
    screenshot(page, "generate")


def test_mix_view_renders_the_grid(page):
    page.locator("#tabs button[data-view=mix]").click()
    w, h, grid = shown(page, "mix", "styles=0-2")
    assert (w, h) == (5 * 32 + 4 * 2, 5 * 32 + 4 * 2)  # 4 row and 4 column seeds, plus the sources, 2-pixel gaps
    corner = grid[:32, :32, :3]  # the empty corner: white, give or take the provenance mark (a few levels)
    assert corner.min() > 225 and corner.mean() > 250
    assert grid[:, :, :3].std() > 10  # faces of clothing, not a blank canvas
    assert cli(page, "mix").startswith("stylegan mix --rows 85,100,75,458 --cols 55,821,1789,293 --styles 0-2")

    page.locator("#view-mix button[data-group=fine]").click()
    _, _, fine = shown(page, "mix", "styles=5-7")
    assert np.abs(fine - grid).mean() > 0.5
    assert "--styles 5-7" in cli(page, "mix")
    screenshot(page, "mix")


def test_model_picker_switches_controls(page):
    shown(page, "generate", "model=0")
    page.select_option("#model", "1")
    assert page.locator("#view-generate fieldset").is_visible()  # the SG3 transform controls
    set_range(page, "#view-generate input[name=rotate]", "30")
    w, h, _ = shown(page, "generate", "rotate=30")
    assert (w, h) == (32, 32)
    assert "--rotate 30" in cli(page, "generate") and "--network" in cli(page, "generate")
