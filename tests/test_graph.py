"""The ONNX generator graph against the TF1 reference graph (random-weight DCPv2 checkpoints)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from deepcream.errors import ModelError
from deepcream.graph import GENERATOR_SHAPES, OPSET, build_model

KINDS = ("bar", "mosaic")
TOLERANCE = 1e-4  # max abs difference vs TF on outputs in [-1, 1]


def _load_generator(kind_dir: Path) -> dict[str, np.ndarray]:
    prefix = next(kind_dir.glob("Train_*.index")).with_suffix("")
    try:
        from deepcream.checkpoint import read_checkpoint
    except ImportError:  # the pure-Python reader is not there yet: use TF's
        import tensorflow as tf

        reader = tf.train.load_checkpoint(str(prefix))
        return {name: reader.get_tensor(name) for name in GENERATOR_SHAPES}
    return read_checkpoint(prefix, names=list(GENERATOR_SHAPES)).tensors


@pytest.fixture(scope="module")
def generators(dcpv2_release: Path) -> dict[str, dict[str, np.ndarray]]:
    return {kind: _load_generator(dcpv2_release / kind) for kind in KINDS}


@pytest.fixture(scope="module")
def references(dcpv2_release: Path) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for kind in KINDS:
        with np.load(dcpv2_release / kind / "reference.npz") as ref:
            out[kind] = {"x": ref["x"], "m": ref["m"][..., :1].copy(), "out": ref["out"]}
    return out


_SESSIONS: dict[tuple[str, str], object] = {}


@pytest.fixture(scope="module")
def session_for(generators):
    import onnxruntime as ort

    def get(kind: str, attention: str):
        key = (kind, attention)
        if key not in _SESSIONS:
            model = build_model(generators[kind], attention=attention)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 2
            _SESSIONS[key] = ort.InferenceSession(model.SerializeToString(), opts,
                                                  providers=["CPUExecutionProvider"])
        return _SESSIONS[key]

    yield get
    _SESSIONS.clear()


def _run_batched(session, x: np.ndarray, m: np.ndarray, batch: int) -> np.ndarray:
    parts = [session.run(["output"], {"image": x[i:i + batch], "mask": m[i:i + batch]})[0]
             for i in range(0, len(x), batch)]
    return np.concatenate(parts)


def test_generator_shapes_match_the_checkpoint_layout():
    assert len(GENERATOR_SHAPES) == 40
    assert GENERATOR_SHAPES["G_en/Conv/weights"] == (5, 5, 6, 32)
    assert GENERATOR_SHAPES["G_en/Conv_9/weights"] == (3, 3, 256, 256)
    assert GENERATOR_SHAPES["CB1/ML/weights"] == (1, 1, 512, 256)
    assert GENERATOR_SHAPES["G_de/Conv_8/weights"] == (3, 3, 16, 3)
    assert GENERATOR_SHAPES["G_de/Conv_8/biases"] == (3,)


def test_generator_shapes_agree_with_the_fixture_checkpoint(generators):
    for name, shape in GENERATOR_SHAPES.items():
        assert generators["bar"][name].shape == shape, name


def test_model_contract(generators):
    model = build_model(generators["bar"])
    graph = model.graph
    assert [i.name for i in graph.input] == ["image", "mask"]
    assert [o.name for o in graph.output] == ["output"]

    def dims(vi):
        return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]

    assert dims(graph.input[0]) == ["N", 256, 256, 3]
    assert dims(graph.input[1]) == ["N", 256, 256, 1]
    assert dims(graph.output[0]) == ["N", 256, 256, 3]
    assert {op.domain for op in model.opset_import} == {""}
    assert model.opset_import[0].version == OPSET >= 17
    assert all(node.domain == "" for node in graph.node)
    # weights are initializers; no runtime-weight Conv/ConvTranspose for the attention
    assert sum(int(np.prod(t.dims)) for t in graph.initializer) >= 3_600_000
    assert not any(n.op_type == "ConvTranspose" for n in graph.node)
    conv_weights = {n.input[1] for n in graph.node if n.op_type == "Conv"}
    assert conv_weights <= {t.name for t in graph.initializer}
    onnx.checker.check_model(model, full_check=True)
    props = {p.key: p.value for p in model.metadata_props}
    assert props["attention"] == "sparse"  # the default


@pytest.mark.parametrize("attention", ["dense", "sparse"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batch", [1, 3, 8])
def test_graph_matches_tensorflow(attention, kind, batch, session_for, references):
    ref = references[kind]
    out = _run_batched(session_for(kind, attention), ref["x"], ref["m"], batch)
    diff = np.abs(out - ref["out"]).max()
    assert diff <= TOLERANCE, f"{attention} {kind} batch {batch}: max abs diff {diff:.3g}"
    # the known pixels are passed through exactly
    keep = np.broadcast_to(ref["m"] == 1, out.shape)
    np.testing.assert_array_equal(out[keep], ref["x"][keep])


@pytest.mark.parametrize("kind", KINDS)
def test_literal_variant_matches_tensorflow(kind, generators, references):
    """The most literal graph (Resize + reflect Pad + Conv) is a second reference for the
    default graph's upsampling folded into the next conv."""
    import onnxruntime as ort

    model = build_model(generators[kind], attention="dense", upsample="resize")
    assert "Resize" in {n.op_type for n in model.graph.node}
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ref = references[kind]
    out = _run_batched(session, ref["x"], ref["m"], 8)
    diff = np.abs(out - ref["out"]).max()
    assert diff <= TOLERANCE, f"{kind}: max abs diff {diff:.3g}"


