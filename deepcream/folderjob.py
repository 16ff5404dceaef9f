"""Folder jobs: which files are inputs, where their outputs go, what is already done, the
journal of a job, and the loop that runs many images through one engine.

Re-run rules (docs/decensor.md, "Folders, re-runs and resuming"):
- folders are read recursively (hidden files and folders skipped, symlinked folders not
  followed); with an output folder the tree is mirrored under it;
- deepcream's own outputs (PNGs whose text chunk names the engine) and the output folder
  itself are never inputs, so a re-run over the same folder never decensors its results;
- an output that exists is not written again (the image is skipped, with a notice) unless
  ``overwrite``; DeepCreamPy's folder mode always overwrites;
- a journal (``deepcream-journal.jsonl``) in the output folder records every image done or
  failed and why; a run that stops part-way is resumed by running it again.

``run_tasks`` is the one-machine loop: while the engine fills image k, image k+1 is decoded
and its regions found (a prefetch thread) and image k-1 is written (a writer thread), with
at most those three images in memory.
"""

from __future__ import annotations

import collections
import datetime as _dt
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deepcream.errors import DeepcreamError, ModelError
from deepcream.options import ENGINE_TEXT_KEY
from deepcream.pngdecode import PNG_SIGNATURE

if TYPE_CHECKING:
    from deepcream.decensorer import Decensorer
    from deepcream.options import DecensorOptions

log = logging.getLogger(__name__)

# Files a folder input contributes; DCP's --dcp-folders layout reads only PNGs, like DCP.
INPUT_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
ORIGINAL_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
JOURNAL_NAME = "deepcream-journal.jsonl"

# Why an image was not decensored (the summary counts these; the journal keeps the message).
BAD_INPUT = "bad input"
NOTHING_TO_DO = "nothing to decensor"
NO_ORIGINAL = "no original"
NOT_FOUND = "not found"
OUT_OF_MEMORY = "out of memory"
WRITE_FAILED = "write failed"
ENGINE_FAILED = "engine error"
# Why an image was skipped without work.
OUTPUT_EXISTS = "output exists"


def png_text(path: str | os.PathLike[str], *, limit: int = 64) -> dict[str, str]:
    """The tEXt chunks of a PNG file that come before its image data (where deepcream and
    most writers put them); {} for anything else. Reads only chunk headers and small text
    payloads, never the pixels."""
    found: dict[str, str] = {}
    if not os.path.isfile(path):  # a FIFO or device: opening it could block forever
        return found
    try:
        with open(path, "rb") as fh:
            if fh.read(8) != PNG_SIGNATURE:
                return found
            for _ in range(limit):
                head = fh.read(8)
                if len(head) < 8:
                    break
                length, kind = int.from_bytes(head[:4], "big"), head[4:]
                if kind in (b"IDAT", b"IEND"):
                    break
                if kind == b"tEXt" and length <= 4096:
                    key, _, value = fh.read(length).partition(b"\0")
                    found[key.decode("latin-1")] = value.decode("latin-1")
                    fh.seek(4, os.SEEK_CUR)
                else:
                    fh.seek(length + 4, os.SEEK_CUR)
    except OSError:
        pass
    return found


def is_deepcream_output(path: str | os.PathLike[str]) -> bool:
    """True for a PNG written by deepcream (its text names the engine that filled it)."""
    return Path(path).suffix.lower() == ".png" and ENGINE_TEXT_KEY in png_text(path)


def list_images(folder: Path, suffixes: Sequence[str] = INPUT_SUFFIXES, *,
                recursive: bool = True, exclude: Iterable[Path] = ()) -> list[Path]:
    """Image files under ``folder`` (sorted by path; hidden files and folders skipped,
    symlinked folders not followed). Folders in ``exclude`` (resolved paths) are not
    entered: an output folder inside the input folder is never read."""
    skip = {Path(p).resolve() for p in exclude}
    found: list[Path] = []
    for top, dirs, files in os.walk(folder):
        here = Path(top)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and (here / d).resolve() not in skip)
        found.extend(here / f for f in files
                     if not f.startswith(".") and os.path.splitext(f)[1].lower() in suffixes
                     and (here / f).is_file())
        if not recursive:
            break
    return sorted(found)


