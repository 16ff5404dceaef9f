"""The ONNX write-up's approach, reproduced: tf2onnx conversion of the TensorFlow graph, one
crop per run, crops spread over a thread pool.

Deviation from the write-up, stated in docs/performance.md: it converted the batch-8 training
graph and then cut the batch down to 1 by graph surgery. Here the inference path is rebuilt at
batch 1 with the checkpoint's own graph code (``fixture.inference_graph``), frozen and converted
by tf2onnx: the result is the graph that surgery aims at (one unrolled attention block,
batch 1, ExtractImagePatches/Conv/ConvTranspose with runtime weights), without the surgery.

``convert_to_onnx`` needs TensorFlow and tf2onnx; ``Tf2OnnxPool`` only onnxruntime.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np


def convert_to_onnx(prefix: str | os.PathLike[str], target: str | os.PathLike[str],
                    opset: int = 13) -> Path:
    """Freeze the batch-1 inference graph restored from ``prefix`` and convert it with tf2onnx."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    import tf2onnx

    from deepcream.fsutil import atomic_path

    from . import fixture

    tf1 = tf.compat.v1
    tf1.disable_eager_execution()
    graph = tf.Graph()
    with graph.as_default(), tf1.Session(graph=graph) as sess:
        fixture.inference_graph(1)
        fixture.restore_generator(sess, str(prefix))
        frozen = tf1.graph_util.convert_variables_to_constants(
            sess, graph.as_graph_def(), ["output"])
    model, _ = tf2onnx.convert.from_graph_def(
        frozen, input_names=["x:0", "y:0", "m:0"], output_names=["output:0"], opset=opset)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        tmp.write_bytes(model.SerializeToString())
    return target


class Tf2OnnxPool:
    """onnxruntime with its default session options over the tf2onnx model, one crop per run,
    ``workers`` runs in flight at once (the write-up's thread pool)."""

    def __init__(self, path: str | os.PathLike[str], workers: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self.sess = ort.InferenceSession(str(path), sess_options=opts,
                                         providers=["CPUExecutionProvider"])
        self.workers = workers or os.cpu_count() or 1
        self._pool = ThreadPoolExecutor(max_workers=self.workers)

    def _one(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        m3 = np.repeat(mask, 3, axis=3)
        return self.sess.run(["output:0"], {"x:0": image, "y:0": image, "m:0": m3})[0]

    def run(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        futures = [self._pool.submit(self._one, image[i:i + 1], mask[i:i + 1])
                   for i in range(image.shape[0])]
        return np.concatenate([f.result() for f in futures], axis=0)
