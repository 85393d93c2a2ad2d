"""Models by name for the command line and scripts, resolved lazily.

The names and classes live in :data:`interestlens.models.MODELS`; this module only
turns a name (or a comma-separated list of names) into constructors, importing a
model's module when it is first built, so a model that is missing (not written yet,
or lacking an optional dependency) fails with "model X is not available" instead of
breaking the import of the others.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from interestlens.models.base import Recommender

__all__ = ["MODELS", "available_models", "make_model", "parse_models"]


def make_model(name: str, **params: Any) -> Recommender:
    """A model by name with its default hyperparameters (``params`` override them).

    Raises
    ------
    ValueError
        For an unknown name, or "model X is not available" when its module or class
        cannot be imported.

    Examples
    --------
    >>> make_model("popularity")
    Popularity(window_days=None, random_state=0)
    """
    from interestlens.models import build_model

    return build_model(name, **params)


class _Registry(Mapping[str, Callable[[], Recommender]]):
    """Name to default constructor; the constructor imports the model when called."""

    def _names(self) -> list[str]:
        from interestlens.models import MODELS as known

        return list(known)

    def __getitem__(self, name: str) -> Callable[[], Recommender]:
        if name.lower() not in self._names():
            raise KeyError(f"unknown model {name!r}; known: {', '.join(self._names())}")
        return functools.partial(make_model, name.lower())

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def __repr__(self) -> str:
        return f"MODELS({', '.join(self._names())})"


#: Model name to a constructor with default hyperparameters, e.g. ``MODELS["ease"]()``.
MODELS: Mapping[str, Callable[[], Recommender]] = _Registry()


def available_models() -> list[str]:
    """Names whose model can be imported now.

    Examples
    --------
    >>> "popularity" in available_models()
    True
    """
    from interestlens.models import model_class

    ok = []
    for name in MODELS:
        try:
            model_class(name)
        except ValueError:
            continue
        ok.append(name)
    return ok


def parse_models(text: str) -> dict[str, Callable[[], Recommender]]:
    """Constructors for a comma-separated list of names, each checked to be importable.

    Examples
    --------
    >>> list(parse_models("popularity"))
    ['popularity']
    """
    from interestlens.models import model_class

    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        raise ValueError("no model named; give --models popularity[,...]")
    out: dict[str, Callable[[], Recommender]] = {}
    for name in names:
        if name not in MODELS:
            raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
        model_class(name)  # fails early, before anything is fitted
        out[name] = MODELS[name]
    return out
