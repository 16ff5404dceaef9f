"""The public entry point: a ``Decensorer`` holds the engines (loaded once, per mode) and runs
one image through the pipeline's stages; ``decensor()`` is the one-call convenience.

The CLI, the server and library users all go through ``Decensorer``: options arrive as one
``DecensorOptions``, engines are chosen through the engine registry, and a model can load in
the background while the first image is decoded and its regions found (``preload``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from deepcream.engines import Engine, engine_class, get_engine
from deepcream.errors import InputError
from deepcream.options import DEFAULT_MASK_COLOR, ENGINE_TEXT_KEY, Color, DecensorOptions
from deepcream.session import SessionOptions

if TYPE_CHECKING:
    # The pipeline (OpenCV, Pillow) is imported when an image is prepared, so a one-shot run
    # starts loading its model before those imports, not after them.
    from deepcream.imageio import Pixels, Source
    from deepcream.pipeline import DecensorResult, Job, MaskSource

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


class Decensorer:
    """Decensor images with one engine choice.

    ``engine``: "auto" (the converted DCPv2 model when installed, else the classical engine),
    a registered engine name ("onnx", "classical") or an ``Engine`` instance (which serves its
    own mode only). ``models``: the models folder (default: ``models.models_dir``).
    ``session``: how to run a model (backend, threads, precision).

    Engines load on first use and are kept; ``preload(mode)`` starts loading in a background
    thread. Thread-safe.
    """

    def __init__(self, *, engine: str | Engine = "auto", models: PathLike | None = None,
                 session: SessionOptions | None = None) -> None:
        self.models = Path(models) if models is not None else None
        self.session = session or SessionOptions()
        self._choice = engine
        self._engines: dict[str, Engine] = {}
        self._loaders: dict[str, threading.Thread] = {}
        self._errors: dict[str, BaseException] = {}
        self._lock = threading.Lock()
        if isinstance(engine, Engine):
            self._engines[engine.mode] = engine

    def engine_class(self, mode: str) -> type[Engine]:
        """The class of the engine ``mode`` runs on, without loading it."""
        if isinstance(self._choice, Engine):
            self._check_instance(mode)
            return type(self._choice)
        return engine_class(mode, self._choice, self.models)

    def input_size(self, mode: str) -> int | None:
        """The crop size the engine for ``mode`` takes (None = native box size)."""
        return self.engine_class(mode).input_size

    def _check_instance(self, mode: str) -> None:
        assert isinstance(self._choice, Engine)
        if self._choice.mode != mode:
            raise InputError(f"the {self._choice.name} engine is for {self._choice.mode} mode, "
                             f"not {mode}")

    def preload(self, mode: str) -> None:
        """Start loading the engine for ``mode`` in a background thread (a no-op when it is
        loaded or loading); ``engine(mode)`` waits for it. Errors surface there."""
        with self._lock:
            if mode in self._engines or mode in self._loaders:
                return
            thread = threading.Thread(target=self._load, args=(mode,), daemon=True,
                                      name=f"deepcream-load-{mode}")
            self._loaders[mode] = thread
        thread.start()

    def _load(self, mode: str) -> None:
        try:
            engine = get_engine(mode, str(self._choice), self.models, self.session)
        except BaseException as exc:  # re-raised by engine() in the caller's thread
            self._errors[mode] = exc
            return
        with self._lock:
            self._engines[mode] = engine

    def engine(self, mode: str) -> Engine:
        """The engine for ``mode``, loading it (or waiting for ``preload``) if needed."""
        if isinstance(self._choice, Engine):
            self._check_instance(mode)
        if mode in self._engines:
            return self._engines[mode]
        self.preload(mode)
        self._loaders[mode].join()
        if mode in self._errors:
            with self._lock:  # a later call may try again (e.g. after a model was installed)
                self._loaders.pop(mode, None)
                error = self._errors.pop(mode)
            raise error
        return self._engines[mode]

    def prepare(self, image: Source | Pixels, options: DecensorOptions, *,
                original: Source | Pixels | None = None, mask: MaskSource | None = None) -> Job:
        """Decode ``image`` (and ``original`` or ``mask``), find the regions, cut the crops
        for the engine of ``options.mode`` (which need not be loaded yet); see
        ``pipeline.prepare``."""
        from deepcream.pipeline import prepare

        return prepare(image, options, original=original, mask=mask,
                       input_size=self.input_size(options.mode))

    def run(self, job: Job, *, png: bool = False, text: dict[str, str] | None = None,
            on_filled: Callable[[int], None] | None = None
            ) -> tuple[DecensorResult, list[bytes] | None]:
        """Fill a prepared job (``pipeline.run_job``); with ``png`` also the PNG bytes, whose
        text chunks are ``text`` plus ``deepcream-engine``: what filled the image."""
        engine = self.engine(job.mode).for_job(len(job.plans),
                                               None if job.streamed else job.holes)
        if png:
            text = {**(text or {}), ENGINE_TEXT_KEY: engine.describe()}
        from deepcream.pipeline import run_job

        return run_job(engine, job, png=png, text=text, on_filled=on_filled)

    def decensor(self, image: Source | Pixels, options: DecensorOptions | None = None, *,
                 original: Source | Pixels | None = None,
                 mask: MaskSource | None = None) -> DecensorResult:
        """Decensor one image: one output per variation, pixels outside the regions
        bit-identical to the input, alpha kept. ``mask``: a separate mask image (non-black =
        fill) instead of painted strokes."""
        t0 = time.perf_counter()
        options = options or DecensorOptions()
        self.engine_class(options.mode)  # a wrong engine/mode pairing fails before decoding
        self.preload(options.mode)  # the model loads while the image is decoded
        job = self.prepare(image, options, original=original, mask=mask)
        result, _ = self.run(job)
        result.timings["total"] = time.perf_counter() - t0
        log.info("decensored %d regions x %d variations with %s in %.2f s", job.regions,
                 options.variations, result.engine, result.timings["total"])
        return result


def decensor(image: Source | Pixels, mode: str = "bar", original: Source | Pixels | None = None,
             variations: int = 1, engine: str | Engine = "auto",
             mask_color: Color | str = DEFAULT_MASK_COLOR, mask_tolerance: int | None = None,
             models: PathLike | None = None, *, antialias: bool = False,
             auto_mask: bool = False, backend: str = "auto", threads: int | None = None,
             precision: str = "fp32", mask: MaskSource | None = None) -> DecensorResult:
    """Decensor one image in one call (library convenience for ``Decensorer``).

    ``image``/``original``: PIL images, paths or bytes. ``engine``: "auto" (onnx when the
    model is installed in ``models`` or the default models folder, else classical), "onnx",
    "classical" or an ``Engine``. ``mask``: a separate mask image (white or any non-black =
    fill) instead of painted strokes. Loaded models are cached across calls. Returns one
    image per variation (``pixels`` arrays, or PIL ``images``).
    """
    options = DecensorOptions(mode=mode, variations=variations, mask_color=mask_color,
                              mask_tolerance=mask_tolerance, antialias=antialias,
                              auto_mask=auto_mask)
    session = SessionOptions(backend=backend, threads=threads, precision=precision)
    return Decensorer(engine=engine, models=models, session=session).decensor(
        image, options, original=original, mask=mask)
