"""libspng's PNG decoder called without holding the GIL, and one PNG read ahead.

``pyspng`` (libspng's Python binding, deepcream's decoder for plain 8-bit RGB/RGBA PNGs)
holds the GIL while it decodes: ~50 ms on the 2604x2513 reference image, during which no
other Python thread runs (in a one-shot CLI run: the model's import and session creation;
in a folder job: the filling image's pastes). The same libspng, exported by pyspng's own
extension module and called through ``ctypes``, releases the GIL for the decode.

This module imports neither numpy nor Pillow, so the CLI can start reading and decoding its
input before those imports (``read_ahead``); ``imageio`` takes the result (``take``). With
no usable libspng (another pyspng build, another platform) everything here answers None
and ``imageio`` decodes as before.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import importlib.util
import os
import stat
import threading
from dataclasses import dataclass

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: libspng's constants (spng.h, 0.7): output formats and the CRC action.
_FMT_RGBA8, _FMT_RGB8 = 1, 4
_CRC_USE = 2
#: Limits as pyspng sets them: memory for standard and unknown chunks.
_CHUNK_LIMIT = 64 << 20
#: The read-ahead's limits: Pillow's default pixel limit and a file size far above any image
#: of that many pixels (``imageio.DEFAULT_MAX_PIXELS`` / ``DEFAULT_MAX_BYTES``, the CLI's
#: limits; a test checks they agree). ``imageio`` checks its own limits again before it uses
#: what was read ahead.
READ_AHEAD_MAX_PIXELS = 89_478_485
READ_AHEAD_MAX_BYTES = 1 << 30


class _Ihdr(ctypes.Structure):
    _fields_ = [("width", ctypes.c_uint32), ("height", ctypes.c_uint32),
                ("bit_depth", ctypes.c_uint8), ("color_type", ctypes.c_uint8),
                ("compression_method", ctypes.c_uint8), ("filter_method", ctypes.c_uint8),
                ("interlace_method", ctypes.c_uint8)]


@functools.cache
def _library() -> ctypes.CDLL | None:
    """pyspng's extension module as a C library with libspng's API, or None."""
    try:
        spec = importlib.util.find_spec("pyspng")  # finds the package without importing it
        folders = list(spec.submodule_search_locations or []) if spec else []
        paths = [p for folder in folders for p in glob.glob(os.path.join(folder, "_pyspng_c*"))]
        if not paths:
            return None
        lib = ctypes.CDLL(paths[0])
        void, size = ctypes.c_void_p, ctypes.c_size_t
        for name, args, res in (
            ("spng_ctx_new", [ctypes.c_int], void),
            ("spng_ctx_free", [void], None),
            ("spng_set_crc_action", [void, ctypes.c_int, ctypes.c_int], ctypes.c_int),
            ("spng_set_chunk_limits", [void, size, size], ctypes.c_int),
            ("spng_set_png_buffer", [void, void, size], ctypes.c_int),
            ("spng_get_ihdr", [void, ctypes.POINTER(_Ihdr)], ctypes.c_int),
            ("spng_decoded_image_size", [void, ctypes.c_int, ctypes.POINTER(size)],
             ctypes.c_int),
            ("spng_decode_image", [void, void, size, ctypes.c_int, ctypes.c_int], ctypes.c_int),
        ):
            function = getattr(lib, name)
            function.argtypes, function.restype = args, res
        return lib
    except (OSError, AttributeError, ImportError, ValueError):
        return None


def available() -> bool:
    """Whether ``decode`` can run (libspng found in pyspng's extension module)."""
    return _library() is not None


def plain_png(data: bytes) -> bool:
    """An 8-bit RGB/RGBA, non-interlaced PNG (IHDR: bit depth 8, colour type 2 or 6,
    interlace 0) with no tRNS chunk before the image data and no eXIf chunk: exactly the
    PNGs whose pixels Pillow would give as plain RGB/RGBA, the right way up."""
    if len(data) < 33 or data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        return False
    if data[24] != 8 or data[25] not in (2, 6) or data[28] != 0:
        return False
    pos = 33
    while pos + 8 <= len(data):
        length, kind = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8]
        if kind == b"tRNS":
            return False
        if kind == b"IDAT":
            return not _has_exif(data)
        pos += 12 + length
    return False


