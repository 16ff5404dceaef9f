#!/usr/bin/env python3
"""Time PNG writers on the benchmark workload image and on a photo (docs/decensor.md).

    .venv/bin/python scripts/png_speed.py [--repeat 5]

Writers: OpenCV's libpng at zlib level 1 (SUB filter + RLE strategy, the fallback without
ISA-L) and deepcream's ``PngRowWriter`` (SUB filter, ISA-L deflate) at ISA-L levels 0..3.
Prints best-of-``repeat`` times, sizes and a check that each file decodes to the pixels.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from deepcream import imageio  # noqa: E402
from deepcream_bench.fixtures import default_cache_dir  # noqa: E402
from deepcream_bench.workload import workload_png  # noqa: E402


def images() -> dict[str, np.ndarray]:
    path = default_cache_dir() / "workload-v2-1.png"
    if not path.is_file():
        workload_png(path)
    import skimage.data

    astronaut = np.tile(skimage.data.astronaut(), (4, 4, 1))  # 2048x2048 photo
    return {"workload 2604x2513": imageio.load_pixels(path).rgb, "astronaut x4": astronaut}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)

    def best(fn):
        times, out = [], None
        for _ in range(args.repeat):
            t = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t)
        return min(times), out

    print("| writer | image | time | size |\n|---|---|---:|---:|")
    for name, rgb in images().items():
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        params = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY,
                  cv2.IMWRITE_PNG_STRATEGY_RLE, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_SUB]
        writers = {"OpenCV libpng, zlib 1, SUB + RLE":
                   lambda bgr=bgr, params=params: cv2.imencode(".png", bgr, params)[1].tobytes()}
        for level in (0, 1, 2, 3):
            writers[f"PngRowWriter, ISA-L {level}, SUB"] = (
                lambda level=level, rgb=rgb: imageio.encode_png(imageio.Pixels(rgb),
                                                                compress_level=level))
        for writer, fn in writers.items():
            seconds, data = best(fn)
            assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), rgb)
            print(f"| {writer} | {name} | {seconds * 1000:.0f} ms | {len(data) / 1e6:.2f} MB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
