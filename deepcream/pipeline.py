"""Decensor one image, in stages the server can batch across requests.

``prepare`` finds the regions and cuts model-ready crops for every region and variation;
an engine fills them (one batched call); ``finish`` pastes each region's own pixels back.
Only crops and the output copies are ever allocated, never a float copy of the image.

DCP compatibility (docs/decensor.md): regions, box rule, NEAREST resize to 256, hole zeroing
in bar mode, truncating float->uint8, BICUBIC resize back and region-only paste are DCP's;
variations flip the whole image as DCP does (done here by mirroring boxes and crops).
Deliberate differences: every region pixel is filled (an extra box where DCP's box misses
some) and a filled pixel never keeps the exact mask color. Pixels outside the regions are
copied, never converted.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

from deepcream import regions as rg
from deepcream.engines import Crops, Engine
from deepcream.errors import InputError
from deepcream.imageio import (
    PNG_COMPRESS_LEVEL,
    Pixels,
    PngRowWriter,
    Source,
    load_pixels,
)
from deepcream.options import VARIATION_FLIPS, Color, DecensorOptions

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
# A separate mask: a file, its bytes, a PIL image, or bool [H, W] (masks.load_mask_file).
MaskSource = Source | np.ndarray
#: Jobs with more crops than this are streamed: their crops are cut and filled this many at
#: a time instead of all at once (bounds memory on images with many regions).
STREAM_CROPS = 64


class JobCancelled(Exception):
    """``run_job`` stopped because its ``cancelled()`` said so (e.g. a request timed out)."""


@dataclass
class DecensorResult:
    """``pixels``: one ``imageio.Pixels`` per variation (what ``imageio.encode_png`` and
    ``save_png`` write fastest); ``images``: the same as PIL images, made on first use;
    ``engine``: which engine filled them (``describe()``); ``regions``: regions filled per
    image; ``timings``: seconds per stage; ``notice``: why nothing was done (no mask pixels),
    else None; ``warning``: something the user should look at: nothing was found (the same
    text as ``notice``), or, with a manual ``mask_tolerance``, why the mask found is probably
    incomplete and the settings to rerun with; else None; ``mask_note``: how the default
    finder read soft strokes (anti-aliased or JPEG-saved, grown past the exact color), else
    None."""

    pixels: list[Pixels]
    engine: str
    regions: int
    timings: dict[str, float]
    notice: str | None = None
    warning: str | None = None
    mask_note: str | None = None
    _images: list[Image.Image] | None = field(default=None, repr=False)

    @property
    def images(self) -> list[Image.Image]:
        if self._images is None:
            self._images = [p.to_image() for p in self.pixels]
        return self._images


@dataclass
class CropPlan:
    """Where one crop came from and where its pixels go (original image coordinates)."""

    variation: int
    region: int
    box: rg.Box
    flip_x: bool
    flip_y: bool
    # bool [box_h, box_w]: the region pixels this crop pastes; None for a tile group's crop
    # (``group`` >= 0), whose selection ``Job.select`` computes when it is pasted.
    select: np.ndarray | None
    group: int = -1


@dataclass
class Job:
    """Everything ``finish`` needs. ``crops``/``holes`` are what the engine fills: uint8
    [N, S, S, 3] / bool [N, S, S] for ``input_size`` S, or lists at native box size. A job
    with more than ``STREAM_CROPS`` crops is streamed: ``crops``/``holes`` are None and
    ``cut`` makes the crops of a few plans at a time (``run_job`` and the server do)."""

    mode: str
    # uint8 [H, W, 3]: the pixels the outputs start from. prepare's own decoded copy (never a
    # caller's array), so finish writes the last output into it in place and then releases it
    # (None): a job is finished once.
    base: np.ndarray | None
    alpha: np.ndarray | None
    variations: int
    input_size: int | None
    mask_color: Color
    regions: int
    crops: np.ndarray | list[np.ndarray] | None
    holes: np.ndarray | list[np.ndarray] | None
    plans: list[CropPlan]
    timings: dict[str, float] = field(default_factory=dict)
    notice: str | None = None
    warning: str | None = None
    mask_note: str | None = None  # how the mask was found, when not plainly by exact color
    owns_base: bool = False  # True when ``base`` is private to the job (finish may write it)
    width: int = 0
    height: int = 0
    # What ``cut`` needs: the pixels the crops come from (the unfilled input), the hole mask
    # and, for tile groups, the component labels and grouping.
    source: np.ndarray | None = field(default=None, repr=False)
    hole_mask: np.ndarray | None = field(default=None, repr=False)
    labels: rg.Labels | None = field(default=None, repr=False)
    grouping: rg.Grouping | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.base is not None:
            self.height, self.width = self.base.shape[:2]

    @property
    def streamed(self) -> bool:
        """True when the crops are cut on demand (``cut``) instead of held in ``crops``."""
        return self.crops is None and bool(self.plans)

    def cut(self, indices: Sequence[int]) -> tuple[Crops, Crops]:
        """The engine's crops and holes for ``plans[i]``, ``i`` in ``indices`` (stacked
        arrays for a fixed ``input_size``, else lists)."""
        if self.crops is not None and self.holes is not None:
            if isinstance(self.crops, np.ndarray) and isinstance(self.holes, np.ndarray):
                index = np.asarray(indices, np.intp)
                return self.crops[index], self.holes[index]
            return [self.crops[i] for i in indices], [self.holes[i] for i in indices]
        if self.source is None or self.hole_mask is None:
            raise ValueError("this job's crops were released")
        crops, holes = [], []
        for i in indices:
            plan = self.plans[i]
            crop, hole = _cut_crop(self.source, self.hole_mask, plan.box, plan.flip_x,
                                   plan.flip_y, self.input_size, plan.group >= 0)
            crops.append(crop)
            holes.append(hole)
        if self.input_size is not None:
            size = (0, self.input_size, self.input_size)
            return (np.stack(crops) if crops else np.zeros(size + (3,), np.uint8),
                    np.stack(holes) if holes else np.zeros(size, bool))
        return crops, holes

    def select(self, plan: CropPlan) -> np.ndarray:
        """bool [box_h, box_w]: the pixels ``plan`` pastes (original orientation)."""
        if plan.select is not None:
            return plan.select
        if self.labels is None or self.grouping is None:
            raise ValueError("this job's region labels were released")
        return rg.group_select(self.labels, self.grouping, plan.group, plan.box)

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height


def _cut_crop(source: np.ndarray, holes: np.ndarray, box: rg.Box, flip_x: bool, flip_y: bool,
              input_size: int | None, tile: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """One crop and its hole mask as the engine takes them (mirrored for a variation). A
    ``tile`` crop shrunk to the input size keeps every hole (``resize_holes_any``)."""
    crop = rg.crop(source, box, 0)
    hole = rg.crop(holes, box, True)
    if flip_x:
        crop, hole = crop[:, ::-1], hole[:, ::-1]
    if flip_y:
        crop, hole = crop[::-1], hole[::-1]
    crop, hole = np.ascontiguousarray(crop), np.ascontiguousarray(hole)
    if input_size is not None:
        shrink = tile and max(hole.shape) > input_size
        crop, resized = rg.resize_nearest(crop, hole, input_size)
        hole = rg.resize_holes_any(hole, input_size) if shrink else resized
    return crop, hole


def _load(src: Source | Pixels, what: str) -> Pixels:
    return load_pixels(src, name=None if not isinstance(src, bytes | bytearray) else what)


def prepare(image: Source | Pixels, options: DecensorOptions | None = None, *,
            original: Source | Pixels | None = None, mask: MaskSource | None = None,
            input_size: int | None = rg.MODEL_SIZE) -> Job:
    """Find the regions of one image and cut the crops for every region and variation.

    Bar mode: ``image`` is the image with mask-colored regions. Mosaic mode: ``image`` is the
    colored copy (regions painted in the mask color) and ``original`` the pixelated original
    whose pixels the model sees; with ``options.auto_mask`` ``image`` is the pixelated
    original itself and the regions come from ``mosaic.detect_mosaic``. ``input_size`` is the
    engine's (256 for DCPv2, None for native box resolution). More than
    ``options.max_regions`` separate regions is an ``InputError`` (checked before any crop
    is planned).

    ``mask``: a separate mask image (path, bytes, PIL image, or bool [H, W]; white or any
    non-black = fill, the same size as ``image``) instead of painted strokes. ``image`` is
    then the picture itself (bar mode) or the pixelated original (mosaic mode), and the mask
    color is not looked for.
    """
    t0 = time.perf_counter()
    options = options or DecensorOptions()
    mode, variations, auto_mask = options.mode, options.variations, options.auto_mask
    color, mask_tolerance, antialias = options.mask_color, options.mask_tolerance, options.antialias
    max_regions = options.max_regions
    if mask is not None and (original is not None or auto_mask):
        raise InputError("a mask file says where to fill: give no original (colored copy) "
                         "and no auto mask with it")
    base, alpha, source, rgb, holes, mask_note, decode_seconds = _inputs_and_holes(
        image, options, original, mask)
    try:
        labels = rg.label_holes(holes, max_count=max_regions)
    except rg.TooManyRegions as exc:
        raise InputError(str(exc)) from None
    height, width = holes.shape
    plans, grouping = _plan_crops(labels, width, height, variations)
    streamed = len(plans) > STREAM_CROPS
    batch = batch_holes = None
    if not streamed:
        batch, batch_holes = _cut_all(plans, source, holes, input_size)
    notice = warning = None
    color_mask = mask is None and not auto_mask
    if labels.count and color_mask and mask_tolerance is not None:
        from deepcream.masks import mask_warning

        warning = mask_warning(rgb, holes, color, mask_tolerance, antialias,
                               wording=options.wording)
    if not labels.count:
        notice = _nothing_found(rgb, color, mask_tolerance, auto_mask, options.wording)
        # An unchanged image is the most common surprise: it is a warning, not just a notice.
        warning = notice
    job = Job(mode, base, alpha, variations, input_size, color, labels.count, batch,
              batch_holes, plans, notice=notice, warning=warning, mask_note=mask_note,
              owns_base=True)  # load_pixels' arrays are always new
    if streamed:
        job.source, job.hole_mask = source, holes
    if grouping is not None:
        job.labels, job.grouping = labels, grouping
    job.timings["prepare"] = time.perf_counter() - t0
    job.timings["decode"] = decode_seconds  # (part of "prepare")
    return job


def _inputs_and_holes(image: Source | Pixels, options: DecensorOptions,
                      original: Source | Pixels | None, mask: MaskSource | None
                      ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray,
                                 np.ndarray, str | None, float]:
    """Decode the inputs and find the holes: ``(base, alpha, source, rgb, holes, mask_note,
    decode_seconds)``; ``base`` is what the outputs start from, ``source`` what the model
    sees, ``rgb`` the image the mask was read from, ``mask_note`` how soft strokes were
    read (or None)."""
    from deepcream.masks import load_mask_file

    mode, auto_mask = options.mode, options.auto_mask
    color, mask_tolerance, antialias = options.mask_color, options.mask_tolerance, options.antialias
    mask_note = None
    t_decode = time.perf_counter()
    loaded = _load(image, "image")
    decode_seconds = time.perf_counter() - t_decode
    rgb, alpha = loaded.rgb, loaded.alpha
    if mask is not None:
        base, source = rgb, rgb
        t_decode = time.perf_counter()
        holes = load_mask_file(mask, loaded.size)
        decode_seconds += time.perf_counter() - t_decode
    elif mode == "bar":
        base, source = rgb, rgb
        holes, mask_note = _color_holes(rgb, color, mask_tolerance, antialias, options.wording)
    elif auto_mask:
        if original is not None:
            raise InputError("auto mask finds the mosaic itself: give the pixelated image, "
                             "not a colored copy plus original")
        from deepcream.mosaic import detect_mosaic

        base, source = rgb, rgb
        holes = detect_mosaic(rgb)
    else:
        if original is None:
            raise InputError("mosaic mode needs the original (unpainted) image besides the "
                             "colored copy, or auto mask detection")
        t_decode = time.perf_counter()
        orig = _load(original, "original")
        decode_seconds += time.perf_counter() - t_decode
        if orig.size != loaded.size:
            raise InputError(f"the colored copy is {loaded.size[0]}x{loaded.size[1]} but the "
                             f"original is {orig.size[0]}x{orig.size[1]}: they must match")
        base, alpha = orig.rgb, orig.alpha
        del orig
        source = base
        holes, mask_note = _color_holes(rgb, color, mask_tolerance, antialias, options.wording)
    return base, alpha, source, rgb, holes, mask_note, decode_seconds


def find_color_mask(rgb: np.ndarray, options: DecensorOptions
                    ) -> tuple[np.ndarray, str | None, str | None, str | None]:
    """The mask a bar-mode ``prepare`` with ``options`` fills in ``rgb``, without cutting
    crops: ``(holes, notice, warning, mask_note)`` with the same messages."""
    color, tolerance = options.mask_color, options.mask_tolerance
    holes, mask_note = _color_holes(rgb, color, tolerance, options.antialias, options.wording)
    notice = warning = None
    if not holes.any():
        notice = warning = _nothing_found(rgb, color, tolerance, False, options.wording)
    elif tolerance is not None:
        from deepcream.masks import mask_warning

        warning = mask_warning(rgb, holes, color, tolerance, options.antialias,
                               wording=options.wording)
    return holes, notice, warning, mask_note


def _color_holes(rgb: np.ndarray, color: Color, tolerance: int | None, antialias: bool,
                 wording: dict[str, str] | None) -> tuple[np.ndarray, str | None]:
    """The mask of pixels painted in ``color`` and, when the strokes were found by growing
    past the exact color, a note saying so. ``tolerance`` None: the default finder."""
    from deepcream.masks import find_mask, find_paint, paint_note

    if tolerance is None and not antialias:
        holes, info = find_paint(rgb, color)
        return holes, paint_note(info, color, wording) if info.soft else None
    return find_mask(rgb, color, tolerance=tolerance or 0, grow_antialias=antialias), None


def _nothing_found(rgb: np.ndarray, color: Color, tolerance: int | None, auto_mask: bool,
                   wording: dict[str, str] | None) -> str:
    if auto_mask:
        return "no mosaic found: nothing to decensor"
    from deepcream.colors import format_color
    from deepcream.masks import near_mask_hint

    hint = near_mask_hint(rgb, color, tolerance or 0, wording=wording)
    text = (f"no regions found: no pixel is painted in the mask color {format_color(color)} "
            "(is that the color of the paint?): nothing to decensor")
    return text + (f"; {hint}" if hint else "")


def _plan_crops(labels: rg.Labels, width: int, height: int, variations: int
                ) -> tuple[list[CropPlan], rg.Grouping | None]:
    """Where every crop of every variation comes from: DCP's boxes per region, or, for many
    regions, shared tile crops for the small ones (``regions.plan_groups``)."""
    grouping = None
    if labels.count <= rg.EXACT_REGIONS:
        singles = rg.find_regions(labels)
    else:  # many regions: small ones share tile crops (docs/decensor.md)
        grouping = rg.plan_groups(labels, width, height)
        singles = grouping.single
    plans: list[CropPlan] = []
    for v in range(variations):
        flip_x, flip_y = VARIATION_FLIPS[v]
        for index, region in enumerate(singles):
            mirrored = region.flipped(width, height, flip_x, flip_y)
            for box_f, select_f in rg.region_boxes(mirrored, width, height):
                # Cut in original coordinates, then mirror the crop: identical to cutting the
                # mirrored image, as DCP does, without copying the whole image.
                box = rg.flip_box(box_f, width, height, flip_x, flip_y)
                # ``select`` is stored un-mirrored (original coordinates) for the paste.
                select = select_f
                if flip_x:
                    select = select[:, ::-1]
                if flip_y:
                    select = select[::-1]
                plans.append(CropPlan(v, index, box, flip_x, flip_y, np.ascontiguousarray(select)))
        if grouping is not None:
            # Tile boxes are placed in original coordinates; a variation mirrors the crop.
            for group, box in enumerate(grouping.boxes):
                plans.append(CropPlan(v, -1, box, flip_x, flip_y, None, group))
    return plans, grouping


def _cut_all(plans: list[CropPlan], source: np.ndarray, holes: np.ndarray,
             input_size: int | None) -> tuple[Crops, Crops]:
    """Every planned crop and its holes: one uint8/bool batch at ``input_size``, or lists at
    native box size (``input_size`` None)."""
    crops: list[np.ndarray] = []
    crop_holes: list[np.ndarray] = []
    for plan in plans:
        crop, hole = _cut_crop(source, holes, plan.box, plan.flip_x, plan.flip_y, input_size,
                               plan.group >= 0)
        crops.append(crop)
        crop_holes.append(hole)
    if input_size is None:
        return crops, crop_holes
    size = (0, input_size, input_size)
    return (np.stack(crops) if crops else np.zeros(size + (3,), np.uint8),
            np.stack(crop_holes) if crop_holes else np.zeros(size, bool))


def finish(job: Job, filled: np.ndarray | list[np.ndarray], engine: str) -> DecensorResult:
    """Paste the filled crops back: one image per variation. ``filled`` matches
    ``job.crops`` (same order and shapes); ``engine`` names what filled them (its
    ``describe()``).

    Memory: the last variation is pasted into ``job.base`` itself (prepare's private copy),
    the others into copies of it, and the job's reference is released (``job.base`` becomes
    None), so nothing full-size but the results outlives this call. A job can be finished
    once."""
    t0 = time.perf_counter()
    if len(filled) != len(job.plans):
        raise ValueError(f"expected {len(job.plans)} filled crops, got {len(filled)}")
    outputs = begin_paste(job)
    paste_filled(job, outputs, range(len(job.plans)), filled)
    result = end_paste(job, outputs, engine)
    result.timings["finish"] = time.perf_counter() - t0
    return result


def begin_paste(job: Job) -> list[np.ndarray]:
    """The arrays (one per variation) that ``paste_filled`` writes into; takes the job's
    copy of the input (``finish`` = ``begin_paste`` + ``paste_filled`` + ``end_paste``, for
    callers that fill a streamed job's crops a chunk at a time)."""
    return _take_outputs(job)


def paste_filled(job: Job, outputs: list[np.ndarray], indices: Sequence[int],
                 filled: Crops) -> None:
    """Paste the filled crops of ``plans[i]``, ``i`` in ``indices`` (same order)."""
    for i, pred in zip(indices, filled, strict=True):
        _paste_plan(job, outputs, job.plans[i], pred)


def end_paste(job: Job, outputs: list[np.ndarray], engine: str) -> DecensorResult:
    """The result once every crop is pasted (releases what cutting crops needed)."""
    _release_inputs(job)
    pixels = [Pixels(out, job.alpha) for out in outputs]
    return DecensorResult(pixels, engine, job.regions, dict(job.timings),
                          job.notice, job.warning, job.mask_note)


def _take_outputs(job: Job) -> list[np.ndarray]:
    """One array per variation to paste into; releases the job's copy of the input."""
    if job.base is None:
        raise ValueError("this job was already finished (its copy of the input is released)")
    base, job.base = job.base, None
    if job.streamed and job.source is base:
        # Crops still to be cut come from ``base``: it must stay the unfilled input.
        return [base.copy() for _ in range(job.variations)]
    if not job.owns_base or not base.flags.writeable:
        base = base.copy()
    # Copies for all but the last variation, taken before the last one is written in place.
    return [base.copy() for _ in range(job.variations - 1)] + [base]


def _release_inputs(job: Job) -> None:
    """Drop what only cutting crops needed (all pastes are done)."""
    job.source = job.hole_mask = job.labels = job.grouping = None


def _paste_plan(job: Job, outputs: list[np.ndarray], plan: CropPlan, pred: np.ndarray) -> None:
    """One filled crop back into its variation's output: the region's own pixels only."""
    x1, y1, x2, y2 = plan.box
    select = job.select(plan)
    pred = np.asarray(pred, np.uint8)
    if job.input_size is not None:
        pred = rg.resize_bicubic(pred, x2 - x1, y2 - y1)
    if plan.flip_x:
        pred = pred[:, ::-1]
    if plan.flip_y:
        pred = pred[::-1]
    if job.mode == "bar":
        # A filled pixel of exactly the mask color would still read as a hole: nudge it one
        # level (only possible with a saturating model; DCP would leave it).
        # (cv2.inRange: one pass, ~15x faster than numpy's all-channels compare)
        color = tuple(int(c) for c in job.mask_color)
        exact = (cv2.inRange(np.ascontiguousarray(pred), color, color) != 0) & select
        if exact.any():
            pred = pred.copy()
            pred[exact, 0] = color[0] + 1 if color[0] < 255 else 254
    rg.paste(outputs[plan.variation], plan.box, pred, select)


def run_job(engine: Engine, job: Job, *, png: bool = False, text: dict[str, str] | None = None,
            compress_level: int = PNG_COMPRESS_LEVEL,
            on_filled: Callable[[int], None] | None = None,
            cancelled: Callable[[], bool] | None = None
            ) -> tuple[DecensorResult, list[bytes] | None]:
    """Fill a prepared job and paste each crop as soon as the engine returns it; with ``png``
    also return each variation as PNG bytes (``text`` in tEXt chunks).

    This overlaps the stages ``run_engine`` + ``finish`` + ``encode_png`` run one after
    another: crops go to the engine top to bottom, each is pasted by the worker that filled
    it, and a background thread PNG-encodes every output row as soon as no unfilled crop's
    box reaches it (rows above the topmost pending box are final). So most of the paste and
    encode work runs while the model still computes, largely on a core the last crops leave
    idle. The result is identical to the staged path. ``on_filled(k)`` reports progress.
    A streamed job (many crops) is cut and filled ``STREAM_CROPS`` crops at a time.
    ``cancelled()`` is polled before each chunk and as each crop is filled: once it returns
    True the engine stops taking crops and ``JobCancelled`` is raised (the job is spent).
    """
    t0 = time.perf_counter()
    engine = engine.for_job(len(job.plans), None if job.streamed else job.holes)
    run = _OverlappedRun(job, on_filled, cancelled)
    encoder = None
    if png:
        encoder = threading.Thread(target=run.encode_all, args=(text, compress_level),
                                   name="deepcream-png", daemon=True)
        encoder.start()
    try:
        run.fill(engine)
        inpaint_done = time.perf_counter()
    except BaseException as exc:
        run.fail(exc)
        raise
    finally:
        if encoder is not None:
            encoder.join()
    if run.failed:
        raise run.failed[0]
    _release_inputs(job)
    timings = dict(job.timings)
    timings["inpaint"] = inpaint_done - t0
    timings["finish"] = time.perf_counter() - inpaint_done  # what was left after the model
    if png:
        timings["encode"] = run.encode_seconds  # CPU time spent, mostly overlapped
    result = DecensorResult([Pixels(out, job.alpha) for out in run.outputs], engine.describe(),
                            job.regions, timings, job.notice, job.warning, job.mask_note)
    return result, run.pngs if png else None


class _OverlappedRun:
    """The shared state of one ``run_job``: the engine's workers paste crops as they are
    filled (``filled_some``) while the encoder thread (``encode_all``) writes every row that
    no pending crop's box reaches."""

    def __init__(self, job: Job, on_filled: Callable[[int], None] | None,
                 cancelled: Callable[[], bool] | None) -> None:
        self.job = job
        self.on_filled = on_filled
        self.cancelled = cancelled
        self.outputs = _take_outputs(job)
        self.height, self.width = self.outputs[0].shape[:2]
        n = len(job.plans)
        # top to bottom, so the rows above the pending crops grow steadily
        self.order = sorted(range(n), key=lambda i: (job.plans[i].box[1], i))
        self.pending = [sorted(max(job.plans[i].box[1], 0) for i in self.order
                               if job.plans[i].variation == v) for v in range(job.variations)]
        self.ready = threading.Condition()
        self.failed: list[BaseException] = []
        self.reported: set[int] = set()
        self.pngs: list[bytes] = [b""] * job.variations
        self.encode_seconds = 0.0

    def check_cancel(self) -> None:
        if self.cancelled is not None and self.cancelled():
            raise JobCancelled("the job was cancelled")

    def fail(self, exc: BaseException) -> None:
        with self.ready:
            self.failed.append(exc)
            self.ready.notify_all()

    def filled_some(self, start: int, crops: Crops) -> None:
        self.check_cancel()  # the engine's workers stop taking crops once this raises
        for k, pred in enumerate(crops):
            plan = self.job.plans[self.order[start + k]]
            _paste_plan(self.job, self.outputs, plan, pred)
            with self.ready:
                self.reported.add(start + k)
                self.pending[plan.variation].remove(max(plan.box[1], 0))
                self.ready.notify_all()
        if self.on_filled is not None:
            self.on_filled(len(crops))

    def fill(self, engine: Engine) -> None:
        """All crops through the engine, in order; a streamed job a chunk at a time, cut just
        before."""
        n = len(self.order)
        if not n:
            return
        step = STREAM_CROPS if self.job.streamed else n
        for first in range(0, n, step):
            self.check_cancel()
            part = self.order[first:first + step]
            crops, holes = self.job.cut(part)

            def chunk_filled(start: int, done: Crops, first: int = first) -> None:
                self.filled_some(first + start, done)

            filled = engine.inpaint(crops, holes, on_filled=chunk_filled)
            del crops, holes
            if len(filled) != len(part):
                raise ValueError(f"the engine returned {len(filled)} crops for {len(part)}")
            for k in range(len(part)):
                if first + k not in self.reported:
                    self.filled_some(first + k, filled[k:k + 1])
            del filled

    def final_rows(self, v: int) -> int:
        return self.pending[v][0] if self.pending[v] else self.height

    def encode_all(self, text: dict[str, str] | None, compress_level: int) -> None:
        try:
            for v in range(self.job.variations):
                self._encode(v, text, compress_level)
        except BaseException as exc:  # re-raised in the caller's thread
            self.failed.append(exc)

    def _encode(self, v: int, text: dict[str, str] | None, compress_level: int) -> None:
        job, height = self.job, self.height
        # rows below every box of this variation are final from the start: they go into a
        # second deflate stream, written first (see PngRowWriter)
        below = max((min(p.box[3], height) for p in job.plans if p.variation == v), default=0)
        writer = PngRowWriter(self.width, height, job.alpha is not None, text=text,
                              compress_level=compress_level, tail_from=below)
        pixels = Pixels(self.outputs[v], job.alpha)
        t = time.perf_counter()
        writer.write_tail(pixels)
        self.encode_seconds += time.perf_counter() - t
        while writer.rows_written < writer.tail_from:
            with self.ready:
                while (writer.writable_until(self.final_rows(v)) <= writer.rows_written
                       and not self.failed):
                    self.ready.wait()
                if self.failed:
                    return
                stop = self.final_rows(v)
            t = time.perf_counter()
            writer.write_pixels(pixels, stop)
            self.encode_seconds += time.perf_counter() - t
        self.pngs[v] = b"".join(writer.close())


def run_engine(engine: Engine, job: Job) -> np.ndarray | list[np.ndarray]:
    """Fill all of a job's crops in one batched engine call (timed in ``job.timings``)."""
    t0 = time.perf_counter()
    engine = engine.for_job(len(job.plans), None if job.streamed else job.holes)
    if not job.plans:
        filled = job.crops
    elif job.streamed:
        filled = engine.inpaint(*job.cut(range(len(job.plans))))
    else:
        filled = engine.inpaint(job.crops, job.holes)
    job.timings["inpaint"] = time.perf_counter() - t0
    return filled

