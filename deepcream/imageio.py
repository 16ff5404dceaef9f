"""Image files in and out: the one bounded decoder, and fast atomic PNG encoding.

Every decode problem becomes one ``DecodeError`` line (an ``InputError``) whose ``reason``
the server maps to an HTTP status; outputs are written atomically.
"""

from __future__ import annotations

import io
import os
import re
import stat
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, PngImagePlugin, UnidentifiedImageError

from deepcream import pngdecode
from deepcream.errors import InputError
from deepcream.fsutil import atomic_path

# zlib level for PNG output. Measured on the 2604x2513 reference-size image (see
# docs/decensor.md): level 1 encodes several times faster than Pillow's default 6 for a
# file only slightly larger, and the save is a visible share of a decensor run.
PNG_COMPRESS_LEVEL = 1
# RGB/RGBA PNGs: every row SUB-filtered, deflated by ISA-L (the `isal` package, a core
# dependency): 3.7x faster than zlib for a ~15% larger file (docs/decensor.md).

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")

# The formats the decoder accepts, told apart by their first bytes (never by the file name):
# magic, offset, Pillow format name.
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
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
#: Default decode limits (the server passes its own settings): Pillow's own pixel limit,
#: and a file size far above any image of that many pixels.
DEFAULT_MAX_PIXELS = Image.MAX_IMAGE_PIXELS
DEFAULT_MAX_BYTES = 1 << 30
_EXIF_ORIENTATION = 0x0112
_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")

# Truncated files must fail, not decode half an image silently (Pillow's default, made sure).
ImageFile.LOAD_TRUNCATED_IMAGES = False
# Pillow's warnings on damaged data (corrupt EXIF, short TIFF reads, its own pixel-limit
# warning) would be extra stderr lines: the decoder's checks report what matters, once.
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

Source = str | os.PathLike[str] | bytes | Image.Image


def _describe(src: Source) -> str:
    if isinstance(src, bytes | bytearray):
        return "uploaded data"
    return str(src)


class DecodeError(InputError):
    """An image that cannot be used, with a one-line message naming it. ``reason`` says which
    kind of problem it is, so a caller can map it (the server: to an HTTP status):
    ``unreadable`` (no such file, a folder, a FIFO or device, no permission), ``empty``,
    ``unsupported`` (not one of ``FORMATS``), ``too_large`` (over ``max_pixels`` or
    ``max_bytes``), ``frames`` (animated or multi-page) or ``corrupt`` (truncated, short or
    damaged data)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def sniff_format(data: bytes) -> str | None:
    """The format named by the data's first bytes (one of ``FORMATS``), or None."""
    for magic, offset, fmt in _SIGNATURES:
        if data[offset:offset + len(magic)] == magic and (fmt != "WEBP" or data[:4] == b"RIFF"):
            return fmt
    return None


