"""Named factories for models, policies and off-policy estimators, and one ``clone``.

A :class:`Registry` maps names to classes registered as ``"module:Class"`` strings, so
listing or checking names imports nothing (no torch, no scikit-learn) and a class whose
optional dependency is missing fails only when it is asked for. :meth:`Registry.build`
checks the parameters against the class's signature before calling it, so a typo in a
configuration file names itself instead of surfacing as a ``TypeError`` deep in a fit.

Every layer may import this module; it imports no other module of the package.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator, Mapping
from typing import Any, Generic, TypeVar

__all__ = ["Registry", "clone"]

T = TypeVar("T")


class Registry(Mapping[str, type[T]], Generic[T]):
    """Lowercase names to classes, imported on first use.

    Parameters
    ----------
    kind
        What the registry holds (``"model"``, ``"policy"``), used in error messages.
    entries
        Initial ``name -> "module:Class"`` (or class) entries, in listing order.

    Examples
    --------
    >>> reg = Registry("codec", {"json": "json.decoder:JSONDecoder"})
    >>> "json" in reg, reg.names()
    (True, ['json'])
    >>> reg.build("json", strict=False).strict
    False
    >>> reg.build("yaml")
    Traceback (most recent call last):
    ...
    ValueError: unknown codec 'yaml'; known: json
    >>> reg.build("json", strcit=False)
    Traceback (most recent call last):
    ...
    ValueError: codec 'json' has no parameter 'strcit'; known: object_hook, parse_float, parse_int, parse_constant, strict, object_pairs_hook
    """

    def __init__(self, kind: str, entries: Mapping[str, str | type[T]] | None = None) -> None:
        self.kind = kind
        self._targets: dict[str, str | type[T]] = {}
        for name, target in (entries or {}).items():
            self.register(name, target)

    def register(self, name: str, target: str | type[T]) -> None:
        """Register ``target`` (a class, or ``"module:Class"`` to import lazily) as ``name``.

        Raises
        ------
        ValueError
            ``name`` is taken, not lowercase, or ``target`` is a string without ``:``.
        """
        if name != name.lower() or not name:
            raise ValueError(f"{self.kind} name {name!r} must be a non-empty lowercase string")
        if name in self._targets:
            raise ValueError(f"{self.kind} {name!r} is registered already")
        if isinstance(target, str) and ":" not in target:
            raise ValueError(f"{self.kind} {name!r}: target {target!r} is not 'module:Class'")
        self._targets[name] = target

    def names(self) -> list[str]:
        """The registered names, in registration order."""
        return list(self._targets)

    def _key(self, name: object) -> str | None:
        key = name.lower() if isinstance(name, str) else None
        return key if key in self._targets else None

    def __contains__(self, name: object) -> bool:
        return self._key(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._targets)

    def __len__(self) -> int:
        return len(self._targets)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._targets)})"

    def _unknown(self, name: object) -> str:
        return f"unknown {self.kind} {name!r}; known: {', '.join(self._targets)}"

    def __getitem__(self, name: str) -> type[T]:
        """The class registered as ``name`` (any case), imported now if need be.

        Raises
        ------
        KeyError
            For an unknown name (the message lists the known ones).
        ImportError
            When the class's module (or an optional dependency of it) cannot be imported;
            the message names the entry.
        """
        key = self._key(name)
        if key is None:
            raise KeyError(self._unknown(name))
        target = self._targets[key]
        if not isinstance(target, str):
            return target
        module, _, attr = target.partition(":")
        try:
            cls = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ImportError(f"{self.kind} {key!r} is not available: {exc}") from exc
        self._targets[key] = cls
        return cls

    def _class(self, name: str) -> type[T]:
        """``self[name]``, with an unknown or unavailable name as a ``ValueError``."""
        if name not in self:
            raise ValueError(self._unknown(name))
        try:
            return self[name]
        except ImportError as exc:
            raise ValueError(str(exc)) from exc

    def parameters(self, name: str) -> list[str]:
        """Keyword parameters that :meth:`build` accepts for ``name``.

        A constructor taking ``**kwargs`` passes them to its base class, so the bases'
        parameters count as well, up to the first constructor without ``**kwargs``.

        Raises
        ------
        ValueError
            For an unknown or unavailable name.
        """
        names: list[str] = []
        for klass in self._class(name).__mro__:
            if "__init__" not in vars(klass):
                continue
            params = list(inspect.signature(klass.__init__).parameters.values())[1:]
            names += [
                p.name
                for p in params
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in names
            ]
            if not any(p.kind is p.VAR_KEYWORD for p in params):
                break
        return names

    def build(self, name: str, /, **params: Any) -> T:
        """An instance of the class registered as ``name``, built with ``params``.

        Raises
        ------
        ValueError
            For an unknown name, an unavailable class, a parameter the class does not take
            (each message names the offender and lists what is known), or a constructor
            refusing the parameters.
        """
        cls = self._class(name)
        known = self.parameters(name)
        unknown = [p for p in params if p not in known]
        if unknown:
            s = "s" if len(unknown) > 1 else ""
            raise ValueError(
                f"{self.kind} {name!r} has no parameter{s} {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(known)}"
            )
        try:
            return cls(**params)
        except TypeError as exc:
            raise ValueError(f"bad parameters for {self.kind} {name!r}: {exc}") from exc


def clone(estimator: T) -> T:
    """An unfitted copy of a model or policy: same hyperparameters, same runtime components.

    Hyperparameters come from ``estimator.get_params()``; the attributes named in its
    ``_components`` (an encoder, a policy's ranker) are shared, not copied, because they
    are services rather than learned state.

    Raises
    ------
    TypeError
        When the class cannot be rebuilt from its parameters (an ``__init__`` argument it
        does not keep as an attribute of the same name).

    Examples
    --------
    >>> from interestlens.models import Popularity
    >>> model = Popularity(window_days=7)
    >>> copy = clone(model)
    >>> copy, copy is model
    (Popularity(window_days=7, random_state=0), False)
    """
    params = estimator.get_params()  # type: ignore[attr-defined]
    for name in getattr(estimator, "_components", ()):
        params[name] = getattr(estimator, name)
    try:
        return type(estimator)(**params)
    except TypeError as exc:
        raise TypeError(
            f"cannot clone {type(estimator).__name__} from its parameters {sorted(params)}: {exc}"
        ) from exc
