"""One JSON error shape, ``{"error": {"code", "message", "field"}}``, for every 4xx the app answers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from interestlens.serve.schemas import ErrorBody

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

#: FastAPI's message when a body cannot be decoded at all (bytes that are not UTF-8, ...).
_UNPARSABLE = "There was an error parsing the body"

#: Error answers given outside the endpoints, which :func:`document_errors` adds to the
#: spec: on every operation, and on every operation that reads a body.
GENERIC_ERRORS: dict[str, str] = {
    "413": "The body is larger than the server's limit (`payload_too_large`).",
}
BODY_ERRORS: dict[str, str] = {
    "400": "The body is not valid JSON (`malformed_json`).",
}


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
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 404 and message == "Not Found":
        message = f"no route {request.method} {request.url.path}"
    if exc.status_code == 400 and message == _UNPARSABLE:
        code, message = "malformed_json", "the body is not valid JSON: it cannot be decoded"
    allowed = allowed_methods(request) if exc.status_code == 405 else []
    if allowed:
        headers["Allow"] = ", ".join(allowed)
        message = (
            f"{request.method} is not allowed on {request.url.path} (allowed: {headers['Allow']})"
        )
    field = "body" if exc.status_code in (400, 413) else None
    return error_response(exc.status_code, code, message, field, headers or None)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers at the request's path, sorted.

    Starlette's own 405 names only the first route whose path matched, so a path served
    by several routes (``GET``, ``PUT`` and ``DELETE /v1/items/{item_id}``) would be
    advertised with one method.
    """
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def _api(request: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc.status, exc.code, exc.message, exc.field)


def install_error_handlers(app: FastAPI) -> None:
    """Route errors to the error shape, and document the ones every route may give.

    Validation errors, Starlette's HTTP errors and :class:`ApiError` answer in the one
    shape; the app's OpenAPI document gains the generic answers (:func:`document_errors`).
    """
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(ApiError, _api)  # type: ignore[arg-type]
    build = app.openapi  # FastAPI's: builds the document once, then answers it from a cache

    def openapi() -> dict[str, Any]:
        return document_errors(build())  # adds what is missing only: a second call adds nothing

    app.openapi = openapi  # type: ignore[method-assign]


def document_errors(spec: dict[str, Any]) -> dict[str, Any]:
    """Add the error answers no endpoint declares itself to every operation of ``spec``.

    A body over the size limit is refused (413) by the middleware on any route, and a
    body that is not JSON (400) on any route that reads one: neither is visible to
    FastAPI when it writes the document. Answers an operation already declares are kept.

    Parameters
    ----------
    spec
        An OpenAPI document (changed in place).

    Returns
    -------
    dict
        ``spec``.

    Examples
    --------
    >>> spec = {"paths": {"/x": {"post": {"requestBody": {}, "responses": {}}}}}
    >>> sorted(document_errors(spec)["paths"]["/x"]["post"]["responses"])
    ['400', '413']
    """
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    error = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in error.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    schemas.setdefault(ErrorBody.__name__, error)
    ref = {"$ref": f"#/components/schemas/{ErrorBody.__name__}"}
    for operations in spec.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in _HTTP_METHODS:
                continue
            responses = operation.setdefault("responses", {})
            extra = {**GENERIC_ERRORS, **(BODY_ERRORS if "requestBody" in operation else {})}
            for status, description in extra.items():
                responses.setdefault(
                    status,
                    {"description": description, "content": {"application/json": {"schema": ref}}},
                )
    return spec


_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
