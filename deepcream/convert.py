"""Convert DCPv2 TensorFlow checkpoints into ``bar.onnx`` / ``mosaic.onnx`` + ``manifest.json``.

Reads only the 40 generator tensors with the pure-Python reader (no TensorFlow needed), checks
them against ``graph.GENERATOR_SHAPES``, builds the ONNX graph and writes every output
atomically: all models are built (and optionally verified) before any file is published, so a
failure leaves the models folder as it was.

``verify`` runs the checkpoint's own training graph (``PREFIX.meta``) in TensorFlow, in a
subprocess, on random crops with rectangular holes and compares it with the ONNX model.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepcream import __version__
from deepcream.checkpoint import checkpoint_step, list_variables, read_checkpoint, resolve_prefix
from deepcream.errors import DeepcreamError, ModelError
from deepcream.fsutil import atomic_path
from deepcream.models import MANIFEST, read_manifest
from deepcream.options import MODES

log = logging.getLogger(__name__)

#: Training steps of the released checkpoints, used to tell the modes apart.
RELEASE_STEPS = {775000: "bar", 290000: "mosaic"}
CONVERTER_VERSION = __version__
VERIFY_TOLERANCE = 1e-4
VERIFY_BATCH = 8  # the saved training graph has a fixed batch of 8
TF_INSTALL_HINT = "pip install 'deepcream[tf]'"

Reporter = Callable[[str], None]


@dataclass(frozen=True)
class Source:
    """One checkpoint to convert."""

    mode: str
    prefix: Path


# --- locating checkpoints -------------------------------------------------------------------


def _release_root(src: Path) -> Path | None:
    """The folder holding ``bar/``/``mosaic/``: ``src`` itself or its single subfolder (zips
    usually unpack to ``09-11-2019 DCPv2 model/bar/...``)."""
    if not src.is_dir():
        return None
    if any((src / k).is_dir() for k in MODES):
        return src
    subdirs = [p for p in src.iterdir()
               if p.is_dir() and not p.name.startswith((".", "__MACOSX"))]
    if len(subdirs) == 1 and any((subdirs[0] / k).is_dir() for k in MODES):
        return subdirs[0]
    return None


def guess_mode(prefix: Path) -> str | None:
    """``bar``/``mosaic`` from the checkpoint's folder name or the release's training step."""
    folder = prefix.parent.name.lower()
    if folder in MODES:
        return folder
    step = checkpoint_step(prefix)
    return RELEASE_STEPS.get(step) if step is not None else None


def find_sources(src: str | os.PathLike[str], mode: str | None = None) -> list[Source]:
    """The checkpoints to convert: both modes of a release folder (or just ``mode``), or the
    one checkpoint folder/prefix ``src``, whose mode is ``mode`` or guessed."""
    src = Path(src)
    if mode is not None and mode not in MODES:
        raise DeepcreamError(f"unknown model mode {mode!r}: use bar or mosaic")
    root = _release_root(src)
    if root is not None:
        modes = [mode] if mode else [k for k in MODES if (root / k).is_dir()]
        missing = [k for k in modes if not (root / k).is_dir()]
        if missing:
            raise ModelError(f"{root} has no {missing[0]}/ checkpoint folder")
        return [Source(k, resolve_prefix(root / k)) for k in modes]
    prefix = resolve_prefix(src)
    found = mode or guess_mode(prefix)
    if found is None:
        raise DeepcreamError(f"cannot tell whether {prefix} is the bar or the mosaic model: "
                             "pass --mode bar or --mode mosaic")
    return [Source(found, prefix)]


# --- conversion -----------------------------------------------------------------------------


def check_generator_variables(prefix: Path) -> None:
    """Fail with the variable, expected and found shape unless every generator tensor is
    there as float32 with the DCPv2 shape."""
    from deepcream.graph import GENERATOR_SHAPES

    variables = list_variables(prefix)
    missing = [n for n in GENERATOR_SHAPES if n not in variables]
    if missing:
        name = missing[0]
        more = f" (and {len(missing) - 1} more generator variables)" if len(missing) > 1 else ""
        raise ModelError(f"{prefix} is not a DCPv2 generator checkpoint: variable {name} "
                         f"(expected shape {list(GENERATOR_SHAPES[name])}) is missing{more}")
    for name, expected in GENERATOR_SHAPES.items():
        dtype, shape = variables[name]
        if tuple(shape) != tuple(expected):
            raise ModelError(f"{prefix}: variable {name} has shape {list(shape)}, expected "
                             f"{list(expected)} (not a DCPv2 generator checkpoint)")
        if dtype != np.float32:
            raise ModelError(f"{prefix}: variable {name} has dtype {dtype}, expected float32")


def convert_checkpoint(src: str | os.PathLike[str], *, attention: str | None = None):
    """Build the ONNX model (``onnx.ModelProto``) of one checkpoint folder or prefix (both
    modes share the graph). ``attention`` picks the graph's attention variant
    (``graph.build_model``'s default if None).
    """
    from deepcream.graph import GENERATOR_SHAPES, build_model

    prefix = resolve_prefix(src)
    check_generator_variables(prefix)
    weights = read_checkpoint(prefix, names=GENERATOR_SHAPES).tensors
    kwargs = {} if attention is None else {"attention": attention}
    return build_model(weights, **kwargs)


def _model_attention(model) -> str | None:
    for prop in model.metadata_props:
        if prop.key == "attention":
            return prop.value
    return None


def convert(src: str | os.PathLike[str], out_dir: str | os.PathLike[str], mode: str | None = None,
            force: bool = False, *, attention: str | None = None, verify: bool = False,
            tolerance: float = VERIFY_TOLERANCE, source_label: str | None = None,
            report: Reporter | None = None) -> list[Path]:
    """Convert a release folder (both modes, or ``mode``) or one checkpoint into ``out_dir``.

    Writes ``<mode>.onnx`` for each and updates ``manifest.json``; returns the model paths.
    Existing models are kept unless ``force``. With ``verify`` each model is compared with the
    checkpoint's TensorFlow graph before it is published (needs TensorFlow).
    ``source_label`` replaces the checkpoint path recorded as the manifest's ``source``.
    """
    say = report or log.info
    if verify:
        require_tensorflow()
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DeepcreamError(f"output {out_dir} exists and is not a folder")
    sources = find_sources(src, mode)
    targets = {s.mode: out_dir / f"{s.mode}.onnx" for s in sources}
    if not force:
        for target in targets.values():
            if target.exists():
                raise DeepcreamError(f"{target} already exists: pass --force to replace it")

    built: list[tuple[Source, bytes, str | None]] = []
    for source in sources:
        start = time.perf_counter()
        model = convert_checkpoint(source.prefix, attention=attention)
        data = model.SerializeToString()
        built.append((source, data, _model_attention(model)))
        origin = f"{source_label} ({source.mode}/{source.prefix.name})" if source_label \
            else source.prefix
        say(f"converted {source.mode} from {origin} (step "
            f"{checkpoint_step(source.prefix)}) in {time.perf_counter() - start:.1f} s")

    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        return _publish(built, out_dir, targets, force, verify, tolerance, source_label, say)
    except BaseException:
        if created:  # leave no trace of a failed first conversion
            with contextlib.suppress(OSError):
                out_dir.rmdir()
        raise


def _publish(built: list[tuple[Source, bytes, str | None]], out_dir: Path,
             targets: dict[str, Path], force: bool, verify: bool, tolerance: float,
             source_label: str | None, say: Reporter) -> list[Path]:
    manifest = read_manifest(out_dir)
    models = {k: v for k, v in manifest["models"].items()
              if k in MODES and (out_dir / f"{k}.onnx").exists()}
    try:
        with contextlib.ExitStack() as stack:
            # Every file goes to a temp path first; all are renamed only when all are ready.
            for source, data, attn in built:
                tmp = stack.enter_context(atomic_path(targets[source.mode], overwrite=force))
                tmp.write_bytes(data)
                if verify:
                    diff = verify_model(source.prefix, tmp, source.mode, report=say)
                    if not diff <= tolerance:
                        raise ModelError(f"verification failed for {source.mode}: max abs "
                                         f"difference {diff:.3g} > tolerance {tolerance:g}")
                models[source.mode] = {
                    "file": targets[source.mode].name,
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "source_step": checkpoint_step(source.prefix),
                    "source": source_label or str(source.prefix.resolve()),
                    "attention": attn,
                }
            text = json.dumps({"converter_version": CONVERTER_VERSION,
                               "models": dict(sorted(models.items()))}, indent=2) + "\n"
            tmp = stack.enter_context(atomic_path(out_dir / MANIFEST))
            tmp.write_text(text)
    except FileExistsError as exc:
        raise DeepcreamError(f"{exc}: pass --force to replace it") from None
    return [targets[s.mode] for s, _, _ in built]


# --- verification against TensorFlow ----------------------------------------------------------


def tensorflow_available() -> bool:
    try:
        return importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):  # a broken or deliberately blocked install
        return False


def require_tensorflow() -> None:
    if not tensorflow_available():
        raise DeepcreamError("--verify runs the original TensorFlow graph, and TensorFlow is not "
                             f"installed: {TF_INSTALL_HINT} (or convert without --verify)")


def verify_inputs(mode: str, seed: int = 0, batch: int = VERIFY_BATCH) -> tuple[np.ndarray, np.ndarray]:
    """Smooth random crops in [-1, 1] and 3-channel masks (1 keep, 0 hole) with 1-3 random
    rectangular holes each; bar mode: hole pixels of the crop set to -1, as DCP feeds them."""
    from scipy.ndimage import zoom

    rng = np.random.default_rng(seed)
    coarse = rng.uniform(-1.0, 1.0, (batch, 16, 16, 3))
    x = np.clip(zoom(coarse, (1, 16, 16, 1), order=1), -1.0, 1.0).astype(np.float32)
    m = np.ones((batch, 256, 256, 3), np.float32)
    for i in range(batch):
        for _ in range(rng.integers(1, 4)):
            h, w = rng.integers(8, 120, 2)
            y0, x0 = rng.integers(0, 256 - h), rng.integers(0, 256 - w)
            m[i, y0:y0 + h, x0:x0 + w] = 0.0
    if mode == "bar":
        x = np.where(m == 0.0, np.float32(-1.0), x)
    return x, m


# Runs in a separate interpreter so TensorFlow never loads into the converter's process.
_TF_SCRIPT = r"""
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import tensorflow as tf
tf1 = tf.compat.v1
tf1.disable_eager_execution()
meta, prefix, inputs, output = sys.argv[1:5]
data = np.load(inputs)
graph = tf1.Graph()
with graph.as_default():
    saver = tf1.train.import_meta_graph(meta, clear_devices=True)
    with tf1.Session(graph=graph) as sess:
        saver.restore(sess, prefix)
        out = sess.run("add:0", {"Placeholder:0": data["x"], "Placeholder_1:0": data["x"],
                                 "Placeholder_2:0": data["m"]})
np.save(output, out)
"""


def tf_reference(prefix: Path, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``add:0`` of the checkpoint's own training graph for inputs x (= y) and mask m."""
    meta = Path(f"{prefix}.meta")
    if not meta.is_file():
        raise ModelError(f"verification needs the training graph {meta}, which is missing")
    with tempfile.TemporaryDirectory(prefix="deepcream-verify-") as tmp:
        inputs, output = Path(tmp) / "inputs.npz", Path(tmp) / "output.npy"
        np.savez(inputs, x=x, m=m)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
        proc = subprocess.run([sys.executable, "-c", _TF_SCRIPT, str(meta), str(prefix),
                               str(inputs), str(output)], env=env, capture_output=True, text=True)
        if proc.returncode != 0 or not output.exists():
            lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
            last = lines[-1] if lines else f"exit code {proc.returncode}"
            raise ModelError(f"TensorFlow could not run {meta}: {last}")
        return np.load(output)


def verify_model(prefix: Path, onnx_path: Path, mode: str, *, seed: int = 0,
                 report: Reporter | None = None) -> float:
    """Max abs difference between the ONNX model and the checkpoint's TF graph."""
    import onnxruntime as ort

    say = report or log.info
    x, m = verify_inputs(mode, seed)
    start = time.perf_counter()
    expected = tf_reference(prefix, x, m)
    tf_s = time.perf_counter() - start
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    got = session.run(["output"], {"image": x, "mask": np.ascontiguousarray(m[..., :1])})[0]
    diff = float(np.max(np.abs(got - expected)))
    holes = m[..., 0] == 0
    hole_diff = float(np.max(np.abs(got - expected)[holes])) if holes.any() else 0.0
    say(f"verified {mode}: {len(x)} random crops with rectangular holes, TensorFlow "
        f"({tf_s:.1f} s) vs ONNX: max abs difference {diff:.2e} (in holes {hole_diff:.2e})")
    return diff
