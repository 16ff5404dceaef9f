#!/usr/bin/env python3
"""Evaluate the default mask finder (`deepcream.masks.find_paint`) on a generated set of
painted-over illustrations, as users save them (nothing binary is committed).

The set, per seed: scikit-image's bundled sample photos and procedurally drawn line art
(flat cel shading, anti-aliased and aliased), each with 2-6 brush strokes of the mask color
(#00ff00): 3-40 px wide, straight or wavy, some crossing each other, some running off the
image edge; drawn anti-aliased (4x supersampled) or aliased. Each painted image is saved
under every condition: PNG, PNG with a 256-color palette, JPEG at quality 95/90/80/70/60 with
4:2:0 and 4:4:4 chroma, and "resized" (scaled by 0.5-0.9 after painting, then PNG or JPEG
q90). Plus pictures whose only paint is thin strokes (2-4 px) on a light and a mid-tone
background and on a photo, as JPEG q90/q80 4:2:0 (rows "thin ...": 4:2:0 may leave such
strokes no pixel near the exact color; `--no-thin` skips them). Plus clean images with
legitimately green content (foliage, a green dress, a green UI), as PNG and JPEG, to count
false regions. With `--neon`, only pictures whose art has vivid green outlines and lines
(excess 190-220, like thin strokes of the mask color), painted with strokes as the others.

Per condition it reports, after a full `deepcream.decensor` with the classical engine:
- tinted: output pixels within 8 px of a stroke with G - max(R, B) > 40 where the clean
  image has none (as a count, and in % of the stroke pixels); of those, the ones left
  outside the mask, split into <= 6 px and 6-8 px from a stroke (a mask cannot take the
  6-8 px ones without changing pixels farther than 6 px from a stroke, which `far` counts);
- far: pixels changed farther than 6 px from a painted stroke;
- regions / strokes: regions found over painted strokes (connected stroke groups);
- find ms: mask-finding time per image.
And the mask-finding time on 2604x2513 pictures (medians of 9; `--timing-only`: only that).

    .venv/bin/python scripts/eval_masks.py [--seed 100 101 ...] [--conditions png jpeg80-420]
        [--out DIR] [--no-timing] [--timing-only] [--threads N] [--dump DIR] [--no-thin]

Tuning was done on seeds 0-3; the figures in docs/mask-help.md are on held-out seeds 100-104.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GREEN = (0, 255, 0)
SKIMAGE_SOURCES = ["astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry"]
JPEG_QUALITIES = (95, 90, 80, 70, 60)
CONDITIONS = (["png", "png-aliased", "palette"]
              + [f"jpeg{q}-{sub}" for q in JPEG_QUALITIES for sub in ("420", "444")]
              + ["resized", "resized-jpeg90"])
TINT = 40  # G - max(R, B) above this reads as green to the eye
NEAR_STROKE = 8  # tinted pixels are counted this close to a stroke
FAR = 6  # no pixel may change farther than this from a stroke
SIZE = 480


@dataclass
class Sample:
    name: str
    condition: str
    clean: np.ndarray  # uint8 [H, W, 3]: the picture before painting (same size as image)
    image: np.ndarray  # uint8 [H, W, 3]: painted and saved under the condition
    strokes: np.ndarray  # bool [H, W]: pixels any stroke touches (coverage > 0)
    stroke_count: int  # connected groups of strokes (what a perfect finder reports)


def skimage_image(name: str) -> np.ndarray:
    import skimage.data

    img = np.asarray(getattr(skimage.data, name)())
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3].astype(np.uint8))


def fit(img: np.ndarray, size: int = SIZE) -> np.ndarray:
    h, w = img.shape[:2]
    scale = size / max(h, w)
    pil = Image.fromarray(img).resize((max(int(w * scale), 64), max(int(h * scale), 64)),
                                      Image.LANCZOS)
    return np.asarray(pil, dtype=np.uint8).copy()


def line_art(rng: np.random.Generator, antialias: bool, width: int = SIZE,
             height: int = 400) -> np.ndarray:
    """Flat cel-shaded shapes with dark outlines on a light background (no pure green)."""
    scale = 2 if antialias else 1
    bg = tuple(int(v) for v in rng.integers(150, 256, 3))
    img = Image.new("RGB", (width * scale, height * scale), bg)
    draw = ImageDraw.Draw(img)
    outline = tuple(int(v) for v in rng.integers(0, 60, 3))
    for _ in range(int(rng.integers(8, 18))):
        fill = tuple(int(v) for v in rng.integers(0, 256, 3))
        x0, y0 = rng.integers(-40, width * scale, 2)
        w, h = rng.integers(30 * scale, 220 * scale, 2)
        box = [int(x0), int(y0), int(x0 + w), int(y0 + h)]
        lw = int(rng.integers(1, 4)) * scale
        if rng.integers(2):
            draw.ellipse(box, fill=fill, outline=outline, width=lw)
        else:
            draw.rectangle(box, fill=fill, outline=outline, width=lw)
    if antialias:
        img = img.resize((width, height), Image.LANCZOS)
    return np.asarray(img, dtype=np.uint8).copy()


STROKE_WIDTHS = (3, 4, 6, 8, 12, 16, 24, 32, 40)
# thin pen strokes: under JPEG 4:2:0 they may keep no pixel near the exact color
THIN_WIDTHS = (2, 2.5, 3, 4)
THIN_CONDITIONS = ("jpeg90-420", "jpeg80-420")


def stroke_paths(rng: np.random.Generator, width: int, height: int,
                 widths: tuple[float, ...] = STROKE_WIDTHS
                 ) -> list[tuple[list[tuple[float, float]], float]]:
    """2-6 strokes: (points, width px), straight or wavy; some start or end off the image."""
    paths = []
    for _ in range(int(rng.integers(2, 7))):
        w = float(rng.choice(widths))
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        angle = rng.uniform(0, np.pi)
        length = rng.uniform(0.2, 0.8) * max(width, height)
        if rng.random() < 0.25:  # run off the image edge
            length *= 2
        t = np.linspace(-0.5, 0.5, 40)
        wave = rng.uniform(0, 0.08) * length if rng.random() < 0.5 else 0.0
        xs = x0 + np.cos(angle) * t * length - np.sin(angle) * wave * np.sin(t * 2 * np.pi * 2)
        ys = y0 + np.sin(angle) * t * length + np.cos(angle) * wave * np.sin(t * 2 * np.pi * 2)
        paths.append(([(float(x), float(y)) for x, y in zip(xs, ys, strict=True)], w))
    return paths


def paint(clean: np.ndarray, paths: list, antialias: bool) -> tuple[np.ndarray, np.ndarray]:
    """(painted image, stroke coverage in [0, 1]). Anti-aliased strokes are drawn at 4x and
    box-downsampled, as paint programs' brushes come out; aliased ones at 1x."""
    h, w = clean.shape[:2]
    s = 4 if antialias else 1
    cover = Image.new("L", (w * s, h * s), 0)
    draw = ImageDraw.Draw(cover)
    for points, width in paths:
        pts = [(x * s, y * s) for x, y in points]
        draw.line(pts, fill=255, width=round(width * s), joint="curve")
        r = width * s / 2  # round caps
        for x, y in (pts[0], pts[-1]):
            draw.ellipse([x - r, y - r, x + r, y + r], fill=255)
    if antialias:
        cover = cover.resize((w, h), Image.BOX)
    alpha = np.asarray(cover, np.float32)[:, :, None] / 255.0
    painted = clean.astype(np.float32) * (1 - alpha) + np.array(GREEN, np.float32) * alpha
    return np.clip(np.round(painted), 0, 255).astype(np.uint8), alpha[:, :, 0]


