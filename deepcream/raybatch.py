"""The folder job on a Ray cluster (``deepcream decensor IN -o OUT --ray auto|local|ADDRESS``;
the optional extra ``deepcream[ray]``).

The driver plans the job exactly as the one-machine path does (``folderjob.plan_tasks``: the
same inputs, skips, names), then Ray Data streams the task list through ``map_batches`` on an
actor pool: each actor loads one engine once (and warms it up) and decensors whole images
(``folderjob.process_task``: decode, fill, encode, atomic write from the worker). Outcomes
stream back to the driver, which keeps the journal and the summary. Inputs, originals,
outputs and the models folder must be visible at the same paths on every node (a shared
filesystem).

Resources: an actor runs its engine on ``threads`` threads and asks Ray for ``0.75 x threads``
CPUs, so actors never take all of a node's CPUs: Ray Data's own small tasks always find a
CPU (a 2-CPU node runs 2 one-thread actors and keeps 0.5 CPU free; no deadlock).
Fault tolerance: a failed actor is restarted and its unfinished images retried by Ray
(``max_restarts``/``max_task_retries``); as every output is written by temp file + rename, a
retried image never leaves a partial file.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deepcream.errors import DeepcreamError
from deepcream.folderjob import ENGINE_FAILED, Outcome, Task
from deepcream.options import DecensorOptions

if TYPE_CHECKING:
    from deepcream.session import SessionOptions

log = logging.getLogger(__name__)

#: CPUs an actor asks for per engine thread: below 1 so the actor pool never holds every CPU.
CPU_PER_THREAD = 0.75
#: How often an image is retried when its worker dies.
MAX_RETRIES = 3
WORKER_LOST = "worker lost"


def _require_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise DeepcreamError("--ray needs Ray Data: pip install 'deepcream[ray]'") from None
    return ray


class DecensorActor:
    """One engine per actor, loaded and warmed up once; decensors a batch of tasks."""

    def __init__(self, engine: str, models: str | None, session: dict[str, Any],
                 options: dict[str, Any], software: str) -> None:
        from deepcream.decensorer import Decensorer
        from deepcream.malloc import tune_malloc
        from deepcream.session import SessionOptions

        tune_malloc()
        self.options = DecensorOptions(**options)
        self.decensorer = Decensorer(engine=engine, models=models,
                                     session=SessionOptions(**session))
        loaded = self.decensorer.engine(self.options.mode)
        loaded.warmup()
        self.name = loaded.describe()
        self.text = {"Software": software}

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        from deepcream.folderjob import process_task

        out: dict[str, list[Any]] = {"index": [], "status": [], "reason": [], "message": [],
                                     "regions": [], "warning": [], "seconds": [], "pid": [],
                                     "engine": []}
        for i, index in enumerate(batch["index"]):
            original = batch["original"][i]
            mask = batch["mask"][i]
            task = Task(Path(batch["source"][i]), Path(original) if original else None,
                        [Path(p) for p in batch["outputs"][i]],
                        [Path(p) for p in batch["write"][i]],
                        mask=Path(mask) if isinstance(mask, str) and mask else None)
            try:
                outcome = process_task(self.decensorer, task, self.options, text=self.text)
            except Exception as exc:  # reported as this file's failure; the job goes on
                outcome = Outcome(task, "failed", ENGINE_FAILED, f"{task.source}: {exc}")
            out["index"].append(int(index))
            out["status"].append(outcome.status)
            out["reason"].append(outcome.reason)
            out["message"].append(outcome.message)
            out["regions"].append(outcome.regions)
            out["warning"].append(outcome.warning or "")
            out["seconds"].append(sum(outcome.timings.get(k, 0.0)
                                      for k in ("prepare", "inpaint", "finish", "save")))
            out["pid"].append(os.getpid())
            out["engine"].append(self.name)
        return out


def connect(address: str) -> Any:
    """Connect to a cluster: ``auto`` (the one ``ray start --head`` runs here, or
    ``$RAY_ADDRESS``), ``local`` (start a private one-machine cluster for this run) or an
    address (``HOST:PORT``, ``ray://HOST:10001``)."""
    ray = _require_ray()
    if ray.is_initialized():
        return ray
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    try:
        if address == "local":
            ray.init(include_dashboard=False, **kwargs)
        else:
            ray.init(address=address, **kwargs)
    except ConnectionError as exc:
        raise DeepcreamError(f"cannot connect to the Ray cluster at {address}: {exc}") from None
    return ray


def run_ray(tasks: Sequence[Task], options: DecensorOptions, *, address: str,
            engine: str = "auto", models: str | None = None,
            session: SessionOptions | None = None, software: str = "deepcream",
            on_outcome: Callable[[Outcome], None], actors: int | None = None,
            progress: bool = True) -> None:
    """Run ``tasks`` on the cluster at ``address`` (see ``connect``); ``on_outcome`` is
    called on the driver as images finish (completion order). ``session.threads``: engine
    threads per actor (default 1); ``actors``: most actors (default: the cluster's CPUs
    divided by the threads; with ``--backend cuda``, its GPUs, one per actor). An image
    whose worker died more than ``MAX_RETRIES`` times is reported as failed (``worker
    lost``); the other images still run."""
    from deepcream.session import SessionOptions

    session = session or SessionOptions()
    if any(t.mask is not None and not isinstance(t.mask, Path | str) for t in tasks):
        raise DeepcreamError("--ray takes a folder of masks (--mask DIR), not one mask file")
    connected_here = not _require_ray().is_initialized()
    ray = connect(address)
    try:
        from ray.data import ActorPoolStrategy, DataContext

        threads = int(session.threads or 1)
        resources = ray.cluster_resources()
        gpu = session.backend == "cuda"
        if gpu:
            most = actors or max(1, int(resources.get("GPU", 1)))
        else:
            most = actors or max(1, int(float(resources.get("CPU", 1.0)) // threads))
        context = DataContext.get_current()
        context.enable_progress_bars = progress
        # A block whose tasks kept failing is left out instead of failing the whole job;
        # its image is reported below.
        context.max_errored_blocks = len(tasks)
        rows = [{"index": i, "source": str(t.source),
                 "original": str(t.original) if t.original is not None else "",
                 "outputs": [str(p) for p in t.outputs], "write": [str(p) for p in t.write],
                 "mask": str(t.mask) if t.mask is not None else ""}
                for i, t in enumerate(tasks)]
        dataset = ray.data.from_items(rows, override_num_blocks=max(1, len(rows)))
        with warnings.catch_warnings():
            # max_restarts/max_task_retries have no named parameter yet in Ray Data
            warnings.simplefilter("ignore", DeprecationWarning)
            dataset = dataset.map_batches(
                DecensorActor, batch_size=1,
                compute=ActorPoolStrategy(min_size=1, max_size=most),
                num_cpus=CPU_PER_THREAD * threads, num_gpus=1 if gpu else None,
                fn_constructor_kwargs={
                    "engine": engine, "models": models,
                    "session": {"backend": session.backend, "threads": threads,
                                "precision": session.precision},
                    "options": dataclasses.asdict(options), "software": software},
                max_restarts=-1, max_task_retries=MAX_RETRIES)
        seen: set[int] = set()
        try:
            for row in dataset.iter_rows():
                index = int(row["index"])
                seen.add(index)
                on_outcome(Outcome(tasks[index], str(row["status"]), str(row["reason"]),
                                   str(row["message"]), int(row["regions"]),
                                   str(row["warning"]) or None, engine=str(row["engine"])))
        except ray.exceptions.RayError as exc:
            cause = str(exc).strip().splitlines()
            raise DeepcreamError(f"the Ray job failed: {cause[-1] if cause else exc}") from None
        for index, task in enumerate(tasks):
            if index not in seen:
                on_outcome(Outcome(task, "failed", WORKER_LOST,
                                   f"{task.source}: its worker died {MAX_RETRIES + 1} times"))
    finally:
        if connected_here:
            ray.shutdown()
