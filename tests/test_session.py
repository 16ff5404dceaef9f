"""ModelSession: backends agree with onnxruntime, warm-up, concurrency, clear load errors."""

from __future__ import annotations

import concurrent.futures as cf
import os
from pathlib import Path

import numpy as np
import pytest

from deepcream.errors import ModelError
from deepcream.session import ModelSession, available_backends, resolve_backend

needs_openvino = pytest.mark.skipif("openvino" not in available_backends(),
                                    reason="OpenVINO not installed")


@pytest.fixture(scope="module")
def bar_model(converted_models: Path) -> Path:
    return converted_models / "bar.onnx"


@pytest.fixture(scope="module")
def fixture_batch(dcpv2_release: Path) -> tuple[np.ndarray, np.ndarray]:
    """Three reference crops with different hole shapes (rectangle, border, corner)."""
    ref = np.load(dcpv2_release / "bar" / "reference.npz")
    return ref["x"][:3].astype(np.float32), ref["m"][:3, ..., :1].astype(np.float32)


@pytest.fixture(scope="module")
def ort_session(bar_model: Path) -> ModelSession:
    return ModelSession(bar_model, backend="onnxruntime", threads=2)


@pytest.fixture(scope="module")
def ort_output(ort_session: ModelSession, fixture_batch) -> np.ndarray:
    return ort_session.run(*fixture_batch)


