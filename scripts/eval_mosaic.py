#!/usr/bin/env python3
"""Evaluate `deepcream.mosaic.detect_mosaic` on a generated set (nothing binary is committed).

The set: scikit-image's bundled (not downloaded) sample photos and procedurally drawn
flat-color line art, each with 1-3 pixelated patches of random size, position, block size
(3-40 px) and grid offset, saved as PNG and as JPEG at quality 95, 85 and 75; plus the same
images without mosaic, to measure false positives.

Per condition it reports the mean IoU of detected vs true mosaic masks, pixel precision and
recall, and the false-positive area on the clean images; and the detection time on a
2604x2513 image (median of several runs).

    .venv/bin/python scripts/eval_mosaic.py [--seed 0 [1 ...]] [--per-source 2] [--out DIR]
        [--conditions png jpeg85] [--worst N] [--dump DIR] [--no-timing]

writes ``mosaic-eval.json`` and ``mosaic-eval.md`` into ``--out`` (default: the current folder)
and prints the table.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Bundled with scikit-image (no download); grey ones are converted to RGB.
SKIMAGE_SOURCES = ["astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "moon",
                   "immunohistochemistry", "hubble_deep_field", "colorwheel", "brick", "grass"]
CONDITIONS = ["png", "jpeg95", "jpeg85", "jpeg75"]
MIN_BLOCK, MAX_BLOCK = 3, 40


@dataclass
class Sample:
    name: str
    image: np.ndarray  # uint8 [H, W, 3], mosaic applied (or clean)
    truth: np.ndarray  # bool [H, W]
    blocks: list[int]
    patches: list[tuple] = field(default_factory=list)
    # Blocks that pixelation left unchanged (already flat): not counted either way in the
    # "visible" scores, since nothing there shows (or needs) a mosaic.
    invisible: np.ndarray | None = None


def skimage_image(name: str) -> np.ndarray:
    import skimage.data

    img = np.asarray(getattr(skimage.data, name)())
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3].astype(np.uint8))


def line_art(rng: np.random.Generator, width: int = 640, height: int = 512,
             antialias: bool = True) -> np.ndarray:
    """Flat-color 'cel' art: flat background, filled shapes with dark outlines, strokes.

    Drawn at 2x and downsampled when ``antialias`` (as most drawing tools do), else aliased.
    """
    scale = 2 if antialias else 1
    palette = rng.integers(0, 256, (12, 3))
    bg = tuple(int(v) for v in rng.integers(150, 256, 3))
    img = Image.new("RGB", (width * scale, height * scale), bg)
    draw = ImageDraw.Draw(img)
    outline = tuple(int(v) for v in rng.integers(0, 60, 3))
    for _ in range(int(rng.integers(10, 25))):
        fill = tuple(int(v) for v in palette[rng.integers(len(palette))])
        x0, y0 = rng.integers(-50, width * scale, 2)
        w, h = rng.integers(30 * scale, 260 * scale, 2)
        box = [int(x0), int(y0), int(x0 + w), int(y0 + h)]
        kind = rng.integers(4)
        lw = int(rng.integers(1, 5)) * scale
        if kind == 0:
            draw.ellipse(box, fill=fill, outline=outline, width=lw)
        elif kind == 1:
            draw.rectangle(box, fill=fill, outline=outline, width=lw)
        elif kind == 2:
            pts = [tuple(int(v) for v in p) for p in rng.integers(0, [width * scale, height * scale],
                                                                  (int(rng.integers(3, 7)), 2))]
            draw.polygon(pts, fill=fill, outline=outline)
        else:
            pts = [tuple(int(v) for v in p) for p in rng.integers(0, [width * scale, height * scale],
                                                                  (int(rng.integers(2, 6)), 2))]
            draw.line(pts, fill=outline, width=lw, joint="curve")
    if antialias:
        img = img.resize((width, height), Image.LANCZOS)
    return np.asarray(img, dtype=np.uint8).copy()


def pixelate(img: np.ndarray, box: tuple[int, int, int, int], block: int,
             offset: tuple[int, int], unchanged: np.ndarray | None = None) -> None:
    """Pixelate ``box`` (x, y, w, h) in place: each cell of the grid with period ``block`` and
    origin ``offset`` (image coordinates), clipped to the box, becomes its mean color.

    ``unchanged`` (bool [H, W]), if given, is set where a block was already flat (no pixel
    moved by more than 2 levels): there the mosaic is invisible and cannot be detected.
    """
    x, y, w, h = box
    ox, oy = offset
    xs = list(range(x - ((x - ox) % block), x + w, block))
    ys = list(range(y - ((y - oy) % block), y + h, block))
    for cy in ys:
        y0, y1 = max(cy, y), min(cy + block, y + h)
        for cx in xs:
            x0, x1 = max(cx, x), min(cx + block, x + w)
            cell = img[y0:y1, x0:x1]
            mean = np.round(cell.reshape(-1, 3).mean(axis=0)).astype(np.uint8)
            if unchanged is not None:
                unchanged[y0:y1, x0:x1] = np.abs(cell.astype(np.int16) - mean).max() <= 2
            cell[...] = mean


def add_mosaics(img: np.ndarray, rng: np.random.Generator, n: int | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple]]:
    """1-3 non-overlapping pixelated patches; returns (image, truth mask, invisible-block mask,
    patches), each patch (block size, grid x offset, grid y offset, (x, y, w, h))."""
    img = img.copy()
    h, w = img.shape[:2]
    truth = np.zeros((h, w), bool)
    unchanged = np.zeros((h, w), bool)
    blocks: list[int] = []
    grids: list = []
    n = int(rng.integers(1, 4)) if n is None else n
    for _ in range(50):
        if len(blocks) == n:
            break
        block = int(rng.integers(MIN_BLOCK, MAX_BLOCK + 1))
        lo = max(4 * block, 48)  # at least 4 blocks across: anything smaller is not a mosaic
        hi = max(lo + 1, min(h, w) // 2)
        pw, ph = (int(v) for v in rng.integers(lo, hi, 2))
        if pw >= w or ph >= h:
            continue
        px, py = int(rng.integers(0, w - pw)), int(rng.integers(0, h - ph))
        if truth[max(0, py - 8):py + ph + 8, max(0, px - 8):px + pw + 8].any():
            continue
        offset = (int(rng.integers(block)), int(rng.integers(block)))
        pixelate(img, (px, py, pw, ph), block, offset, unchanged)
        truth[py:py + ph, px:px + pw] = True
        blocks.append(block)
        grids.append((block, offset[0], offset[1], (px, py, pw, ph)))
    return img, truth, unchanged, grids


def encode(img: np.ndarray, condition: str) -> np.ndarray:
    """Round-trip through the condition's file format."""
    buf = io.BytesIO()
    if condition == "png":
        Image.fromarray(img).save(buf, "PNG")
    else:
        Image.fromarray(img).save(buf, "JPEG", quality=int(condition.removeprefix("jpeg")))
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB")).copy()


