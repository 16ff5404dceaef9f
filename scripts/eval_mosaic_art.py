#!/usr/bin/env python3
"""Evaluate `deepcream.mosaic.detect_mosaic` on generated anime- and manga-style art.

Nothing binary is committed: every image is drawn from a seed.

- *Illustrations* (color): a soft background gradient, figures made of flat-colored shapes
  with dark anti-aliased outlines, two-tone cel shading and soft (blurred) shading, some
  with hatching or a screentone area, a few words of text.
- *Manga pages* (grey): white paper, panel borders, shapes with ink outlines, screentone
  (dot grids of period 4-9 px at 0, 15, 30 or 45 degrees, binary or anti-aliased, flat or
  graded), hatching and cross-hatching (1-2 px lines every 4-40 px), speech text.
- *Mosaics as drawing programs make them*: the grid anchored at the canvas origin, over an
  ellipse- or brush-shaped selection (a stroke of overlapping discs), block size about 1/100
  of the long side or 4-8 px; each cell gets the mean of its whole square, inside the
  selection only.
- Conditions: PNG, JPEG q95 / 90 / 80 / 70, and rescaled by 0.75 / 0.5 after pixelation
  (area filter, then PNG).
- Clean pages (the same generators with no mosaic) give the false positives, as PNG and JPEG
  q95 / 90 / 80 / 70.

Metrics per condition: IoU with the pixelated selection, the share of the detected area
outside it ("outside"), and the share of visibly changed mosaic cells missed (a cell of the
patch grid whose pixels moved by more than 2 levels, missed when under half of its selected
pixels are detected). Development seeds (tuning) and held-out seeds are reported apart:

    .venv/bin/python scripts/eval_mosaic_art.py --seed 0 1 2 --out /tmp/art-dev
    .venv/bin/python scripts/eval_mosaic_art.py --seed 100 101 102 --out /tmp/art-held-out

writes ``mosaic-art-eval.json`` and ``mosaic-art-eval.md`` into ``--out``. ``--hatched``
evaluates hatched gradients instead (``HATCHINGS``: straight 2 px lines over a gradient, with
9 and 17 px rectangular mosaics, and the same pictures clean; PNG and JPEG) and writes
``mosaic-hatched-eval.json`` / ``.md``.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CONDITIONS = ["png", "jpeg95", "jpeg90", "jpeg80", "jpeg70", "scale75", "scale50"]
# Not in the default set: the same rescales with Pillow's bicubic and Lanczos filters (what
# most image programs and libraries use), which spread each block step over 3-6 pixels.
FILTER_CONDITIONS = ["scale75-bicubic", "scale75-lanczos", "scale50-bicubic", "scale50-lanczos"]
_PIL_FILTERS = {"bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS}
CLEAN_CONDITIONS = ["png", "jpeg95", "jpeg90", "jpeg80", "jpeg70"]
DEV_SEEDS = [0, 1, 2]
HELD_OUT_SEEDS = [100, 101, 102]
WORDS = ["WHAT?!", "No way...", "Hmm", "Let's go!", "Wait for me", "BOOM", "ahh",
         "I told you", "Really?", "Thank you"]


@dataclass
class ArtSample:
    name: str
    image: np.ndarray  # uint8 [H, W, 3]
    truth: np.ndarray  # bool [H, W]: pixelated pixels
    patches: list[dict] = field(default_factory=list)  # block, selection mask, changed cells


# --- textures ----------------------------------------------------------------------------

def screentone(h: int, w: int, rng: np.random.Generator, period: float | None = None,
               angle: float | None = None) -> np.ndarray:
    """Ink coverage in [0, 1] of a halftone dot screen (1 = black dot)."""
    period = float(rng.uniform(4.0, 9.0)) if period is None else period
    angle = float(rng.choice([0.0, 15.0, 30.0, 45.0])) if angle is None else angle
    ss = 2  # supersampled for anti-aliasing
    yy, xx = np.mgrid[0:h * ss, 0:w * ss].astype(np.float32) / ss
    t = np.deg2rad(angle)
    u = (xx * np.cos(t) + yy * np.sin(t)) / period
    v = (-xx * np.sin(t) + yy * np.cos(t)) / period
    du, dv = u - np.round(u), v - np.round(v)
    dist = np.sqrt(du * du + dv * dv)
    if rng.random() < 0.4:  # graded tone: dot size changes across the area
        ramp = np.linspace(0.12, 0.45, w * ss, dtype=np.float32)[None, :]
        radius = np.broadcast_to(ramp, dist.shape)
    else:
        radius = np.full(dist.shape, float(rng.uniform(0.15, 0.42)), np.float32)
    dots = (dist <= radius).astype(np.float32)
    cov = cv2.resize(dots, (w, h), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:  # 1-bit screentone, as many manga pages are stored
        cov = (cov >= 0.5).astype(np.float32)
    return cov


def hatching(h: int, w: int, rng: np.random.Generator, cross: bool | None = None) -> np.ndarray:
    """Ink coverage in [0, 1] of parallel lines (and a second direction when ``cross``)."""
    spacing = float(rng.uniform(4.0, 40.0))
    width = float(rng.choice([1.0, 1.5, 2.0]))
    angle = float(rng.uniform(0, 180))
    cross = bool(rng.random() < 0.3) if cross is None else cross
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.zeros((h, w), np.float32)
    for a in ([angle, angle + 90.0] if cross else [angle]):
        t = np.deg2rad(a)
        d = xx * np.cos(t) + yy * np.sin(t)
        off = np.abs(((d / spacing) - np.round(d / spacing)) * spacing)
        out = np.maximum(out, np.clip(width / 2 + 0.5 - off, 0.0, 1.0))
    return out


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _blob(rng: np.random.Generator, cx: float, cy: float, r: float, n: int = 9
          ) -> list[tuple[float, float]]:
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = r * rng.uniform(0.6, 1.2, n)
    return [(float(cx + a * np.cos(t)), float(cy + a * np.sin(t))) for t, a in zip(ang, rad, strict=True)]


def _shape_mask(size: tuple[int, int], rng: np.random.Generator, scale: int) -> Image.Image:
    w, h = size
    m = Image.new("L", (w * scale, h * scale), 0)
    d = ImageDraw.Draw(m)
    cx, cy = rng.uniform(0, w) * scale, rng.uniform(0, h) * scale
    r = rng.uniform(0.06, 0.22) * min(w, h) * scale
    kind = rng.integers(3)
    if kind == 0:
        d.ellipse([cx - r, cy - r * rng.uniform(0.6, 1.6), cx + r, cy + r * rng.uniform(0.6, 1.6)],
                  fill=255)
    elif kind == 1:
        d.polygon(_blob(rng, cx, cy, r), fill=255)
    else:
        d.rounded_rectangle([cx - r, cy - r * 0.7, cx + r, cy + r * 0.7], radius=int(r * 0.3),
                            fill=255)
    return m


def _outline(mask: np.ndarray, width: int) -> np.ndarray:
    k = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    return (cv2.dilate(mask, k) > 0) & ~(cv2.erode(mask, k) > 0)


def illustration(rng: np.random.Generator, width: int = 1200, height: int = 900) -> np.ndarray:
    """Color anime-style illustration (see module docstring)."""
    s = 2  # drawn at 2x, downsampled: anti-aliased outlines as drawing programs make them
    W, H = width * s, height * s
    top, bottom = rng.integers(170, 256, 3), rng.integers(120, 256, 3)
    ramp = np.linspace(0, 1, H, dtype=np.float32)[:, None, None]
    img = (top[None, None, :] * (1 - ramp) + bottom[None, None, :] * ramp) * np.ones((1, W, 1), np.float32)
    ink = np.asarray(rng.integers(0, 50, 3), np.float32)
    skin = np.asarray([rng.integers(235, 256), rng.integers(215, 240), rng.integers(195, 225)],
                      np.float32)
    for i in range(int(rng.integers(8, 16))):
        full = np.asarray(_shape_mask((width, height), rng, s)) > 0
        if not full.any():
            continue
        # Work on the shape's box (plus the outline's reach) only.
        ys, xs = np.nonzero(full)
        y0, y1 = max(0, ys.min() - 8), min(H, ys.max() + 9)
        x0, x1 = max(0, xs.min() - 8), min(W, xs.max() + 9)
        m = full[y0:y1, x0:x1]
        bh, bw = m.shape
        sub = img[y0:y1, x0:x1]
        base = skin if i % 3 == 0 else np.asarray(rng.integers(30, 256, 3), np.float32)
        fill = np.broadcast_to(base, sub.shape).copy()
        style = rng.integers(4)
        ys, xs = ys - y0, xs - x0
        if style == 0:  # two-tone cel shading: a darker tone on one side of a line
            a = rng.uniform(0, 2 * np.pi)
            yy, xx = np.mgrid[0:bh, 0:bw]
            side = ((xx - xs.mean()) * np.cos(a) + (yy - ys.mean()) * np.sin(a)) > rng.uniform(0, 30) * s
            fill[side] *= 0.78
        elif style == 1:  # soft shading: a blurred dark blob inside the shape
            shade = np.zeros((bh, bw), np.float32)
            j = rng.integers(len(ys))
            cv2.circle(shade, (int(xs[j]), int(ys[j])), int(rng.uniform(30, 120) * s), 1.0, -1)
            shade = cv2.GaussianBlur(shade, (0, 0), 25 * s)
            fill *= (1 - 0.35 * shade)[:, :, None]
        elif style == 2:  # hatching in the shadow
            hat = hatching(bh, bw, rng)
            fill = fill * (1 - 0.7 * hat[:, :, None]) + ink * 0.7 * hat[:, :, None]
        else:  # a screentone area (drawn at the output resolution)
            tone = screentone(max(1, bh // s), max(1, bw // s), rng)
            tone = cv2.resize(tone, (bw, bh), interpolation=cv2.INTER_NEAREST)
            fill = fill * (1 - 0.6 * tone[:, :, None]) + ink * 0.6 * tone[:, :, None]
        sub[m] = fill[m]
        line = _outline(m.astype(np.uint8), int(rng.integers(1, 4)) * s // 2 + 1)
        sub[line] = ink
    img = cv2.resize(np.clip(img, 0, 255), (width, height), interpolation=cv2.INTER_AREA)
    out = Image.fromarray(np.round(img).astype(np.uint8))
    d = ImageDraw.Draw(out)
    for _ in range(int(rng.integers(1, 4))):
        d.text((int(rng.integers(0, width - 200)), int(rng.integers(0, height - 40))),
               str(rng.choice(WORDS)), fill=tuple(int(v) for v in ink), font=_font(int(rng.integers(18, 40))))
    return np.asarray(out).copy()


def manga_page(rng: np.random.Generator, width: int = 1000, height: int = 1400) -> np.ndarray:
    """Grey manga page: panels, ink outlines, screentone, hatching, text (see module docstring)."""
    page = np.full((height, width), 255.0, np.float32)
    # Panels: a 2-3 row layout with a gutter.
    rows = int(rng.integers(2, 4))
    cuts = np.sort(rng.uniform(0.25, 0.75, rows - 1)) * height if rows > 1 else []
    ys = [30] + [int(c) for c in cuts] + [height - 30]
    panels = []
    for r in range(len(ys) - 1):
        x_cut = int(rng.uniform(0.35, 0.65) * width) if rng.random() < 0.6 else None
        xs = [30, width - 30] if x_cut is None else [30, x_cut, width - 30]
        for c in range(len(xs) - 1):
            panels.append((xs[c] + 8, ys[r] + 8, xs[c + 1] - 8, ys[r + 1] - 8))
    for x0, y0, x1, y1 in panels:
        pw, ph = x1 - x0, y1 - y0
        if pw < 60 or ph < 60:  # two cuts close together: no panel there
            continue
        sub = page[y0:y1, x0:x1]
        # background of the panel: white, a screentone or hatching
        bgk = rng.integers(3)
        if bgk == 1:
            sub[:] = 255 * (1 - screentone(ph, pw, rng))
        elif bgk == 2:
            sub[:] = 255 * (1 - hatching(ph, pw, rng))
        for _ in range(int(rng.integers(2, 6))):
            full = np.asarray(_shape_mask((pw, ph), rng, 2).resize((pw, ph), Image.LANCZOS),
                              np.float32) / 255.0
            ys, xs = np.nonzero(full > 0)
            if not len(ys):
                continue
            sy = slice(max(0, ys.min() - 6), min(ph, ys.max() + 7))
            sx = slice(max(0, xs.min() - 6), min(pw, xs.max() + 7))
            m = full[sy, sx]
            bh, bw = m.shape
            kind = rng.integers(4)
            if kind == 0:
                tex = 1 - screentone(bh, bw, rng)
            elif kind == 1:
                tex = 1 - hatching(bh, bw, rng)
            elif kind == 2:
                tex = np.full((bh, bw), float(rng.choice([1.0, 0.0, 0.55])), np.float32)
            else:
                tex = np.ones((bh, bw), np.float32)
            box = sub[sy, sx]
            box[:] = box * (1 - m) + 255 * tex * m
            edge = _outline((m > 0.5).astype(np.uint8), int(rng.integers(1, 3)))
            edge = cv2.GaussianBlur(edge.astype(np.float32), (3, 3), 0.7)
            box[:] = box * (1 - edge)
        # panel border
        cv2.rectangle(page, (x0, y0), (x1, y1), 0, int(rng.integers(2, 5)))
    out = Image.fromarray(np.clip(np.round(page), 0, 255).astype(np.uint8), "L")
    d = ImageDraw.Draw(out)
    for _ in range(int(rng.integers(2, 6))):
        x, y = int(rng.integers(40, width - 260)), int(rng.integers(40, height - 120))
        d.ellipse([x - 15, y - 15, x + 220, y + 80], fill=255, outline=0, width=2)
        d.text((x + 10, y + 15), str(rng.choice(WORDS)), fill=0, font=_font(int(rng.integers(16, 30))))
    return np.repeat(np.asarray(out)[:, :, None], 3, axis=2).copy()


# --- mosaics -----------------------------------------------------------------------------

def selection(h: int, w: int, rng: np.random.Generator, size: float) -> np.ndarray:
    """bool [h, w]: an ellipse or a brush stroke (overlapping discs along a wobbly path)."""
    m = np.zeros((h, w), np.uint8)
    cx, cy = rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.85) * h
    if rng.random() < 0.5:
        ax = (int(size * rng.uniform(0.5, 1.0)), int(size * rng.uniform(0.4, 0.9)))
        cv2.ellipse(m, (int(cx), int(cy)), ax, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    else:
        r = size * rng.uniform(0.25, 0.45)
        a = rng.uniform(0, 2 * np.pi)
        for _ in range(int(rng.integers(4, 9))):
            cv2.circle(m, (int(cx), int(cy)), int(r), 1, -1)
            a += rng.uniform(-0.8, 0.8)
            cx += np.cos(a) * r * 0.8
            cy += np.sin(a) * r * 0.8
    return m.astype(bool)


def pixelate_selection(img: np.ndarray, sel: np.ndarray, block: int) -> np.ndarray:
    """In place: every cell of the canvas-anchored grid takes its whole square's mean, inside
    ``sel`` only. Returns bool [ncy, ncx]: the cells whose pixels moved by more than 2 levels."""
    h, w = sel.shape
    ncy, ncx = -(-h // block), -(-w // block)
    changed = np.zeros((ncy, ncx), bool)
    ys, xs = np.nonzero(sel)
    for i in range(ys.min() // block, ys.max() // block + 1):
        for j in range(xs.min() // block, xs.max() // block + 1):
            y0, x0 = i * block, j * block
            s = sel[y0:y0 + block, x0:x0 + block]
            if not s.any():
                continue
            cell = img[y0:y0 + block, x0:x0 + block]
            mean = np.round(cell.reshape(-1, 3).mean(axis=0)).astype(np.uint8)
            changed[i, j] = np.abs(cell[s].astype(np.int16) - mean).max() > 2
            cell[s] = mean
    return changed


def add_art_mosaics(base: np.ndarray, rng: np.random.Generator, block_px: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """(image, truth, patches): 1-3 patches pixelated on the canvas grid. ``block_px``: every
    patch takes that block size (drawn as usual and then replaced, so the random stream and
    the selections stay those of the default set as far as the visible-change test allows)."""
    img = base.copy()
    h, w = img.shape[:2]
    truth = np.zeros((h, w), bool)
    patches = []
    for _ in range(int(rng.integers(1, 4))):
        block = (max(4, round(max(h, w) / 100 * rng.uniform(0.8, 1.3))) if rng.random() < 0.6
                 else int(rng.integers(4, 9)))
        if block_px is not None:
            block = block_px
        near = cv2.dilate(truth.astype(np.uint8), np.ones((25, 25), np.uint8)) > 0
        for _try in range(30):
            sel = selection(h, w, rng, size=float(rng.uniform(0.08, 0.2) * min(h, w)))
            if not sel.any() or near[sel].any():
                continue
            # Censored areas are drawn areas: at least half of the selection's cells must
            # change visibly (a mosaic over a flat fill is the fill and shows nothing).
            trial = img.copy()
            changed = pixelate_selection(trial, sel, block)
            padded = np.zeros((changed.shape[0] * block, changed.shape[1] * block), bool)
            padded[:h, :w] = sel
            touched = padded.reshape(changed.shape[0], block, changed.shape[1], block).any(axis=(1, 3))
            if np.count_nonzero(changed) >= 0.5 * np.count_nonzero(touched):
                break
        else:
            continue
        img = trial
        truth |= sel
        patches.append({"block": block, "selection": sel, "changed": changed})
    return img, truth, patches


def make_art_set(seed: int, illustrations: int = 3, pages: int = 3, clean_pages: int = 5,
                 block_px: int | None = None) -> tuple[list[ArtSample], list[ArtSample]]:
    """(mosaic samples, clean pages) for one seed. The clean pages have their own random
    stream, so a change to the mosaic generator does not change them. ``block_px``: see
    ``add_art_mosaics``."""
    rng = np.random.default_rng(seed)
    mosaic: list[ArtSample] = []
    bases = [(f"illust{i}", illustration(rng)) for i in range(illustrations)]
    bases += [(f"manga{i}", manga_page(rng)) for i in range(pages)]
    for name, base in bases:
        img, truth, patches = add_art_mosaics(base, rng, block_px)
        mosaic.append(ArtSample(name, img, truth, patches))
    clean_rng = np.random.default_rng([seed, 1])
    clean = [ArtSample(f"clean-manga{i}", manga_page(clean_rng), np.zeros((1400, 1000), bool))
             for i in range(clean_pages)]
    return mosaic, clean


# --- hatched gradients (opt-in: --hatched) -----------------------------------------------

#: (line period px, angle degrees) of the hatched pictures: 37 px at 45 degrees is the case
#: issue 13 measured (2 px lines; 3.08 cells of a 17 px mosaic across, 5.81 of a 9 px one).
HATCHINGS = ((37, 45), (23, 30), (12, 45), (29, 60), (37, 0))


def hatched_gradient(rng: np.random.Generator, period: int, angle: float, width: int = 2,
                     height: int = 900, length: int = 1200) -> np.ndarray:
    """uint8 [H, W, 3]: a two-color linear gradient under straight dark lines ``width`` px
    wide every ``period`` px (measured across them) at ``angle`` degrees."""
    yy, xx = np.mgrid[0:height, 0:length].astype(np.float32)
    c0, c1 = rng.uniform(60, 230, 3), rng.uniform(60, 230, 3)
    t = xx / length * rng.uniform(0.3, 1.0) + yy / height * rng.uniform(0.3, 1.0)
    t /= t.max()
    img = c0 * (1 - t[..., None]) + c1 * t[..., None]
    a = np.deg2rad(angle)
    line = (xx * np.cos(a) + yy * np.sin(a)) % period < width
    img[line] *= 0.35
    return np.clip(img, 0, 255).astype(np.uint8)


def make_hatched_set(seed: int) -> tuple[list[ArtSample], list[ArtSample]]:
    """(mosaic samples, clean pictures) for one seed: per ``HATCHINGS`` entry a hatched
    gradient with two rectangular mosaics of 9 and 17 px blocks on the canvas grid (8-15
    blocks a side, apart), and the same gradient without them."""
    rng = np.random.default_rng([seed, 13])
    mosaic, clean = [], []
    for period, angle in HATCHINGS:
        base = hatched_gradient(rng, period, angle)
        h, w = base.shape[:2]
        img, truth, patches = base.copy(), np.zeros((h, w), bool), []
        for block in (9, 17):
            for _try in range(50):
                rh, rw = (int(rng.integers(8, 16)) * block for _ in range(2))
                y0 = int(rng.integers(0, (h - rh) // block)) * block
                x0 = int(rng.integers(0, (w - rw) // block)) * block
                if not truth[max(0, y0 - 25):y0 + rh + 25, max(0, x0 - 25):x0 + rw + 25].any():
                    break
            sel = np.zeros((h, w), bool)
            sel[y0:y0 + rh, x0:x0 + rw] = True
            patches.append({"block": block, "selection": sel,
                            "changed": pixelate_selection(img, sel, block)})
            truth |= sel
        name = f"hatch{period}-{angle}"
        mosaic.append(ArtSample(name, img, truth, patches))
        clean.append(ArtSample(f"clean-{name}", base, np.zeros((h, w), bool)))
    return mosaic, clean


# --- conditions and metrics --------------------------------------------------------------

def apply_condition(img: np.ndarray, truth: np.ndarray, condition: str
                    ) -> tuple[np.ndarray, np.ndarray, float]:
    """(image, truth at the image's size, scale) after the condition's saving/rescaling."""
    if condition.startswith("scale"):
        factor, _, filt = condition.removeprefix("scale").partition("-")
        f = int(factor) / 100
        h, w = img.shape[:2]
        size = (max(1, round(w * f)), max(1, round(h * f)))
        out = (np.asarray(Image.fromarray(img).resize(size, _PIL_FILTERS[filt])) if filt
               else cv2.resize(img, size, interpolation=cv2.INTER_AREA))
        t = cv2.resize(truth.astype(np.float32), size, interpolation=cv2.INTER_AREA) >= 0.5
        return out, t, f
    buf = io.BytesIO()
    if condition == "png":
        return img, truth, 1.0
    Image.fromarray(img).save(buf, "JPEG", quality=int(condition.removeprefix("jpeg")))
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB")).copy(), truth, 1.0


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    union = np.count_nonzero(pred | truth)
    return np.count_nonzero(pred & truth) / union if union else 1.0


def missed_cells(pred: np.ndarray, sample: ArtSample, scale: float) -> tuple[int, int]:
    """(missed, total) visibly changed cells: under half of the cell's selected pixels found."""
    missed = total = 0
    h, w = pred.shape
    for patch in sample.patches:
        b = patch["block"]
        sel = patch["selection"]
        for i, j in np.argwhere(patch["changed"]):
            y0, x0 = i * b, j * b
            s = sel[y0:y0 + b, x0:x0 + b]
            ys, xs = np.nonzero(s)
            py = np.clip(((ys + y0 + 0.5) * scale).astype(int), 0, h - 1)
            px = np.clip(((xs + x0 + 0.5) * scale).astype(int), 0, w - 1)
            total += 1
            missed += int(pred[py, px].mean() < 0.5)
    return missed, total


PLACES = ("border visible", "border flat", "next visible", "next flat", "deep visible", "deep flat")


def missed_by_place(pred: np.ndarray, sample: ArtSample, scale: float) -> dict[str, list[int]]:
    """Where the missed truth lies: {place: [missed px, truth px]}, by the pixel's distance
    from its selection's border (under one block: "border"; one to two: "next"; farther:
    "deep") and by whether its cell changed visibly ("visible", as ``pixelate_selection``
    counts it) or not ("flat": a block over a flat area, which only its exact color shows).
    Pixels are the condition's own (a rescaled picture's, by nearest neighbour)."""
    out = {k: [0, 0] for k in PLACES}
    h, w = pred.shape
    for patch in sample.patches:
        b, sel = patch["block"], patch["selection"]
        visible = np.kron(patch["changed"], np.ones((b, b), bool))[:sel.shape[0], :sel.shape[1]]
        depth = cv2.distanceTransform(np.pad(sel.astype(np.uint8), 1), cv2.DIST_L2, 3)[1:-1, 1:-1] / b
        if (h, w) != sel.shape:
            sel = cv2.resize(sel.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
            visible = cv2.resize(visible.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
            depth = cv2.resize(depth, (w, h), interpolation=cv2.INTER_NEAREST)
        missed = sel & ~pred
        for band, near in (("border", depth < 1), ("next", (depth >= 1) & (depth < 2)),
                           ("deep", depth >= 2)):
            for kind, cells in (("visible", visible), ("flat", ~visible)):
                part = sel & near & cells
                out[f"{band} {kind}"][0] += int(np.count_nonzero(missed & part))
                out[f"{band} {kind}"][1] += int(np.count_nonzero(part))
    return out


def photo_with_mosaic(block: int, seed: int, condition: str = "scale75") -> tuple[np.ndarray, np.ndarray]:
    """A photo (skimage's astronaut at 900 x 900) with an ellipse of ``block`` px blocks (grid
    at the canvas origin) placed by ``seed``, then saved or rescaled as ``condition`` says:
    (image, truth). The tests' sample for one mosaic over photographic content."""
    from eval_mosaic import skimage_image

    rng = np.random.default_rng(seed)
    img = cv2.resize(skimage_image("astronaut"), (900, 900), interpolation=cv2.INTER_CUBIC)
    sel = np.zeros(img.shape[:2], bool)
    yy, xx = np.mgrid[0:900, 0:900]
    cx, cy = rng.uniform(250, 650, 2)
    sel[((xx - cx) / 150.0) ** 2 + ((yy - cy) / 110.0) ** 2 <= 1.0] = True
    pixelate_selection(img, sel, block)
    out, truth, _scale = apply_condition(img, sel, condition)
    return out, truth


def evaluate(seeds: list[int], conditions: list[str], detector=None,
             make_set=make_art_set) -> dict:
    if detector is None:
        from deepcream.mosaic import detect_mosaic as detector
    out: dict = {"seeds": seeds, "conditions": {}, "clean": {}}
    sets = {seed: make_set(seed) for seed in seeds}
    for cond in conditions:
        rows = []
        for seed, (mosaic, _clean) in sets.items():
            for s in mosaic:
                img, truth, scale = apply_condition(s.image, s.truth, cond)
                pred = detector(img)
                found = np.count_nonzero(pred)
                outside = np.count_nonzero(pred & ~truth) / found if found else 0.0
                m, t = missed_cells(pred, s, scale)
                rows.append({"seed": seed, "name": s.name, "iou": iou(pred, truth),
                             "outside": outside, "missed_cells": m, "changed_cells": t,
                             "blocks": [p["block"] for p in s.patches],
                             "truth_px": int(np.count_nonzero(truth)),
                             "outside_px": int(np.count_nonzero(pred & ~truth)),
                             "missed_by_place": missed_by_place(pred, s, scale)})
        truth_px = max(1, sum(r["truth_px"] for r in rows))
        # (shares of all the condition's truth pixels, so that they add up with "outside")
        places = {k: sum(r["missed_by_place"][k][0] for r in rows) / truth_px for k in PLACES}
        places["outside"] = sum(r["outside_px"] for r in rows) / truth_px
        out["conditions"][cond] = {
            "missed_by_place": places,
            "images": len(rows),
            "mean_iou": float(np.mean([r["iou"] for r in rows])),
            "min_iou": float(np.min([r["iou"] for r in rows])),
            "mean_outside": float(np.mean([r["outside"] for r in rows])),
            "missed_cells": sum(r["missed_cells"] for r in rows) / max(1, sum(r["changed_cells"] for r in rows)),
            "per_image": rows,
        }
    for cond in [c for c in CLEAN_CONDITIONS if c in conditions]:
        rows = []
        for seed, (_mosaic, clean) in sets.items():
            for s in clean:
                img, _t, _f = apply_condition(s.image, s.truth, cond)
                rows.append({"seed": seed, "name": s.name,
                             "fp": float(np.count_nonzero(detector(img))) / (img.shape[0] * img.shape[1])})
        out["clean"][cond] = {"pages": len(rows), "max_fp": max(r["fp"] for r in rows),
                              "mean_fp": float(np.mean([r["fp"] for r in rows])), "per_page": rows}
    return out


def to_markdown(res: dict) -> str:
    blocks = f", every patch of {res['block_px']} px blocks" if res.get("block_px") else ""
    lines = [f"Seeds {res['seeds']}{blocks}", "",
             "| condition | images | mean IoU | min IoU | outside (mean) | changed cells missed |",
             "|---|---|---|---|---|---|"]
    for cond, r in res["conditions"].items():
        lines.append(f"| {cond} | {r['images']} | {r['mean_iou']:.3f} | {r['min_iou']:.3f} | "
                     f"{100 * r['mean_outside']:.1f}% | {100 * r['missed_cells']:.1f}% |")
    if any("missed_by_place" in r for r in res["conditions"].values()):
        cols = PLACES + ("outside",)
        lines += ["", "Missed truth by place, and the detection outside it, as shares of the truth "
                  "(`missed_by_place`):", "",
                  "| condition | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
        for cond, r in res["conditions"].items():
            lines.append(f"| {cond} | " + " | ".join(f"{100 * r['missed_by_place'][k]:.2f}%"
                                                      for k in cols) + " |")
    if res["clean"]:
        lines += ["", "| clean pages | pages | worst page FP | mean FP |", "|---|---|---|---|"]
        for cond, r in res["clean"].items():
            lines.append(f"| {cond} | {r['pages']} | {100 * r['max_fp']:.3f}% | {100 * r['mean_fp']:.3f}% |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, nargs="+", default=DEV_SEEDS)
    ap.add_argument("--conditions", nargs="+", choices=CONDITIONS + FILTER_CONDITIONS,
                    default=CONDITIONS)
    ap.add_argument("--worst", type=int, default=0, metavar="N")
    ap.add_argument("--dump", type=Path, default=None, metavar="DIR",
                    help="write the generated PNGs (mosaic and clean) there")
    ap.add_argument("--out", type=Path, default=Path("."))
    ap.add_argument("--hatched", action="store_true",
                    help="the hatched gradients instead (HATCHINGS, with 9 and 17 px "
                         "rectangular mosaics, and clean); PNG and JPEG conditions")
    ap.add_argument("--block", type=int, default=None, metavar="PX",
                    help="every patch takes blocks of PX px (the same selections as far as "
                         "possible): to compare block sizes, e.g. 8 and 16 (on JPEG's own "
                         "lines) against 12")
    ap.add_argument("--params", default=None, metavar="JSON",
                    help='MosaicParams overrides, e.g. \'{"resampled": false}\' (a stage off)')
    args = ap.parse_args()

    if args.block is not None and (args.hatched or args.block < 2):
        ap.error("--block needs a size of 2 px or more, and not --hatched")
    make_set = (make_hatched_set if args.hatched
                else functools.partial(make_art_set, block_px=args.block) if args.block
                else make_art_set)
    if args.hatched and args.conditions == CONDITIONS:
        args.conditions = CLEAN_CONDITIONS
    if args.dump:
        args.dump.mkdir(parents=True, exist_ok=True)
        for seed in args.seed:
            mosaic, clean = make_set(seed)
            for s in mosaic + clean:
                Image.fromarray(s.image).save(args.dump / f"s{seed}-{s.name}.png")
                Image.fromarray(s.truth.astype(np.uint8) * 255).save(args.dump / f"s{seed}-{s.name}.truth.png")
    detector = None
    if args.params:
        from deepcream.mosaic import MosaicParams, detect_mosaic

        prm = MosaicParams(**json.loads(args.params))
        def detector(img: np.ndarray) -> np.ndarray:
            return detect_mosaic(img, params=prm)
    res = evaluate(args.seed, args.conditions, detector, make_set)
    if args.params:
        res["params"] = json.loads(args.params)
    if args.block:
        res["block_px"] = args.block
    print(to_markdown(res))
    if args.worst:
        for cond, r in res["conditions"].items():
            print(f"{cond} worst:")
            for row in sorted(r["per_image"], key=lambda d: d["iou"])[:args.worst]:
                print(f"  s{row['seed']} {row['name']:<10} IoU {row['iou']:.3f} outside "
                      f"{row['outside']:.3f} missed {row['missed_cells']}/{row['changed_cells']} "
                      f"blocks {row['blocks']}")
        for cond, r in res["clean"].items():
            bad = [f"s{p['seed']} {p['name']} {100 * p['fp']:.2f}%" for p in r["per_page"] if p["fp"] > 0]
            print(f"clean {cond}: {', '.join(bad) or 'none'}")
    write_results(args.out, "mosaic-hatched-eval" if args.hatched else "mosaic-art-eval", res,
                  to_markdown(res))
    return 0


def write_results(out: Path, stem: str, res: dict, markdown: str) -> None:
    """``stem``.json (every figure) and ``stem``.md (the tables) in ``out``, atomically."""
    from deepcream.fsutil import atomic_write_bytes

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / f"{stem}.json", (json.dumps(res, indent=1, default=float) + "\n").encode())
    atomic_write_bytes(out / f"{stem}.md", markdown.encode())


if __name__ == "__main__":
    raise SystemExit(main())
