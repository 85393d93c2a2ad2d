"""`create_app`: the HTTP API, a thin shell over the public methods of one :class:`Engine`."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Path, Query, Security
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from interestlens.engine import Engine, NotFittedError
from interestlens.serve.errors import ApiError, error_response, install_error_handlers
from interestlens.serve.follow import Follower, RefitStarted, Refitter
from interestlens.serve.observe import Metrics, Observe
from interestlens.serve.schemas import (
    ErrorBody,
    EventBatch,
    EventsBody,
    EventsOut,
    FeedbackIn,
    FeedbackOut,
    ForgetOut,
    HealthOut,
    InterestScore,
    ItemIn,
    ItemOut,
    ItemPutOut,
    ItemRemovedOut,
    ProfileOut,
    RecommendationOut,
    RecommendationsOut,
    RejectionOut,
    SimilarItem,
    SimilarOut,
)
from interestlens.serve.settings import MAX_K, ServeSettings

_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key.")

#: The error answers every authenticated route may give, for the OpenAPI document.
_AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No API key, or an unknown one."},
    403: {"model": ErrorBody, "description": "The key lacks the scope."},
    422: {"model": ErrorBody, "description": "A parameter or field is invalid (named in `field`)."},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "Unknown item."}
}

ItemId = Annotated[str, Path(min_length=1, max_length=512)]
UserId = Annotated[str, Path(min_length=1, max_length=512)]
K = Annotated[int, Query(ge=1, le=MAX_K, description=f"How many items, 1 to {MAX_K}.")]


def create_app(engine: Engine, settings: ServeSettings | None = None) -> FastAPI:
    """The HTTP app over ``engine``: events, items, recommendations, feedback, profiles, erasure.

    Every endpoint but ``/healthz`` needs an ``X-API-Key`` with its scope (reads
    ``read``, writes ``write``, erasure and refit ``admin``). Engine calls block, so the
    endpoints are plain functions that FastAPI runs in its threadpool, off the event loop.

    Parameters
    ----------
    engine
        The live engine (fitted, or answering 503 until it is).
    settings
        Keys and limits (default :class:`ServeSettings`: no keys but ``INTERESTLENS_API_KEY``).

    Examples
    --------
    >>> import tempfile
    >>> from fastapi.testclient import TestClient
    >>> from interestlens.engine import Config, Engine
    >>> app = create_app(Engine(Config(data_dir=tempfile.mkdtemp())), ServeSettings({"k": ["read"]}))
    >>> TestClient(app).get("/healthz").json()["fitted"]
    False
    """
    settings = settings or ServeSettings()
    metrics = Metrics(
        model_version=lambda: engine.snapshot.generation if engine.fitted else 0,
        model_age=lambda: time.time() - engine.snapshot.created if engine.fitted else 0.0,
    )
    app = FastAPI(
        title="interestlens",
        summary="User interests, recommendations with exploration, and feedback, live.",
        version="1",
    )
    app.state.engine, app.state.settings, app.state.metrics = engine, settings, metrics
    refitter = Refitter(engine, threads=settings.refit_threads, on_done=metrics.refit.observe)
    app.state.refitter, app.state.follower = refitter, None
    if settings.poll_seconds > 0 and (
        engine.version is not None or settings.refit_every or settings.refit_interval
    ):
        app.state.follower = Follower(
            engine,
            refitter,
            poll_seconds=settings.poll_seconds,
            refit_every=settings.refit_every,
            refit_interval=settings.refit_interval,
        ).start()
    install_error_handlers(app)
    app.add_exception_handler(NotFittedError, _not_fitted)  # type: ignore[arg-type]
    app.add_middleware(Observe, metrics=metrics, max_body_bytes=settings.max_body_bytes)

    read, write, admin = (Depends(_require(settings, s)) for s in ("read", "write", "admin"))

    def fresh() -> None:
        """Before an answer about a user: take in what other workers stored."""
        if settings.follow_store:
            engine.catch_up()

    current = Depends(fresh)

    @app.post(
        "/v1/events",
        response_model=EventsOut,
        dependencies=[write],
        responses={**_AUTH_ERRORS, 413: {"model": ErrorBody, "description": "Too big."}},
    )
    def post_events(body: Annotated[EventsBody, Body()]) -> EventsOut:
        """Store one event or a batch; each bad event is rejected by index, the rest stored.

        Stored events are durable before the answer and count at once in the user's
        recommendations and profile. An ``event_id`` already stored counts as a duplicate
        and is not stored again, so a retried request is harmless.
        """
        events = body.events if isinstance(body, EventBatch) else [body]
        if len(events) > settings.max_batch:
            raise ApiError(
                413,
                "batch_too_large",
                f"{len(events)} events in one request; the limit is {settings.max_batch}",
                "body.events",
            )
        report = engine.ingest([e.model_dump(exclude_none=True) for e in events])
        metrics.events.labels("stored").inc(report.stored)
        metrics.events.labels("duplicate").inc(report.duplicates)
        metrics.events.labels("rejected").inc(report.rejected)
        return EventsOut(
            stored=report.stored,
            duplicates=report.duplicates,
            rejected=report.rejected,
            rejections=[RejectionOut(index=r.row - 1, reason=r.reason) for r in report.rejections],
        )

    @app.put(
        "/v1/items/{item_id}",
        response_model=ItemPutOut,
        dependencies=[write],
        responses=_AUTH_ERRORS,
    )
    def put_item(item_id: ItemId, item: ItemIn) -> ItemPutOut:
        """Add or replace an item; its text is embedded now, so it is recommendable at once."""
        try:
            tags = engine.add_item({"item_id": item_id, **item.model_dump()})
        except ValueError as exc:
            raise ApiError(422, "invalid", str(exc), "body") from exc
        metrics.items.inc()
        return ItemPutOut(
            item_id=item_id,
            interests=[
                InterestScore(interest_id=i.interest_id, label=i.label, score=s) for i, s in tags
            ],
        )

    @app.get(
        "/v1/items/{item_id}",
        response_model=ItemOut,
        dependencies=[read],
        responses={**_AUTH_ERRORS, **_NOT_FOUND},
    )
    def get_item(item_id: ItemId) -> ItemOut:
        """An item: as last put, or as the model was fitted with."""
        return ItemOut(item_id=item_id, **_find_item(engine, item_id))

    @app.delete(
        "/v1/items/{item_id}",
        response_model=ItemRemovedOut,
        dependencies=[write],
        responses={**_AUTH_ERRORS, **_NOT_FOUND},
    )
    def delete_item(item_id: ItemId) -> ItemRemovedOut:
        """Take an item out of the catalogue: never recommended or similar again, not refitted on.

        Users' past events with it stay in their histories. Every worker learns of it
        before its next answer; putting the item again brings it back.
        """
        if not engine.remove_item(item_id):
            raise ApiError(404, "not_found", f"unknown item {item_id!r}", "path.item_id")
        return ItemRemovedOut(item_id=item_id, removed=True)

    @app.get(
        "/v1/users/{user_id}/recommendations",
        response_model=RecommendationsOut,
        dependencies=[read, current],
        responses=_AUTH_ERRORS,
    )
    def recommendations(
        user_id: UserId,
        k: K = 10,
        explore: Annotated[float, Query(ge=0.0, le=1.0, description="Exploration, 0 to 1.")] = 0.0,
        explain: bool = False,
    ) -> RecommendationsOut:
        """The ``k`` items the user most likely wants next (an unknown user gets cold-start items)."""
        recs = engine.recommend(user_id, k, explain=explain, explore=explore)
        metrics.slates.inc()
        metrics.recommendations.inc(len(recs))
        metrics.explored.inc(sum(r.explored for r in recs))
        return RecommendationsOut(
            user_id=user_id,
            request_id=recs[0].request_id if recs else "",
            items=[
                RecommendationOut(
                    item_id=r.item_id,
                    score=None if math.isnan(r.score) else r.score,
                    rank=r.rank,
                    reason=r.reason,
                    explored=r.explored,
                    propensity=r.propensity,
                )
                for r in recs
            ],
        )

    @app.post(
        "/v1/feedback",
        response_model=FeedbackOut,
        dependencies=[write],
        responses={**_AUTH_ERRORS, 404: {"model": ErrorBody, "description": "Unknown slate."}},
    )
    def feedback(body: FeedbackIn) -> FeedbackOut:
        """A reward for an item of a served slate; the exploration policy learns from it."""
        try:
            learned = engine.feedback(body.request_id, body.item_id, body.reward)
        except KeyError as exc:
            raise ApiError(404, "not_found", str(exc.args[0]), "body.request_id") from exc
        except ValueError as exc:
            raise ApiError(422, "invalid", str(exc), "body.reward") from exc
        metrics.reward.observe(body.reward)
        return FeedbackOut(learned=learned)

    @app.get(
        "/v1/users/{user_id}/interests",
        response_model=ProfileOut,
        dependencies=[read, current],
        responses=_AUTH_ERRORS,
    )
    def interests(user_id: UserId) -> ProfileOut:
        """The user's interest profile (empty for an unknown user)."""
        return ProfileOut.model_validate(engine.profile(user_id).to_dict())

    @app.get(
        "/v1/items/{item_id}/similar",
        response_model=SimilarOut,
        dependencies=[read, current],
        responses={**_AUTH_ERRORS, **_NOT_FOUND},
    )
    def similar(item_id: ItemId, k: K = 10) -> SimilarOut:
        """The items closest to this one in text-embedding space."""
        try:
            pairs = engine.similar_items(item_id, k)
        except KeyError as exc:
            raise ApiError(404, "not_found", f"unknown item {item_id!r}", "path.item_id") from exc
        return SimilarOut(
            item_id=item_id, items=[SimilarItem(item_id=i, similarity=s) for i, s in pairs]
        )

    @app.delete(
        "/v1/users/{user_id}",
        response_model=ForgetOut,
        dependencies=[admin],
        responses=_AUTH_ERRORS,
    )
    def forget(user_id: UserId) -> ForgetOut:
        """Erase the user everywhere: events, profile, policy state, caches, saved snapshot."""
        report = engine.forget(user_id)
        metrics.forgotten.inc()
        return ForgetOut.model_validate(report.to_dict())

    @app.post(
        "/v1/admin/refit",
        response_model=RefitStarted,
        status_code=202,
        dependencies=[admin],
        responses=_AUTH_ERRORS,
    )
    def refit() -> RefitStarted:
        """Start fitting a new model on every event held; answers at once (202).

        A saved engine is refitted by a separate process at a lower CPU priority, which
        publishes a new version that every worker swaps to between requests; an engine
        fitted in memory is refitted in a thread and swapped in. Either way readers keep
        being answered from the current model. ``started`` is false when a refit is
        already running; ``/healthz`` shows the new ``model_version`` once it is live.
        """
        engine.snapshot  # noqa: B018 (503 before a first fit: there is nothing to refit)
        started = refitter.start()
        return RefitStarted(
            started=started,
            running=started or refitter.running(),
            how=refitter.how,
            model_version=engine.snapshot.generation,
        )

    @app.get("/healthz", response_model=HealthOut, responses={503: {"model": HealthOut}})
    def healthz() -> Any:
        """Liveness (no key needed): the model version answering, its age, and whether the store answers."""
        state = engine.health()
        reachable, fitted = state["store_reachable"], state["fitted"]
        health = HealthOut(
            status="ok" if reachable and fitted else "degraded",
            fitted=fitted,
            model_version=state["generation"],
            model_age_seconds=time.time() - state["created"] if fitted else None,
            store_reachable=reachable,
            worker=os.getpid(),
        )
        if not reachable:
            return JSONResponse(health.model_dump(), status_code=503)
        return health

    @app.get(
        "/metrics",
        dependencies=[read],
        response_class=Response,
        responses={
            **_AUTH_ERRORS,
            200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text."},
        },
    )
    def prometheus() -> Response:
        """Prometheus metrics of this app."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _require(settings: ServeSettings, scope: str) -> Callable[[str | None], None]:
    """A dependency that lets a request through only with a key holding ``scope``."""

    def check(key: Annotated[str | None, Security(_KEY_HEADER)]) -> None:
        if not key:
            raise ApiError(
                401, "unauthorized", "an X-API-Key header is required", "header.X-API-Key"
            )
        scopes = settings.scopes_of(key)
        if scopes is None:
            raise ApiError(401, "unauthorized", "unknown API key", "header.X-API-Key")
        if scope not in scopes:
            raise ApiError(
                403, "forbidden", f"this key lacks the {scope!r} scope", "header.X-API-Key"
            )

    return check


def _find_item(engine: Engine, item_id: str) -> dict[str, Any]:
    """An item's fields as the engine holds them (:meth:`Engine.item`), or a 404."""
    row = engine.item(item_id)
    if row is None:
        raise ApiError(404, "not_found", f"unknown item {item_id!r}", "path.item_id")
    created = row.get("created_at")
    return {
        "title": _text(row.get("title")),
        "text": _text(row.get("text")),
        "categories": _strings(row.get("categories")),
        "tags": _strings(row.get("tags")),
        "attributes": dict(row.get("attributes") or {}),
        "created_at": None if created is None or created != created else created.to_pydatetime(),
    }


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _strings(value: Any) -> list[str]:
    return [] if value is None or isinstance(value, float) else [str(v) for v in value]


def _not_fitted(request: Any, exc: NotFittedError) -> JSONResponse:
    return error_response(503, "not_fitted", str(exc))
