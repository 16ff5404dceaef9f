"""`deepcream serve`: the web service and web page (FastAPI + uvicorn)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from deepcream.options import DEFAULT_MAX_REGIONS

if TYPE_CHECKING:  # every CLI run builds this verb's parser; only `serve` opens sockets
    import socket

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def register(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "serve",
        help="run the web service and web page",
        description="Serve the decensor API (POST /v1/decensor, drop-in /deepcreampy-bar and "
        "/deepcreampy-mosaic), the web page at /, health, readiness and Prometheus metrics. "
        "Models load and warm up at start; /readyz answers 200 once they have. See docs/server.md.",
    )
    p.add_argument("--host", default=DEFAULT_HOST,
                   help=f"address to listen on (default {DEFAULT_HOST}; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"port (default {DEFAULT_PORT}; 0 picks a free one and prints it)")
    p.add_argument("--models", metavar="DIR",
                   help="models folder (default $DEEPCREAM_MODELS or ~/.cache/deepcream/models)")
    p.add_argument("--engine", choices=("auto", "onnx", "classical"), default="auto",
                   help="auto: the DCPv2 models when installed, else classical (default)")
    p.add_argument("--max-upload-mb", type=float, default=50.0,
                   help="request body limit in MiB (default 50)")
    p.add_argument("--max-megapixels", type=float, default=40.0,
                   help="pixel limit per image, width x height (default 40)")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="seconds a decensor request may take before it gets 503 (default 120)")
    p.add_argument("--upload-timeout", type=float, default=60.0,
                   help="seconds a client has to send its whole upload; then 408 (default 60)")
    p.add_argument("--min-upload-kbps", type=float, default=10.0, metavar="KIB_S",
                   help="slowest average upload rate accepted after --upload-grace seconds; "
                   "slower bodies get 408 (KiB/s, default 10; 0 = no minimum)")
    p.add_argument("--upload-grace", type=float, default=5.0, metavar="S",
                   help="seconds an upload may take before the minimum rate applies (default 5)")
    p.add_argument("--header-timeout", type=float, default=10.0, metavar="S",
                   help="seconds a client has to send its request headers; then 408 (default 10)")
    p.add_argument("--queue", type=int, default=16,
                   help="decensor requests admitted at once; more get 503 + Retry-After (default 16)")
    p.add_argument("--batch-window-ms", type=float, default=5.0,
                   help="how long inference waits to merge crops of concurrent requests (default 5)")
    p.add_argument("--max-batch", type=int, default=1,
                   help="most crops per inference batch, merging concurrent requests; 1 = off "
                   "(default: it did not raise throughput on 2 cores, see docs/server.md)")
    p.add_argument("--max-regions", type=int, default=DEFAULT_MAX_REGIONS, metavar="N",
                   help=f"separate regions allowed per image; more get 422 (default "
                   f"{DEFAULT_MAX_REGIONS})")
    p.add_argument("--cpu-workers", type=int, default=2,
                   help="threads for decoding, region finding, paste-back, PNG (default 2)")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="allow browser pages from ORIGIN to call the API (repeatable; '*' for any)")
    p.add_argument("--no-warmup", action="store_true", help="skip the warm-up inference")
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.set_defaults(func=run)
    return p


def _bind(host: str, port: int) -> socket.socket:
    """Bind the listening socket ourselves so a busy port is one clear error line."""
    import socket

    from deepcream.errors import DeepcreamError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise DeepcreamError(f"cannot resolve --host {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise DeepcreamError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    # Listen now: clients that connect before uvicorn takes over wait instead of being refused.
    sock.listen(2048)
    return sock


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import uvicorn

    from deepcream.errors import DeepcreamError
    from deepcream.malloc import tune_malloc
    from deepcream.server import Settings, create_app
    from deepcream.server.metrics import Metrics
    from deepcream.server.protocol import header_timeout_protocol
    from deepcream.server.service import DecensorService

    tune_malloc()  # this process is ours: keep freed image buffers out of RSS

    for flag, ok, need in [
        ("--port", 0 <= args.port <= 65535, "0..65535"),
        ("--max-upload-mb", args.max_upload_mb > 0, "> 0"),
        ("--max-megapixels", args.max_megapixels > 0, "> 0"),
        ("--timeout", args.timeout > 0, "> 0"),
        ("--upload-timeout", args.upload_timeout > 0, "> 0"),
        ("--min-upload-kbps", args.min_upload_kbps >= 0, ">= 0"),
        ("--upload-grace", args.upload_grace >= 0, ">= 0"),
        ("--header-timeout", args.header_timeout > 0, "> 0"),
        ("--queue", args.queue >= 1, ">= 1"),
        ("--batch-window-ms", args.batch_window_ms >= 0, ">= 0"),
        ("--max-batch", args.max_batch >= 1, ">= 1"),
        ("--cpu-workers", args.cpu_workers >= 1, ">= 1"),
        ("--max-regions", args.max_regions >= 1, ">= 1"),
    ]:
        if not ok:
            raise DeepcreamError(f"{flag} must be {need}")
    settings = Settings(
        models=Path(args.models).expanduser() if args.models else None,
        engine=args.engine,
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        max_pixels=int(args.max_megapixels * 1_000_000),
        request_timeout_s=args.timeout,
        upload_timeout_s=args.upload_timeout,
        min_upload_bytes_per_s=args.min_upload_kbps * 1024,
        upload_grace_s=args.upload_grace,
        header_timeout_s=args.header_timeout,
        max_queue=args.queue,
        batch_window_ms=args.batch_window_ms,
        max_batch=args.max_batch,
        cpu_workers=args.cpu_workers,
        max_regions=args.max_regions,
        warmup=not args.no_warmup,
        cors_origins=tuple(args.cors_origin),
    )
    service = DecensorService(settings, Metrics())
    service.load()  # a missing/corrupt model fails here, before we listen
    sock = _bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    engines = ", ".join(f"{k}={v}" for k, v in service.engine_names().items())
    print(f"deepcream: serving http://{shown}:{port}/ (engines: {engines}); "
          "ready after warm-up (GET /readyz)", flush=True)
    app = create_app(settings, service=service)
    config = uvicorn.Config(app, log_level="info" if args.access_log else "warning",
                            access_log=args.access_log, timeout_graceful_shutdown=10,
                            http=header_timeout_protocol(settings.header_timeout_s))
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    sys.stdout.flush()
    return 0
