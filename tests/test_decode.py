"""The one image decoder (imageio.load_pixels / load_image, and the server's decode_pixels):
short data is an error, multi-frame images are refused, EXIF orientation is applied, and
every failure is one line of a known kind."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepcream import imageio, pngdecode
from deepcream.imageio import DecodeError


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def short_png(width: int = 60, height: int = 30, colour: int = 2, rows: int = 10) -> bytes:
    """A well-formed PNG (valid CRCs, IEND) whose IDAT holds only ``rows`` of its rows."""
    channels = {2: 3, 3: 1, 0: 1}[colour]
    raw = b"".join(b"\0" + bytes([1]) * (width * channels) for _ in range(rows))
    chunks = _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0))
    if colour == 3:
        chunks += _chunk(b"PLTE", b"\0\0\0\xff\0\0")
    chunks += _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("colour", [2, 3, 0], ids=["rgb", "palette", "gray"])
def test_png_with_a_third_of_its_rows_is_an_error(colour: int) -> None:
    """Pillow alone decodes this with black rows (exit 0 before the fix)."""
    data = short_png(colour=colour)
    with pytest.raises(DecodeError, match=r"x\.png: corrupt or truncated PNG image \(image data "
                       r"ends early: .* \(33%\)\)") as got:
        imageio.load_pixels(data, name="x.png")
    assert got.value.reason == "corrupt"
    with pytest.raises(DecodeError):
        imageio.load_image(data)


def test_complete_interlaced_png_decodes_and_a_cut_one_does_not() -> None:
    """The row count covers Adam7's seven passes: a full interlaced PNG passes the check."""
    import cv2

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (37, 23, 3), np.uint8)
    data = bytearray(cv2.imencode(".png", rgb)[1].tobytes())
    assert imageio._png_data_length(bytes(data)) == 37 * (1 + 23 * 3)
    # Re-encode as Adam7 with Pillow's decoder as the judge of the pixels.
    width, height = 23, 37
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
              (0, 1, 1, 2))
    raw = b""
    for x0, y0, dx, dy in passes:
        sub = rgb[y0::dy, x0::dx]
        if sub.size:
            raw += b"".join(b"\0" + row.tobytes() for row in sub)
    ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 1))
    png = b"\x89PNG\r\n\x1a\n" + ihdr + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")
    assert np.array_equal(imageio.load_pixels(png).rgb, rgb)
    assert imageio._png_rows_missing(png) is None
    cut = b"\x89PNG\r\n\x1a\n" + ihdr + _chunk(b"IDAT", zlib.compress(raw[: len(raw) * 9 // 10]))
    cut += _chunk(b"IEND", b"")
    assert "image data ends early" in imageio._png_rows_missing(cut)
    with pytest.raises(DecodeError, match="corrupt or truncated PNG image"):
        imageio.load_pixels(cut)


def _frames(fmt: str) -> bytes:
    imgs = [Image.new("RGB", (16, 12), (i * 60, 0, 0)) for i in range(3)]
    if fmt == "GIF":
        imgs = [i.convert("P") for i in imgs]
    return _encode(imgs[0], fmt, save_all=True, append_images=imgs[1:])


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP", "TIFF"])
def test_multi_frame_images_are_refused_with_the_frame_count(fmt: str, tmp_path: Path) -> None:
    path = tmp_path / f"anim.{fmt.lower()}"
    path.write_bytes(_frames(fmt))
    with pytest.raises(DecodeError, match=rf"anim\.{fmt.lower()}: (animated|multi-page) {fmt} "
                       r"with 3 frames; deepcream decensors still images only") as got:
        imageio.load_pixels(path)
    assert got.value.reason == "frames"


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF", "WEBP"])
def test_exif_orientation_is_applied(orientation: int, fmt: str) -> None:
    """The decoded pixels are the image as a viewer shows it (Pillow's exif_transpose of the
    stored pixels); lossless formats so the pixels can be compared exactly."""
    rng = np.random.default_rng(orientation)
    stored = Image.fromarray(rng.integers(0, 255, (10, 16, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    kw = {"quality": 100} if fmt == "JPEG" else {"lossless": True} if fmt == "WEBP" else {}
    data = _encode(stored, fmt, exif=exif, **kw)
    # The same pixels without the tag, as stored (JPEG: same encoder, same quality).
    plain = Image.open(io.BytesIO(_encode(stored, fmt, **kw))).convert("RGB")
    turn = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
            4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
            6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
            8: Image.Transpose.ROTATE_90}.get(orientation)
    shown = np.asarray(plain.transpose(turn) if turn is not None else plain)
    got = imageio.load_pixels(data)
    assert np.array_equal(got.rgb, shown)
    assert got.size == ((10, 16) if orientation >= 5 else (16, 10))


def test_png_exif_orientation_skips_the_libspng_path() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _encode(Image.new("RGB", (16, 10), (1, 2, 3)), "PNG", exif=exif)
    assert not pngdecode.plain_png(data)
    assert imageio.load_pixels(data).size == (10, 16)


def test_fifo_and_folder_are_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(DecodeError, match="pipe.png: not a regular file") as got:
        imageio.load_pixels(fifo)
    assert got.value.reason == "unreadable"
    with pytest.raises(DecodeError, match="is a folder"):
        imageio.load_pixels(tmp_path)
    with pytest.raises(DecodeError, match="no such file"):
        imageio.load_pixels(tmp_path / "missing.png")


def test_limits_are_parameters() -> None:
    data = _encode(Image.new("RGB", (100, 50)), "PNG")
    assert imageio.load_pixels(data, max_pixels=5000).size == (100, 50)
    with pytest.raises(DecodeError, match=r"100x50 = 5,000 pixels; the limit is 4,999") as got:
        imageio.load_pixels(data, max_pixels=4999)
    assert got.value.reason == "too_large"
    with pytest.raises(DecodeError, match="the limit is 10") as got:
        imageio.load_pixels(data, max_bytes=10)
    assert got.value.reason == "too_large"


def test_messages_never_hold_object_reprs() -> None:
    cases = [b"II*\x00" + b"\xff" * 40, b"GIF89a" + b"\x01" * 20, b"BM" + b"\0" * 60,
             b"RIFF\x10\0\0\0WEBPVP8 " + b"\0" * 20, b"\xff\xd8\xff" + b"\0" * 30]
    for data in cases:
        with pytest.raises(DecodeError) as got:
            imageio.load_pixels(data)
        message = str(got.value)
        assert " object at 0x" not in message and "\n" not in message, message


def test_server_maps_decode_reasons_to_statuses() -> None:
    from deepcream.server.errors import ApiError
    from deepcream.server.limits import decode_pixels

    for data, status in [(b"", 400), (b"hello", 415), (short_png(), 400), (_frames("GIF"), 422),
                         (_encode(Image.new("RGB", (100, 50)), "PNG"), 413)]:
        with pytest.raises(ApiError) as got:
            decode_pixels(data, field="image", max_pixels=4000)
        assert got.value.status == status and got.value.message.startswith("'image': ")


def _jpeg(width: int = 64, height: int = 48) -> bytes:
    rng = np.random.default_rng(1)
    return _encode(Image.fromarray(rng.integers(0, 255, (height, width, 3), np.uint8)), "JPEG",
                   quality=90)


def test_jpeg_whose_data_stops_before_the_image_does_is_an_error() -> None:
    """The header declares more rows than the data holds, and the file still ends with EOI:
    Pillow fills the missing blocks with flat color and reports nothing."""
    data = bytearray(_jpeg())
    at = data.index(b"\xff\xc0")
    data[at + 5:at + 7] = struct.pack(">H", 480)  # 48 rows of data, 480 declared
    Image.open(io.BytesIO(bytes(data))).load()  # Pillow alone: no error
    with pytest.raises(DecodeError, match=r"corrupt or truncated JPEG image \(Corrupt JPEG "
                       r"data: premature end of data segment\)") as got:
        imageio.load_pixels(bytes(data))
    assert got.value.reason == "corrupt"


def test_jpeg_with_extraneous_bytes_before_eoi_still_decodes() -> None:
    """A harmless libjpeg warning (common in camera files): nothing is missing."""
    data = _jpeg()
    padded = data[:-2] + b"\0\0\0" + data[-2:]
    assert np.array_equal(imageio.load_pixels(padded).rgb, imageio.load_pixels(data).rgb)


def test_libtiff_prints_nothing_on_a_corrupt_tiff(capfd) -> None:
    """libtiff's own messages go straight to file descriptor 2, below Python's warnings."""
    rng = np.random.default_rng(2)
    data = _encode(Image.fromarray(rng.integers(0, 255, (48, 64, 3), np.uint8)), "TIFF",
                   compression="tiff_lzw")
    at = len(data) // 3
    bad = data[:at] + bytes(b ^ 0xA5 for b in data[at:at + 48]) + data[at + 48:]
    capfd.readouterr()
    with pytest.raises(DecodeError, match="corrupt or truncated TIFF image"):
        imageio.load_pixels(bad)
    assert capfd.readouterr().err == ""


def _plain_png(rgba: np.ndarray) -> bytes:
    return _encode(Image.fromarray(rgba), "PNG")


@pytest.mark.parametrize("channels", [3, 4])
def test_libspng_without_the_gil_decodes_as_pyspng(channels: int) -> None:
    """``pngdecode.decode`` calls the libspng inside pyspng's extension through ctypes (so
    other threads run while it decodes): the same pixels as pyspng, and None for data
    libspng refuses, which then goes to Pillow and its error."""
    pyspng = pytest.importorskip("pyspng")
    assert pngdecode.available()
    rng = np.random.default_rng(5)
    data = _plain_png(rng.integers(0, 256, (37, 53, channels), dtype=np.uint8))
    rows, height, width, got_channels = pngdecode.decode(data)
    got = np.frombuffer(rows, np.uint8).reshape(height, width, got_channels)
    assert np.array_equal(got, pyspng.load(data))
    cut = data[:len(data) // 2]  # the image data stops half way
    assert pngdecode.decode(cut) is None
    with pytest.raises(DecodeError, match="corrupt"):
        imageio.load_pixels(cut)


def test_read_ahead_limits_are_the_decoders_defaults() -> None:
    assert pngdecode.READ_AHEAD_MAX_PIXELS == imageio.DEFAULT_MAX_PIXELS
    assert pngdecode.READ_AHEAD_MAX_BYTES == imageio.DEFAULT_MAX_BYTES


def test_a_file_read_ahead_decodes_as_read_now(tmp_path: Path, monkeypatch) -> None:
    """What the CLI reads and decodes ahead (``pngdecode.read_ahead``) is what
    ``load_pixels`` gives, taken once; a file changed since is read again."""
    rng = np.random.default_rng(6)
    first, second = (rng.integers(0, 256, (20, 30, 4), dtype=np.uint8) for _ in range(2))
    path = tmp_path / "a.png"
    path.write_bytes(_plain_png(first))
    taken = []
    real_take = pngdecode.take
    monkeypatch.setattr(pngdecode, "take", lambda p: taken.append(real_take(p)) or taken[-1])
    pngdecode.read_ahead(path)
    got = imageio.load_pixels(path)
    assert taken[-1] is not None and taken[-1].pixels is not None  # decoded ahead
    assert np.array_equal(got.rgb, first[..., :3]) and np.array_equal(got.alpha, first[..., 3])
    got.rgb[:] = 0  # the caller owns the pixels
    assert np.array_equal(imageio.load_pixels(path).rgb, first[..., :3])  # read again
    assert taken[-1] is None  # (taken once)

    pngdecode.read_ahead(path)
    pngdecode._AHEAD[str(path.absolute())][1].join()  # read; then the file changes
    path.write_bytes(_plain_png(second))
    os.utime(path, ns=(1, 1))  # (another time than the first file's, whatever the clock)
    got = imageio.load_pixels(path)
    assert taken[-1] is None  # the read-ahead was of another file: dropped
    assert np.array_equal(got.rgb, second[..., :3])


def test_read_ahead_leaves_fifos_folders_and_other_images_to_the_decoder(
        tmp_path: Path, monkeypatch) -> None:
    import threading

    raised = []  # the read-ahead thread never dies with an exception (a traceback on stderr)
    monkeypatch.setattr(threading, "excepthook", raised.append)
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    pngdecode.read_ahead(fifo)  # never blocks: the FIFO is not read
    assert pngdecode.take(fifo) is None
    with pytest.raises(DecodeError, match="pipe.png: not a regular file"):
        imageio.load_pixels(fifo)
    pngdecode.read_ahead(tmp_path)
    assert pngdecode.take(tmp_path) is None
    pngdecode.read_ahead(tmp_path)
    with pytest.raises(DecodeError, match="is a folder"):
        imageio.load_pixels(tmp_path)
    pngdecode.read_ahead(tmp_path / "missing.png")
    with pytest.raises(DecodeError, match="no such file"):
        imageio.load_pixels(tmp_path / "missing.png")
    jpeg = tmp_path / "b.jpg"
    jpeg.write_bytes(_encode(Image.new("RGB", (16, 8), (9, 99, 199)), "JPEG"))
    pngdecode.read_ahead(jpeg)
    ahead = pngdecode.take(jpeg)
    assert ahead is not None and ahead.pixels is None  # read, not decoded: not a plain PNG
    pngdecode.read_ahead(jpeg)
    assert imageio.load_pixels(jpeg).size == (16, 8)
    assert raised == []
