"""The `deepcream` command. One module per verb in this package; only the CLI knows argv.

Each verb module defines ``register(subparsers) -> argparse.ArgumentParser`` (which must set
``func`` via ``set_defaults``) and keeps heavy imports inside its run function so that
``deepcream --help`` starts fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from deepcream import __version__
from deepcream.errors import DeepcreamError

# Verb modules, in the order `deepcream --help` lists them.
VERBS = ["decensor", "convert", "models", "fetch_model", "detect_mosaic", "serve", "bench"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepcream",
        description="Fill bar-censored and restore mosaic regions of illustrations "
        "(DeepCreamPy v2 models on ONNX Runtime, or a classical engine).",
    )
    parser.add_argument("--version", action="version", version=f"deepcream {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND")
    for name in VERBS:
        module = importlib.import_module(f"deepcream.cli.{name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except DeepcreamError as exc:
        print(f"deepcream: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("deepcream: interrupted", file=sys.stderr)
        return 130


def single_thread_blas() -> None:
    """One OpenBLAS thread unless the user chose otherwise; call before numpy is imported.

    numpy's OpenBLAS starts a thread per core at import, and they busy-wait after every
    matrix product. deepcream's products are small (mosaic period folding), and its cores
    are taken by onnxruntime's and the pipeline's own threads: on 2 cores the extra threads
    only burned CPU (numpy's import 137 -> 80 ms CPU, ``detect_mosaic`` on 2604x2513
    0.25-0.31 -> 0.14-0.18 s CPU, same or less wall; docs/performance.md)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def entry() -> None:
    """The ``deepcream`` command: run ``main``, then end the process at once. Every output
    is written and closed by then; the interpreter's teardown (freeing numpy, OpenCV and
    onnxruntime state) would only add ~0.1 s to each one-shot run."""
    single_thread_blas()
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
