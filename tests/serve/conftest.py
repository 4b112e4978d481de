"""Fixtures: `server`, a real uvicorn server with three models (serve_helpers.py); `browser` and `page`, Chromium
driven by Playwright (browser_helpers.py)."""

from browser_helpers import browser, page  # noqa: F401
from serve_helpers import server  # noqa: F401
