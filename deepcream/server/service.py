"""The decensor service behind the routes: engines, warm-up, admission control, staged work.

Per request: decode + ``pipeline.prepare`` run in a CPU thread pool, the crops go to the
engine's ``Batcher`` (one inference thread per model kind, merging concurrent requests),
then ``pipeline.finish`` and PNG encoding run in the pool again. The event loop only awaits.
At most ``max_queue`` requests are admitted at once; beyond that the answer is 503 with
``Retry-After``, never an unbounded backlog.
"""

from __future__ import annotations

import asyncio
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
from deepcream.server.batcher import Batcher
from deepcream.server.errors import ApiError
from deepcream.server.limits import decode_pixels
from deepcream.server.metrics import Metrics
from deepcream.server.settings import Settings

log = logging.getLogger(__name__)

KINDS = ("bar", "mosaic")
# How mask messages name settings in this API: its form fields (masks.PYTHON_WORDING's keys).
API_WORDING = {
    "tolerance": "mask_tolerance={n}",
    "antialias": "antialias=true",
    "color": "the mask_color field",
    "mask": "a 'mask' file",
    "and": ", ",
}
VARIATIONS = (1, 2, 4)


@dataclass(frozen=True)
class DecensorParams:
    """Validated request options (the route parses the form into this)."""

    mode: str = "bar"
    variations: int = 1
    mask_color: tuple[int, int, int] = (0, 255, 0)
    mask_tolerance: int | None = None  # None: the default finder (masks.find_paint)
    antialias: bool = False
    auto_mask: bool = False


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
class MosaicDetection:
    """What ``POST /v1/detect-mosaic`` answers: the mask as a PNG plus the facts for headers."""

    png: bytes
    """White (255) = mosaic, black (0) = keep; grey-level PNG at the image's size."""
    regions: int
    pixels: int
    processing_ms: float
    block_sizes: list[int] = field(default_factory=list)
    """Block size (px) per region, largest region first, when the detector reports them."""


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
        """Create one engine per model kind (raises ``ModelError`` for a bad model setup)."""
        if self.engines:
            return
        from deepcream.engines import get_engine

        for kind in KINDS:
            engine = get_engine(kind, engine=self.settings.engine, models=self.settings.models)
            self.engines[kind] = engine
            self.metrics.engine.labels(kind, engine.name).set(1)
            log.info("%s model: engine %s", kind, engine.name)

    def warm_up(self) -> None:
        """Load if needed, run one dummy inference per engine, start the batchers, mark ready."""
        try:
            self.load()
            for kind, engine in self.engines.items():
                if self.settings.warmup:
                    started = time.perf_counter()
                    _warm(engine)
                    log.info("%s engine warmed up in %.2f s", kind, time.perf_counter() - started)
                self.batchers[kind] = Batcher(
                    engine,
                    window_s=self.settings.batch_window_ms / 1000.0,
                    max_batch=self.settings.max_batch,
                    on_batch=self._batch_observer(kind),
                )
        except Exception as exc:  # readyz reports it; the process stays up for diagnosis
            self.startup_error = f"{type(exc).__name__}: {exc}"
            log.error("model start-up failed: %s", self.startup_error)
            return
        self.ready.set()
        self.metrics.ready.set(1)

    def _batch_observer(self, kind: str) -> Any:
        def observe(crops: int, requests: int, seconds: float) -> None:
            self.metrics.batch_size.labels(kind).observe(crops)
            self.metrics.batch_requests.labels(kind).observe(requests)
            self.metrics.inference_seconds.labels(kind).observe(seconds)

        return observe

    def close(self) -> None:
        """Stop worker threads (after the work already queued)."""
        for batcher in self.batchers.values():
            batcher.close()
        self.executor.shutdown(wait=False, cancel_futures=True)

    def engine_names(self) -> dict[str, str]:
        return {kind: engine.name for kind, engine in self.engines.items()}

    # --- admission ------------------------------------------------------------------------
    def _admit(self) -> None:
        if not self.ready.is_set():
            self.metrics.rejected.labels("not_ready").inc()
            message = "models are still loading; try again shortly"
            if self.startup_error:
                message = f"models failed to load: {self.startup_error}"
            raise ApiError(503, message, {"Retry-After": "5"})
        with self._lock:
            if self._admitted >= self.settings.max_queue:
                self.metrics.rejected.labels("queue_full").inc()
                raise ApiError(
                    503,
                    f"server busy: {self._admitted} requests in progress (limit "
                    f"{self.settings.max_queue}); retry later",
                    {"Retry-After": str(self.retry_after_s())},
                )
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
        self, image: bytes, original: bytes | None, params: DecensorParams,
        mask: bytes | None = None,
    ) -> DecensorOutput:
        """Run one request through decode -> prepare -> batched inpaint -> finish -> PNG.
        ``mask``: an optional separate mask image (non-black = fill) instead of painted
        strokes."""
        self._admit()
        work = asyncio.ensure_future(self._process(image, original, params, mask))
        # The slot is freed when the work really ends, even after a timeout answered early.
        work.add_done_callback(self._work_done)
        try:
            return await asyncio.wait_for(asyncio.shield(work), self.settings.request_timeout_s)
        except TimeoutError:
            work.cancel()
            self.metrics.rejected.labels("timeout").inc()
            raise ApiError(
                503,
                f"request took longer than {self.settings.request_timeout_s:g} s and was stopped",
                {"Retry-After": str(self.retry_after_s())},
            ) from None

    async def detect_mosaic(self, image: bytes) -> MosaicDetection:
        """Find the pixelated regions of one image (admitted and timed like a decensor)."""
        self._admit()
        started = time.perf_counter()
        work = asyncio.get_running_loop().run_in_executor(self.executor, self._detect, image)
        work.add_done_callback(self._work_done)
        try:
            found = await asyncio.wait_for(asyncio.shield(work), self.settings.request_timeout_s)
        except TimeoutError:
            self.metrics.rejected.labels("timeout").inc()
            raise ApiError(
                503,
                f"mosaic detection took longer than {self.settings.request_timeout_s:g} s",
                {"Retry-After": str(self.retry_after_s())},
            ) from None
        found.processing_ms = (time.perf_counter() - started) * 1000
        return found

    def _detect(self, image: bytes) -> MosaicDetection:
        from PIL import Image

        from deepcream.mosaic import detect_mosaic
        from deepcream.regions import find_regions

        rgb = decode_pixels(image, field="image", max_pixels=self.settings.max_pixels).rgb
        mask = detect_mosaic(rgb)
        png = encode_png(Image.fromarray(mask.astype(np.uint8) * 255, mode="L"),
                         compress_level=self.settings.png_compress_level)
        return MosaicDetection(png=png, regions=len(find_regions(mask)),
                               pixels=int(np.count_nonzero(mask)), processing_ms=0.0)

    async def _process(
        self, image: bytes, original: bytes | None, params: DecensorParams,
        mask: bytes | None = None,
    ) -> DecensorOutput:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        stages: dict[str, float] = {}
        kind = params.mode
        engine = self.engines[kind]

        t = time.perf_counter()
        job = await loop.run_in_executor(self.executor, self._prepare, image, original, params,
                                         engine, mask)
        stages["prepare"] = (time.perf_counter() - t) * 1000

        t = time.perf_counter()
        crops, holes = job.crops, job.holes
        if not job.plans:  # no regions: nothing for the engine
            filled = crops
        elif isinstance(crops, np.ndarray):
            filled = await asyncio.wrap_future(self.batchers[kind].submit(crops, holes))
        else:  # crops of differing sizes (native-resolution engines): one call, no merging
            filled = await loop.run_in_executor(self.executor, engine.inpaint, crops, holes)
        stages["inpaint"] = (time.perf_counter() - t) * 1000

        t = time.perf_counter()
        result, pngs = await loop.run_in_executor(
            self.executor, self._finish, job, filled, engine.describe()
        )
        stages["finish"] = (time.perf_counter() - t) * 1000

        self.metrics.regions.labels(kind).inc(result.regions)
        self.metrics.images.labels(kind, engine.name).inc()
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
        self, image: bytes, original: bytes | None, params: DecensorParams, engine: Any,
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
        return pipeline.prepare(
            img,
            mode=params.mode,
            original=orig,
            variations=params.variations,
            mask_color=params.mask_color,
            mask_tolerance=params.mask_tolerance,
            antialias=params.antialias,
            auto_mask=params.auto_mask,
            input_size=engine.input_size,
            mask=holes,
            wording=API_WORDING,
        )

    def _finish(self, job: Any, filled: Any, engine: str) -> tuple[Any, list[bytes]]:
        from deepcream import pipeline

        result = pipeline.finish(job, filled, engine)
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


def _warm(engine: Any) -> None:
    """One dummy inference so the first real request does not pay the start-up cost."""
    if hasattr(engine, "warmup"):
        engine.warmup()
        return
    size = engine.input_size or 64
    crops = np.full((1, size, size, 3), 128, dtype=np.uint8)
    holes = np.zeros((1, size, size), dtype=bool)
    holes[0, size // 4 : size // 2, size // 4 : size // 2] = True
    engine.inpaint(crops, holes)
