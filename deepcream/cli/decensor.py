"""`deepcream decensor`: fill bar regions or restore mosaics in image files or folders."""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from deepcream.errors import DeepcreamError, InputError
from deepcream.folderjob import (
    INPUT_SUFFIXES,
    NOT_FOUND,
    NOTHING_TO_DO,
    Journal,
    Plan,
    Summary,
    list_images,
    originals_index,
    plan_tasks,
)
from deepcream.options import DEFAULT_MASK_COLOR, DEFAULT_MAX_REGIONS

if TYPE_CHECKING:  # heavy modules: imported when the verb runs
    from deepcream.decensorer import Decensorer
    from deepcream.options import DecensorOptions

NO_MASK = "no mask"
# How mask messages name settings on the command line (masks.PYTHON_WORDING's keys).
CLI_WORDING = {
    "tolerance": "--mask-tolerance {n}",
    "antialias": "--antialias",
    "color": "--mask-color",
    "mask": "--mask FILE",
    "and": " ",
}


def _color(text: str) -> tuple[int, int, int]:
    from deepcream.colors import parse_color

    try:
        return parse_color(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "decensor",
        help="fill mask-colored bars or restore mosaics in images",
        description="Fill regions painted in the mask color (bar mode) or restore pixelated "
        "regions (mosaic mode) with the DCPv2 models, or the classical engine when no model "
        "is installed. Pixels outside the regions are never changed; inputs are never "
        "overwritten. Exit status 1 when some image was not decensored.",
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", type=Path,
                   help="image files or folders of images (bar mode: images with mask-colored "
                   "regions; mosaic mode: the colored copies, or the mosaic images with --auto-mask)")
    p.add_argument("-o", "--output", type=Path, metavar="OUT",
                   help="output folder (created if missing; input folders are mirrored "
                   "under it); default: beside each input as NAME.decensored.png")
    p.add_argument("--overwrite", action="store_true",
                   help="redo images whose outputs exist (default: skip them, so a re-run "
                   "resumes an interrupted job)")
    p.add_argument("--mode", choices=("bar", "mosaic"), default=None,
                   help="default bar; with --dcp-folders, mosaic when "
                   "decensor_input_original/ holds originals of the inputs")
    p.add_argument("--original", type=Path, metavar="FILE|DIR",
                   help="mosaic mode: the unpainted original (one input) or a folder of "
                   "originals matched by base name (.png/.jpg/.jpeg/.webp)")
    p.add_argument("--mask", type=Path, metavar="FILE|DIR",
                   help="a separate mask image instead of painted strokes (white or any "
                   "non-black = fill, same size as the image), or a folder of masks matched "
                   "by relative path and base name (NAME.mask.png or NAME.png); the mask "
                   "color is then not used")
    p.add_argument("--mask-color", type=_color, default=DEFAULT_MASK_COLOR, metavar="COLOR",
                   help="the color the regions are painted in: #00ff00, 00ff00, R,G,B or a "
                   "CSS color name (default #00ff00)")
    p.add_argument("--mask-tolerance", type=int, default=None, metavar="N",
                   help="manual override of the mask finder: accept pixels within N per "
                   "channel of the mask color (0 = the exact color only, as DeepCreamPy). "
                   "Default: find the painted strokes however they were saved (exact, "
                   "anti-aliased or JPEG)")
    p.add_argument("--antialias", action="store_true",
                   help="with --mask-tolerance: also fill anti-aliased edge pixels around "
                   "the mask")
    p.add_argument("--auto-mask", action="store_true",
                   help="mosaic mode without a colored copy: detect the mosaic automatically")
    p.add_argument("--variations", type=int, choices=(1, 2, 4), default=1,
                   help="outputs per image, from flipped inputs (default 1)")
    p.add_argument("--engine", choices=("auto", "onnx", "classical"), default="auto",
                   help="auto = onnx when the model is installed, else classical")
    p.add_argument("--models", type=Path, metavar="DIR", help="models folder")
    p.add_argument("--backend", choices=("auto", "onnxruntime", "openvino", "cuda", "directml",
                                         "coreml"), default="auto",
                   help="auto = a GPU execution provider when onnxruntime has one (cuda: "
                   "onnxruntime-gpu, directml: onnxruntime-directml, coreml: macOS), else "
                   "onnxruntime on the CPU")
    p.add_argument("--precision", choices=("fp32", "bf16", "int8"), default="fp32",
                   help="fp32 is exact; bf16/int8 are faster approximations")
    p.add_argument("--threads", type=int, metavar="N", help="inference threads")
    p.add_argument("--max-regions", type=int, default=DEFAULT_MAX_REGIONS, metavar="N",
                   help=f"refuse images with more than N separate regions (default "
                   f"{DEFAULT_MAX_REGIONS}; images with many small regions fill them in shared crops)")
    p.add_argument("--dcp-folders", type=Path, metavar="ROOT",
                   help="read ROOT/decensor_input (and decensor_input_original) and write "
                   "ROOT/decensor_output/'NAME VARIATION.png', as DeepCreamPy does")
    p.add_argument("--ray", metavar="auto|local|ADDRESS",
                   help="run the job on a Ray cluster (pip install 'deepcream[ray]'): auto = "
                   "the cluster `ray start --head` runs here (or $RAY_ADDRESS), local = a "
                   "private one-machine cluster, or HOST:PORT / ray://HOST:10001; inputs, "
                   "outputs and --models must be at the same paths on every node")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or per-file lines")
    p.set_defaults(func=run)
    return p


