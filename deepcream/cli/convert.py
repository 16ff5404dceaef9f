"""`deepcream convert`: TF checkpoints (release folder or one checkpoint) -> ONNX models."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "convert",
        help="convert the DCPv2 TensorFlow checkpoints into ONNX models",
        description="Convert the DCPv2 model release (a folder holding bar/ and mosaic/, or the "
        "folder it unzipped to) or one checkpoint folder/prefix into bar.onnx / mosaic.onnx "
        "plus manifest.json. Needs no TensorFlow (except for --verify).",
    )
    parser.add_argument("src", help="release zip or folder, checkpoint folder or checkpoint prefix")
    parser.add_argument("-o", "--output", "--models", dest="output", metavar="MODELS_DIR",
                        help="where to write the models (default: $DEEPCREAM_MODELS or "
                        "~/.cache/deepcream/models)")
    parser.add_argument("--mode", "--kind", dest="mode", choices=["bar", "mosaic"],
                        help="which model SRC is (guessed from the folder name bar/mosaic or the "
                        "training step); with a release folder: convert only this one")
    parser.add_argument("--force", action="store_true", help="replace existing models")
    parser.add_argument("--attention", choices=["dense", "sparse"],
                        help="attention variant of the graph (same results; default: the "
                        "graph builder's)")
    parser.add_argument("--verify", action="store_true",
                        help="compare each model with the checkpoint's own TensorFlow graph on "
                        "random crops before writing it (needs: pip install 'deepcream[tf]')")
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="largest max-abs difference --verify accepts (default 1e-4)")
    parser.set_defaults(func=run)
    return parser


def _checkpoint_file(path: Path) -> bool:
    """A checkpoint's own file (``.index``, ``.meta``, ``.data-NNNNN-of-NNNNN``), which
    ``convert`` takes as naming its checkpoint."""
    return path.suffix in (".index", ".meta") or ".data-" in path.name


def run(args: argparse.Namespace) -> int:
    import zipfile

    from deepcream.convert import convert
    from deepcream.errors import DeepcreamError
    from deepcream.models import models_dir, read_manifest

    out_dir = models_dir(args.output)
    start = time.perf_counter()
    src = Path(args.src)
    if src.is_file() and (zipfile.is_zipfile(src) or src.suffix.lower() == ".zip"
                          or not _checkpoint_file(src)):
        # A zip (or what should be one: install_zip says what the file really is).
        from deepcream.fetch import install_zip

        if args.mode or args.attention or args.tolerance != 1e-4:
            raise DeepcreamError("--mode, --attention and --tolerance need an unzipped folder")
        paths = install_zip(args.src, out_dir, force=args.force, verify=args.verify,
                            report=print)
    else:
        paths = convert(args.src, out_dir, mode=args.mode, force=args.force,
                        attention=args.attention, verify=args.verify, tolerance=args.tolerance,
                        report=print)
    elapsed = time.perf_counter() - start
    models = read_manifest(out_dir)["models"]
    for path in paths:
        mode = path.stem
        info = models.get(mode, {})
        size_mb = path.stat().st_size / 1e6
        print(f"wrote {path} ({size_mb:.1f} MB, sha256 {info.get('sha256', '?')[:12]}…, "
              f"attention {info.get('attention')})")
    print(f"wrote {out_dir / 'manifest.json'}; done in {elapsed:.1f} s")
    return 0