def _has_exif(data: bytes) -> bool:
    pos = 8
    while pos + 8 <= len(data):
        if data[pos + 4:pos + 8] == b"eXIf":
            return True
        pos += 12 + int.from_bytes(data[pos:pos + 4], "big")
    return False


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR (``data`` starts with the signature and IHDR)."""
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def decode(data: bytes) -> tuple[bytearray, int, int, int] | None:
    """The pixels of a ``plain_png`` as (rows top to bottom, height, width, channels 3 or
    4), decoded by libspng as pyspng does it, without holding the GIL; None if libspng is
    not available or refuses the data (the caller then decodes another way, and reports)."""
    lib = _library()
    if lib is None:
        return None
    ctx = lib.spng_ctx_new(0)
    if not ctx:
        return None
    try:
        lib.spng_set_crc_action(ctx, _CRC_USE, _CRC_USE)
        lib.spng_set_chunk_limits(ctx, _CHUNK_LIMIT, _CHUNK_LIMIT)
        if lib.spng_set_png_buffer(ctx, ctypes.c_char_p(data), len(data)) != 0:
            return None
        ihdr = _Ihdr()
        if lib.spng_get_ihdr(ctx, ctypes.byref(ihdr)) != 0 or ihdr.bit_depth != 8 \
                or ihdr.color_type not in (2, 6):
            return None
        channels = 3 if ihdr.color_type == 2 else 4
        fmt = _FMT_RGB8 if channels == 3 else _FMT_RGBA8
        size = ctypes.c_size_t()
        if lib.spng_decoded_image_size(ctx, fmt, ctypes.byref(size)) != 0 \
                or size.value != ihdr.width * ihdr.height * channels:
            return None
        out = bytearray(size.value)
        buffer = (ctypes.c_char * size.value).from_buffer(out)
        try:
            if lib.spng_decode_image(ctx, buffer, size.value, fmt, 0) != 0:
                return None
        finally:
            del buffer  # releases the export of ``out``
        return out, ihdr.height, ihdr.width, channels
    finally:
        lib.spng_ctx_free(ctx)


@dataclass
class ReadAhead:
    """A file read (and, for a plain PNG within the limits, decoded) ahead of its use."""

    path: str
    identity: tuple[int, ...] | None = None  # device, inode, size, mtime of what was read
    data: bytes | None = None
    pixels: tuple[bytearray, int, int, int] | None = None


_AHEAD: dict[str, tuple[ReadAhead, threading.Thread]] = {}
_AHEAD_LOCK = threading.Lock()


def _identity(info: os.stat_result) -> tuple[int, ...]:
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns


def read_ahead(path: str | os.PathLike[str]) -> None:
    """Start reading ``path`` in a background thread, and decoding it if it is a plain PNG;
    ``take(path)`` gets the result. Only regular files within the read-ahead limits are
    read; anything else is left to the normal path, which reports it."""
    key = os.path.abspath(path)
    ahead = ReadAhead(key)
    thread = threading.Thread(target=_read, args=(ahead,), daemon=True,
                              name="deepcream-read-ahead")
    with _AHEAD_LOCK:
        if key in _AHEAD:
            return
        _AHEAD[key] = (ahead, thread)
    thread.start()


def _read(ahead: ReadAhead) -> None:
    try:
        _read_file(ahead)
    except Exception:  # noqa: BLE001 - the normal path reads the file again, and reports
        ahead.data = ahead.pixels = None


def _read_file(ahead: ReadAhead) -> None:
    try:
        # O_NONBLOCK: a FIFO never blocks the open; it is then left alone (not regular).
        fd = os.open(ahead.path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or not 0 < info.st_size <= READ_AHEAD_MAX_BYTES:
        os.close(fd)  # a folder, FIFO or device, or too large: not read
        return
    with os.fdopen(fd, "rb") as fh:
        try:
            data = fh.read(READ_AHEAD_MAX_BYTES + 1)
        except OSError:
            return
    if len(data) != info.st_size:
        return  # changed while read: the normal path reads it again
    ahead.data, ahead.identity = data, _identity(info)
    if plain_png(data):
        width, height = png_size(data)
        if 0 < width * height <= READ_AHEAD_MAX_PIXELS:
            ahead.pixels = decode(data)


def take(path: str | os.PathLike[str]) -> ReadAhead | None:
    """What ``read_ahead(path)`` read (waiting for it), once, if the file is still the one
    that was read; else None."""
    with _AHEAD_LOCK:
        entry = _AHEAD.pop(os.path.abspath(path), None)
    if entry is None:
        return None
    ahead, thread = entry
    thread.join()
    try:
        same = ahead.identity is not None and _identity(os.stat(ahead.path)) == ahead.identity
    except OSError:
        same = False
    return ahead if same and ahead.data is not None else None