def encode(img: np.ndarray, condition: str, rng: np.random.Generator
           ) -> tuple[np.ndarray, float]:
    """The image as a user would save it under ``condition``; and the resize factor used."""
    factor = 1.0
    if condition.startswith("resized"):
        factor = float(rng.uniform(0.5, 0.9))
        h, w = img.shape[:2]
        img = np.asarray(Image.fromarray(img).resize((int(w * factor), int(h * factor)),
                                                     Image.BICUBIC))
        condition = "jpeg90-420" if condition == "resized-jpeg90" else "png"
    buf = io.BytesIO()
    if condition in ("png", "png-aliased"):
        return img, factor
    if condition == "palette":
        Image.fromarray(img).quantize(256, method=Image.Quantize.MEDIANCUT).save(buf, "PNG")
    else:
        quality, sub = condition.removeprefix("jpeg").split("-")
        Image.fromarray(img).save(buf, "JPEG", quality=int(quality),
                                  subsampling=2 if sub == "420" else 0)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB")).copy(), factor


def _resized(arr: np.ndarray, size: tuple[int, int], resample: int) -> np.ndarray:
    return np.asarray(Image.fromarray(arr).resize(size, resample))


def painted_samples(seed: int, conditions: list[str], only: list[str] | None = None
                    ) -> list[Sample]:
    """Every base picture (or those named in ``only``) painted and saved per condition."""
    rng = np.random.default_rng(seed)
    bases = [(n, fit(skimage_image(n))) for n in SKIMAGE_SOURCES]
    bases += [(f"lineart{i}", line_art(rng, antialias=bool(i % 2 == 0))) for i in range(3)]
    return [sample for index, (name, base) in enumerate(bases)
            if only is None or name in only
            for sample in paint_and_save(name, base, seed, index, conditions)]


