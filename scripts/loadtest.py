#!/usr/bin/env python3
"""Load benchmark of `deepcream serve` on loopback (a benchmark, not a test).

Starts the server as a subprocess once per configuration, runs N concurrent clients posting
the same decensor request for a bounded time, and reports requests/s, latency percentiles,
status counts (5xx must be 0), server RSS at start/end/peak, and the inference batch sizes
the server saw. By default it compares cross-request batching on (``--max-batch 8``) with
off (``--max-batch 1``) and prints the throughput gain.

    .venv/bin/python scripts/loadtest.py --duration 120            # the full run
    .venv/bin/python scripts/loadtest.py --duration 15 --random-models   # DCPv2-size ONNX
                                                     # models with random weights, no TF needed

Timings depend on the machine and on what else runs on it: report them with the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from deepcream.fsutil import atomic_write_bytes  # noqa: E402


def make_workload(width: int, height: int, regions: int, seed: int = 0) -> bytes:
    """A smooth textured picture with ``regions`` green bars spread over it (PNG bytes)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack([120 + 80 * np.sin(xx / 37), 110 + 60 * np.cos(yy / 29),
                    150 + 40 * np.sin((xx + yy) / 53)], -1) + rng.normal(0, 5, (height, width, 3))
    img = np.clip(img, 0, 250).astype(np.uint8)
    for i in range(regions):
        cx = int((i + 0.5) * width / regions)
        cy = int(height * (0.3 + 0.4 * ((i * 7919) % 10) / 10))
        img[cy - 12:cy + 12, max(cx - 60, 0):cx + 60] = (0, 255, 0)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    return buf.getvalue()


def random_models(folder: Path, seed: int = 0) -> Path:
    """``bar.onnx``/``mosaic.onnx`` with the DCPv2 graph and He-scaled random weights: the
    same compute as the real models (cost does not depend on weight values)."""
    import onnx

    from deepcream.graph import GENERATOR_SHAPES, build_model

    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in GENERATOR_SHAPES.items():
        if name.endswith("/weights"):
            fan_in = shape[0] * shape[1] * shape[2]
            weights[name] = rng.normal(0, (2.0 / fan_in) ** 0.5, shape).astype(np.float32)
        else:
            weights[name] = rng.normal(0, 0.01, shape).astype(np.float32)
    model = build_model(weights)
    folder.mkdir(parents=True, exist_ok=True)
    for kind in ("bar", "mosaic"):
        onnx.save(model, str(folder / f"{kind}.onnx"))
    return folder


