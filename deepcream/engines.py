"""Inpainting engines behind one small, batched interface.

``inpaint(crops, holes) -> crops``: ``crops`` uint8 [N, H, W, 3] (or, for engines with
``input_size`` None, a list of [H_i, W_i, 3] crops at native box size), ``holes`` bool
[N, H, W] (True = pixel to fill). The pipeline decides crops and paste-back; an engine only
fills.

* ``onnx``: the converted DCPv2 models through :class:`deepcream.session.ModelSession`, with
  DCP's exact input/output arithmetic (float32, truncating conversion back to uint8).
* ``classical``: no model needed. Bars: a structure-guided directional fill
  (``deepcream.classical``) for holes within a pixel budget, OpenCV Telea beyond it (methods
  chosen by measured PSNR in the holes, see scripts/classical_quality.py and
  docs/decensor.md). Mosaics: a reconstruction from the block colors (back-projection).
"""

from __future__ import annotations

import copy
import functools
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from deepcream.errors import InputError, ModelError
from deepcream.options import MODEL_SIZE, MODES
from deepcream.session import SessionOptions

log = logging.getLogger(__name__)


# Chosen by scripts/classical_quality.py (PSNR/SSIM inside the holes on the shipped
# benchmark set): see docs/decensor.md for the table.
CLASSICAL_BAR_METHOD = "auto"
CLASSICAL_BAR_RADIUS = 9
CLASSICAL_BAR_METHODS = ("auto", "structure", "exemplar", "telea", "ns")
# "auto": the structure fill (deepcream/classical.py) while a job's hole pixels stay within
# this budget, Telea beyond it: the structure fill costs ~10-30 us CPU per hole pixel more
# than Telea, and a job with more holes than this (the 17-region reference workload has
# 132,690) would leave the classical engine's speed target.
STRUCTURE_MAX_PIXELS = 50_000
# ... and while its fixed costs stay bounded: at most this many crops per job (a streamed job
# with thousands of tiny regions comes in chunks of 64) and this many pixels in their
# windows (hole bounding boxes plus the longest ray) together.
STRUCTURE_MAX_CROPS = 16
STRUCTURE_MAX_WINDOW = 4_000_000
CLASSICAL_MOSAIC_METHOD = "backproject"
CLASSICAL_MOSAIC_METHODS = ("backproject", "bicubic")

Crops = np.ndarray | Sequence[np.ndarray]


class Engine:
    """Base class: ``name`` ("onnx"/"classical"), ``mode`` ("bar"/"mosaic"), ``input_size``
    (256 for DCPv2, None = native box resolution).

    A new engine is one subclass decorated with ``@register_engine``: ``available`` says
    whether it can run ``mode`` with the models folder given (``auto`` takes the first
    available engine in registration order), ``create`` builds it."""

    name: str = ""
    mode: str = "bar"
    input_size: int | None = None

    @classmethod
    def available(cls, mode: str, models: Path) -> bool:
        """Whether this engine can run ``mode`` (e.g. its model file is installed)."""
        return True

    @classmethod
    def create(cls, mode: str, models: Path, session: SessionOptions) -> Engine:
        """The engine for ``mode``; ``session`` says how to run a model, if it has one."""
        return cls(mode)

    def inpaint(self, crops: Crops, holes: Crops,
                on_filled: Callable[[int, Crops], None] | None = None) -> Crops:
        """Fill the holes of every crop. ``on_filled(start, filled)`` (optional) is called as
        soon as crops ``start .. start + len(filled)`` are done, possibly from worker threads
        and out of order; ``filled`` are those crops of the result."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line for logs and output metadata, e.g. ``onnx bar.onnx onnxruntime fp32``."""
        return self.name

    def warmup(self) -> None:
        """Pay one-time costs (lazy allocation, kernel choice) before the first real call."""

    def for_job(self, crops: int, holes: Crops | None) -> Engine:
        """The engine that fills one image's ``crops`` crops (``holes``: all their holes, or
        None for a streamed job that is cut chunk by chunk). An engine whose method depends
        on the size of the whole image returns a copy fixed to that method, so a job filled
        in chunks or in one call comes out the same. Default: itself."""
        return self


