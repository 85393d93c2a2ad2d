from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

import pandas as pd
import pytest

from interestlens.data.dataset import Dataset
from interestlens.data.schema import Event, Item, User
from interestlens.data.validation import ValidationOptions
from interestlens.store import SQLiteEventStore, open_store
from interestlens.store import sqlite as sqlite_backend

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def _events(n: int, user: str = "u1") -> list[Event]:
    return [
        Event(
            user,
            f"i{k}",
            "rating",
            value=1 + k % 5,
            timestamp=T0.replace(minute=k % 60),
            event_id=f"{user}-{k}",
        )
        for k in range(n)
    ]


def test_append_is_idempotent_on_event_id(store):
    first = store.append(_events(10))
    assert (first.stored, first.duplicates) == (10, 0)
    again = store.append(_events(12))
    assert (again.stored, again.duplicates) == (2, 10)
    assert store.count() == 12


def test_round_trip_keeps_every_field_and_arrival_order(store):
    events = [
        Event(
            "u1",
            "i1",
            "click",
            value=2.5,
            timestamp=T0,
            text=None,
            context={"device": "phone", "n": 3},
        ),
        Event("u2", None, "search", timestamp=T0, text="pixar movies"),
        Event("u1", "i2", "review", value=1.0, timestamp=None, text="Loved it — très bien"),
        Event(
            "u3",
            "i1",
            "rating",
            value=4.5,
            timestamp=datetime(2001, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc),
        ),
    ]
    store.append(events)
    back = store.to_dataset().events
    assert back["event_id"].tolist() == [e.event_id for e in events]
    assert back["item_id"].tolist() == ["i1", None, "i2", "i1"]
    assert back["text"].tolist() == [None, "pixar movies", "Loved it — très bien", None]
    assert back["context"].tolist() == [{"device": "phone", "n": 3}, None, None, None]
    assert back["value"].tolist() == [2.5, 1.0, 1.0, 4.5]
    ts = back["timestamp"]
    assert ts.iloc[0] == pd.Timestamp(T0)
    assert pd.isna(ts.iloc[2])
    assert ts.iloc[3] == pd.Timestamp("2001-01-02T03:04:05.678901Z")


def test_items_and_users_upsert(store):
    store.upsert_items(
        [
            Item("i1", title="Old"),
            Item(
                "i2",
                title="Two",
                categories=["a", "b"],
                tags=["x"],
                attributes={"price": 3.5},
                created_at=T0,
            ),
        ]
    )
    store.upsert_items([Item("i1", title="New", text="desc")])
    store.upsert_users([User("u1", {"age": 30}), User("u2")])
    ds = store.to_dataset()
    items = ds.items.set_index("item_id")
    assert items.loc["i1", "title"] == "New" and items.loc["i1", "text"] == "desc"
    assert items.loc["i2", "categories"] == ["a", "b"] and items.loc["i2", "tags"] == ["x"]
    assert items.loc["i2", "attributes"] == {"price": 3.5}
    assert items.loc["i2", "created_at"] == pd.Timestamp(T0)
    assert ds.users.set_index("user_id").loc["u1", "attributes"] == {"age": 30}


def test_forget_user_removes_only_that_user(store):
    store.append(_events(5, "u1") + _events(3, "u2"))
    store.upsert_users([User("u1", {"email": "a@b.c"}), User("u2")])
    assert store.forget_user("u1") == 5
    ds = store.to_dataset()
    assert set(ds.events["user_id"]) == {"u2"}
    assert ds.users["user_id"].tolist() == ["u2"]
    assert store.forget_user("nobody") == 0


def test_events_since_a_watermark_returns_exactly_the_later_events(store):
    assert store.watermark() == 0
    store.append(_events(3, "u1"))
    mark = store.watermark()
    assert mark > 0
    store.append(_events(3, "u1") + _events(2, "u2"))  # three duplicates, two new
    later, new_mark = store.events_since(mark)
    assert later["event_id"].tolist() == ["u2-0", "u2-1"]
    assert new_mark == store.watermark() > mark
    assert store.events_since(new_mark)[0].empty and store.events_since(new_mark)[1] == new_mark
    store.forget_user("u2")
    assert store.watermark() <= new_mark  # a watermark never names an event twice


def test_append_rejects_invalid_event_objects(store):
    with pytest.raises(ValueError, match="unknown event type 'like'"):
        store.append([Event("u1", "i1", "like")])
    assert store.count() == 0


