"""`deepcream decensor`: fill bar regions or restore mosaics in image files or folders."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from deepcream.errors import DeepcreamError, InputError

# Files a folder input contributes; DCP's --dcp-folders layout reads only PNGs, like DCP.
INPUT_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
ORIGINAL_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


@dataclass
class Task:
    source: Path
    original: Path | None
    outputs: list[Path] = field(default_factory=list)


def _color(text: str) -> tuple[int, int, int]:
    parts = text.replace(" ", "").split(",")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3 or not all(0 <= v <= 255 for v in values):
        raise argparse.ArgumentTypeError(f"expected R,G,B with values 0..255, got {text!r}")
    return values  # type: ignore[return-value]


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
                   help="output folder (created if missing); default: beside each input as "
                   "NAME.decensored.png")
    p.add_argument("--mode", choices=("bar", "mosaic"), default="bar")
    p.add_argument("--original", type=Path, metavar="FILE|DIR",
                   help="mosaic mode: the unpainted original (one input) or a folder of "
                   "originals matched by base name (.png/.jpg/.jpeg/.webp)")
    p.add_argument("--mask-color", type=_color, default=(0, 255, 0), metavar="R,G,B",
                   help="the color the regions are painted in (default 0,255,0)")
    p.add_argument("--mask-tolerance", type=int, default=0, metavar="N",
                   help="also accept pixels within N per channel of the mask color (default 0)")
    p.add_argument("--antialias", action="store_true",
                   help="also fill anti-aliased edge pixels around the mask")
    p.add_argument("--auto-mask", action="store_true",
                   help="mosaic mode without a colored copy: detect the mosaic automatically")
    p.add_argument("--variations", type=int, choices=(1, 2, 4), default=1,
                   help="outputs per image, from flipped inputs (default 1)")
    p.add_argument("--engine", choices=("auto", "onnx", "classical"), default="auto",
                   help="auto = onnx when the model is installed, else classical")
    p.add_argument("--models", type=Path, metavar="DIR", help="models folder")
    p.add_argument("--backend", choices=("auto", "onnxruntime", "openvino"), default="auto")
    p.add_argument("--precision", choices=("fp32", "bf16", "int8"), default="fp32",
                   help="fp32 is exact; bf16/int8 are faster approximations")
    p.add_argument("--threads", type=int, metavar="N", help="inference threads")
    p.add_argument("--max-regions", type=int, default=None, metavar="N",
                   help="refuse images with more than N separate regions (default 100000; "
                   "images with many small regions fill them in shared crops)")
    p.add_argument("--dcp-folders", type=Path, metavar="ROOT",
                   help="read ROOT/decensor_input (and decensor_input_original) and write "
                   "ROOT/decensor_output/'NAME VARIATION.png', as DeepCreamPy does")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or per-file lines")
    p.set_defaults(func=run)
    return p


def _images_in(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return sorted(f for f in folder.iterdir()
                  if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in suffixes)


def _find_original(source: Path, originals: Path) -> Path | None:
    for candidate in _images_in(originals, ORIGINAL_SUFFIXES):
        if candidate.stem == source.stem:
            return candidate
    return None


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


def _output_names(source: Path, out_dir: Path | None, variations: int, dcp: bool) -> list[Path]:
    stem = source.stem
    if dcp:
        return [out_dir / f"{stem} {v}.png" for v in range(variations)]  # DCP's names
    folder = out_dir if out_dir is not None else source.parent
    if out_dir is None:
        stem += ".decensored"
    if variations == 1:
        return [folder / f"{stem}.png"]
    return [folder / f"{stem} {v}.png" for v in range(variations)]


def _plan(args: argparse.Namespace, errors: list[str]) -> tuple[list[Task], Path | None]:
    dcp = args.dcp_folders is not None
    if dcp:
        if args.inputs or args.output or args.original:
            raise InputError("--dcp-folders replaces INPUT, -o and --original")
        root = args.dcp_folders
        in_dir = root / "decensor_input"
        if not in_dir.is_dir():
            raise InputError(f"{in_dir} is not a folder (DCP layout: decensor_input/, "
                             "decensor_input_original/, decensor_output/)")
        sources = _images_in(in_dir, (".png",))
        if not sources:
            raise InputError(f"no PNG images in {in_dir}")
        out_dir: Path | None = root / "decensor_output"
        originals: Path | None = root / "decensor_input_original"
        if args.mode == "bar" or args.auto_mask:
            originals = None
        elif not originals.is_dir():
            raise InputError(f"mosaic mode needs the originals folder {originals}")
    else:
        if not args.inputs:
            raise InputError("no input: give image files or folders (or --dcp-folders ROOT)")
        out_dir = args.output
        originals = args.original
        sources = []
        for item in args.inputs:
            if item.is_dir():
                found = _images_in(item, INPUT_SUFFIXES)
                if not found:
                    errors.append(f"{item}: no images in this folder")
                sources.extend(found)
            elif item.exists():
                sources.append(item)
            else:
                errors.append(f"{item}: no such file or folder")
    if args.mode == "mosaic" and not args.auto_mask and originals is None:
        raise InputError("mosaic mode needs --original FILE|DIR (the unpainted images) "
                         "or --auto-mask")
    if args.auto_mask and originals is not None and not dcp:
        raise InputError("--auto-mask finds the mosaic in the inputs themselves: drop --original")
    if args.mode == "bar" and (args.original or args.auto_mask):
        raise InputError("--original and --auto-mask are for --mode mosaic")
    if originals is not None and originals.is_file() and len(sources) > 1:
        raise InputError("--original FILE works with one input; give a folder of originals")
    if originals is not None and not originals.exists():
        raise InputError(f"{originals}: no such file or folder")

    inputs = {s.resolve() for s in sources}
    if originals is not None:
        inputs |= {o.resolve() for o in ([originals] if originals.is_file()
                                         else _images_in(originals, ORIGINAL_SUFFIXES))}
    taken: set[Path] = set()
    tasks = []
    for source in sources:
        original = None
        if originals is not None:
            original = originals if originals.is_file() else _find_original(source, originals)
            if original is None:
                errors.append(f"{source}: no original named {source.stem}.png/.jpg/.jpeg/.webp "
                              f"in {originals}")
                continue
        names = _output_names(source, out_dir, args.variations, dcp)
        # Never overwrite an input, and never let two inputs of this run share an output.
        base, counter = names, 1
        while any(n.resolve() in inputs or n.resolve() in taken for n in names):
            tag = ".decensored" if counter == 1 else f".decensored-{counter}"
            names = [n.with_name(f"{n.stem}{tag}{n.suffix}") for n in base]
            counter += 1
        taken |= {n.resolve() for n in names}
        tasks.append(Task(source, original, names))
    return tasks, out_dir


def run(args: argparse.Namespace) -> int:
    import logging

    from tqdm import tqdm

    from deepcream import __version__
    from deepcream.engines import tune_malloc
    from deepcream.imageio import write_file
    from deepcream.pipeline import prepare, resolve_engine, run_job

    tune_malloc()  # this process is ours: keep freed image buffers out of RSS

    log = logging.getLogger("deepcream.decensor")
    t_start = time.perf_counter()
    if args.mask_tolerance < 0 or args.mask_tolerance > 255:
        raise InputError(f"--mask-tolerance must be 0..255, got {args.mask_tolerance}")
    from deepcream.regions import DEFAULT_MAX_REGIONS

    max_regions = DEFAULT_MAX_REGIONS if args.max_regions is None else args.max_regions
    if max_regions < 1:
        raise InputError(f"--max-regions must be >= 1, got {max_regions}")
    errors: list[str] = []
    tasks, out_dir = _plan(args, errors)
    for message in errors:
        print(f"deepcream: error: {message}", file=sys.stderr)
    if out_dir is not None and tasks:
        _prepare_output_dir(out_dir)
    if not tasks:
        print("deepcream: nothing to decensor", file=sys.stderr)
        return 1 if errors else 2

    engine = resolve_engine(args.engine, args.mode, args.models, backend=args.backend,
                            threads=args.threads, precision=args.precision)
    engine_name = engine.describe()
    log.info("engine: %s", engine_name)
    quiet = args.quiet or not sys.stderr.isatty()
    tally = {"done": 0, "regions": 0, "failed": len(errors)}
    text = {"Software": f"deepcream {__version__}", "deepcream-engine": engine_name}

    def report_error(task: Task, exc: BaseException) -> None:
        tally["failed"] += 1
        message = "out of memory" if isinstance(exc, MemoryError) else str(exc)
        if str(task.source) not in message:
            message = f"{task.source}: {message}"
        tqdm.write(f"deepcream: error: {message}", file=sys.stderr)

    def save_all(pngs: list[bytes], outputs: list[Path]) -> float:
        t0 = time.perf_counter()
        for png, path in zip(pngs, outputs, strict=True):
            write_file(png, path)
        return time.perf_counter() - t0

    def collect(pending) -> None:
        task, result, future = pending
        try:
            result.timings["save"] = future.result()
        except (DeepcreamError, MemoryError) as exc:
            report_error(task, exc)
            return
        log.debug("%s: %s", task.source,
                  ", ".join(f"{k} {v:.3f} s" for k, v in result.timings.items()))
        tally["done"] += 1
        tally["regions"] += result.regions
        if not args.quiet:
            names = ", ".join(str(p) for p in task.outputs)
            tqdm.write(f"{task.source} -> {names} ({result.regions} regions, {engine.name})",
                       file=sys.stdout)

    # Writing one image's files overlaps the decoding and inference of the next; at most one
    # finished image waits in memory.
    pending = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="deepcream-save") as saver, \
            tqdm(total=len(tasks), desc="images", unit="img", disable=quiet) as img_bar, \
            tqdm(desc="regions", unit="crop", disable=quiet, leave=False) as region_bar:
        for task in tasks:
            try:
                job = prepare(task.source, mode=args.mode, original=task.original,
                              variations=args.variations, mask_color=args.mask_color,
                              mask_tolerance=args.mask_tolerance, antialias=args.antialias,
                              auto_mask=args.auto_mask, engine=engine,
                              max_regions=max_regions)
                if job.regions == 0:
                    tally["failed"] += 1
                    tqdm.write(f"deepcream: notice: {task.source}: {job.notice}; skipped "
                               "(no output written)", file=sys.stderr)
                    continue
                if job.warning:
                    tqdm.write(f"deepcream: warning: {task.source}: {job.warning}", file=sys.stderr)
                region_bar.reset(total=len(job.plans))
                # fills, pastes and PNG-encodes in one overlapped pass (pipeline.run_job)
                result, pngs = run_job(engine, job, png=True, text=text,
                                       on_filled=region_bar.update)
                if pending is not None:
                    collect(pending)
                pending = (task, result, saver.submit(save_all, pngs, task.outputs))
            except (DeepcreamError, MemoryError) as exc:
                report_error(task, exc)
            finally:
                img_bar.update(1)
        if pending is not None:
            collect(pending)
    done, regions_total, failed = tally["done"], tally["regions"], tally["failed"]
    seconds = time.perf_counter() - t_start
    total = len(tasks) + len(errors)
    print(f"deepcream: {done} of {total} images done, {regions_total} regions filled, "
          f"engine {engine_name}, {seconds:.2f} s", file=sys.stderr if args.quiet else sys.stdout)
    return 1 if failed else 0
