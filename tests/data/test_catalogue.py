"""Item and user files (`read_items`, `read_users`) on real files, hostile content included."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import interestlens.data as data_pkg
from interestlens import datasets
from interestlens.data import read_items, read_users


def rejections(report) -> list[tuple[int, str]]:
    return [(r.row, r.reason) for r in report.rejections]


HOSTILE_CSV = (
    "sku,name,description,category,tags,price\n"
    'p1,"Tent [/bold]","Two-person, ""ultralight""\nsecond line",outdoor|camping,a|b,120\n'
    "p2,[red]Mug[/red],Émail — 🏕️ مرحبا,kitchen,,9\n"
    ",Nameless,no id,misc,,1\n"
    "p1,Tent again,dup,outdoor,,99\n"
    'p3,"Lamp ""Aurora""",\\N{BELL} not an escape,home | | lighting ,x,\n'
)


def test_items_csv_with_aliases_lists_attributes_and_hostile_text(tmp_path):
    f = tmp_path / "products.csv"
    f.write_text(HOSTILE_CSV, encoding="utf-8")
    items, report = read_items(f)
    assert items["item_id"].tolist() == ["p1", "p2", "p3"]
    assert items["title"].tolist() == ["Tent [/bold]", "[red]Mug[/red]", 'Lamp "Aurora"']
    assert items["text"].tolist() == [
        'Two-person, "ultralight"\nsecond line',
        "Émail — 🏕️ مرحبا",
        "\\N{BELL} not an escape",
    ]
    assert items["categories"].tolist() == [
        ["outdoor", "camping"],
        ["kitchen"],
        ["home", "lighting"],
    ]
    assert items["tags"].tolist() == [["a", "b"], [], ["x"]]
    assert items["attributes"].tolist() == [{"price": "120"}, {"price": "9"}, {}]
    assert rejections(report) == [
        (3, "missing item_id"),
        (4, "duplicate item_id 'p1' (first at row 1)"),
    ]
    assert (report.loaded, report.rejected, report.source) == (3, 2, str(f))
    assert list(items.columns) == [
        "item_id",
        "title",
        "text",
        "categories",
        "tags",
        "attributes",
        "created_at",
    ]


def test_explicit_mapping_separator_and_tsv(tmp_path):
    f = tmp_path / "catalogue.tsv"
    f.write_text(
        "ref\tlabel\tblurb\tkind\tadded\n"
        "A-1\tRed shoes\tLeather\tshoes;women\t2024-03-01T10:00:00Z\n"
        "A-2\tBlue hat\tWool\thats\t1700000000\n"
        "A-3\tOld coat\tTweed\tcoats\tlast tuesday\n"
    )
    items, report = read_items(
        f,
        mapping={
            "item_id": "ref",
            "title": "label",
            "text": "blurb",
            "categories": "kind",
            "created_at": "added",
        },
        list_separator=";",
    )
    assert items[["item_id", "title", "text", "categories"]].values.tolist() == [
        ["A-1", "Red shoes", "Leather", ["shoes", "women"]],
        ["A-2", "Blue hat", "Wool", ["hats"]],
    ]
    assert items["created_at"].tolist() == [
        pd.Timestamp("2024-03-01T10:00:00Z"),
        pd.Timestamp(1700000000, unit="s", tz="UTC"),
    ]
    assert rejections(report) == [(3, "unparsable created_at 'last tuesday'")]


def test_items_reader_keeps_the_rows_after_a_broken_one(tmp_path):
    f = tmp_path / "items.csv"
    f.write_bytes(
        b"id,title\n"
        b"i1,One\n"
        b'i2,"Two\n'  # a quote that never closes
        b"i3,Thr\xffee\n"  # not UTF-8
        b"i4,Four\n"
        b"i\x005,Five\n"  # NUL in the id
        b"i6,Six\n"
    )
    items, report = read_items(f)
    assert items[["item_id", "title"]].values.tolist() == [
        ["i1", "One"],
        ["i4", "Four"],
        ["i6", "Six"],
    ]
    assert rejections(report) == [
        (2, "unterminated quote: the quoted field opened on this row does not close"),
        (3, "the row is not valid utf-8: byte 0xff at character 7"),
        (5, "item_id 'i\\x005' contains a control character ('\\x00')"),
    ]