def test_ingest_reports_rejections_and_duplicates(store, tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(
        "user,item,rating,time\n"
        "1,10,4,1700000000\n"
        ",11,3,1700000001\n"  # row 2: missing user
        "2,12,9,1700000002\n"  # row 3: out of range
        "2,13,5,yesterday\n"  # row 4: bad timestamp
        "3,14,2,1700000004\n"
    )
    opts = ValidationOptions(rating_range=(0.5, 5))
    rep = store.ingest(path, options=opts, progress=False)
    assert rep.loaded == 2 and rep.duplicates == 0
    assert [(r.row, r.reason) for r in rep.rejections] == [
        (2, "missing user_id"),
        (3, "rating 9 out of range [0.5, 5]"),
        (4, "unparsable timestamp 'yesterday'"),
    ]
    rep2 = store.ingest(path, options=opts, progress=False)
    assert (rep2.loaded, rep2.duplicates, rep2.rejected) == (0, 2, 3)
    assert store.count() == 2


def test_one_item_by_id(store):
    store.upsert_items([Item("i1", title="Old"), Item("i2", title="Two", categories=["a"])])
    store.upsert_items([Item("i1", title="New")])
    one = store.items("i1")
    assert one["item_id"].tolist() == ["i1"] and one["title"].tolist() == ["New"]
    assert store.items("i2")["categories"].iloc[0] == ["a"]
    assert store.items("nope").empty and list(store.items("nope").columns) == list(one.columns)


def test_ingest_checks_items_when_the_store_has_them(store, tmp_path):
    store.upsert_items([Item("10")])
    path = tmp_path / "e.csv"
    path.write_text("user_id,item_id,type\n1,10,click\n1,99,click\n")
    rep = store.ingest(path, progress=False)
    assert [(r.row, r.reason) for r in rep.rejections] == [(2, "unknown item_id '99'")]
    rep = store.ingest(path, options=ValidationOptions(unknown_items="create"), progress=False)
    assert (rep.loaded, rep.duplicates, rep.created_items) == (1, 1, 1)
    assert set(store.items()["item_id"]) == {"10", "99"}


def test_dataset_round_trip_through_store_equals_source(store):
    ds = Dataset.from_records(
        _events(30, "a") + _events(20, "b"), [Item(f"i{k}") for k in range(30)]
    )
    store.append_dataset(ds)
    back = store.to_dataset()
    pd.testing.assert_frame_equal(back.events, ds.events, check_dtype=False)
    assert back.items["item_id"].tolist() == ds.items["item_id"].tolist()


def test_migrates_a_version_one_sqlite_store(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    sqlite_backend.migrate(conn, target=1)
    conn.execute(
        "INSERT INTO events (event_id, user_id, item_id, type, value, ts, text, context) "
        "VALUES ('e1', 'u1', 'i1', 'click', 1.0, 0, NULL, NULL)"
    )
    conn.close()
    with SQLiteEventStore(path) as st:
        assert st.schema_version == sqlite_backend.SCHEMA_VERSION == 5
        assert st.count() == 1
        st.upsert_items([Item("i1", title="now there is an items table")])
        assert st.forget_user("u1") == 1


def test_refuses_a_store_from_a_newer_version(tmp_path):
    path = tmp_path / "new.db"
    open_store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(RuntimeError, match="newer than this interestlens"):
        open_store(path)


@pytest.mark.postgres
def test_postgres_migrates_a_version_one_store(postgres_url):
    import psycopg

    from interestlens.store import postgres as pg_backend

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        pg_backend.migrate(conn, target=1)
        conn.execute(
            "INSERT INTO events (event_id, user_id, item_id, type, value) VALUES ('e1','u1','i1','view',1)"
        )
    with open_store(postgres_url) as st:
        assert st.schema_version == pg_backend.SCHEMA_VERSION == 5 and st.count() == 1
        st.upsert_users([User("u1")])
        assert st.forget_user("u1") == 1


def test_sqlite_url_forms(tmp_path):
    with open_store(f"sqlite://{tmp_path}/a.db") as a:
        assert a.count() == 0
    assert (tmp_path / "a.db").exists()
    with open_store(tmp_path / "b.db") as b:
        assert b.schema_version == 5
    with pytest.raises(ValueError, match="unsupported store URL"):
        open_store("mysql://x")


def test_item_revisions_find_what_others_put(tmp_path):
    """Each write of items takes the next revision: a reader finds the items put since its mark."""
    path = tmp_path / "items.db"
    with open_store(path) as a, open_store(path) as b:  # two processes' connections
        a.upsert_items([Item("i1", title="Alien"), Item("i2", title="Heat")])
        events, rev, erasures = b.watermarks()
        assert (events, rev, erasures) == (0, 1, 0)
        a.upsert_items([Item("i2", title="Heat, replaced")])
        a.upsert_items([Item("i3", title="Ran")])
        later, removed, new_rev = b.items_since(rev)
        assert later["item_id"].tolist() == ["i2", "i3"] and new_rev == 3 and removed == []
        assert later["title"].tolist() == ["Heat, replaced", "Ran"]
        assert b.items_since(new_rev)[0].empty
        assert a.remove_item("i3") and not a.remove_item("fitted-only")  # tombstones both
        later, removed, _ = b.items_since(new_rev)
        assert later.empty and removed == ["i3", "fitted-only"]
        assert b.items()["item_id"].tolist() == ["i1", "i2"] and b.items("i3").empty
        assert sorted(b.removed_items()) == ["fitted-only", "i3"]
        a.upsert_items([Item("i3", title="Ran, again")])  # put again: back
        assert "i3" in set(b.items()["item_id"]) and b.removed_items() == ["fitted-only"]


def test_a_version_three_store_keeps_its_items_at_revision_zero(tmp_path):
    path = tmp_path / "v3.db"
    conn = sqlite3.connect(path, isolation_level=None)
    sqlite_backend.migrate(conn, target=3)
    conn.execute("INSERT INTO items (item_id, title) VALUES ('old', 'Old')")
    conn.close()
    with open_store(path) as st:
        assert st.schema_version == 5 and st.watermarks() == (0, 0, 0)
        st.upsert_items([Item("new", title="New")])
        assert st.items_since(0)[0]["item_id"].tolist() == ["new"]
        assert st.items()["item_id"].tolist() == ["old", "new"]


def test_erasures_are_counted_for_other_processes(tmp_path):
    path = tmp_path / "erase.db"
    with open_store(path) as a, open_store(path) as b:
        a.append([Event("u1", "i1", "click", event_id="e1")])
        assert b.watermarks()[2] == 0
        a.forget_user("u1")
        a.forget_user("nobody")  # an erasure all the same: others must look
        assert b.watermarks()[2] == 2