def test_missing_variable_is_a_model_error(generators):
    weights = dict(generators["bar"])
    del weights["G_de/Conv_3/biases"]
    with pytest.raises(ModelError, match="G_de/Conv_3/biases"):
        build_model(weights)


def test_wrong_shape_names_variable_expected_and_found(generators):
    weights = dict(generators["bar"])
    weights["G_en/Conv_5/weights"] = np.zeros((3, 3, 128, 128), np.float32)
    with pytest.raises(ModelError) as err:
        build_model(weights)
    msg = str(err.value)
    assert "G_en/Conv_5/weights" in msg
    assert "[3, 3, 128, 256]" in msg and "[3, 3, 128, 128]" in msg


def test_non_finite_weights_are_rejected(generators):
    weights = dict(generators["bar"])
    bad = weights["CB1/ML/biases"].copy()
    bad[3] = np.nan
    weights["CB1/ML/biases"] = bad
    with pytest.raises(ModelError, match="CB1/ML/biases"):
        build_model(weights)


@pytest.mark.parametrize("option", [{"attention": "fast"}, {"upsample": "bilinear"}])
def test_unknown_build_option(option, generators):
    with pytest.raises(ValueError, match=next(iter(option))):
        build_model(generators["bar"], **option)


def test_extra_variables_are_ignored(generators):
    weights = dict(generators["bar"])
    weights["disc_red/conv0/w"] = np.zeros((5, 5, 3, 64), np.float32)
    weights["G_en/Conv/weights/Adam"] = np.zeros((5, 5, 6, 32), np.float32)
    assert build_model(weights).graph.node


def _edge_case_batch(references) -> tuple[np.ndarray, np.ndarray]:
    """No hole, all hole, a single hole pixel at a corner, one fixture stroke: mixed in one
    batch so the sparse graph's per-batch query count covers very different samples."""
    ref = references["mosaic"]
    x = ref["x"][[0, 1, 2, 3]].copy()
    m = np.ones((4, 256, 256, 1), np.float32)
    m[1] = 0.0
    m[2, 255, 0] = 0.0
    m[3] = ref["m"][3]
    return x, m


@pytest.mark.parametrize("order", [[0, 1, 2, 3], [0], [1], [2], [3], [0, 1], [3, 0]])
def test_sparse_equals_dense_on_edge_cases(order, session_for, references):
    x, m = _edge_case_batch(references)
    x, m = x[order], m[order]
    dense = session_for("mosaic", "dense").run(["output"], {"image": x, "mask": m})[0]
    sparse = session_for("mosaic", "sparse").run(["output"], {"image": x, "mask": m})[0]
    assert np.all(np.isfinite(dense)) and np.all(np.isfinite(sparse))
    diff = np.abs(dense - sparse).max()
    assert diff <= TOLERANCE, f"samples {order}: dense vs sparse max abs diff {diff:.3g}"
    keep = np.broadcast_to(m == 1, x.shape)
    np.testing.assert_array_equal(sparse[keep], x[keep])


def test_all_hole_crop_is_filled_not_nan(session_for, references):
    """With no known pixel every key is 0 and DCPv2's std is 0; the graph must still give a
    finite fill in [-1, 1] (the original divides 0 by 0 here)."""
    x = references["bar"]["x"][:1]
    m = np.zeros((1, 256, 256, 1), np.float32)
    out = session_for("bar", "sparse").run(["output"], {"image": x, "mask": m})[0]
    assert np.all(np.isfinite(out)) and out.min() >= -1 and out.max() <= 1


