"""A loopback HTTP proxy in front of a real node, for tests that need the network to misbehave.

Every request is recorded and handed to ``intercept(method, path, headers, body)``;
``None`` forwards it to the node unchanged, a ``(status, payload)`` pair answers
it instead (a refused signature, a 429 storm). Nothing here imitates the engine:
whatever is forwarded is answered by the real node.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

Intercept = Callable[[str, str, object, bytes], tuple[int, bytes] | None]


class ForwardingProxy(ThreadingHTTPServer):
    """Forward to ``upstream`` unless ``intercept`` answers; ``seen`` lists ``(method, path, intercepted)``.

    Use as a context manager: it serves from a daemon thread until the block ends.
    """

    daemon_threads = True

    def __init__(self, upstream: str, intercept: Intercept | None = None) -> None:
        self.upstream = urlsplit(upstream)
        self.intercept = intercept or (lambda *_: None)
        self.seen: list[tuple[str, str, bool]] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def paths(self, intercepted: bool | None = None) -> list[str]:
        """Paths seen (only the intercepted or only the forwarded ones when asked)."""
        with self.lock:
            return [p for _, p, i in self.seen if intercepted is None or i == intercepted]

    def __enter__(self) -> ForwardingProxy:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def _any(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        answer = self.server.intercept(self.command, self.path, self.headers, body)
        with self.server.lock:
            self.server.seen.append((self.command, self.path.split("?")[0], answer is not None))
        if answer is not None:
            status, payload = answer
            self._reply(status, [("Content-Type", "application/json")], payload)
            return
        upstream = http.client.HTTPConnection(self.server.upstream.hostname, self.server.upstream.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "authorization", "connection")}
        upstream.request(self.command, self.path, body=body or None, headers=headers)
        resp = upstream.getresponse()
        data = resp.read()
        keep = [
            (k, v)
            for k, v in resp.getheaders()
            if k.lower() not in ("transfer-encoding", "connection", "content-length")
        ]
        self._reply(resp.status, keep, data)
        upstream.close()

    def _reply(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _any
