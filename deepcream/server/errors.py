"""HTTP errors as JSON: every failure answers ``{"status", "error", "message"}`` with a 4xx/5xx.

Handlers here turn our ``ApiError``, Starlette/FastAPI errors and ``DeepcreamError``s from the
pipeline into that one shape, so no request ever gets a traceback or an HTML error page.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from deepcream.errors import DeepcreamError, InputError, ModelError

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answer: HTTP status, one-line message, optional extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def error_payload(status: int, message: str) -> dict[str, object]:
    """The JSON body every error uses: status code, its reason phrase as a slug, the message."""
    slug = HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    return {"status": status, "error": slug, "message": message}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """A JSON error answer."""
    return JSONResponse(error_payload(status, message), status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    """One line naming the first bad field, e.g. "form field 'image' is required"."""
    errors = exc.errors()
    if not errors:
        return "invalid request"
    first = errors[0]
    loc = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    field = ".".join(loc) or "request"
    if first.get("type") == "missing":
        return f"form field '{field}' is required"
    msg = str(first.get("msg", "is invalid"))
    return f"form field '{field}': {msg}"


def install_error_handlers(app: FastAPI) -> None:
    """Register the JSON handlers on ``app``."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        return error_response(exc.status_code, message, dict(exc.headers or {}))

    @app.exception_handler(InputError)
    async def _input(_: Request, exc: InputError) -> JSONResponse:
        return error_response(422, str(exc))

    @app.exception_handler(ModelError)
    async def _model(_: Request, exc: ModelError) -> JSONResponse:
        return error_response(503, str(exc), {"Retry-After": "30"})

    @app.exception_handler(DeepcreamError)
    async def _deepcream(_: Request, exc: DeepcreamError) -> JSONResponse:
        return error_response(422, str(exc))

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> JSONResponse:
        # Reached only for bugs: keep the details in the log, not in the answer.
        log.exception("internal error", exc_info=exc)
        return error_response(500, "internal server error")
