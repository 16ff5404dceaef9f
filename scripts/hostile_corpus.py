"""The hostile-input corpus: >= 300 generated cases, run through the CLI and the server.

Each case is a small folder of files (an image, possibly truncated, corrupt, a header-only
bomb, an odd mode, animated, EXIF-rotated, a region stress pattern, an odd name or a special
file) with its expected outcome: an image written (every pixel outside the mask-colored
regions bit-identical to the image as displayed), a notice (no mask pixels: exit 1, no
output; server 200 + X-Deepcream-Notice) or one error line (CLI exit 1) / a 4xx JSON answer,
within a time and peak-RSS bound.

    python scripts/hostile_corpus.py [--out DIR] [--only GROUP] [--json FILE]

runs every case through ``deepcream decensor`` (one process per case: its wall time and peak
RSS from wait4) and through one ``deepcream serve`` process, then prints a Markdown summary
(outcomes by class, worst time and RSS). tests/test_hostile_corpus.py runs the cases marked
``ci`` in-process (the fast subset).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

GREEN = (0, 255, 0)
WHITE = (255, 255, 255)
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Case:
    """One corpus case. ``files``: name -> bytes, or a special marker: "fifo", "dir",
    "symlink:TARGET". ``input``: the file given to the CLI (and uploaded, if ``http``).
    ``expect``: "image", "notice" or "error"; ``http``: the server's expected status (None:
    CLI only, e.g. special files). ``shown``: the image as displayed (uint8 RGB), to check
    the pixels outside the regions; ``mask_color``: the color the case paints regions in."""

    name: str
    group: str
    files: dict[str, bytes | str]
    input: str
    expect: str
    http: int | None
    shown: np.ndarray | None = None
    alpha: np.ndarray | None = None
    mask_color: tuple[int, int, int] = GREEN
    mode: str = "bar"
    original: str | None = None
    max_s: float = 20.0
    max_rss_mb: float = 900.0
    ci: bool = False
    needs: str | None = None  # the fix this case depends on, if it is not in this branch

    def cli_args(self, folder: Path, out: Path) -> list[str]:
        # Exact mask colors (DeepCreamPy's rule, tolerance 0): the corpus checks decoding, so
        # "every pixel outside the painted pixels is unchanged" stays an exact check.
        args = ["decensor", str(folder / self.input), "-o", str(out), "--engine", "classical",
                "--quiet", "--mask-tolerance", "0"]
        if self.mask_color != GREEN:
            args += ["--mask-color", ",".join(map(str, self.mask_color))]
        if self.mode != "bar":
            args += ["--mode", self.mode, "--original", str(folder / self.original)]
        return args

    def upload(self) -> dict[str, tuple[str, bytes, str]]:
        """The multipart files of the case's request (the input's name as the file name, as
        far as HTTP can carry it)."""
        name = self.input.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        files = {"image": (name, self.files[self.input], "application/octet-stream")}
        if self.original:
            files["original"] = ("o.png", self.files[self.original], "image/png")
        return files  # type: ignore[return-value]

    def form(self) -> dict[str, str]:
        data: dict[str, str] = {"mask_tolerance": "0"}
        if self.mask_color != GREEN:
            data["mask_color"] = ",".join(map(str, self.mask_color))
        if self.mode != "bar":
            data["mode"] = self.mode
        return data


# --- pictures and encoders -----------------------------------------------------------------


def picture(width: int = 96, height: int = 72, seed: int = 0, bar: tuple = GREEN) -> np.ndarray:
    """A flat-shaded illustration-like image (gradient, two shapes) with one bar painted in
    ``bar``; no pixel is the bar color by accident."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    img = np.empty((height, width, 3), np.uint8)
    img[..., 0] = (60 + 120 * x / max(width - 1, 1)).astype(np.uint8)
    img[..., 1] = (40 + 100 * y / max(height - 1, 1)).astype(np.uint8)
    img[..., 2] = 150
    cx, cy = rng.integers(width // 4, 3 * width // 4), rng.integers(height // 4, 3 * height // 4)
    img[(x - cx) ** 2 + (y - cy) ** 2 < (min(width, height) // 5) ** 2] = (220, 180, 160)
    img[height // 3:height // 3 + max(2, height // 8), width // 4:3 * width // 4] = bar
    return img


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


PNG_SIG = b"\x89PNG\r\n\x1a\n"


def png_raw(width: int, height: int, depth: int, colour: int, raw: bytes,
            interlace: int = 0, extra: bytes = b"") -> bytes:
    ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace))
    return PNG_SIG + ihdr + extra + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b"")


def png16(rgb: np.ndarray) -> bytes:
    rows = (rgb.astype(">u2") * 257).reshape(rgb.shape[0], -1)
    raw = b"".join(b"\0" + row.tobytes() for row in rows)
    return png_raw(rgb.shape[1], rgb.shape[0], 16, 2, raw)


def png_adam7(rgb: np.ndarray) -> bytes:
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
              (0, 1, 1, 2))
    raw = b""
    for x0, y0, dx, dy in passes:
        sub = rgb[y0::dy, x0::dx]
        if sub.size:
            raw += b"".join(b"\0" + row.tobytes() for row in sub)
    return png_raw(rgb.shape[1], rgb.shape[0], 8, 2, raw, interlace=1)


