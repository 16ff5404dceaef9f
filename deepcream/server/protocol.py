"""HTTP protocol with a header-read timeout (slow-header clients), for uvicorn.

uvicorn's ``timeout_keep_alive`` only runs between requests, and any byte received cancels
it, so a client that sends one header byte every few seconds holds its connection (and a
socket, and memory) forever. ``header_timeout_protocol(seconds)`` returns uvicorn's h11
protocol with one more timer: armed when a connection opens and after each response, cancelled
when a request's headers are complete; when it fires the client gets 408 and the connection
is closed. Request bodies are the ``UploadGuard``'s business (minimum upload rate).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

_TIMEOUT_ANSWER = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                   b"content-length: %d\r\nconnection: close\r\n\r\n%s")


class HeaderTimeoutH11Protocol(H11Protocol):
    """uvicorn's h11 protocol; a request's headers must arrive within ``header_timeout_s``."""

    header_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timed_out)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        body = (b'{"status":408,"error":"request_timeout","message":"request headers not '
                b'received within %g s"}' % self.header_timeout_s)
        self.transport.write(_TIMEOUT_ANSWER % (len(body), body))
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a request's headers are complete: it is the app's now
            self._cancel_header_timer()

    def on_response_complete(self) -> None:
        # armed before the base class looks at pipelined data, which may start (and so
        # cancel the timer for) the next request at once
        if not self.transport.is_closing():
            self._arm_header_timer()
        super().on_response_complete()


def header_timeout_protocol(seconds: float) -> type[HeaderTimeoutH11Protocol]:
    """The protocol class for ``uvicorn.Config(http=...)`` with this header timeout."""
    return type("HeaderTimeoutH11Protocol", (HeaderTimeoutH11Protocol,),
                {"header_timeout_s": float(seconds)})
