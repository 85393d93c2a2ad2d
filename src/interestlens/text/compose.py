"""The text of each item, composed from its fields and the tags users gave it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

#: Fields read from the items frame itself; any other name is an ``attributes`` key.
BUILTIN_FIELDS: tuple[str, ...] = ("title", "text", "categories", "tags")
_TERMINAL = (".", "!", "?", "…", ":", ";")


def _as_text(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, list | tuple | np.ndarray):
        return ", ".join(s for s in (str(v).strip() for v in value) if s)
    return str(value).strip()


def _join(parts: list[str]) -> str:
    """``"A. B. C"``: a full stop after each part but the last, unless it ends a sentence."""
    parts = [p for p in parts if p]
    last = len(parts) - 1
    return " ".join(
        p if k == last or p.endswith(_TERMINAL) else f"{p}." for k, p in enumerate(parts)
    )


def user_tags(events: pd.DataFrame) -> dict[str, list[str]]:
    """Distinct tags per item from ``tag`` events, most frequent first.

    Tags that differ only in case or surrounding space are one tag, shown in its most
    common spelling; ties in frequency go to the tag given first.

    Examples
    --------
    >>> ev = pd.DataFrame({"item_id": ["1", "1", "1", "2"], "type": ["tag"] * 4,
    ...                    "text": ["pixar", "Funny", "funny ", "dark"]})
    >>> user_tags(ev)
    {'1': ['Funny', 'pixar'], '2': ['dark']}
    """
    tags = events.loc[events["type"] == "tag", ["item_id", "text"]].dropna()
    tags = tags.assign(
        text=tags["text"].astype(str).str.strip(), item_id=tags["item_id"].astype(str)
    )
    tags = tags[tags["text"] != ""]
    if tags.empty:
        return {}
    tags = tags.assign(key=tags["text"].str.casefold(), pos=np.arange(len(tags)))
    spellings = (
        tags.groupby(["item_id", "key", "text"], sort=False)["pos"]
        .agg(["size", "min"])
        .reset_index()
    )
    per_tag = spellings.groupby(["item_id", "key"], sort=False).agg(
        n=("size", "sum"), first=("min", "min")
    )
    shown = (
        spellings.sort_values(["size", "min"], ascending=[False, True])
        .drop_duplicates(["item_id", "key"])
        .set_index(["item_id", "key"])["text"]
    )
    per_tag = per_tag.join(shown).reset_index()
    per_tag = per_tag.sort_values(["item_id", "n", "first"], ascending=[True, False, True])
    return {item: list(group["text"]) for item, group in per_tag.groupby("item_id", sort=False)}


def _merge_tags(own: list[str], given: list[str], cap: int) -> str:
    seen: set[str] = set()
    merged: list[str] = []
    for tag in (*own, *given):
        if len(merged) >= cap:
            break
        tag = str(tag).strip()
        key = tag.casefold()
        if tag and key not in seen:
            seen.add(key)
            merged.append(tag)
    return ", ".join(merged)


def compose_item_text(
    items: pd.DataFrame,
    events: pd.DataFrame | None = None,
    *,
    fields: Sequence[str] = ("title", "categories", "text", "tags"),
    max_tags: int = 20,
) -> pd.Series:
    """The text each item is encoded from.

    Parameters
    ----------
    items
        Items frame (``item_id``, ``title``, ``text``, ``categories``, ``tags``,
        ``attributes``).
    events
        Events frame; its ``tag`` events add the users' tags (the tag is in ``text``).
    fields
        What to include, in order. ``"title"`` and ``"text"`` are the columns,
        ``"categories"`` the categories joined by ", ", ``"tags"`` the item's own tags
        followed by the users' tags, most frequent first, case-insensitive duplicates
        merged, at most ``max_tags`` in all. Any other name is a key of ``attributes``
        (``"description"``, ``"brand"``...); list values are joined by ", ".
        Callers who treat the categories as labels to predict (genres, say) must leave
        ``"categories"`` out, or the labels leak into the vectors.
    max_tags
        Cap on the number of tags.

    Returns
    -------
    pandas.Series
        Indexed by ``item_id``, named ``"text"``: the non-empty fields joined as
        sentences (``"Title. Cat1, Cat2. Description. tag1, tag2"``); an item with no
        field filled gets ``""``.

    Raises
    ------
    ValueError
        For a field that is neither built in nor an attribute key of any item in
        ``items``; so a frame of one item lacking that attribute raises too, and callers
        composing a single new item should pass only the fields it has.

    Examples
    --------
    >>> items = pd.DataFrame({
    ...     "item_id": ["1", "2"], "title": ["Toy Story (1995)", "Heat (1995)"], "text": ["", ""],
    ...     "categories": [["Animation", "Comedy"], ["Crime"]], "tags": [[], []],
    ...     "attributes": [{"director": "John Lasseter"}, {}]})
    >>> events = pd.DataFrame({"item_id": ["1", "1", "1"], "type": ["tag"] * 3,
    ...                        "text": ["pixar", "Pixar", "toys"]})
    >>> compose_item_text(items, events).tolist()
    ['Toy Story (1995). Animation, Comedy. pixar, toys', 'Heat (1995). Crime']
    >>> compose_item_text(items, events, fields=("title", "director", "tags"))["1"]
    'Toy Story (1995). John Lasseter. pixar, toys'
    """
    attribute_keys: set[str] = set()
    for attrs in items.get("attributes", pd.Series([], dtype=object)):
        if isinstance(attrs, dict):
            attribute_keys.update(attrs)
    unknown = [f for f in fields if f not in BUILTIN_FIELDS and f not in attribute_keys]
    if unknown:
        raise ValueError(
            f"unknown item text fields {unknown}: expected {list(BUILTIN_FIELDS)} or an "
            f"attribute key ({sorted(attribute_keys)[:20]})"
        )
    if max_tags < 0:
        raise ValueError(f"max_tags must be >= 0, not {max_tags}")

    n = len(items)
    ids = items["item_id"].astype(str)
    given = user_tags(events) if events is not None and "tags" in fields else {}
    columns: list[list[str]] = []
    for f in fields:
        if f == "tags":
            own = items["tags"] if "tags" in items else pd.Series([[]] * n, index=items.index)
            columns.append(
                [
                    _merge_tags(
                        list(t) if isinstance(t, list | tuple | np.ndarray) else [],
                        given.get(i, []),
                        max_tags,
                    )
                    for t, i in zip(own, ids, strict=True)
                ]
            )
        elif f in BUILTIN_FIELDS:
            values = items[f] if f in items else pd.Series([""] * n, index=items.index)
            columns.append([_as_text(v) for v in values])
        else:
            columns.append(
                [_as_text(a.get(f)) if isinstance(a, dict) else "" for a in items["attributes"]]
            )
    texts = [_join(list(parts)) for parts in zip(*columns, strict=True)] if columns else [""] * n
    return pd.Series(texts, index=pd.Index(ids, name="item_id"), name="text", dtype=object)