def originals_index(folder: Path, *, recursive: bool = True) -> dict[str, Path]:
    """Originals by relative path without suffix (``sub/page``), first suffix in
    ``ORIGINAL_SUFFIXES`` order when several exist."""
    index: dict[str, Path] = {}
    rank = {s: i for i, s in enumerate(ORIGINAL_SUFFIXES)}
    for path in list_images(folder, ORIGINAL_SUFFIXES, recursive=recursive):
        key = path.relative_to(folder).with_suffix("").as_posix()
        if key not in index or rank[path.suffix.lower()] < rank[index[key].suffix.lower()]:
            index[key] = path
    return index


@dataclass
class Task:
    """One input image: ``outputs`` are all its output paths (one per variation),
    ``write`` those this run writes (all with ``overwrite``, else the missing ones)."""

    source: Path
    original: Path | None
    outputs: list[Path]
    write: list[Path] = field(default_factory=list)
    # a separate mask (``--mask``): its path, or its fill pixels when read while planning
    mask: Any = None


@dataclass
class Plan:
    """A planned job: ``tasks`` to run; ``skipped`` tasks whose outputs all exist;
    ``errors`` inputs that cannot run, as (path, reason, message); ``ignored`` deepcream
    outputs found among the inputs (never decensored again)."""

    tasks: list[Task] = field(default_factory=list)
    skipped: list[Task] = field(default_factory=list)
    errors: list[tuple[Path, str, str]] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)


def output_names(source: Path, folder: Path, variations: int, *, suffix_tag: str = "",
                 dcp: bool = False) -> list[Path]:
    """``folder/STEM{tag}.png``, or ``folder/STEM{tag} V.png`` per variation (DCP's names
    always carry the variation)."""
    stem = source.stem + suffix_tag
    if dcp or variations > 1:
        return [folder / f"{stem} {v}.png" for v in range(variations)]
    return [folder / f"{stem}.png"]


def plan_tasks(sources: Sequence[tuple[Path, Path | None]], *, out_dir: Path | None,
               originals: Path | None = None, variations: int = 1, dcp: bool = False,
               overwrite: bool = False) -> Plan:
    """Pair inputs with originals and output paths and decide what this run does.

    ``sources``: (image, folder it was found in, or None for a file named directly).
    Outputs go to ``out_dir`` mirroring each file's path below its folder, or beside the
    input as ``NAME.decensored.png`` without ``out_dir``. An output never replaces an input
    of the run and two inputs never share an output (``.decensored``, ``.decensored-2``
    ... is added). ``originals``: one file (one input) or a folder matched by relative
    path without suffix (``sub/page`` for ``IN/sub/page.png``)."""
    plan = Plan()
    kept: list[tuple[Path, Path | None]] = []
    for source, root in sources:
        if is_deepcream_output(source):
            plan.ignored.append(source)
        else:
            kept.append((source, root))
    index: dict[str, Path] | None = None
    if originals is not None and originals.is_dir():
        index = originals_index(originals, recursive=not dcp)
    inputs = {s.resolve() for s, _ in kept}
    if originals is not None:
        inputs |= ({originals.resolve()} if index is None
                   else {p.resolve() for p in index.values()})
    taken: set[Path] = set()
    for source, root in kept:
        rel = source.relative_to(root) if root is not None else Path(source.name)
        original = None
        if originals is not None:
            key = rel.with_suffix("").as_posix()
            original = originals if index is None else index.get(key)
            if original is None:
                plan.errors.append((source, NO_ORIGINAL, f"{source}: no original named "
                                    f"{key}.png/.jpg/.jpeg/.webp in {originals}"))
                continue
        if out_dir is None:
            folder, tag = source.parent, ".decensored"
        else:
            folder, tag = out_dir / rel.parent, ""
        names = output_names(source, folder, variations, suffix_tag=tag, dcp=dcp)
        counter = 1
        while any(n.resolve() in inputs or n.resolve() in taken for n in names):
            more = ".decensored" if counter == 1 else f".decensored-{counter}"
            names = output_names(source, folder, variations, suffix_tag=tag + more, dcp=dcp)
            counter += 1
        taken |= {n.resolve() for n in names}
        write = list(names) if overwrite else [n for n in names if not n.exists()]
        task = Task(source, original, names, write)
        (plan.tasks if write else plan.skipped).append(task)
    return plan


