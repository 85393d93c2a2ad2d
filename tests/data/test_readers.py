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
from interestlens.store import open_store

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


# ----- what a new user hit (issue 17): each bad row costs only itself, via load and ingest ----


def load_and_ingest(f: Path, tmp_path: Path, **options) -> tuple[list[list[str]], list]:
    """Kept (user, item) pairs and rejections, the same through `load` and `EventStore.ingest`."""
    ds = load(f, **options)
    store = open_store(f"sqlite://{tmp_path / f'{f.name}.db'}")
    try:
        report = store.ingest(f, progress=False)
        stored = store.events()[["user_id", "item_id"]].values.tolist()
    finally:
        store.close()
    kept = ds.events[["user_id", "item_id"]].values.tolist()
    assert stored == kept
    assert rejections(ds) == [(r.row, r.reason) for r in report.rejections]
    assert report.loaded == len(kept)
    return kept, rejections(ds)


UNTERMINATED = "unterminated quote: the quoted field opened on this row does not close"


def test_an_unterminated_quote_costs_only_its_row(tmp_path):
    f = tmp_path / "quote.csv"
    f.write_text(
        'user_id,item_id,type\nu1,i1,view\nu2,"i2,view\nu3,i3,view\nu4,i4,view\nu5,i5,view\n'
        "u6,i6,view\n"
    )
    kept, rejected = load_and_ingest(f, tmp_path)
    assert kept == [["u1", "i1"], ["u3", "i3"], ["u4", "i4"], ["u5", "i5"], ["u6", "i6"]]
    assert rejected == [(2, UNTERMINATED)]


def test_a_quote_left_open_in_a_large_file_is_found_within_the_field_limit(tmp_path):
    # The open quote would swallow the whole file; it is given up at csv.field_size_limit()
    # characters (not at the end of the file), and every line after it is read again.
    f = tmp_path / "long.csv"
    good = "".join(f"u{k},i{k},view\n" for k in range(20_000))
    f.write_text('user_id,item_id,type\nu0,"i0,view\n' + good)
    kept, rejected = load_and_ingest(f, tmp_path, chunk_size=5_000)
    assert kept == [[f"u{k}", f"i{k}"] for k in range(20_000)]
    assert rejected == [
        (
            1,
            "the quoted field opened on this row runs past the limit of 131,072 characters "
            "per field (csv.field_size_limit): a quote left open, or a field over the limit",
        )
    ]


def test_quoted_newlines_are_still_one_field(tmp_path):
    f = tmp_path / "reviews.csv"
    f.write_text(
        'user_id,item_id,type,text\nu1,i1,review,"great,\nreally ""great"""\nu2,i2,review,meh\n'
    )
    ds = load(f)
    assert ds.events["text"].tolist() == ['great,\nreally "great"', "meh"]
    assert rejections(ds) == []


def test_one_invalid_utf8_byte_costs_only_its_row(tmp_path):
    f = tmp_path / "latin.csv"
    rows = [f"u{k},i{k},view\n".encode() for k in range(9)]
    f.write_bytes(
        b"user_id,item_id,type\n" + b"".join(rows[:5]) + b"u\xff,ix,view\n" + b"".join(rows[5:])
    )
    kept, rejected = load_and_ingest(f, tmp_path)
    assert kept == [[f"u{k}", f"i{k}"] for k in range(9)]
    assert rejected == [(6, "the row is not valid utf-8: byte 0xff at character 2")]


def test_a_10mb_field_costs_only_its_row(tmp_path):
    f = tmp_path / "big.csv"
    f.write_text("user_id,item_id,type\nu1,i1,view\nu2," + "x" * 10_000_000 + ",view\nu3,i3,view\n")
    kept, rejected = load_and_ingest(f, tmp_path)
    assert kept == [["u1", "i1"], ["u3", "i3"]]
    assert rejected == [
        (
            2,
            "field 2 (item_id) is 10,000,000 characters long, over the limit of 131,072 "
            "characters per field (csv.field_size_limit)",
        )
    ]


