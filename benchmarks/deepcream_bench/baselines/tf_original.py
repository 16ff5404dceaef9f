"""The original DCPv2 graph in TensorFlow, run as DeepCreamPy does: one crop per session run.

The saved ``.meta`` training graph is fixed at batch 8 (and carries the coarse path and the
discriminator), so instead the inference path is rebuilt at batch 1 with the same TF1 graph
code that wrote the checkpoint (``fixture.inference_graph``) and the generator variables are
restored into it. That is the cheapest way to run the original graph per crop; feeding 8
copies of a crop into the batch-8 graph would cost about 8 times more.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class TensorFlowOriginal:
    """A TF1 session over the batch-1 inference graph restored from a checkpoint prefix."""

    def __init__(self, prefix: str | os.PathLike[str], threads: int | None = None) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import tensorflow as tf

        from . import fixture

        tf1 = tf.compat.v1
        tf1.disable_eager_execution()
        self.graph = tf.Graph()
        with self.graph.as_default():
            self._x, self._y, self._m, self._out = fixture.inference_graph(1)
            config = tf1.ConfigProto()
            if threads:
                config.intra_op_parallelism_threads = threads
            self.sess = tf1.Session(graph=self.graph, config=config)
            fixture.restore_generator(self.sess, str(prefix))

    def run(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """``image`` [N,256,256,3] in [-1,1], ``mask`` [N,256,256,1] -> [N,256,256,3]; the
        crops go through the graph one at a time."""
        outs = []
        for i in range(image.shape[0]):
            m3 = np.repeat(mask[i:i + 1], 3, axis=3)
            outs.append(self.sess.run(self._out, {self._x: image[i:i + 1], self._y: image[i:i + 1],
                                                  self._m: m3}))
        return np.concatenate(outs, axis=0)


def checkpoint_prefix(kind_dir: str | os.PathLike[str]) -> Path:
    """The ``Train_<step>`` prefix a checkpoint folder's ``checkpoint`` file names."""
    import re

    kind_dir = Path(kind_dir)
    text = (kind_dir / "checkpoint").read_text()
    found = re.search(r'model_checkpoint_path:\s*"([^"]+)"', text)
    if not found:
        raise FileNotFoundError(f"no checkpoint named in {kind_dir / 'checkpoint'}")
    prefix = Path(found.group(1))
    # Savers record absolute paths; a moved folder still holds the files under the same name.
    if prefix.is_absolute() and prefix.with_name(prefix.name + ".index").is_file():
        return prefix
    return kind_dir / prefix.name