def png_declaring(width: int, height: int, idat: bytes = b"") -> bytes:
    ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return PNG_SIG + ihdr + _chunk(b"IDAT", idat or zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b"")


def png_zero_bomb(width: int, height: int) -> bytes:
    """A complete, valid PNG of ``width`` x ``height`` zeros (black), deflated in pieces."""
    comp = zlib.compressobj(9)
    row = b"\0" * (1 + 3 * width)
    parts = [comp.compress(row * min(256, height - y)) for y in range(0, height, 256)]
    parts.append(comp.flush())
    ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return PNG_SIG + ihdr + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b"")


def with_exif(rgb: np.ndarray, fmt: str, orientation: int, **kw) -> bytes:
    """``rgb`` is how the image should look; store it turned back, with the tag that turns it
    the right way up."""
    inverse = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
               4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
               6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
               8: Image.Transpose.ROTATE_270}
    img = Image.fromarray(rgb)
    if orientation in inverse:
        img = img.transpose(inverse[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(img, fmt, exif=exif, **kw)
    shown = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    assert fmt == "JPEG" or np.array_equal(shown, rgb), (fmt, orientation)
    return data


def _reference_expect(data: bytes, color: tuple = GREEN) -> tuple[str, np.ndarray]:
    """For lossy files: "image" if Pillow's decode (turned upright) holds exact mask pixels."""
    img = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    rgb = np.asarray(img.convert("RGB"))
    return ("image" if np.all(rgb == color, axis=2).any() else "notice"), rgb


# --- the cases -----------------------------------------------------------------------------


def _valid_cases() -> list[Case]:
    rgb = picture()
    img = Image.fromarray(rgb)
    cases: list[Case] = []

    def add(name: str, data: bytes, shown: np.ndarray | None, expect: str = "image", *,
            ext: str = "png", alpha: np.ndarray | None = None, color: tuple = GREEN,
            ci: bool = True) -> None:
        cases.append(Case(f"valid-{name}", "valid", {f"in.{ext}": data}, f"in.{ext}", expect,
                          200, shown=shown, alpha=alpha, mask_color=color, ci=ci))

    add("png-rgb", encode(img, "PNG"), rgb)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 200, np.uint8)])
    add("png-rgba", encode(Image.fromarray(rgba, "RGBA"), "PNG"), rgb, alpha=rgba[..., 3])
    pal = img.quantize(64)
    pal_rgb = np.asarray(pal.convert("RGB"))
    add("png-palette", encode(pal, "PNG"), pal_rgb,
        "image" if np.all(pal_rgb == GREEN, axis=2).any() else "notice")
    add("png-palette-trns", encode(pal, "PNG", transparency=0), pal_rgb,
        "image" if np.all(pal_rgb == GREEN, axis=2).any() else "notice",
        alpha=np.where(np.asarray(pal) == 0, 0, 255).astype(np.uint8))
    gray = np.asarray(Image.fromarray(picture(bar=WHITE)).convert("L"))
    gray3 = np.repeat(gray[..., None], 3, axis=2)
    add("png-gray", encode(Image.fromarray(gray, "L"), "PNG"), gray3, color=WHITE)
    la = Image.merge("LA", [Image.fromarray(gray, "L"), Image.new("L", img.size, 255)])
    add("png-la", encode(la, "PNG"), gray3, alpha=np.full(gray.shape, 255, np.uint8), color=WHITE)
    bits = np.zeros(gray.shape, bool)
    bits[20:30, 10:60] = True
    add("png-1bit", encode(Image.fromarray(bits).convert("1"), "PNG"),
        np.repeat((bits * 255).astype(np.uint8)[..., None], 3, axis=2), color=WHITE)
    add("png-16bit-rgb", png16(rgb), rgb)
    rows16 = (gray.astype(">u2") * 257)
    add("png-16bit-gray", png_raw(gray.shape[1], gray.shape[0], 16, 0,
                                  b"".join(b"\0" + row.tobytes() for row in rows16)),
        gray3, color=WHITE)
    add("png-adam7", png_adam7(rgb), rgb)
    add("bmp-rgb", encode(img, "BMP"), rgb, ext="bmp")
    # Pillow reads a 32-bit BMP (BI_RGB) as RGB: its fourth byte is padding, not alpha.
    add("bmp-32bit", encode(Image.fromarray(rgba, "RGBA"), "BMP"), rgb, ext="bmp")
    add("tiff-raw", encode(img, "TIFF"), rgb, ext="tif")
    add("tiff-lzw", encode(img, "TIFF", compression="tiff_lzw"), rgb, ext="tif")
    add("tiff-deflate", encode(img, "TIFF", compression="tiff_adobe_deflate"), rgb, ext="tif")
    add("tiff-cmyk", encode(img.convert("CMYK"), "TIFF"), rgb, ext="tif")
    gif = img.quantize(64)
    gif_rgb = np.asarray(gif.convert("RGB"))
    add("gif", encode(gif, "GIF"), gif_rgb,
        "image" if np.all(gif_rgb == GREEN, axis=2).any() else "notice", ext="gif")
    add("webp-lossless", encode(img, "WEBP", lossless=True), rgb, ext="webp")
    add("webp-lossless-rgba", encode(Image.fromarray(rgba, "RGBA"), "WEBP", lossless=True), rgb,
        ext="webp", alpha=rgba[..., 3])
    for name, data, ext in [("jpeg-q95", encode(img, "JPEG", quality=95), "jpg"),
                            ("jpeg-progressive", encode(img, "JPEG", progressive=True), "jpg"),
                            ("jpeg-cmyk", encode(img.convert("CMYK"), "JPEG"), "jpg"),
                            ("jpeg-gray", encode(img.convert("L"), "JPEG"), "jpg"),
                            ("webp-lossy", encode(img, "WEBP", quality=80), "webp")]:
        expect, _ = _reference_expect(data)
        add(name, data, None, expect, ext=ext)
    add("png-1x1-green", encode(Image.new("RGB", (1, 1), GREEN), "PNG"),
        np.array([[GREEN]], np.uint8))
    add("png-1x1-clean", encode(Image.new("RGB", (1, 1), (9, 9, 9)), "PNG"),
        np.array([[(9, 9, 9)]], np.uint8), "notice")
    add("png-all-green", encode(Image.new("RGB", (40, 30), GREEN), "PNG"),
        np.full((30, 40, 3), GREEN, np.uint8))
    add("png-wide-1px", encode(Image.fromarray(picture(2000, 8)), "PNG"), picture(2000, 8))
    add("png-tall-1px", encode(Image.fromarray(picture(8, 2000)), "PNG"), picture(8, 2000))
    return cases


