"""Generic event files (CSV, TSV, Parquet, JSON Lines) through the readers and `datasets.load`."""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interestlens.data import EventValidator, Item, ValidationOptions
from interestlens.data.readers import detect_format, iter_event_chunks, resolve_mapping
from interestlens.datasets import load

FIVE_BAD = """event_id,user_id,item_id,type,value,timestamp
e1,u1,i1,rating,4,1700000000
e2,,i2,rating,3,1700000001
e3,u2,i1,click,1,not-a-time
e4,u2,i2,rating,11,1700000003
e5,u3,i3,teleport,1,1700000004
e6,u3,i1,view,1,1700000005
e1,u4,i2,view,1,1700000006
e8,u4,i3,purchase,2,2023-01-01T00:00:00Z
"""
FIVE_REASONS = [
    (2, "missing user_id"),
    (3, "unparsable timestamp 'not-a-time'"),
    (4, "rating 11 out of range [1, 5]"),
    (5, "unknown event type 'teleport'"),
    (7, "duplicate event_id 'e1' (first at row 1)"),
]


def rejections(ds) -> list[tuple[int, str]]:
    return [(r.row, r.reason) for r in ds.report.rejections]


def test_five_bad_rows_are_reported_and_the_rest_loaded(tmp_path):
    f = tmp_path / "events.csv"
    f.write_text(FIVE_BAD)
    ds = load(f, rating_range=(1, 5))
    assert ds.events["event_id"].tolist() == ["e1", "e6", "e8"]
    assert ds.events["type"].tolist() == ["rating", "view", "purchase"]
    assert rejections(ds) == FIVE_REASONS
    assert (ds.report.loaded, ds.report.rejected, ds.report.source) == (3, 5, str(f))
    assert ds.name == "events"


def test_small_chunks_give_the_same_rows_and_numbers(tmp_path):
    f = tmp_path / "events.csv"
    f.write_text(FIVE_BAD + "e9,u5,i1,view\n")
    whole = load(f, rating_range=(1, 5))
    chunked = load(f, rating_range=(1, 5), chunk_size=2)
    expected = [*FIVE_REASONS, (9, "expected 6 fields, found 4")]
    assert rejections(whole) == rejections(chunked) == expected
    pd.testing.assert_frame_equal(whole.events, chunked.events)


def test_wrong_field_count_is_a_rejection_not_an_error(tmp_path):
    f = tmp_path / "clicks.csv"
    f.write_text("user_id,item_id\nu1,i1\nu2,i2,extra\nu3\n\nu4,i4\n")
    ds = load(f, default_type="click")
    assert ds.events["user_id"].tolist() == ["u1", "u4"]
    assert rejections(ds) == [(2, "expected 2 fields, found 3"), (3, "expected 2 fields, found 1")]


def test_aliases_are_detected_and_imply_the_rating_type(tmp_path):
    f = tmp_path / "ratings.csv"
    f.write_text("userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n1,1029,3.0,1260759179\n")
    ds = load(f)
    assert ds.events[["user_id", "item_id", "type", "value"]].values.tolist() == [
        ["1", "31", "rating", 2.5],
        ["1", "1029", "rating", 3.0],
    ]
    assert ds.events["timestamp"].iloc[0] == pd.Timestamp("2009-12-14T02:52:24Z")
    assert resolve_mapping(["userId", "movieId", "rating", "timestamp"]) == (
        {"userId": "user_id", "movieId": "item_id", "rating": "value", "timestamp": "timestamp"},
        "rating",
    )


def test_explicit_mapping_wins_over_aliases_and_extra_columns_are_ignored(tmp_path):
    f = tmp_path / "log.tsv"
    f.write_text("who\twhat\tuser\taction\tcolour\nw1\tx\tignored\tpurchase\tred\n")
    ds = load(f, mapping={"user_id": "who", "item_id": "what"})
    assert ds.events[["user_id", "item_id", "type", "value"]].values.tolist() == [
        ["w1", "x", "purchase", 1.0]
    ]
    assert ds.report.rejections == []


def test_mapping_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"unknown fields \['colour'\]"):
        resolve_mapping(["a"], {"colour": "a"})
    with pytest.raises(ValueError, match=r"mapped column\(s\) \['b'\] not in the file"):
        resolve_mapping(["a"], {"user_id": "b"})


def test_parquet_keeps_types_and_numbers_rows(tmp_path):
    f = tmp_path / "events.parquet"
    pd.DataFrame(
        {
            "user_id": [7, 8, 9],
            "item_id": [101, 102, 103],
            "type": ["click", "view", "dance"],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"], utc=True),
        }
    ).to_parquet(f)
    ds = load(f)
    assert ds.events[["user_id", "item_id", "type"]].values.tolist() == [
        ["7", "101", "click"],
        ["8", "102", "view"],
    ]
    assert ds.events["timestamp"].tolist() == list(
        pd.to_datetime(["2024-01-01", "2024-01-02"], utc=True)
    )
    assert rejections(ds) == [(3, "unknown event type 'dance'")]


