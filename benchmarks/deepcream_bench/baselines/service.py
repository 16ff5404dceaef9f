"""The published service's pipeline cost structure, reproduced around a deepcream ONNX model.

What is reproduced (from the description in shared/dcpv2-model.md, "its decensor code ...
regions one by one ... per-pixel Python paste and list building"), following DeepCreamPy's
decensor loop: region finding as a pure-Python scan of every pixel through PIL pixel access
plus a dict/set flood fill; per region the DCP box rule, PIL crops resized NEAREST to 256, one
model run per region (batch 1), bicubic resize back, and a Python loop over every pixel of the
box that tests membership in the region's pixel set before copying it; then a PIL PNG save with
default settings. The model run inside is deepcream's own ONNX model through ``ModelSession``
(the service used the write-up's slower tf2onnx model), so this baseline's model share is
smaller than the service's and the ratio against it is conservative.
"""

from __future__ import annotations

import io
import time

import numpy as np
from PIL import Image

from deepcream.regions import dcp_box_for_bounds


def find_regions(image: Image.Image, mask_color: tuple[int, int, int]) -> list[set[tuple[int, int]]]:
    """4-connected regions of exact ``mask_color`` pixels, largest first (DCP's algorithm)."""
    pixel = image.load()
    width, height = image.size
    color = tuple(mask_color)
    neighbors: dict[tuple[int, int], set[tuple[int, int]]] = {}
    for x in range(width):
        for y in range(height):
            if pixel[x, y][:3] == color:
                neighbors[x, y] = {(x, y)}
    for x, y in neighbors:
        for candidate in ((x + 1, y), (x, y + 1)):
            if candidate in neighbors:
                neighbors[x, y].add(candidate)
                neighbors[candidate].add((x, y))
    closed: set[tuple[int, int]] = set()
    regions = []
    for start in neighbors:
        if start in closed:
            continue
        region: set[tuple[int, int]] = set()
        open_list = {start}
        while open_list:
            p = open_list.pop()
            closed.add(p)
            open_list |= neighbors[p] - closed
            region.add(p)
        regions.append(region)
    regions.sort(key=len, reverse=True)
    return regions


def expand_bounding(width: int, height: int, region: set[tuple[int, int]]) -> tuple[int, int, int, int]:
    """DCP's box rule; the bounds come from Python lists of the region's pixels, as DCP does."""
    xs = [p[0] for p in region]
    ys = [p[1] for p in region]
    return dcp_box_for_bounds(min(xs), min(ys), max(xs), max(ys), width, height)


def decensor_bar(data: bytes, run_model, mask_color=(0, 255, 0)) -> tuple[bytes, dict[str, float]]:
    """Decensor one PNG (bar mode) the service's way; ``run_model(image, mask)`` is a batch-1
    model call. Returns the output PNG bytes and seconds per stage."""
    timings: dict[str, float] = {}
    t = time.perf_counter()
    colored = Image.open(io.BytesIO(data))
    colored.load()
    colored = colored.convert("RGB")
    ori = colored
    width, height = ori.size
    timings["decode"] = time.perf_counter() - t

    t = time.perf_counter()
    regions = find_regions(colored, mask_color)
    colored_arr = np.asarray(colored)
    mask_img = Image.fromarray(
        np.where(np.all(colored_arr == np.array(mask_color, np.uint8), axis=-1), 0, 255).astype(np.uint8))
    output = np.array(ori).astype(np.float32) / 255.0
    timings["regions"] = time.perf_counter() - t
    timings["inference"] = 0.0
    timings["paste"] = 0.0
    for region in regions:
        t = time.perf_counter()
        box = expand_bounding(width, height, region)
        crop = np.asarray(ori.crop(box).resize((256, 256), Image.NEAREST), np.float32) / 255.0
        mask = np.asarray(mask_img.crop(box).resize((256, 256), Image.NEAREST), np.float32) / 255.0
        mask = mask[None, :, :, None]
        crop = crop[None] * mask  # bar mode: hole pixels zeroed
        crop = crop * 2.0 - 1.0
        timings["regions"] += time.perf_counter() - t
        t = time.perf_counter()
        pred = run_model(crop, mask)
        timings["inference"] += time.perf_counter() - t
        t = time.perf_counter()
        pred = (255.0 * ((np.squeeze(pred, 0) + 1.0) / 2.0)).astype(np.uint8)
        bw, bh = box[2] - box[0], box[3] - box[1]
        pred = np.asarray(Image.fromarray(pred).resize((bw, bh), Image.BICUBIC), np.float32) / 255.0
        for col in range(bw):
            for row in range(bh):
                px, py = col + box[0], row + box[1]
                if (px, py) in region:
                    output[py][px] = pred[row][col]
        timings["paste"] += time.perf_counter() - t
    t = time.perf_counter()
    out_img = Image.fromarray((output * 255.0).astype(np.uint8))
    buf = io.BytesIO()
    out_img.save(buf, format="PNG")
    timings["encode"] = time.perf_counter() - t
    return buf.getvalue(), timings
