"""Prometheus metrics of one app instance (own registry, so several apps can coexist in tests).

``MetricsMiddleware`` counts every HTTP request by route template and status and times it;
the service updates the domain metrics (regions, queue depth, batch sizes, engines).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from deepcream.server.limits import ASGIApp, Message, Receive, Scope, Send

# Latency buckets from a tiny health probe to a big multi-region image on a slow CPU.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160)


class Metrics:
    """All metrics, registered in a private ``CollectorRegistry``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "deepcream_http_requests", "HTTP requests by route and status",
            ["route", "method", "status"], registry=r,
        )
        self.latency = Histogram(
            "deepcream_http_request_duration_seconds", "HTTP request latency by route",
            ["route"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.regions = Counter(
            "deepcream_regions", "Regions filled, by mode", ["mode"], registry=r,
        )
        self.images = Counter(
            "deepcream_images", "Images decensored, by mode and engine", ["mode", "engine"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "deepcream_queue_depth", "Decensor requests admitted and not finished", registry=r,
        )
        self.queue_limit = Gauge(
            "deepcream_queue_limit", "Most decensor requests admitted at once", registry=r,
        )
        self.rejected = Counter(
            "deepcream_rejected", "Requests refused with 503, by reason", ["reason"], registry=r,
        )
        self.batch_size = Histogram(
            "deepcream_inference_batch_crops", "Crops per inference batch, by mode (bar or mosaic)",
            ["mode"], buckets=(1, 2, 4, 8, 16, 32, 64), registry=r,
        )
        self.batch_requests = Histogram(
            "deepcream_inference_batch_requests", "Requests merged into one inference batch",
            ["mode"], buckets=(1, 2, 3, 4, 6, 8, 16), registry=r,
        )
        self.inference_seconds = Histogram(
            "deepcream_inference_seconds", "Engine time per inference batch", ["mode"],
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.engine = Gauge(
            "deepcream_engine_info", "Engine serving each mode (value 1)",
            ["mode", "engine"], registry=r,
        )
        self.ready = Gauge("deepcream_ready", "1 once models are loaded and warmed up", registry=r)


class MetricsMiddleware:
    """ASGI middleware: request count and latency by route template (unknown paths -> other)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, routes: Iterable[str]):
        self.app = app
        self.metrics = metrics
        self.routes = frozenset(routes)

    def _route_label(self, path: str) -> str:
        if path in self.routes:
            return path
        if path.startswith("/static/"):
            return "/static"
        if path.startswith("/_docs/"):
            return "/_docs"
        return "other"  # bounded label set whatever paths clients probe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = self._route_label(scope["path"])
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
