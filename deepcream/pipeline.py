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

import inspect
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

from deepcream import regions as rg
from deepcream.engines import Crops, Engine, get_engine
from deepcream.errors import InputError
from deepcream.imageio import (
    PNG_COMPRESS_LEVEL,
    Pixels,
    PngRowWriter,
    Source,
    encode_png,
    load_pixels,
)

log = logging.getLogger(__name__)

Color = tuple[int, int, int]
PathLike = str | os.PathLike[str]
# A separate mask: a file, its bytes, a PIL image, or bool [H, W] (masks.load_mask_file).
MaskSource = Source | np.ndarray
DEFAULT_COLOR: Color = (0, 255, 0)
MODES = ("bar", "mosaic")
# DCP's variations: none, left-right, top-bottom, both.
VARIATION_FLIPS = ((False, False), (True, False), (False, True), (True, True))


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
    select: np.ndarray  # bool [box_h, box_w]: the region pixels this crop pastes


@dataclass
class Job:
    """Everything ``finish`` needs. ``crops``/``holes`` are what the engine fills: uint8
    [N, S, S, 3] / bool [N, S, S] for ``input_size`` S, or lists at native box size."""

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
    crops: np.ndarray | list[np.ndarray]
    holes: np.ndarray | list[np.ndarray]
    plans: list[CropPlan]
    timings: dict[str, float] = field(default_factory=dict)
    notice: str | None = None
    warning: str | None = None
    mask_note: str | None = None  # how the mask was found, when not plainly by exact color
    engine: str = ""  # describe() of the engine the crops were cut for, if given
    owns_base: bool = False  # True when ``base`` is private to the job (finish may write it)
    width: int = 0
    height: int = 0

    def __post_init__(self) -> None:
        if self.base is not None:
            self.height, self.width = self.base.shape[:2]

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height


def _parse_color(color: Color | str) -> Color:
    from deepcream.colors import parse_color

    if isinstance(color, str):
        try:
            return parse_color(color)
        except ValueError as exc:
            raise InputError(f"mask color: {exc}") from None
    try:
        c = tuple(int(v) for v in color)
    except (TypeError, ValueError):
        raise InputError(f"mask color must be three integers 0..255, got {color!r}") from None
    if len(c) != 3 or not all(0 <= v <= 255 for v in c):
        raise InputError(f"mask color must be three integers 0..255, got {color!r}")
    return c  # type: ignore[return-value]


def _color_holes(rgb: np.ndarray, color: Color, tolerance: int | None, antialias: bool,
                 wording: dict[str, str] | None) -> tuple[np.ndarray, str | None]:
    """The mask of pixels painted in ``color`` and, when the strokes were found by growing
    past the exact color, a note saying so."""
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


def _load(src: Source | Pixels, what: str) -> Pixels:
    return load_pixels(src, name=None if not isinstance(src, bytes | bytearray) else what)


