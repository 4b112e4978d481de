"""The page in a real browser: Playwright for Python driving Debian's Chromium (headless) against the test server.

Checks what a person sees: the page loads without console errors, moving the seed and psi controls changes the
pixels of the shown image, the mixing grid appears with the paper's layout, the CLI line follows the controls.
With STYLEGAN_SCREENSHOTS=DIR the tests also save DIR/serve-generate.png and DIR/serve-mix.png (docs/figures).
Without Playwright or /usr/bin/chromium the tests skip (fail under CI=true: `.ci/run` installs both).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from ci_skip import skip_or_fail

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-extensions",
]
READ_PIXELS = """(img) => {
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  return [img.naturalWidth, img.naturalHeight, Array.from(ctx.getImageData(0, 0, canvas.width, canvas.height).data)];
}"""


def chromium() -> str:
    for path in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if Path(path).is_file():
            return path
    return shutil.which("chromium") or skip_or_fail("chromium not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def browser():
    if importlib.util.find_spec("playwright") is None:
        skip_or_fail("playwright not installed: the [dev] extra (make venv)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    """A fresh page on the explorer; fails the test if the page logged any console error."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, device_scale_factor=1)
    page = context.new_page()
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.set_default_timeout(15_000)
    page.goto(server.url + "/")
    yield page
    context.close()
    assert errors == []


def shown(page, view: str, contains: str = ""):
    """The view's image once it shows a rendering whose query contains `contains`: (w, h, RGBA array [h, w, 4])."""
    img = page.locator(f"#view-{view} img[data-testid=image]")
    page.wait_for_function(
        "([sel, part]) => { const i = document.querySelector(sel); return i && i.dataset.query && "
        "i.dataset.query.includes(part) && i.complete && i.naturalWidth > 0; }",
        arg=[f"#view-{view} img[data-testid=image]", contains],
    )
    w, h, data = img.evaluate(READ_PIXELS)
    return w, h, np.array(data, dtype=np.int16).reshape(h, w, 4)


def set_range(page, selector: str, value: str) -> None:
    """Moves a slider as a user would end up: new value, then the input event."""
    page.locator(selector).evaluate("(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }", value)


def cli(page, view: str) -> str:
    return page.locator(f"#view-{view} [data-testid=cli]").inner_text()


def screenshot(page, name: str) -> None:
    folder = os.environ.get("STYLEGAN_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / f"serve-{name}.png"), full_page=True)


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