def _truncation_sources() -> dict[str, tuple[bytes, str]]:
    rgb = picture(128, 96, seed=3)
    img = Image.fromarray(rgb)
    return {
        "png": (encode(img, "PNG"), "png"),
        "png-palette": (encode(img.quantize(64), "PNG"), "png"),
        "png-16bit": (png16(rgb), "png"),
        "png-adam7": (png_adam7(rgb), "png"),
        "jpeg": (encode(img, "JPEG", quality=90), "jpg"),
        "jpeg-progressive": (encode(img, "JPEG", progressive=True), "jpg"),
        "webp-lossy": (encode(img, "WEBP", quality=80), "webp"),
        "webp-lossless": (encode(img, "WEBP", lossless=True), "webp"),
        "gif": (encode(img.quantize(64), "GIF"), "gif"),
        "bmp": (encode(img, "BMP"), "bmp"),
        "tiff-lzw": (encode(img, "TIFF", compression="tiff_lzw"), "tif"),
        "tiff-raw": (encode(img, "TIFF"), "tif"),
    }


# Bytes that identify each format (PNG signature, JPEG SOI + marker, "RIFF....WEBP", GIF87a,
# BM, the TIFF byte-order mark and 42).
SIGNATURE_BYTES = {"png": 8, "jpg": 3, "webp": 12, "gif": 6, "bmp": 2, "tif": 4}
# Cut points: fractions of the file, plus a few absolute byte counts (inside headers).
CUT_FRACTIONS = (0.02, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
CUT_BYTES = (1, 8, 16, 30, 60)


def _truncated_cases() -> list[Case]:
    cases = []
    for name, (data, ext) in _truncation_sources().items():
        cuts = sorted({int(len(data) * f) for f in CUT_FRACTIONS} | set(CUT_BYTES))
        for i, cut in enumerate(cuts):
            # Cut inside the format's signature, a file is no known format (415), after it a
            # truncated one (400).
            status = 400 if cut >= SIGNATURE_BYTES[ext] else 415
            cases.append(Case(f"truncated-{name}-at-{cut}", "truncated", {f"t.{ext}": data[:cut]},
                              f"t.{ext}", "error", status, ci=i % 4 == 0))
    return cases


def _corrupt_cases() -> list[Case]:
    cases = []
    rng = np.random.default_rng(11)
    for name, (data, ext) in _truncation_sources().items():
        for frac in (0.3, 0.6):
            at = int(len(data) * frac)
            bad = data[:at] + bytes(b ^ 0xA5 for b in data[at:at + 48]) + data[at + 48:]
            # Flipped bytes in lossy data may still decode (JPEG/WebP/GIF have no checksum):
            # the outcome is then an image; either way no traceback and one line.
            expect = "error" if name in ("png", "png-palette", "png-16bit", "png-adam7",
                                         "tiff-lzw", "webp-lossless") else "any"
            cases.append(Case(f"corrupt-{name}-flip-{int(frac * 100)}", "corrupt",
                              {f"c.{ext}": bad}, f"c.{ext}", expect, None if expect == "any"
                              else 400, ci=frac == 0.3))
    for magic, ext in [(PNG_SIG, "png"), (b"\xff\xd8\xff\xe0", "jpg"), (b"GIF89a", "gif"),
                       (b"BM", "bmp"), (b"II*\x00", "tif"), (b"MM\x00*", "tif"),
                       (b"RIFF\x00\x01\x00\x00WEBPVP8 ", "webp")]:
        cases.append(Case(f"corrupt-magic-then-noise-{ext}-{magic[:2].hex()}", "corrupt",
                          {f"n.{ext}": magic + rng.bytes(3000)}, f"n.{ext}", "error", 400,
                          ci=True))
    png = encode(Image.fromarray(picture()), "PNG")
    cases += [
        Case("corrupt-png-bad-ihdr-crc", "corrupt", {"c.png": png[:29] + b"\0\0\0\0" + png[33:]},
             "c.png", "error", 400, ci=True),
        Case("corrupt-png-garbage-idat", "corrupt",
             {"c.png": png_declaring(64, 48, idat=b"not zlib at all" * 8)}, "c.png", "error", 400,
             ci=True),
        Case("corrupt-png-zero-width", "corrupt", {"c.png": png_declaring(0, 10)}, "c.png",
             "error", 400, ci=True),
        Case("corrupt-text-named-png", "corrupt", {"c.png": b"this is not an image\n"}, "c.png",
             "error", 415, ci=True),
        Case("corrupt-html-named-jpg", "corrupt", {"c.jpg": b"<!doctype html><p>hi"}, "c.jpg",
             "error", 415, ci=True),
        Case("corrupt-svg", "corrupt", {"c.svg": b'<svg xmlns="http://www.w3.org/2000/svg"/>'},
             "c.svg", "error", 415, ci=True),
        Case("corrupt-ppm-real-image", "corrupt",
             {"c.ppm": encode(Image.fromarray(picture()), "PPM")}, "c.ppm", "error", 415, ci=True),
        Case("corrupt-ico-real-image", "corrupt",
             {"c.ico": encode(Image.fromarray(picture(32, 32)), "ICO")}, "c.ico", "error", 415),
        Case("corrupt-gzip-of-png", "corrupt", {"c.png": zlib.compress(png)}, "c.png", "error",
             415),
    ]
    return cases


def _bomb_cases(light: bool) -> list[Case]:
    jpeg = encode(Image.fromarray(picture()), "JPEG", quality=90)
    tiff = encode(Image.fromarray(picture(64, 48)), "TIFF")
    bmp = encode(Image.fromarray(picture(64, 48)), "BMP")
    gif = encode(Image.fromarray(picture(64, 48)).quantize(16), "GIF")

    def jpeg_declaring(w: int, h: int) -> bytes:
        data = bytearray(jpeg)
        at = data.index(b"\xff\xc0")
        data[at + 5:at + 9] = struct.pack(">HH", h, w)
        return bytes(data)

    def webp_declaring(w: int, h: int) -> bytes:
        vp8x = bytes([0x10, 0, 0, 0]) + (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")
        payload = b"WEBP" + b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x
        payload += b"VP8 " + struct.pack("<I", 10) + b"\0" * 10
        return b"RIFF" + struct.pack("<I", len(payload)) + payload

    def tiff_declaring(w: int, h: int) -> bytes:
        data = bytearray(tiff)
        ifd = struct.unpack_from("<I", data, 4)[0]
        for i in range(struct.unpack_from("<H", data, ifd)[0]):
            entry = ifd + 2 + 12 * i
            tag, typ = struct.unpack_from("<HH", data, entry)
            if tag in (256, 257):
                value = w if tag == 256 else h
                if typ == 3:
                    struct.pack_into("<HHIH", data, entry, tag, 3, 1, value)
                else:
                    struct.pack_into("<HHII", data, entry, tag, 4, 1, value)
        return bytes(data)

    def bmp_declaring(w: int, h: int) -> bytes:
        data = bytearray(bmp)
        struct.pack_into("<ii", data, 18, w, h)
        return bytes(data)

    huge = [
        ("png-100k-squared", png_declaring(100_000, 100_000), "png"),
        ("png-2^31-wide", png_declaring(2**31 - 1, 1), "png"),
        ("png-20k-squared", png_declaring(20_000, 20_000), "png"),
        ("jpeg-65k-squared", jpeg_declaring(65000, 65000), "jpg"),
        ("jpeg-12k-squared", jpeg_declaring(12000, 12000), "jpg"),
        ("webp-16k-squared", webp_declaring(16000, 16000), "webp"),
        ("tiff-60k-squared", tiff_declaring(60000, 60000), "tif"),
        ("bmp-30k-squared", bmp_declaring(30000, 30000), "bmp"),
        ("bmp-negative-height", bmp_declaring(30000, -30000), "bmp"),
        ("gif-65k-squared", gif[:6] + struct.pack("<HH", 65535, 65535) + gif[10:], "gif"),
    ]
    cases = [Case(f"bomb-{n}", "bomb", {f"b.{e}": d}, f"b.{e}", "error", 413, ci=True,
                  max_s=10, max_rss_mb=600) for n, d, e in huge]
    # Under both pixel limits (CLI 89.5 M, server 40 M) but with almost no data: short data is
    # caught before the image is allocated (PNG) or while decoding.
    cases += [
        Case("bomb-png-6000-squared-short", "bomb", {"b.png": png_declaring(6000, 6000)},
             "b.png", "error", 400, ci=True, max_s=10, max_rss_mb=900),
        Case("bomb-png-palette-6000-squared-short", "bomb", {"b.png": PNG_SIG + _chunk(
            b"IHDR", struct.pack(">IIBBBBB", 6000, 6000, 8, 3, 0, 0, 0)) + _chunk(
            b"PLTE", bytes(range(48))) + _chunk(b"IDAT", zlib.compress(b"\0" * 999)) + _chunk(
            b"IEND", b"")}, "b.png", "error", 400, ci=True, max_s=10, max_rss_mb=600),
        Case("bomb-jpeg-6000-squared-short", "bomb", {"b.jpg": jpeg_declaring(6000, 6000)},
             "b.jpg", "error", 400, max_s=15, max_rss_mb=900),
        Case("bomb-bmp-6000-squared-short", "bomb", {"b.bmp": bmp_declaring(6000, 6000)},
             "b.bmp", "error", 400, max_s=10, max_rss_mb=900),
    ]
    if not light:
        cases += [
            # A real decompression bomb: a complete 6000x6000 black PNG in ~100 KB. Decoded it
            # is a legitimate 36 M-pixel image (under both limits): no mask color, a notice.
            Case("bomb-png-6000-squared-zeros", "bomb", {"b.png": png_zero_bomb(6000, 6000)},
                 "b.png", "notice", 200, max_s=30, max_rss_mb=1200),
            # Over the server's default 40 M pixels, under the CLI's 89.5 M.
            Case("bomb-png-7000x6000-zeros", "bomb", {"b.png": png_zero_bomb(7000, 6000)},
                 "b.png", "notice", 413, max_s=30, max_rss_mb=1400),
        ]
    return cases


def _animated_cases() -> list[Case]:
    frames = [Image.fromarray(picture(seed=i)) for i in range(3)]
    cases = []
    for name, fmt, ext, kw in [("gif", "GIF", "gif", {}), ("apng", "PNG", "png", {}),
                               ("webp", "WEBP", "webp", {"lossless": True}),
                               ("tiff-multipage", "TIFF", "tif", {})]:
        imgs = [f.quantize(64) for f in frames] if fmt == "GIF" else frames
        data = encode(imgs[0], fmt, save_all=True, append_images=imgs[1:], **kw)
        cases.append(Case(f"animated-{name}-3-frames", "animated", {f"a.{ext}": data},
                          f"a.{ext}", "error", 422, ci=True))
        two = encode(imgs[0], fmt, save_all=True, append_images=imgs[1:2], **kw)
        cases.append(Case(f"animated-{name}-2-frames", "animated", {f"a.{ext}": two},
                          f"a.{ext}", "error", 422))
    rgb = picture()
    one = encode(Image.fromarray(rgb), "PNG", save_all=True, append_images=[])
    cases.append(Case("animated-apng-1-frame", "animated", {"a.png": one}, "a.png", "image", 200,
                      shown=rgb, ci=True))
    one_gif = Image.fromarray(rgb).quantize(64)
    one_rgb = np.asarray(one_gif.convert("RGB"))
    cases.append(Case("animated-gif-1-frame", "animated", {"a.gif": encode(one_gif, "GIF")},
                      "a.gif", "image" if np.all(one_rgb == GREEN, axis=2).any() else "notice",
                      200, shown=one_rgb, ci=True))
    return cases


def _exif_cases() -> list[Case]:
    rgb = picture(90, 60, seed=5)
    cases = []
    for orientation in range(1, 9):
        cases.append(Case(f"exif-png-orientation-{orientation}", "exif",
                          {"e.png": with_exif(rgb, "PNG", orientation)}, "e.png", "image", 200,
                          shown=rgb, ci=True))
    for fmt, ext, kw in [("TIFF", "tif", {}), ("WEBP", "webp", {"lossless": True})]:
        for orientation in (3, 6, 8):
            cases.append(Case(f"exif-{ext}-orientation-{orientation}", "exif",
                              {f"e.{ext}": with_exif(rgb, fmt, orientation, **kw)}, f"e.{ext}",
                              "image", 200, shown=rgb, ci=orientation == 6))
    for orientation in (6, 8):
        data = with_exif(rgb, "JPEG", orientation, quality=95)
        expect, _ = _reference_expect(data)
        cases.append(Case(f"exif-jpeg-orientation-{orientation}", "exif", {"e.jpg": data},
                          "e.jpg", expect, 200, ci=True))
    cases.append(Case("exif-tiff-no-orientation", "exif",
                      {"e.tif": encode(Image.fromarray(rgb), "TIFF", exif=Image.Exif())},
                      "e.tif", "image", 200, shown=rgb, ci=True))
    # An EXIF IFD pointer past the end of a TIFF: Pillow warns "Corrupt EXIF data"; the CLI
    # must not print that warning (one line per failure, none for a success).
    from PIL import TiffImagePlugin

    ifd = TiffImagePlugin.ImageFileDirectory_v2()
    ifd[34665] = 99999
    cases.append(Case("exif-tiff-corrupt-exif-ifd", "exif",
                      {"e.tif": encode(Image.fromarray(rgb), "TIFF", tiffinfo=ifd)}, "e.tif",
                      "image", 200, shown=rgb, ci=True))
    return cases


def _region_cases(light: bool) -> list[Case]:
    """Region-count and hole-size stress (issue 11 items 1-2: fixed on other branches)."""
    cases = []

    def board(n: int) -> np.ndarray:
        img = np.full((n, n, 3), 255, np.uint8)
        y, x = np.mgrid[0:n, 0:n]
        img[(x + y) % 2 == 0] = GREEN
        return img

    def dots(width: int, height: int, count: int, seed: int) -> np.ndarray:
        img = picture(width, height, seed=seed, bar=(200, 200, 200))
        rng = np.random.default_rng(seed)
        ys = rng.integers(0, height // 2, count) * 2
        xs = rng.integers(0, width // 2, count) * 2
        img[ys, xs] = GREEN
        return img

    for n, ci in [(16, True), (64, False), (256, False)]:
        if light and not ci:
            continue
        img = board(n)
        cases.append(Case(f"regions-checkerboard-{n}", "regions",
                          {"r.png": encode(Image.fromarray(img), "PNG", compress_level=1)},
                          "r.png", "image", 200,
                          shown=img, ci=ci, needs="wt-hostile-regions", max_s=10,
                          max_rss_mb=700))
    # 150 dots: each its own DCP crop (up to 200 regions keep DCP's boxes); 250: shared crops.
    for w, h, count, ci in [(300, 200, 150, False), (300, 200, 250, True), (1024, 768, 3072, False),
                            (4000, 3000, 2000, False)]:
        if light and not ci:
            continue
        img = dots(w, h, count, seed=count)
        cases.append(Case(f"regions-dots-{w}x{h}-{count}", "regions",
                          {"r.png": encode(Image.fromarray(img), "PNG", compress_level=1)},
                          "r.png", "image", 200,
                          shown=img, ci=ci, needs="wt-hostile-regions",
                          max_s=20 if w > 2000 else 10, max_rss_mb=1000 if w > 2000 else 700))
    for size, ci in [(40, True), (120, False), (400, False), (1000, False)]:
        if light and not ci:
            continue
        side = max(size + 40, 200)
        flat = np.full((side, side, 3), 250, np.uint8)
        colored = flat.copy()
        colored[20:20 + size, 20:20 + size] = GREEN
        cases.append(Case(f"regions-flat-mosaic-hole-{size}", "regions",
                          {"r.png": encode(Image.fromarray(colored), "PNG"),
                           "o.png": encode(Image.fromarray(flat), "PNG")}, "r.png", "image", 200,
                          shown=flat, mode="mosaic", original="o.png", ci=ci,
                          needs="wt-classical", max_s=10, max_rss_mb=700))
    return cases


def _name_cases() -> list[Case]:
    rgb = picture(48, 36)
    png = encode(Image.fromarray(rgb), "PNG")
    names = {
        "unicode": "画像 ü ñ.png", "spaces": "my  picture (1).png", "leading-dash": "-x.png",
        "newline": "a\nb.png", "quotes": "it's \"here\".png", "hidden": ".hidden.png",
        "upper-ext": "UPPER.PNG", "no-ext": "noext", "wrong-ext": "really-a-png.jpg",
        "len-241": "n" * 237 + ".png", "len-250": "n" * 246 + ".png", "len-255": "n" * 251 + ".png",
        "percent-and-hash": "50% #1 &.png", "backslash": "a\\b.png",
        "latin1-bytes": os.fsdecode(b"caf\xe9.png"),
    }
    return [Case(f"name-{key}", "names", {name: png}, name, "image", 200, shown=rgb, ci=True)
            for key, name in names.items()]


def _special_cases() -> list[Case]:
    rgb = picture(48, 36)
    png = encode(Image.fromarray(rgb), "PNG")
    cases = [Case(f"special-{name}", "special", files, "s.png", "error", None, ci=True)
            for name, files in [
                ("fifo", {"s.png": "fifo"}),
                ("folder-named-png", {"s.png": "dir"}),
                ("symlink-to-dev-zero", {"s.png": "symlink:/dev/zero"}),
                ("symlink-to-dev-null", {"s.png": "symlink:/dev/null"}),
                ("dangling-symlink", {"s.png": "symlink:missing.png"}),
                ("symlink-loop", {"s.png": "symlink:s.png"}),
                ("empty-file", {"s.png": b""}),
                ("one-byte", {"s.png": b"\x89"}),
                ("missing-file", {}),
                ("signature-only", {"s.png": PNG_SIG}),
            ]]
    # A link to a folder is a folder: its images are decensored.
    cases.append(Case("special-symlink-to-folder", "special", {"s.png": "symlink:sub",
                                                              "sub/x.png": png}, "s.png", "image",
                      None, shown=rgb, ci=True))
    return cases


def generate(*, light: bool = False) -> list[Case]:
    """Every case; ``light`` leaves out the large ones (none of them is in the CI subset)."""
    cases = (_valid_cases() + _truncated_cases() + _corrupt_cases() + _bomb_cases(light)
             + _animated_cases() + _exif_cases() + _region_cases(light) + _name_cases()
             + _special_cases())
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "duplicate case names"
    return cases


def materialize(case: Case, folder: Path) -> Path:
    """Write the case's files into ``folder`` (created); returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in case.files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content == "fifo":
            os.mkfifo(path)
        elif content == "dir":
            path.mkdir()
        elif isinstance(content, str) and content.startswith("symlink:"):
            os.symlink(content.removeprefix("symlink:"), path)
        else:
            path.write_bytes(content)  # type: ignore[arg-type]
    return folder


# --- checking an outcome -------------------------------------------------------------------


def check_image(case: Case, data: bytes) -> str | None:
    """Why the output PNG is wrong for ``case``, or None: size as displayed, and every pixel
    outside the mask-colored regions bit-identical to the displayed input."""
    out = Image.open(io.BytesIO(data))
    out.load()
    if case.shown is None:
        return None
    h, w = case.shown.shape[:2]
    if out.size != (w, h):
        return f"output is {out.size[0]}x{out.size[1]}, the input as shown is {w}x{h}"
    rgb = np.asarray(out.convert("RGB"))
    keep = ~np.all(case.shown == case.mask_color, axis=2)
    if not np.array_equal(rgb[keep], case.shown[keep]):
        return f"{int(np.any(rgb != case.shown, axis=2)[keep].sum())} pixels outside the regions changed"
    if case.alpha is not None and (out.mode != "RGBA" or not np.array_equal(
            np.asarray(out)[..., 3], case.alpha)):
        return "alpha channel not kept"
    if np.all(rgb[~keep] == case.mask_color, axis=1).any():
        return "a region pixel still has the mask color"
    return None


def cli_outcome(case: Case, code: int, err: str, out_dir: Path) -> tuple[str, str | None]:
    """(outcome, problem): the outcome seen ("image", "notice", "error") and why it breaks the
    case's expectation, or None."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    # Images written (the folder may also hold the run's journal, deepcream-journal.jsonl).
    outputs = sorted(p for p in out_dir.glob("*") if not p.name.endswith((".jsonl", ".part"))) \
        if out_dir.is_dir() else []
    if "Traceback" in err:
        return "traceback", "traceback on stderr"
    if code == 0 and outputs:
        outcome = "image"
    elif code == 1 and not outputs and any(("notice:" in ln or "warning:" in ln)
                                            for ln in lines):
        outcome = "notice"
    elif code in (1, 2) and not outputs and any("error:" in ln for ln in lines):
        outcome = "error"
    else:
        return "other", f"exit {code}, {len(outputs)} outputs, stderr {err[-300:]!r}"
    problem = None
    if case.expect not in ("any", outcome):
        problem = f"expected {case.expect}, got {outcome}: {err.strip()[-300:]!r}"
    elif outcome in ("error", "notice"):
        # One line per failure (the run summary goes to stderr too with --quiet).
        failure_lines = [ln for ln in lines if not ln.startswith(
            ("deepcream: 0 of ", "deepcream: nothing to decensor"))]
        if len(failure_lines) != 1:
            problem = f"{len(failure_lines)} stderr lines: {err!r}"
        elif " object at 0x" in err:
            problem = f"object repr in the message: {err!r}"
    elif outcome == "image" and any(not ln.startswith(("deepcream: 1 of ", "deepcream: warning:"))
                                    for ln in lines):
        problem = f"extra stderr lines: {err!r}"
    elif outcome == "image":
        files = [p for p in outputs if p.is_file()]
        problem = check_image(case, files[0].read_bytes()) if len(files) == 1 else \
            f"{len(files)} output files"
    if problem is None and out_dir.is_dir() and any(p.name.endswith(".part") for p in
                                                      out_dir.iterdir()):
        problem = "temp file left behind"
    return outcome, problem


def http_outcome(case: Case, status: int, headers: dict[str, str], body: bytes) -> str | None:
    """Why the server's answer breaks the case's expectation, or None."""
    expected = case.http
    if case.expect == "any":
        return None if status < 500 else f"HTTP {status}"
    if status != expected:
        return f"HTTP {status}, expected {expected}: {body[:200]!r}"
    if status >= 400:
        try:
            message = json.loads(body)["message"]
        except (ValueError, KeyError):
            return f"HTTP {status} without a JSON message: {body[:200]!r}"
        if "\n" in message or " object at 0x" in message or "Traceback" in message:
            return f"bad message {message!r}"
        return None
    if case.expect == "notice":
        return None if "x-deepcream-notice" in headers else "no X-Deepcream-Notice header"
    if case.expect == "image":
        return check_image(case, body)
    return None


# --- the full run (a script, not the test suite) -------------------------------------------


# Runs the command as its own child and reports that child's peak RSS: a child forked straight
# from this (large) process would count the pages it shared with it before exec.
_LAUNCH = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[2:]).returncode; "
           "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
           "open(sys.argv[1], 'w').write(f'{code} {u.ru_maxrss} {u.ru_utime + u.ru_stime}')")


def _run_measured(args: list[str], env: dict, timeout: float,
                  work: Path) -> tuple[int, str, float, float, float]:
    """Run ``args``: (exit code, stderr, wall seconds, peak RSS MB, CPU seconds of that
    process)."""
    report = work / "rusage.txt"
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", _LAUNCH, str(report), *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        err = proc.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # the launcher's own process group: it and the command
        err = proc.communicate()[1] + b"\n(killed: timeout)"
    seconds = time.perf_counter() - start
    try:
        code_text, rss_kb, cpu_text = report.read_text().split()
        code, rss_mb, cpu = int(code_text), int(rss_kb) / 1024, float(cpu_text)
    except (OSError, ValueError):
        code, rss_mb, cpu = -9, float("nan"), float("nan")
    return code, err.decode(errors="replace"), seconds, rss_mb, cpu


def run_cli(case: Case, work: Path) -> dict:
    folder = materialize(case, work / "in")
    out = work / "out"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    code, err, seconds, rss, cpu = _run_measured(
        [sys.executable, "-m", "deepcream", *case.cli_args(folder, out)], env,
        max(case.max_s * 6, 120), work)
    outcome, problem = cli_outcome(case, code, err, out)
    if problem is None and seconds > case.max_s:
        problem = f"took {seconds:.1f} s > {case.max_s:g} s"
    if problem is None and rss > case.max_rss_mb:
        problem = f"peak RSS {rss:.0f} MB > {case.max_rss_mb:g} MB"
    return {"outcome": outcome, "problem": problem, "seconds": seconds, "cpu_s": cpu,
            "rss_mb": rss}


def _server_rss_mb(pid: int) -> tuple[float, float]:
    fields = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def run_server_cases(cases: list[Case], work: Path) -> dict[str, dict]:
    import httpx

    port = 18000 + os.getpid() % 1000
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    server = subprocess.Popen([sys.executable, "-m", "deepcream", "serve", "--engine", "classical",
                               "--port", str(port), "--no-warmup"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    results: dict[str, dict] = {}
    try:
        with httpx.Client(base_url=base, timeout=300, trust_env=False) as client:
            for _ in range(600):
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            for case in cases:
                if case.http is None and case.expect != "any":
                    continue
                if not isinstance(case.files.get(case.input), bytes):
                    continue
                start = time.perf_counter()
                try:
                    resp = client.post("/v1/decensor", files=case.upload(), data=case.form())
                    status, headers, body = resp.status_code, dict(resp.headers), resp.content
                except httpx.HTTPError as exc:
                    status, headers, body = 0, {}, str(exc).encode()
                seconds = time.perf_counter() - start
                rss, hwm = _server_rss_mb(server.pid)
                problem = http_outcome(case, status, headers, body)
                results[case.name] = {"status": status, "problem": problem, "seconds": seconds,
                                      "rss_mb": rss, "hwm_mb": hwm}
            healthz = client.get("/healthz")
            results["_healthz"] = {"status": healthz.status_code}
    finally:
        server.terminate()
        server.wait(30)
    return results


def summarize(cases: list[Case], cli: dict[str, dict], http: dict[str, dict]) -> str:
    groups: dict[str, list[Case]] = {}
    for case in cases:
        groups.setdefault(case.group, []).append(case)
    lines = ["| class | cases | CLI outcomes | CLI failures | CLI worst time (CPU) | CLI worst RSS "
             "| server requests | server failures | server worst time | server RSS after |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for group, members in groups.items():
        c = [cli[m.name] for m in members if m.name in cli]
        h = [http[m.name] for m in members if m.name in http]
        outcomes: dict[str, int] = {}
        for r in c:
            outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
        shown = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
        lines.append(
            f"| {group} | {len(members)} | {shown} | {sum(r['problem'] is not None for r in c)} | "
            f"{max((r['seconds'] for r in c), default=0):.2f} s "
            f"({max((r['cpu_s'] for r in c), default=0):.2f} s) | "
            f"{max((r['rss_mb'] for r in c), default=0):.0f} MB | {len(h)} | "
            f"{sum(r['problem'] is not None for r in h)} | "
            f"{max((r['seconds'] for r in h), default=0):.2f} s | "
            f"{max((r['rss_mb'] for r in h), default=0):.0f} MB |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="keep the case folders here")
    parser.add_argument("--only", help="run only cases whose name contains this")
    parser.add_argument("--json", type=Path, help="write every result here")
    parser.add_argument("--no-server", action="store_true")
    parser.add_argument("--no-cli", action="store_true")
    args = parser.parse_args()
    cases = [c for c in generate() if not args.only or args.only in c.name]
    print(f"{len(cases)} cases; CPU: {_cpu()}; load: {os.getloadavg()[0]:.2f}", flush=True)
    root = args.out or Path(tempfile.mkdtemp(prefix="deepcream-corpus-"))
    cli: dict[str, dict] = {}
    try:
        if not args.no_cli:
            for i, case in enumerate(cases):
                work = root / f"{i:03d}"
                cli[case.name] = run_cli(case, work)
                if args.out is None:
                    shutil.rmtree(work, ignore_errors=True)
                r = cli[case.name]
                flag = "" if r["problem"] is None else f"  PROBLEM: {r['problem']}"
                print(f"{i + 1:3d}/{len(cases)} {case.name}: {r['outcome']} "
                      f"{r['seconds']:.2f} s (CPU {r['cpu_s']:.2f} s) {r['rss_mb']:.0f} MB{flag}",
                      flush=True)
        http = {} if args.no_server else run_server_cases(cases, root)
    finally:
        if args.out is None:
            shutil.rmtree(root, ignore_errors=True)
    for name, r in http.items():
        if r.get("problem"):
            print(f"server {name}: PROBLEM: {r['problem']}")
    print()
    print(summarize(cases, cli, http))
    hwm = max((r.get("hwm_mb", 0) for r in http.values()), default=0)
    problems = [n for n, r in cli.items() if r["problem"]] + \
        [n for n, r in http.items() if r.get("problem")]
    print(f"\nserver peak RSS (VmHWM) {hwm:.0f} MB; healthz after: "
          f"{http.get('_healthz', {}).get('status')}; cases with problems: {len(problems)}")
    for name in problems:
        print(f"  {name} ({next((c.needs for c in cases if c.name == name), None) or 'this branch'})")
    if args.json:
        args.json.write_text(json.dumps({"cli": cli, "http": http}, indent=1, default=str))
    return 1 if problems else 0


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} x {os.cpu_count()}"
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs"


if __name__ == "__main__":
    sys.exit(main())