def prepare(image: Source | Pixels, mode: str = "bar", original: Source | Pixels | None = None,
            variations: int = 1, mask_color: Color | str = DEFAULT_COLOR,
            mask_tolerance: int | None = None, antialias: bool = False, auto_mask: bool = False,
            input_size: int | None = rg.MODEL_SIZE, engine: Engine | None = None,
            mask: MaskSource | None = None, wording: dict[str, str] | None = None) -> Job:
    """Find the regions of one image and cut the crops for every region and variation.

    Bar mode: ``image`` is the image with mask-colored regions. Mosaic mode: ``image`` is the
    colored copy (regions painted in the mask color) and ``original`` the pixelated original
    whose pixels the model sees; with ``auto_mask`` ``image`` is the pixelated original itself
    and the regions come from ``mosaic.detect_mosaic``. ``input_size`` is the engine's
    (256 for DCPv2, None for native box resolution); passing ``engine`` takes its input size
    and records its name for ``finish``.

    ``mask``: a separate mask image (path, bytes, PIL image, or bool [H, W]; white or any
    non-black = fill, the same size as ``image``) instead of painted strokes. ``image`` is
    then the picture itself (bar mode) or the pixelated original (mosaic mode), and the mask
    color is not looked for.

    ``mask_tolerance`` None (default) finds the painted strokes however they were saved
    (``masks.find_paint``: exact hard-edged strokes give the exact-color mask, anti-aliased
    or JPEG-saved ones are grown over their blended edges); 0 takes the exact color only, as
    DeepCreamPy; N accepts a per-channel distance <= N (and ``antialias`` grows the edges).
    ``wording`` names the settings in the messages (``masks.PYTHON_WORDING`` by default; the
    CLI passes its flags, the server its form fields).
    """
    t0 = time.perf_counter()
    if engine is not None:
        input_size = engine.input_size
    if mode not in MODES:
        raise InputError(f"mode must be bar or mosaic, got {mode!r}")
    if variations not in (1, 2, 4):
        raise InputError(f"variations must be 1, 2 or 4, got {variations!r}")
    color = _parse_color(mask_color)
    if mask_tolerance is not None and (not isinstance(mask_tolerance, int)
                                       or not 0 <= mask_tolerance <= 255):
        raise InputError(f"mask tolerance must be an integer 0..255, got {mask_tolerance!r}")
    from deepcream.masks import load_mask_file

    if mask is not None and (original is not None or auto_mask):
        raise InputError("a mask file says where to fill: give no original (colored copy) "
                         "and no auto mask with it")
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
        holes, mask_note = _color_holes(rgb, color, mask_tolerance, antialias, wording)
    elif auto_mask:
        if original is not None:
            raise InputError("--auto-mask finds the mosaic itself: give the pixelated image, "
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
        holes, mask_note = _color_holes(rgb, color, mask_tolerance, antialias, wording)
    del loaded

    found = rg.find_regions(holes)
    height, width = holes.shape
    plans: list[CropPlan] = []
    crops: list[np.ndarray] = []
    crop_holes: list[np.ndarray] = []
    for v in range(variations):
        flip_x, flip_y = VARIATION_FLIPS[v]
        for index, region in enumerate(found):
            mirrored = region.flipped(width, height, flip_x, flip_y)
            for box_f, select_f in rg.region_boxes(mirrored, width, height):
                # Cut in original coordinates, then mirror the crop: identical to cutting the
                # mirrored image, as DCP does, without copying the whole image.
                box = rg.flip_box(box_f, width, height, flip_x, flip_y)
                crop = rg.crop(source, box, 0)
                hole = rg.crop(holes, box, True)
                if flip_x:
                    crop, hole = crop[:, ::-1], hole[:, ::-1]
                if flip_y:
                    crop, hole = crop[::-1], hole[::-1]
                crop, hole = np.ascontiguousarray(crop), np.ascontiguousarray(hole)
                if input_size is not None:
                    crop, hole = rg.resize_nearest(crop, hole, input_size)
                crops.append(crop)
                crop_holes.append(hole)
                # ``select`` is stored un-mirrored (original coordinates) for the paste.
                select = select_f
                if flip_x:
                    select = select[:, ::-1]
                if flip_y:
                    select = select[::-1]
                plans.append(CropPlan(v, index, box, flip_x, flip_y, np.ascontiguousarray(select)))

    notice = warning = None
    color_mask = mask is None and not auto_mask
    if found and color_mask and mask_tolerance is not None:
        from deepcream.masks import mask_warning

        warning = mask_warning(rgb, holes, color, mask_tolerance, antialias, wording=wording)
    if not found:
        notice = _nothing_found(rgb, color, mask_tolerance, auto_mask, wording)
        # An unchanged image is the most common surprise: it is a warning, not just a notice.
        warning = notice

    if input_size is not None:
        size = (0, input_size, input_size)
        batch = np.stack(crops) if crops else np.zeros(size + (3,), np.uint8)
        batch_holes = np.stack(crop_holes) if crop_holes else np.zeros(size, bool)
    else:
        batch, batch_holes = crops, crop_holes
    job = Job(mode, base, alpha, variations, input_size, color, len(found), batch, batch_holes,
              plans, notice=notice, warning=warning, mask_note=mask_note,
              engine=engine.describe() if engine is not None else "",
              owns_base=True)  # load_pixels' arrays are always new
    job.timings["prepare"] = time.perf_counter() - t0
    job.timings["decode"] = decode_seconds  # (part of "prepare")
    return job


def finish(job: Job, filled: np.ndarray | list[np.ndarray], engine: str = "") -> DecensorResult:
    """Paste the filled crops back: one image per variation. ``filled`` matches
    ``job.crops`` (same order and shapes); ``engine`` names what filled them (default: the
    engine given to ``prepare``).

    Memory: the last variation is pasted into ``job.base`` itself (prepare's private copy),
    the others into copies of it, and the job's reference is released (``job.base`` becomes
    None), so nothing full-size but the results outlives this call. A job can be finished
    once."""
    t0 = time.perf_counter()
    if len(filled) != len(job.plans):
        raise ValueError(f"expected {len(job.plans)} filled crops, got {len(filled)}")
    outputs = _take_outputs(job)
    for plan, pred in zip(job.plans, filled, strict=True):
        _paste_plan(job, outputs, plan, pred)
    pixels = [Pixels(out, job.alpha) for out in outputs]
    timings = dict(job.timings)
    timings["finish"] = time.perf_counter() - t0
    return DecensorResult(pixels, engine or job.engine, job.regions, timings, job.notice,
                          job.warning, job.mask_note)


def _take_outputs(job: Job) -> list[np.ndarray]:
    """One array per variation to paste into; releases the job's copy of the input."""
    if job.base is None:
        raise ValueError("this job was already finished (its copy of the input is released)")
    base, job.base = job.base, None
    if not job.owns_base or not base.flags.writeable:
        base = base.copy()
    # Copies for all but the last variation, taken before the last one is written in place.
    return [base.copy() for _ in range(job.variations - 1)] + [base]


def _paste_plan(job: Job, outputs: list[np.ndarray], plan: CropPlan, pred: np.ndarray) -> None:
    """One filled crop back into its variation's output: the region's own pixels only."""
    x1, y1, x2, y2 = plan.box
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
        exact = (cv2.inRange(np.ascontiguousarray(pred), color, color) != 0) & plan.select
        if exact.any():
            pred = pred.copy()
            pred[exact, 0] = color[0] + 1 if color[0] < 255 else 254
    rg.paste(outputs[plan.variation], plan.box, pred, plan.select)


def run_job(engine: Engine, job: Job, *, png: bool = False, text: dict[str, str] | None = None,
            compress_level: int = PNG_COMPRESS_LEVEL,
            on_filled: Callable[[int], None] | None = None
            ) -> tuple[DecensorResult, list[bytes] | None]:
    """Fill a prepared job and paste each crop as soon as the engine returns it; with ``png``
    also return each variation as PNG bytes (``text`` in tEXt chunks).

    This overlaps the stages ``run_engine`` + ``finish`` + ``encode_png`` run one after
    another: crops go to the engine top to bottom, each is pasted by the worker that filled
    it, and a background thread PNG-encodes every output row as soon as no unfilled crop's
    box reaches it (rows above the topmost pending box are final). So most of the paste and
    encode work runs while the model still computes, largely on a core the last crops leave
    idle. The result is identical to the staged path. ``on_filled(k)`` reports progress.
    """
    t0 = time.perf_counter()
    n = len(job.plans)
    if png and not PngRowWriter.available():  # no ISA-L: encode after the fact
        filled = run_engine(engine, job)
        result = finish(job, filled, engine.describe())
        t1 = time.perf_counter()
        pngs = [encode_png(p, text=text, compress_level=compress_level) for p in result.pixels]
        result.timings["encode"] = time.perf_counter() - t1
        return result, pngs
    outputs = _take_outputs(job)
    height, width = outputs[0].shape[:2]
    # top to bottom, so the rows above the pending crops grow steadily
    order = sorted(range(n), key=lambda i: (job.plans[i].box[1], i))
    pending = [sorted(max(job.plans[i].box[1], 0) for i in order
                      if job.plans[i].variation == v) for v in range(job.variations)]
    ready = threading.Condition()
    failed: list[BaseException] = []

    reported: set[int] = set()

    def filled_some(start: int, crops: Crops) -> None:
        for k, pred in enumerate(crops):
            plan = job.plans[order[start + k]]
            _paste_plan(job, outputs, plan, pred)
            with ready:
                reported.add(start + k)
                pending[plan.variation].remove(max(plan.box[1], 0))
                ready.notify_all()
        if on_filled is not None:
            on_filled(len(crops))

    def final_rows(v: int) -> int:
        return pending[v][0] if pending[v] else height

    pngs: list[bytes] | None = [b""] * job.variations if png else None
    encode_seconds = [0.0]

    def encode_all() -> None:
        try:
            for v in range(job.variations):
                # rows below every box of this variation are final from the start: they
                # go into a second deflate stream, written first (see PngRowWriter)
                below = max((min(p.box[3], height) for p in job.plans if p.variation == v),
                            default=0)
                writer = PngRowWriter(width, height, job.alpha is not None, text=text,
                                      compress_level=compress_level, tail_from=below)
                pixels = Pixels(outputs[v], job.alpha)
                t = time.perf_counter()
                writer.write_tail(pixels)
                encode_seconds[0] += time.perf_counter() - t
                while writer.rows_written < writer.tail_from:
                    with ready:
                        while final_rows(v) <= writer.rows_written and not failed:
                            ready.wait()
                        if failed:
                            return
                        stop = final_rows(v)
                    t = time.perf_counter()
                    writer.write_pixels(pixels, stop)
                    encode_seconds[0] += time.perf_counter() - t
                assert pngs is not None
                pngs[v] = b"".join(writer.close())
        except BaseException as exc:  # re-raised in the caller's thread
            failed.append(exc)

    encoder = threading.Thread(target=encode_all, name="deepcream-png", daemon=True) if png else None
    if encoder is not None:
        encoder.start()
    try:
        if n:
            index = np.asarray(order, np.intp)
            crops = job.crops[index] if isinstance(job.crops, np.ndarray) else [job.crops[i] for i in order]
            holes = job.holes[index] if isinstance(job.holes, np.ndarray) else [job.holes[i] for i in order]
            params = inspect.signature(engine.inpaint).parameters
            if "on_filled" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
                filled = engine.inpaint(crops, holes, on_filled=filled_some)
            else:  # an engine without the callback: paste everything after it returns
                filled = engine.inpaint(crops, holes)
            if len(filled) != n:
                raise ValueError(f"the engine returned {len(filled)} crops for {n}")
            for k in range(n):
                if k not in reported:
                    filled_some(k, filled[k:k + 1])
        inpaint_done = time.perf_counter()
    except BaseException as exc:
        with ready:
            failed.append(exc)
            ready.notify_all()
        raise
    finally:
        if encoder is not None:
            encoder.join()
    if failed:
        raise failed[0]
    timings = dict(job.timings)
    timings["inpaint"] = inpaint_done - t0
    timings["finish"] = time.perf_counter() - inpaint_done  # what was left after the model
    if png:
        timings["encode"] = encode_seconds[0]  # CPU time spent, mostly overlapped
    result = DecensorResult([Pixels(out, job.alpha) for out in outputs], engine.describe(),
                            job.regions, timings, job.notice, job.warning, job.mask_note)
    return result, pngs


def resolve_engine(engine: str | Engine, mode: str, models: PathLike | None = None, *,
                   backend: str = "auto",
                   threads: int | None = None, precision: str = "fp32") -> Engine:
    """An ``Engine`` for ``mode`` from a name ("auto", "onnx", "classical") or an instance."""
    if isinstance(engine, Engine):
        if engine.kind != mode:
            raise InputError(f"the {engine.name} engine is for {engine.kind} mode, not {mode}")
        return engine
    return get_engine(mode, engine, models, backend=backend, threads=threads, precision=precision)


def run_engine(engine: Engine, job: Job) -> np.ndarray | list[np.ndarray]:
    """Fill all of a job's crops in one batched engine call (timed in ``job.timings``)."""
    t0 = time.perf_counter()
    filled = engine.inpaint(job.crops, job.holes) if job.plans else job.crops
    job.timings["inpaint"] = time.perf_counter() - t0
    return filled


def decensor(image: Source, mode: str = "bar", original: Source | None = None,
             variations: int = 1, engine: str | Engine = "auto",
             mask_color: Color | str = DEFAULT_COLOR, mask_tolerance: int | None = None,
             models: PathLike | None = None, *,
             antialias: bool = False, auto_mask: bool = False, backend: str = "auto",
             threads: int | None = None, precision: str = "fp32",
             mask: MaskSource | None = None) -> DecensorResult:
    """Decensor one image (library entry point): ``prepare`` + ``run_job`` (the engine, with
    each crop pasted as it is filled).

    ``image``/``original``: PIL images, paths or bytes. ``mask``: a separate mask image
    (white or any non-black = fill; see ``prepare``) instead of painted strokes. ``engine``: "auto" (onnx when the
    model is installed in ``models`` or the default models folder, else classical), "onnx",
    "classical" or an ``Engine``. Returns one image per variation (``pixels`` arrays, or PIL
    ``images``); pixels outside the regions are bit-identical to the input, alpha is kept.
    """
    t0 = time.perf_counter()
    eng = resolve_engine(engine, mode, models, backend=backend, threads=threads,
                         precision=precision)
    job = prepare(image, mode=mode, original=original, variations=variations,
                  mask_color=mask_color, mask_tolerance=mask_tolerance, antialias=antialias,
                  auto_mask=auto_mask, engine=eng, mask=mask)
    result, _ = run_job(eng, job)
    result.timings["total"] = time.perf_counter() - t0
    log.info("decensored %d regions x %d variations with %s in %.2f s", job.regions,
             variations, result.engine, result.timings["total"])
    return result
