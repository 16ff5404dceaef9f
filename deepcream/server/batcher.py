"""Cross-request batching: one inference thread per engine merges crops of concurrent requests.

Requests ``submit`` their crops and get a ``concurrent.futures.Future``. The worker takes the
oldest waiting item, then keeps collecting items for at most ``window_s`` (or until
``max_batch`` crops), runs ``engine.inpaint`` once on all crops of the same shape and hands
each request its own slice back. Items whose future was cancelled or whose ``cancel`` event
is set (request timed out) are skipped, and a running batch stops after the crop in progress
once every request in it is cancelled. With ``max_batch=1`` every request runs alone, in
arrival order.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class _Item:
    crops: np.ndarray
    holes: np.ndarray
    cancel: threading.Event | None = None
    future: Future[np.ndarray] = field(default_factory=Future)

    @property
    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()


class Batcher:
    """Serialises and batches ``engine.inpaint`` calls for one engine."""

    def __init__(
        self,
        engine: Any,
        *,
        window_s: float,
        max_batch: int,
        on_batch: Callable[[int, int, float], None] | None = None,
    ) -> None:
        self.engine = engine
        self.window_s = window_s
        self.max_batch = max_batch
        self.on_batch = on_batch  # (crops, requests, seconds) for metrics
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._thread = threading.Thread(
            target=self._loop, name=f"deepcream-infer-{getattr(engine, 'mode', '?')}", daemon=True
        )
        self._thread.start()

    def submit(self, crops: np.ndarray, holes: np.ndarray,
               cancel: threading.Event | None = None) -> Future[np.ndarray]:
        """Queue one request's crops ([N,H,W,3] uint8, holes [N,H,W] bool) for inpainting;
        setting ``cancel`` stops that work (the future then fails with ``JobCancelled``)."""
        item = _Item(np.asarray(crops), np.asarray(holes), cancel)
        self._queue.put(item)
        return item.future

    def close(self) -> None:
        """Stop the worker after the items already queued."""
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _inpaint(self, crops: np.ndarray, holes: np.ndarray, check: Callable[..., None]
                 ) -> np.ndarray:
        return self.engine.inpaint(crops, holes, on_filled=check)

    def _loop(self) -> None:
        carry: _Item | None = None  # an item that did not fit the previous batch
        while True:
            first = carry if carry is not None else self._queue.get()
            carry = None
            if first is None:
                return
            batch = [first]
            crops = len(first.crops)
            stop = False
            deadline = time.monotonic() + self.window_s
            while crops < self.max_batch:
                remaining = deadline - time.monotonic()
                try:
                    if remaining > 0:
                        nxt = self._queue.get(timeout=remaining)
                    else:  # window over: still take what is already waiting
                        nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                fits = crops + len(nxt.crops) <= self.max_batch
                if not fits or nxt.crops.shape[1:] != first.crops.shape[1:]:
                    carry = nxt
                    break
                batch.append(nxt)
                crops += len(nxt.crops)
            self._run(batch)
            if stop:
                return

    def _run(self, batch: list[_Item]) -> None:
        from deepcream.pipeline import JobCancelled

        live = []
        for item in batch:
            if not item.future.set_running_or_notify_cancel():
                continue
            if item.cancelled:
                item.future.set_exception(JobCancelled("the request was cancelled"))
                continue
            live.append(item)
        if not live:
            return

        def check(*_: Any) -> None:
            # called as crops finish: once every request of the batch is cancelled, the
            # engine's workers take no more crops
            if all(item.cancelled for item in live):
                raise JobCancelled("the request was cancelled")

        start = time.perf_counter()
        try:
            if len(live) == 1:
                filled = [self._inpaint(live[0].crops, live[0].holes, check)]
            else:
                merged = self._inpaint(
                    np.concatenate([item.crops for item in live]),
                    np.concatenate([item.holes for item in live]),
                    check,
                )
                bounds = np.cumsum([len(item.crops) for item in live])[:-1]
                filled = np.split(merged, bounds)
        except BaseException as exc:  # hand any failure to every waiting request
            for item in live:
                item.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        seconds = time.perf_counter() - start
        for item, result in zip(live, filled, strict=True):
            if item.cancelled:  # its slice was filled with others', but nobody waits
                item.future.set_exception(JobCancelled("the request was cancelled"))
                continue
            item.future.set_result(result)
        if self.on_batch is not None:
            try:
                self.on_batch(sum(len(item.crops) for item in live), len(live), seconds)
            except Exception:  # metrics must never break inference
                log.exception("batch metrics callback failed")