def test_items_parquet_types_are_checked_and_attributes_are_plain(tmp_path):
    f = tmp_path / "items.parquet"
    pd.DataFrame(
        {
            "item_id": pd.Series([7, 8, 9, 10], dtype="int64"),
            "title": ["Seven", "Eight", "Nine", "Ten"],
            "genres": [["a", "b"], ["c"], [], ["d"]],
            "price": np.array([1.5, 2.0, np.nan, 4.0]),
            "in_stock": [True, False, True, True],
        }
    ).to_parquet(f)
    items, report = read_items(f)
    assert items["item_id"].tolist() == ["7", "8", "9", "10"]
    assert items["categories"].tolist() == [["a", "b"], ["c"], [], ["d"]]
    assert items["attributes"].tolist() == [
        {"price": 1.5, "in_stock": True},
        {"price": 2.0, "in_stock": False},
        {"in_stock": True},
        {"price": 4.0, "in_stock": True},
    ]
    assert all(type(a["in_stock"]) is bool for a in items["attributes"])
    assert json.dumps(items["attributes"].tolist())  # what the store writes
    assert report.rejected == 0


def test_items_jsonl_wrong_types_are_rejected_by_field(tmp_path):
    f = tmp_path / "items.jsonl"
    rows = [
        {"id": "a", "title": "Fine", "categories": ["x", 2], "attributes": {"colour": "red"}},
        {"id": 1.5, "title": "Float id"},
        {"id": True, "title": "Bool id"},
        {"id": "d", "title": ["a", "list"]},
        {"id": "e", "categories": {"not": "a list"}},
        {"id": {"nested": 1}},
        {"id": 7.0, "title": "Integral float id", "categories": "p|q"},
        {"id": "h", "tags": [True]},
    ]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    items, report = read_items(f)
    assert items[["item_id", "title", "categories"]].values.tolist() == [
        ["a", "Fine", ["x", "2"]],
        ["7", "Integral float id", ["p", "q"]],
    ]
    assert items["attributes"].tolist() == [{"colour": "red"}, {}]
    assert rejections(report) == [
        (2, "item_id has type float (1.5); ids must be strings or integers"),
        (3, "item_id has type bool (True); ids must be strings or integers"),
        (4, "title has type list (['a', 'list']); expected a string"),
        (
            5,
            "categories has type dict ({'not': 'a list'}); expected a list or a string separated by '|'",
        ),
        (6, "item_id has type object ({'nested': 1}); ids must be strings or integers"),
        (8, "tags holds a bool (True); expected strings or numbers"),
    ]


def test_a_json_array_file_reads_its_objects_as_rows(tmp_path):
    f = tmp_path / "items.json"
    f.write_text(
        json.dumps(
            [
                {"item_id": "a", "title": "A"},
                ["not", "an", "object"],
                {"item_id": "c", "title": "C"},
            ],
            indent=2,
        )
    )
    items, report = read_items(f)
    assert items[["item_id", "title"]].values.tolist() == [["a", "A"], ["c", "C"]]
    assert rejections(report) == [(2, "element is a JSON array, expected an object")]


def test_duplicates_across_chunks_name_the_first_row(tmp_path):
    f = tmp_path / "items.csv"
    f.write_text("item_id,title\n" + "".join(f"i{k % 3},t{k}\n" for k in range(7)))
    items, report = read_items(f, chunk_size=2)
    assert items[["item_id", "title"]].values.tolist() == [["i0", "t0"], ["i1", "t1"], ["i2", "t2"]]
    assert rejections(report) == [
        (4, "duplicate item_id 'i0' (first at row 1)"),
        (5, "duplicate item_id 'i1' (first at row 2)"),
        (6, "duplicate item_id 'i2' (first at row 3)"),
        (7, "duplicate item_id 'i0' (first at row 1)"),
    ]