def test_sparse_attends_only_queries_next_to_holes(generators, references):
    """The sparse graph's row count is the batch's largest number of query cells with a hole
    cell in their 3x3 neighbourhood, not all 1024."""
    import onnxruntime as ort
    from scipy import ndimage

    model = build_model(generators["bar"], attention="sparse")
    topk = next(n for n in model.graph.node if n.op_type == "TopK")
    k_info = onnx.helper.make_tensor_value_info(topk.input[1], onnx.TensorProto.INT64, None)
    model.graph.output.append(k_info)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ref = references["bar"]
    for sample in (0, 3, 5):
        holes32 = ref["m"][sample, ::8, ::8, 0] == 0
        expected = int(ndimage.binary_dilation(holes32, np.ones((3, 3), bool)).sum())
        _, k = session.run(None, {"image": ref["x"][sample:sample + 1],
                                  "mask": ref["m"][sample:sample + 1]})
        assert 0 < int(k[0]) == expected < 1024


def test_openvino_runs_the_graph_exactly(generators, references):
    ov = pytest.importorskip("openvino")
    core = ov.Core()
    model = core.read_model(build_model(generators["mosaic"]).SerializeToString(), b"")
    compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32",
                                                 "INFERENCE_NUM_THREADS": 2})
    ref = references["mosaic"]
    out = compiled({"image": ref["x"][2:5], "mask": ref["m"][2:5]})[compiled.output(0)]
    diff = np.abs(out - ref["out"][2:5]).max()
    assert diff <= TOLERANCE, f"openvino f32: max abs diff {diff:.3g}"


def test_decoder_window_equals_full_decoder(generators, references):
    """Small holes at cell offsets where the margin is just enough, at the crop's edges and
    corners, two far-apart holes, and a batch whose union box covers both: the windowed decoder
    gives the full decoder's output (a short margin would differ by ~1e-2 and more)."""
    import onnxruntime as ort

    sessions = [ort.InferenceSession(build_model(generators["bar"], decoder_window=flag)
                                     .SerializeToString(), providers=["CPUExecutionProvider"])
                for flag in (True, False)]
    boxes = [(40, 44, 40, 44), (44, 47, 100, 103), (0, 3, 0, 3), (253, 256, 120, 124),
             (100, 108, 0, 5), (128, 130, 251, 256), (33, 35, 222, 224)]
    m = np.ones((len(boxes) + 1, 256, 256, 1), np.float32)
    for i, (y0, y1, x0, x1) in enumerate(boxes):
        m[i, y0:y1, x0:x1] = 0
    m[-1, 60:64, 60:64] = 0
    m[-1, 200:203, 180:190] = 0
    x = np.repeat(references["bar"]["x"][:1], len(m), axis=0)
    x = np.where(m == 0, -1.0, x).astype(np.float32)
    for batch in (1, len(m)):
        windowed = _run_batched(sessions[0], x, m, batch)
        full = _run_batched(sessions[1], x, m, batch)
        diff = np.abs(windowed - full).max()
        assert diff <= 1e-5, f"batch {batch}: windowed vs full decoder max abs diff {diff:.3g}"


def test_fractional_mask_values_give_the_dense_result(session_for, references):
    """Masks are 0/1 in DCP, but a value between 0 and 1 still mixes g in: the sparse rows and
    the decoder window must cover such pixels too (the dense graph is the reference)."""
    x = references["mosaic"]["x"][:2].copy()
    m = np.ones((2, 256, 256, 1), np.float32)
    m[0, 96:104, 40:48] = 0.5  # only a partial-mask cell, far from any hole
    m[0, 200:220, 200:230] = 0.0
    m[1, 8:16, 240:248] = 0.25
    dense = session_for("mosaic", "dense").run(["output"], {"image": x, "mask": m})[0]
    sparse = session_for("mosaic", "sparse").run(["output"], {"image": x, "mask": m})[0]
    diff = np.abs(dense - sparse).max()
    assert diff <= TOLERANCE, f"dense vs sparse max abs diff {diff:.3g}"


@pytest.mark.parametrize("attention", ["sparse", "dense"])
def test_empty_batch(attention, session_for):
    out = session_for("bar", attention).run(["output"], {
        "image": np.zeros((0, 256, 256, 3), np.float32),
        "mask": np.ones((0, 256, 256, 1), np.float32)})[0]
    assert out.shape == (0, 256, 256, 3)
