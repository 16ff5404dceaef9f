"""Inference sessions for the DCPv2 ONNX models: backend choice, thread settings, warm-up.

``ModelSession`` is the one place that knows onnxruntime and OpenVINO. It loads one ONNX file
that follows the model contract in ``docs/ARCHITECTURE.md`` (inputs ``image`` [N,256,256,3]
and ``mask`` [N,256,256,1], output ``output`` [N,256,256,3], all float32, N symbolic) and runs
it. ``run`` is safe to call from several threads at once.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepcream.errors import ModelError
from deepcream.options import MODEL_SIZE
from deepcream.scheduling import balanced_lanes

log = logging.getLogger(__name__)

BACKENDS = ("auto", "onnxruntime", "openvino", "cuda", "directml", "coreml")
#: GPU backends: onnxruntime execution providers, and the package that brings each one
#: (onnxruntime-gpu and onnxruntime-directml replace the CPU-only onnxruntime package: they
#: install the same ``onnxruntime`` module).
GPU_PROVIDERS = {
    "cuda": ("CUDAExecutionProvider", "onnxruntime-gpu (NVIDIA CUDA 12 and cuDNN 9)"),
    "directml": ("DmlExecutionProvider", "onnxruntime-directml (Windows, any DirectX 12 GPU)"),
    "coreml": ("CoreMLExecutionProvider", "onnxruntime on macOS (its wheel has CoreML)"),
}
#: Crops per call on a GPU: one call per image for the usual region counts.
GPU_BATCH = 16
PRECISIONS = ("fp32", "bf16", "int8")
PARALLEL_MODES = ("crops", "ops")
INPUT_NAMES = ("image", "mask")
OUTPUT_NAME = "output"
CROP = MODEL_SIZE
#: Crops per backend call by default (see docs/performance.md for the measurement).
DEFAULT_BATCH = 1


@dataclass(frozen=True)
class SessionOptions:
    """How to run a model: ``backend`` (``BACKENDS``), intra-op ``threads`` (None = all usable
    CPUs), ``precision`` ("fp32" exact; "bf16"/"int8" faster approximations)."""

    backend: str = "auto"
    threads: int | None = None
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ModelError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.precision not in PRECISIONS:
            raise ModelError(f"precision must be one of {', '.join(PRECISIONS)}, "
                             f"got {self.precision!r}")
        if self.threads is not None and self.threads < 1:
            raise ModelError(f"threads must be >= 1, got {self.threads}")


def available_backends() -> list[str]:
    """Backends importable in this environment, default first."""
    import importlib.util

    found = []
    if importlib.util.find_spec("onnxruntime") is not None:
        found.append("onnxruntime")
    if importlib.util.find_spec("openvino") is not None:
        found.append("openvino")
    return found


def default_threads() -> int:
    """Intra-op threads: one per CPU this process may use (physical cores are not visible
    portably; on the 2-vCPU target both are usable)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def ort_providers() -> list[str]:
    """onnxruntime's execution providers in this environment ([] without onnxruntime)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return list(ort.get_available_providers())


def choose_backend(backend: str, precision: str, *, providers: Sequence[str],
                   openvino: bool) -> str:
    """The concrete backend for ``backend`` given what is installed: ``providers`` (onnxruntime's
    execution providers, empty without onnxruntime) and ``openvino`` (the OpenVINO runtime).

    ``auto``: a GPU provider when one is available (CUDA, then DirectML, then CoreML) and the
    precision is fp32; else onnxruntime on the CPU for exact fp32 (portable, measured in
    ``deepcream bench``); reduced precision uses OpenVINO's bf16 when installed (AMX) and
    onnxruntime's int8 otherwise. A named backend that is not installed is a ``ModelError``
    naming the package to install."""
    if backend not in BACKENDS:
        raise ModelError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise ModelError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    have_ort = "CPUExecutionProvider" in providers or bool(providers)
    if backend == "auto":
        if precision == "fp32":
            for name, (provider, _package) in GPU_PROVIDERS.items():
                if provider in providers:
                    return name
        if precision == "bf16" and openvino:
            return "openvino"
        backend = "onnxruntime" if have_ort or not openvino else "openvino"
    if backend in GPU_PROVIDERS:
        provider, package = GPU_PROVIDERS[backend]
        if provider not in providers:
            raise ModelError(f"backend {backend} needs onnxruntime's {provider}, which this "
                             f"onnxruntime does not have: install {package}")
        if precision != "fp32":
            raise ModelError(f"precision {precision} runs on the CPU backends; {backend} "
                             "runs fp32")
        return backend
    if backend == "openvino" and not openvino:
        raise ModelError("backend openvino is not installed (pip install 'deepcream[openvino]')")
    if backend == "onnxruntime" and not have_ort:
        raise ModelError("backend onnxruntime is not installed (pip install onnxruntime)")
    if backend == "onnxruntime" and precision == "bf16":
        raise ModelError("precision bf16 needs the openvino backend (pip install 'deepcream[openvino]')")
    return backend


def resolve_backend(backend: str, precision: str = "fp32") -> str:
    """``choose_backend`` for this environment."""
    if backend not in BACKENDS:  # before importing onnxruntime
        raise ModelError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    openvino = "openvino" in available_backends()
    if openvino and (backend == "openvino" or (backend == "auto" and precision == "bf16")):
        # The choice is OpenVINO whatever onnxruntime offers: importing onnxruntime only to
        # list its providers would cost a one-image run ~30 ms before the model loads.
        return choose_backend(backend, precision, providers=[], openvino=True)
    return choose_backend(backend, precision, providers=ort_providers(), openvino=openvino)


class ModelSession:
    """One loaded ONNX model on one backend.

    ``path``: the ONNX file. ``backend``: "onnxruntime", "openvino" or "auto". ``threads``:
    intra-op threads (default: all usable CPUs). ``precision``: "fp32" (exact, the default),
    "bf16" (OpenVINO on AMX/AVX512-BF16 CPUs) or "int8" (dynamic int8 quantization of the
    weights of MatMul/Conv; onnxruntime), the opt-in fast modes. ``batch_size``: crops per
    backend call (default 1: least memory, same speed). ``parallel``: "crops" (default: each
    crop single-threaded, ``threads`` crops at once) or "ops" (multi-threaded kernels, one
    crop at a time). ``graph_cache``: keep onnxruntime's optimized graph of the model in the
    user cache, per CPU, so later loads skip the graph optimization (CPU only).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        backend: str = "auto",
        threads: int | None = None,
        precision: str = "fp32",
        mem_arena: bool = True,
        shared_arena: bool = True,
        mem_pattern: bool = False,
        batch_size: int | None = None,
        parallel: str = "crops",
        graph_cache: bool = True,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"model file not found: {self.path}")
        self.precision = precision
        self.backend = resolve_backend(backend, precision)
        self.threads = int(threads) if threads else default_threads()
        if self.threads < 1:
            raise ModelError(f"threads must be >= 1, got {threads}")
        if parallel not in PARALLEL_MODES:
            raise ModelError(f"parallel must be one of {', '.join(PARALLEL_MODES)}, got {parallel!r}")
        # "crops": single-threaded kernels, up to `threads` crops at once: no per-op
        # synchronisation, so faster per crop on images with several crops
        # (docs/performance.md). "ops": all threads inside each kernel, one crop at a time.
        self.parallel = parallel if self.threads > 1 else "ops"
        self.gpu = self.backend in GPU_PROVIDERS
        if self.gpu:
            # A GPU runs one big call better than several small ones side by side: crops are
            # batched (GPU_BATCH per call) and the calls made one after another.
            self.parallel = "ops"
        self._pool = (ThreadPoolExecutor(self.threads, thread_name_prefix="deepcream-crop")
                      if self.parallel == "crops" else None)
        self.ready = False
        self.load_seconds = 0.0
        self.warmup_seconds = 0.0
        self._mem_arena = mem_arena
        self._shared_arena = shared_arena
        self._mem_pattern = mem_pattern
        self._graph_cache = graph_cache
        # Crops per backend call: activations grow linearly with the batch while per-crop
        # time barely changes on few cores, so big batches are split (None = no limit).
        self.batch_size = int(batch_size) if batch_size else (
            GPU_BATCH if self.gpu else DEFAULT_BATCH)
        if self.batch_size < 1:
            raise ModelError(f"batch_size must be >= 1, got {batch_size}")
        t0 = time.perf_counter()
        if self.backend == "onnxruntime" or self.gpu:
            self._runner: _Runner = _OrtRunner(self)
        else:
            self._runner = _OpenVinoRunner(self)
        self.load_seconds = time.perf_counter() - t0
        log.debug("loaded %s on %s/%s with %d threads in %.3f s", self.path.name, self.backend,
                  self.precision, self.threads, self.load_seconds)

    def __repr__(self) -> str:
        return (f"ModelSession({str(self.path)!r}, backend={self.backend!r}, "
                f"threads={self.threads}, precision={self.precision!r})")

    def run(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Inpaint a batch: ``image`` float32 [N,256,256,3] in [-1,1], ``mask`` float32
        [N,256,256,1] (1 keep, 0 hole) -> float32 [N,256,256,3]."""
        image = np.ascontiguousarray(image, dtype=np.float32)
        mask = np.ascontiguousarray(mask, dtype=np.float32)
        if image.ndim != 4 or image.shape[1:] != (CROP, CROP, 3):
            raise ValueError(f"image must be [N,{CROP},{CROP},3], got {list(image.shape)}")
        if mask.shape != image.shape[:3] + (1,):
            raise ValueError(f"mask must be [N,{CROP},{CROP},1] matching image, got {list(mask.shape)}")
        n = image.shape[0]
        if n == 0:
            return np.empty_like(image)
        if n <= self.batch_size:
            return self._runner.run(image, mask)
        out = np.empty_like(image)
        chunks = [(start, min(start + self.batch_size, n)) for start in range(0, n, self.batch_size)]

        def one(chunk: tuple[int, int]) -> None:
            start, stop = chunk
            out[start:stop] = self._runner.run(image[start:stop], mask[start:stop])

        if self._pool is not None:
            for future in [self._pool.submit(one, c) for c in chunks]:
                future.result()
        else:
            for chunk in chunks:
                one(chunk)
        return out

    def run_each(self, tasks: Sequence[Callable[[], None]],
                 costs: Sequence[float] | None = None) -> None:
        """Run independent tasks, each of which calls ``run`` on its own few crops, on the
        crop workers ("crops" mode) or one after another ("ops" mode). Re-raises the first
        task's error.

        ``costs`` (estimated seconds per task, e.g. ``crop_cost``) balance the workers: the
        tasks are split into one lane per worker with equal estimated totals, each lane runs
        in the given order, and a worker whose lane runs dry takes the other lanes' last
        tasks. Without costs (or with a wrong estimate) the last crop of an image often runs
        alone while the other worker idles, ~half a crop on 2 workers. Once a task raises, the
        workers take no further tasks (a cancelled job stops within one task per worker).
        """
        if self._pool is None or len(tasks) <= 1:
            for task in tasks:
                task()
            return
        if costs is None:
            costs = [1.0] * len(tasks)
        lanes = [collections.deque(lane) for lane in balanced_lanes(costs, self.threads)]
        lock = threading.Lock()
        stop = threading.Event()  # a task failed (or cancelled its job): take no more

        def worker(own: int) -> None:
            while not stop.is_set():
                with lock:
                    if lanes[own]:
                        index = lanes[own].popleft()
                    else:  # steal the last task of the fullest other lane
                        other = max(range(len(lanes)), key=lambda j: len(lanes[j]))
                        if not lanes[other]:
                            return
                        index = lanes[other].pop()
                try:
                    tasks[index]()
                except BaseException:
                    stop.set()
                    raise

        futures = [self._pool.submit(worker, own) for own in range(len(lanes))]
        errors = [f.exception() for f in futures]
        for error in errors:
            if error is not None:
                raise error

    def warmup(self, batch: int = 1) -> float:
        """Run dummy batches so the first real request does not pay for lazy allocation and
        kernel selection. The sparse graph's shapes follow the holes, so the first dummy crop
        has a large hole (large activations: the arena grows once, before real requests)
        and the second has a small hole (the common case). Returns seconds."""
        image = np.zeros((batch, CROP, CROP, 3), np.float32)
        t0 = time.perf_counter()
        for lo, hi in ((64, CROP - 64), (112, 144)):
            mask = np.ones((batch, CROP, CROP, 1), np.float32)
            mask[:, lo:hi, lo:hi] = 0
            self.run(image, mask)
        self.warmup_seconds = time.perf_counter() - t0
        self.ready = True
        return self.warmup_seconds


class _Runner:
    def run(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError


def _check_io(names_in: Sequence[str], names_out: Sequence[str], path: Path) -> None:
    if sorted(names_in) != sorted(INPUT_NAMES) or OUTPUT_NAME not in names_out:
        raise ModelError(
            f"{path.name} is not a deepcream model (inputs {list(names_in)}, outputs "
            f"{list(names_out)}; expected inputs image, mask and output 'output')"
        )


class _OrtRunner(_Runner):
    def __init__(self, owner: ModelSession) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1 if owner.parallel == "crops" else owner.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.enable_cpu_mem_arena = owner._mem_arena
        opts.enable_mem_pattern = owner._mem_pattern
        opts.log_severity_level = 3
        # Don't spin idle worker threads between requests: on a shared 2-core box spinning
        # steals the CPU from the Python side of the pipeline.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if owner._shared_arena:
            # One CPU arena for every session of the process (bar and mosaic): activations
            # of one model reuse the other's freed blocks instead of growing a second arena.
            _register_shared_arena(ort)
            opts.add_session_config_entry("session.use_env_allocators", "1")
        model_path = owner.path
        if owner.precision == "int8":
            model_path = _int8_model(owner.path)
        providers = ["CPUExecutionProvider"]
        if owner.gpu:
            # Nodes the GPU provider cannot run fall back to the CPU within the same graph.
            providers.insert(0, GPU_PROVIDERS[owner.backend][0])
        cached = None if owner.gpu or not owner._graph_cache else _optimized_graph_path(
            model_path, ort.__version__)
        self.from_cache = False
        try:
            if cached is not None and cached.is_file():
                try:
                    self._sess = self._from_optimized(ort, opts, cached, providers)
                    self.from_cache = True
                    with contextlib.suppress(OSError):
                        os.utime(cached)  # most recently used: pruned last
                except Exception:  # a damaged cache entry: rebuild it from the model
                    log.debug("optimized graph %s unusable; rebuilding it", cached)
                    cached.unlink(missing_ok=True)
            if not self.from_cache:
                self._sess = self._optimize(ort, opts, model_path, providers, cached)
        except Exception as exc:  # onnxruntime raises its own untyped errors on bad files
            raise ModelError(f"cannot load {owner.path.name} with onnxruntime: {exc}") from exc
        _check_io([i.name for i in self._sess.get_inputs()],
                  [o.name for o in self._sess.get_outputs()], owner.path)

    @staticmethod
    def _from_optimized(ort: Any, opts: Any, cached: Path, providers: list[str]) -> Any:
        """A session over a graph onnxruntime already optimized on this CPU: nothing is
        left to optimize, so loading skips the ~50 ms of graph passes (a one-image CLI run
        waits for them)."""
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            return ort.InferenceSession(str(cached), sess_options=opts, providers=providers)
        finally:
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL

    @staticmethod
    def _optimize(ort: Any, opts: Any, model_path: Path, providers: list[str],
                  cached: Path | None) -> Any:
        """A session over ``model_path`` with every optimization; onnxruntime also saves the
        optimized graph to ``cached`` (atomically), when given and writable."""
        if cached is None:
            return ort.InferenceSession(str(model_path), sess_options=opts, providers=providers)
        from deepcream.fsutil import atomic_path

        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(cached) as tmp:
                opts.optimized_model_filepath = str(tmp)
                opts.add_session_config_entry("session.save_model_format", "ONNX")
                sess = ort.InferenceSession(str(model_path), sess_options=opts,
                                            providers=providers)
            _prune_graph_cache(cached.parent)
            return sess
        except OSError as exc:  # no writable cache: run without one
            log.debug("cannot cache the optimized graph in %s: %s", cached.parent, exc)
            opts.optimized_model_filepath = ""
            return ort.InferenceSession(str(model_path), sess_options=opts, providers=providers)

    def run(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        # InferenceSession.run is thread-safe.
        return self._sess.run([OUTPUT_NAME], {"image": image, "mask": mask})[0]


_SHARED_ARENA_LOCK = threading.Lock()
_SHARED_ARENA = False


def _register_shared_arena(ort: Any) -> None:
    global _SHARED_ARENA
    with _SHARED_ARENA_LOCK:
        if _SHARED_ARENA:
            return
        info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0,
                                 ort.OrtMemType.DEFAULT)
        # kSameAsRequested: no power-of-two rounding of new chunks, so the arena holds what
        # the models need and not up to twice that.
        cfg = ort.OrtArenaCfg({"arena_extend_strategy": 1})
        ort.create_and_register_allocator(info, cfg)
        _SHARED_ARENA = True


def _import_openvino() -> Any:
    """``import openvino`` without its model converter. The package imports
    ``openvino.tools.ovc`` (with its telemetry) for ``openvino.convert_model``; deepcream never
    converts with it, and it costs a one-image run ~0.09 s of the ~0.13 s import. The
    package's own ``__init__`` goes on without the converter when importing it fails, which
    a ``None`` entry in ``sys.modules`` makes it do; ``openvino.convert_model`` then imports
    the converter on first use, so the package looks the same to any other user."""
    import sys

    if "openvino" in sys.modules:
        return sys.modules["openvino"]
    blocked = "openvino.tools.ovc" not in sys.modules
    if blocked:
        sys.modules["openvino.tools.ovc"] = None  # type: ignore[assignment]
    try:
        import openvino
    finally:
        if blocked and sys.modules.get("openvino.tools.ovc", False) is None:
            del sys.modules["openvino.tools.ovc"]
    if not hasattr(openvino, "convert_model"):
        openvino.__getattr__ = _openvino_lazy_attribute  # module __getattr__ (PEP 562)
    return openvino


def _openvino_lazy_attribute(name: str) -> Any:
    if name == "convert_model":
        from openvino.tools.ovc import convert_model

        return convert_model
    raise AttributeError(f"module 'openvino' has no attribute {name!r}")


class _OpenVinoRunner(_Runner):
    def __init__(self, owner: ModelSession) -> None:
        ov = _import_openvino()
        core = ov.Core()
        if owner.precision == "int8":
            raise ModelError("precision int8 is implemented on the onnxruntime backend")
        config: dict[str, Any] = {
            # OpenVINO picks bf16 on AMX CPUs by default; fp32 must be asked for to be exact.
            "INFERENCE_PRECISION_HINT": "bf16" if owner.precision == "bf16" else "f32",
            "INFERENCE_NUM_THREADS": owner.threads,
            # One stream per concurrent crop in "crops" mode (each stream single-threaded).
            "NUM_STREAMS": owner.threads if owner.parallel == "crops" else 1,
        }
        # The graph cache keeps the model as OpenVINO reads it (IR, batch fixed) and
        # OpenVINO's compiled blob of it: a one-image run waits for the load.
        cache = _openvino_cache_dir() if owner._graph_cache else None
        static = owner.batch_size == 1
        try:
            ir = _openvino_ir_path(owner.path, cache, ov.__version__, static)
            self._compiled = None
            if ir is not None and ir.is_file():
                # Compiled from its path, a cached model is neither read nor hashed: OpenVINO
                # keys the compiled blob by the file's path, size and time.
                try:
                    self._compiled = self._compile(core, str(ir), config, cache)
                    with contextlib.suppress(OSError):
                        os.utime(ir.parent)  # most recently used: pruned last
                except Exception:  # a damaged cache entry: rebuild it from the model
                    log.debug("OpenVINO IR %s unusable; rebuilding it", ir.parent)
                    shutil.rmtree(ir.parent, ignore_errors=True)
            if self._compiled is None:
                model = self._read(core, owner.path, static)
                if ir is not None and _save_openvino_ir(ov, model, ir):
                    self._compiled = self._compile(core, str(ir), config, cache)
                else:
                    self._compiled = self._compile(core, model, config, cache)
            _check_io([p.get_any_name() for p in self._compiled.inputs],
                      [n for p in self._compiled.outputs for n in p.get_names()], owner.path)
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError(f"cannot load {owner.path.name} with OpenVINO: {exc}") from exc
        if cache is not None:
            _prune_graph_cache(cache, pattern="*.blob")
            _prune_graph_cache(cache, pattern="*-ir")
        self._lock = threading.Lock()
        # Infer requests not in use; one per concurrent caller. The first is made here and
        # its tensors' ``data`` read once: OpenVINO's Python binding initializes a static
        # there on first use while holding the GIL, and two crop threads reaching it at once
        # deadlocked (2 of 12 fresh processes, OpenVINO 2026.4).
        first = self._compiled.create_infer_request()
        for port in (*self._compiled.inputs, *self._compiled.outputs):
            _ = first.get_tensor(port).data
        self._idle: list[Any] = [first]

    @staticmethod
    def _read(core: Any, path: Path, static: bool) -> Any:
        model = core.read_model(str(path))
        _check_io([p.get_any_name() for p in model.inputs],
                  [n for p in model.outputs for n in p.get_names()], path)
        if static:
            # Every call is one crop: a static batch lets OpenVINO plan memory once instead
            # of keeping buffers for dynamic shapes.
            model.reshape({"image": [1, CROP, CROP, 3], "mask": [1, CROP, CROP, 1]})
        return model

    @staticmethod
    def _compile(core: Any, model: Any, config: dict[str, Any], cache: Path | None) -> Any:
        """``model`` (a Model or an IR path) compiled for the CPU, through OpenVINO's cache of
        compiled models when there is one (compiling takes ~0.3 s, loading the blob ~0.1 s)."""
        if cache is None:
            return core.compile_model(model, "CPU", config)
        try:
            return core.compile_model(model, "CPU", {**config, "CACHE_DIR": str(cache)})
        except Exception:
            # (a damaged or unreadable cache entry: compile without the cache)
            log.debug("OpenVINO's model cache in %s failed; compiling without it", cache)
            return core.compile_model(model, "CPU", config)

    def run(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with self._lock:
            request = self._idle.pop() if self._idle else self._compiled.create_infer_request()
        try:
            result = request.infer({"image": image, "mask": mask})
            out = np.array(result[self._compiled.output(OUTPUT_NAME)], copy=True)
        finally:
            with self._lock:
                self._idle.append(request)
        return out


def _cpu_signature() -> str | None:
    """The CPU's model name and feature flags (Linux), or None where they cannot be read.
    onnxruntime's fully optimized graph is specific to the CPU's vector width (NCHWc
    blocking), so it is cached per CPU signature and never used where it is unknown."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return None
    fields = {}
    for line in text.splitlines():
        if not line.strip():
            break  # the first processor is enough: all cores of a machine are alike here
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    if "flags" not in fields:
        return None
    return f"{fields.get('model name', '')}|{fields['flags']}"


#: Optimized graphs kept (newest used first); each is the size of its model (~15 MB).
GRAPH_CACHE_ENTRIES = 6


def graph_cache_dir() -> Path | None:
    """``$DEEPCREAM_GRAPH_CACHE`` ("off" disables the cache), else
    ``$XDG_CACHE_HOME/deepcream/optimized`` (``~/.cache/deepcream/optimized``)."""
    setting = os.environ.get("DEEPCREAM_GRAPH_CACHE", "")
    if setting.lower() in ("off", "0", "no", "false"):
        return None
    if setting:
        return Path(setting)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "deepcream" / "optimized"


def _optimized_graph_path(model: Path, ort_version: str) -> Path | None:
    """Where onnxruntime's optimized graph of ``model`` for this CPU and this onnxruntime
    version is cached, or None (no cache, or the CPU is unknown). The key names the model
    file by path, size and modification time."""
    cache = graph_cache_dir()
    cpu = _cpu_signature()
    if cache is None or cpu is None:
        return None
    digest = _model_key(model, ort_version, cpu)
    return None if digest is None else cache / f"{model.stem}-{digest}.onnx"


def _model_key(model: Path, *settings: object) -> str | None:
    """A short digest naming ``model`` by path, size and modification time, and ``settings``
    (a replaced model gets a new key); None when the file cannot be read."""
    import hashlib

    try:
        st = model.stat()
    except OSError:
        return None
    key = "|".join(str(v) for v in (model.resolve(), st.st_size, st.st_mtime_ns, *settings))
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def _openvino_cache_dir() -> Path | None:
    """``graph_cache_dir()/openvino`` (created), where OpenVINO keeps its compiled models,
    or None (no cache, or the folder cannot be made)."""
    cache = graph_cache_dir()
    if cache is None:
        return None
    try:
        (cache / "openvino").mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return cache / "openvino"


def _openvino_ir_path(model: Path, cache: Path | None, version: str, static: bool
                      ) -> Path | None:
    """Where the model, as OpenVINO reads it (its own IR, batch fixed to 1 when ``static``),
    is kept in ``cache``; None without a cache. The key names the ONNX file by path, size and
    modification time, like ``_optimized_graph_path``."""
    digest = None if cache is None else _model_key(model, version, static)
    return None if digest is None else cache / f"{model.stem}-{digest}-ir" / "model.xml"


def _save_openvino_ir(ov: Any, model: Any, target: Path) -> bool:
    """Save ``model`` as OpenVINO IR at ``target`` (an .xml and its .bin) all at once: both
    are written in a temp folder that is renamed into place, so a reader never sees half
    of it. Weights stay fp32 (not the fp16 ``save_model`` makes by default). False when the
    cache cannot be written."""
    import tempfile

    folder = target.parent
    for stale in folder.parent.glob(f".{folder.name}~*"):
        # (left by a process killed while saving; a live save takes well under a minute)
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > 600:
                shutil.rmtree(stale, ignore_errors=True)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}~", dir=folder.parent))
    except OSError as exc:
        log.debug("cannot keep OpenVINO's IR in %s: %s", folder.parent, exc)
        return False
    try:
        ov.save_model(model, str(tmp / target.name), compress_to_fp16=False)
        os.rename(tmp, folder)
    except Exception as exc:  # another process saved it first; a full disk (RuntimeError)
        log.debug("cannot keep OpenVINO's IR at %s: %s", folder, exc)
        shutil.rmtree(tmp, ignore_errors=True)
    return target.is_file()


def _prune_graph_cache(folder: Path, keep: int = GRAPH_CACHE_ENTRIES, pattern: str = "*.onnx"
                       ) -> None:
    """Remove all but the ``keep`` most recently used entries (a replaced or moved model
    leaves its old entry behind)."""
    try:
        entries = sorted(folder.glob(pattern), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[keep:]:
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)
    except OSError:
        pass


def _int8_model(path: Path) -> Path:
    """Dynamic int8 quantization of the weights (onnxruntime.quantization), cached beside the
    model as ``<name>.int8.onnx`` (or in the user cache if the folder is read-only)."""
    target = path.with_name(path.stem + ".int8.onnx")
    if target.is_file() and target.stat().st_mtime >= path.stat().st_mtime:
        return target
    if not os.access(path.parent, os.W_OK):
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "deepcream" / "int8"
        cache.mkdir(parents=True, exist_ok=True)
        target = cache / target.name
        if target.is_file() and target.stat().st_mtime >= path.stat().st_mtime:
            return target
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from deepcream.fsutil import atomic_path

    with atomic_path(target) as tmp:
        quantize_dynamic(str(path), str(tmp), weight_type=QuantType.QInt8)
    return target