def test_files_without_rows_or_id_are_refused(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    header = tmp_path / "header.csv"
    header.write_text("item_id,title\n")
    for f in (empty, header):
        with pytest.raises(ValueError, match=f"^{f}: no rows$"):
            read_items(f)
    no_id = tmp_path / "noid.csv"
    no_id.write_text("label,price\nx,1\n")
    with pytest.raises(ValueError, match="no item_id column"):
        read_items(no_id)
    with pytest.raises(ValueError, match=r"mapped column\(s\) \['sku'\] not in the file"):
        read_items(no_id, mapping={"item_id": "sku"})


def test_users_csv_and_parquet(tmp_path):
    f = tmp_path / "customers.csv"
    f.write_text(
        'customer_id,country,note\nc1,FR,"likes ""quotes"" [b]"\n,DE,\nc1,IT,dup\nc2,ES,\n'
    )
    users, report = read_users(f)
    assert users.values.tolist() == [
        ["c1", {"country": "FR", "note": 'likes "quotes" [b]'}],
        ["c2", {"country": "ES"}],
    ]
    assert rejections(report) == [
        (2, "missing user_id"),
        (3, "duplicate user_id 'c1' (first at row 1)"),
    ]
    p = tmp_path / "users.parquet"
    pd.DataFrame({"who": [1, 2], "age": np.array([31, 40], dtype="int32")}).to_parquet(p)
    users, report = read_users(p, mapping={"user_id": "who"})
    assert users.values.tolist() == [["1", {"age": 31}], ["2", {"age": 40}]]
    assert type(users["attributes"][0]["age"]) is int


def test_load_events_with_an_item_file(tmp_path):
    items = tmp_path / "items.csv"
    items.write_text("sku,name\np1,Tent\np2,Mug\np2,Mug again\n")
    events = tmp_path / "events.csv"
    events.write_text("user_id,item_id,type\nu1,p1,view\nu2,p3,view\nu3,p2,click\n")
    ds = datasets.load(events, items=items)
    assert ds.events["item_id"].tolist() == ["p1", "p2"]
    assert ds.items[["item_id", "title"]].values.tolist() == [["p1", "Tent"], ["p2", "Mug"]]
    assert rejections(ds.report) == [(2, "unknown item_id 'p3'")]
    assert rejections(ds.report.items) == [(3, "duplicate item_id 'p2' (first at row 2)")]
    assert ds.report.to_dict()["items"]["rejected"] == 1
    out = tmp_path / "rejections.csv"
    ds.report.write_csv(out)
    assert out.read_text().splitlines() == [
        "source,row,reason",
        f"{items},3,duplicate item_id 'p2' (first at row 2)",
        f"{events},2,unknown item_id 'p3'",
    ]


def test_exported_from_the_data_package():
    assert {"read_items", "read_users"} <= set(data_pkg.__all__)


def test_a_created_at_no_timestamp_can_hold_is_a_rejected_row(tmp_path):
    f = tmp_path / "items.csv"
    f.write_text(
        "item_id,title,created_at\n"
        "a,Ancient,0074-01-01T00:00:00Z\n"
        "b,Far future,1e300\n"
        "c,Today,2024-03-01T10:00:00Z\n"
    )
    items, report = read_items(f)
    assert items["item_id"].tolist() == ["c"]
    assert rejections(report) == [
        (1, "created_at '0074-01-01T00:00:00Z' outside 1677-09-22 to 2262-04-11"),
        (2, "created_at '1e300' outside 1677-09-22 to 2262-04-11"),
    ]
