"""Run a FastAPI (ASGI) application with uvicorn on a background thread: tests, notebooks, a page beside other work.

Examples:
    >>> server = ServerThread(create_storefront_app(storefront))  # doctest: +SKIP
    >>> requests.get(server.url + "/api/popular-tags").json()     # doctest: +SKIP
    >>> server.shutdown()                                         # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any


class ServerThread:
    """A uvicorn server on a free (or given) loopback port, serving from a daemon thread.

    Args:
        app: the ASGI application.
        host: the address to bind.
        port: the port; 0 picks a free one.
        ready_path: a path that answers 200 once the application can serve (e.g. ``/readyz``);
            ``None``: ready when uvicorn has started.
        timeout: seconds to wait for that.

    Attributes:
        url: the base URL, e.g. ``http://127.0.0.1:49213``.

    Raises:
        RuntimeError: the server did not start (or become ready) in time.
    """

    def __init__(
        self, app: Any, host: str = "127.0.0.1", port: int = 0, ready_path: str | None = None, timeout: float = 60.0
    ) -> None:
        import uvicorn

        self._socket = socket.socket()
        self._socket.bind((host, port))
        self.url = f"http://{host}:{self._socket.getsockname()[1]}"
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
        self._thread = threading.Thread(target=self._run, name="vistag-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._ready(ready_path):
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.shutdown()
                raise RuntimeError(f"the server at {self.url} did not start within {timeout:.0f}s")
            time.sleep(0.05)

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._socket]))

    def _ready(self, path: str | None) -> bool:
        if not self._server.started:
            return False
        if path is None:
            return True
        import requests

        try:
            return requests.get(self.url + path, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def shutdown(self) -> None:
        """Stop serving and wait for the thread."""
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._socket.close()
