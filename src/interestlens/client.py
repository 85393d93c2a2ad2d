"""`Client`: the Python client of the interestlens HTTP service (``interestlens.serve``).

Typed methods, one per endpoint, over :mod:`httpx`. Requests that are safe to send
twice are retried when the connection fails (refused, reset, dropped before the
answer); event batches are made safe to send twice by giving every event without an
``event_id`` a fresh one before the first attempt, so the server stores a retried
batch once. An error answer raises :class:`ApiError` carrying the service's error shape.

Examples
--------
>>> from interestlens.client import Client
>>> with Client("http://127.0.0.1:8000", api_key="...") as client:   # doctest: +SKIP
...     client.ingest([{"user_id": "42", "item_id": "318", "type": "click"}])["stored"]
...     [r["item_id"] for r in client.recommend("42", k=5)["items"]]
1
['2571', '296', '593', '2959', '50']
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, TypedDict
from urllib.parse import quote

import httpx


class Rejection(TypedDict):
    """A refused event: its 0-based index in what was sent, and why."""

    index: int
    reason: str


class IngestResult(TypedDict):
    """What the service did with posted events."""

    stored: int
    duplicates: int
    rejected: int
    rejections: list[Rejection]


class Recommendation(TypedDict):
    """One recommended item (``score`` is ``None`` for an item drawn beyond the ranking)."""

    item_id: str
    score: float | None
    rank: int
    reason: str
    explored: bool
    propensity: float


class Recommendations(TypedDict):
    """A slate and the ``request_id`` under which feedback on it is taken."""

    user_id: str
    request_id: str
    items: list[Recommendation]


class Health(TypedDict):
    """What ``/healthz`` says."""

    status: str
    fitted: bool
    model_version: int | None
    model_age_seconds: float | None
    store_reachable: bool


class ApiError(Exception):
    """An error answer of the service.

    Attributes
    ----------
    status
        The HTTP status.
    code, message, field
        The error shape's fields (``field`` names where, e.g. ``"body.events[3].item_id"``).
    """

    def __init__(self, status: int, code: str, message: str, field: str | None) -> None:
        super().__init__(f"{status} {code}: {message}" + (f" ({field})" if field else ""))
        self.status, self.code, self.message, self.field = status, code, message, field


#: Failures before the request left: retried for every request.
_UNSENT = (httpx.ConnectError, httpx.ConnectTimeout)
#: Also failures after which the request may have reached the server (the connection
#: dropped before the answer): retried only where sending twice is harmless. A timeout
#: waiting for the answer is never retried: the server may still be at work.
_DROPPED = (*_UNSENT, httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)


class Client:
    """A client of one interestlens service.

    Parameters
    ----------
    url
        The service's base URL, e.g. ``"http://127.0.0.1:8000"``.
    api_key
        Sent as ``X-API-Key`` (``None``: only ``health`` works).
    timeout
        Seconds per request.
    retries
        Extra attempts after a connection failure, with exponential backoff from
        ``backoff`` seconds. Never after an answer, whatever its status.
    backoff
        First wait between attempts, doubled each time.
    """

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.1,
    ) -> None:
        if retries < 0:
            raise ValueError(f"retries must be >= 0, not {retries}")
        headers = {"X-API-Key": api_key} if api_key else {}
        self.retries = retries
        self.backoff = backoff
        self._http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- transport -----------------------------------------------------------------
    def _request(
        self, method: str, path: str, *, idempotent: bool, **kwargs: Any
    ) -> httpx.Response:
        retry_on = _DROPPED if idempotent else _UNSENT
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, **kwargs)
                break
            except retry_on:
                if attempt >= self.retries:
                    raise
                time.sleep(self.backoff * 2**attempt)
                attempt += 1
        if response.status_code >= 400:
            raise _error(response)
        return response

    def _json(self, method: str, path: str, *, idempotent: bool = True, **kwargs: Any) -> Any:
        return self._request(method, path, idempotent=idempotent, **kwargs).json()

    # ----- endpoints -----------------------------------------------------------------
    def ingest(
        self, events: Iterable[Mapping[str, Any]], *, batch_size: int = 10_000
    ) -> IngestResult:
        """Post events (dicts with :class:`~interestlens.data.Event`'s fields) in batches.

        Events without an ``event_id`` get a fresh one first, so a batch resent after a
        dropped connection is stored once. Rejections are indexed into ``events``.
        """
        rows = [dict(e) for e in events]
        for row in rows:
            if not row.get("event_id"):
                row["event_id"] = uuid.uuid4().hex
        total: IngestResult = {"stored": 0, "duplicates": 0, "rejected": 0, "rejections": []}
        for start in range(0, len(rows), batch_size):
            part = self._json(
                "POST", "/v1/events", json={"events": rows[start : start + batch_size]}
            )
            total["stored"] += part["stored"]
            total["duplicates"] += part["duplicates"]
            total["rejected"] += part["rejected"]
            total["rejections"] += [
                {"index": r["index"] + start, "reason": r["reason"]} for r in part["rejections"]
            ]
        return total

    def put_item(self, item_id: str, **fields: Any) -> dict[str, Any]:
        """Add or replace an item (``title``, ``text``, ``categories``, ``tags``, ...); its interests."""
        return self._json("PUT", f"/v1/items/{_seg(item_id)}", json=fields)

    def get_item(self, item_id: str) -> dict[str, Any]:
        """An item's fields."""
        return self._json("GET", f"/v1/items/{_seg(item_id)}")

    def delete_item(self, item_id: str) -> dict[str, Any]:
        """Take an item out of the catalogue: ``{"item_id", "removed": True}`` (404 for an unknown item)."""
        return self._json("DELETE", f"/v1/items/{_seg(item_id)}", idempotent=True)

    def recommend(
        self, user_id: str, k: int = 10, *, explore: float = 0.0, explain: bool = False
    ) -> Recommendations:
        """The ``k`` items the user most likely wants next, with the slate's ``request_id``."""
        params = {"k": k, "explore": explore, "explain": str(explain).lower()}
        return self._json("GET", f"/v1/users/{_seg(user_id)}/recommendations", params=params)

    def feedback(self, request_id: str, item_id: str, reward: float) -> bool:
        """Reward an item of a served slate; whether a live policy learned from it.

        Not retried once the request may have arrived: a reward counts once.
        """
        body = {"request_id": request_id, "item_id": item_id, "reward": reward}
        return bool(self._json("POST", "/v1/feedback", idempotent=False, json=body)["learned"])

    def interests(self, user_id: str) -> dict[str, Any]:
        """The user's interest profile."""
        return self._json("GET", f"/v1/users/{_seg(user_id)}/interests")

    def similar(self, item_id: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` items closest to ``item_id``, with their similarity."""
        doc = self._json("GET", f"/v1/items/{_seg(item_id)}/similar", params={"k": k})
        return [(i["item_id"], i["similarity"]) for i in doc["items"]]

    def forget(self, user_id: str) -> dict[str, Any]:
        """Erase a user everywhere (needs an admin key); what was erased."""
        return self._json("DELETE", f"/v1/users/{_seg(user_id)}")

    def refit(self, *, wait: float | None = None, poll: float = 0.5) -> dict[str, Any]:
        """Start a refit (needs an admin key): ``started``, ``running``, ``how``, ``model_version``.

        With ``wait`` (seconds), return only once ``/healthz`` shows a newer model
        version than when the refit started (its answer then holds ``live_version``), or
        raise :class:`TimeoutError` after ``wait`` seconds.
        """
        doc = self._json("POST", "/v1/admin/refit", idempotent=False)
        if wait is None:
            return doc
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            version = self.health()["model_version"]
            if version > doc["model_version"]:
                return {**doc, "live_version": version}
            time.sleep(poll)
        raise TimeoutError(f"no model newer than version {doc['model_version']} after {wait} s")

    def health(self) -> Health:
        """Liveness, model version and age, store reachability."""
        response = self._http.get("/healthz")
        if response.status_code not in (200, 503):
            raise _error(response)
        return response.json()

    def metrics(self) -> str:
        """The Prometheus metrics text."""
        return self._request("GET", "/metrics", idempotent=True).text


def _seg(value: str) -> str:
    """A path segment, percent-encoded."""
    return quote(str(value), safe="")


def _error(response: httpx.Response) -> ApiError:
    try:
        err = response.json()["error"]
        return ApiError(response.status_code, err["code"], err["message"], err.get("field"))
    except (ValueError, KeyError, TypeError):
        return ApiError(response.status_code, "error", response.text[:200], None)
