"""One JSON error shape, ``{"error": {"code", "message", "field"}}``, for every 4xx the app answers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

#: Stable codes for the statuses Starlette raises itself (unknown route, wrong method, ...).
STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    503: "unavailable",
}

#: Discriminator tags pydantic puts in an error's location for ``POST /v1/events``'s body.
_UNION_TAGS = ("batch", "event")


class ApiError(Exception):
    """An answer in the error shape: raise it from an endpoint or a dependency.

    Parameters
    ----------
    status
        The HTTP status.
    code
        Stable machine-readable code (``"not_found"``, ``"batch_too_large"``, ...).
    message
        What went wrong, for a person.
    field
        Where (``"body.events[3].item_id"``, ``"path.item_id"``, ``"query.k"``), if anywhere.
    """

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A JSON response in the error shape."""
    return JSONResponse(
        {"error": {"code": code, "message": message, "field": field}},
        status_code=status,
        headers=headers,
    )


def field_path(loc: Sequence[Any]) -> str:
    """A readable location: ``("body", "events", 3, "item_id")`` -> ``"body.events[3].item_id"``.

    >>> field_path(("body", "batch", "events", 3, "item_id"))
    'body.events[3].item_id'
    >>> field_path(("query", "k"))
    'query.k'
    """
    parts = list(loc)
    if len(parts) > 1 and parts[0] == "body" and parts[1] in _UNION_TAGS:
        del parts[1]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    first = errors[0]
    if first.get("type") == "json_invalid":
        reason = (first.get("ctx") or {}).get("error", "invalid JSON")
        return error_response(
            400, "malformed_json", f"the body is not valid JSON: {reason}", "body"
        )
    field = field_path(first.get("loc", ()))
    message = f"{field}: {first.get('msg', 'invalid')}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more: " + ", ".join(
            field_path(e.get("loc", ())) for e in errors[1:6]
        )
        message += ", ...)" if len(errors) > 6 else ")"
    return error_response(422, "invalid", message, field)


def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = STATUS_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code
    if exc.status_code == 404 and message == "Not Found":
        message = f"no route {request.method} {request.url.path}"
    field = "body" if exc.status_code == 413 else None
    return error_response(exc.status_code, code, message, field, getattr(exc, "headers", None))


def _api(request: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc.status, exc.code, exc.message, exc.field)


def install_error_handlers(app: FastAPI) -> None:
    """Route validation errors, Starlette's HTTP errors and :class:`ApiError` to the error shape."""
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(ApiError, _api)  # type: ignore[arg-type]