def test_a_line_over_the_line_limit_is_skipped_without_reading_it_whole(tmp_path, monkeypatch):
    from interestlens.data import readers

    monkeypatch.setattr(readers, "MAX_LINE_CHARS", 1_000)
    f = tmp_path / "long_line.csv"
    f.write_text("user_id,item_id,type\nu1,i1,view\nu2,i2," + "y" * 5_000 + "\nu3,i3,view\n")
    kept, rejected = load_and_ingest(f, tmp_path)
    assert kept == [["u1", "i1"], ["u3", "i3"]]
    assert rejected == [(2, "the row is 5,007 characters long, over the limit of 1,000")]
    j = tmp_path / "long_line.jsonl"
    j.write_text(
        '{"user_id": "u1", "item_id": "i1", "type": "view"}\n'
        + json.dumps({"user_id": "u2", "item_id": "z" * 5_000, "type": "view"})
        + '\n{"user_id": "u3", "item_id": "i3", "type": "view"}\n'
    )
    kept, rejected = load_and_ingest(j, tmp_path)
    assert kept == [["u1", "i1"], ["u3", "i3"]]
    assert rejected == [(2, "line is 5,049 characters long, over the limit of 1,000")]


def test_a_jsonl_file_holding_one_json_array_reads_its_objects(tmp_path):
    # An export of records is usually one array; its objects are the rows a user means.
    f = tmp_path / "array.jsonl"
    f.write_text(
        json.dumps(
            [
                {"user_id": "u1", "item_id": "i1", "type": "view"},
                {"user_id": "u2", "item_id": "i2", "type": "click"},
                "not an object",
                {"user_id": "u4", "item_id": "i4", "type": "view", "value": 12345678901234567890},
            ]
        )
    )
    kept, rejected = load_and_ingest(f, tmp_path)
    assert kept == [["u1", "i1"], ["u2", "i2"], ["u4", "i4"]]
    assert rejected == [(3, "element is not a JSON object, expected an object")]


