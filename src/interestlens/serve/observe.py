"""Metrics (Prometheus, one registry per app) and the ASGI middleware that times, logs and bounds requests."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import HTTPException
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interestlens.serve.errors import error_response

access_log = logging.getLogger("interestlens.serve.access")

#: An incoming ``X-Request-ID`` kept as the request's id; anything else is replaced.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

#: Latency buckets (seconds): fine below 50 ms, where the service should answer.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class Metrics:
    """The service's Prometheus metrics, in a registry of their own (two apps never share counts).

    Parameters
    ----------
    model_version, model_age
        Read at each scrape: the generation of the snapshot answering and its age in
        seconds (0 before a fit).
    """

    def __init__(self, model_version: Callable[[], float], model_age: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.latency = Histogram(
            "interestlens_http_request_duration_seconds",
            "Time to answer a request, by route template, method and status.",
            ["route", "method", "status"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.events = Counter(
            "interestlens_events",
            "Events posted, by outcome (stored, duplicate, rejected).",
            ["outcome"],
            registry=r,
        )
        self.recommendations = Counter(
            "interestlens_recommendations",
            "Recommended items served.",
            registry=r,
        )
        self.slates = Counter(
            "interestlens_slates", "Recommendation requests answered.", registry=r
        )
        self.explored = Counter(
            "interestlens_items_explored",
            "Recommended items that exploration, not the ranking, put in the slate.",
            registry=r,
        )
        self.reward = Summary(
            "interestlens_feedback_reward", "Rewards received through feedback.", registry=r
        )
        self.items = Counter("interestlens_items_put", "Items added or replaced.", registry=r)
        self.forgotten = Counter("interestlens_users_forgotten", "Users erased.", registry=r)
        self.refit = Histogram(
            "interestlens_refit_duration_seconds",
            "Wall time of the refits this process started, from start to published.",
            buckets=(10, 30, 60, 120, 300, 600, 1200, 2400, 3600),
            registry=r,
        )
        Gauge(
            "interestlens_model_version",
            "Generation of the snapshot answering (0: not fitted).",
            registry=r,
        ).set_function(model_version)
        Gauge(
            "interestlens_model_age_seconds",
            "Seconds since the snapshot answering was built.",
            registry=r,
        ).set_function(model_age)


class Observe:
    """ASGI middleware: request id, body-size limit, latency metric and one JSON access-log line.

    Every response carries ``X-Request-ID`` (the caller's, when it sent a sane one). A
    body larger than ``max_body_bytes`` is refused with 413 in the error shape, from its
    declared length before it is read, or as soon as a streamed body passes the limit.
    The log line holds method, route template, path, status, duration and request id;
    never a header, so never an API key.
    """

    def __init__(self, app: ASGIApp, *, metrics: Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one connection scope (HTTP ones are observed, others passed through)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        given = headers.get("x-request-id", "")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        status = 500
        recorded = False
        limit = self.max_body_bytes
        received = 0

        def record() -> None:
            nonlocal recorded
            recorded = True
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.latency.labels(template, scope["method"], str(status)).observe(elapsed)
            access_log.info(json.dumps(_line(scope, template, status, elapsed, request_id)))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                record()  # before the last byte leaves: a caller that has the answer sees it counted
            await send(message)

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, f"the body is larger than the limit of {limit} bytes")
            return message

        try:
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                response = error_response(
                    413,
                    "payload_too_large",
                    f"the body ({declared} bytes) is larger than the limit of {limit} bytes",
                    "body",
                )
                await response(scope, receive, send_with_id)
            else:
                await self.app(scope, bounded_receive, send_with_id)
        finally:
            if not recorded:  # an error escaped before an answer was sent
                record()


def _line(
    scope: Scope, template: str, status: int, elapsed: float, request_id: str
) -> dict[str, Any]:
    client = scope.get("client")
    return {
        "request_id": request_id,
        "method": scope["method"],
        "route": template,
        "path": scope["path"],
        "status": status,
        "duration_ms": round(elapsed * 1000, 3),
        "client": client[0] if client else None,
    }
