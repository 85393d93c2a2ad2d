from __future__ import annotations

import multiprocessing
import sqlite3
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from interestlens.text import EmbeddingCache, text_hash


def _write(args: tuple[str, int, int]) -> int:
    directory, start, stop = args
    with EmbeddingCache(directory) as cache:
        for k in range(start, stop, 50):
            cache.put_many(
                "m",
                {
                    text_hash(str(i)): np.full(4, i, dtype=np.float32)
                    for i in range(k, min(k + 50, stop))
                },
            )
    return stop - start


def test_round_trip_and_missing_keys(tmp_path):
    rng = np.random.default_rng(0)
    vecs = {text_hash(f"t{i}"): rng.standard_normal(8).astype(np.float32) for i in range(5)}
    with EmbeddingCache(tmp_path) as cache:
        cache.put_many("m", vecs)
        got = cache.get_many("m", [*vecs, text_hash("absent")])
        assert set(got) == set(vecs)
        for h, v in vecs.items():
            np.testing.assert_array_equal(got[h], v)
            assert got[h].dtype == np.float32
        assert cache.get_many("other-model", list(vecs)) == {}
        assert cache.get_many("m", []) == {}
        assert cache.count() == 5 == cache.count("m")


def test_existing_rows_are_kept(tmp_path):
    h = text_hash("x")
    with EmbeddingCache(tmp_path) as cache:
        cache.put_many("m", {h: np.ones(3)})
        cache.put_many("m", {h: np.zeros(3)})
        np.testing.assert_array_equal(cache.get_many("m", [h])[h], np.ones(3))


def test_lookup_beyond_one_statement_keeps_positions(tmp_path):
    hashes = [text_hash(str(i)) for i in range(2500)]
    with EmbeddingCache(tmp_path) as cache:
        cache.put_many(
            "m", {h: np.full(2, i, dtype=np.float32) for i, h in enumerate(hashes) if i % 3}
        )
        query = [text_hash("nope"), *reversed(hashes)]
        found, vectors = cache.lookup("m", query)
    assert len(found) == sum(1 for i in range(2500) if i % 3)
    assert len(set(found.tolist())) == len(found)
    for pos, row in zip(found, vectors, strict=True):
        assert row[0] == 2500 - pos  # query[pos] is hashes[2500 - pos]


def test_file_is_in_wal_mode(tmp_path):
    EmbeddingCache(tmp_path).close()
    conn = sqlite3.connect(tmp_path / EmbeddingCache.FILENAME)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_processes_share_one_cache(tmp_path):
    jobs = [(str(tmp_path), 0, 600), (str(tmp_path), 300, 900), (str(tmp_path), 0, 900)]
    with ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("spawn")) as pool:
        assert sum(pool.map(_write, jobs)) == 2100
    with EmbeddingCache(tmp_path) as cache:
        assert cache.count("m") == 900
        got = cache.get_many("m", [text_hash(str(i)) for i in range(900)])
    assert all(got[text_hash(str(i))][0] == i for i in range(900))


def test_text_hash_is_utf8_blake2b():
    import hashlib

    assert text_hash("café") == hashlib.blake2b("café".encode(), digest_size=16).digest()
    assert text_hash("a") != text_hash("a ")


def _on_disk(directory) -> bytes:
    """Every byte of the cache's files: the database and, where present, its log."""
    return b"".join(p.read_bytes() for p in sorted(directory.glob(EmbeddingCache.FILENAME + "*")))


def test_forget_texts_deletes_every_model_s_vector_and_leaves_the_rest(tmp_path):
    rng = np.random.default_rng(1)
    mine = ["my honest review of the film", "cheap flights to lisbon"]
    others = [f"someone else's text {i}" for i in range(50)]
    vecs = {t: rng.standard_normal(16).astype(np.float32) for t in mine + others}
    with EmbeddingCache(tmp_path) as cache:
        for model in ("m1", "m2"):
            cache.put_many(model, {text_hash(t): v for t, v in vecs.items()})
        cache.put_many("m3", {text_hash(mine[0]): vecs[mine[0]]})
        assert cache.forget_texts([*mine, mine[0], "never cached"]) == 5
        assert cache.forget_texts(mine) == 0
        assert cache.count() == 100 and cache.count("m3") == 0
        for model in ("m1", "m2"):
            assert cache.get_many(model, [text_hash(t) for t in mine]) == {}
            got = cache.get_many(model, [text_hash(t) for t in others])
            assert all(np.array_equal(got[text_hash(t)], vecs[t]) for t in others)
        assert cache.forget_texts([]) == 0


def test_forget_texts_leaves_no_byte_of_them_on_disk(tmp_path):
    rng = np.random.default_rng(2)
    mine = {f"review {i} by the forgotten user": rng.standard_normal(32) for i in range(3)}
    # a reader in another connection, as a server beside the refit would hold
    with EmbeddingCache(tmp_path) as cache, EmbeddingCache(tmp_path) as other:
        cache.put_many("m", {text_hash(t): v for t, v in mine.items()})
        cache.put_many("m", {text_hash(f"kept {i}"): rng.standard_normal(32) for i in range(200)})
        other.get_many("m", [text_hash("kept 0")])
        traces = [text_hash(t) for t in mine] + [
            np.asarray(v, dtype=np.float32).tobytes()[:64] for v in mine.values()
        ]
        assert all(t in _on_disk(tmp_path) for t in traces)
        assert cache.forget_texts(list(mine)) == 3
        assert not [t for t in traces if t in _on_disk(tmp_path)]
        assert other.count("m") == 200
