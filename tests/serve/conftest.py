"""The `server` fixture: a real uvicorn server with three models (see serve_helpers.py)."""

from serve_helpers import server  # noqa: F401
