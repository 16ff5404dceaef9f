"""Procedurally drawn illustrations of several styles, for judging fills on drawn art.

Every generator takes ``(width, height, seed)`` and returns RGB uint8; the same seed gives
the same picture (for a given OpenCV version). Styles:

* ``cel``: flat fills with dark outlines and hatching patches (``make_example.draw_line_art``);
* ``ink``: black ink on paper: curved strokes of varying width, cross-hatching, solid blacks;
* ``hair``: anime-style hair: bundles of long curved strands over a base color, highlights;
* ``eyes``: anime-style eyes on skin: outlined whites, iris gradient, pupil, highlights,
  lashes and brows.

Only numpy and OpenCV are needed. Used by ``scripts/classical_quality.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from deepcream.examples.make_example import OUTLINE, draw_line_art

Drawer = Callable[[int, int, int], np.ndarray]


def _bezier(p0, p1, p2, p3, n: int = 48) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)[:, None]
    pts = ((1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t ** 2 * p2
           + t ** 3 * p3)
    return np.round(pts).astype(np.int32)


def _color(rng: np.random.Generator, low: int, high: int) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(low, high, 3))


def draw_cel(width: int, height: int, seed: int) -> np.ndarray:
    return draw_line_art(width, height, seed)


def draw_ink(width: int, height: int, seed: int) -> np.ndarray:
    """Black ink on off-white paper: strokes, cross-hatched patches, a few solid blacks."""
    rng = np.random.default_rng(seed)
    paper = _color(rng, 235, 256)
    img = np.empty((height, width, 3), np.uint8)
    img[:] = paper
    ink = (20, 20, 24)
    for _ in range(int(rng.integers(2, 5))):  # solid black shapes (hair, shadows)
        c = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(rng.integers(20, width // 6)), int(rng.integers(15, height // 6)))
        cv2.ellipse(img, c, axes, int(rng.integers(0, 180)), 0, 360, ink, -1, cv2.LINE_AA)
    for _ in range(int(rng.integers(3, 6))):  # cross-hatching patches
        x0, y0 = int(rng.integers(0, width - 80)), int(rng.integers(0, height - 80))
        size, step = int(rng.integers(50, 90)), int(rng.integers(4, 8))
        for angle in rng.choice([30, 60, 120, 150], size=2, replace=False):
            d = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))])
            n = np.array([-d[1], d[0]])
            for k in range(-size, size, step):
                a = np.array([x0 + size / 2, y0 + size / 2]) + n * k
                p, q = a - d * size / 2, a + d * size / 2
                cv2.line(img, tuple(int(v) for v in p), tuple(int(v) for v in q), ink, 1,
                         cv2.LINE_AA)
    for _ in range(int(rng.integers(14, 24))):  # contour strokes
        pts = rng.uniform([0, 0], [width, height], (4, 2))
        curve = _bezier(*pts)
        cv2.polylines(img, [curve.reshape(-1, 1, 2)], False, ink, int(rng.integers(1, 5)),
                      cv2.LINE_AA)
    return img


def draw_hair(width: int, height: int, seed: int) -> np.ndarray:
    """Hair: a base color, bundles of long curved strands (darker and lighter), outlines."""
    rng = np.random.default_rng(seed)
    base = np.array(_color(rng, 60, 230), np.float32)
    top, bottom = base * 1.1, base * 0.75
    t = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    img = np.clip((1 - t) * top + t * bottom, 0, 255).astype(np.uint8)
    img = np.ascontiguousarray(np.broadcast_to(img, (height, width, 3)))
    dark = tuple(int(v) for v in np.clip(base * 0.45, 0, 255))
    light = tuple(int(v) for v in np.clip(base * 1.35 + 30, 0, 255))
    for _ in range(int(rng.integers(5, 9))):  # bundles
        x = rng.uniform(0, width)
        sway = rng.uniform(-0.5, 0.5) * width
        for _ in range(int(rng.integers(6, 14))):
            dx = rng.normal(0, 12)
            p0 = np.array([x + dx, rng.uniform(-20, height * 0.2)])
            p3 = np.array([x + dx + sway * rng.uniform(0.6, 1.0), rng.uniform(height * 0.7,
                                                                              height + 20)])
            p1 = p0 + [sway * 0.2 + rng.normal(0, 20), height * 0.3]
            p2 = p3 - [sway * 0.2 + rng.normal(0, 20), height * 0.3]
            color = dark if rng.random() < 0.7 else light
            thickness = 1 if rng.random() < 0.6 else 2
            cv2.polylines(img, [_bezier(p0, p1, p2, p3, 64).reshape(-1, 1, 2)], False, color,
                          thickness, cv2.LINE_AA)
    for _ in range(int(rng.integers(1, 3))):  # a highlight band
        y = int(rng.uniform(0.2, 0.6) * height)
        poly = np.array([[0, y], [width, y + int(rng.integers(-30, 30))],
                         [width, y + 14], [0, y + 10]], np.int32)
        cv2.fillPoly(img, [poly], light, cv2.LINE_AA)
    for _ in range(2):  # bundle outlines
        p = rng.uniform([0, 0], [width, height], (4, 2))
        cv2.polylines(img, [_bezier(*p).reshape(-1, 1, 2)], False, OUTLINE, 2, cv2.LINE_AA)
    return img


def draw_eyes(width: int, height: int, seed: int) -> np.ndarray:
    """A pair of anime-style eyes with brows on skin (plus a mouth line)."""
    rng = np.random.default_rng(seed)
    skin = _color(rng, 200, 256)
    img = np.empty((height, width, 3), np.uint8)
    img[:] = skin
    iris = np.array(_color(rng, 30, 200), np.float32)
    ey = int(height * rng.uniform(0.38, 0.5))
    ew, eh = int(width * rng.uniform(0.13, 0.17)), int(height * rng.uniform(0.16, 0.22))
    for cx in (int(width * 0.3), int(width * 0.7)):
        cv2.ellipse(img, (cx, ey), (ew, eh), 0, 0, 360, (250, 250, 252), -1, cv2.LINE_AA)
        # Iris: vertical gradient, darker at the top, clipped to the eye white.
        ir = int(eh * 0.8)
        patch = np.zeros_like(img)
        for k in range(ir, 0, -2):
            shade = np.clip(iris * (0.55 + 0.6 * (1 - k / ir)), 0, 255)
            cv2.ellipse(patch, (cx, ey + eh // 6), (int(k * 0.8), k), 0, 0, 360,
                        tuple(int(v) for v in shade), -1, cv2.LINE_AA)
        white = np.zeros(img.shape[:2], np.uint8)
        cv2.ellipse(white, (cx, ey), (ew, eh), 0, 0, 360, 255, -1)
        iris_mask = np.zeros_like(white)
        cv2.ellipse(iris_mask, (cx, ey + eh // 6), (int(ir * 0.8), ir), 0, 0, 360, 255, -1)
        sel = (white > 0) & (iris_mask > 0)
        img[sel] = patch[sel]
        cv2.ellipse(img, (cx, ey + eh // 6), (int(ir * 0.8), ir), 0, 0, 360, OUTLINE, 2,
                    cv2.LINE_AA)
        cv2.ellipse(img, (cx, ey + eh // 5), (int(ir * 0.3), int(ir * 0.4)), 0, 0, 360,
                    (15, 12, 20), -1, cv2.LINE_AA)
        cv2.circle(img, (cx - ir // 3, ey - ir // 4), max(ir // 5, 2), (255, 255, 255), -1,
                   cv2.LINE_AA)
        cv2.circle(img, (cx + ir // 4, ey + ir // 3), max(ir // 10, 1), (255, 255, 255), -1,
                   cv2.LINE_AA)
        # Upper lid: a thick dark arc with lashes; lower lid: a thin line.
        cv2.ellipse(img, (cx, ey), (ew, eh), 0, 190, 350, OUTLINE, 5, cv2.LINE_AA)
        cv2.ellipse(img, (cx, ey), (ew, eh), 0, 30, 150, OUTLINE, 1, cv2.LINE_AA)
        for a in np.linspace(200, 340, 6):
            r = np.radians(a)
            p = (int(cx + ew * np.cos(r)), int(ey + eh * np.sin(r)))
            q = (int(cx + ew * 1.25 * np.cos(r)), int(ey + eh * 1.3 * np.sin(r)))
            cv2.line(img, p, q, OUTLINE, 2, cv2.LINE_AA)
        # Brow.
        by = ey - int(eh * 1.7)
        curve = _bezier(np.array([cx - ew, by + 8]), np.array([cx - ew / 3, by - 6]),
                        np.array([cx + ew / 3, by - 6]), np.array([cx + ew, by + 4]))
        cv2.polylines(img, [curve.reshape(-1, 1, 2)], False, OUTLINE, 3, cv2.LINE_AA)
    my = int(height * 0.85)
    cv2.line(img, (int(width * 0.45), my), (int(width * 0.55), my + 3), OUTLINE, 2, cv2.LINE_AA)
    return img


STYLES: dict[str, Drawer] = {"cel": draw_cel, "ink": draw_ink, "hair": draw_hair,
                             "eyes": draw_eyes}


def outline_mask(rgb: np.ndarray, contrast: int = 32) -> np.ndarray:
    """bool [H,W]: thin dark strokes (outlines, hatching, strands, lashes): pixels at least
    ``contrast`` levels darker than a 7x7 morphological closing of the gray image, i.e. dark
    structures narrower than ~7 px (a large dark area is not an outline)."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    return cv2.morphologyEx(gray, cv2.MORPH_BLACKHAT, kernel) >= contrast