def thin_samples(seed: int, conditions: tuple[str, ...] | list[str] = THIN_CONDITIONS
                 ) -> list[Sample]:
    """Pictures whose only paint is thin strokes (``THIN_WIDTHS``): a light and a mid-tone
    background (flat colors with a gentle gradient) and one photo, per condition; the
    condition is reported as ``thin <condition>``."""
    rng = np.random.default_rng([seed, 7_000])
    h, w = 400, SIZE
    ramp = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :, None]
    bases = []
    for name, low, high in (("thin-light", 190, 256), ("thin-mid", 90, 170)):
        a, b = rng.integers(low, high, 3), rng.integers(low, high, 3)
        base = np.broadcast_to(a * (1 - ramp) + b * ramp, (h, w, 3))
        bases.append((name, np.round(base).astype(np.uint8)))
    photo = SKIMAGE_SOURCES[seed % len(SKIMAGE_SOURCES)]
    bases.append((f"thin-{photo}", fit(skimage_image(photo))))
    out = []
    for index, (name, base) in enumerate(bases):
        for sample in paint_and_save(name, base, seed, 2000 + index, list(conditions),
                                     widths=THIN_WIDTHS):
            sample.condition = f"thin {sample.condition}"
            out.append(sample)
    return out


# vivid greens of art lines: excess 190-220, 39-68 from #00ff00 (none within the seed distance)
NEON_COLORS = ((48, 255, 48), (30, 240, 20), (60, 255, 0), (0, 230, 40))


def neon_art(rng: np.random.Generator, color: tuple[int, int, int], width: int = SIZE,
             height: int = 400) -> np.ndarray:
    """Flat ellipses outlined in a vivid green, and lines of it (1-3 px, anti-aliased): a
    neon outline style, whose lines look like thin strokes of the mask color."""
    s = 4
    img = Image.new("RGB", (width * s, height * s),
                    tuple(int(v) for v in rng.integers(150, 256, 3)))
    draw = ImageDraw.Draw(img)
    for _ in range(10):
        x0, y0 = rng.integers(0, width * s, 2)
        w, h = rng.integers(30 * s, 200 * s, 2)
        draw.ellipse([int(x0), int(y0), int(x0 + w), int(y0 + h)],
                     fill=tuple(int(v) for v in rng.integers(0, 256, 3)), outline=color,
                     width=int(rng.integers(1 * s, 3 * s + 1)))
    for _ in range(6):
        ends = [tuple(int(v) for v in rng.integers(0, width * s, 2)) for _ in range(2)]
        draw.line(ends, fill=color, width=int(rng.integers(1 * s, 3 * s + 1)))
    return np.asarray(img.resize((width, height), Image.LANCZOS), dtype=np.uint8).copy()