_REGISTRY: dict[str, type[Engine]] = {}


def register_engine(cls: type[Engine]) -> type[Engine]:
    """Class decorator: make ``cls`` selectable by its ``name`` (and by ``auto``)."""
    _REGISTRY[cls.name] = cls
    return cls


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise InputError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def dcp_model_inputs(crops: np.ndarray, holes: np.ndarray, mode: str
                     ) -> tuple[np.ndarray, np.ndarray]:
    """DCP's crop -> model input arithmetic, in float32 as DCP computes it: ``/255``; bar mode
    zeroes the holes; ``*2-1``; mask 1 keep, 0 hole."""
    x = crops.astype(np.float32) / np.float32(255.0)
    if mode == "bar":
        x[holes] = 0.0
    x = x * np.float32(2.0) - np.float32(1.0)
    mask = (~holes).astype(np.float32)[..., None]
    return x, mask


def dcp_output_to_uint8(pred: np.ndarray) -> np.ndarray:
    """DCP's ``(255.0 * ((p + 1.0) / 2.0)).astype(uint8)`` on the float32 prediction: it
    truncates, so even kept pixels can come back one level lower. Those never reach the output
    (only region pixels are pasted), but they are the bicubic resize's context, so we keep
    DCP's values to stay exact."""
    pred = np.asarray(pred, dtype=np.float32)
    return (np.float32(255.0) * ((pred + np.float32(1.0)) / np.float32(2.0))).astype(np.uint8)


@register_engine
class OnnxEngine(Engine):
    """A converted DCPv2 model (bar.onnx or mosaic.onnx) run through ``ModelSession``."""

    name = "onnx"
    input_size = MODEL_SIZE

    def __init__(self, path: str | os.PathLike[str], mode: str,
                 session: SessionOptions | None = None) -> None:
        from deepcream.session import ModelSession

        self.mode = _check_mode(mode)
        self.path = Path(path)
        opts = session or SessionOptions()
        self.session = ModelSession(self.path, backend=opts.backend, threads=opts.threads,
                                    precision=opts.precision)

    @classmethod
    def available(cls, mode: str, models: Path) -> bool:
        from deepcream.models import installed_models

        return mode in installed_models(models)

    @classmethod
    def create(cls, mode: str, models: Path, session: SessionOptions) -> Engine:
        from deepcream.models import installed_models

        path = installed_models(models).get(mode)
        if path is None:
            raise ModelError(
                f"no {mode} model in {models}: install one with `deepcream fetch-model` or "
                f"`deepcream convert`, or use --engine classical")
        return _cached_onnx(str(path), mode, session)

    def describe(self) -> str:
        return f"onnx {self.path.name} {self.session.backend} {self.session.precision}"

    def warmup(self) -> None:
        self.session.warmup()

    def inpaint(self, crops: Crops, holes: Crops,
                on_filled: Callable[[int, Crops], None] | None = None) -> np.ndarray:
        crops = np.asarray(crops, dtype=np.uint8)
        holes = np.asarray(holes, dtype=bool)
        n = crops.shape[0]
        size = self.input_size
        if crops.shape[1:] != (size, size, 3) or holes.shape != crops.shape[:3]:
            raise ValueError(f"onnx engine needs [N,{size},{size},3] crops and [N,{size},{size}] holes, "
                             f"got {crops.shape} and {holes.shape}")
        out = np.empty_like(crops)

        def fill(start: int, stop: int) -> None:
            # DCP's float arithmetic runs in the worker too, so the caller's thread never
            # holds up the crop workers, and only a few crops are float at any time.
            x, m = dcp_model_inputs(crops[start:stop], holes[start:stop], self.mode)
            out[start:stop] = dcp_output_to_uint8(self.session.run(x, m))
            if on_filled is not None:
                on_filled(start, out[start:stop])

        from deepcream.scheduling import crop_cost

        step = self.session.batch_size  # crops per backend call (1 by default)
        starts = range(0, n, step)
        costs = [sum(crop_cost(h) for h in holes[start:start + step]) for start in starts]
        self.session.run_each([functools.partial(fill, start, min(start + step, n))
                               for start in starts], costs)
        return out