@dataclass
class Outcome:
    """What became of one task: ``status`` "done" or "failed"; ``reason`` one of the
    module's reason names, ``message`` the full line."""

    task: Task
    status: str
    reason: str = ""
    message: str = ""
    regions: int = 0
    warning: str | None = None
    engine: str = ""  # describe() of the engine that filled it
    timings: dict[str, float] = field(default_factory=dict)
    mask_note: str | None = None


def failure(task: Task, reason: str, exc: BaseException | str) -> Outcome:
    message = "out of memory" if isinstance(exc, MemoryError) else str(exc)
    if str(task.source) not in message:
        message = f"{task.source}: {message}"
    return Outcome(task, "failed", OUT_OF_MEMORY if isinstance(exc, MemoryError) else reason,
                   message)


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Journal:
    """``deepcream-journal.jsonl`` in an output folder: one JSON object per line,
    ``{"input", "status": "done"|"failed", "outputs" | "reason" + "message", "time", ...}``.

    Lines are appended and flushed as images finish, so a killed run keeps what it did;
    ``close`` rewrites the file (atomically) with only the latest line per input, so it
    stays one line per image however often the job is resumed."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / JOURNAL_NAME
        self._lock = threading.Lock()
        # A file name that is not UTF-8 (a lone surrogate in Python) is written as a JSON
        # \udcXX escape, which json.loads turns back into the same name.
        self._fh = self.path.open("a", encoding="utf-8", errors="backslashreplace")

    @staticmethod
    def read(folder: Path) -> dict[str, dict[str, Any]]:
        """The latest record per input (absolute path string); torn lines are ignored."""
        records: dict[str, dict[str, Any]] = {}
        path = Path(folder) / JOURNAL_NAME
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return records
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("input"), str):
                records[record["input"]] = record
        return records

    def record(self, outcome: Outcome, engine: str = "") -> None:
        entry: dict[str, Any] = {"input": str(outcome.task.source.resolve()),
                                 "status": outcome.status}
        if outcome.status == "done":
            entry["outputs"] = [str(p.resolve()) for p in outcome.task.write]
            entry["regions"] = outcome.regions
            entry["engine"] = outcome.engine or engine
        else:
            entry["reason"] = outcome.reason
            entry["message"] = outcome.message
        entry["time"] = _now()
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock:
            self._fh.write(line)
            self._fh.flush()

    def close(self) -> None:
        from deepcream.fsutil import atomic_write_bytes

        with self._lock:
            if self._fh.closed:
                return
            self._fh.close()
            records = self.read(self.path.parent)
            data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records.values())
            try:
                atomic_write_bytes(self.path, data.encode("utf-8", "backslashreplace"))
            except OSError as exc:  # the appended lines are still there
                log.warning("could not compact %s: %s", self.path, exc)


class Summary:
    """Counts of a job: done, skipped and failed by reason, regions filled."""

    def __init__(self) -> None:
        self.done = 0
        self.regions = 0
        self.failed: collections.Counter[str] = collections.Counter()
        self.skipped: collections.Counter[str] = collections.Counter()
        self.interrupted = False

    def add(self, outcome: Outcome) -> None:
        if outcome.status == "done":
            self.done += 1
            self.regions += outcome.regions
        else:
            self.failed[outcome.reason] += 1

    @property
    def total_failed(self) -> int:
        return sum(self.failed.values())

    def line(self, total: int, engine: str, seconds: float) -> str:
        def by_reason(counter: collections.Counter[str]) -> str:
            return ", ".join(f"{n} {reason}" for reason, n in counter.most_common())

        text = (f"{self.done} of {total} images done, {self.regions} regions filled, "
                f"engine {engine}, {seconds:.2f} s")
        # Images with no region found are the most common surprise: counted on their own.
        failed = collections.Counter(self.failed)
        empty = failed.pop(NOTHING_TO_DO, 0)
        if empty:
            text += f"; {empty} with no regions found (no output written)"
        if self.skipped:
            text += f"; skipped {sum(self.skipped.values())} ({by_reason(self.skipped)})"
        if failed:
            text += f"; failed {sum(failed.values())} ({by_reason(failed)})"
        if self.interrupted:
            text += "; interrupted (run again to resume)"
        return text


def save_outputs(pngs: Sequence[bytes], task: Task) -> None:
    """Write the PNGs of the task's variations that this run writes, each atomically."""
    from deepcream.imageio import write_file

    wanted = set(task.write)
    for png, path in zip(pngs, task.outputs, strict=True):
        if path in wanted:
            # Existence was checked when the job was planned; replacing (not hard-linking)
            # works on every filesystem, also those without hard links.
            path.parent.mkdir(parents=True, exist_ok=True)
            write_file(png, path)


