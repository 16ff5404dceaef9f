"""`deepcream models`: list installed models, or say how to get them."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "models", help="list installed models (or how to install them)",
        description="List the converted models in the models folder and check their sha256 "
        "against manifest.json.",
    )
    parser.add_argument("--models", metavar="DIR",
                        help="models folder (default: $DEEPCREAM_MODELS or ~/.cache/deepcream/models)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from deepcream.models import HOW_TO_INSTALL, MODELS_VS_CLASSICAL, describe_models, models_dir

    folder = models_dir(args.models)
    infos = describe_models(folder)
    print(f"models folder: {folder}")
    print(MODELS_VS_CLASSICAL)
    if not infos:
        print(HOW_TO_INSTALL)
        return 0
    print(f"{'mode':<7} {'file':<12} {'size':>8}  {'sha256':<10} {'step':>7}  attention")
    bad = False
    for info in infos:
        status = {True: "ok", False: "MISMATCH", None: "unknown"}[info.sha256_ok]
        bad |= info.sha256_ok is False
        step = "?" if info.source_step is None else str(info.source_step)
        print(f"{info.mode:<7} {info.path.name:<12} {info.size / 1e6:>6.1f}MB  {status:<10} "
              f"{step:>7}  {info.attention or '?'}")
    if bad:
        print("a model does not match its manifest sha256: convert it again with --force")
    return 1 if bad else 0