def _hole_steps(crop: np.ndarray, holes: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Neighbour pairs along ``axis`` that are both holes, and those of them whose colors
    differ (bool arrays one shorter than the crop along ``axis``)."""
    both = np.logical_and(np.take(holes, range(1, holes.shape[axis]), axis=axis),
                          np.take(holes, range(holes.shape[axis] - 1), axis=axis))
    change = np.any(np.diff(crop.astype(np.int16), axis=axis) != 0, axis=2) & both
    return both, change


# The largest mosaic block size looked for (and the bound of every block-size estimate).
_MAX_BLOCK = 64


def _hole_extent(holes: np.ndarray) -> int:
    """The larger side of the holes' bounding box (0 when there is no hole)."""
    rows = np.flatnonzero(holes.any(axis=1))
    cols = np.flatnonzero(holes.any(axis=0))
    if rows.size == 0:
        return 0
    return int(max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1))


def estimate_block_size(crop: np.ndarray, holes: np.ndarray) -> float:
    """Mean run length of identical pixels inside the holes (rows and columns): roughly the
    mosaic's block size. At least 1, at most the holes' extent and ``_MAX_BLOCK``: a flat
    hole has no color change at all, and its pair count is no block size."""
    sizes = []
    for axis in (0, 1):
        same_hole, change = _hole_steps(crop, holes, axis)
        pairs = int(np.count_nonzero(same_hole))
        if pairs:
            sizes.append(pairs / max(int(np.count_nonzero(change)), 1))
    size = float(np.mean(sizes)) if sizes else 1.0
    return max(min(size, float(_hole_extent(holes)), float(_MAX_BLOCK)), 1.0)


# A block grid is accepted when this share of the color changes inside the holes falls on it.
_GRID_FIT = 0.9


