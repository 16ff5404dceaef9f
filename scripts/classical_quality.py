"""Measure the classical engine's fill quality and pick its method.

    .venv/bin/python scripts/classical_quality.py [--json OUT.json]

Benchmark set (all shipped, non-explicit): scikit-image sample photos (astronaut, chelsea,
coffee, rocket, camera) and procedurally drawn cel-shaded line art
(deepcream.examples.make_example), each with deterministic green censor-bar strokes; for
mosaics the same images with 8 px and 12 px block mosaics. Every candidate runs through the
real pipeline (DCP boxes, crops, paste-back) and is scored against the uncensored original
inside the holes only: PSNR over the hole pixels, and SSIM (scikit-image, 7x7 window)
averaged over the hole pixels. Needs the test extra (scikit-image).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import deepcream  # noqa: E402
from deepcream import engines  # noqa: E402
from deepcream.examples.make_example import (  # noqa: E402
    draw_line_art,
    draw_scene,
    paint_bars,
    pixelate,
)

GREEN = (0, 255, 0)


def benchmark_images() -> dict[str, np.ndarray]:
    import skimage.data as data

    images = {name: getattr(data, name)() for name in ("astronaut", "chelsea", "coffee", "rocket")}
    images["camera"] = np.repeat(data.camera()[..., None], 3, axis=2)
    images["lineart-scene"] = draw_scene()
    for seed in range(3):
        images[f"lineart-{seed}"] = draw_line_art(512, 384, seed)
    # A censor color must not occur naturally: nudge any exact mask-colored pixels.
    for img in images.values():
        img[np.all(img == GREEN, axis=2)] = (0, 254, 0)
    return images


def hole_scores(result: np.ndarray, truth: np.ndarray, holes: np.ndarray) -> tuple[float, float]:
    from skimage.metrics import structural_similarity

    diff = result[holes].astype(np.float64) - truth[holes]
    mse = float(np.mean(diff**2))
    psnr = float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
    _, ssim_map = structural_similarity(truth, result, channel_axis=2, full=True, data_range=255)
    return psnr, float(ssim_map.mean(axis=2)[holes].mean())


def run_bars(images: dict[str, np.ndarray], candidates: list[tuple[str, int]]) -> dict:
    table: dict = {}
    for method, radius in candidates:
        engine = engines.ClassicalEngine("bar", method=method, radius=radius)
        scores, seconds = [], 0.0
        for index, (name, truth) in enumerate(images.items()):
            colored = paint_bars(truth, seed=100 + index, count=6)
            holes = np.all(colored == GREEN, axis=2)
            t0 = time.perf_counter()
            out = deepcream.decensor(Image.fromarray(colored), engine=engine).images[0]
            seconds += time.perf_counter() - t0
            scores.append((name, *hole_scores(np.asarray(out), truth, holes)))
        table[f"{method} r={radius}"] = {"per_image": scores, "seconds": seconds}
    return table


def run_mosaics(images: dict[str, np.ndarray], factors: list[float | str | None]) -> dict:
    """``factors``: None = the mosaic as is, a number = Gaussian sigma/block ratio, "engine"
    = the classical engine's block-centre bicubic reconstruction."""
    table: dict = {}
    for factor in factors:
        scores = []
        for index, (name, truth) in enumerate(images.items()):
            h, w = truth.shape[:2]
            block = (8, 12)[index % 2]
            x1, y1 = (w // 4) // block * block, (h // 4) // block * block
            box = (x1, y1, x1 + (w // 3) // block * block, y1 + (h // 3) // block * block)
            mosaic = pixelate(truth, box, block)
            colored = mosaic.copy()
            colored[box[1]:box[3], box[0]:box[2]] = GREEN
            holes = np.all(colored == GREEN, axis=2)
            if factor is None:  # baseline: the mosaic itself
                out = mosaic
            else:
                engine = (engines.ClassicalEngine("mosaic") if factor == "engine"
                          else _MosaicFactor("mosaic", float(factor)))
                out = np.asarray(deepcream.decensor(Image.fromarray(colored), mode="mosaic",
                                                   original=Image.fromarray(mosaic),
                                                   engine=engine).images[0])
            scores.append((name, *hole_scores(out, truth, holes)))
        label = {None: "mosaic as is", "engine": "block-centre bicubic (engine)"}.get(
            factor, f"gaussian sigma={factor}*block")
        table[label] = {
            "per_image": scores}
    return table


class _MosaicFactor(engines.ClassicalEngine):
    """A Gaussian mosaic smoother (sigma = factor x block size), for comparison only."""

    def __init__(self, kind: str, factor: float) -> None:
        super().__init__(kind)
        self.factor = factor

    def _fill_one(self, crop, holes):
        import cv2

        out = crop.copy()
        sigma = max(engines.estimate_block_size(crop, holes) * self.factor, 0.8)
        filled = cv2.GaussianBlur(crop, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
        out[holes] = filled[holes]
        return out


def summarize(table: dict) -> list[str]:
    names = [n for n, *_ in next(iter(table.values()))["per_image"]]
    lines = ["| method | mean PSNR (dB) | mean SSIM | " + " | ".join(names) + " |",
             "|---" * (3 + len(names)) + "|"]
    for method, entry in table.items():
        psnr = [p for _, p, _ in entry["per_image"]]
        ssim = [s for _, _, s in entry["per_image"]]
        cells = [f"{p:.1f}/{s:.3f}" for _, p, s in entry["per_image"]]
        lines.append(f"| {method} | {np.mean(psnr):.2f} | {np.mean(ssim):.3f} | "
                     + " | ".join(cells) + " |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="also write the raw scores here")
    args = parser.parse_args()
    images = benchmark_images()
    bars = run_bars(images, [("telea", 3), ("telea", 5), ("telea", 9), ("telea", 13), ("ns", 3), ("ns", 5),
                             ("ns", 9)])
    mosaics = run_mosaics(images, [None, 0.35, 0.5, "engine"])
    print("Bar holes (PSNR dB / SSIM in the holes, per image):")
    print("\n".join(summarize(bars)))
    print("\nMosaic holes:")
    print("\n".join(summarize(mosaics)))
    best = max(bars, key=lambda k: np.mean([p for _, p, _ in bars[k]["per_image"]]))
    print(f"\nbest bar method by mean PSNR: {best} "
          f"(engine default: {engines.CLASSICAL_BAR_METHOD} r={engines.CLASSICAL_BAR_RADIUS})")
    if args.json:
        args.json.write_text(json.dumps({"bars": bars, "mosaics": mosaics}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
