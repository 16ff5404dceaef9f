"""The compute floor: the FLOPs of one 256x256 crop through the dense DCPv2 network and the
machine's fp32 GEMM speed in onnxruntime, which together bound the per-region time from below."""

from __future__ import annotations

from typing import Any

import numpy as np

from .measure import time_runs

# Multiply-accumulates of one 256x256 crop, dense, from the architecture in shared/dcpv2-model.md:
# (output side, kernel, in, out) per conv, plus the attention's two 1024x2304x900 products.
_CONVS = [
    (256, 5, 6, 32), (128, 3, 32, 64), (128, 3, 64, 64), (64, 3, 64, 128), (64, 3, 128, 128),
    (32, 3, 128, 256), (32, 3, 256, 256), (32, 3, 256, 256), (32, 3, 256, 256), (32, 3, 256, 256),
    (32, 1, 512, 256),  # CB1/ML
    (32, 3, 256, 128), (32, 3, 128, 128), (64, 3, 128, 64), (64, 3, 64, 64),
    (128, 3, 64, 32), (128, 3, 32, 32), (256, 3, 32, 16), (256, 3, 16, 16), (256, 3, 16, 3),
]
ATTENTION_MACS = 2 * 1024 * 2304 * 900
CONV_MACS = sum(side * side * k * k * cin * cout for side, k, cin, cout in _CONVS)


def crop_flops(attention: bool = True) -> float:
    """FLOPs (2 per MAC) of one crop through the dense network."""
    return 2.0 * (CONV_MACS + (ATTENTION_MACS if attention else 0))


def measure_gemm_gflops(threads: int | None = None, repeats: int = 10) -> dict[str, float]:
    """onnxruntime fp32 MatMul speed on the attention's shapes and on a large square GEMM."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from deepcream.session import default_threads

    threads = threads or default_threads()
    out: dict[str, float] = {"threads": threads}
    for label, (m, k, n) in {"attention_1024x2304x900": (1024, 2304, 900),
                             "square_2048": (2048, 2048, 2048)}.items():
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["a", "b"], ["c"])], "gemm",
            [helper.make_tensor_value_info("a", TensorProto.FLOAT, [m, k]),
             helper.make_tensor_value_info("b", TensorProto.FLOAT, [k, n])],
            [helper.make_tensor_value_info("c", TensorProto.FLOAT, [m, n])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        sess = ort.InferenceSession(model.SerializeToString(), opts,
                                    providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        feed = {"a": rng.standard_normal((m, k), np.float32),
                "b": rng.standard_normal((k, n), np.float32)}
        sess.run(None, feed)
        best = min(time_runs(lambda sess=sess, feed=feed: sess.run(None, feed), repeats))
        out[label] = 2.0 * m * k * n / best / 1e9
    out["gflops"] = max(v for key, v in out.items() if key != "threads")
    return out


def floor_summary(gemm: dict[str, float]) -> dict[str, Any]:
    """The per-crop floor implied by a ``measure_gemm_gflops`` result."""
    return {"gemm_gflops": gemm["gflops"], "gemm": gemm,
            "crop_gflop_dense": crop_flops() / 1e9,
            "crop_gflop_without_attention": crop_flops(False) / 1e9,
            "floor_dense_s": crop_flops() / 1e9 / gemm["gflops"],
            "floor_without_attention_s": crop_flops(False) / 1e9 / gemm["gflops"]}


def compare_with_floor(floor: dict[str, Any], ours: dict[str, Any]) -> None:
    """Add deepcream's per-region times as multiples of the dense floor to ``floor``."""
    floor["deepcream_per_region_vs_dense_floor"] = ours["per_region_in_image_s"] / floor["floor_dense_s"]
    floor["deepcream_batch1_vs_dense_floor"] = ours["per_region_batch1_s"] / floor["floor_dense_s"]
