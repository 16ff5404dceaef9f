"""Time `detect_mosaic` on 2604x2513 images, configurations alternated in one process.

    python scripts/time_mosaic.py [--runs 7] [--params JSON ...]

Images: ``time_large``'s (astronaut, two integer mosaics of 24 and 9 px) as JPEG q85 and as
PNG pixels, and ``rescaled``: the same picture pixelated at 3472x3351 (24 and 12 px blocks)
and shrunk x0.75 with the area filter (18 and 9 px). Each ``--params`` is a configuration of
MosaicParams overrides timed beside the defaults (e.g. ``'{"parallel": false}'``: every
search in one thread). Prints wall and CPU medians (min); the CPU
time is the process's (OpenCV threads add to it). BLAS runs one thread, as in the CLI.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from eval_mosaic import encode, pixelate, skimage_image  # noqa: E402
from PIL import Image  # noqa: E402

from deepcream.mosaic import MosaicParams, detect_mosaic  # noqa: E402


def images() -> dict[str, np.ndarray]:
    photo = Image.fromarray(skimage_image("astronaut"))
    base = np.asarray(photo.resize((2604, 2513), Image.BICUBIC)).copy()
    pixelate(base, (600, 500, 700, 600), 24, (5, 11))
    pixelate(base, (1700, 1500, 500, 400), 9, (2, 4))
    big = np.asarray(photo.resize((3472, 3351), Image.BICUBIC)).copy()
    pixelate(big, (800, 667, 933, 800), 24, (5, 11))
    pixelate(big, (2267, 2000, 667, 533), 12, (2, 4))
    return {"jpeg85": encode(base, "jpeg85"), "png": base,
            "rescaled": cv2.resize(big, (2604, 2513), interpolation=cv2.INTER_AREA)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--params", nargs="*", default=[], metavar="JSON")
    args = ap.parse_args()
    configs = {"defaults": MosaicParams()}
    configs.update({kv: MosaicParams(**json.loads(kv)) for kv in args.params})
    imgs = images()
    times: dict[tuple[str, str], tuple[list[float], list[float]]] = {
        (k, c): ([], []) for k in imgs for c in configs}
    for img in imgs.values():
        detect_mosaic(img)  # warm caches
    for _ in range(args.runs):
        for k, img in imgs.items():
            for c, prm in configs.items():
                t0, c0 = time.perf_counter(), time.process_time()
                detect_mosaic(img, params=prm)
                times[(k, c)][0].append(time.perf_counter() - t0)
                times[(k, c)][1].append(time.process_time() - c0)
    for (k, c), (wall, cpu) in times.items():
        print(f"{k:9s} {c:60s} wall {statistics.median(wall):.3f} s (min {min(wall):.3f})  "
              f"cpu {statistics.median(cpu):.3f} s (min {min(cpu):.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