def test_a_json_array_streams_across_blocks_and_stops_loudly_at_bad_json(tmp_path, monkeypatch):
    from interestlens.data import readers

    monkeypatch.setattr(readers, "_JSON_BLOCK", 7)  # every element crosses a block boundary
    f = tmp_path / "pretty.json"
    objs = [{"user_id": f"u{k}", "item_id": f"i{k}", "type": "view", "value": k} for k in range(5)]
    f.write_text(json.dumps(objs, indent=2))
    ds = load(f)
    assert ds.events["value"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert rejections(ds) == []
    f.write_text(
        json.dumps(objs[:2])[:-1] + ', {"user_id": "u9" "item_id": 1}, ' + json.dumps(objs[2]) + "]"
    )
    ds = load(f)
    assert ds.events["user_id"].tolist() == ["u0", "u1"]
    assert rejections(ds) == [
        (
            3,
            "not valid JSON (Expecting ',' delimiter); "
            "the rows after it cannot be told apart and are not read",
        )
    ]


def test_wrong_types_in_jsonl_are_refused_by_field(tmp_path):
    f = tmp_path / "types.jsonl"
    rows = [
        {"user_id": 1.5, "item_id": "i1", "type": "view", "timestamp": 1700000000},
        {"user_id": "u2", "item_id": [1], "type": "view", "timestamp": 1700000001},
        {"user_id": "u3", "item_id": "i3", "type": "view", "timestamp": True},
        {"user_id": {"a": 1}, "item_id": "i4", "type": "view", "timestamp": 1700000003},
        {"user_id": 7.0, "item_id": 8, "type": "view", "timestamp": "2024-01-01T00:00:00Z"},
        {"user_id": "u6", "item_id": "i6", "type": "rating", "value": False, "timestamp": 1},
    ]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    kept, rejected = load_and_ingest(f, tmp_path)
    assert kept == [["7", "8"]]
    assert rejected == [
        (1, "user_id has type float (1.5); ids must be strings or integers"),
        (2, "item_id has type list ([1]); ids must be strings or integers"),
        (3, "timestamp has type bool (True); expected a string, a number or a datetime"),
        (4, "user_id has type object ({'a': 1}); ids must be strings or integers"),
        (6, "value has type bool (False); expected a number"),
    ]


@pytest.mark.parametrize(
    ("column", "values", "reasons"),
    [
        (
            "user_id",
            [1.5, 7.0],
            {1: "user_id has type float (1.5); ids must be strings or integers"},
        ),
        (
            "item_id",
            [[1], [2, 3]],
            {
                1: "item_id has type list ([1]); ids must be strings or integers",
                2: "item_id has type list ([2, 3]); ids must be strings or integers",
            },
        ),
        (
            "timestamp",
            [True, False],
            {
                1: "timestamp has type bool (True); expected a string, a number or a datetime",
                2: "timestamp has type bool (False); expected a string, a number or a datetime",
            },
        ),
        (
            "event_id",
            [{"k": 1}, {"k": 2}],
            {
                1: "event_id has type object ({'k': 1}); ids must be strings or integers",
                2: "event_id has type object ({'k': 2}); ids must be strings or integers",
            },
        ),
        (
            "value",
            [True, False],
            {
                1: "value has type bool (True); expected a number",
                2: "value has type bool (False); expected a number",
            },
        ),
    ],
)
def test_wrong_types_in_parquet_are_refused_not_coerced(tmp_path, column, values, reasons):
    columns = {"user_id": ["u1", "u2"], "item_id": ["i1", "i2"], "type": ["view", "view"]}
    columns[column] = values
    f = tmp_path / "typed.parquet"
    pd.DataFrame(columns).to_parquet(f)
    kept, rejected = load_and_ingest(f, tmp_path)
    assert rejected == sorted(reasons.items())
    expected = [
        [columns["user_id"][k], columns["item_id"][k]] for k in range(2) if k + 1 not in reasons
    ]
    assert kept == [[str(u).removesuffix(".0"), i] for u, i in expected]


def test_control_characters_in_ids_are_refused(tmp_path):
    f = tmp_path / "nul.csv"
    f.write_text(
        "event_id,user_id,item_id,type\ne1,u\x001,i1,view\ne2,u2,i\x1b[31m2,view\ne\x073,u3,i3,view\ne4,u4,i4,view\n"
    )
    kept, rejected = load_and_ingest(f, tmp_path)
    assert kept == [["u4", "i4"]]
    assert rejected == [
        (1, "user_id 'u\\x001' contains a control character ('\\x00')"),
        (2, "item_id 'i\\x1b[31m2' contains a control character ('\\x1b')"),
        (3, "event_id 'e\\x073' contains a control character ('\\x07')"),
    ]
    j = tmp_path / "nul.jsonl"
    j.write_text(
        '{"user_id": "u\\u00001", "item_id": "i1", "type": "view"}\n{"user_id": "u2", "item_id": "i2", "type": "view"}\n'
    )
    kept, rejected = load_and_ingest(j, tmp_path)
    assert kept == [["u2", "i2"]]
    assert rejected == [(1, "user_id 'u\\x001' contains a control character ('\\x00')")]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("zero.csv", ""),
        ("header.csv", "user_id,item_id,type\n"),
        ("blank.jsonl", "\n\n"),
    ],
)
def test_a_file_without_rows_is_an_error_not_an_empty_success(tmp_path, name, content):
    f = tmp_path / name
    f.write_text(content)
    with pytest.raises(ValueError, match=f"^{f}: no rows$"):
        load(f, default_type="view")
    store = open_store(f"sqlite://{tmp_path / 's.db'}")
    with pytest.raises(ValueError, match=f"^{f}: no rows$"):
        store.ingest(f, options=ValidationOptions(default_type="view"), progress=False)
    store.close()


def test_an_empty_parquet_file_is_an_error(tmp_path):
    f = tmp_path / "none.parquet"
    pd.DataFrame(
        {"user_id": pd.Series([], dtype=str), "item_id": pd.Series([], dtype=str)}
    ).to_parquet(f)
    with pytest.raises(ValueError, match=f"^{f}: no rows$"):
        load(f, default_type="view")


def test_content_after_a_json_array_is_rejected_not_dropped(tmp_path):
    f = tmp_path / "first_array.jsonl"
    f.write_text(
        json.dumps([{"user_id": "u0", "item_id": "i0", "type": "view"}])
        + "\n\n"
        + json.dumps({"user_id": "u1", "item_id": "i1", "type": "view"})
        + "\n"
    )
    kept, rejected = load_and_ingest(f, tmp_path)
    assert kept == [["u0", "i0"]]
    assert rejected == [
        (
            2,
            "content after the JSON array's closing ']' is not read (a file is one JSON "
            "array, or one JSON object per line)",
        )
    ]


