"""`deepcream fetch-model`: download the DCPv2 release zip and convert it."""

from __future__ import annotations

import argparse
import time


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "fetch-model",
        help="download the DCPv2 model release and convert it",
        description="Download the public DCPv2 model zip (Google Drive, via gdown) or --url, "
        "unpack its checkpoints to a temp folder and convert them into the models folder. "
        "Nothing is left behind if the download or the zip is bad.",
    )
    parser.add_argument("--url", help="download from this URL instead (a Google Drive link, or "
                        "http(s):// or file:// to a copy of the release zip)")
    parser.add_argument("-o", "--models", dest="models", metavar="DIR",
                        help="models folder (default: $DEEPCREAM_MODELS or ~/.cache/deepcream/models)")
    parser.add_argument("--force", action="store_true", help="replace existing models")
    parser.add_argument("--max-download-mb", type=float, default=1024, metavar="MB",
                        help="stop and refuse a download larger than this (default 1024; the "
                        "DCPv2 release zip is ~275 MB)")
    parser.add_argument("--verify", action="store_true",
                        help="check the models against TensorFlow (needs: pip install 'deepcream[tf]')")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from deepcream.convert import require_tensorflow
    from deepcream.fetch import fetch_model
    from deepcream.models import models_dir

    if args.verify:
        require_tensorflow()  # say so before a long download
    dest = models_dir(args.models)
    start = time.perf_counter()
    if not args.max_download_mb > 0:
        from deepcream.errors import DeepcreamError

        raise DeepcreamError(f"--max-download-mb must be > 0, got {args.max_download_mb:g}")
    paths = fetch_model(dest, args.url, force=args.force, verify=args.verify, report=print,
                        max_bytes=int(args.max_download_mb * 1e6))
    for path in paths:
        print(f"installed {path} ({path.stat().st_size / 1e6:.1f} MB)")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0
