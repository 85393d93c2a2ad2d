"""`ServeSettings`: API keys with their scopes, and the limits every request is held to."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping
from dataclasses import InitVar, dataclass, field

#: The scopes a key may hold; ``admin`` implies the other two.
SCOPES: frozenset[str] = frozenset({"read", "write", "admin"})

#: The environment variable whose value, when set, is an admin key.
ENV_KEY = "INTERESTLENS_API_KEY"

#: Bounds of ``k`` (recommendations, similar items).
MAX_K = 1000


def hash_key(key: str) -> str:
    """The SHA-256 hex digest under which a key is kept (the key itself never is)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ServeSettings:
    """How the HTTP service authenticates and bounds requests.

    Parameters
    ----------
    api_keys
        Key -> scopes (``"read"``, ``"write"``, ``"admin"``; admin implies read and
        write). Only the keys' SHA-256 hashes are kept; the value of the environment
        variable ``INTERESTLENS_API_KEY``, when set at construction, is added as an admin key.
    max_body_bytes
        Largest request body; a bigger one is refused with 413 before it is parsed.
    max_batch
        Most events one ``POST /v1/events`` may carry (413 beyond).
    follow_store
        Fold in the events other processes stored before each answer about a user
        (:meth:`Engine.catch_up`): on for several workers or hosts over one store.
    poll_seconds
        How often the server looks for a version a refit published, and at the refit
        triggers (0: never; refits then only on ``POST /v1/admin/refit``, swapped in by
        the process that ran them).
    refit_every
        Start a background refit once this many events arrived after the answering
        model (0: not on a count).
    refit_interval
        Start one once the answering model is this many seconds old and any event
        arrived since (0: not on age).
    refit_threads
        Threads of a background refit (``None``: ``$INTERESTLENS_THREADS``, else 1).

    Raises
    ------
    ValueError
        An unknown scope, an empty key, or a non-positive limit.

    Examples
    --------
    >>> s = ServeSettings(api_keys={"k1": ["read"]})
    >>> s.scopes_of("k1"), s.scopes_of("nope")
    (frozenset({'read'}), None)
    >>> "k1" in repr(s)
    False
    """

    api_keys: InitVar[Mapping[str, Iterable[str]] | None] = None
    max_body_bytes: int = 10 * 1024 * 1024
    max_batch: int = 10_000
    follow_store: bool = False
    poll_seconds: float = 1.0
    refit_every: int = 0
    refit_interval: float = 0.0
    refit_threads: int | None = None
    key_scopes: dict[str, frozenset[str]] = field(default_factory=dict, init=False)

    def __post_init__(self, api_keys: Mapping[str, Iterable[str]] | None) -> None:
        if self.max_body_bytes <= 0:
            raise ValueError(f"max_body_bytes must be positive, not {self.max_body_bytes}")
        if self.max_batch <= 0:
            raise ValueError(f"max_batch must be positive, not {self.max_batch}")
        for name in ("poll_seconds", "refit_every", "refit_interval"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, not {getattr(self, name)}")
        keys = dict(api_keys or {})
        env = os.environ.get(ENV_KEY)
        if env:
            keys[env] = [*keys.get(env, ()), "admin"]
        for key, scopes in keys.items():
            if not key:
                raise ValueError("api_keys: an empty key")
            wanted = frozenset([scopes] if isinstance(scopes, str) else scopes)
            unknown = sorted(wanted - SCOPES)
            if unknown:
                raise ValueError(f"api_keys: unknown scopes {unknown}; known: {sorted(SCOPES)}")
            if "admin" in wanted:
                wanted = SCOPES
            self.key_scopes[hash_key(key)] = wanted

    def scopes_of(self, key: str) -> frozenset[str] | None:
        """The scopes of ``key``, or ``None`` for a key not configured.

        Every stored hash is compared, each in constant time, so the answer's timing
        does not tell how much of a key was right.
        """
        digest = hash_key(key)
        found = None
        for known, scopes in self.key_scopes.items():
            if hmac.compare_digest(known, digest):
                found = scopes
        return found
