"""A real HTTP server on 127.0.0.1 for the download tests, with the ways servers misbehave.

Each path maps to a `Route`: the bytes to serve and how to serve them (drop the connection once after N bytes,
stall before answering or mid-body, answer 404, send an HTML page, or send no Content-Length). Range requests
(`bytes=N-`) get 206 answers. Every request is logged as (path, Range header or None).
"""

from __future__ import annotations

import http.server
import re
import threading
import time
from dataclasses import dataclass


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/octet-stream"
    drop_after: int | None = None  # first answer stops after this many bytes (connection closed)
    stall_before: float = 0.0  # seconds before the status line (every answer)
    stall_mid: float = 0.0  # first answer: seconds of silence after half the body
    send_length: bool = True
    ranges: bool = True  # honour Range requests


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):  # noqa: N802 (http.server's name)
        server = self.server
        server.log.append((self.path, self.headers.get("Range")))
        route = server.routes.get(self.path)
        if route is None:
            return self._plain(404, b"not found")
        time.sleep(route.stall_before)
        if route.status != 200:
            return self._plain(route.status, b"nope")
        first = server.answered.get(self.path, 0) == 0
        server.answered[self.path] = server.answered.get(self.path, 0) + 1
        start = self._range_start(route)
        body = route.body[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(route.body) - 1}/{len(route.body)}")
        self.send_header("Content-Type", route.content_type)
        if route.send_length:
            self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self._body(route, body, first)

    def _range_start(self, route: Route) -> int:
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        return int(match.group(1)) if match and route.ranges and int(match.group(1)) < len(route.body) else 0

    def _body(self, route: Route, body: bytes, first: bool) -> None:
        try:
            if first and route.drop_after is not None:
                self.wfile.write(body[: route.drop_after])
            elif first and route.stall_mid:
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                time.sleep(route.stall_mid)
                self.wfile.write(body[len(body) // 2 :])
            else:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    def _plain(self, status: int, text: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)


class LocalServer:
    """`with LocalServer() as srv: srv.routes["/a.pkl"] = Route(data); srv.url("/a.pkl")`."""

    def __init__(self):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.routes, self.httpd.log, self.httpd.answered = {}, [], {}
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def routes(self) -> dict[str, Route]:
        return self.httpd.routes

    @property
    def log(self) -> list[tuple[str, str | None]]:
        return self.httpd.log

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"

    def __enter__(self) -> LocalServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
