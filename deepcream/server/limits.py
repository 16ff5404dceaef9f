"""Input safety: body size limit, content-type check, image sniffing and bounded decoding.

Everything a client sends passes through here before any pipeline code sees it:
- ``UploadGuard`` (ASGI middleware) answers 413 for bodies over the limit before they are
  parsed and 415 for POSTs that are not ``multipart/form-data``.
- ``decode_image`` detects the format from the first bytes (never the file name), refuses
  declared sizes over the pixel limit before decoding (decompression bombs), multi-frame
  images, and truncated or corrupt data, each with its own status and a one-line message.
"""

from __future__ import annotations

import asyncio
import io
import json
import struct
import warnings
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from PIL import Image, ImageFile

from deepcream.server.errors import ApiError, error_payload

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Truncated files must fail, not decode half an image silently.
ImageFile.LOAD_TRUNCATED_IMAGES = False

# Magic bytes -> Pillow format name. Only these formats are accepted.
_SIGNATURES: list[tuple[bytes, int, str]] = [
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"WEBP", 8, "WEBP"),  # after "RIFF" + 4-byte size
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"BM", 0, "BMP"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
]
SUPPORTED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")


def sniff_format(data: bytes) -> str | None:
    """The image format named by the data's first bytes, or None when it is none we accept."""
    for magic, offset, name in _SIGNATURES:
        if data[offset : offset + len(magic)] == magic and (name != "WEBP" or data[:4] == b"RIFF"):
            return name
    return None


def decode_image(data: bytes, *, field: str, max_pixels: int) -> Image.Image:
    """Decode one uploaded image into a fully loaded ``PIL.Image`` (any mode).

    Raises ``ApiError`` 400 (empty, truncated, corrupt), 413 (too many pixels), 415 (not an
    accepted image format) or 422 (animated / multi-frame).
    """
    if not data:
        raise ApiError(400, f"'{field}' is empty (0 bytes)")
    fmt = sniff_format(data)
    if fmt is None:
        raise ApiError(
            415,
            f"'{field}' is not a supported image (accepted: {', '.join(SUPPORTED_FORMATS)}; "
            "the format is detected from the content, not the file name)",
        )
    try:
        with warnings.catch_warnings():
            # Pillow warns (DecompressionBombWarning) before it errors; our own limit applies.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            # Decoders warn about short reads before failing; the failure is what we report.
            warnings.simplefilter("ignore", UserWarning)
            img = Image.open(io.BytesIO(data), formats=[fmt])
            width, height = img.size
            if width <= 0 or height <= 0:
                raise ApiError(400, f"'{field}' declares an empty size {width}x{height}")
            if width * height > max_pixels:
                raise ApiError(
                    413,
                    f"'{field}' is {width}x{height} = {width * height:,} pixels; "
                    f"the limit is {max_pixels:,}",
                )
            if getattr(img, "n_frames", 1) > 1:
                raise ApiError(
                    422, f"'{field}' has {img.n_frames} frames; send a single still image"
                )
            img.load()
    except ApiError:
        raise
    except Image.DecompressionBombError as exc:
        raise ApiError(413, f"'{field}' is too large to decode safely: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, MemoryError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ApiError(400, f"'{field}' is a corrupt or truncated {fmt} image ({reason})") from None
    # Mode handling (16-bit, palette transparency, CMYK...) is the pipeline's, as for the CLI.
    return img


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
    received within ``read_timeout_s`` gets 408, so stalled clients give their slot back.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, multipart_paths: frozenset[str],
                 max_bodies: int, read_timeout_s: float, retry_after_s: int = 1,
                 on_reject: Callable[[], None] | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.multipart_paths = multipart_paths
        self.max_bodies = max_bodies
        self.read_timeout_s = read_timeout_s
        self.retry_after_s = retry_after_s
        self.on_reject = on_reject
        self.bodies = 0  # only touched on the event loop thread

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if scope["path"] in self.multipart_paths:
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype != "multipart/form-data":
                await _send_error(
                    send, 415,
                    f"expected a multipart/form-data upload, got {ctype or 'no Content-Type'}",
                )
                return
        declared = headers.get("content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                await _send_error(send, 400, "invalid Content-Length header")
                return
            if too_big:
                # A body that will be read to its end keeps the connection open: with
                # "connection: close" the server closed the socket as soon as the answer was
                # out, with the upload still arriving, and the client could get a reset
                # instead of the answer.
                drain = int(declared) <= self._drain_cap()
                await _send_error(send, 413, self._too_big_message(), close=not drain)
                if drain:
                    await self._drain(receive)
                return
        if self.bodies >= self.max_bodies:
            if self.on_reject is not None:
                self.on_reject()
            await _send_error(send, 503, f"server busy: {self.bodies} uploads in progress; "
                              "retry later", {"retry-after": str(self.retry_after_s)})
            return
        self.bodies += 1
        try:
            await self._read_and_forward(scope, receive, send)
        finally:
            self.bodies -= 1

    async def _read_and_forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks: list[bytes] = []
        size = 0
        try:
            # A client that stalls mid-upload must not hold its body slot forever.
            async with asyncio.timeout(self.read_timeout_s):
                while True:
                    message = await receive()
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
        except TimeoutError:
            await _send_error(send, 408, f"upload not received within {self.read_timeout_s:g} s")
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _drain_cap(self) -> int:
        """Over-limit bodies up to this size are read (and dropped) after the 413 is sent: a
        server that answers and closes while the client is still sending resets the
        connection, and the client may never see the answer. Larger ones are not read."""
        return max(4 * self.max_bytes, 16 << 20)

    async def _drain(self, receive: Receive, seen: int = 0) -> None:
        try:
            async with asyncio.timeout(self.read_timeout_s):
                while seen <= self._drain_cap():
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    seen += len(message.get("body", b""))
                    if not message.get("more_body", False):
                        return
        except TimeoutError:
            return

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