def neon_samples(seed: int, conditions: list[str]) -> list[Sample]:
    """Pictures with vivid green art lines (``neon_art``, one per color of
    ``NEON_COLORS``), painted with strokes as the others; the condition is reported as
    ``neon <condition>``."""
    out = []
    for index, color in enumerate(NEON_COLORS):
        base = neon_art(np.random.default_rng([seed, 8_000, index]), color)
        for sample in paint_and_save(f"neon{index}", base, seed, 3000 + index, conditions):
            sample.condition = f"neon {sample.condition}"
            out.append(sample)
    return out


def paint_and_save(name: str, base: np.ndarray, seed: int, index: int, conditions: list[str],
                   widths: tuple[float, ...] = STROKE_WIDTHS) -> list[Sample]:
    """``base`` painted with strokes and saved per condition; the strokes and each
    condition's draws come from generators keyed by (seed, index[, condition])."""
    from scipy import ndimage

    h, w = base.shape[:2]
    # one generator per picture and condition: the same strokes under every condition,
    # whichever conditions are asked for
    paths = stroke_paths(np.random.default_rng([seed, index]), w, h, widths)
    out = []
    for condition in conditions:
        rng = np.random.default_rng([seed, index, CONDITIONS.index(condition)])
        antialias = condition != "png-aliased" and not (
            condition.startswith("jpeg") and rng.random() < 0.3)
        painted, cover = paint(base, paths, antialias)
        state = rng.bit_generator.state
        image, factor = encode(painted, condition, rng)
        rng.bit_generator.state = state
        # the reference: the clean picture through the same resize and encoding
        clean, _ = encode(base, condition, rng)
        strokes = cover > 0
        if factor != 1.0:
            size = (image.shape[1], image.shape[0])
            strokes = _resized((cover * 255).astype(np.uint8), size, Image.BILINEAR) > 0
        _, count = ndimage.label(strokes)
        out.append(Sample(f"{name}", condition, clean, image, strokes, int(count)))
    return out


