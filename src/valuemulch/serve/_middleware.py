"""The service's one JSON error shape, ``{"error": {"status", "code", "message", "field"}}``, and the body limit.

Every error leaves through the handlers installed here, whether a route raised it, the request
failed validation, the framework answered 404/405, or a bug escaped.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from valuemulch.errors import ValuemulchError

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """An answer the service chose to refuse, with its HTTP status, a stable code and the field at fault."""

    def __init__(
        self, status: int, code: str, message: str, field_name: str | None = None, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field_name
        self.headers = headers or {}


def error_body(status: int, code: str, message: str, field_name: str | None = None) -> dict[str, Any]:
    return {"error": {"status": status, "code": code, "message": message, "field": field_name}}


#: How to repair a field, by pydantic error type; the message already says what was expected and came.
_FIXES = {
    "int_type": 'send a JSON integer without quotes, such as 5 (true/false and "5" are not numbers)',
    "float_type": 'send a JSON number without quotes, such as 0.5 (true/false and "0.5" are not numbers)',
    "bool_type": "send true or false",
    "string_type": "send a JSON string",
    "missing": "add the field",
    "extra_forbidden": "remove the field (GET /docs lists the fields each route takes)",
}


def _shown(value: Any) -> str:
    """A request value as JSON, clipped, for "got ..." (never the whole 300 KB question)."""
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def validation_message(error: dict[str, Any], where: str | None) -> str:
    """One pydantic error as "field: expected X, got Y. Fix: Z"."""
    kind, msg = str(error.get("type", "")), str(error.get("msg", "invalid"))
    if kind == "value_error":  # our own checks say expected, got and the fix themselves
        return f"{where or 'body'}: {msg.removeprefix('Value error, ')}"
    expected = msg.removeprefix("Input should be ")
    got = "nothing (the field is missing)" if kind == "missing" else _shown(error.get("input"))
    fix = _FIXES.get(kind, "see GET /docs for what this field takes")
    lead = f"expected {expected}" if expected != msg else msg
    return f"{where or 'body'}: {lead}, got {got}. Fix: {fix}"


async def _invalid(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    if first.get("type") == "json_invalid":
        return JSONResponse(error_body(422, "invalid_json", f"The body is not valid JSON: {first.get('msg')}."), status_code=422)
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or None
    message = validation_message(first, where) + (f" ({len(exc.errors()) - 1} more problems)" if len(exc.errors()) > 1 else "")
    return JSONResponse(error_body(422, "invalid_request", message, where), status_code=422)


async def _service(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return JSONResponse(error_body(exc.status, exc.code, exc.message, exc.field), status_code=exc.status, headers=exc.headers)


async def _http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {400: "invalid_body", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse(error_body(exc.status_code, code, str(exc.detail)), status_code=exc.status_code)


async def _domain(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(error_body(422, "invalid_request", str(exc)), status_code=422)


async def _bug(_: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error")
    return JSONResponse(
        error_body(500, "internal_error", f"Internal error ({type(exc).__name__}); it is logged."), status_code=500
    )


def install_error_handlers(app: FastAPI) -> None:
    """Route every kind of failure to the one error shape."""
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(ServiceError, _service)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(ValuemulchError, _domain)
    app.add_exception_handler(Exception, _bug)


class BodyLimit:
    """Refuse bodies over the limit with 413, counting bytes as they arrive (Content-Length may lie or be
    absent), and bodies that take longer than ``timeout`` seconds to arrive with 408: a client trickling
    its body (slowloris) holds a connection, never a worker, and not for long."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float = 10.0) -> None:
        self.app, self.max_bytes, self.timeout = app, max_bytes, timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        too_big = JSONResponse(
            error_body(413, "body_too_large", f"Request bodies are limited to {self.max_bytes} bytes."), status_code=413
        )
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await too_big(scope, receive, send)
            return
        # Read the whole body first (it is small by construction), so that an oversized chunked body
        # is answered 413 here instead of failing inside the framework's body parser.
        chunks, seen, more, other = [], 0, True, None
        with anyio.move_on_after(self.timeout) as slow:
            while more and seen <= self.max_bytes:
                message = await receive()
                if message["type"] != "http.request":
                    other = message  # the client went away: the app sees that, outside the body's time limit
                    break
                chunks.append(message.get("body", b""))
                seen += len(chunks[-1])
                more = bool(message.get("more_body", False))
        if other is not None:
            await self.app(scope, _replay([other], receive), send)
            return
        if seen > self.max_bytes:
            await too_big(scope, receive, send)
            return
        if slow.cancelled_caught:
            late = f"The request body did not arrive within {self.timeout:g} s ({seen} bytes came); send it whole, at once."
            await JSONResponse(error_body(408, "body_timeout", late), status_code=408)(scope, receive, send)
            return
        body = b"".join(chunks)
        scope.setdefault("state", {})["raw_body"] = body  # what the audit log hashes: the request as received
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}], receive), send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay
