"""The FastAPI app: routes, middleware and start-up of the decensor service.

Routes
- ``POST /v1/decensor``: multipart ``image`` (+ ``original`` for mosaic), options as form
  fields; answers ``image/png`` (one result) or ``application/zip`` (several variations).
- ``POST /v1/detect-mosaic``: multipart ``image``; answers the mosaic mask as a white-on-black
  PNG (the web page's "Detect mosaic"), with the region count and block sizes in headers.
- ``POST /v1/find-mask``: multipart ``image`` + the mask options; answers the mask a bar-mode
  decensor would fill, as a white-on-black PNG (the page shows it as the editable mask).
- ``POST /deepcreampy-bar`` / ``POST /deepcreampy-mosaic``: drop-in routes of the older
  DeepCreamPy web service (same field names, one PNG back).
- ``GET /healthz``, ``GET /readyz``, ``GET /metrics`` (Prometheus), ``GET /v1/info``,
  ``GET /`` (web page), ``/docs`` and ``/redoc`` served without any CDN.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from importlib.resources import files
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, File, Form, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.middleware.cors import CORSMiddleware

from deepcream import __version__
from deepcream.models import CLASSICAL_HINT
from deepcream.options import VARIATIONS, DecensorOptions
from deepcream.server.errors import ApiError, install_error_handlers
from deepcream.server.limits import SUPPORTED_FORMATS, UploadGuard, parse_mask_color
from deepcream.server.metrics import Metrics, MetricsMiddleware
from deepcream.server.service import (
    DecensorOutput,
    DecensorService,
    FoundMask,
    zip_pngs,
)
from deepcream.server.settings import Settings

STATIC_DIR = Path(str(files("deepcream.server") / "static"))
UPLOAD_ROUTES = frozenset({"/v1/decensor", "/v1/detect-mosaic", "/v1/find-mask", "/deepcreampy-bar", "/deepcreampy-mosaic"})
ERROR_RESPONSES = {
    status: {"description": text, "content": {"application/json": {"example": {
        "status": status, "error": slug, "message": "one line saying what is wrong"}}}}
    for status, slug, text in [
        (400, "bad_request", "Empty, truncated or corrupt image"),
        (413, "request_entity_too_large", "Upload over the size limit or image over the pixel limit"),
        (415, "unsupported_media_type", "Not an accepted image format, or not a multipart upload"),
        (422, "unprocessable_entity", "Missing/invalid field, mosaic size mismatch, nothing to fill"),
        (503, "service_unavailable", "Queue full, still warming up, or timed out (see Retry-After)"),
    ]
}
PNG_RESPONSE = {200: {"content": {"image/png": {}}, "description": "The decensored image (PNG)"}}

# Form fields that several routes share (one description each).
MaskColorField = Annotated[str, Form(description="#00ff00, 0,255,0 or a color name")]
MaskToleranceField = Annotated[int | None, Form(
    ge=0, le=255, description="manual override of the mask finder: per-channel color "
    "tolerance (0 = exact color only). Unset: strokes are found however they were saved "
    "(exact, anti-aliased, JPEG)")]
AntialiasField = Annotated[bool, Form(description="with mask_tolerance: grow the mask over "
                                      "anti-aliased edges")]


def create_app(settings: Settings | None = None, *, service: DecensorService | None = None) -> FastAPI:
    """Build the app. Models load and warm up in the background after start; ``/readyz``
    turns 200 when that is done (``service.load()`` may be called before to fail early)."""
    if service is not None:
        settings, metrics = service.settings, service.metrics
    else:
        settings = settings or Settings()
        metrics = Metrics()
        service = DecensorService(settings, metrics)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Warm up off the event loop so /healthz answers while models load.
        warming = asyncio.get_running_loop().run_in_executor(None, service.warm_up)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(warming), 60)
            service.close()

    app = FastAPIOffline(
        title="deepcream",
        version=__version__,
        description=(
            "Fill bar-censored regions and restore mosaics in illustrations with the "
            "DeepCreamPy v2 models (or the classical engine when no model is installed). "
            "Errors are JSON: `{status, error, message}`."
        ),
        lifespan=lifespan,
        static_url="/_docs",
    )
    app.state.service = service
    app.state.settings = settings
    install_error_handlers(app)
    _add_decensor_routes(app, service)
    _add_mask_routes(app, service)
    _add_status_routes(app, service, settings, metrics)
    _add_page(app)
    _add_middleware(app, service, settings, metrics)
    return app


async def _image_response(out: DecensorOutput, variations: int) -> Response:
    """One PNG, or a zip of the variations, with the X-Deepcream-* facts as headers."""
    headers = {
        "X-Deepcream-Engine": out.engine,
        "X-Deepcream-Regions": str(out.regions),
        "X-Deepcream-Processing-Ms": f"{out.processing_ms:.1f}",
        "X-Deepcream-Variations": str(len(out.pngs)),
        "Server-Timing": ", ".join(f"{k};dur={v:.1f}" for k, v in out.stages_ms.items()),
    }
    if out.notice:  # e.g. no mask-colored pixel: the image comes back unchanged
        headers["X-Deepcream-Notice"] = out.notice.encode("ascii", "replace").decode()
    if out.warning:  # e.g. no region found, or a manual tolerance left an incomplete mask
        headers["X-Deepcream-Warning"] = out.warning.encode("ascii", "replace").decode()
    if out.mask_note:  # e.g. JPEG-saved strokes: the mask was grown past the exact color
        headers["X-Deepcream-Mask-Note"] = out.mask_note.encode("ascii", "replace").decode()
    if variations == 1:
        headers["Content-Disposition"] = 'inline; filename="decensored.png"'
        return Response(out.pngs[0], media_type="image/png", headers=headers)
    body = await asyncio.get_running_loop().run_in_executor(None, zip_pngs, out.pngs, "decensored")
    headers["Content-Disposition"] = 'attachment; filename="decensored.zip"'
    return Response(body, media_type="application/zip", headers=headers)


def _mask_response(found: FoundMask, filename: str) -> Response:
    """A found mask as a grey PNG with its facts as headers."""
    headers = {
        "X-Deepcream-Regions": str(found.regions),
        "X-Deepcream-Mask-Pixels": str(found.pixels),
        "X-Deepcream-Processing-Ms": f"{found.processing_ms:.1f}",
        "Content-Disposition": f'inline; filename="{filename}"',
    }
    if found.block_sizes:
        headers["X-Deepcream-Block-Sizes"] = ",".join(str(b) for b in found.block_sizes)
    if found.notice:
        headers["X-Deepcream-Notice"] = found.notice.encode("ascii", "replace").decode()
    if found.warning:
        headers["X-Deepcream-Warning"] = found.warning.encode("ascii", "replace").decode()
    if found.mask_note:
        headers["X-Deepcream-Mask-Note"] = found.mask_note.encode("ascii", "replace").decode()
    return Response(found.png, media_type="image/png", headers=headers)


def _add_decensor_routes(app: FastAPI, service: DecensorService) -> None:
    """``POST /v1/decensor`` and the older service's drop-in routes."""
    @app.post(
        "/v1/decensor",
        summary="Decensor one image",
        response_class=Response,
        responses={
            200: {
                "description": "One PNG (`variations=1`) or a zip of `decensored-1.png` ... "
                "`decensored-N.png` (`variations` 2 or 4). Headers: `X-Deepcream-Engine`, "
                "`X-Deepcream-Regions`, `X-Deepcream-Processing-Ms`, `X-Deepcream-Variations`.",
                "content": {"image/png": {}, "application/zip": {}},
            },
            **ERROR_RESPONSES,
        },
    )
    async def decensor_v1(
        image: Annotated[UploadFile, File(description="Bar mode: the image with regions painted "
                                         "in the mask color. Mosaic mode: the colored copy (or "
                                         "the mosaic image itself with auto_mask).")],
        original: Annotated[UploadFile | None, File(description="Mosaic mode: the original "
                                                    "pixelated image (same size)")] = None,
        mask: Annotated[UploadFile | None, File(description="Optional separate mask image, "
                                                "same size as 'image': white or any non-black "
                                                "pixel = fill (then no mask color is looked "
                                                "for, and 'original' is not needed)")] = None,
        mode: Annotated[str, Form(description="bar or mosaic")] = "bar",
        mask_color: MaskColorField = "#00ff00",
        variations: Annotated[int, Form(description="1, 2 or 4 (flipped inputs)")] = 1,
        mask_tolerance: MaskToleranceField = None,
        antialias: AntialiasField = False,
        auto_mask: Annotated[bool, Form(description="mosaic mode: detect the mosaic "
                                       "automatically instead of reading a colored mask")] = False,
    ) -> Response:
        if mode not in ("bar", "mosaic"):
            raise ApiError(422, f"form field 'mode' must be 'bar' or 'mosaic', not {mode!r}")
        if variations not in VARIATIONS:
            raise ApiError(422, f"form field 'variations' must be 1, 2 or 4, not {variations}")
        if mode == "bar" and original is not None:
            raise ApiError(422, "form field 'original' is only used in mosaic mode")
        if mode == "bar" and auto_mask:
            raise ApiError(422, "auto_mask (automatic mosaic detection) needs mode=mosaic")
        if auto_mask and original is not None:
            raise ApiError(422, "auto_mask finds the mosaic in 'image' itself: send no 'original'")
        if mask is not None and (original is not None or auto_mask):
            raise ApiError(422, "form field 'mask' says where to fill: send no 'original' "
                           "and no auto_mask with it")
        if mode == "mosaic" and original is None and not auto_mask and mask is None:
            raise ApiError(
                422, "mosaic mode needs form field 'original' (the pixelated image), "
                "a 'mask' file, or auto_mask=true to detect the mosaic in 'image'",
            )
        params = DecensorOptions(
            mode=mode,
            variations=variations,
            mask_color=parse_mask_color(mask_color),
            mask_tolerance=mask_tolerance,
            antialias=antialias,
            auto_mask=auto_mask,
        )
        data = await image.read()
        orig = await original.read() if original is not None else None
        mask_data = await mask.read() if mask is not None else None
        out = await service.decensor(data, orig, params, mask=mask_data)
        return await _image_response(out, variations)

    @app.post("/deepcreampy-bar", summary="Drop-in: decensor bars (field image)",
              response_class=Response, responses={**PNG_RESPONSE, **ERROR_RESPONSES})
    async def deepcreampy_bar(
        image: Annotated[UploadFile, File(description="image with bars in (0,255,0)")],
    ) -> Response:
        out = await service.decensor(await image.read(), None, DecensorOptions(mode="bar"))
        return await _image_response(out, 1)

    @app.post("/deepcreampy-mosaic", summary="Drop-in: decensor mosaics (fields image, masked)",
              response_class=Response, responses={**PNG_RESPONSE, **ERROR_RESPONSES})
    async def deepcreampy_mosaic(
        image: Annotated[UploadFile, File(description="the original (pixelated) image")],
        masked: Annotated[UploadFile, File(description="a copy with the mosaic painted (0,255,0)")],
    ) -> Response:
        # The older service's fields: `image` = original, `masked` = colored copy.
        out = await service.decensor(
            await masked.read(), await image.read(), DecensorOptions(mode="mosaic")
        )
        return await _image_response(out, 1)


