"""Measure the classical engine's fill quality on drawn art and photos, per condition.

    PYTHONPATH=. .venv/bin/python scripts/classical_quality.py [--seeds heldout|tune]
        [--bar-methods telea,engine] [--bar-edges exact|antialiased|jpeg]
        [--mosaic-methods mosaic,bicubic,engine] [--json OUT]
    PYTHONPATH=. .venv/bin/python scripts/classical_quality.py --speed   # 1000x1000 holes etc.

Images: procedurally drawn illustrations of four styles (``deepcream/examples/drawn_art.py``:
cel = flat fills with outlines and hatching, ink = black-ink strokes and cross-hatching,
hair = long curved strands, eyes = anime eyes with lashes), 512x384, one per style and seed;
plus scikit-image's astronaut, chelsea and coffee photos (reported apart). Seeds: ``tune``
(0-2) for choosing parameters, ``heldout`` (100-104, the default) for the figures in the docs.

Bars: for every width in 4, 8, 16, 24, 40 px, three straight green strokes per image, each
centred on an outline pixel of the clean picture (so every bar crosses outlines), random
angle and length; exact pixel-brush strokes by default, ``--bar-edges antialiased|jpeg`` for
anti-aliased strokes or those saved as JPEG (holes then found by the pipeline's mask finder,
scored on the stroke grown by 4 px). Mosaics: for every block size in 6, 8, 12, 16, 24 px,
one grid-aligned mosaic box (5-12 blocks a side) centred on an outline pixel, with DCP's
colored copy.

Every method runs through the real pipeline (DCP boxes, crops, paste-back). Scores against
the clean picture, inside the holes only: PSNR over the hole pixels; SSIM (scikit-image, 7x7)
averaged over the hole pixels; outline continuity = share of the clean picture's outline
pixels (``drawn_art.outline_mask``: thin dark strokes) inside the holes that the result has
within 1 px. Needs the test extra (scikit-image).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import deepcream  # noqa: E402
from deepcream import engines  # noqa: E402
from deepcream.examples.drawn_art import STYLES, outline_mask  # noqa: E402
from deepcream.examples.make_example import pixelate  # noqa: E402
from deepcream.imageio import Pixels  # noqa: E402

GREEN = (0, 255, 0)
SEEDS = {"tune": (0, 1, 2), "heldout": (100, 101, 102, 103, 104)}
BAR_WIDTHS = (4, 8, 16, 24, 40)
BLOCK_SIZES = (6, 8, 12, 16, 24)
PHOTOS = ("astronaut", "chelsea", "coffee")
SIZE = (512, 384)


def benchmark_images(seeds: tuple[int, ...]) -> dict[str, tuple[str, np.ndarray]]:
    """name -> (set, clean RGB); set is "drawn" or "photo"."""
    import skimage.data as data

    images = {}
    for seed in seeds:
        for style, draw in STYLES.items():
            images[f"{style}-{seed}"] = ("drawn", draw(*SIZE, seed))
    for name in PHOTOS:
        images[name] = ("photo", getattr(data, name)())
    # A censor color must not occur naturally: nudge any exact mask-colored pixels.
    for _, img in images.values():
        img[np.all(img == GREEN, axis=2)] = (0, 254, 0)
    return images


def _outline_points(truth: np.ndarray, margin: int, rng: np.random.Generator,
                    count: int) -> list[tuple[int, int]]:
    h, w = truth.shape[:2]
    ys, xs = np.nonzero(outline_mask(truth))
    keep = (xs >= margin) & (xs < w - margin) & (ys >= margin) & (ys < h - margin)
    ys, xs = ys[keep], xs[keep]
    if ys.size == 0:  # no outline: anywhere
        return [(int(rng.integers(margin, w - margin)), int(rng.integers(margin, h - margin)))
                for _ in range(count)]
    pick = rng.choice(ys.size, count, replace=False)
    return [(int(xs[i]), int(ys[i])) for i in pick]


def bar_holes(truth: np.ndarray, width: int, seed: int, count: int = 3,
              grow: int = 0) -> np.ndarray:
    """bool [H,W]: ``count`` straight strokes ``width`` (+ ``grow``) px thick, each crossing
    an outline."""
    holes = np.zeros(truth.shape[:2], np.uint8)
    for a, b in _bar_segments(truth, width, seed, count):
        cv2.line(holes, a, b, 1, width + grow)
    return holes.astype(bool)


def _bar_segments(truth: np.ndarray, width: int, seed: int, count: int = 3
                  ) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """The end points of the ``count`` bars of ``width`` for ``seed``: each centred on an
    outline pixel, random angle and length (the same bars however they are painted)."""
    rng = np.random.default_rng([seed, width])
    segments = []
    for x, y in _outline_points(truth, 48, rng, count):
        length = int(rng.integers(60, 160))
        angle = rng.uniform(0, np.pi)
        dx, dy = int(length * np.cos(angle) / 2), int(length * np.sin(angle) / 2)
        segments.append(((x - dx, y - dy), (x + dx, y + dy)))
    return segments


def soft_bars(truth: np.ndarray, width: int, seed: int, edges: str
              ) -> tuple[np.ndarray, np.ndarray]:
    """(painted image, bool scoring holes) for bars painted the way users' files come:
    ``antialiased`` (OpenCV LINE_AA strokes) or ``jpeg`` (those saved as JPEG quality 90).
    The holes are found by the pipeline's mask finder; scores cover the stroke grown by 4 px
    (the same bars as ``bar_holes``)."""
    painted = truth.copy()
    for a, b in _bar_segments(truth, width, seed):
        cv2.line(painted, a, b, GREEN, width, cv2.LINE_AA)
    if edges == "jpeg":
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(painted, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, 90])
        painted = cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return painted, bar_holes(truth, width, seed, grow=4)


def mosaic_case(truth: np.ndarray, block: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(pixelated image, bool holes): one grid-aligned box of 5-12 blocks a side."""
    rng = np.random.default_rng([seed, block, 7])
    h, w = truth.shape[:2]
    nx, ny = (int(rng.integers(5, max(6, min(12, 200 // block)) + 1)) for _ in range(2))
    nx, ny = min(nx, w // block - 1), min(ny, h // block - 1)
    (cx, cy), = _outline_points(truth, 8, rng, 1)
    x1 = int(np.clip(cx - nx * block // 2, 0, w - nx * block)) // block * block
    y1 = int(np.clip(cy - ny * block // 2, 0, h - ny * block)) // block * block
    box = (x1, y1, x1 + nx * block, y1 + ny * block)
    holes = np.zeros((h, w), bool)
    holes[box[1]:box[3], box[0]:box[2]] = True
    return pixelate(truth, box, block), holes


def hole_scores(result: np.ndarray, truth: np.ndarray, holes: np.ndarray
                ) -> tuple[float, float, float]:
    """(PSNR, SSIM, outline continuity) inside ``holes``; continuity is NaN without outline
    pixels in the holes."""
    from skimage.metrics import structural_similarity

    diff = result[holes].astype(np.float64) - truth[holes]
    mse = float(np.mean(diff**2))
    psnr = 100.0 if mse == 0 else float(10 * np.log10(255.0**2 / mse))
    _, ssim_map = structural_similarity(truth, result, channel_axis=2, full=True, data_range=255)
    want = outline_mask(truth) & holes
    got = cv2.dilate(outline_mask(result).view(np.uint8), np.ones((3, 3), np.uint8)) > 0
    cont = float(np.count_nonzero(got & want) / np.count_nonzero(want)) if want.any() else np.nan
    return psnr, float(ssim_map.mean(axis=2)[holes].mean()), cont


Method = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def bar_method(name: str) -> Method:
    """``engine`` (the classical engine's default) or any ``ClassicalEngine`` bar method
    name (``telea`` = OpenCV Telea r=9, the old default)."""
    engine = engines.ClassicalEngine(
        "bar", method=engines.CLASSICAL_BAR_METHOD if name == "engine" else name)

    def run(colored: np.ndarray, original: np.ndarray, holes: np.ndarray) -> np.ndarray:
        return deepcream.decensor(Pixels(colored, None), engine=engine).pixels[0].rgb
    return run


def mosaic_method(name: str) -> Method:
    """``mosaic`` (leave it), ``bicubic`` (the block-centre bicubic fill), ``engine`` (the
    classical engine's default), or any ``ClassicalEngine`` mosaic method name."""
    if name == "mosaic":
        return lambda colored, original, holes: original
    engine = engines.ClassicalEngine(
        "mosaic", mosaic_method=engines.CLASSICAL_MOSAIC_METHOD if name == "engine" else name)

    def run(colored: np.ndarray, original: np.ndarray, holes: np.ndarray) -> np.ndarray:
        return deepcream.decensor(Pixels(colored, None), mode="mosaic",
                                 original=Pixels(original, None), engine=engine).pixels[0].rgb
    return run


def run_condition(images: dict, methods: dict[str, Method], make_case, conditions,
                  seed_of: Callable[[str], int]) -> dict:
    """scores[method][condition] = list of (image, set, psnr, ssim, continuity, seconds)."""
    scores: dict = {m: {} for m in methods}
    for cond in conditions:
        for name, (kind, truth) in images.items():
            colored, original, holes = make_case(truth, cond, seed_of(name))
            for method, fill in methods.items():
                t0 = time.perf_counter()
                out = fill(colored, original, holes)
                seconds = time.perf_counter() - t0
                psnr, ssim, cont = hole_scores(out, truth, holes)
                scores[method].setdefault(str(cond), []).append(
                    (name, kind, psnr, ssim, cont, seconds))
    return scores


def _soft_bar_case(edges: str):
    def case(truth, width, seed):
        painted, holes = soft_bars(truth, width, seed, edges)
        return painted, painted, holes
    return case


def _bar_case(truth, width, seed):
    holes = bar_holes(truth, width, seed)
    colored = truth.copy()
    colored[holes] = GREEN
    return colored, colored, holes


def _mosaic_case(truth, block, seed):
    mosaic, holes = mosaic_case(truth, block, seed)
    colored = mosaic.copy()
    colored[holes] = GREEN
    return colored, mosaic, holes


def table(scores: dict, kind: str, label: str) -> list[str]:
    methods = list(scores)
    conds = list(next(iter(scores.values())))
    head = f"| {label} | " + " | ".join(f"{m} PSNR / SSIM / cont." for m in methods) + " |"
    lines = [head, "|---" * (1 + len(methods)) + "|"]

    def agg(rows):
        rows = [r for r in rows if r[1] == kind]
        cont = [r[4] for r in rows if not np.isnan(r[4])]
        return (np.mean([r[2] for r in rows]), np.mean([r[3] for r in rows]),
                np.mean(cont) if cont else np.nan, sum(r[5] for r in rows))

    for cond in conds + ["all"]:
        cells = []
        for m in methods:
            rows = (scores[m][cond] if cond != "all" else
                    [r for c in conds for r in scores[m][c]])
            p, s, c, _ = agg(rows)
            cells.append(f"{p:.2f} / {s:.3f} / {c:.2f}")
        lines.append(f"| {cond} | " + " | ".join(cells) + " |")
    secs = [agg([r for c in conds for r in scores[m][c]])[3] for m in methods]
    lines.append("| seconds (all) | " + " | ".join(f"{s:.1f}" for s in secs) + " |")
    return lines


def speed_checks() -> list[str]:
    """Wall and CPU seconds of the classical engine on 1000x1000 holes (whole
    ``deepcream.decensor`` call, 1400x1400 image): a bar hole, a flat mosaic hole, and drawn
    art pixelated with 6, 8 and 24 px blocks; plus the largest bar job that still gets the
    structure fill."""
    from deepcream.examples.drawn_art import draw_cel

    side, at = 1000, 200
    art = draw_cel(side + 2 * at, side + 2 * at, 5)
    flat = np.full_like(art, 245)
    cases = [("bar", "drawn art, bar hole", art, None)]
    # The largest job the default bar method ("auto") gives the structure fill: a 40 px bar
    # of ~47,000 hole pixels with the detected mask (engines.STRUCTURE_MAX_PIXELS: 50,000).
    cases.append(("bar", "drawn art, 40x1080 px bar (structure)", art, None))
    cases.append(("mosaic", "flat mosaic hole", flat, flat))
    for block in (6, 8, 24):
        n = side // block * block
        cases.append(("mosaic", f"drawn art, {block} px blocks", art,
                      pixelate(art, (at, at, at + n, at + n), block)))
    lines = ["| 1000x1000 hole | wall s | CPU s |", "|---|---:|---:|"]
    for mode, label, clean, original in cases:
        colored = (clean if original is None else original).copy()
        if "40x1080" in label:
            cv2.line(colored, (at, at + 500), (at + 1040, at + 500), GREEN, 40)
        else:
            colored[at:at + side, at:at + side] = GREEN
        w0, c0 = time.perf_counter(), time.process_time()
        deepcream.decensor(Pixels(colored, None), mode=mode, engine="classical",
                           original=None if original is None else Pixels(original, None))
        lines.append(f"| {mode}: {label} | {time.perf_counter() - w0:.2f} | "
                     f"{time.process_time() - c0:.2f} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", choices=tuple(SEEDS), default="heldout")
    parser.add_argument("--bar-methods", default="telea,engine",
                        help="comma-separated; '' skips bars")
    parser.add_argument("--bar-edges", choices=("exact", "antialiased", "jpeg"),
                        default="exact", help="how the bars are painted (soft_bars)")
    parser.add_argument("--mosaic-methods", default="mosaic,bicubic,engine",
                        help="comma-separated; '' skips mosaics")
    parser.add_argument("--styles", default=",".join(STYLES) + ",photo",
                        help="which styles (and 'photo') to include")
    parser.add_argument("--json", type=Path, help="also write the raw scores here")
    parser.add_argument("--speed", action="store_true",
                        help="only time 1000x1000 holes (bar and mosaic) and exit")
    args = parser.parse_args()
    if args.speed:
        print("\n".join(speed_checks()))
        return 0
    wanted = set(args.styles.split(","))
    images = {k: v for k, v in benchmark_images(SEEDS[args.seeds]).items()
              if k.split("-")[0] in wanted or (v[0] == "photo" and "photo" in wanted)}

    def seed_of(name: str) -> int:
        return int(name.rsplit("-", 1)[1]) if "-" in name else sum(map(ord, name))

    result = {}
    if args.bar_methods:
        methods = {m: bar_method(m) for m in args.bar_methods.split(",")}
        make = _bar_case if args.bar_edges == "exact" else _soft_bar_case(args.bar_edges)
        result["bars"] = run_condition(images, methods, make, BAR_WIDTHS, seed_of)
    if args.mosaic_methods:
        methods = {m: mosaic_method(m) for m in args.mosaic_methods.split(",")}
        result["mosaics"] = run_condition(images, methods, _mosaic_case, BLOCK_SIZES, seed_of)
    print(f"seeds: {args.seeds} {SEEDS[args.seeds]}; cells: mean PSNR (dB) / mean SSIM / "
          f"mean outline continuity, inside the holes")
    for what, label in (("bars", "bar width"), ("mosaics", "block size")):
        if what not in result:
            continue
        for kind in ("drawn", "photo"):
            if any(r[1] == kind for rows in next(iter(result[what].values())).values()
                   for r in rows):
                print(f"\n{what}, {kind} images:")
                print("\n".join(table(result[what], kind, label)))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