def _header_size(head: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG or GIF header: Pillow refuses 0-pixel images as
    "unidentified", and "zero-size image" is the more useful message."""
    if head[:8] == pngdecode.PNG_SIGNATURE and head[12:16] == b"IHDR" and len(head) >= 24:
        return pngdecode.png_size(head)
    if head[:4] == b"GIF8" and len(head) >= 10:
        return int.from_bytes(head[6:8], "little"), int.from_bytes(head[8:10], "little")
    return None


def _plain(text: str) -> str:
    """One line without Python object reprs (Pillow puts ``<_io.BytesIO object at 0x...>``
    into some messages)."""
    text = _OBJECT_REPR.sub("the data", text)
    return " ".join(text.split()).rstrip(".")


def read_source(src: str | os.PathLike[str] | bytes, *, name: str | None = None,
                max_bytes: int | None = DEFAULT_MAX_BYTES) -> bytes:
    """The bytes of an image file (or ``src`` itself if it is bytes), refusing folders, FIFOs,
    devices and files over ``max_bytes`` with a ``DecodeError`` (a FIFO is never read: it
    could block forever)."""
    what = name or _describe(src)
    if isinstance(src, bytes | bytearray):
        data = bytes(src)
    else:
        try:
            fd = os.open(src, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except FileNotFoundError:
            raise DecodeError(f"{what}: no such file", "unreadable") from None
        except IsADirectoryError:
            raise DecodeError(f"{what}: is a folder, not an image file", "unreadable") from None
        except PermissionError:
            raise DecodeError(f"{what}: permission denied", "unreadable") from None
        except OSError as exc:
            raise DecodeError(f"{what}: cannot open ({exc.strerror or exc})", "unreadable") from None
        _check_regular(fd, what, max_bytes)
        with os.fdopen(fd, "rb") as fh:
            try:
                data = fh.read() if max_bytes is None else fh.read(max_bytes + 1)
            except OSError as exc:
                raise DecodeError(f"{what}: cannot read ({exc.strerror or exc})",
                                  "unreadable") from None
    if not data:
        raise DecodeError(f"{what}: empty file", "empty")
    if max_bytes is not None and len(data) > max_bytes:
        raise DecodeError(f"{what}: more than {max_bytes:,} bytes; the limit is {max_bytes:,}",
                          "too_large")
    return data


def _check_regular(fd: int, what: str, max_bytes: int | None) -> None:
    """Nothing for a regular file within ``max_bytes``; else closes ``fd`` and raises."""
    info = os.fstat(fd)
    problem = None
    if stat.S_ISDIR(info.st_mode):
        problem = DecodeError(f"{what}: is a folder, not an image file", "unreadable")
    elif not stat.S_ISREG(info.st_mode):
        problem = DecodeError(f"{what}: not a regular file (a FIFO, device or socket); give an "
                              "image file", "unreadable")
    elif max_bytes is not None and info.st_size > max_bytes:
        problem = DecodeError(f"{what}: file is {info.st_size:,} bytes; the limit is "
                              f"{max_bytes:,}", "too_large")
    if problem is not None:
        os.close(fd)
        raise problem


def _png_data_length(data: bytes) -> int | None:
    """The byte count of a PNG's filtered image data per its IHDR (rows with their filter
    bytes, all seven Adam7 passes if interlaced), or None if IHDR is unusable."""
    if len(data) < 33:
        return None
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    depth, colour, interlace = data[24], data[25], data[28]
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour)
    if channels is None:
        return None
    bits = channels * depth

    def rows(w: int, h: int) -> int:
        return 0 if w == 0 or h == 0 else h * (1 + (w * bits + 7) // 8)

    if interlace == 0:
        return rows(width, height)
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
              (1, 0, 2, 2), (0, 1, 1, 2))
    return sum(rows((width - x0 + dx - 1) // dx if width > x0 else 0,
                    (height - y0 + dy - 1) // dy if height > y0 else 0)
               for x0, y0, dx, dy in passes)


def _png_rows_missing(data: bytes) -> str | None:
    """Why a PNG's IDAT data is shorter than its IHDR says, or None when it is complete.

    Pillow decodes a short IDAT stream without complaint and leaves the missing rows
    black, so the stream is inflated here (in bounded steps, nothing kept) and counted."""
    expected = _png_data_length(data)
    if expected is None:
        return None
    inflater = zlib.decompressobj()
    got, pos = 0, 8
    try:
        while pos + 8 <= len(data) and got < expected:
            length, kind = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8]
            if kind == b"IDAT":
                piece = data[pos + 8:pos + 8 + length]
                while piece and got < expected:
                    got += len(inflater.decompress(piece, 1 << 20))
                    piece = inflater.unconsumed_tail
            elif kind == b"IEND":
                break
            pos += 12 + length
    except zlib.error as exc:
        return f"damaged image data: {exc}"
    if got >= expected:
        return None
    return f"image data ends early: {got:,} of {expected:,} bytes ({100 * got // expected}%)"


def _jpeg_data_problem(data: bytes) -> str | None:
    """libjpeg's warning about a JPEG's image data (data ending before the image does, a bad
    Huffman code...), or None. Pillow turns these warnings off and fills what is missing;
    libjpeg-turbo through ``simplejpeg`` with ``strict`` raises them. Extraneous bytes
    before a marker (common in camera files, nothing missing) are not a problem."""
    try:
        import simplejpeg
    except ImportError:
        return None
    try:
        colorspace = simplejpeg.decode_jpeg_header(data)[2]
        simplejpeg.decode_jpeg(data, colorspace={"Gray": "GRAY", "CMYK": "CMYK", "YCCK": "CMYK"}
                               .get(colorspace, "RGB"), fastdct=True, fastupsample=True,
                               strict=True)
    except ValueError as exc:
        message = _plain(str(exc)) or "unreadable"
        return None if "extraneous bytes" in message else message
    return None


def _silence_libtiff() -> None:
    """Turn off libtiff's own message printing (``tempfile.tif: Using code not yet in
    table.`` straight to stderr, below Python's warnings): the decode error that follows is
    the one line reported. Pillow checks libtiff's return codes, not its messages. Linux
    (reads /proc/self/maps for the libtiff Pillow loaded); elsewhere a no-op."""
    global _LIBTIFF_SILENCED
    if _LIBTIFF_SILENCED:
        return
    _LIBTIFF_SILENCED = True
    try:
        import ctypes

        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "/libtiff" in line}
        for path in paths:
            lib = ctypes.CDLL(path)
            for name in ("TIFFSetErrorHandler", "TIFFSetWarningHandler"):
                setter = getattr(lib, name)
                setter.restype = ctypes.c_void_p
                setter.argtypes = [ctypes.c_void_p]
                setter(None)
    except (OSError, AttributeError):
        pass


_LIBTIFF_SILENCED = False


def _open_checked(data: bytes, what: str, max_pixels: int | None) -> tuple[Image.Image, str]:
    """Pillow's lazy open of ``data`` after the format, size and frame checks (nothing
    decoded yet): (image, format)."""
    fmt = sniff_format(data)
    if fmt is None:
        raise DecodeError(f"{what}: not a supported image ({', '.join(FORMATS)}; the format is "
                          "read from the content, not the file name)", "unsupported")
    try:
        img = Image.open(io.BytesIO(data), formats=[fmt])
    except UnidentifiedImageError:
        size = _header_size(data[:32])
        if size is not None and 0 in size:
            raise DecodeError(f"{what}: zero-size image ({size[0]}x{size[1]})", "corrupt") from None
        raise DecodeError(f"{what}: corrupt or truncated {fmt} image (unreadable header)",
                          "corrupt") from None
    except Image.DecompressionBombError:
        raise DecodeError(f"{what}: image too large to decode safely", "too_large") from None
    width, height = img.size
    if width <= 0 or height <= 0:
        raise DecodeError(f"{what}: zero-size image ({width}x{height})", "corrupt")
    if max_pixels is not None and width * height > max_pixels:
        raise DecodeError(f"{what}: {width}x{height} = {width * height:,} pixels; the limit is "
                          f"{max_pixels:,}", "too_large")
    if fmt == "TIFF":
        _silence_libtiff()
    frames = getattr(img, "n_frames", 1)
    if frames > 1:
        kind = "multi-page" if fmt == "TIFF" else "animated"
        raise DecodeError(f"{what}: {kind} {fmt} with {frames} frames; deepcream decensors "
                          "still images only (save the frame you want as a PNG)", "frames")
    return img, fmt


def _decode(data: bytes, what: str, max_pixels: int | None, *, pixels: bool,
            ahead: pngdecode.ReadAhead | None = None) -> Image.Image | Pixels:
    """The one decoder behind ``load_image`` and ``load_pixels`` (see ``load_pixels``);
    ``ahead``: what ``pngdecode.read_ahead`` read and decoded of ``data``."""
    try:
        img, fmt = _open_checked(data, what, max_pixels)
        if pixels and pngdecode.plain_png(data):
            decoded = _spng_pixels(data, img, ahead.pixels if ahead is not None else None)
            if decoded is not None:
                return decoded
        # Short data: Pillow decodes both without complaint (missing PNG rows black, missing
        # JPEG blocks flat), so they are checked here, before Pillow allocates the image.
        missing = _png_rows_missing(data) if fmt == "PNG" else \
            _jpeg_data_problem(data) if fmt == "JPEG" else None
        if missing is not None:
            raise DecodeError(f"{what}: corrupt or truncated {fmt} image ({missing})", "corrupt")
        img.load()
        img = _upright(img)
    except DecodeError:
        raise
    except (Image.DecompressionBombError, MemoryError):
        raise DecodeError(f"{what}: image too large to decode safely", "too_large") from None
    except Exception as exc:  # noqa: BLE001 - Pillow's plugins raise assorted types on bad data
        detail = _plain(str(exc)) or type(exc).__name__
        raise DecodeError(f"{what}: corrupt or truncated {sniff_format(data)} image ({detail})",
                          "corrupt") from None
    if not pixels:
        return img
    rgb, alpha = to_rgb_alpha(img)
    return Pixels(rgb, alpha)


def _spng_pixels(data: bytes, head: Image.Image,
                 ahead: tuple[bytearray, int, int, int] | None = None) -> Pixels | None:
    """libspng's decode of a plain 8-bit RGB/RGBA PNG (``ahead``: already decoded by
    ``pngdecode``), or None (no ``pyspng``, or libspng refused the data: Pillow then decodes
    it and the checks after it report the problem). libspng runs without the GIL where
    ``pngdecode`` can call it, else through ``pyspng``, which holds the GIL."""
    if head.mode not in ("RGB", "RGBA"):
        return None
    if ahead is None and pngdecode.available():
        ahead = pngdecode.decode(data)
        if ahead is None:
            return None  # refused by libspng: pyspng would refuse it too
    if ahead is not None:
        rows, height, width, channels = ahead
        decoded = np.frombuffer(rows, np.uint8).reshape(height, width, channels)
    else:
        try:
            import pyspng

            decoded = pyspng.load(data)
        except Exception:  # noqa: BLE001 - ImportError or any decoder complaint
            return None
    if decoded.dtype != np.uint8 or decoded.shape != (head.height, head.width, len(head.mode)):
        return None
    if decoded.shape[2] == 3:
        return Pixels(decoded)
    return Pixels(np.ascontiguousarray(decoded[..., :3]), decoded[..., 3].copy())


def _upright(img: Image.Image) -> Image.Image:
    """``img`` turned as its EXIF orientation says (as viewers show it), without the tag."""
    try:
        orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - unreadable EXIF: show the pixels as stored
        return img
    if orientation not in range(2, 9):
        return img
    return ImageOps.exif_transpose(img)


def load_image(src: Source, *, name: str | None = None,
               max_pixels: int | None = DEFAULT_MAX_PIXELS,
               max_bytes: int | None = DEFAULT_MAX_BYTES) -> Image.Image:
    """Open and fully decode an image from a path, bytes or a PIL image (see ``load_pixels``
    for the checks); any mode, as Pillow gives it, turned upright."""
    if isinstance(src, Image.Image):
        if src.width == 0 or src.height == 0:
            raise DecodeError(f"{name or 'image'}: zero-size image ({src.width}x{src.height})",
                              "corrupt")
        return src
    what = name or _describe(src)
    return _decode(read_source(src, name=what, max_bytes=max_bytes), what, max_pixels,
                   pixels=False)  # type: ignore[return-value]


def load_pixels(src: Source | Pixels, *, name: str | None = None,
                max_pixels: int | None = DEFAULT_MAX_PIXELS,
                max_bytes: int | None = DEFAULT_MAX_BYTES) -> Pixels:
    """Decode an image (a path, bytes, a PIL image or ``Pixels``) to new ``Pixels`` the
    caller owns. The one decoder of the CLI, the Python API and the server.

    Raises ``DecodeError`` (one line naming ``name`` or the path) for: no such file, a
    folder or special file, an empty file, a format other than ``FORMATS`` (detected from
    the content), more than ``max_pixels`` pixels (checked from the header, before decoding)
    or ``max_bytes`` bytes, an animated or multi-page image, and truncated, short or corrupt
    data (a PNG whose image data holds fewer rows than its header declares included).
    An EXIF orientation is applied, so the pixels are the image as viewers show it.

    8-bit RGB/RGBA PNGs (what paint tools and deepcream write) are decoded by libspng
    (``pyspng``'s, called without the GIL by ``pngdecode``) into one array: on the 2604x2513
    benchmark image 40% less time than Pillow's decoder plus the copy out of Pillow's 4-byte
    pixels. A path that ``pngdecode.read_ahead`` read (the CLI's one input) is taken from
    there, if the file is still the one read."""
    if isinstance(src, Pixels):
        return Pixels(src.rgb.copy(), None if src.alpha is None else src.alpha.copy())
    if isinstance(src, Image.Image):
        rgb, alpha = to_rgb_alpha(load_image(src, name=name))
        return Pixels(rgb, alpha)
    what = name or _describe(src)
    ahead = None if isinstance(src, bytes | bytearray) else pngdecode.take(src)
    if ahead is not None and ahead.data is not None and (
            max_bytes is None or len(ahead.data) <= max_bytes):
        data = ahead.data
    else:
        ahead, data = None, read_source(src, name=what, max_bytes=max_bytes)
    return _decode(data, what, max_pixels, pixels=True,
                   ahead=ahead)  # type: ignore[return-value]


# Rows per band when copying between PIL images and numpy arrays: ~1 MB of PIL's 4-byte pixels.
_BAND_BYTES = 1 << 20


def _bands(img: Image.Image):
    """``(y, band)`` row bands of ``img`` as small PIL copies (``_BAND_BYTES`` each)."""
    width, height = img.size
    rows = max(1, _BAND_BYTES // (4 * width))
    for y in range(0, height, rows):
        yield y, img.crop((0, y, width, min(y + rows, height)))


def pil_to_array(img: Image.Image, rawmode: str, channels: int) -> np.ndarray:
    """A new writable uint8 [H, W, channels] array of ``img`` packed as ``rawmode`` (e.g.
    "RGB", "BGR", "BGRA"). Unlike ``np.asarray(img)``, which goes through ``tobytes()`` and
    briefly holds two full-size copies besides PIL's own, this copies band by band into one
    array."""
    width, height = img.size
    out = np.empty((height, width, channels), np.uint8)
    for y, band in _bands(img):
        out[y:y + band.height] = np.frombuffer(band.tobytes("raw", rawmode), np.uint8).reshape(
            band.height, width, channels)
    return out


def to_rgb_alpha(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """uint8 RGB [H, W, 3] and the alpha channel (uint8 [H, W]) or None.

    Palette images keep their transparency as alpha, grayscale becomes RGB, 16-bit and float
    grayscale are scaled to 8 bit (Pillow's own conversion would clip them), CMYK/YCbCr/LAB
    convert through Pillow. The arrays are always new, writable and owned by the caller
    (never views of ``img`` or of anything the caller holds).
    """
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(img)
        if mode == "F" or (mode == "I" and values.max(initial=0) <= 1 and values.dtype.kind == "f"):
            gray = np.clip(values * 255.0 + 0.5, 0, 255).astype(np.uint8)
        else:
            # 16-bit data: keep the top 8 bits (0..65535 -> 0..255).
            gray = np.clip(values.astype(np.int64) >> 8, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2), None
    has_alpha = mode in ("RGBA", "LA", "La", "RGBa", "PA") or "transparency" in img.info
    if mode != "RGBA" and has_alpha:
        # Palette/gray transparency (tRNS) and premultiplied modes become real alpha.
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        width, height = img.size
        rgb = np.empty((height, width, 3), np.uint8)
        alpha = np.empty((height, width), np.uint8)
        for y, band in _bands(img):
            arr = np.frombuffer(band.tobytes(), np.uint8).reshape(band.height, width, 4)
            rgb[y:y + band.height] = arr[..., :3]
            alpha[y:y + band.height] = arr[..., 3]
        return rgb, alpha
    if img.mode != "RGB":
        img = img.convert("RGB")
    return pil_to_array(img, "RGB", 3), None


def from_rgb_alpha(rgb: np.ndarray, alpha: np.ndarray | None) -> Image.Image:
    """The inverse of ``to_rgb_alpha``: an RGB or RGBA PIL image (one copy into PIL, no
    full-size temporary: alpha is put in place)."""
    img = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    if alpha is not None:
        img.putalpha(Image.fromarray(np.ascontiguousarray(alpha), "L"))
    return img


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (len(payload).to_bytes(4, "big") + kind + payload
            + (zlib.crc32(kind + payload) & 0xFFFFFFFF).to_bytes(4, "big"))


def _text_chunks(text: dict[str, str] | None) -> bytes:
    return b"".join(
        _png_chunk(b"tEXt", key.encode("latin-1", "replace")[:79] + b"\0"
                   + value.encode("latin-1", "replace"))
        for key, value in (text or {}).items())


@dataclass(frozen=True)
class Pixels:
    """An image as the pipeline holds it: uint8 ``rgb`` [H, W, 3] and ``alpha`` [H, W] or
    None. Encoding from these skips PIL's 4-byte-per-pixel copy of the whole image."""

    rgb: np.ndarray
    alpha: np.ndarray | None = None

    @property
    def size(self) -> tuple[int, int]:
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])

    def to_image(self) -> Image.Image:
        return from_rgb_alpha(self.rgb, self.alpha)


_ZLIB_HEADER = b"\x78\x01"  # RFC 1950: deflate, 32 KiB window, no preset dictionary


def adler32_combine(adler1: int, adler2: int, length2: int) -> int:
    """Adler-32 of A + B from adler32(A), adler32(B) and len(B) (zlib's adler32_combine,
    which Python's zlib does not expose)."""
    base = 65521
    rem = length2 % base
    sum1 = adler1 & 0xFFFF
    sum2 = (rem * sum1) % base
    sum1 += (adler2 & 0xFFFF) + base - 1
    sum2 += ((adler1 >> 16) & 0xFFFF) + ((adler2 >> 16) & 0xFFFF) + base - rem
    sum1 %= base
    sum2 %= base
    return (sum2 << 16) | sum1


class _DeflatedRows:
    """SUB-filtered PNG rows through one raw ISA-L deflate stream, with their Adler-32."""

    def __init__(self, width: int, channels: int, level: int) -> None:
        from isal import isal_zlib

        self._zlib = isal_zlib
        # ISA-L has levels 0..3; zlib-style levels above 3 map to its best (3).
        self._deflate = isal_zlib.compressobj(min(max(level, 0), 3), isal_zlib.DEFLATED, -15)
        self.stride, self.channels = width * channels, channels
        self.adler, self.length = 1, 0
        self.pieces: list[bytes] = []
        self._filtered = np.empty(0, np.uint8)

    def write(self, rows: np.ndarray) -> None:
        c = self.channels
        if self._filtered.shape != (len(rows), self.stride + 1):
            self._filtered = np.empty((len(rows), self.stride + 1), np.uint8)
            self._filtered[:, 0] = 1  # SUB
        filtered = self._filtered
        filtered[:, 1:1 + c] = rows[:, :c]
        np.subtract(rows[:, c:], rows[:, :-c], out=filtered[:, 1 + c:])
        self.adler = self._zlib.adler32(filtered, self.adler)
        self.length += filtered.size
        data = self._deflate.compress(filtered)
        if data:
            self.pieces.append(data)

    def end(self, last: bool) -> list[bytes]:
        """The compressed pieces; ``last`` ends the deflate stream, else it is byte-aligned
        (sync flush) so another raw stream can follow."""
        flush = self._zlib.Z_FINISH if last else self._zlib.Z_SYNC_FLUSH
        return self.pieces + [self._deflate.flush(flush)]


class PngRowWriter:
    """Writes an 8-bit RGB/RGBA PNG row band by row band, deflated by ISA-L.

    Why not a library encoder: libpng (OpenCV, imagecodecs) and Pillow spend ~75% of an
    encode in zlib's deflate, and none of them can use another deflate. ISA-L's level 1 is
    3.7x faster than zlib's on these images (docs/decensor.md). The PNG around it is
    three chunk types and one row filter: every row uses the SUB filter (filter byte 1,
    each byte minus the byte one pixel to the left), computed per band with numpy and
    streamed into the compressor, so no full-size filtered copy exists.

    Rows are written top to bottom (``write``/``write_pixels``), so a caller can encode the
    rows that are final while others are still being computed. With ``tail_from`` the rows
    from there to the bottom go into a second, independent deflate stream that may be
    written first (``write_tail``: e.g. rows below every region, final from the start);
    the streams are joined as pigz does (sync flush, then the second raw stream, then the
    Adler-32 of all rows).
    """

    def __init__(self, width: int, height: int, alpha: bool, *,
                 text: dict[str, str] | None = None,
                 compress_level: int = PNG_COMPRESS_LEVEL, tail_from: int | None = None) -> None:
        self.width, self.height, self.channels = width, height, 4 if alpha else 3
        self.rows_written = 0
        header = (width.to_bytes(4, "big") + height.to_bytes(4, "big")
                  + bytes([8, 6 if alpha else 2, 0, 0, 0]))  # 8 bit, RGB(A), no interlace
        self._start = [pngdecode.PNG_SIGNATURE, _png_chunk(b"IHDR", header), _text_chunks(text)]
        self._head = _DeflatedRows(width, self.channels, int(compress_level))
        self.tail_from = height if tail_from is None else min(max(int(tail_from), 0), height)
        self._tail = (_DeflatedRows(width, self.channels, int(compress_level))
                      if self.tail_from < height else None)
        self._tail_done = self._tail is None

    def write(self, rows: np.ndarray) -> None:
        """The next rows above ``tail_from``: uint8 [n, width * channels], RGB(A)."""
        if self.rows_written + len(rows) > self.tail_from:
            raise ValueError("rows past tail_from go through write_tail")
        self._head.write(rows)
        self.rows_written += len(rows)

    @property
    def band_rows(self) -> int:
        """Rows per band (~1 MB): the pieces the compressor is fed."""
        return max(1, _BAND_BYTES // (4 * self.width))

    def writable_until(self, stop: int) -> int:
        """How far ``write_pixels(pixels, stop)`` writes: ``stop`` rounded down to a whole
        band (or ``tail_from``). The compressor is always fed the same bands, so the file's
        bytes do not depend on how far the final rows had got at each call (e.g. which crop
        of an image finished first)."""
        stop = min(stop, self.tail_from)
        if stop < self.tail_from:
            stop -= stop % self.band_rows
        return max(stop, self.rows_written)

    def _bands(self, pixels: Pixels, start: int, stop: int):
        band = self.band_rows
        for y in range(start, stop, band):
            y2 = min(y + band, stop)
            rgb = pixels.rgb[y:y2]
            if pixels.alpha is None:
                yield np.ascontiguousarray(rgb).reshape(y2 - y, -1)
            else:
                rows = np.empty(rgb.shape[:2] + (4,), np.uint8)
                rows[..., :3] = rgb
                rows[..., 3] = pixels.alpha[y:y2]
                yield rows.reshape(y2 - y, -1)

    def write_pixels(self, pixels: Pixels, stop: int) -> None:
        """Rows ``rows_written`` .. ``writable_until(stop)`` of ``pixels``, in ~1 MB bands."""
        for rows in self._bands(pixels, self.rows_written, self.writable_until(stop)):
            self.write(rows)

    def write_tail(self, pixels: Pixels) -> None:
        """Rows ``tail_from`` .. the bottom of ``pixels``, into the second stream."""
        if self._tail is None or self._tail_done:
            return
        for rows in self._bands(pixels, self.tail_from, self.height):
            self._tail.write(rows)
        self._tail_done = True

    def close(self) -> list[bytes]:
        """The whole file as consecutive pieces."""
        if self.rows_written != self.tail_from or not self._tail_done:
            raise ValueError(f"PNG has {self.height} rows, not all written")
        pieces = [_ZLIB_HEADER] + self._head.end(last=self._tail is None)
        adler = self._head.adler
        if self._tail is not None:
            pieces += self._tail.end(last=True)
            adler = adler32_combine(adler, self._tail.adler, self._tail.length)
        pieces.append(adler.to_bytes(4, "big"))
        idat = [_png_chunk(b"IDAT", piece) for piece in pieces if piece]
        return self._start + idat + [_png_chunk(b"IEND", b"")]


def _encode_parts(img: Image.Image | Pixels, text: dict[str, str] | None,
                  compress_level: int) -> list[bytes]:
    """The PNG file as consecutive pieces (written or joined by the callers), so the encoded
    data is never copied whole. RGB/RGBA go through ``PngRowWriter`` (ISA-L deflate); other
    modes (grey masks, ...) through Pillow."""
    if isinstance(img, Image.Image) and img.mode not in ("RGB", "RGBA"):
        buf = io.BytesIO()
        info = PngImagePlugin.PngInfo()
        for key, value in (text or {}).items():
            info.add_text(key, value)
        img.save(buf, format="PNG", compress_level=compress_level, pnginfo=info)
        return [buf.getvalue()]
    width, height = img.size
    alpha = img.alpha is not None if isinstance(img, Pixels) else img.mode == "RGBA"
    writer = PngRowWriter(width, height, alpha, text=text, compress_level=compress_level)
    if isinstance(img, Pixels):
        writer.write_pixels(img, height)
    else:
        for _y, band in _bands(img):
            writer.write(np.frombuffer(band.tobytes("raw", img.mode), np.uint8)
                         .reshape(band.height, -1))
    return writer.close()


def encode_png(img: Image.Image | Pixels, *, text: dict[str, str] | None = None,
               compress_level: int = PNG_COMPRESS_LEVEL) -> bytes:
    """PNG bytes; ``text`` goes into tEXt chunks (Latin-1)."""
    return b"".join(_encode_parts(img, text, compress_level))


def save_png(img: Image.Image | Pixels, path: str | os.PathLike[str], *,
             text: dict[str, str] | None = None, compress_level: int = PNG_COMPRESS_LEVEL,
             overwrite: bool = True) -> Path:
    """Write ``img`` as PNG atomically (no partial file on any failure)."""
    return write_file(_encode_parts(img, text, compress_level), path, overwrite=overwrite)


def write_file(parts: list[bytes | memoryview] | bytes, path: str | os.PathLike[str], *,
               overwrite: bool = True) -> Path:
    """Write already encoded data (bytes, or pieces written in order) atomically."""
    path = Path(path)
    if isinstance(parts, bytes | bytearray):
        parts = [parts]
    try:
        with atomic_path(path, overwrite=overwrite) as tmp, tmp.open("wb") as fh:
            for part in parts:
                fh.write(part)
    except FileExistsError:
        raise InputError(f"{path}: already exists") from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise InputError(f"{path}: cannot write ({reason})") from None
    return path