def _add_mask_routes(app: FastAPI, service: DecensorService) -> None:
    """Where the holes are, without filling them: mosaic detection and the painted mask."""
    @app.post(
        "/v1/detect-mosaic",
        summary="Find mosaic (pixelated) regions",
        response_class=Response,
        responses={
            200: {
                "description": "The mask: a grey-level PNG of the image's size, white (255) = "
                "mosaic, black (0) = keep. Headers: `X-Deepcream-Regions` (regions found), "
                "`X-Deepcream-Mask-Pixels` (white pixels), `X-Deepcream-Block-Sizes` (block "
                "size in px per region, largest region first, comma-separated; absent when "
                "the detector does not report them), `X-Deepcream-Processing-Ms`.",
                "content": {"image/png": {}},
            },
            **ERROR_RESPONSES,
        },
    )
    async def detect_mosaic_v1(
        image: Annotated[UploadFile, File(description="the pixelated image")],
    ) -> Response:
        found = await service.detect_mosaic(await image.read())
        return _mask_response(found, "mosaic-mask.png")

    @app.post(
        "/v1/find-mask",
        summary="Find the painted mask (no fill)",
        response_class=Response,
        responses={
            200: {
                "description": "The pixels a bar-mode `/v1/decensor` of this image with these "
                "options would fill, as a grey-level PNG of the image's size (white = fill). "
                "Headers: `X-Deepcream-Regions`, `X-Deepcream-Mask-Pixels`, "
                "`X-Deepcream-Processing-Ms`, and `X-Deepcream-Notice` / `X-Deepcream-Warning` "
                "as `/v1/decensor` would send them.",
                "content": {"image/png": {}},
            },
            **ERROR_RESPONSES,
        },
    )
    async def find_mask_v1(
        image: Annotated[UploadFile, File(description="the image with regions painted in "
                                         "the mask color")],
        mask_color: MaskColorField = "#00ff00",
        mask_tolerance: MaskToleranceField = None,
        antialias: AntialiasField = False,
    ) -> Response:
        params = DecensorOptions(mask_color=parse_mask_color(mask_color),
                                mask_tolerance=mask_tolerance, antialias=antialias)
        found = await service.find_paint(await image.read(), params)
        return _mask_response(found, "mask.png")