def _psnr_in_holes(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    holes = mask[..., 0] == 0
    mse = float(np.mean(((a[holes] - b[holes]) * 127.5) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def test_onnxruntime_matches_tensorflow_reference(ort_output, dcpv2_release: Path) -> None:
    ref = np.load(dcpv2_release / "bar" / "reference.npz")["out"][:3]
    assert ort_output.shape == (3, 256, 256, 3) and ort_output.dtype == np.float32
    assert np.abs(ort_output - ref).max() <= 1e-4


@needs_openvino
def test_openvino_fp32_parity_with_onnxruntime(bar_model: Path, fixture_batch, ort_output) -> None:
    sess = ModelSession(bar_model, backend="openvino", threads=2)
    assert sess.backend == "openvino" and sess.precision == "fp32"
    out = sess.run(*fixture_batch)
    assert np.abs(out - ort_output).max() <= 1e-4


@needs_openvino
def test_bf16_fast_mode_is_close_but_opt_in(bar_model: Path, fixture_batch, ort_output) -> None:
    sess = ModelSession(bar_model, precision="bf16")
    assert sess.backend == "openvino"
    out = sess.run(*fixture_batch)
    # Reduced precision: close to fp32 inside the holes, never silently exact-labelled.
    assert _psnr_in_holes(out, ort_output, fixture_batch[1]) >= 40.0
    assert ModelSession(bar_model).precision == "fp32"


def test_batch_equals_single_runs(ort_session: ModelSession, fixture_batch, ort_output) -> None:
    x, m = fixture_batch
    singles = np.concatenate([ort_session.run(x[i:i + 1], m[i:i + 1]) for i in range(len(x))])
    assert np.abs(singles - ort_output).max() <= 1e-5


def test_parallel_modes_agree(bar_model: Path, fixture_batch, ort_output) -> None:
    # "crops" (default) runs crops concurrently on single-threaded kernels; "ops" runs them
    # one by one on multi-threaded kernels: same numbers either way.
    ops = ModelSession(bar_model, backend="onnxruntime", threads=2, parallel="ops")
    assert ops.parallel == "ops"
    assert np.abs(ops.run(*fixture_batch) - ort_output).max() <= 1e-5
    with pytest.raises(ModelError, match="parallel must be"):
        ModelSession(bar_model, parallel="gpu")


def test_concurrent_runs_are_safe(ort_session: ModelSession, fixture_batch, ort_output) -> None:
    x, m = fixture_batch
    with cf.ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(lambda i: ort_session.run(x[i % 3:i % 3 + 1], m[i % 3:i % 3 + 1]),
                             range(6)))
    for i, out in enumerate(outs):
        assert np.abs(out[0] - ort_output[i % 3]).max() <= 1e-5


def test_warmup_marks_ready_and_changes_nothing(bar_model: Path, fixture_batch, ort_output) -> None:
    sess = ModelSession(bar_model, backend="onnxruntime", threads=1)
    assert not sess.ready
    seconds = sess.warmup()
    assert sess.ready and seconds > 0 and sess.warmup_seconds == seconds
    assert np.abs(sess.run(*fixture_batch) - ort_output).max() <= 1e-5


def test_optimized_graph_cache_loads_faster_and_changes_nothing(
        bar_model: Path, fixture_batch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """onnxruntime's optimized graph is kept per CPU: the second load uses it, the outputs
    are bit-identical to an uncached session's, and a damaged entry is rebuilt."""
    monkeypatch.setenv("DEEPCREAM_GRAPH_CACHE", str(tmp_path / "graphs"))
    plain = ModelSession(bar_model, graph_cache=False).run(*fixture_batch)
    first = ModelSession(bar_model)
    entries = list((tmp_path / "graphs").glob("*.onnx"))
    assert not first._runner.from_cache and len(entries) == 1
    second = ModelSession(bar_model)
    assert second._runner.from_cache
    assert np.array_equal(first.run(*fixture_batch), plain)
    assert np.array_equal(second.run(*fixture_batch), plain)
    entries[0].write_bytes(b"not a model")
    rebuilt = ModelSession(bar_model)
    assert not rebuilt._runner.from_cache and entries[0].stat().st_size > 1000
    assert np.array_equal(rebuilt.run(*fixture_batch), plain)
    monkeypatch.setenv("DEEPCREAM_GRAPH_CACHE", "off")
    assert not ModelSession(bar_model)._runner.from_cache


@needs_openvino
def test_openvino_model_cache_is_used_and_changes_nothing(
        bar_model: Path, fixture_batch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenVINO keeps the model as it reads it (IR) and its compiled model in the graph
    cache's ``openvino`` folder; a cached or a damaged entry gives the uncached outputs, and
    ``graph_cache=False`` writes none."""
    monkeypatch.setenv("DEEPCREAM_GRAPH_CACHE", str(tmp_path / "graphs"))
    cache = tmp_path / "graphs" / "openvino"
    plain = ModelSession(bar_model, backend="openvino", graph_cache=False).run(*fixture_batch)
    assert not cache.exists()
    first = ModelSession(bar_model, backend="openvino").run(*fixture_batch)
    blobs = list(cache.glob("*.blob"))
    irs = list(cache.glob("*-ir/model.xml"))
    assert len(blobs) == 1 and blobs[0].stat().st_size > 1000
    assert len(irs) == 1 and irs[0].with_suffix(".bin").stat().st_size > 1000
    assert sorted(p.name for p in cache.iterdir()) == sorted([blobs[0].name, irs[0].parent.name])
    assert np.array_equal(first, plain)
    assert np.array_equal(ModelSession(bar_model, backend="openvino").run(*fixture_batch), plain)
    assert list(cache.glob("*.blob")) == blobs  # the IR's blob was found, not made again
    blobs[0].chmod(0o600)
    blobs[0].write_bytes(b"not a compiled model")
    assert np.array_equal(ModelSession(bar_model, backend="openvino").run(*fixture_batch), plain)
    for ir in (irs[0], irs[0].with_suffix(".bin")):
        ir.write_bytes(b"<damaged")
        for blob in cache.glob("*.blob"):  # (else a damaged .bin is never read)
            blob.chmod(0o600)
            blob.unlink()
        assert np.array_equal(ModelSession(bar_model, backend="openvino").run(*fixture_batch),
                              plain)
        assert irs[0].with_suffix(".bin").stat().st_size > 1000  # rebuilt from the model
    # (a dynamic batch: the session reads its first request's tensors before they have a shape)
    batched = ModelSession(bar_model, backend="openvino", batch_size=3, graph_cache=False)
    assert np.abs(batched.run(*fixture_batch) - plain).max() <= 1e-4


@needs_openvino
def test_openvino_first_calls_from_two_threads_do_not_deadlock(bar_model: Path) -> None:
    """Two crop threads making a fresh process's first OpenVINO calls at once deadlocked in
    its Python binding (bf16: 1-2 of 12 processes before the session read its tensors once;
    a hang fails by the timeout)."""
    import subprocess
    import sys

    code = f"""
import sys, threading, numpy as np
from deepcream.session import ModelSession
s = ModelSession({str(bar_model)!r}, precision="bf16", threads=2, graph_cache=False)
img, mask = np.zeros((1, 256, 256, 3), np.float32), np.ones((1, 256, 256, 1), np.float32)
sys.setswitchinterval(1e-6)  # (threads switch often: the hang came in 6 of 10 processes)
barrier = threading.Barrier(2)
def go():
    barrier.wait()
    s.run(img, mask)
threads = [threading.Thread(target=go) for _ in range(2)]
[t.start() for t in threads]
[t.join() for t in threads]
"""
    for _ in range(6):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=30)
        assert proc.returncode == 0, proc.stderr[-2000:]


@needs_openvino
def test_openvino_loads_when_its_ir_cannot_be_saved(
        bar_model: Path, fixture_batch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache that cannot take the IR (OpenVINO raises its own RuntimeError, e.g. on a full
    disk) costs only the cache: the model loads, runs, and leaves no partial IR behind."""
    import openvino

    monkeypatch.setenv("DEEPCREAM_GRAPH_CACHE", str(tmp_path / "graphs"))
    plain = ModelSession(bar_model, backend="openvino", graph_cache=False).run(*fixture_batch)

    def full_disk(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("No space left on device")

    monkeypatch.setattr(openvino, "save_model", full_disk)
    assert np.array_equal(ModelSession(bar_model, backend="openvino").run(*fixture_batch), plain)
    assert not [p for p in (tmp_path / "graphs" / "openvino").iterdir() if p.is_dir()]


@needs_openvino
def test_a_bf16_session_loads_neither_onnxruntime_nor_openvinos_converter(bar_model: Path) -> None:
    """A one-image bf16 run imports only what it uses: not onnxruntime (OpenVINO is the
    choice whatever its providers) and not OpenVINO's model converter (~0.1 s together);
    ``openvino.convert_model`` still works for anyone else in the process."""
    import subprocess
    import sys

    code = f"""
import sys
from deepcream.session import ModelSession
s = ModelSession({str(bar_model)!r}, precision="bf16", graph_cache=False)
assert s.backend == "openvino"
assert "onnxruntime" not in sys.modules and "openvino.tools.ovc" not in sys.modules
import openvino
assert callable(openvino.convert_model) and "openvino.tools.ovc" in sys.modules
try:
    openvino.no_such_name
except AttributeError as exc:
    assert "no_such_name" in str(exc)
else:
    raise AssertionError("no AttributeError")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_graph_cache_keeps_the_newest_entries(tmp_path: Path) -> None:
    from deepcream.session import GRAPH_CACHE_ENTRIES, _prune_graph_cache

    for k in range(GRAPH_CACHE_ENTRIES + 3):
        entry = tmp_path / f"m{k}.onnx"
        entry.write_bytes(b"x")
        os.utime(entry, (1000 + k, 1000 + k))
    _prune_graph_cache(tmp_path)
    left = sorted(p.name for p in tmp_path.glob("*.onnx"))
    assert left == sorted(f"m{k}.onnx" for k in range(3, GRAPH_CACHE_ENTRIES + 3))
    # OpenVINO's IR entries are folders (an .xml and its .bin), pruned whole
    for k in range(GRAPH_CACHE_ENTRIES + 2):
        entry = tmp_path / f"m{k}-ir"
        entry.mkdir()
        (entry / "model.xml").write_bytes(b"x")
        os.utime(entry, (1000 + k, 1000 + k))
    _prune_graph_cache(tmp_path, pattern="*-ir")
    left = sorted(p.name for p in tmp_path.glob("*-ir"))
    assert left == sorted(f"m{k}-ir" for k in range(2, GRAPH_CACHE_ENTRIES + 2))
    assert len(list(tmp_path.glob("*.onnx"))) == GRAPH_CACHE_ENTRIES


def test_empty_batch(ort_session: ModelSession) -> None:
    out = ort_session.run(np.zeros((0, 256, 256, 3), np.float32), np.zeros((0, 256, 256, 1), np.float32))
    assert out.shape == (0, 256, 256, 3)


def test_bad_shapes_are_rejected(ort_session: ModelSession) -> None:
    with pytest.raises(ValueError, match="image must be"):
        ort_session.run(np.zeros((1, 128, 128, 3), np.float32), np.ones((1, 128, 128, 1), np.float32))
    with pytest.raises(ValueError, match="mask must be"):
        ort_session.run(np.zeros((2, 256, 256, 3), np.float32), np.ones((1, 256, 256, 1), np.float32))


def test_missing_and_foreign_models_give_model_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        ModelSession(tmp_path / "nope.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not an onnx file")
    with pytest.raises(ModelError, match="cannot load"):
        ModelSession(garbage, backend="onnxruntime")
    # A valid ONNX file with other inputs is not a deepcream model.
    from onnx import TensorProto, helper, save

    graph = helper.make_graph([helper.make_node("Identity", ["a"], ["b"])], "g",
                              [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("b", TensorProto.FLOAT, [1])])
    foreign = tmp_path / "foreign.onnx"
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), foreign)
    with pytest.raises(ModelError, match="not a deepcream model"):
        ModelSession(foreign, backend="onnxruntime")


def test_backend_and_precision_choices() -> None:
    assert resolve_backend("auto") == "onnxruntime"
    with pytest.raises(ModelError, match="unknown backend"):
        resolve_backend("tpu")
    with pytest.raises(ModelError, match="unknown precision"):
        resolve_backend("auto", "fp16")
    with pytest.raises(ModelError, match="bf16 needs the openvino"):
        resolve_backend("onnxruntime", "bf16")


def test_balanced_lanes_split_costs_evenly_in_order() -> None:
    from deepcream.scheduling import balanced_lanes

    rng = np.random.default_rng(4)
    for n in (2, 3, 7, 17, 40):
        costs = list(rng.uniform(0.08, 0.15, n))
        lanes = balanced_lanes(costs, 2)
        assert sorted(i for lane in lanes for i in lane) == list(range(n))
        assert all(lane == sorted(lane) for lane in lanes)  # each lane keeps the given order
        sums = [sum(costs[i] for i in lane) for lane in lanes]
        # the exact subset-sum split is never worse than largest-first
        greedy = [0.0, 0.0]
        for c in sorted(costs, reverse=True):
            greedy[greedy.index(min(greedy))] += c
        assert abs(sums[0] - sums[1]) <= abs(greedy[0] - greedy[1]) + 2e-4
    three = balanced_lanes([3.0, 1.0, 1.0, 1.0, 2.0], 3)
    assert sorted(map(len, three)) == [1, 2, 2] and sorted(i for lane in three for i in lane) == [0, 1, 2, 3, 4]


def test_crop_cost_grows_with_the_hole() -> None:
    from deepcream.scheduling import crop_cost

    hole = np.zeros((256, 256), bool)
    costs = [crop_cost(hole)]
    for side in (8, 40, 120, 256):
        hole = np.zeros((256, 256), bool)
        hole[:side, :side] = True
        costs.append(crop_cost(hole))
    assert costs == sorted(costs) and costs[0] > 0 and costs[-1] < 3 * costs[0]


def test_run_each_with_costs_runs_every_task_once_and_reraises(bar_model: Path) -> None:
    import threading

    session = ModelSession(bar_model, threads=2)
    done, lock = [], threading.Lock()

    def task(i: int) -> None:
        with lock:
            done.append(i)

    # skewed estimates: one lane runs dry early and steals from the other
    session.run_each([lambda i=i: task(i) for i in range(9)], [1.0] + [0.01] * 8)
    assert sorted(done) == list(range(9))

    def broken() -> None:
        raise ValueError("task failed")

    with pytest.raises(ValueError, match="task failed"):
        session.run_each([broken, lambda: None, lambda: None], [0.1, 0.1, 0.1])