def find_block_grid(crop: np.ndarray, holes: np.ndarray, axis: int) -> tuple[int, int] | None:
    """The mosaic's block size and phase along ``axis`` (1 = x, 0 = y): the largest period
    on which at least 90% of the color changes between neighbouring hole pixels lie (smaller
    divisors of the true size fit too, larger multiples do not). None if nothing fits."""
    _, change = _hole_steps(crop, holes, axis)
    # counts[p]: changes between position p and p+1, i.e. a block starting at p+1.
    counts = change.sum(axis=1 - axis).astype(np.float64)
    total = counts.sum()
    if total < 4:
        return None
    starts = np.arange(1, counts.size + 1)
    for size in range(min(_MAX_BLOCK, counts.size // 2), 1, -1):
        per_phase = np.bincount(starts % size, weights=counts, minlength=size)
        phase = int(np.argmax(per_phase))
        if per_phase[phase] >= _GRID_FIT * total:
            return size, phase
    return None


def smooth_mosaic(crop: np.ndarray, holes: np.ndarray, method: str = "bicubic") -> np.ndarray:
    """Reconstruct a mosaic smoothly from its block colors: each block's color is taken as
    the value at the block centre and interpolated bicubically between centres (the blocks
    are averages, so this is the natural upsampling of the block grid). Falls back to a
    Gaussian about half a block wide when no regular grid is found."""
    import cv2

    grid_x = find_block_grid(crop, holes, 1)
    grid_y = find_block_grid(crop, holes, 0)
    if grid_x is None or grid_y is None:
        # Stack blur: cost per pixel independent of the radius (a Gaussian's grows with it).
        radius = max(int(round(estimate_block_size(crop, holes) / 2.0)), 1)
        return cv2.stackBlur(np.ascontiguousarray(crop), (2 * radius + 1, 2 * radius + 1))
    if method == "backproject":
        from deepcream.classical import backprojected_mosaic
        from deepcream.regions import hole_window

        # Only the holes and a few blocks around them matter: the rest is pasted unchanged.
        ys, xs = hole_window(holes, 3 * max(grid_x[0], grid_y[0]))
        out = crop.copy()
        out[ys, xs] = backprojected_mosaic(
            np.ascontiguousarray(crop[ys, xs]), np.ascontiguousarray(holes[ys, xs]),
            (grid_x[0], (grid_x[1] - xs.start) % grid_x[0]),
            (grid_y[0], (grid_y[1] - ys.start) % grid_y[0]))
        return out
    h, w = holes.shape
    (bx, px), (by, py) = grid_x, grid_y
    # Block centres along each axis (first block may start before the crop), clipped to it.
    cx = np.arange(px - bx, w, bx) + (bx - 1) / 2.0
    cy = np.arange(py - by, h, by) + (by - 1) / 2.0
    sx = np.clip(np.round(cx), 0, w - 1).astype(np.intp)
    sy = np.clip(np.round(cy), 0, h - 1).astype(np.intp)
    samples = crop[sy[:, None], sx[None, :]].astype(np.float32)
    # Fractional index of every pixel in the centre grid, for cv2.remap's bicubic kernel.
    map_x = ((np.arange(w, dtype=np.float32) - np.float32(cx[0])) / bx)[None, :].repeat(h, 0)
    map_y = ((np.arange(h, dtype=np.float32) - np.float32(cy[0])) / by)[:, None].repeat(w, 1)
    out = cv2.remap(samples, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


@register_engine
class ClassicalEngine(Engine):
    """Model-free fills at native resolution. Bars: ``structure`` (directional fill guided by
    the outlines around the hole, ``deepcream.classical``), ``exemplar`` (PatchMatch
    completions averaged with Telea), ``telea``/``ns`` (OpenCV), or ``auto`` = structure for
    jobs within ``STRUCTURE_MAX_PIXELS`` hole pixels (and the crop/window budgets), else
    Telea. Mosaics: see ``CLASSICAL_MOSAIC_METHODS``."""

    name = "classical"
    input_size = None

    def __init__(self, mode: str, *, method: str = CLASSICAL_BAR_METHOD,
                 radius: int = CLASSICAL_BAR_RADIUS,
                 mosaic_method: str = CLASSICAL_MOSAIC_METHOD) -> None:
        self.mode = _check_mode(mode)
        if method not in CLASSICAL_BAR_METHODS:
            raise ValueError(f"classical bar method must be one of "
                             f"{', '.join(CLASSICAL_BAR_METHODS)}, got {method!r}")
        if mosaic_method not in CLASSICAL_MOSAIC_METHODS:
            raise ValueError(f"classical mosaic method must be one of "
                             f"{', '.join(CLASSICAL_MOSAIC_METHODS)}, got {mosaic_method!r}")
        self.method = method
        self.radius = int(radius)
        self.mosaic_method = mosaic_method

    def describe(self) -> str:
        if self.mode == "bar":
            if self.method == "auto":
                return (f"classical structure (<= {STRUCTURE_MAX_PIXELS} hole px, else "
                        f"opencv-telea) r={self.radius}")
            if self.method in ("structure", "exemplar"):
                return f"classical {self.method} r={self.radius}"
            return f"classical opencv-{self.method} r={self.radius}"
        return f"classical mosaic-block-{self.mosaic_method}"

    def bar_method_for(self, hole_pixels: int, crops: int = 1, window: int = 0) -> str:
        """The bar method a call with this many hole pixels, crops and search-window pixels
        gets."""
        if self.method != "auto":
            return self.method
        if (hole_pixels <= STRUCTURE_MAX_PIXELS and crops <= STRUCTURE_MAX_CROPS
                and window <= STRUCTURE_MAX_WINDOW):
            return "structure"
        return "telea"

    def for_job(self, crops: int, holes: Crops | None) -> Engine:
        if self.mode != "bar" or self.method != "auto":
            return self
        # a streamed job (holes None) has more crops than the structure budget allows
        fixed = copy.copy(self)
        fixed.method = "telea" if holes is None else self._bar_method_for_call(holes)
        return fixed

    def _bar_method_for_call(self, holes: Crops) -> str:
        if self.mode != "bar" or self.method != "auto":
            return self.method
        if len(holes) > STRUCTURE_MAX_CROPS:
            return "telea"
        from deepcream.classical import STRUCTURE_WINDOW_MARGIN
        from deepcream.regions import hole_window

        pixels = window = 0
        for h in holes:
            h = np.asarray(h, bool)
            count = int(np.count_nonzero(h))
            if count:
                ys, xs = hole_window(h, STRUCTURE_WINDOW_MARGIN)
                pixels += count
                window += (ys.stop - ys.start) * (xs.stop - xs.start)
        return self.bar_method_for(pixels, len(holes), window)

    def _fill_one(self, crop: np.ndarray, holes: np.ndarray, method: str) -> np.ndarray:
        import cv2

        out = crop.copy()
        if not holes.any():
            return out
        if self.mode == "bar" and method == "exemplar":
            from deepcream.classical import exemplar_fill

            filled = exemplar_fill(crop, holes, self.radius)
        elif self.mode == "bar" and method == "structure":
            from deepcream.classical import structure_fill

            filled = structure_fill(crop, holes, self.radius)
        elif self.mode == "bar":
            flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
            filled = cv2.inpaint(np.ascontiguousarray(crop), holes.view(np.uint8), self.radius, flag)
        else:
            filled = smooth_mosaic(crop, holes, self.mosaic_method)
        if self.mode == "bar" and method != "structure":  # (the structure fill limits its own)
            from deepcream.classical import limit_paint_lean

            filled = limit_paint_lean(crop, holes, filled, self.radius)
        out[holes] = filled[holes]
        return out

    def inpaint(self, crops: Crops, holes: Crops,
                on_filled: Callable[[int, Crops], None] | None = None) -> Crops:
        method = self._bar_method_for_call(holes)
        filled = []
        for c, h in zip(crops, holes, strict=True):
            filled.append(self._fill_one(np.asarray(c, np.uint8), np.asarray(h, bool), method))
            if on_filled is not None:
                on_filled(len(filled) - 1, filled[-1:])
        if isinstance(crops, np.ndarray) and crops.ndim == 4:
            return np.stack(filled) if filled else crops.copy()
        return filled


@functools.lru_cache(maxsize=8)
def _cached_onnx(path: str, mode: str, session: SessionOptions) -> OnnxEngine:
    # Loading a model costs seconds; library callers that pass engine="auto" per image
    # should not pay it per call.
    return OnnxEngine(path, mode, session)


def engine_names() -> tuple[str, ...]:
    """``auto`` and every registered engine's name."""
    return ("auto", *_REGISTRY)


def engine_class(mode: str, engine: str = "auto",
                 models: str | os.PathLike[str] | None = None) -> type[Engine]:
    """Which engine class ``get_engine`` would build, without building it (cheap: looks at
    the models folder only)."""
    _check_mode(mode)
    if engine != "auto" and engine not in _REGISTRY:
        raise InputError(f"engine must be one of {', '.join(engine_names())}, got {engine!r}")
    if engine != "auto":
        return _REGISTRY[engine]
    from deepcream.models import models_dir

    folder = models_dir(models)
    for cls in _REGISTRY.values():
        if cls.available(mode, folder):
            return cls
    raise ModelError(f"no engine can run {mode} mode")  # classical always can


def get_engine(mode: str, engine: str = "auto", models: str | os.PathLike[str] | None = None,
               session: SessionOptions | None = None) -> Engine:
    """The engine for ``mode`` by name (``ENGINES``): ``auto`` = the first registered engine
    that is available (onnx when the model is installed, else classical)."""
    from deepcream.models import models_dir

    cls = engine_class(mode, engine, models)
    folder = models_dir(models)
    if engine == "auto" and cls is not OnnxEngine:
        log.info("no %s model in %s: using the %s engine", mode, folder, cls.name)
    return cls.create(mode, folder, session or SessionOptions())
