"""Where deepcream's time goes: pyinstrument over one image (Python side vs model calls) and
onnxruntime's per-operator profile of one crop, summed by operator type."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .measure import have


def profile_deepcream(image_once: Callable[[], Any], model: Path, x1: np.ndarray, m1: np.ndarray,
                      text_out: Path, threads: int | None) -> dict[str, Any]:
    """Profile one ``image_once()`` call (text report to ``text_out``, when pyinstrument is
    installed) and four runs of the crop ``x1``/``m1`` through ``model``."""
    out: dict[str, Any] = {}
    if have("pyinstrument"):
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.002)
        profiler.start()
        image_once()
        profiler.stop()
        text_out.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
        out["pyinstrument_text"] = text_out.name
    import onnxruntime as ort

    from deepcream.session import default_threads

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or default_threads()
    opts.enable_profiling = True
    opts.profile_file_prefix = str(text_out.with_suffix(""))
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    feed = {"image": x1, "mask": m1}
    for _ in range(4):  # the first run pays allocation; the profile sums all of them
        sess.run(None, feed)
    trace = json.loads(Path(sess.end_profiling()).read_text())
    by_op: dict[str, float] = {}
    for event in trace:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            op = event.get("args", {}).get("op_name", "?")
            by_op[op] = by_op.get(op, 0.0) + event["dur"] / 1e6 / 4
    total = sum(by_op.values())
    out["ort_ops_s_per_crop"] = dict(sorted(by_op.items(), key=lambda kv: -kv[1]))
    out["ort_kernel_total_s_per_crop"] = total
    return out
