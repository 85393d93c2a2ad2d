"""EventValidator: every row is either an event or a rejection with its row number and reason."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest

from interestlens.data import Event, EventValidator, LoadReport, Rejection, ValidationOptions


def reasons(v: EventValidator) -> list[tuple[int, str]]:
    return [(r.row, r.reason) for r in v.report.rejections]


def test_five_bad_rows_among_good_ones():
    raw = pd.DataFrame(
        {
            "event_id": ["e1", "e2", "e3", "e4", "e5", "e6", "e1", "e8"],
            "user_id": ["u1", "", "u2", "u2", "u3", "u4", "u5", "u6"],
            "item_id": ["i1", "i2", "i1", "i2", "i3", "i1", "i2", "i3"],
            "type": ["rating", "click", "view", "rating", "teleport", "view", "view", "click"],
            "value": ["4", "1", "1", "6", "1", "1", "1", "2"],
            "timestamp": [
                "1700000000",
                "1700000001",
                "yesterday",
                "1700000003",
                "1700000004",
                "2024-01-02T03:04:05Z",
                "1700000006",
                "1700000007",
            ],
        }
    )
    v = EventValidator(ValidationOptions(rating_range=(1, 5)), source="test")
    ev = v.validate(raw)
    assert ev["event_id"].tolist() == ["e1", "e6", "e8"]
    assert reasons(v) == [
        (2, "missing user_id"),
        (3, "unparsable timestamp 'yesterday'"),
        (4, "rating 6 out of range [1, 5]"),
        (5, "unknown event type 'teleport'"),
        (7, "duplicate event_id 'e1' (first at row 1)"),
    ]
    assert (v.report.loaded, v.report.rejected) == (3, 5)
    assert ev["timestamp"].iloc[1] == pd.Timestamp("2024-01-02T03:04:05Z")
    assert ev["value"].tolist() == [4.0, 1.0, 2.0]


def test_several_reasons_for_one_row_are_joined():
    v = EventValidator(ValidationOptions(default_type="rating", rating_range=(1, 5)))
    v.validate(pd.DataFrame({"user_id": [" "], "item_id": [""], "value": ["9"]}))
    assert reasons(v) == [(1, "missing user_id; missing item_id; rating 9 out of range [1, 5]")]


def test_duplicates_are_found_across_chunks_and_rows_continue():
    v = EventValidator(ValidationOptions(default_type="view"))
    first = v.validate(pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"]}))
    second = v.validate(pd.DataFrame({"user_id": ["c", "a"], "item_id": ["z", "x"]}))
    assert (len(first), len(second)) == (2, 1)
    dup = first["event_id"].iloc[0]
    assert reasons(v) == [(4, f"duplicate event_id {dup!r} (first at row 1)")]


def test_explicit_row_numbers_are_used():
    v = EventValidator(ValidationOptions(default_type="view"))
    v.validate(
        pd.DataFrame({"user_id": ["a", None], "item_id": ["x", "y"]}), rows=np.array([10, 12])
    )
    assert reasons(v) == [(12, "missing user_id")]


def test_values_rules():
    raw = pd.DataFrame(
        {
            "user_id": ["u"] * 6,
            "item_id": ["a", "b", "c", "d", "e", "f"],
            "type": ["view", "purchase", "click", "rating", "view", "view"],
            "value": ["", "-2", "abc", "", "inf", "3.5"],
        }
    )
    v = EventValidator()
    ev = v.validate(raw)
    assert ev["item_id"].tolist() == ["a", "f"]
    assert ev["value"].tolist() == [1.0, 3.5]  # a blank strength means 1
    assert reasons(v) == [
        (2, "value -2 out of range (must be >= 0 for purchase)"),
        (3, "value 'abc' is not a number"),
        (4, "missing value for a rating"),
        (5, "value is not finite"),
    ]


def test_search_needs_no_item_but_text_types_need_text():
    raw = pd.DataFrame(
        {
            "user_id": ["u", "u", "u", "u"],
            "item_id": [None, None, "i", "i"],
            "type": ["search", "search", "tag", "review"],
            "text": ["red shoes", "  ", "funny", None],
        }
    )
    v = EventValidator()
    ev = v.validate(raw)
    assert ev["type"].tolist() == ["search", "tag"]
    assert ev["item_id"].tolist() == [None, "i"]
    assert reasons(v) == [
        (2, "empty text for a search event"),
        (4, "empty text for a review event"),
    ]


@pytest.mark.parametrize(
    ("unit", "raw", "expected"),
    [
        ("s", "1700000000", "2023-11-14T22:13:20Z"),
        ("ms", "1700000000123", "2023-11-14T22:13:20.123Z"),
        ("us", "1700000000000000", "2023-11-14T22:13:20Z"),
        ("s", "2020-02-29 12:00:00+01:00", "2020-02-29T11:00:00Z"),
    ],
)
def test_timestamp_units_and_iso_strings(unit, raw, expected):
    v = EventValidator(ValidationOptions(default_type="view", timestamp_unit=unit))
    ev = v.validate(pd.DataFrame({"user_id": ["u"], "item_id": ["i"], "timestamp": [raw]}))
    assert v.report.rejections == []
    assert ev["timestamp"].iloc[0] == pd.Timestamp(expected)


def test_timestamp_in_the_wrong_unit_is_rejected():
    v = EventValidator(ValidationOptions(default_type="view", timestamp_unit="s"))
    v.validate(
        pd.DataFrame(
            {"user_id": ["u", "u"], "item_id": ["i", "j"], "timestamp": ["1700000000000", ""]}
        )
    )
    assert reasons(v) == [
        (1, "timestamp '1700000000000' outside 1970–2099 (wrong unit?)"),
        (2, "missing timestamp"),
    ]


def test_context_must_be_a_json_object():
    v = EventValidator(ValidationOptions(default_type="click"))
    ev = v.validate(
        pd.DataFrame(
            {
                "user_id": ["u", "u", "u"],
                "item_id": ["a", "b", "c"],
                "context": ['{"device": "phone"}', "[1, 2]", ""],
            }
        )
    )
    assert ev["context"].tolist() == [{"device": "phone"}, None]
    assert reasons(v) == [(2, "context is not a JSON object")]


def test_unknown_items_reject():
    v = EventValidator(ValidationOptions(default_type="view"), known_items=["a"])
    ev = v.validate(pd.DataFrame({"user_id": ["u", "u"], "item_id": ["a", "zz"]}))
    assert ev["item_id"].tolist() == ["a"]
    assert reasons(v) == [(2, "unknown item_id 'zz'")]
    assert v.created_items == []


def test_unknown_items_create():
    opts = ValidationOptions(default_type="view", unknown_items="create")
    v = EventValidator(opts, known_items=["a"])
    ev = v.validate(pd.DataFrame({"user_id": ["u", "u", "w"], "item_id": ["a", "zz", "b"]}))
    assert ev["item_id"].tolist() == ["a", "zz", "b"]
    assert v.created_items == ["b", "zz"]
    assert (v.report.created_items, v.report.rejected) == (2, 0)


def test_schema_problems_raise_instead_of_rejecting_every_row():
    v = EventValidator(ValidationOptions(default_type="view"))
    with pytest.raises(ValueError, match=r"unknown event columns \['colour'\]"):
        v.validate(pd.DataFrame({"user_id": ["u"], "item_id": ["i"], "colour": ["red"]}))
    with pytest.raises(ValueError, match="need a user_id column"):
        v.validate(pd.DataFrame({"item_id": ["i"]}))
    with pytest.raises(ValueError, match="give a default event type"):
        EventValidator().validate(pd.DataFrame({"user_id": ["u"], "item_id": ["i"]}))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"default_type": "like"}, "default_type 'like' is not an event type"),
        ({"unknown_items": "ignore"}, "unknown_items must be"),
        ({"timestamp_unit": "h"}, "timestamp_unit must be one of"),
    ],
)
def test_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ValidationOptions(**kwargs)


def test_derived_event_ids_match_the_event_record():
    ts = pd.Timestamp("2024-03-01T10:00:00.5Z")
    v = EventValidator(ValidationOptions(default_type="click"))
    ev = v.validate(pd.DataFrame({"user_id": ["42"], "item_id": ["318"], "timestamp": [str(ts)]}))
    expected = Event("42", "318", "click", timestamp=ts.to_pydatetime()).event_id
    assert ev["event_id"].tolist() == [expected]


def test_report_to_dict_merge_and_csv(tmp_path):
    a = LoadReport(source="f.csv", loaded=3, rejections=[Rejection(2, "missing user_id")])
    b = LoadReport(loaded=1, rejections=[Rejection(9, 'say "hi", twice')], duplicates=4)
    a.merge(b)
    assert a.to_dict() == {
        "source": "f.csv",
        "loaded": 4,
        "rejected": 2,
        "duplicates": 4,
        "created_items": 0,
        "rejections": [
            {"row": 2, "reason": "missing user_id"},
            {"row": 9, "reason": 'say "hi", twice'},
        ],
    }
    json.dumps(a.to_dict())
    out = tmp_path / "rejections.csv"
    a.write_csv(out)
    with open(out, newline="") as fh:
        assert list(csv.reader(fh)) == [
            ["source", "row", "reason"],
            ["f.csv", "2", "missing user_id"],
            ["f.csv", "9", 'say "hi", twice'],
        ]


def test_default_type_fills_blank_types_in_a_type_column():
    v = EventValidator(ValidationOptions(default_type="view"))
    ev = v.validate(
        pd.DataFrame({"user_id": ["u", "w"], "item_id": ["a", "b"], "type": ["click", " "]})
    )
    assert ev["type"].tolist() == ["click", "view"]
    assert v.report.rejections == []


@pytest.mark.parametrize(
    "raw",
    [
        pd.DataFrame({"user_id": ["u", "w"], "item_id": ["a", "b"], "type": ["view", "click"]}),
        pd.DataFrame({"user_id": [None], "item_id": ["a"], "type": ["view"]}),
        pd.DataFrame(
            {"user_id": pd.Series([], dtype=object), "item_id": pd.Series([], dtype=object)}
        ),
    ],
    ids=["good", "all-rejected", "empty"],
)
def test_output_has_the_canonical_dtypes_whatever_the_chunk_held(raw):
    from interestlens.data.validation import empty_events

    ev = EventValidator(ValidationOptions(default_type="view")).validate(raw)
    assert ev.dtypes.to_dict() == empty_events().dtypes.to_dict()


def test_wrong_types_are_refused_once_and_integral_floats_are_integer_ids():
    raw = pd.DataFrame(
        {
            "user_id": pd.Series(
                ["u1", 7.0, True, None, "u5", pd.Timestamp("2024-01-01")], dtype=object
            ),
            "item_id": pd.Series(["i1", "i2", "i3", "i4", ["i5"], "i6"], dtype=object),
            "type": ["view"] * 6,
            "value": pd.Series([1, 2.5, "3", 4, 5, {"v": 1}], dtype=object),
        }
    )
    v = EventValidator(ValidationOptions())
    events = v.validate(raw)
    assert events[["user_id", "item_id", "value"]].values.tolist() == [
        ["u1", "i1", 1.0],
        ["7", "i2", 2.5],
    ]
    assert reasons(v) == [
        (3, "user_id has type bool (True); ids must be strings or integers"),
        (4, "missing user_id"),
        (5, "item_id has type list (['i5']); ids must be strings or integers"),
        (
            6,
            "user_id has type datetime (Timestamp('2024-01-01 00:00:00')); ids must be strings "
            "or integers; value has type object ({'v': 1}); expected a number",
        ),
    ]


def test_typed_columns_are_checked_without_a_loop_when_they_fit():
    from interestlens.data.validation import type_errors

    assert type_errors(pd.Series(["a", None, "b"]), "user_id", "id") == {}
    assert type_errors(pd.Series([1, 2], dtype="int64"), "user_id", "id") == {}
    assert type_errors(pd.Series([1.0, np.nan, 3.0]), "user_id", "id") == {}
    assert type_errors(pd.Series([1.0, 2.25]), "user_id", "id") == {
        1: "user_id has type float (2.25); ids must be strings or integers"
    }
    assert type_errors(pd.Series([True, False]), "value", "number") == {
        0: "value has type bool (True); expected a number",
        1: "value has type bool (False); expected a number",
    }
    ts = pd.Series(pd.to_datetime(["2024-01-01"], utc=True))
    assert type_errors(ts, "timestamp", "timestamp") == {}
    assert type_errors(ts, "user_id", "id") == {
        0: "user_id has type datetime (Timestamp('2024-01-01 00:00:00+0000',...); "
        "ids must be strings or integers"  # values are cut to 40 characters
    }


# ----- timestamps beyond what nanoseconds hold (1677-09-22 .. 2262-04-11): a rejected row --
def test_far_datetimes_from_records_are_rejected_by_row_not_raised():
    import datetime as dt

    from interestlens.data import Dataset

    utc = dt.timezone.utc
    records = [
        {"user_id": "u", "item_id": "a", "timestamp": dt.datetime(74, 1, 1, tzinfo=utc)},
        {"user_id": "u", "item_id": "b", "timestamp": dt.datetime(9999, 12, 31, 23, 59)},
        {"user_id": "u", "item_id": "c", "timestamp": dt.datetime(2020, 1, 1, tzinfo=utc)},
        {"user_id": "u", "item_id": "d", "timestamp": dt.date(74, 1, 1)},
    ]
    ds = Dataset.from_records(records)
    assert ds.events["item_id"].tolist() == ["c"]
    assert [(r.row, r.reason) for r in ds.report.rejections] == [
        (1, "timestamp 0074-01-01T00:00:00+00:00 outside 1970–2099"),
        (2, "timestamp 9999-12-31T23:59:00 outside 1970–2099"),
        (4, "timestamp 0074-01-01 outside 1970–2099"),
    ]
    # A column of nothing but far datetimes (pandas makes it datetime64[us]) too.
    ds = Dataset.from_records(records[:1])
    assert len(ds.events) == 0 and ds.report.rejected == 1


def test_far_date_time_strings_from_records_are_rejected_by_row_not_raised():
    from interestlens.data import Dataset

    stamps = [
        "0074-01-01T00:00:00Z",
        "9999-12-31T23:59:59-23:59",  # year 10000 in UTC
        "0000-01-01T00:00:00Z",
        "2020-01-01T00:00:00+05:00",
    ]
    ds = Dataset.from_records(
        [{"user_id": "u", "item_id": str(i), "timestamp": t} for i, t in enumerate(stamps)]
    )
    assert ds.events["item_id"].tolist() == ["3"]
    assert ds.events["timestamp"].iloc[0] == pd.Timestamp("2019-12-31T19:00:00Z")
    assert [(r.row, r.reason) for r in ds.report.rejections] == [
        (1, "timestamp '0074-01-01T00:00:00Z' outside 1970–2099"),
        (2, "timestamp '9999-12-31T23:59:59-23:59' outside 1970–2099"),
        (3, "timestamp '0000-01-01T00:00:00Z' outside 1970–2099"),
    ]


@pytest.mark.parametrize("chunk", [{}, {"chunk_size": 2}])
def test_far_timestamps_in_a_file_are_rejected_by_row_not_raised(tmp_path, chunk):
    from interestlens.datasets import load

    f = tmp_path / "events.csv"
    f.write_text(
        "user_id,item_id,type,timestamp\n"
        "u,a,view,0074-01-01T00:00:00Z\n"
        "u,b,view,1e300\n"
        "u,c,view,-99999999999999\n"
        "u,d,view,2020-01-01T00:00:00Z\n"
        "u,e,view,99999999999999999999999\n"
        "u,f,view,9999-12-31\n"
    )
    ds = load(f, **chunk)
    assert ds.events["item_id"].tolist() == ["d"]
    assert [(r.row, r.reason) for r in ds.report.rejections] == [
        (1, "timestamp '0074-01-01T00:00:00Z' outside 1970–2099"),
        (2, "timestamp '1e300' outside 1970–2099 (wrong unit?)"),
        (3, "timestamp '-99999999999999' outside 1970–2099 (wrong unit?)"),
        (5, "timestamp '99999999999999999999999' outside 1970–2099 (wrong unit?)"),
        (6, "timestamp '9999-12-31' outside 1970–2099"),
    ]


def test_far_timestamps_in_typed_files_are_rejected_by_row_not_raised(tmp_path):
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    from interestlens.datasets import load

    f = tmp_path / "events.jsonl"
    rows = [
        {"user_id": "u", "item_id": "a", "type": "view", "timestamp": -1e20},
        {"user_id": "u", "item_id": "b", "type": "view", "timestamp": 1e300},
        {"user_id": "u", "item_id": "c", "type": "view", "timestamp": 1577836800},
    ]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    ds = load(f)
    assert ds.events["item_id"].tolist() == ["c"]
    assert [(r.row, r.reason) for r in ds.report.rejections] == [
        (1, "timestamp -1e+20 outside 1970–2099 (wrong unit?)"),
        (2, "timestamp 1e+300 outside 1970–2099 (wrong unit?)"),
    ]

    f = tmp_path / "events.parquet"
    stamps = [dt.datetime(74, 1, 1), dt.datetime(2020, 1, 1)]
    pq.write_table(
        pa.table(
            {
                "user_id": ["u", "u"],
                "item_id": ["a", "b"],
                "type": ["view", "view"],
                "timestamp": pa.array(stamps, pa.timestamp("us", tz="UTC")),
            }
        ),
        f,
    )
    ds = load(f)
    assert ds.events["item_id"].tolist() == ["b"]
    assert [(r.row, r.reason) for r in ds.report.rejections] == [
        (1, "timestamp 0074-01-01T00:00:00+00:00 outside 1970–2099")
    ]


@pytest.mark.parametrize(
    "values",
    [
        ["a", " b ", None, "", "  "],
        [1.0, 2.5, float("nan"), None],
        [1, 2, 3],
        [np.int64(4), True, "x\t", pd.NA],
        ["é ", "\u00a0x\u00a0", "\n"],
    ],
)
def test_small_columns_are_trimmed_as_large_ones_are(values, monkeypatch):
    """`_as_str` works value by value up to `_SMALL` values: the same answer as pandas."""
    from interestlens.data import validation

    series = pd.Series(values, dtype=object)
    small = validation._as_str(series).tolist()
    monkeypatch.setattr(validation, "_SMALL", -1)
    assert small == validation._as_str(series).tolist()
