"""The models the benchmark runs, built once and cached: the random-weight DCPv2-layout
checkpoints (generated with TensorFlow by ``baselines/fixture.py``), deepcream's ONNX models
converted from them, and the tf2onnx baseline's model. Compute does not depend on the weight
values, so random weights time the same as the released ones."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from deepcream.errors import DeepcreamError
from deepcream.options import MODES

from . import python_command
from .measure import have, tf_available

FIXTURE_GENERATOR = Path(__file__).parent / "baselines" / "fixture.py"


def default_cache_dir() -> Path:
    """Where generated checkpoints, models and the workload image are kept."""
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "deepcream" / "bench"


def _run_quiet(cmd: list[str], what: str, timeout: float = 1800) -> None:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(cmd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise DeepcreamError(f"{what} failed: {' / '.join(tail)}")


def fixture_checkpoints(cache: Path, say: Callable[[str], None] = print) -> Path | None:
    """The random-weight DCPv2 checkpoints (``bar/``, ``mosaic/``), generated on first use with
    TensorFlow; None if TensorFlow is not installed."""
    digest = hashlib.sha256(FIXTURE_GENERATOR.read_bytes()).hexdigest()[:12]
    root = cache / f"checkpoints-{digest}"
    if (root / "done").exists():
        return root
    if not tf_available():
        return None
    say("generating random-weight DCPv2 checkpoints with TensorFlow (once, ~20 s) ...")
    tmp = root.with_name(root.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    _run_quiet([sys.executable, str(FIXTURE_GENERATOR), str(tmp)],
               "generating the fixture checkpoints")
    (tmp / "done").write_text("ok\n")
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return root


def fixture_models(checkpoints: Path, cache: Path, say: Callable[[str], None] = print) -> Path:
    """deepcream's ONNX models converted from the fixture checkpoints (cached per converter
    source, so a changed graph builder is re-measured)."""
    from deepcream import convert, graph

    digest = hashlib.sha256(Path(graph.__file__).read_bytes()
                            + Path(convert.__file__).read_bytes()).hexdigest()[:12]
    out = cache / f"models-{checkpoints.name}-{digest}"
    if all((out / f"{k}.onnx").is_file() for k in MODES):
        return out
    say("converting the fixture checkpoints with deepcream convert ...")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    convert.convert(checkpoints, tmp, force=True, report=lambda _m: None)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def tf2onnx_model(checkpoints: Path, cache: Path, say: Callable[[str], None] = print) -> Path | None:
    """The write-up's tf2onnx model of the fixture's bar checkpoint (None without tf2onnx)."""
    target = cache / f"tf2onnx-{checkpoints.name}" / "bar.onnx"
    if target.is_file():
        return target
    if not (tf_available() and have("tf2onnx")):
        return None
    say("converting the fixture with tf2onnx (write-up baseline, once) ...")
    code = ("from deepcream_bench.baselines import tf2onnx_surgery as t, tf_original as o; "
            "t.convert_to_onnx(o.checkpoint_prefix(sys.argv[1]), sys.argv[2])")
    _run_quiet(python_command(code) + [str(checkpoints / "bar"), str(target)], "tf2onnx conversion")
    return target