def process_task(decensorer: Decensorer, task: Task, options: DecensorOptions, *,
                 text: dict[str, str] | None = None) -> Outcome:
    """Decensor one task start to end in this thread (prepare, fill, encode, write); every
    expected failure becomes a failed ``Outcome``. Used where images are spread over
    workers (Ray); ``run_tasks`` overlaps the stages of consecutive images instead."""
    try:
        job = decensorer.prepare(task.source, options, original=task.original, mask=task.mask)
    except (DeepcreamError, MemoryError, OSError) as exc:
        return failure(task, BAD_INPUT, exc)
    if job.regions == 0:
        return failure(task, NOTHING_TO_DO, f"{job.notice}; skipped (no output written)")
    try:
        result, pngs = decensorer.run(job, png=True, text=text)
    except (DeepcreamError, MemoryError) as exc:
        return failure(task, ENGINE_FAILED, exc)
    del job
    return _save(task, pngs or [], result)


_END = object()


def _prepared_jobs(decensorer: Decensorer, tasks: Sequence[Task], options: DecensorOptions,
                   stop: threading.Event, prefetch: bool) -> Iterable[tuple[Task, Any]]:
    """``(task, prepared job or failed Outcome)`` in task order; with ``prefetch`` a thread
    prepares the next task while the caller works on this one (at most one waits)."""

    def prepared(task: Task) -> Any:
        try:
            return decensorer.prepare(task.source, options, original=task.original,
                                      mask=task.mask)
        except (DeepcreamError, MemoryError, OSError) as exc:
            return failure(task, BAD_INPUT, exc)

    ready: queue.Queue[Any] = queue.Queue()
    slot = threading.Semaphore(1)
    quit_prefetch = threading.Event()

    def prefetcher() -> None:
        from deepcream.scheduling import lower_thread_priority

        lower_thread_priority()  # the model's threads come first (scheduling.py)
        try:
            for task in tasks:
                while not slot.acquire(timeout=0.1):
                    if quit_prefetch.is_set():
                        return
                if quit_prefetch.is_set() or stop.is_set():
                    return
                ready.put((task, prepared(task)))
        except BaseException as exc:  # re-raised in the caller's thread
            ready.put((None, exc))
        finally:
            ready.put(_END)

    if not prefetch:
        for task in tasks:
            if stop.is_set():
                return
            yield task, prepared(task)
        return
    thread = threading.Thread(target=prefetcher, name="deepcream-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is _END:
                return
            slot.release()  # the next image may be prepared while this one runs
            task, job = item
            if task is None:
                raise job
            if stop.is_set():
                return
            yield task, job
    finally:
        quit_prefetch.set()
        thread.join()


def _save(task: Task, pngs: list[bytes], result: Any) -> Outcome:
    """Write one image's outputs (in the writer thread); failures become an ``Outcome``."""
    try:
        t0 = time.perf_counter()
        save_outputs(pngs, task)
        result.timings["save"] = time.perf_counter() - t0
    except (DeepcreamError, MemoryError, OSError) as exc:
        return failure(task, WRITE_FAILED, exc)
    return Outcome(task, "done", regions=result.regions, warning=result.warning,
                   engine=result.engine, timings=result.timings,
                   mask_note=result.mask_note)


def run_tasks(decensorer: Decensorer, tasks: Sequence[Task], options: DecensorOptions, *,
              on_outcome: Callable[[Outcome], None],
              text: dict[str, str] | None = None,
              stop: threading.Event | None = None,
              on_start: Callable[[Task, int], None] | None = None,
              on_filled: Callable[[int], None] | None = None,
              prefetch: bool | None = None) -> int:
    """Decensor ``tasks`` in order with one ``Decensorer``; ``on_outcome`` is called in this thread
    for each finished or failed image, in task order. Returns how many tasks were finished
    (done or failed); fewer than ``len(tasks)`` when ``stop`` was set: the images then in
    flight are completed and written, the one prefetched is dropped (nothing is written for
    it, it is simply not started).

    Pipelined: a prefetch thread runs ``prepare`` (decode, mask, regions, crops) for image
    k+2 while image k+1 waits for the engine's workers and image k is filled
    (``pipeline.run_job``: the crops are pasted and the PNG rows encoded as they are
    filled), and a writer thread writes image k-1. Two images share the engine: the crop
    worker that runs dry at the end of image k takes image k+1's crops at once instead of
    idling until image k's last crop is done. At most one prepared image waits, so memory
    holds about four images whatever the folder size. ``prefetch=False`` (default for a
    single task) prepares in this thread and fills one image at a time.
    ``on_start(task, crops)`` is called before an image goes to the engine;
    ``on_filled(n)`` as its crops are filled (from the engine's threads).
    """
    import collections
    from concurrent.futures import Future, ThreadPoolExecutor

    from deepcream.scheduling import lower_thread_priority  # (numpy: not for --help)

    stop = stop or threading.Event()
    if prefetch is None:
        prefetch = len(tasks) > 1
    in_engine = 2 if prefetch else 1
    finished = 0
    # In task order: a Future of (result, pngs) for an image in the engine, or the Outcome of
    # one that needed no engine (bad input, nothing to fill).
    flight: collections.deque[tuple[Task, Future | Outcome]] = collections.deque()
    pending = None  # the Future of the write in progress

    def fill(job: Any) -> Any:
        return decensorer.run(job, png=True, text=text, on_filled=on_filled)

    with (ThreadPoolExecutor(max_workers=1, thread_name_prefix="deepcream-save",
                             initializer=lower_thread_priority) as saver,
          ThreadPoolExecutor(max_workers=in_engine, thread_name_prefix="deepcream-fill") as filler):
        def report(outcome: Outcome) -> None:
            nonlocal finished
            finished += 1
            on_outcome(outcome)

        def collect() -> None:
            nonlocal pending
            if pending is not None:
                outcome = pending.result()
                pending = None
                report(outcome)

        def settle_first() -> None:
            """The oldest image in flight: wait for it, report it or hand it to the writer."""
            nonlocal pending
            task, item = flight.popleft()
            if isinstance(item, Outcome):
                collect()
                report(item)
                return
            try:
                result, pngs = item.result()
            except ModelError:
                raise  # the model cannot load: no image can be done
            except (DeepcreamError, MemoryError) as exc:
                collect()
                report(failure(task, ENGINE_FAILED, exc))
                return
            collect()  # the previous image's write finished while this one ran
            pending = saver.submit(_save, task, pngs or [], result)

        try:
            for task, job in _prepared_jobs(decensorer, tasks, options, stop, prefetch):
                if isinstance(job, Outcome):
                    flight.append((task, job))
                elif job.regions == 0:
                    flight.append((task, failure(task, NOTHING_TO_DO,
                                                 f"{job.notice}; skipped (no output written)")))
                else:
                    if on_start is not None:
                        on_start(task, len(job.plans))
                    flight.append((task, filler.submit(fill, job)))
                del job
                while len(flight) >= in_engine:
                    settle_first()
            while flight:
                settle_first()
            collect()
        finally:
            for _, item in flight:  # an error: let the images in the engine finish first
                if isinstance(item, Future):
                    item.exception()
            if pending is not None:  # an error or a second Ctrl+C: still finish the write
                pending.exception()
    return finished