def make_set(seed: int = 0, per_source: int = 1, line_art_count: int = 8
             ) -> tuple[list[Sample], list[Sample]]:
    """(mosaic samples, clean samples), all PNG-clean (apply ``encode`` per condition)."""
    rng = np.random.default_rng(seed)
    bases: list[tuple[str, np.ndarray]] = [(n, skimage_image(n)) for n in SKIMAGE_SOURCES]
    for i in range(line_art_count):
        bases.append((f"lineart{i}", line_art(rng, antialias=bool(i % 2 == 0))))
    mosaic, clean = [], []
    for name, base in bases:
        clean.append(Sample(name, base, np.zeros(base.shape[:2], bool), []))
        for k in range(per_source):
            img, truth, unchanged, patches = add_mosaics(base, rng)
            mosaic.append(Sample(f"{name}#{k}", img, truth, [g[0] for g in patches], patches,
                                 unchanged))
    return mosaic, clean


def iou(pred: np.ndarray, truth: np.ndarray, ignore: np.ndarray | None = None) -> float:
    """Intersection over union; pixels in ``ignore`` count for neither."""
    if ignore is not None:
        pred, truth = pred & ~ignore, truth & ~ignore
    union = np.count_nonzero(pred | truth)
    return np.count_nonzero(pred & truth) / union if union else 1.0


def visible_box_oracle(s: Sample) -> np.ndarray:
    """The best any detector can do from the pixels alone: per patch, the bounding box of the
    pixels its pixelation changed (blocks over a flat fill, identical to it, left out)."""
    pred = np.zeros(s.truth.shape, bool)
    for _block, _ox, _oy, (x, y, w, h) in s.patches:
        ys, xs = np.nonzero(~s.invisible[y:y + h, x:x + w])
        if len(ys):
            pred[y + ys.min():y + ys.max() + 1, x + xs.min():x + xs.max() + 1] = True
    return pred


