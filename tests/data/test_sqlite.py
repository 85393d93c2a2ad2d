from __future__ import annotations

import multiprocessing
import sqlite3
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

from interestlens.data.sqlite import connect_wal


def _open_and_write(path: str) -> int:
    conn = connect_wal(path)
    conn.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.close()
    return 1


def test_processes_opening_a_new_file_at_once_all_succeed(tmp_path):
    # without the retry, 2 to 5 rounds in 100 failed with "database is locked" here
    rounds, workers = 100, 6
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        for r in range(rounds):
            path = str(tmp_path / f"db{r}.sqlite")
            assert sum(pool.map(_open_and_write, [path] * workers)) == workers
    conn = connect_wal(tmp_path / "db0.sqlite")
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == workers
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL


def test_errors_other_than_lock_contention_are_raised_at_once(tmp_path):
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database" * 100)  # fails at the WAL switch, inside the retry loop
    started = time.monotonic()
    with pytest.raises(sqlite3.DatabaseError, match="not a database"):
        connect_wal(junk, timeout=30.0)
    with pytest.raises(sqlite3.OperationalError, match="unable to open"):
        connect_wal(tmp_path / "missing-folder" / "x.sqlite", timeout=30.0)
    assert time.monotonic() - started < 10.0  # not after 30 s of retries
    with pytest.raises(ValueError, match="synchronous must be"):
        connect_wal(tmp_path / "x.sqlite", synchronous="SOMETIMES")
