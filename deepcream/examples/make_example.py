"""Regenerate the bundled example images (procedural, non-explicit line art).

    python -m deepcream.examples.make_example [OUT_DIR]

writes ``example-bar.png`` (a cartoon with green bars to fill), ``example-clean.png`` (the
same picture unpainted, for judging a fill), ``example-mosaic.png`` (the picture with two
pixelated regions) and ``example-mosaic-colored.png`` (its colored copy with those regions
painted green, DCP's mosaic input). Only numpy and OpenCV are needed, and the output is
deterministic for a given OpenCV version. The same drawing code makes the line-art part of
the classical-engine benchmark (scripts/classical_quality.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

GREEN = (0, 255, 0)
OUTLINE = (34, 28, 40)


def _gradient(height: int, width: int, top: tuple, bottom: tuple) -> np.ndarray:
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    img = (1 - t) * np.array(top, np.float32) + t * np.array(bottom, np.float32)
    return np.ascontiguousarray(np.broadcast_to(img, (height, width, 3)).astype(np.uint8))


def _shape(img: np.ndarray, kind: str, pts, color, outline: int = 2) -> None:
    """A flat-filled shape with an anti-aliased dark outline, the look of cel-shaded art."""
    if kind == "ellipse":
        center, axes, angle = pts
        cv2.ellipse(img, center, axes, angle, 0, 360, color, -1, cv2.LINE_AA)
        cv2.ellipse(img, center, axes, angle, 0, 360, OUTLINE, outline, cv2.LINE_AA)
    else:
        poly = np.array(pts, np.int32).reshape(-1, 1, 2)
        cv2.fillPoly(img, [poly], color, cv2.LINE_AA)
        cv2.polylines(img, [poly], True, OUTLINE, outline, cv2.LINE_AA)


def draw_scene(width: int = 640, height: int = 480) -> np.ndarray:
    """The example picture: sky, sun, hills, a house, a tree and a cat, as RGB uint8."""
    s = width / 640.0

    def p(x: float, y: float) -> tuple[int, int]:
        return int(x * s), int(y * s)

    img = _gradient(height, width, (120, 180, 240), (230, 240, 255))
    _shape(img, "ellipse", (p(540, 80), p(42, 42), 0), (255, 214, 90))
    for i in range(12):  # sun rays
        a = i * np.pi / 6
        cv2.line(img, p(540 + 55 * np.cos(a), 80 + 55 * np.sin(a)),
                 p(540 + 75 * np.cos(a), 80 + 75 * np.sin(a)), (250, 190, 60), max(2, int(3 * s)),
                 cv2.LINE_AA)
    _shape(img, "ellipse", (p(150, 520), p(360, 200), 0), (110, 190, 90))
    _shape(img, "ellipse", (p(560, 560), p(300, 230), 0), (90, 170, 80))
    # House.
    _shape(img, "poly", [p(330, 250), p(480, 250), p(480, 380), p(330, 380)], (240, 220, 190))
    _shape(img, "poly", [p(315, 252), p(405, 175), p(495, 252)], (190, 80, 70))
    _shape(img, "poly", [p(390, 310), p(425, 310), p(425, 380), p(390, 380)], (150, 100, 60))
    _shape(img, "poly", [p(345, 275), p(375, 275), p(375, 305), p(345, 305)], (170, 210, 240))
    _shape(img, "poly", [p(440, 275), p(470, 275), p(470, 305), p(440, 305)], (170, 210, 240))
    # Tree.
    _shape(img, "poly", [p(575, 300), p(595, 300), p(598, 400), p(572, 400)], (130, 90, 60))
    _shape(img, "ellipse", (p(585, 260), p(50, 60), 0), (60, 140, 70))
    # Cat: body, head, ears, eyes, nose, whiskers.
    _shape(img, "ellipse", (p(170, 360), p(70, 55), 0), (235, 160, 80))
    _shape(img, "poly", [p(115, 245), p(125, 190), p(160, 230)], (235, 160, 80))
    _shape(img, "poly", [p(225, 245), p(215, 190), p(180, 230)], (235, 160, 80))
    _shape(img, "ellipse", (p(170, 265), p(62, 52), 0), (240, 170, 90))
    for x in (147, 193):
        _shape(img, "ellipse", (p(x, 255), p(10, 13), 0), (250, 250, 240))
        cv2.circle(img, p(x + 2, 258), int(6 * s), OUTLINE, -1, cv2.LINE_AA)
    _shape(img, "poly", [p(163, 280), p(177, 280), p(170, 289)], (230, 110, 120), 1)
    for dy in (-6, 2, 10):
        cv2.line(img, p(130, 285 + dy), p(95, 280 + 1.6 * dy), OUTLINE, 1, cv2.LINE_AA)
        cv2.line(img, p(210, 285 + dy), p(245, 280 + 1.6 * dy), OUTLINE, 1, cv2.LINE_AA)
    # Fence with hatching: thin periodic detail that a fill has to continue.
    for x in range(20, 300, 22):
        _shape(img, "poly", [p(x, 400), p(x + 14, 400), p(x + 14, 470), p(x, 470)],
               (250, 245, 235), 1)
    cv2.line(img, p(10, 420), p(310, 420), OUTLINE, max(1, int(2 * s)), cv2.LINE_AA)
    return img


def draw_line_art(width: int, height: int, seed: int) -> np.ndarray:
    """A random cel-shaded composition (flat shapes, dark outlines, hatching), RGB uint8."""
    rng = np.random.default_rng(seed)
    top = tuple(int(v) for v in rng.integers(150, 256, 3))
    bottom = tuple(int(v) for v in rng.integers(100, 256, 3))
    img = _gradient(height, width, top, bottom)
    for _ in range(int(rng.integers(10, 18))):
        color = tuple(int(v) for v in rng.integers(30, 250, 3))
        cx, cy = int(rng.integers(0, width)), int(rng.integers(0, height))
        r = int(rng.integers(min(width, height) // 12, min(width, height) // 3))
        if rng.random() < 0.5:
            _shape(img, "ellipse", ((cx, cy), (r, int(r * rng.uniform(0.4, 1.0))),
                                    int(rng.integers(0, 180))), color, int(rng.integers(1, 4)))
        else:
            n = int(rng.integers(3, 7))
            ang = np.sort(rng.uniform(0, 2 * np.pi, n))
            rad = r * rng.uniform(0.5, 1.0, n)
            pts = [(int(cx + a * np.cos(t)), int(cy + a * np.sin(t))) for t, a in zip(ang, rad,
                                                                                        strict=True)]
            _shape(img, "poly", pts, color, int(rng.integers(1, 4)))
    for _ in range(int(rng.integers(2, 5))):  # hatching patches
        x0, y0 = int(rng.integers(0, width - 40)), int(rng.integers(0, height - 40))
        for k in range(0, 60, 6):
            cv2.line(img, (x0 + k, y0), (x0 + k - 20, y0 + 50), OUTLINE, 1, cv2.LINE_AA)
    return img


def paint_bars(rgb: np.ndarray, seed: int, count: int = 5, color=GREEN) -> np.ndarray:
    """Censor-bar strokes (straight, 6-18 px thick, random angle) painted in ``color``."""
    rng = np.random.default_rng(seed)
    out = rgb.copy()
    h, w = out.shape[:2]
    for _ in range(count):
        x, y = int(rng.integers(w // 10, w - w // 10)), int(rng.integers(h // 10, h - h // 10))
        length = int(rng.integers(min(w, h) // 8, min(w, h) // 3))
        angle = rng.uniform(0, np.pi)
        dx, dy = int(length * np.cos(angle) / 2), int(length * np.sin(angle) / 2)
        cv2.line(out, (x - dx, y - dy), (x + dx, y + dy), color, int(rng.integers(6, 19)))
    return out


def pixelate(rgb: np.ndarray, box: tuple[int, int, int, int], block: int) -> np.ndarray:
    """Mosaic ``box`` (x1, y1, x2, y2; sides multiples of ``block``) with block means."""
    x1, y1, x2, y2 = box
    out = rgb.copy()
    small = cv2.resize(rgb[y1:y2, x1:x2], ((x2 - x1) // block, (y2 - y1) // block),
                       interpolation=cv2.INTER_AREA)
    out[y1:y2, x1:x2] = cv2.resize(small, (x2 - x1, y2 - y1), interpolation=cv2.INTER_NEAREST)
    return out


def _save(rgb: np.ndarray, path: Path) -> None:
    # OpenCV's encoder: deterministic bytes, and numpy+OpenCV are all this script needs.
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise OSError(f"cannot encode {path}")
    path.write_bytes(data.tobytes())


def make_examples(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    clean = draw_scene()
    bar = clean.copy()
    # Bars across the cat's eyes, the house's window and door, the tree and the fence:
    # regions of different shapes, one touching the image edge.
    cv2.line(bar, (128, 256), (214, 254), GREEN, 14)
    cv2.rectangle(bar, (385, 318), (430, 336), GREEN, -1)
    cv2.line(bar, (335, 300), (480, 270), GREEN, 9)
    cv2.line(bar, (540, 230), (639, 300), GREEN, 12)
    cv2.line(bar, (40, 440), (250, 455), GREEN, 10)
    mosaic = pixelate(pixelate(clean, (112, 224, 232, 304), 8), (336, 248, 488, 392), 8)
    colored = mosaic.copy()
    colored[224:304, 112:232] = GREEN
    colored[248:392, 336:488] = GREEN
    paths = []
    for name, img in (("example-bar", bar), ("example-clean", clean),
                      ("example-mosaic", mosaic), ("example-mosaic-colored", colored)):
        path = out_dir / f"{name}.png"
        _save(img, path)
        paths.append(path)
    return paths


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent
    for written in make_examples(target):
        print(f"wrote {written} ({written.stat().st_size / 1024:.0f} KB)")