def overlay(img: np.ndarray, pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The image, and beside it the image dimmed with missed mosaic pixels red, false
    detections blue and hits green (tinted, so the blocks stay visible)."""
    out = img.astype(np.float32) * 0.6
    for sel, color in ((pred & truth, (0, 160, 0)), (truth & ~pred, (200, 0, 0)),
                       (pred & ~truth, (0, 0, 220))):
        out[sel] = 0.5 * out[sel] + np.asarray(color, np.float32)
    gap = np.full((img.shape[0], 8, 3), 255, np.uint8)
    return np.concatenate([img, gap, np.clip(out, 0, 255).astype(np.uint8)], axis=1)


def evaluate(seed: int = 0, per_source: int = 1, line_art_count: int = 8,
             conditions: list[str] | None = None, dump: Path | None = None) -> dict:
    """Scores per condition, with a per-image list (``per_image``) for diagnosis. ``dump``:
    write an overlay PNG (see ``overlay``) per image and condition there."""
    from deepcream.mosaic import detect_mosaic

    mosaic, clean = make_set(seed, per_source, line_art_count)
    oracle = [iou(visible_box_oracle(s), s.truth) for s in mosaic]
    is_line = [s.name.startswith("lineart") for s in mosaic]
    results: dict = {"seed": seed, "conditions": {},
                     "oracle_iou": float(np.mean(oracle)),
                     "oracle_iou_lineart": float(np.mean([v for v, ln in zip(oracle, is_line,
                                                                             strict=True) if ln]
                                                         or [np.nan]))}
    for cond in conditions or CONDITIONS:
        ious, vis_ious, tp, fp, fn, worst, per_image = [], [], 0, 0, 0, [], []
        for s in mosaic:
            img = encode(s.image, cond)
            pred = detect_mosaic(img)
            ious.append(iou(pred, s.truth))
            vis_ious.append(iou(pred, s.truth, s.invisible))
            i_tp = int(np.count_nonzero(pred & s.truth))
            i_fp = int(np.count_nonzero(pred & ~s.truth))
            i_fn = int(np.count_nonzero(~pred & s.truth))
            tp, fp, fn = tp + i_tp, fp + i_fp, fn + i_fn
            worst.append((round(float(vis_ious[-1]), 3), s.name, s.blocks))
            per_image.append({"name": s.name, "blocks": s.blocks, "iou": ious[-1],
                              "visible_iou": vis_ious[-1],
                              "precision": i_tp / max(i_tp + i_fp, 1),
                              "recall": i_tp / max(i_tp + i_fn, 1),
                              "patches": s.patches})
            if dump is not None:
                dump.mkdir(parents=True, exist_ok=True)
                Image.fromarray(overlay(img, pred, s.truth)).save(
                    dump / f"s{seed}-{cond}-{s.name.replace('#', '_')}.png")
        clean_fp, clean_px, clean_worst, clean_worst_name = 0, 0, 0.0, "-"
        for s in clean:
            pred = detect_mosaic(encode(s.image, cond))
            clean_fp += int(np.count_nonzero(pred))
            clean_px += pred.size
            share = float(np.count_nonzero(pred)) / pred.size
            if share > clean_worst:
                clean_worst, clean_worst_name = share, s.name
        results["conditions"][cond] = {
            "images": len(mosaic),
            "mean_iou": float(np.mean(ious)),
            "mean_iou_photos": float(np.mean([v for v, s in zip(ious, mosaic, strict=True)
                                              if not s.name.startswith("lineart")])),
            "mean_iou_lineart": float(np.mean([v for v, s in zip(ious, mosaic, strict=True)
                                               if s.name.startswith("lineart")] or [np.nan])),
            "mean_iou_visible": float(np.mean(vis_ious)),
            "min_iou_visible": float(np.min(vis_ious)),
            "precision": tp / max(tp + fp, 1),
            "recall": tp / max(tp + fn, 1),
            "clean_images": len(clean),
            "clean_fp_fraction": clean_fp / max(clean_px, 1),
            "clean_fp_worst_image": clean_worst,
            "clean_fp_worst_name": clean_worst_name,
            "worst": sorted(worst)[:5],
            "per_image": per_image,
        }
    return results


def time_large(repeats: int = 5) -> dict:
    """Median detection time on a 2604x2513 image with two mosaic patches."""
    from deepcream.mosaic import detect_mosaic

    base = np.asarray(Image.fromarray(skimage_image("astronaut")).resize((2604, 2513),
                                                                       Image.BICUBIC))
    base = base.copy()
    pixelate(base, (600, 500, 700, 600), 24, (5, 11))
    pixelate(base, (1700, 1500, 500, 400), 9, (2, 4))
    img = encode(base, "jpeg85")
    detect_mosaic(img)  # warm caches
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        detect_mosaic(img)
        times.append(time.perf_counter() - t0)
    return {"size": [2604, 2513], "repeats": repeats, "median_s": statistics.median(times),
            "min_s": min(times), "max_s": max(times)}


def timing_line(timing: dict) -> str:
    return (f"Detection time on a {timing['size'][0]}x{timing['size'][1]} JPEG q85 image: "
            f"median {timing['median_s']:.3f} s over {timing['repeats']} runs "
            f"(min {timing['min_s']:.3f}, max {timing['max_s']:.3f}).")


def to_markdown(results: dict, timing: dict | None) -> str:
    lines = [f"# Mosaic detection evaluation (seed {results['seed']})", "",
             "IoU: detected vs the pixelated rectangles. Visible IoU leaves out blocks that "
             "pixelation did not change (already flat, e.g. over a flat fill of line art), "
             "where no detector can see a mosaic. Precision/recall: pixels vs the rectangles. "
             "Clean FP: detected area on the images without mosaic.", "",
             "| condition | images | mean IoU | mean IoU (photos) | mean IoU (line art) | "
             "mean visible IoU | min visible IoU | precision | recall | clean FP area | "
             "worst clean image |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for cond, r in results["conditions"].items():
        lines.append(f"| {cond} | {r['images']} | {r['mean_iou']:.3f} | {r['mean_iou_photos']:.3f} | "
                     f"{r['mean_iou_lineart']:.3f} | {r['mean_iou_visible']:.3f} | {r['min_iou_visible']:.3f} | "
                     f"{r['precision']:.3f} | {r['recall']:.3f} | "
                     f"{100 * r['clean_fp_fraction']:.3f}% | {100 * r['clean_fp_worst_image']:.3f}% "
                     f"({r['clean_fp_worst_name']}) |")
    lines += ["", f"Visible-box oracle (per patch, the box around the pixels its pixelation "
              f"changed, i.e. all that the pixels show): mean IoU {results['oracle_iou']:.3f}, "
              f"line art {results['oracle_iou_lineart']:.3f}."]
    if timing:
        lines += ["", timing_line(timing)]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, nargs="+", default=[0],
                    help="one or more seeds (one table each)")
    ap.add_argument("--per-source", type=int, default=2, help="mosaic variants per base image")
    ap.add_argument("--line-art", type=int, default=8, help="number of line-art base images")
    ap.add_argument("--no-timing", action="store_true")
    ap.add_argument("--conditions", nargs="+", choices=CONDITIONS, default=CONDITIONS)
    ap.add_argument("--worst", type=int, default=0, metavar="N",
                    help="list the N images with the lowest IoU per condition "
                         "(IoU, visible IoU, precision, recall, block sizes)")
    ap.add_argument("--dump", type=Path, default=None, metavar="DIR",
                    help="write an overlay PNG per image and condition (green: found, red: "
                         "missed, blue: false detection)")
    ap.add_argument("--out", type=Path, default=Path("."))
    args = ap.parse_args()
    from deepcream.fsutil import atomic_write_bytes

    args.out.mkdir(parents=True, exist_ok=True)
    all_results = []
    for seed in args.seed:
        results = evaluate(seed, args.per_source, args.line_art, args.conditions, args.dump)
        all_results.append(results)
        print(to_markdown(results, None))
        for cond, r in results["conditions"].items():
            if args.worst:
                print(f"{cond} (seed {seed}) worst images:")
                for im in sorted(r["per_image"], key=lambda d: d["iou"])[:args.worst]:
                    print(f"  {im['name']:<24} IoU {im['iou']:.3f}  visible {im['visible_iou']:.3f}"
                          f"  P {im['precision']:.3f}  R {im['recall']:.3f}  blocks {im['blocks']}")
    timing = None if args.no_timing else time_large()
    if timing:
        print(timing_line(timing))
    md = "\n".join(to_markdown(r, timing if i == len(all_results) - 1 else None)
                    for i, r in enumerate(all_results))
    payload = all_results[0] if len(all_results) == 1 else {"runs": all_results}
    payload["timing"] = timing
    atomic_write_bytes(args.out / "mosaic-eval.json",
                       (json.dumps(payload, indent=2, default=str) + "\n").encode())
    atomic_write_bytes(args.out / "mosaic-eval.md", md.encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
