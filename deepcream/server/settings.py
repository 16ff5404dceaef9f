"""Server settings: every limit and tuning knob of `deepcream serve` in one frozen record."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from deepcream.errors import DeepcreamError
from deepcream.imageio import PNG_COMPRESS_LEVEL
from deepcream.options import DEFAULT_MAX_REGIONS


@dataclass(frozen=True)
class Settings:
    """Configuration of one app instance (the CLI fills it from flags)."""

    models: Path | None = None
    """Models folder override (None: ``$DEEPCREAM_MODELS`` or the user cache)."""
    engine: str = "auto"
    """Engine choice passed to ``get_engine``: ``auto`` uses installed models, else classical."""
    max_upload_bytes: int = 50 * 1024 * 1024
    """Whole request body limit; larger bodies get 413 before they are parsed."""
    max_pixels: int = 40_000_000
    """Declared width x height limit per image (decompression bombs get 413 before decoding)."""
    upload_timeout_s: float = 60.0
    """Time a client has to send its whole request body; past it the answer is 408."""
    min_upload_bytes_per_s: float = 10 * 1024
    """Slowest average upload rate accepted once ``upload_grace_s`` have passed; slower bodies
    get 408 (0 = no minimum). Trickling clients cannot hold upload slots for the whole
    ``upload_timeout_s``."""
    upload_grace_s: float = 5.0
    """Seconds an upload may take before the minimum rate applies."""
    header_timeout_s: float = 10.0
    """Time a client has to send a request's headers (the whole request line and headers);
    then 408 and the connection is closed. Applies from connect and after each response."""
    request_timeout_s: float = 120.0
    """Wall-clock limit per decensor request; past it the client gets 503."""
    max_queue: int = 16
    """Decensor requests admitted at once (running or waiting); more get 503 + Retry-After."""
    batch_window_ms: float = 5.0
    """How long the inference worker waits for other requests' crops before running a batch."""
    max_batch: int = 1
    """Most crops merged into one inference batch; 1 (default) = no cross-request batching.
    Measured on the 2-core target with onnxruntime, batching did not raise throughput (per-crop
    time is flat in batch size, see docs/server.md); turn it on where it measurably helps."""
    max_regions: int = DEFAULT_MAX_REGIONS
    """Separate regions allowed per image; more get 422 (many small regions share crops, so
    work grows with the image area, but labelling them still costs per region)."""
    cpu_workers: int = 2
    """Threads for decode, region finding, paste-back and PNG encoding."""
    png_compress_level: int = PNG_COMPRESS_LEVEL
    """zlib level of the PNG answers (the CLI's measured choice; higher is smaller, slower)."""
    warmup: bool = True
    """Run one dummy inference per engine before /readyz says ready."""
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    """Origins allowed to call the API from a browser page of another site (none by default)."""

    def __post_init__(self) -> None:
        # Fail at construction, not on the first request, when a limit makes no sense.
        checks = {
            "max_upload_bytes": self.max_upload_bytes > 0,
            "max_pixels": self.max_pixels > 0,
            "request_timeout_s": self.request_timeout_s > 0,
            "upload_timeout_s": self.upload_timeout_s > 0,
            "min_upload_bytes_per_s": self.min_upload_bytes_per_s >= 0,
            "upload_grace_s": self.upload_grace_s >= 0,
            "header_timeout_s": self.header_timeout_s > 0,
            "max_queue": self.max_queue > 0,
            "batch_window_ms": self.batch_window_ms >= 0,
            "max_batch": self.max_batch >= 1,
            "cpu_workers": self.cpu_workers >= 1,
            "max_regions": self.max_regions >= 1,
            "png_compress_level": 0 <= self.png_compress_level <= 9,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise DeepcreamError(f"invalid server setting(s): {', '.join(bad)}")
