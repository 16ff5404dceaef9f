"""Run the app on a loopback port inside this process (tests, notebooks, embedding).

``serve_in_thread(settings)`` binds 127.0.0.1 on a free port, runs uvicorn in a daemon thread
and yields the base URL once the server accepts connections (and, by default, once
``/readyz`` says the models are warm); leaving the ``with`` block stops it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

from deepcream.errors import DeepcreamError
from deepcream.server.protocol import header_timeout_protocol
from deepcream.server.settings import Settings


@contextlib.contextmanager
def serve_in_thread(
    settings: Settings | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    wait_ready: bool = True,
    timeout_s: float = 120.0,
) -> Iterator[str]:
    """Serve ``create_app(settings)`` on ``host:port`` (0 = free port); yield ``http://host:port``."""
    import uvicorn

    from deepcream.server.app import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    url = f"http://{host}:{sock.getsockname()[1]}"
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), log_level="warning", access_log=False,
                       http=header_timeout_protocol((settings or Settings()).header_timeout_s))
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="deepcream-uvicorn", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise DeepcreamError(f"the server on {url} did not start")
            time.sleep(0.02)
        if wait_ready:
            _wait_ready(url, deadline)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def _wait_ready(url: str, deadline: float) -> None:
    # No proxies: the server is on loopback, whatever the environment says.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while True:
        try:
            with opener.open(f"{url}/readyz", timeout=5) as answer:
                if answer.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code != 503:
                raise
        if time.monotonic() > deadline:
            raise DeepcreamError(f"the server on {url} did not become ready")
        time.sleep(0.05)
