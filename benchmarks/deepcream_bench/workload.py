"""The reference workload image, built procedurally from ``data/reference-workload.json``.

An image of the reference's size with 17 mask-colored strokes in the same boxes and about the
same pixel counts, on a smooth, non-explicit background (illustration-like flat areas and
edges, so region finding, resampling and PNG coding do realistic work).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

WORKLOAD_JSON = Path(__file__).parent / "data" / "reference-workload.json"
# Std of the background grain: 0.1 makes a PIL level-6 PNG save of the workload cost ~1.0 s
# of CPU on the 2-core dev machine, what the published service's save of the original took.
GRAIN = 0.1
WORKLOAD_VERSION = 2  # bump when the generated image changes (it is cached)


def load_workload() -> dict[str, Any]:
    """The reference workload description (image size, mask color, region boxes)."""
    return json.loads(WORKLOAD_JSON.read_text())


def _background(width: int, height: int, seed: int) -> np.ndarray:
    """Smooth colour fields with hard-edged flat blobs and slight grain: illustration-like
    content (flat areas and edges) so region finding, resampling and PNG coding do realistic
    work."""
    rng = np.random.default_rng(seed)
    ys = (np.arange(height, dtype=np.float32) / height)[:, None]
    xs = (np.arange(width, dtype=np.float32) / width)[None, :]
    img = np.empty((height, width, 3), np.float32)
    for c in range(3):
        f = rng.uniform(1.0, 4.0, 3)
        p = rng.uniform(0, 2 * np.pi, 3)
        img[..., c] = (150 + 40 * np.sin(f[0] * 2 * np.pi * xs + p[0]) * np.cos(f[1] * 2 * np.pi * ys + p[1])
                       + 25 * np.sin(f[2] * 2 * np.pi * (xs + ys) + p[2]))
    for _ in range(40):  # flat-coloured ellipses, like cel shading
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        rx, ry = rng.uniform(0.02, 0.12) * width, rng.uniform(0.02, 0.12) * height
        x0, x1 = int(max(cx - rx, 0)), int(min(cx + rx + 1, width))
        y0, y1 = int(max(cy - ry, 0)), int(min(cy + ry + 1, height))
        yy = np.arange(y0, y1, dtype=np.float32)[:, None]
        xx = np.arange(x0, x1, dtype=np.float32)[None, :]
        inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
        patch = img[y0:y1, x0:x1]
        patch[inside] = patch[inside] * 0.4 + rng.uniform(40, 230, 3).astype(np.float32) * 0.6
    img += rng.normal(0.0, GRAIN, img.shape).astype(np.float32)
    out = np.clip(img, 0, 255).astype(np.uint8)
    # Never produce the mask colour by accident: red stays above 0.
    out[..., 0] = np.maximum(out[..., 0], 1)
    return out


def _stroke(w: int, h: int, pixels: int, anti: bool) -> np.ndarray:
    """A thick straight stroke across a w x h box, corner to corner, with about ``pixels``
    pixels."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    x0, y0, x1, y1 = (0.0, h - 1.0, w - 1.0, 0.0) if anti else (0.0, 0.0, w - 1.0, h - 1.0)
    dx, dy = x1 - x0, y1 - y0
    length = max(np.hypot(dx, dy), 1e-9)
    dist = np.abs(dy * (xx - x0) - dx * (yy - y0)) / length
    lo, hi = 0.5, float(max(w, h))
    for _ in range(40):  # bisect the half-width to match the pixel count
        mid = (lo + hi) / 2
        if np.count_nonzero(dist <= mid) < pixels:
            lo = mid
        else:
            hi = mid
    return dist <= hi


def make_workload_image(spec: dict[str, Any] | None = None, *, scale: float = 1.0,
                        seed: int = 2019) -> tuple[np.ndarray, np.ndarray]:
    """The reference workload image (uint8 [H,W,3]) and its stroke mask (bool [H,W]).

    Strokes are drawn in the given boxes. Some boxes overlap; as in the original image the
    strokes stay separate 4-connected regions: each stroke takes the direction that touches
    the earlier ones least, loses the pixels next to them and keeps its largest piece.
    ``scale`` < 1 shrinks the whole geometry (for quick tests)."""
    from scipy import ndimage

    spec = spec or load_workload()
    width = max(int(round(spec["image"]["width"] * scale)), 64)
    height = max(int(round(spec["image"]["height"] * scale)), 64)
    rgb = _background(width, height, seed)
    mask = np.zeros((height, width), bool)
    cross = ndimage.generate_binary_structure(2, 1)
    for region in spec["regions"]:
        x, y = int(region["x"] * scale), int(region["y"] * scale)
        w, h = max(int(region["w"] * scale), 2), max(int(region["h"] * scale), 2)
        w, h = min(w, width - x), min(h, height - y)
        pixels = max(int(region["pixels"] * scale * scale), 2)
        # Pixels 4-adjacent to an earlier stroke (in the box, plus a 1-pixel margin).
        near = ndimage.binary_dilation(mask, structure=cross)[y:y + h, x:x + w]
        candidates = [_stroke(w, h, pixels, anti) for anti in (False, True)]
        stroke = min(candidates, key=lambda s: int(np.count_nonzero(s & near))) & ~near
        labels, count = ndimage.label(stroke, structure=cross)
        if count > 1:
            sizes = ndimage.sum_labels(stroke, labels, range(1, count + 1))
            stroke = labels == (int(np.argmax(sizes)) + 1)
        mask[y:y + h, x:x + w] |= stroke
    color = np.array(spec.get("mask_color", (0, 255, 0)), np.uint8)
    rgb[mask] = color
    return rgb, mask


def workload_png(path: Path, *, scale: float = 1.0) -> dict[str, Any]:
    """Write the workload PNG once (with a JSON description beside it) and describe it."""
    from PIL import Image
    from scipy import ndimage

    from deepcream.fsutil import atomic_path, atomic_write_bytes

    about = path.with_suffix(".json")
    if path.is_file() and about.is_file():
        return json.loads(about.read_text())
    rgb, mask = make_workload_image(scale=scale)
    with atomic_path(path) as tmp:
        Image.fromarray(rgb).save(tmp, format="PNG")
    _, count = ndimage.label(mask)
    info = {"file": str(path), "width": rgb.shape[1], "height": rgb.shape[0],
            "regions": int(count), "mask_pixels": int(mask.sum()), "scale": scale,
            "png_bytes": path.stat().st_size}
    atomic_write_bytes(about, json.dumps(info).encode())
    return info
