"""The Amazon reviews loader, on the shared Musical Instruments copy and on hostile files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from interestlens.data.amazon import MAX_LINE_BYTES, load_amazon, review_text

GOOD = {
    "reviewerID": "U1",
    "asin": "B1",
    "reviewerName": "Someone",
    "helpful": [0, 0],
    "reviewText": "Broke in a week.",
    "overall": 2.0,
    "summary": "Meh",
    "unixReviewTime": 1393545600,
    "reviewTime": "02 28, 2014",
}
META = (
    "Product ID,Description,price,Category\r\n"
    "B1,Fender 1/4&quot; Cable,19.5,Instrument Cables\r\n"
    "B2,No Title,0,Musical Instruments\r\n"
    "B2,A second B2,3,Picks\r\n"
    "B3,Bad price,cheap,Picks\r\n"
    "B4,Too,many,fields,here\r\n"
    "B5,Caf\xe9 strings,5,Strings\r\n"
)
CLEAN_META = "Product ID,Description,price,Category\nB1,Cable,19.5,Cables\nB5,Strings,5,Strings\n"


def _line(**change) -> bytes:
    return json.dumps({**GOOD, **change}).encode()


@pytest.fixture(scope="module")
def instruments(shared_data):
    folder = shared_data / "amazon-instruments"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    return load_amazon(folder)


def test_real_file_loads_every_review_as_a_rating_and_a_review(instruments):
    ds = instruments
    assert ds.report.rejected == 0 and ds.report.loaded == 2 * 10_261
    assert (ds.n_users, ds.n_items) == (1_429, 900)
    ev = ds.events
    assert ev["type"].value_counts().to_dict() == {"rating": 10_261, "review": 10_261}
    stars = ev.loc[ev["type"] == "rating", "value"].value_counts().to_dict()
    assert stars == {5.0: 6_938, 4.0: 2_084, 3.0: 772, 2.0: 250, 1.0: 217}
    assert (ev.loc[ev["type"] == "review", "value"] == 1.0).all()
    assert ev.loc[ev["type"] == "review", "text"].str.len().min() > 0
    assert ev.loc[ev["type"] == "rating", "text"].isna().all()
    ts = ev["timestamp"]
    assert ts.min() == pd.Timestamp("2004-09-18", tz="UTC")
    assert ts.max() == pd.Timestamp("2014-07-22", tz="UTC")
    assert (ts == ts.dt.normalize()).all()  # whole days


def test_real_file_keeps_file_order_and_pairs_each_review(instruments):
    ev = instruments.events
    assert ev["type"].tolist()[:4] == ["rating", "review", "rating", "review"]
    # rows 2k and 2k+1 are one line of the file: same user, item and day
    for col in ("user_id", "item_id", "timestamp"):
        np.testing.assert_array_equal(ev[col].to_numpy()[0::2], ev[col].to_numpy()[1::2])
    # the file is sorted by item, not by time; the frame keeps that order
    items = ev["item_id"].to_numpy()[0::2]
    assert (items[:-1] <= items[1:]).all() and not ev["timestamp"].is_monotonic_increasing
    first = ev.iloc[1]
    assert (first["user_id"], first["item_id"]) == ("A2IBPI20UZIR0U", "1384719342")
    assert first["text"].startswith("good. Not much to write about here, but it does exactly")


def test_same_day_events_keep_file_order_when_sorted(instruments):
    ev = instruments.events
    ordered = instruments.sorted_events()
    # a user with several reviews on one day: their events stay in file order
    per_day = ev.groupby(["user_id", ev["timestamp"]]).size()
    user, day = per_day[per_day >= 4].index[0]
    same = ordered[(ordered["user_id"] == user) & (ordered["timestamp"] == day)]
    assert same.index.is_monotonic_increasing and len(same) >= 4
    assert same["type"].tolist()[:2] == ["rating", "review"]


def test_real_items_have_titles_categories_and_prices(instruments):
    items = instruments.items.set_index("item_id")
    cable = items.loc["B000068NSX"]
    assert cable["title"] == "Fender 18 Feet California Clear Instrument Cable - Lake Placid Blue"
    assert cable["categories"] == ["Instrument Cables"] and cable["attributes"]["price"] == 25.0
    assert not items["title"].str.contains("&quot;|&amp;").any()
    assert items.loc["B00004Y2UT", "title"].endswith('1/4" plugs')
    # the table's placeholders for missing metadata are not read as a title or a price
    assert items.loc["B0002GWXKC", "title"] == "" and items.loc["B0002GWXKC", "attributes"] == {}
    assert items.loc["B000KY156E", "title"] == ""
    assert items.loc["B000KY156E", "attributes"] == {"price": 149.99}
    assert (items["title"] != "").sum() == 896
    assert items["categories"].map(len).eq(1).all()


def test_review_text_puts_the_headline_first_as_a_sentence():
    assert review_text("Great", "It broke.") == "Great. It broke."
    assert review_text("Great!", "It  broke.\n") == "Great! It broke."
    assert review_text("Five Stars", "") == "Five Stars"
    assert review_text("", "") == ""
    assert review_text("&#34;OK&#34;", "5&amp;6") == '"OK". 5&6'


def _write(folder: Path, lines: list[bytes], meta: str | bytes | None = CLEAN_META) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "reviews_Toys_5.json.gz").write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    if meta is not None:
        data = meta if isinstance(meta, bytes) else meta.encode("utf-8")
        (folder / "Toys_meta_5.csv").write_bytes(data)
    return folder


def test_hostile_file_keeps_every_good_line_and_names_each_bad_one(tmp_path):
    lines = [
        _line(),  # 1
        b"{not json",  # 2
        b"[1, 2]",  # 3
        _line(summary="Caf\xe9").replace(b"Caf\\u00e9", b"Caf\xe9"),  # 4: Latin-1 byte
        _line(overall="five"),  # 5
        _line(reviewerID=123),  # 6
        _line(reviewerID="U7", overall=6.0),  # 7
        _line(reviewerID="U8", summary="", reviewText="  "),  # 8: rating kept, no words
        _line(asin="B9"),  # 9: unknown item
        _line(reviewerID="U\x002"),  # 10
        b"",  # 11: blank, not a record
        _line(overall=True, unixReviewTime=1.5),  # 12
        _line(reviewText="x" * (MAX_LINE_BYTES + 10)),  # 13
        _line(reviewerID="U3", asin="B5", overall=5.0, summary="Love it"),  # 14
        _line(reviewerID="U1", asin="B1"),  # 15: line 1 again
    ]
    ds = load_amazon(_write(tmp_path / "d", lines))
    why = {r.row: r.reason for r in ds.report.rejections}
    assert why == {
        2: "line is not valid JSON",
        3: "line is a JSON list, not an object",
        4: "line is not valid UTF-8 (byte 146)",
        5: "overall must be a number, not str 'five'",
        6: "reviewerID must be a string, not int 123",
        7: "rating: rating 6 out of range [1, 5] (its review was kept)",
        8: "review: empty text for a review event (its rating was kept)",
        9: "unknown item_id 'B9'",
        10: "reviewerID holds a NUL byte",
        12: "overall must be a number, not bool True; "
        "unixReviewTime must be whole seconds, not float 1.5",
        13: f"line is longer than {MAX_LINE_BYTES:,} bytes",
        15: "rating: duplicate event_id "
        f"{ds.events['event_id'].iloc[0]!r} (first at row 1); review: duplicate event_id "
        f"{ds.events['event_id'].iloc[1]!r} (first at row 1)",
    }
    ev = ds.events
    got = list(zip(ev["user_id"], ev["type"], ev["value"], ev["text"], strict=True))
    assert got == [
        ("U1", "rating", 2.0, None),
        ("U1", "review", 1.0, "Meh. Broke in a week."),
        ("U7", "review", 1.0, "Meh. Broke in a week."),  # line 7: its 6 stars refused
        ("U8", "rating", 2.0, None),  # line 8: no words
        ("U3", "rating", 5.0, None),
        ("U3", "review", 1.0, "Love it. Broke in a week."),
    ]
    assert ds.report.loaded == 6


def test_hostile_item_table_rows_are_refused_by_name(tmp_path):
    ds = load_amazon(_write(tmp_path / "d", [_line()], META.encode("latin-1")))
    why = [(r.row, r.reason) for r in ds.report.rejections]
    assert why == [
        (3, "Toys_meta_5.csv: Product ID 'B2' given again (first at row 2)"),
        (4, "Toys_meta_5.csv: price 'cheap' is not a non-negative number"),
        (5, "Toys_meta_5.csv: expected 4 fields, found 5"),
        (6, "Toys_meta_5.csv: row is not valid UTF-8"),
    ]
    items = ds.items.set_index("item_id")
    assert list(items.index) == ["B1", "B2"]
    assert items.loc["B1", "title"] == 'Fender 1/4" Cable'
    assert items.loc["B1", "attributes"] == {"price": 19.5}
    assert items.loc["B2", "title"] == "" and items.loc["B2", "attributes"] == {}


def test_unknown_items_can_be_created_and_no_table_creates_all(tmp_path):
    lines = [_line(), _line(asin="B9", reviewerID="U2")]
    ds = load_amazon(_write(tmp_path / "a", lines), unknown_items="create")
    assert ds.report.rejected == 0 and ds.report.created_items == 1
    assert ds.items["item_id"].tolist() == ["B1", "B5", "B9"]
    bare = load_amazon(_write(tmp_path / "b", lines, meta=None))
    assert bare.report.rejected == 0 and bare.report.loaded == 4
    assert bare.item_ids.tolist() == ["B1", "B9"]


def test_truncated_gzip_keeps_the_lines_before_it(tmp_path):
    folder = _write(tmp_path / "d", [_line(reviewerID=f"U{i}") for i in range(2000)])
    gz = folder / "reviews_Toys_5.json.gz"
    gz.write_bytes(gz.read_bytes()[:-200])
    ds = load_amazon(gz)
    (last,) = [r for r in ds.report.rejections if "cannot be read" in r.reason]
    kept = ds.report.loaded // 2
    assert 1000 < kept < 2000 and last.row == kept + 1
    assert ds.events["user_id"].iloc[-1] == f"U{kept - 1}"


def test_bad_paths_and_tables_raise_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        load_amazon(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="not an Amazon reviews folder"):
        load_amazon(tmp_path)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['price'\]"):
        load_amazon(_write(tmp_path / "d", [_line()], "Product ID,Description,Category\n"))
    empty = load_amazon(_write(tmp_path / "e", []))
    assert len(empty.events) == 0 and empty.report.rejected == 0


def test_loads_by_name_and_by_folder_layout(shared_data):
    from interestlens import datasets

    folder = shared_data / "amazon-instruments"
    by_name = datasets.load("amazon", path=folder)
    by_folder = datasets.load(folder)
    assert len(by_name.events) == len(by_folder.events) == 20_522
    assert by_name.events["event_id"].tolist() == by_folder.events["event_id"].tolist()
    with pytest.raises(ValueError, match="not bundled"):
        datasets.load("amazon")
