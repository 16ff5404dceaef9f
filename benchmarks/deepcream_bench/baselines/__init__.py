"""Baselines that ``deepcream bench`` measures deepcream against, in the same run.

- ``tf_original``: the original DCPv2 graph in TensorFlow, one crop at a time (batch 1).
- ``tf2onnx_surgery``: the ONNX write-up's approach: tf2onnx conversion of the TensorFlow graph,
  run per crop on a thread pool.
- ``service``: the published service's pipeline cost structure (pure-Python region finding,
  per-pixel paste), running a deepcream ONNX model inside it.
- ``fixture``: the random-weight DCPv2-layout checkpoint generator the baselines restore from.

All but ``service`` need the ``bench`` extra (TensorFlow, tf-slim, tf2onnx).
"""
