"""Crop scheduling for the model's workers: what one crop is estimated to cost, how a batch
of crops is split into lanes of equal estimated cost (one lane per worker thread), and the
lower CPU priority of the threads that work beside the model.

The cost model is fitted by ``scripts/fit_crop_cost.py`` (onnxruntime, 1 thread, this repo's
sparse graph) on the reference workload's 17 crops and 7 square holes: max error 2.2 ms of
74-129 ms. Only the ratios matter, so it holds on other CPUs as long as the graph is the same.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Sequence

import numpy as np

# The attention runs on a 32x32 grid of 8x8-pixel cells of the 256 px crop.
GRID, CELL = 32, 8
# The decoder's window: the holes' bounding box plus this many cells on each side.
WINDOW_MARGIN = 4
# Fitted milliseconds: a crop with no hole; per query cell next to a hole; per hole cell;
# per cell of the decoder window.
BASE_MS = 71.3
NEAR_CELL_MS = 0.0287
HOLE_CELL_MS = 0.0099
WINDOW_CELL_MS = 0.0322


def crop_cost(hole: np.ndarray) -> float:
    """Estimated single-threaded seconds for one crop (``hole``: bool [256, 256], True = fill).

    The sparse graph's work grows with the hole: the attention queries next to hole cells
    (K) and the hole cells themselves (H) of the 32x32 grid, and the decoder's window (the
    holes' bounding box plus 4 cells). Fitted on the workload's 17 crops and 7 square holes
    (``scripts/fit_crop_cost.py``: onnxruntime, 1 thread, this repo's graph): max error
    2.2 ms of 74-129 ms. Only the ratios matter (lane balancing)."""
    cells = hole.reshape(GRID, CELL, GRID, CELL).any(axis=(1, 3))
    if not cells.any():
        return BASE_MS / 1000.0
    near = cells.copy()
    near[1:] |= cells[:-1]
    near[:-1] |= cells[1:]
    near[:, 1:] |= near[:, :-1].copy()
    near[:, :-1] |= near[:, 1:].copy()
    ys, xs = np.nonzero(cells)
    window = ((min(ys.max() + 1 + WINDOW_MARGIN, GRID) - max(ys.min() - WINDOW_MARGIN, 0))
              * (min(xs.max() + 1 + WINDOW_MARGIN, GRID) - max(xs.min() - WINDOW_MARGIN, 0)))
    return (BASE_MS + NEAR_CELL_MS * near.sum() + HOLE_CELL_MS * cells.sum()
            + WINDOW_CELL_MS * window) / 1000.0


def balanced_lanes(costs: Sequence[float], lanes: int) -> list[list[int]]:
    """Split task indices into ``lanes`` lists with near-equal cost sums, each in index
    order. Two lanes: the exact best split of the costs rounded to 0.1 ms (subset-sum over a
    bitset); more: largest first into the lightest lane."""
    n = len(costs)
    if lanes <= 1 or n <= 1:
        return [list(range(n))]
    units = [max(1, round(c * 1e4)) for c in costs]
    if lanes == 2 and sum(units) < 1 << 20:
        # reach[i]: bitset of the sums reachable with the first i tasks
        reach = [1]
        for u in units:
            reach.append(reach[-1] | (reach[-1] << u))
        half = sum(units) // 2
        below = reach[-1] & ((1 << (half + 1)) - 1)
        target = below.bit_length() - 1  # the largest reachable sum <= half
        first: list[int] = []
        for i in range(n, 0, -1):  # walk back: take task i-1 if the sum needs it
            if not (reach[i - 1] >> target) & 1:
                first.append(i - 1)
                target -= units[i - 1]
        chosen = set(first)
        return [sorted(chosen), [i for i in range(n) if i not in chosen]]
    loads = [0.0] * lanes
    out: list[list[int]] = [[] for _ in range(lanes)]
    for i in sorted(range(n), key=lambda i: -costs[i]):
        j = loads.index(min(loads))
        loads[j] += costs[i]
        out[j].append(i)
    return [sorted(lane) for lane in out]


#: How much lower than the model's threads the helper threads of a folder job run (Linux nice).
HELPER_NICENESS = 10


def lower_thread_priority(niceness: int = HELPER_NICENESS) -> bool:
    """Make the calling thread yield the CPU to the model's threads (Linux: this thread's nice
    value + ``niceness``; elsewhere nothing). The model keeps every core busy, so a helper
    thread (the next image's decode and regions, the last one's write) at the same priority
    takes its time slices from the crops in flight; at a lower one it uses what the crops
    leave idle (the last crops of a lane, the gaps between calls). True if it was lowered."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + niceness)
    except (OSError, AttributeError) as exc:
        logging.getLogger(__name__).debug("cannot lower the thread's priority: %s", exc)
        return False
    return True