class Server:
    """`deepcream serve` in a subprocess on a free loopback port."""

    def __init__(self, extra: list[str]) -> None:
        cmd = [sys.executable, "-m", "deepcream", "serve", "--host", "127.0.0.1", "--port", "0",
               *extra]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, cwd=REPO)
        line = self.proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if not match:
            self.proc.kill()
            raise SystemExit(f"server did not start: {line}{self.proc.stderr.read()}")
        self.url = f"http://127.0.0.1:{match.group(1)}"
        self.engines = line.split("engines: ", 1)[-1].split(")")[0]
        self.peak_rss = 0
        self.rss_series: list[tuple[float, int]] = []  # (seconds since ready, RSS bytes)
        self._sampling = True
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def rss(self) -> int:
        import psutil

        return psutil.Process(self.proc.pid).memory_info().rss

    def _sample(self) -> None:
        start = time.monotonic()
        next_point = start
        while self._sampling:
            rss = self.rss()
            self.peak_rss = max(self.peak_rss, rss)
            now = time.monotonic()
            if now >= next_point:  # a coarse series, to show whether RSS stays flat
                self.rss_series.append((now - start, rss))
                next_point += 15.0
            time.sleep(0.25)

    def wait_ready(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(trust_env=False, timeout=10) as c:
            while True:
                try:
                    if c.get(self.url + "/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise SystemExit("server never became ready")
                time.sleep(0.1)
        self._sampler.start()

    def stop(self) -> None:
        self._sampling = False
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def run_clients(url: str, body: bytes, clients: int, duration: float,
                      form: dict[str, str], retry_wait: float = 0.0
                      ) -> tuple[dict[int, list[float]], list[tuple[int, float]], float]:
    """``clients`` loops posting until ``duration`` s are over, while ``/healthz`` is polled
    every 0.5 s; (latencies by status, healthz (status, seconds) samples, elapsed). A client
    that gets 503 waits ``retry_wait`` s before posting again (0: a worst-case tight loop)."""
    by_status: dict[int, list[float]] = {}
    health: list[tuple[int, float]] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=600, trust_env=False, limits=limits) as ac:

        async def one() -> tuple[float, int]:
            t = time.perf_counter()
            resp = await ac.post("/v1/decensor", files={"image": ("load.png", body, "image/png")},
                                 data=form)
            return time.perf_counter() - t, resp.status_code

        await asyncio.gather(*[one() for _ in range(clients)])  # warm connections and caches
        start = time.perf_counter()
        deadline = start + duration

        async def loop() -> None:
            while time.perf_counter() < deadline:
                latency, status = await one()
                by_status.setdefault(status, []).append(latency)
                if status == 503 and retry_wait:
                    await asyncio.sleep(retry_wait)

        async def poll_health() -> None:
            # Its own connection: the clients' pool is full by design.
            async with httpx.AsyncClient(base_url=url, timeout=30, trust_env=False) as hc:
                while time.perf_counter() < deadline:
                    t = time.perf_counter()
                    try:
                        status = (await hc.get("/healthz")).status_code
                    except httpx.TransportError:
                        status = 0
                    health.append((status, time.perf_counter() - t))
                    await asyncio.sleep(0.5)

        await asyncio.gather(poll_health(), *[loop() for _ in range(clients)])
        elapsed = time.perf_counter() - start
    return by_status, health, elapsed


def batch_stats(url: str) -> dict[str, float]:
    text = httpx.get(url + "/metrics", trust_env=False).text

    def total(metric: str) -> float:
        return sum(float(v) for v in re.findall(rf"^{metric}\{{[^}}]*\}} (\S+)$", text, re.M))

    batches = total("deepcream_inference_batch_crops_count")
    return {
        "batches": batches,
        "mean_crops_per_batch": total("deepcream_inference_batch_crops_sum") / batches if batches else 0.0,
        "mean_requests_per_batch": total("deepcream_inference_batch_requests_sum") / batches if batches else 0.0,
    }


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def run_config(name: str, server_args: list[str], body: bytes, args: argparse.Namespace) -> dict:
    print(f"[{name}] starting server: {' '.join(server_args)}", flush=True)
    server = Server(server_args)
    try:
        server.wait_ready()
        rss_start = server.rss()
        form = {"mode": "bar", "variations": str(args.variations)}
        by_status, health, elapsed = asyncio.run(
            run_clients(server.url, body, args.clients, args.duration, form, args.retry_wait))
        rss_end = server.rss()
        batches = batch_stats(server.url)
    finally:
        server.stop()
    ok = by_status.get(200, [])
    rejected = by_status.get(503, [])
    statuses = {k: len(v) for k, v in by_status.items()}
    requests = sum(statuses.values())
    health_ms = [1000 * s for _, s in health]
    result = {
        "config": name,
        "server_args": server_args,
        "engines": server.engines,
        "requests": requests,
        "elapsed_s": round(elapsed, 2),
        "requests_per_s": round(requests / elapsed, 3) if elapsed else 0.0,
        "ok_per_s": round(len(ok) / elapsed, 3) if elapsed else 0.0,
        "latency_p50_s": round(percentile(ok, 50), 3),
        "latency_p95_s": round(percentile(ok, 95), 3),
        "latency_max_s": round(max(ok), 3) if ok else None,
        "latency_mean_s": round(statistics.fmean(ok), 3) if ok else None,
        "latency_503_p50_ms": round(1000 * percentile(rejected, 50), 1) if rejected else None,
        "latency_503_max_ms": round(1000 * max(rejected), 1) if rejected else None,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "healthz_polls": len(health),
        "healthz_ok": sum(1 for s, _ in health if s == 200),
        "healthz_max_ms": round(max(health_ms), 1) if health_ms else None,
        "healthz_mean_ms": round(statistics.fmean(health_ms), 1) if health_ms else None,
        "rss_series_mb": [[round(t), round(r / 2**20, 1)] for t, r in server.rss_series],
        # 503 is the designed answer to overload; any other 5xx is a failure.
        "errors_5xx": sum(v for k, v in statuses.items() if k >= 500 and k != 503),
        "rss_start_mb": round(rss_start / 2**20, 1),
        "rss_end_mb": round(rss_end / 2**20, 1),
        "rss_peak_mb": round(max(server.peak_rss, rss_end) / 2**20, 1),
        **{k: round(v, 2) for k, v in batches.items()},
    }
    print(json.dumps(result), flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=120.0, help="seconds per configuration (default 120)")
    ap.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    ap.add_argument("--models", help="models folder (default: installed models, else classical)")
    ap.add_argument("--random-models", action="store_true",
                    help="serve DCPv2-graph ONNX models with random weights (built here, no TF)")
    ap.add_argument("--engine", default="auto", choices=("auto", "onnx", "classical"))
    ap.add_argument("--workload", choices=("synthetic", "reference"), default="synthetic",
                    help="synthetic: --width x --height with --regions bars (default); reference: "
                    "the 2604x2513, 17-region benchmark image of `deepcream bench`")
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--height", type=int, default=768)
    ap.add_argument("--regions", type=int, default=1, help="green bars per image (default 1)")
    ap.add_argument("--variations", type=int, default=1, choices=(1, 2, 4))
    ap.add_argument("--batch-window-ms", type=float, default=5.0)
    ap.add_argument("--max-batch", type=int, default=8)
    ap.add_argument("--only", choices=("batched", "unbatched"),
                    help="run one configuration instead of comparing both")
    ap.add_argument("--queue", type=int, help="the server's admission queue (default: max(16, "
                    "2 x clients), never full; fewer than --clients gives an overload run with 503s)")
    ap.add_argument("--retry-wait", type=float, default=0.0,
                    help="seconds a client waits after a 503 before posting again (default 0)")
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args(argv)

    tmp = tempfile.TemporaryDirectory(prefix="deepcream-loadtest-")
    models = args.models
    if args.random_models:
        models = str(random_models(Path(tmp.name) / "models"))
    queue = args.queue if args.queue is not None else max(16, 2 * args.clients)
    common = ["--engine", args.engine, "--queue", str(queue)]
    if models:
        common += ["--models", models]
    if args.workload == "reference":
        from deepcream_bench.workload import make_workload_image

        rgb, _ = make_workload_image()
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "PNG")
        body = buf.getvalue()
        args.height, args.width = rgb.shape[:2]
        args.regions = 17
    else:
        body = make_workload(args.width, args.height, args.regions)
    configs = {
        "batched": common + ["--max-batch", str(args.max_batch),
                             "--batch-window-ms", str(args.batch_window_ms)],
        "unbatched": common + ["--max-batch", "1", "--batch-window-ms", "0"],
    }
    if args.only:
        configs = {args.only: configs[args.only]}
    results = [run_config(name, extra, body, args) for name, extra in configs.items()]
    summary: dict = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "workload": {"kind": args.workload, "width": args.width, "height": args.height, "regions": args.regions,
                     "variations": args.variations, "png_bytes": len(body),
                     "clients": args.clients, "duration_s": args.duration},
        "results": results,
    }
    by_name = {r["config"]: r for r in results}
    if {"batched", "unbatched"} <= by_name.keys() and by_name["unbatched"]["requests_per_s"]:
        gain = by_name["batched"]["requests_per_s"] / by_name["unbatched"]["requests_per_s"] - 1
        summary["batching_throughput_gain"] = round(gain, 4)

    print("\n| config | engines | req/s (200/s) | 200 p50 / p95 s | 503 p50 ms | 5xx | statuses "
          "| healthz ok, max ms | RSS start→end (peak) MB | crops/batch | req/batch |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['config']} | {r['engines']} | {r['requests_per_s']} ({r['ok_per_s']}) | "
              f"{r['latency_p50_s']} / {r['latency_p95_s']} | {r['latency_503_p50_ms']} | "
              f"{r['errors_5xx']} | {r['statuses']} | {r['healthz_ok']}/{r['healthz_polls']}, "
              f"{r['healthz_max_ms']} | {r['rss_start_mb']}→{r['rss_end_mb']} ({r['rss_peak_mb']}) | "
              f"{r['mean_crops_per_batch']} | {r['mean_requests_per_batch']} |")
        print(f"  RSS every 15 s (s, MB): {r['rss_series_mb']}")
    if "batching_throughput_gain" in summary:
        print(f"\ncross-request batching throughput gain: {100 * summary['batching_throughput_gain']:+.1f}%")
    if any(r["batches"] == 0 for r in results):
        print("note: the engine took no batches (classical engines fill native-size crops "
              "directly), so batching settings change nothing for it")
    if args.out:
        atomic_write_bytes(args.out, (json.dumps(summary, indent=2) + "\n").encode())
        print(f"wrote {args.out}")
    tmp.cleanup()
    return 1 if any(r["errors_5xx"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
