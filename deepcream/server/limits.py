"""Input safety: body size limit, content-type check, image sniffing and bounded decoding.

Everything a client sends passes through here before any pipeline code sees it:
- ``UploadGuard`` (ASGI middleware) answers 413 for bodies over the limit before they are
  parsed and 415 for POSTs that are not ``multipart/form-data``.
- ``decode_image``/``decode_pixels`` run the CLI's decoder (``imageio``: format from the
  first bytes, pixel limit from the header before decoding, no multi-frame images, no
  truncated or short data) and give each kind of failure its HTTP status.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from PIL import Image

from deepcream.imageio import FORMATS, DecodeError, Pixels, load_image, load_pixels
from deepcream.server.errors import ApiError, error_payload

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SUPPORTED_FORMATS = FORMATS

# What each kind of decode failure is in HTTP: the decoder is the CLI's, only this mapping is
# the server's.
_DECODE_STATUS = {"empty": 400, "corrupt": 400, "unreadable": 400, "unsupported": 415,
                  "too_large": 413, "frames": 422}


def _api_error(exc: DecodeError) -> ApiError:
    return ApiError(_DECODE_STATUS.get(exc.reason, 400), str(exc))


def decode_image(data: bytes, *, field: str, max_pixels: int) -> Image.Image:
    """One uploaded image, fully decoded (any mode, upright), by ``imageio``'s decoder.

    Raises ``ApiError`` 400 (empty, truncated, corrupt), 413 (too many pixels), 415 (not an
    accepted image format) or 422 (animated / multi-page).
    """
    try:
        return load_image(data, name=f"'{field}'", max_pixels=max_pixels, max_bytes=None)
    except DecodeError as exc:
        raise _api_error(exc) from None


def decode_pixels(data: bytes, *, field: str, max_pixels: int) -> Pixels:
    """``decode_image`` straight to ``Pixels`` (libspng for plain 8-bit PNGs), as the
    pipeline holds images."""
    try:
        return load_pixels(data, name=f"'{field}'", max_pixels=max_pixels, max_bytes=None)
    except DecodeError as exc:
        raise _api_error(exc) from None


def parse_mask_color(text: str) -> tuple[int, int, int]:
    """``#00ff00``, ``00ff00``, ``0,255,0``, ``rgb(0,255,0)`` or a CSS name -> an RGB triple
    (the CLI's parser, ``colors.parse_color``; errors name the form field)."""
    from deepcream.colors import parse_color

    try:
        return parse_color(text)
    except ValueError as exc:
        raise ApiError(422, f"form field 'mask_color': {exc}") from None


class UploadGuard:
    """ASGI middleware: size-limit and type-check request bodies before the app parses them.

    The body is read here (at most ``max_bytes`` + one chunk) and replayed to the app, so an
    oversized upload is refused without being stored anywhere, whatever its Content-Length says.
    At most ``max_bodies`` bodies are held at once (being received or processed): beyond that
    the answer is 503 before any byte is read, which bounds upload memory; a body not fully
    received within ``read_timeout_s`` gets 408, so stalled clients give their slot back, and
    so does one arriving slower than ``min_rate`` bytes/s on average once ``grace_s`` have
    passed (a trickling client cannot hold a slot for the whole ``read_timeout_s``).
    ``refusal()`` (optional) is asked before any byte of an upload is read: the service's 503
    when its queue is full or its models are not ready, answered without reading the body.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, multipart_paths: frozenset[str],
                 max_bodies: int, read_timeout_s: float, retry_after_s: int = 1,
                 on_reject: Callable[[], None] | None = None, min_rate: float = 0.0,
                 grace_s: float = 5.0, refusal: Callable[[], ApiError | None] | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.multipart_paths = multipart_paths
        self.max_bodies = max_bodies
        self.read_timeout_s = read_timeout_s
        self.retry_after_s = retry_after_s
        self.on_reject = on_reject
        self.min_rate = min_rate
        self.grace_s = grace_s
        self.refusal = refusal
        self.bodies = 0  # only touched on the event loop thread

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        declared = headers.get("content-length")
        if scope["path"] in self.multipart_paths:
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype != "multipart/form-data":
                await self._answer_then_drain(
                    receive, send, declared, 415,
                    f"expected a multipart/form-data upload, got {ctype or 'no Content-Type'}")
                return
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                await _send_error(send, 400, "invalid Content-Length header")
                return
            if too_big:
                await self._answer_then_drain(receive, send, declared, 413, self._too_big_message())
                return
        if scope["path"] in self.multipart_paths and self.refusal is not None:
            refused = self.refusal()
            if refused is not None:
                await self._refuse(receive, send, refused.status, refused.message,
                                   {k.lower(): v for k, v in refused.headers.items()})
                return
        if self.bodies >= self.max_bodies:
            if self.on_reject is not None:
                self.on_reject()
            await self._refuse(receive, send, 503,
                               f"server busy: {self.bodies} uploads in progress; retry later",
                               {"retry-after": str(self.retry_after_s)})
            return
        self.bodies += 1
        try:
            await self._read_and_forward(scope, receive, send)
        finally:
            self.bodies -= 1

    async def _read_and_forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks: list[bytes] = []
        size = 0
        loop = asyncio.get_running_loop()
        start = loop.time()
        end = start + self.read_timeout_s  # a client that stalls must not keep its slot
        while True:
            limit = self._next_bytes_by(start, size)
            try:
                message = await asyncio.wait_for(receive(), max(limit - loop.time(), 0))
            except TimeoutError:
                if limit < end:
                    await _send_error(send, 408, f"upload too slow: {size:,} bytes in "
                                      f"{loop.time() - start:.0f} s, under the minimum of "
                                      f"{self.min_rate / 1024:g} KiB/s")
                else:
                    await _send_error(send, 408,
                                      f"upload not received within {self.read_timeout_s:g} s")
                return
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                more = message.get("more_body", False)
                await _send_error(send, 413, self._too_big_message(), close=not more)
                if more:
                    await self._drain(receive, size)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, receive: Receive, send: Send, status: int, message: str,
                      headers: dict[str, str]) -> None:
        """Answer without parsing the body, then read it to its end and drop it (a socket
        closed while the client still sends resets, and the client may never read the answer:
        the "lingering close" of nginx and Apache). Reading costs bandwidth, not CPU; the
        minimum upload rate bounds how long a slow client keeps the connection."""
        await _send_error(send, status, message, headers, close=False)
        await self._drain(receive, cap=self.max_bytes)

    async def _answer_then_drain(self, receive: Receive, send: Send, declared: str | None,
                                 status: int, message: str) -> None:
        """Answer a request refused on its headers, then read its body to its end and drop
        it, unless it declares more than the drain cap (then the connection closes): with
        "connection: close" the server closed the socket as soon as the answer was out, with
        the upload still arriving or unread, and the client could get a reset instead of the
        answer."""
        try:
            drain = declared is None or int(declared) <= self._drain_cap()
        except ValueError:
            drain = False
        await _send_error(send, status, message, close=not drain)
        if drain:
            await self._drain(receive)

    def _drain_cap(self) -> int:
        """Over-limit bodies up to this size are read (and dropped) after the 413 is sent: a
        server that answers and closes while the client is still sending resets the
        connection, and the client may never see the answer. Larger ones are not read."""
        return max(4 * self.max_bytes, 16 << 20)

    async def _drain(self, receive: Receive, seen: int = 0, cap: int | None = None) -> None:
        cap = self._drain_cap() if cap is None else cap
        loop = asyncio.get_running_loop()
        start = loop.time()
        read = 0
        while seen <= cap:
            try:
                message = await asyncio.wait_for(
                    receive(), max(self._next_bytes_by(start, read) - loop.time(), 0))
            except TimeoutError:
                return
            if message["type"] == "http.disconnect":
                return
            read += len(message.get("body", b""))
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    def _next_bytes_by(self, start: float, size: int) -> float:
        """When more body bytes must have arrived: before the whole-upload deadline and,
        past the grace period, before the average rate falls under the minimum."""
        limit = start + self.read_timeout_s
        if self.min_rate > 0:
            limit = min(limit, start + max(self.grace_s, (size + 1) / self.min_rate))
        return limit

    def _too_big_message(self) -> str:
        return f"upload too large: the limit is {self.max_bytes:,} bytes"


async def _send_error(send: Send, status: int, message: str,
                      extra_headers: dict[str, str] | None = None, close: bool = True) -> None:
    """A JSON error answer; ``close``: the connection closes once it is sent (the request's
    body is not read)."""
    body = json.dumps(error_payload(status, message), separators=(",", ":")).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    headers += [(k.encode(), v.encode()) for k, v in (extra_headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
