"""`deepcream bench`: time deepcream and its baselines on the reference workload.

A thin verb over the benchmark package ``deepcream_bench`` (repository folder ``benchmarks/``),
imported only when the verb runs; without the ``bench`` extra it says how to install it.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "bench",
        help="benchmark deepcream against its baselines on the reference workload",
        description="Time deepcream (and, when installed, the TensorFlow original graph, the "
        "tf2onnx write-up approach and the published service's pipeline) on a synthetic image "
        "with the reference workload's geometry. Each implementation runs in its own "
        "subprocess. Writes bench-results.json, bench-results.md and bench-results.png.",
    )
    p.add_argument("--out", default="bench-results", metavar="DIR",
                   help="output folder (default: ./bench-results)")
    p.add_argument("--quick", action="store_true",
                   help="short run: 2 timed runs, deepcream and the baselines only")
    p.add_argument("--only", metavar="NAMES",
                   help="comma-separated implementations to run (deepcream, deepcream-openvino, "
                   "deepcream-bf16, deepcream-int8, tensorflow, tf2onnx, service, service-own-model)")
    p.add_argument("--skip", metavar="NAMES", help="comma-separated implementations to leave out")
    p.add_argument("--runs", type=int, help="timed runs after the first (default 5; quick 2)")
    p.add_argument("--threads", type=int, help="intra-op threads (default: all usable CPUs)")
    p.add_argument("--models", metavar="DIR",
                   help="benchmark the bar.onnx/mosaic.onnx in DIR instead of the fixture models")
    p.add_argument("--scale", type=float, default=1.0,
                   help="shrink the workload image by this factor (default 1 = reference size)")
    p.add_argument("--cache", metavar="DIR",
                   help="where generated checkpoints and models are kept "
                   "(default ~/.cache/deepcream/bench)")
    p.add_argument("--experiments", nargs="?", const="all", metavar="NAMES",
                   help="also measure engine settings (batching, threads, arenas, backends); "
                   "comma-separated names or 'all'")
    p.add_argument("--profile", action="store_true",
                   help="also profile deepcream: pyinstrument over one image "
                   "(bench-profile.txt) and onnxruntime per-operator times")
    p.add_argument("--no-gemm", action="store_true", help="skip the GEMM speed measurement")
    p.set_defaults(func=run)
    return p


def _names(text: str | None) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def run(args: argparse.Namespace) -> int:
    from deepcream.errors import DeepcreamError

    try:
        from deepcream_bench.run import EXPERIMENTS, IMPLEMENTATIONS, QUICK_DEFAULT, run_bench
    except ModuleNotFoundError as exc:
        if (exc.name or "").startswith("deepcream."):
            raise  # our own module missing is a bug, not a missing extra
        raise DeepcreamError(f"the benchmark needs the bench extra ({exc.name} is not "
                             "installed): pip install 'deepcream[bench]'") from None

    names = _names(args.only) or list(QUICK_DEFAULT if args.quick else IMPLEMENTATIONS)
    skip = set(_names(args.skip))
    unknown = sorted((set(names) | skip) - set(IMPLEMENTATIONS))
    if unknown:
        raise DeepcreamError(f"unknown implementation(s) {', '.join(unknown)}; choose from "
                             f"{', '.join(IMPLEMENTATIONS)}")
    names = [n for n in names if n not in skip]
    experiments = _names(args.experiments)
    if experiments == ["all"]:
        experiments = list(EXPERIMENTS)
    bad = sorted(set(experiments) - set(EXPERIMENTS))
    if bad:
        raise DeepcreamError(f"unknown experiment(s) {', '.join(bad)}; choose from "
                             f"{', '.join(EXPERIMENTS)}")
    if not names:
        raise DeepcreamError("nothing to run: --only/--skip leave no implementation")
    if args.runs is not None and args.runs < 1:
        raise DeepcreamError("--runs must be at least 1")
    if args.threads is not None and args.threads < 1:
        raise DeepcreamError("--threads must be at least 1")
    run_bench(args.out, quick=args.quick, implementations=names, models=args.models,
              runs=args.runs, threads=args.threads, scale=args.scale, cache_dir=args.cache,
              gemm=not args.no_gemm, experiments=experiments, profile=args.profile)
    return 0