def _add_status_routes(app: FastAPI, service: DecensorService, settings: Settings,
                       metrics: Metrics) -> None:
    """Liveness, readiness, Prometheus metrics and the page's info."""
    @app.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: models loaded and warmed up",
             responses={503: ERROR_RESPONSES[503]})
    async def readyz() -> JSONResponse:
        if service.ready.is_set():
            return JSONResponse({"status": "ready", "engines": service.engine_names()})
        message = service.startup_error or "warming up"
        return JSONResponse(
            {"status": 503, "error": "service_unavailable", "message": message},
            status_code=503, headers={"Retry-After": "5"},
        )

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/info", summary="Engines, limits and accepted values (used by the web page)")
    async def info() -> dict[str, object]:
        return {
            "version": __version__,
            "ready": service.ready.is_set(),
            "engines": service.engine_names(),
            # The page's banner: set while any mode runs the classical engine.
            "model_hint": (CLASSICAL_HINT if "classical" in service.engine_names().values()
                           else None),
            "modes": ["bar", "mosaic"],
            "variations": list(VARIATIONS),
            "formats": list(SUPPORTED_FORMATS),
            "limits": {
                "max_upload_bytes": settings.max_upload_bytes,
                "max_pixels": settings.max_pixels,
                "request_timeout_s": settings.request_timeout_s,
                "max_queue": settings.max_queue,
            },
        }