def test_bad_json_early_in_a_large_array_is_reported_at_once(tmp_path, monkeypatch):
    from interestlens.data import readers

    monkeypatch.setattr(readers, "MAX_LINE_CHARS", 10_000)
    f = tmp_path / "broken.json"
    good = json.dumps({"user_id": "u", "item_id": "i", "type": "view"})
    f.write_text("[" + good + ", {bad}, " + ", ".join([good] * 2_000) + "]")
    ds = load(f)
    assert len(ds.events) == 1
    assert rejections(ds) == [
        (
            2,
            "not valid JSON (Expecting property name enclosed in double quotes); "
            "the rows after it cannot be told apart and are not read",
        )
    ]


def test_json_rows_over_the_limit_or_not_utf8_are_rejected(tmp_path, monkeypatch):
    from interestlens.data import readers

    monkeypatch.setattr(readers, "MAX_LINE_CHARS", 200)
    monkeypatch.setattr(readers, "_JSON_BLOCK", 64)
    good = json.dumps({"user_id": "u1", "item_id": "i1", "type": "view"}).encode()
    bad_byte = b'{"user_id": "u\xff2", "item_id": "i2", "type": "view"}'
    lines = tmp_path / "bytes.jsonl"
    lines.write_bytes(good + b"\n" + bad_byte + b"\n" + good.replace(b"u1", b"u3") + b"\n")
    kept, rejected = load_and_ingest(lines, tmp_path)
    assert kept == [["u1", "i1"], ["u3", "i1"]]
    assert rejected == [(2, "line is not valid utf-8: byte 0xff at character 15")]
    array = tmp_path / "bytes.json"
    array.write_bytes(
        b"  \n   [" + good + b", " + bad_byte + b", " + good.replace(b"u1", b"u3") + b"]"
    )
    ds = load(array)
    assert ds.events["user_id"].tolist() == ["u1", "u3"]
    assert rejections(ds) == [(2, "not valid utf-8: byte 0xff")]
    huge = json.dumps({"user_id": "u2", "item_id": "x" * 500, "type": "view"}).encode()
    array.write_bytes(b"[" + good + b", " + huge + b", " + good + b"]")
    ds = load(array)
    assert ds.events["user_id"].tolist() == ["u1"]
    assert rejections(ds) == [
        (2, "over 200 characters long; the rows after it cannot be told apart and are not read")
    ]


def test_an_unreadable_header_is_an_error_naming_the_problem(tmp_path):
    cases = {
        "bytes.csv": (
            b"user\xff,item\nx,y\n",
            "the header row is not valid utf-8: byte 0xff at character 5",
        ),
        "quote.csv": (
            b'user,"item\nx,y\n',
            r"the header row cannot be read \(unexpected end of data\)",
        ),
    }
    for name, (content, message) in cases.items():
        f = tmp_path / name
        f.write_bytes(content)
        with pytest.raises(ValueError, match=f"^{f}: {message}$"):
            load(f, default_type="view")


def test_parquet_integer_ids_with_nulls_keep_every_digit(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    f = tmp_path / "big_ids.parquet"
    big = 1_234_567_890_123_456_789  # not a float: 2**53 < big
    table = pa.table(
        {
            "user_id": pa.array([big, None, 7], type=pa.int64()),
            "item_id": pa.array(["i1", "i2", "i3"]),
            "type": pa.array(["view"] * 3),
        }
    )
    pq.write_table(table, f)
    kept, rejected = load_and_ingest(f, tmp_path)
    assert kept == [[str(big), "i1"], ["7", "i3"]]
    assert rejected == [(2, "missing user_id")]


def test_jsonl_integer_ids_with_gaps_keep_every_digit(tmp_path):
    big = 1_234_567_890_123_456_789
    f = tmp_path / "big_ids.jsonl"
    f.write_text(
        json.dumps({"user_id": big, "item_id": "i1", "type": "view"})
        + "\n"
        + json.dumps({"item_id": "i2", "type": "view"})
        + "\n"
        + json.dumps({"user_id": 7, "item_id": "i3", "type": "view", "value": 2})
        + "\n"
    )
    kept, rejected = load_and_ingest(f, tmp_path)
    assert kept == [[str(big), "i1"], ["7", "i3"]]
    assert rejected == [(2, "missing user_id")]
