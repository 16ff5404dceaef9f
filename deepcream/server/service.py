"""The decensor service behind the routes: engines, warm-up, admission control, staged work.

Per request: decode + ``pipeline.prepare`` run in a CPU thread pool, the crops go to the
engine's ``Batcher`` (one inference thread per mode, merging concurrent requests),
then ``pipeline.finish`` and PNG encoding run in the pool again. The event loop only awaits.
At most ``max_queue`` requests are admitted at once; beyond that the answer is 503 with
``Retry-After``, never an unbounded backlog.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import io
import logging
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deepcream.imageio import Pixels, encode_png
from deepcream.options import MODES, DecensorOptions
from deepcream.server.batcher import Batcher
from deepcream.server.errors import ApiError
from deepcream.server.limits import decode_pixels
from deepcream.server.metrics import Metrics
from deepcream.server.settings import Settings

log = logging.getLogger(__name__)

# How mask messages name settings in this API: its form fields (masks.PYTHON_WORDING's keys).
API_WORDING = {
    "tolerance": "mask_tolerance={n}",
    "antialias": "antialias=true",
    "color": "the mask_color field",
    "mask": "a 'mask' file",
    "and": ", ",
}


@dataclass
class DecensorOutput:
    """What a route needs to answer: encoded PNGs plus the facts for the headers."""

    pngs: list[bytes]
    engine: str
    regions: int
    processing_ms: float
    notice: str | None = None
    warning: str | None = None
    stages_ms: dict[str, float] = field(default_factory=dict)
    mask_note: str | None = None


@dataclass
class FoundMask:
    """What ``POST /v1/detect-mosaic`` and ``/v1/find-mask`` answer: the mask as a PNG plus
    the facts for headers."""

    png: bytes
    """White (255) = fill, black (0) = keep; grey-level PNG at the image's size."""
    regions: int
    pixels: int
    processing_ms: float
    block_sizes: list[int] = field(default_factory=list)
    """Block size (px) per mosaic region, largest region first (detect-mosaic only)."""
    notice: str | None = None
    warning: str | None = None
    mask_note: str | None = None