def green_art(seed: int) -> list[tuple[str, np.ndarray]]:
    """Clean pictures whose greens are art, not masks: foliage, a green dress, a green UI."""
    rng = np.random.default_rng(10_000 + seed)
    h, w = 400, SIZE
    foliage = Image.new("RGB", (w, h), (120, 170, 230))
    draw = ImageDraw.Draw(foliage)
    for _ in range(900):
        x, y = rng.uniform(0, w), rng.uniform(h * 0.15, h)
        rx, ry = rng.uniform(3, 14), rng.uniform(2, 8)
        # natural leaf greens: red 30-70% and blue 10-50% of green
        g = int(rng.integers(90, 250))
        color = (int(g * rng.uniform(0.3, 0.7)), g, int(g * rng.uniform(0.1, 0.5)))
        draw.ellipse([x - rx, y - ry, x + rx, y + ry], fill=color)
    dress = Image.new("RGB", (w, h), (235, 225, 215))
    draw = ImageDraw.Draw(dress)
    draw.polygon([(180, 60), (300, 60), (380, 390), (100, 390)], fill=(20, 150, 60),
                 outline=(10, 60, 20), width=3)
    for k in range(12):  # folds: lighter and darker greens
        x = 130 + 20 * k
        shade = (30, 120 + 9 * (k % 8), 50) if k % 2 else (40, 200, 80)
        draw.line([(x + 60, 70), (x, 385)], fill=shade, width=5)
    dress = Image.fromarray(np.asarray(dress)).resize((w * 2, h * 2)).resize((w, h), Image.LANCZOS)
    ui = Image.new("RGB", (w, h), (245, 245, 245))
    draw = ImageDraw.Draw(ui)
    for i, color in enumerate([(76, 175, 80), (0, 200, 83), (50, 205, 50), (46, 204, 113),
                               (124, 252, 0), (0, 230, 64), (0, 255, 127), (173, 255, 47)]):
        x, y = 20 + (i % 4) * 115, 40 + (i // 4) * 170
        draw.rounded_rectangle([x, y, x + 100, y + 60], radius=12, fill=color)
        draw.text((x + 20, y + 22), "OK", fill=(255, 255, 255))
    draw.rectangle([0, 0, w, 22], fill=(30, 180, 60))
    return [("foliage", np.asarray(foliage).copy()), ("dress", np.asarray(dress).copy()),
            ("ui", np.asarray(ui).copy())]


def clean_samples(seed: int) -> list[Sample]:
    rng = np.random.default_rng(seed)
    out = []
    for name, img in green_art(seed):
        for condition in ("png", "jpeg90-420", "jpeg70-420"):
            image, _ = encode(img, condition, rng)
            out.append(Sample(name, condition, img, image, np.zeros(img.shape[:2], bool), 0))
    return out


def tint(img: np.ndarray) -> np.ndarray:
    i = img.astype(np.int16)
    return i[:, :, 1] - np.maximum(i[:, :, 0], i[:, :, 2])


def score(sample: Sample, **decensor_options: object) -> dict[str, float]:
    from scipy import ndimage

    import deepcream
    from deepcream.masks import find_paint

    t0 = time.perf_counter()
    mask, _ = find_paint(sample.image)
    if decensor_options.get("mask_tolerance") is not None:
        from deepcream.masks import find_mask

        mask = find_mask(sample.image, tolerance=int(decensor_options["mask_tolerance"]))
    find_ms = (time.perf_counter() - t0) * 1000
    result = deepcream.decensor(Image.fromarray(sample.image), engine="classical",
                                **decensor_options)
    out = result.pixels[0].rgb
    changed = np.any(out != sample.image, axis=2)
    if sample.stroke_count == 0:
        return {"regions": result.regions, "changed": int(changed.sum()), "find_ms": find_ms}
    dist = ndimage.distance_transform_edt(~sample.strokes)
    tinted = (tint(out) > TINT) & (tint(sample.clean) <= TINT) & (dist <= NEAR_STROKE)
    return {
        "tinted": int(tinted.sum()),
        # the paint the mask missed (left as is), vs green the fill itself chose inside it
        "missed": int((tinted & ~mask).sum()),
        "missed_beyond": int((tinted & ~mask & (dist > FAR)).sum()),
        "tinted_pct": 100.0 * tinted.sum() / max(int(sample.strokes.sum()), 1),
        "far": int((changed & (dist > FAR)).sum()),
        "regions": result.regions,
        "strokes": sample.stroke_count,
        "ratio": result.regions / sample.stroke_count,
        "mask_px": int(mask.sum()),
        "find_ms": find_ms,
    }


def score_mask(sample: Sample, mask: np.ndarray | None = None) -> dict[str, float]:
    """The mask-only figures (no fill needed: pixels outside the mask are output as they
    are): green-tinted stroke pixels left outside the mask, mask pixels farther than 6 px
    from a stroke, regions / strokes."""
    from scipy import ndimage

    from deepcream.masks import find_paint
    from deepcream.regions import find_regions

    if mask is None:
        mask, _ = find_paint(sample.image)
    regions = len(find_regions(mask))
    if sample.stroke_count == 0:
        return {"regions": regions, "mask_px": int(mask.sum())}
    dist = ndimage.distance_transform_edt(~sample.strokes)
    left = (tint(sample.image) > TINT) & (tint(sample.clean) <= TINT) & (dist <= NEAR_STROKE)
    return {"missed": int((left & ~mask).sum()), "far": int((mask & (dist > FAR)).sum()),
            # tinted pixels farther than FAR from a stroke: no mask can take them without
            # changing pixels there (JPEG ringing reaches past FAR)
            "missed_beyond": int((left & ~mask & (dist > FAR)).sum()),
            "regions": regions, "strokes": sample.stroke_count,
            "ratio": regions / sample.stroke_count}


def large_pictures() -> dict[str, np.ndarray]:
    """The 2604x2513 pictures the mask-finding time is measured on: the astronaut photo with
    long wavy strokes saved as JPEG q90 4:2:0, and the reference workload (17 exact strokes)
    as PNG and as JPEG q90 (PIL's default 4:2:0)."""
    from deepcream_bench.workload import make_workload_image

    rng = np.random.default_rng(7)
    base = np.asarray(Image.fromarray(skimage_image("astronaut")).resize((2604, 2513),
                                                                         Image.BICUBIC))
    paths = [([(x * 5.4, y * 5.0) for x, y in pts], w * 4) for pts, w in stroke_paths(rng, 480, 500)]
    painted, _ = paint(base, paths, antialias=False)
    strokes, _ = encode(painted, "jpeg90-420", rng)
    workload, _ = make_workload_image()
    buffer = io.BytesIO()
    Image.fromarray(workload).save(buffer, "JPEG", quality=90)
    workload_jpeg = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    return {"astronaut strokes, JPEG q90 4:2:0": strokes, "workload PNG": workload,
            "workload JPEG q90": workload_jpeg}


def time_large(runs: int = 9) -> dict[str, tuple[float, float]]:
    """Per picture of ``large_pictures``: (wall, CPU) median mask-finding ms over ``runs``
    runs after one warm-up. CPU time is quoted too: OpenCV runs on both cores, and on a
    shared machine wall time also measures the neighbours."""
    from deepcream.masks import find_paint

    out = {}
    for name, image in large_pictures().items():
        find_paint(image)
        walls, cpus = [], []
        for _ in range(runs):
            t0, c0 = time.perf_counter(), time.process_time()
            find_paint(image)
            walls.append((time.perf_counter() - t0) * 1000)
            cpus.append((time.process_time() - c0) * 1000)
        out[name] = (statistics.median(walls), statistics.median(cpus))
    return out


def timing_lines(large_ms: dict[str, tuple[float, float]]) -> list[str]:
    return [f"find_paint 2604x2513, {name}: {wall:.0f} ms wall, {cpu:.0f} ms CPU (medians of 9; "
            f"load average {os.getloadavg()[0]:.1f})" for name, (wall, cpu) in large_ms.items()]


def summarize(rows: list[dict]) -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = {}
    for condition in dict.fromkeys(r["condition"] for r in rows):
        rs = [r for r in rows if r["condition"] == condition]
        stroke_px = sum(r.get("stroke_px", 0) for r in rs)
        table[condition] = {
            "images": len(rs),
            "tinted_images": sum(1 for r in rs if r["tinted"] > 0),
            "tinted_total": sum(r["tinted"] for r in rs),
            "tinted_pct_total": 100.0 * sum(r["tinted"] for r in rs) / max(stroke_px, 1),
            "missed_images": sum(1 for r in rs if r["missed"] > 0),
            "missed_total": sum(r["missed"] for r in rs),
            "far_total": sum(r["far"] for r in rs),
            "beyond_total": sum(r.get("missed_beyond", 0) for r in rs),
            # left outside the mask within FAR px of a stroke: what a mask may still take
            # without changing pixels farther than FAR (the 6-8 px rest it may not)
            "near_total": sum(r["missed"] - r.get("missed_beyond", 0) for r in rs),
            "near_pct_total": 100.0 * sum(r["missed"] - r.get("missed_beyond", 0) for r in rs)
            / max(stroke_px, 1),
            "near_images": sum(1 for r in rs if r["missed"] > r.get("missed_beyond", 0)),
            "beyond_only_images": sum(1 for r in rs if r["missed"] > 0
                                      and r["missed"] == r.get("missed_beyond", 0)),
            "ratio_max": max(r["ratio"] for r in rs),
            "ratio_over_1.5": sum(1 for r in rs if r["ratio"] > 1.5),
            "find_ms_median": statistics.median(r["find_ms"] for r in rs),
        }
    return table


def render(table: dict, clean: list[dict], large_ms: dict[str, tuple[float, float]] | None,
           seeds: list[int]) -> str:
    lines = [f"Seeds {seeds}; {SIZE} px images; classical engine.", "",
             "| condition | images | images with tinted px | tinted px (% of stroke px) "
             "| of which outside the mask (images) | of those <= 6 px from a stroke: px "
             "(% of stroke px) (images) | of those 6-8 px from a stroke (images with no "
             "other) | px changed > 6 px away | max regions/strokes | images > 1.5x "
             "| find ms |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for cond, t in table.items():
        lines.append(f"| {cond} | {t['images']} | {t['tinted_images']} | {t['tinted_total']} "
                     f"({t['tinted_pct_total']:.4f}%) | {t['missed_total']} ({t['missed_images']}) "
                     f"| {t['near_total']} ({t['near_pct_total']:.4f}%) ({t['near_images']}) "
                     f"| {t['beyond_total']} ({t['beyond_only_images']}) "
                     f"| {t['far_total']} | {t['ratio_max']:.2f} "
                     f"| {t['ratio_over_1.5']} | {t['find_ms_median']:.1f} |")
    lines += ["", "| clean image | condition | seed | regions found | pixels changed |",
              "|---|---|---:|---:|---:|"]
    for r in clean:
        lines.append(f"| {r['name']} | {r['condition']} | {r['seed']} | {r['regions']} "
                     f"| {r['changed']} |")
    if large_ms is not None:
        lines += ["", *timing_lines(large_ms)]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, nargs="+", default=[100, 101, 102, 103, 104])
    ap.add_argument("--conditions", nargs="+", choices=CONDITIONS, default=list(CONDITIONS))
    ap.add_argument("--out", type=Path, default=Path("."))
    ap.add_argument("--no-timing", action="store_true")
    ap.add_argument("--timing-only", action="store_true",
                    help="only the 2604x2513 mask-finding time")
    ap.add_argument("--threads", type=int, default=None, metavar="N",
                    help="OpenCV threads (default: OpenCV's, all cores); 1 gives CPU figures "
                    "that a busy machine disturbs less")
    ap.add_argument("--mask-only", action="store_true",
                    help="skip the fill: report only what the mask leaves (paint outside the "
                    "mask, mask pixels far from strokes, regions); much faster")
    ap.add_argument("--no-thin", action="store_true",
                    help="skip the pictures painted with thin strokes only (rows 'thin ...')")
    ap.add_argument("--neon", action="store_true",
                    help="only the pictures with vivid green art lines (rows 'neon ...'), "
                    "under the given conditions")
    ap.add_argument("--dump", type=Path, default=None, metavar="DIR",
                    help="write the worst images (input and output) here")
    args = ap.parse_args()
    if args.threads is not None:
        import cv2

        cv2.setNumThreads(args.threads)
    if args.timing_only:
        print("\n".join(timing_lines(time_large())))
        return 0
    rows, clean_rows = [], []
    for seed in args.seed:
        if args.neon:
            samples = neon_samples(seed, args.conditions)
        else:
            samples = painted_samples(seed, args.conditions)
            if not args.no_thin:
                samples += thin_samples(seed)
        for s in samples:
            t0 = time.perf_counter()
            if args.mask_only:
                r = score_mask(s)
                r.update(tinted=r["missed"], find_ms=(time.perf_counter() - t0) * 1000)
            else:
                r = score(s)
            r.update(name=s.name, condition=s.condition, seed=seed,
                     stroke_px=int(s.strokes.sum()))
            rows.append(r)
            if args.dump is not None and (r["tinted"] or r["far"] or r["ratio"] > 1.5):
                args.dump.mkdir(parents=True, exist_ok=True)
                Image.fromarray(s.image).save(args.dump / f"{seed}-{s.name}-{s.condition}.png")
            print(f"seed {seed} {s.name:22s} {s.condition:15s} tinted {r['tinted']:5d} "
                  f"(missed {r['missed']:5d}) "
                  f"far {r['far']:4d} regions {r['regions']:3d}/{r['strokes']:2d} "
                  f"{r['find_ms']:.0f} ms", flush=True)
        for s in clean_samples(seed):
            r = score_mask(s) if args.mask_only else score(s)
            r.setdefault("changed", r.get("mask_px", 0))
            r.update(name=s.name, condition=s.condition, seed=seed)
            clean_rows.append(r)
    table = summarize(rows)
    large = None if args.no_timing else time_large()
    text = render(table, clean_rows, large, args.seed)
    if args.mask_only:
        text = ("Mask only (no fill): 'tinted' = green-tinted stroke pixels left outside the "
                "mask; 'changed' = mask pixels.\n") + text
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "mask-eval.json").write_text(json.dumps(
        {"seeds": args.seed, "conditions": table, "clean": clean_rows, "rows": rows,
         "large_ms": large}, indent=1))
    (args.out / "mask-eval.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