def test_jsonl_with_broken_lines(tmp_path):
    f = tmp_path / "events.jsonl"
    lines = [
        json.dumps(
            {"user_id": "u1", "item_id": "i1", "type": "click", "context": {"page": "home"}}
        ),
        "{not json",
        json.dumps(["a", "list"]),
        "",
        json.dumps({"user_id": "u2", "type": "search", "query": "red shoes"}),
        json.dumps({"user_id": "u3", "item_id": "i3", "type": "rating"}),
    ]
    f.write_text("\n".join(lines) + "\n")
    ds = load(f)
    assert ds.events[["user_id", "item_id", "type", "text"]].values.tolist() == [
        ["u1", "i1", "click", None],
        ["u2", None, "search", "red shoes"],
    ]
    assert ds.events["context"].iloc[0] == {"page": "home"}
    assert rejections(ds) == [
        (2, "line is not valid JSON"),
        (3, "line is a JSON array, expected one object per line"),
        (5, "missing value for a rating"),
    ]


def test_gzipped_csv(tmp_path):
    f = tmp_path / "events.csv.gz"
    with gzip.open(f, "wt") as fh:
        fh.write("user_id,item_id,type\nu1,i1,view\nu2,i2,click\n")
    assert detect_format(f) == "csv"
    ds = load(f)
    assert ds.events["type"].tolist() == ["view", "click"]
    assert ds.name == "events.csv"


def test_unknown_extension_is_refused(tmp_path):
    f = tmp_path / "events.xlsx"
    f.write_text("x")
    with pytest.raises(ValueError, match="unknown file type"):
        load(f)


def test_unknown_items_reject_or_create(tmp_path):
    f = tmp_path / "views.csv"
    f.write_text("user_id,item_id\nu1,known\nu2,new1\nu3,new2\nu4,new1\n")
    catalogue = [Item("known", title="Known item")]
    strict = load(f, default_type="view", items=catalogue)
    assert strict.events["item_id"].tolist() == ["known"]
    assert rejections(strict) == [
        (2, "unknown item_id 'new1'"),
        (3, "unknown item_id 'new2'"),
        (4, "unknown item_id 'new1'"),
    ]
    assert strict.items["item_id"].tolist() == ["known"]
    lenient = load(f, default_type="view", items=catalogue, unknown_items="create")
    assert lenient.events["item_id"].tolist() == ["known", "new1", "new2", "new1"]
    assert lenient.items["item_id"].tolist() == ["known", "new1", "new2"]
    assert lenient.items["title"].tolist() == ["Known item", "", ""]
    assert (lenient.report.created_items, lenient.report.rejected) == (2, 0)


def test_without_a_type_the_file_needs_a_default_type(tmp_path):
    f = tmp_path / "views.csv"
    f.write_text("user_id,item_id\nu1,i1\n")
    with pytest.raises(ValueError, match="give a default event type"):
        load(f)


def test_iter_event_chunks_streams_validated_chunks(tmp_path):
    f = tmp_path / "events.csv"
    f.write_text("user_id,item_id,type\n" + "".join(f"u{i},i{i},view\n" for i in range(7)))
    v = EventValidator(ValidationOptions())
    sizes = [len(c) for c in iter_event_chunks(f, v, chunk_size=3)]
    assert sizes == [3, 3, 1]
    assert (v.report.loaded, v.report.rejected) == (7, 0)


GOOD = st.builds(
    lambda u, i, r, t: ("good", f"u{u},i{i},rating,{r},{1_600_000_000 + t}"),
    st.integers(0, 5),
    st.integers(0, 5),
    st.sampled_from(["1", "2.5", "5"]),
    st.integers(0, 10**6),
)
BAD = st.sampled_from(
    [
        ("bad", ",i1,rating,3,1600000000"),
        ("bad", "u1,i1,rating,3,someday"),
        ("bad", "u1,i1,rating,0.25,1600000000"),
        ("bad", "u1,i1,poke,1,1600000000"),
        ("bad", "u1,i1,rating"),
        ("bad", "u1,,view,1,1600000000"),
    ]
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.one_of(GOOD, BAD), min_size=1, max_size=30), chunk_size=st.integers(1, 8))
def test_every_row_is_loaded_or_rejected(rows, chunk_size):
    lines = [f"e{n},{body}" for n, (_, body) in enumerate(rows)]
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "events.csv"
        f.write_text("event_id,user_id,item_id,type,value,timestamp\n" + "\n".join(lines) + "\n")
        ds = load(f, rating_range=(0.5, 5), chunk_size=chunk_size)
    bad_rows = [n + 1 for n, (kind, _) in enumerate(rows) if kind == "bad"]
    assert len(ds.events) + ds.report.rejected == len(rows)
    assert [r.row for r in ds.report.rejections] == bad_rows
    assert ds.events["event_id"].tolist() == [
        f"e{n}" for n, (kind, _) in enumerate(rows) if kind == "good"
    ]