class DecensorService:
    """Owns the engines and the worker threads of one app."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.engines: dict[str, Any] = {}
        self.batchers: dict[str, Batcher] = {}
        self.ready = threading.Event()
        self.startup_error: str | None = None
        self.executor = ThreadPoolExecutor(
            max_workers=settings.cpu_workers, thread_name_prefix="deepcream-cpu"
        )
        self._admitted = 0
        self._lock = threading.Lock()
        metrics.queue_limit.set(settings.max_queue)

    # --- start-up -------------------------------------------------------------------------
    def load(self) -> None:
        """Create one engine per mode (raises ``ModelError`` for a bad model setup)."""
        if self.engines:
            return
        from deepcream.decensorer import Decensorer

        decensorer = Decensorer(engine=self.settings.engine, models=self.settings.models)
        for mode in MODES:
            decensorer.preload(mode)  # both models load at once
        for mode in MODES:
            engine = decensorer.engine(mode)
            self.engines[mode] = engine
            self.metrics.engine.labels(mode, engine.name).set(1)
            log.info("%s model: engine %s", mode, engine.name)

    def warm_up(self) -> None:
        """Load if needed, run one dummy inference per engine, start the batchers, mark ready."""
        try:
            self.load()
            for mode, engine in self.engines.items():
                if self.settings.warmup:
                    started = time.perf_counter()
                    engine.warmup()
                    log.info("%s engine warmed up in %.2f s", mode, time.perf_counter() - started)
                self.batchers[mode] = Batcher(
                    engine,
                    window_s=self.settings.batch_window_ms / 1000.0,
                    max_batch=self.settings.max_batch,
                    on_batch=self._batch_observer(mode),
                )
        except Exception as exc:  # readyz reports it; the process stays up for diagnosis
            self.startup_error = f"{type(exc).__name__}: {exc}"
            log.error("model start-up failed: %s", self.startup_error)
            return
        self.ready.set()
        self.metrics.ready.set(1)

    def _batch_observer(self, mode: str) -> Any:
        def observe(crops: int, requests: int, seconds: float) -> None:
            self.metrics.batch_size.labels(mode).observe(crops)
            self.metrics.batch_requests.labels(mode).observe(requests)
            self.metrics.inference_seconds.labels(mode).observe(seconds)

        return observe

    def close(self) -> None:
        """Stop worker threads (after the work already queued)."""
        for batcher in self.batchers.values():
            batcher.close()
        self.executor.shutdown(wait=False, cancel_futures=True)

    def engine_names(self) -> dict[str, str]:
        return {mode: engine.name for mode, engine in self.engines.items()}

    # --- admission ------------------------------------------------------------------------
    def refusal(self) -> ApiError | None:
        """The 503 a new request gets right now (models not ready, queue full), counted in
        the metrics, or None. The upload guard asks before reading a body, so an overloaded
        server refuses without reading or parsing uploads it cannot serve."""
        error = self._refusal()
        if error is not None:
            self.metrics.rejected.labels(error[0]).inc()
            return error[1]
        return None

    def _refusal(self) -> tuple[str, ApiError] | None:
        if not self.ready.is_set():
            message = "models are still loading; try again shortly"
            if self.startup_error:
                message = f"models failed to load: {self.startup_error}"
            return "not_ready", ApiError(503, message, {"Retry-After": "5"})
        if self._admitted >= self.settings.max_queue:
            return "queue_full", ApiError(
                503,
                f"server busy: {self._admitted} requests in progress (limit "
                f"{self.settings.max_queue}); retry later",
                {"Retry-After": str(self.retry_after_s())},
            )
        return None

    def _admit(self) -> None:
        with self._lock:
            error = self._refusal()
            if error is not None:
                self.metrics.rejected.labels(error[0]).inc()
                raise error[1]
            self._admitted += 1
            self.metrics.queue_depth.set(self._admitted)

    def _release(self) -> None:
        with self._lock:
            self._admitted -= 1
            self.metrics.queue_depth.set(self._admitted)

    def _work_done(self, work: asyncio.Future[Any]) -> None:
        self._release()
        if not work.cancelled():
            work.exception()  # retrieved: a late failure after a timeout is not "never retrieved"

    def retry_after_s(self) -> int:
        # A hint, not a promise: a full queue drains in seconds on the target CPU.
        return max(1, min(60, self.settings.max_queue // 4))

    # --- one request ----------------------------------------------------------------------
    async def decensor(
        self, image: bytes, original: bytes | None, params: DecensorOptions,
        mask: bytes | None = None,
    ) -> DecensorOutput:
        """Run one request through decode -> prepare -> batched inpaint -> finish -> PNG.
        ``mask``: an optional separate mask image (non-black = fill) instead of painted
        strokes."""
        self._admit()
        cancel = threading.Event()
        work = asyncio.ensure_future(self._process(image, original, params, mask, cancel))
        # The slot is freed when the work really ends, even after a timeout answered early;
        # ``cancel`` makes it end within one crop (the batcher and the chunk loop check it).
        work.add_done_callback(self._work_done)
        try:
            return await asyncio.wait_for(asyncio.shield(work), self.settings.request_timeout_s)
        except TimeoutError:
            cancel.set()
            work.cancel()
            self.metrics.rejected.labels("timeout").inc()
            raise ApiError(
                503,
                f"request took longer than {self.settings.request_timeout_s:g} s and was stopped",
                {"Retry-After": str(self.retry_after_s())},
            ) from None

    async def detect_mosaic(self, image: bytes) -> FoundMask:
        """Find the pixelated regions of one image (admitted and timed like a decensor)."""
        return await self._run_admitted("mosaic detection", self._detect, image)

    async def find_paint(self, image: bytes, params: DecensorOptions) -> FoundMask:
        """The mask a bar-mode decensor of ``image`` with ``params`` would fill, without
        filling it: the web page shows it as the editable mask."""
        return await self._run_admitted("finding the painted mask", self._find_paint, image, params)

    async def _run_admitted(self, what: str, work_fn: Any, *args: Any) -> FoundMask:
        self._admit()
        started = time.perf_counter()
        work = asyncio.get_running_loop().run_in_executor(self.executor, work_fn, *args)
        work.add_done_callback(self._work_done)
        try:
            found = await asyncio.wait_for(asyncio.shield(work), self.settings.request_timeout_s)
        except TimeoutError:
            self.metrics.rejected.labels("timeout").inc()
            raise ApiError(
                503,
                f"{what} took longer than {self.settings.request_timeout_s:g} s",
                {"Retry-After": str(self.retry_after_s())},
            ) from None
        found.processing_ms = (time.perf_counter() - started) * 1000
        return found

    def _mask_png(self, mask: np.ndarray) -> bytes:
        from PIL import Image

        return encode_png(Image.fromarray(mask.astype(np.uint8) * 255, mode="L"),
                          compress_level=self.settings.png_compress_level)

    def _find_paint(self, image: bytes, params: DecensorOptions) -> FoundMask:
        from deepcream.pipeline import find_color_mask
        from deepcream.regions import count_regions

        rgb = decode_pixels(image, field="image", max_pixels=self.settings.max_pixels).rgb
        # The same search, and the same messages, as a bar-mode decensor with these options.
        mask, notice, warning, mask_note = find_color_mask(
            rgb, dataclasses.replace(params, wording=API_WORDING))
        regions = count_regions(mask)  # (no per-region objects: may be millions)
        return FoundMask(png=self._mask_png(mask), regions=regions,
                         pixels=int(np.count_nonzero(mask)), processing_ms=0.0,
                         notice=notice, warning=warning, mask_note=mask_note)

    def _detect(self, image: bytes) -> FoundMask:
        from deepcream.mosaic import find_mosaic_regions

        rgb = decode_pixels(image, field="image", max_pixels=self.settings.max_pixels).rgb
        mask, regions = find_mosaic_regions(rgb)
        return FoundMask(png=self._mask_png(mask), regions=len(regions),
                               pixels=int(np.count_nonzero(mask)), processing_ms=0.0,
                               block_sizes=[r.block for r in regions])

    async def _process(
        self, image: bytes, original: bytes | None, params: DecensorOptions,
        mask: bytes | None = None, cancel: threading.Event | None = None,
    ) -> DecensorOutput:
        from deepcream import pipeline

        loop = asyncio.get_running_loop()
        cancel = cancel or threading.Event()
        started = time.perf_counter()
        stages: dict[str, float] = {}
        mode = params.mode
        engine = self.engines[mode]

        t = time.perf_counter()
        job = await loop.run_in_executor(self.executor, self._prepare, image, original, params,
                                         engine, mask)
        stages["prepare"] = (time.perf_counter() - t) * 1000
        # the method a native-resolution engine picks for this image, chunked or not
        engine = engine.for_job(len(job.plans), None if job.streamed else job.holes)

        def check(*_: Any) -> None:
            if cancel.is_set():
                raise pipeline.JobCancelled("the request was cancelled")

        t = time.perf_counter()
        outputs = await loop.run_in_executor(self.executor, pipeline.begin_paste, job)
        n = len(job.plans)
        # A streamed job (many crops) is cut, filled and pasted a chunk at a time.
        step = pipeline.STREAM_CROPS if job.streamed else max(n, 1)
        for first in range(0, n, step):
            check()
            part = range(first, min(first + step, n))
            crops, holes = await loop.run_in_executor(self.executor, job.cut, part)
            if isinstance(crops, np.ndarray):
                filled = await asyncio.wrap_future(self.batchers[mode].submit(crops, holes, cancel))
            else:  # crops of differing sizes (native-resolution engines): one call, no merging
                filled = await loop.run_in_executor(
                    self.executor, functools.partial(engine.inpaint, crops, holes, on_filled=check))
            del crops, holes
            await loop.run_in_executor(self.executor, pipeline.paste_filled, job, outputs, part,
                                       filled)
        stages["inpaint"] = (time.perf_counter() - t) * 1000

        t = time.perf_counter()
        check()
        result, pngs = await loop.run_in_executor(
            self.executor, self._finish, job, outputs, engine.describe()
        )
        stages["finish"] = (time.perf_counter() - t) * 1000

        self.metrics.regions.labels(mode).inc(result.regions)
        self.metrics.images.labels(mode, engine.name).inc()
        return DecensorOutput(
            pngs=pngs,
            engine=result.engine,
            regions=int(result.regions),
            notice=result.notice,
            warning=result.warning,
            mask_note=result.mask_note,
            processing_ms=(time.perf_counter() - started) * 1000,
            stages_ms=stages,
        )

    def _prepare(
        self, image: bytes, original: bytes | None, params: DecensorOptions, engine: Any,
        mask: bytes | None = None,
    ) -> Any:
        from deepcream import pipeline
        from deepcream.masks import is_lossy_image, load_mask_file

        limit = self.settings.max_pixels
        img = decode_pixels(image, field="image", max_pixels=limit)
        orig = None
        if original is not None:
            orig = decode_pixels(original, field="original", max_pixels=limit)
        if orig is not None and orig.size != img.size:
            raise ApiError(
                422,
                f"'original' is {orig.size[0]}x{orig.size[1]} but 'image' is "
                f"{img.size[0]}x{img.size[1]}; the mosaic pair must have the same size",
            )
        holes = None
        if mask is not None:
            holes = load_mask_file(decode_pixels(mask, field="mask", max_pixels=limit),
                                   img.size, name="form field 'mask'",
                                   lossy=is_lossy_image(mask))
        # the server's region cap applies whatever the request asks
        params = dataclasses.replace(params, max_regions=self.settings.max_regions,
                                     wording=API_WORDING)
        return pipeline.prepare(img, params, original=orig, mask=holes,
                                input_size=engine.input_size)

    def _finish(self, job: Any, outputs: list[np.ndarray], engine: str) -> tuple[Any, list[bytes]]:
        from deepcream import pipeline

        result = pipeline.end_paste(job, outputs, engine)
        return result, [self._png(pixels) for pixels in result.pixels]

    def _png(self, pixels: Pixels) -> bytes:
        return encode_png(pixels, compress_level=self.settings.png_compress_level)


def zip_pngs(pngs: list[bytes], stem: str = "result") -> bytes:
    """Several results as one zip: ``<stem>-1.png`` ... stored uncompressed (PNG already is)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for index, png in enumerate(pngs, start=1):
            info = zipfile.ZipInfo(f"{stem}-{index}.png", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, png)
    return buf.getvalue()