def _prepare_output_dir(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise DeepcreamError(f"output {folder} exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # Probe with a real file: permission bits alone say nothing for root or ACLs.
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise DeepcreamError(f"output folder {folder} is not writable "
                             f"({exc.strerror or exc})") from None


def _find_mask(source: Path, root: Path | None, masks: Path) -> Path | None:
    """``NAME.mask.EXT`` (what ``detect-mosaic`` writes) first, then ``NAME.EXT``, at the
    source's path relative to its input folder; never the input itself (masks may sit beside
    the images)."""
    rel = source.relative_to(root) if root is not None else Path(source.name)
    folder = masks / rel.parent
    for stem in (f"{rel.stem}.mask", rel.stem):
        for suffix in INPUT_SUFFIXES:
            for candidate in (folder / f"{stem}{suffix}", folder / f"{stem}{suffix.upper()}"):
                if candidate.is_file() and candidate.resolve() != source.resolve():
                    return candidate
    return None


def _read_mask_file(mask: Path, source: Path) -> object:
    """One ``--mask FILE``, read up front: a bad mask stops the run (exit 2) before any work."""
    from PIL import Image

    from deepcream.masks import load_mask_file

    try:
        with Image.open(source) as img:  # header only: the image's size
            size = img.size
    except (OSError, ValueError):
        return mask  # the image's own error is reported when it is decoded
    return load_mask_file(mask, size, name=f"--mask {mask}")


def _pair_masks(args: argparse.Namespace, sources: list[tuple[Path, Path | None]],
                errors: list[tuple[Path, str, str]]) -> dict[Path, object]:
    """Each input's mask (``--mask FILE|DIR``); inputs without one go to ``errors`` and out
    of ``sources``, masks found among the inputs are not inputs themselves."""
    masks: Path = args.mask
    if args.original or args.auto_mask or args.dcp_folders is not None:
        raise InputError("--mask says where to fill: drop --original, --auto-mask and "
                         "--dcp-folders")
    if not masks.exists():
        raise InputError(f"--mask {masks}: no such file or folder")
    if args.output is not None and masks.is_dir() and args.output.resolve() == masks.resolve():
        raise InputError("-o must not be the --mask folder (outputs would replace masks)")
    if masks.is_file():
        if len(sources) != 1:
            raise InputError("--mask FILE works with one input; give a folder of masks "
                             "matched by base name")
        return {sources[0][0]: _read_mask_file(masks, sources[0][0])}
    found = {source: _find_mask(source, root, masks) for source, root in sources}
    used = {m.resolve() for m in found.values() if m is not None}
    paired: dict[Path, object] = {}
    kept = []
    for source, root in sources:
        if source.resolve() in used:
            continue  # a mask beside its image
        mask = found[source]
        if mask is None:
            errors.append((source, NO_MASK, f"{source}: no mask named {source.stem}.mask.png "
                           f"or {source.stem}.png (any image type) in {masks}"))
            continue
        paired[source] = mask
        kept.append((source, root))
    sources[:] = kept
    return paired


def _dcp_mode(args: argparse.Namespace, sources: list[Path], originals: Path) -> str:
    """--dcp-folders without --mode: mosaic when decensor_input_original/ holds originals of
    the inputs (as DCP's mosaic button expects), else bar; says which and why."""
    index = originals_index(originals, recursive=False) if originals.is_dir() else {}
    matched = sum(1 for s in sources if s.stem in index)
    if matched:
        print(f"deepcream: notice: mosaic mode: {originals} holds originals for {matched} of "
              f"{len(sources)} inputs (--mode bar to fill them as bars)", file=sys.stderr)
        return "mosaic"
    print(f"deepcream: notice: bar mode: no originals matching the inputs in {originals} "
          "(--mode mosaic needs them)", file=sys.stderr)
    return "bar"


def _plan(args: argparse.Namespace) -> tuple[Plan, Path | None]:
    dcp = args.dcp_folders is not None
    errors: list[tuple[Path, str, str]] = []
    sources: list[tuple[Path, Path | None]] = []
    if dcp:
        if args.inputs or args.output or args.original:
            raise InputError("--dcp-folders replaces INPUT, -o and --original")
        root = args.dcp_folders
        in_dir = root / "decensor_input"
        if not in_dir.is_dir():
            raise InputError(f"{in_dir} is not a folder (DCP layout: decensor_input/, "
                             "decensor_input_original/, decensor_output/)")
        out_dir: Path | None = root / "decensor_output"
        # DCP reads its input folder only, not subfolders.
        found = list_images(in_dir, (".png",), recursive=False)
        if not found:
            raise InputError(f"no PNG images in {in_dir}")
        sources = [(f, in_dir) for f in found]
        originals: Path | None = root / "decensor_input_original"
        if args.mode is None:
            args.mode = "bar" if args.auto_mask else _dcp_mode(args, found, originals)
        if args.mode == "bar" or args.auto_mask:
            originals = None
        elif not originals.is_dir():
            raise InputError(f"mosaic mode needs the originals folder {originals}")
    else:
        if not args.inputs:
            raise InputError("no input: give image files or folders (or --dcp-folders ROOT)")
        args.mode = args.mode or "bar"
        out_dir = args.output
        originals = args.original
        for item in args.inputs:
            if item.is_dir():
                # An output folder inside the input folder is never read.
                exclude = ([out_dir] if out_dir is not None
                           and out_dir.resolve() != item.resolve() else [])
                found = list_images(item, INPUT_SUFFIXES, exclude=exclude)
                if not found:
                    errors.append((item, NOT_FOUND, f"{item}: no images in this folder"))
                sources.extend((f, item) for f in found)
            elif item.exists():
                sources.append((item, None))
            else:
                errors.append((item, NOT_FOUND, f"{item}: no such file or folder"))
    masks = _pair_masks(args, sources, errors) if args.mask is not None else {}
    if args.mode == "mosaic" and not args.auto_mask and originals is None and not masks:
        raise InputError("mosaic mode needs --original FILE|DIR (the unpainted images), "
                         "--mask FILE|DIR or --auto-mask")
    if args.auto_mask and originals is not None and not dcp:
        raise InputError("--auto-mask finds the mosaic in the inputs themselves: drop --original")
    if args.mode == "bar" and (args.original or args.auto_mask):
        raise InputError("--original and --auto-mask are for --mode mosaic")
    if originals is not None and not originals.exists():
        raise InputError(f"{originals}: no such file or folder")
    if originals is not None and originals.is_file() and len(sources) > 1:
        raise InputError("--original FILE works with one input; give a folder of originals")
    plan = plan_tasks(sources, out_dir=out_dir, originals=originals,
                      variations=args.variations, dcp=dcp, overwrite=args.overwrite)
    plan.errors[:0] = errors
    for task in plan.tasks + plan.skipped:
        task.mask = masks.get(task.source)
    return plan, out_dir


def _check_models(args: argparse.Namespace) -> None:
    """--engine onnx without the model fails here, before any worker starts."""
    if args.engine != "onnx":
        return
    from deepcream.models import installed_models, models_dir

    folder = models_dir(args.models)
    if args.mode not in installed_models(folder):
        raise InputError(f"no {args.mode} model in {folder}: install one with `deepcream "
                         "fetch-model` or `deepcream convert`, or use --engine classical")


def _journal_folder(args: argparse.Namespace, out_dir: Path | None) -> Path | None:
    """The output folder; without -o, the input folder when the only input is a folder
    (outputs go beside the inputs there); loose files without -o get no journal."""
    if out_dir is not None:
        return out_dir
    if len(args.inputs) == 1 and args.inputs[0].is_dir():
        return args.inputs[0]
    return None


def _names(tasks: list, limit: int = 3) -> str:
    shown = ", ".join(str(t.source) for t in tasks[:limit])
    return shown + (f" and {len(tasks) - limit} more" if len(tasks) > limit else "")


class _StopOnInterrupt:
    """First Ctrl+C (SIGINT) or SIGTERM: finish the images in flight, then stop; the second
    Ctrl+C interrupts at once (outputs are still never partial: they are written to a temp
    file and renamed)."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self._previous: dict[int, object] = {}

    def _handler(self, signum: int, _frame: object) -> None:
        if self.stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.stop.set()
        print("deepcream: stopping after the current image (Ctrl+C again to stop now)",
              file=sys.stderr, flush=True)

    def __enter__(self) -> _StopOnInterrupt:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


def _read_ahead(args: argparse.Namespace) -> None:
    """A one-image run reads and decodes its input in the background from its first line
    (libspng without the GIL, ``pngdecode``), while numpy, OpenCV, Pillow and the model are
    imported and loaded: decoding is then off the path to the first crop."""
    if len(args.inputs) == 1 and args.dcp_folders is None and not args.ray:
        from deepcream.pngdecode import read_ahead

        read_ahead(args.inputs[0])


def run(args: argparse.Namespace) -> int:
    _read_ahead(args)
    from deepcream import __version__
    from deepcream.decensorer import Decensorer
    from deepcream.malloc import tune_malloc
    from deepcream.options import DecensorOptions
    from deepcream.session import SessionOptions

    tune_malloc()  # this process is ours: keep freed image buffers out of RSS

    t_start = time.perf_counter()
    if args.mask_tolerance is not None and not 0 <= args.mask_tolerance <= 255:
        raise InputError(f"--mask-tolerance must be 0..255, got {args.mask_tolerance}")
    decensorer = Decensorer(engine=args.engine, models=args.models,
                            session=SessionOptions(backend=args.backend, threads=args.threads,
                                                   precision=args.precision))
    if args.dcp_folders is None and not args.ray:
        # The model loads in the background from here on, while the inputs are listed and
        # the first image is decoded and its regions found; a one-shot run needs no warm-up
        # (its first crop is its warm-up). A bad engine name is still reported below.
        decensorer.preload(args.mode or "bar")
    plan, out_dir = _plan(args)  # also settles the mode (--dcp-folders infers it)
    options = DecensorOptions(mode=args.mode, variations=args.variations,
                              mask_color=args.mask_color, mask_tolerance=args.mask_tolerance,
                              antialias=args.antialias, auto_mask=args.auto_mask,
                              max_regions=args.max_regions, wording=CLI_WORDING)
    engine_class = decensorer.engine_class(args.mode)  # a bad engine name fails here
    tasks = plan.tasks
    summary = Summary()
    _announce(plan, summary)
    total = len(tasks) + len(plan.skipped) + len(plan.errors)
    if out_dir is not None and tasks:
        _prepare_output_dir(out_dir)
    if not tasks:
        if plan.skipped and not plan.errors:
            print(f"deepcream: {summary.line(total, 'none', time.perf_counter() - t_start)}",
                  file=sys.stderr if args.quiet else sys.stdout)
            return 0
        print("deepcream: nothing to decensor", file=sys.stderr)
        return 1 if plan.errors else 2

    if args.ray:
        _check_models(args)
    else:
        decensorer.preload(args.mode)  # a no-op when it started above
    quiet = args.quiet or not sys.stderr.isatty()
    text = {"Software": f"deepcream {__version__}"}  # the engine's name is added per output

    ray_engine: list[str] = []  # with --ray the workers load the engine

    def engine_name() -> str:
        if args.ray:
            return next((e for e in ray_engine if e), engine_class.name)
        try:
            return decensorer.engine(args.mode).describe()
        except DeepcreamError:  # did not load: the error was reported
            return engine_class.name

    folder = _journal_folder(args, out_dir)
    journal = Journal(folder) if folder is not None else None
    stop = threading.Event()
    try:
        _run_tasks(args, decensorer, tasks, options, text=text, summary=summary,
                   journal=journal, engine_name=engine_name, ray_engine=ray_engine,
                   shown_engine=engine_class.name, stop=stop, quiet=quiet)
    finally:
        if journal is not None:
            journal.close()
    summary.interrupted = stop.is_set() and summary.done + summary.total_failed - len(
        plan.errors) < len(tasks)
    seconds = time.perf_counter() - t_start
    used = engine_name()
    print(f"deepcream: {summary.line(total, used, seconds)}",
          file=sys.stderr if args.quiet else sys.stdout)
    if summary.done and used.startswith("classical") and not args.quiet:
        from deepcream.models import CLASSICAL_HINT

        print(f"deepcream: notice: {CLASSICAL_HINT}", file=sys.stderr)
    if summary.interrupted:
        return 130
    return 1 if summary.total_failed else 0


def _announce(plan: Plan, summary: Summary) -> None:
    """One line per planning error, and one notice each for ignored and skipped inputs."""
    for _path, reason, message in plan.errors:
        summary.failed[reason] += 1
        print(f"deepcream: error: {message}", file=sys.stderr)
    if plan.ignored:
        print(f"deepcream: notice: ignoring {len(plan.ignored)} deepcream output(s) among the "
              f"inputs ({', '.join(map(str, plan.ignored[:3]))}"
              f"{' ...' if len(plan.ignored) > 3 else ''}): outputs are never inputs",
              file=sys.stderr)
    if plan.skipped:
        summary.skipped["output exists"] += len(plan.skipped)
        print(f"deepcream: notice: skipping {len(plan.skipped)} image(s) whose outputs exist "
              f"({_names(plan.skipped)}); --overwrite redoes them", file=sys.stderr)


def _run_tasks(args: argparse.Namespace, decensorer: Decensorer, tasks: list,
               options: DecensorOptions, *, text: dict[str, str], summary: Summary,
               journal: Journal | None, engine_name: Callable[[], str], ray_engine: list[str],
               shown_engine: str, stop: threading.Event, quiet: bool) -> None:
    """Run the tasks here (pipelined) or on Ray, with progress bars and one line per image."""
    import logging

    from deepcream.folderjob import Outcome, run_tasks

    log = logging.getLogger("deepcream.decensor")
    if quiet or args.ray:  # no bars: tqdm (and its imports) are not needed
        tqdm = _PlainLines
    else:
        from tqdm import tqdm
    with tqdm(total=len(tasks), desc="images", unit="img") as img_bar, \
            tqdm(desc="regions", unit="crop", leave=False) as region_bar:

        def started(task: object, crops: int) -> None:
            # Two images can be in the engine at once: the bar counts the crops of every
            # image started so far, not one image's.
            region_bar.total = (region_bar.total or 0) + crops
            region_bar.refresh()

        def finished(outcome: Outcome) -> None:
            task = outcome.task
            summary.add(outcome)
            ray_engine.append(outcome.engine)
            if journal is not None:
                journal.record(outcome, engine_name())
            img_bar.update(1)
            if outcome.status != "done":
                kind = "warning" if outcome.reason == NOTHING_TO_DO else "error"
                tqdm.write(f"deepcream: {kind}: {outcome.message}", file=sys.stderr)
                return
            # one line per file: the warning, else the note on how the mask was read
            if outcome.warning:
                tqdm.write(f"deepcream: warning: {task.source}: {outcome.warning}",
                           file=sys.stderr)
            elif outcome.mask_note and not args.quiet:
                tqdm.write(f"deepcream: note: {task.source}: {outcome.mask_note}",
                           file=sys.stderr)
            log.debug("%s: %s", task.source,
                      ", ".join(f"{k} {v:.3f} s" for k, v in outcome.timings.items()))
            if not args.quiet:
                names = ", ".join(str(p) for p in task.write)
                tqdm.write(f"{task.source} -> {names} ({outcome.regions} regions, "
                           f"{shown_engine})", file=sys.stdout)

        if args.ray:
            from deepcream.raybatch import run_ray

            models = str(args.models.resolve()) if args.models else None
            run_ray(tasks, options, address=args.ray, engine=args.engine, models=models,
                    session=decensorer.session, software=text["Software"],
                    on_outcome=finished, progress=not quiet)
        else:
            with _StopOnInterrupt(stop):
                run_tasks(decensorer, tasks, options, on_outcome=finished, text=text,
                          stop=stop, on_start=started, on_filled=region_bar.update)


class _PlainLines:
    """What the decensor loop uses of tqdm when no progress bar is shown: lines go straight
    to their stream and the bars do nothing."""

    total: int | None = None

    def __init__(self, *_: object, **__: object) -> None:
        pass

    def __enter__(self) -> _PlainLines:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def update(self, *_: object) -> None:
        pass

    def refresh(self) -> None:
        pass

    @staticmethod
    def write(line: str, file: object = None) -> None:
        print(line, file=file or sys.stdout, flush=True)
