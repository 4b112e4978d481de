"""Helpers of the explorer's browser tests: Playwright for Python driving Debian's Chromium, headless.

`browser` (one per test module) and `page` (a fresh page per test, failing the test on any console error) are
fixtures, imported by tests/serve/conftest.py. With STYLEGAN_SCREENSHOTS=DIR, `screenshot(page, name)` saves
DIR/serve-NAME.png (docs/figures). Without Playwright or /usr/bin/chromium the tests skip (fail under CI=true:
`.ci/run` installs both).
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
    """Chromium for one test module (module scope: Playwright's sync API holds an event loop while it runs, which
    would stop asyncio.run in later test modules)."""
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


def pixels_of(page, selector: str):
    """(w, h, RGBA array [h, w, 4] int16) of a loaded <img>."""
    w, h, data = page.locator(selector).evaluate(READ_PIXELS)
    return w, h, np.array(data, dtype=np.int16).reshape(h, w, 4)


def shown(page, view: str, contains: str = ""):
    """The view's image once it shows a rendering whose query contains `contains`: (w, h, RGBA array [h, w, 4])."""
    selector = f"#view-{view} img[data-testid=image]"
    page.wait_for_function(
        "([sel, part]) => { const i = document.querySelector(sel); return i && i.dataset.query && "
        "i.dataset.query.includes(part) && i.complete && i.naturalWidth > 0; }",
        arg=[selector, contains],
    )
    return pixels_of(page, selector)


def set_range(page, selector: str, value: str) -> None:
    """Moves a slider as a user would end up: new value, then the input event."""
    page.locator(selector).evaluate("(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }", value)


def cli(page, view: str) -> str:
    return page.locator(f"#view-{view} [data-testid=cli]").inner_text()


SCREENSHOTS = os.environ.get("STYLEGAN_SCREENSHOTS") and Path(os.environ["STYLEGAN_SCREENSHOTS"]).resolve()


def screenshot(page, name: str) -> None:
    """Saves the page as SCREENSHOTS/serve-NAME.png (the folder as resolved at import: tests may chdir)."""
    if SCREENSHOTS:
        page.screenshot(path=str(SCREENSHOTS / f"serve-{name}.png"), full_page=True)