def _add_page(app: FastAPI) -> None:
    """The web page and its static files."""
    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        # The page may load nothing from elsewhere: the browser enforces "no CDN" too.
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers={
            "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; "
            "connect-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
            "X-Content-Type-Options": "nosniff",
        })

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


def _add_middleware(app: FastAPI, service: DecensorService, settings: Settings,
                    metrics: Metrics) -> None:
    """CORS (when configured), the upload guard and the metrics middleware (outermost)."""
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            expose_headers=["X-Deepcream-Engine", "X-Deepcream-Regions",
                            "X-Deepcream-Processing-Ms", "X-Deepcream-Variations",
                            "X-Deepcream-Notice", "X-Deepcream-Warning",
                            "X-Deepcream-Mask-Pixels", "X-Deepcream-Block-Sizes",
                            "X-Deepcream-Mask-Note"],
        )
    app.add_middleware(
        UploadGuard,
        max_bytes=settings.max_upload_bytes,
        multipart_paths=UPLOAD_ROUTES,
        # Admitted requests keep their body slot; the rest is room for uploads still arriving.
        max_bodies=2 * settings.max_queue,
        read_timeout_s=settings.upload_timeout_s,
        retry_after_s=service.retry_after_s(),
        on_reject=metrics.rejected.labels("too_many_uploads").inc,
        min_rate=settings.min_upload_bytes_per_s,
        grace_s=settings.upload_grace_s,
        refusal=service.refusal,
    )
    routes = [getattr(route, "path", "") for route in app.routes]
    app.add_middleware(MetricsMiddleware, metrics=metrics, routes=routes)
