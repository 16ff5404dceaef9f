#!/usr/bin/env python3
"""Fit ``deepcream.scheduling.crop_cost``: single-threaded time of one crop vs its hole.

    .venv/bin/python scripts/fit_crop_cost.py

Times the work tree's sparse graph (random He-scaled weights, onnxruntime, 1 thread, best of
3) on the reference workload's 17 crops and on 7 square holes (16-200 px), then fits
ms = a + b*K + c*H + d*W by least squares: K the 32x32 cells next to a hole (the attention's
queries), H the hole cells, W the decoder window (hole cells' bounding box plus 4 cells).
Prints every crop and the coefficients to put into ``crop_cost``. Only the ratios between
crops matter there (they balance the crop workers' lanes).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from graph_speed import load_weights, make_inputs  # noqa: E402

from deepcream.graph import build_model  # noqa: E402


def features(mask: np.ndarray) -> tuple[int, int, int]:
    from scipy.ndimage import maximum_filter

    cells = mask[::8, ::8, 0] < 1
    near = maximum_filter(cells, 3, mode="constant")
    ys, xs = np.nonzero(cells)
    window = ((min(ys.max() + 5, 32) - max(ys.min() - 4, 0))
              * (min(xs.max() + 5, 32) - max(xs.min() - 4, 0)))
    return int(near.sum()), int(cells.sum()), int(window)


def main() -> int:
    import onnxruntime as ort

    image, mask = make_inputs("workload", 17, 0)
    images, masks = list(image), list(mask)
    rng = np.random.default_rng(1)
    for side in (16, 40, 64, 96, 128, 160, 200):
        m = np.ones((256, 256, 1), np.float32)
        y, x = rng.integers(0, 256 - side, 2)
        m[y:y + side, x:x + side] = 0
        images.append(np.where(m == 0, -1.0, image[0]).astype(np.float32))
        masks.append(m)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    session = ort.InferenceSession(build_model(load_weights(None, 0)).SerializeToString(), opts,
                                   providers=["CPUExecutionProvider"])
    rows, times = [], []
    for x, m in zip(images, masks, strict=True):
        feeds = {"image": x[None], "mask": m[None]}
        session.run(None, feeds)
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            session.run(None, feeds)
            best = min(best, time.perf_counter() - t)
        k, h, w = features(m)
        rows.append((1.0, k, h, w))
        times.append(best * 1000)
        print(f"{best * 1000:6.1f} ms  K={k:4d} H={h:4d} W={w:4d}")
    a = np.array(rows)
    y = np.array(times)
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    print("ms = {:.1f} + {:.4f} K + {:.4f} H + {:.4f} W; max error {:.1f} ms".format(
        *coef, float(np.abs(a @ coef - y).max())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
