from __future__ import annotations

import json
import mmap
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from interestlens.engine.artefact import (
    FORMAT,
    MIN_MAPPED_BYTES,
    list_versions,
    prune,
    read_artefact,
    write_artefact,
)


def _mapped(array: np.ndarray) -> bool:
    """Whether ``array``'s memory comes from a file mapping (following its ``.base`` chain)."""
    base = array
    while base is not None:
        if isinstance(base, np.memmap | mmap.mmap):
            return True
        base = getattr(base, "base", None)
    return False


def _nested(rng: np.random.Generator) -> dict:
    n = 50_000
    return {
        "vectors": rng.standard_normal((n, 8)).astype(np.float32),
        "ids": {"users": rng.integers(0, 10**12, n, dtype=np.int64)},
        "flags": [rng.random(n * 2) > 0.5, "a label"],
        "frame": pd.DataFrame(
            {
                "score": rng.random(n),
                "count": np.arange(n, dtype=np.int64),
                "title": [f"item {i}" for i in range(n)],
            }
        ),
        "matrix": sp.random(2_000, 3_000, density=0.02, format="csr", random_state=7),
        "fortran": np.asfortranarray(rng.random((300, 200))),
        "strided": rng.random((400, 300))[:, ::2],
        "objects": np.array([{"k": i} for i in range(100)], dtype=object),
        "small": np.arange(10, dtype=np.int16),
    }


@pytest.fixture
def obj() -> dict:
    return _nested(np.random.default_rng(0))


def test_round_trip_keeps_every_value(tmp_path: Path, obj: dict) -> None:
    write_artefact(obj, tmp_path, meta={"watermark": 41, "name": "fit"})
    got, manifest = read_artefact(tmp_path)

    assert got["vectors"].dtype == np.float32
    np.testing.assert_array_equal(got["vectors"], obj["vectors"])
    np.testing.assert_array_equal(got["ids"]["users"], obj["ids"]["users"])
    assert got["flags"][0].dtype == np.bool_
    np.testing.assert_array_equal(got["flags"][0], obj["flags"][0])
    assert got["flags"][1] == "a label"
    pd.testing.assert_frame_equal(got["frame"], obj["frame"])
    assert sp.isspmatrix_csr(got["matrix"]) or isinstance(got["matrix"], sp.csr_array)
    assert (got["matrix"] != obj["matrix"]).nnz == 0
    np.testing.assert_array_equal(got["fortran"], obj["fortran"])
    assert got["fortran"].flags.f_contiguous
    np.testing.assert_array_equal(got["strided"], obj["strided"])
    assert list(got["objects"]) == list(obj["objects"])
    np.testing.assert_array_equal(got["small"], obj["small"])

    assert manifest["meta"] == {"watermark": 41, "name": "fit"}
    assert manifest["format"] == FORMAT
    assert manifest["version"] == "v000001"


def test_large_arrays_come_back_memory_mapped(tmp_path: Path, obj: dict) -> None:
    write_artefact(obj, tmp_path, meta={})
    got, manifest = read_artefact(tmp_path)
    for array in (
        got["vectors"],
        got["ids"]["users"],
        got["flags"][0],
        got["frame"]["count"].to_numpy(),
        got["frame"]["score"].to_numpy(),
        got["matrix"].data,
        got["matrix"].indices,
        got["fortran"],
    ):
        assert _mapped(array)
    # below the threshold, non-contiguous and object arrays live inside the pickle
    for array in (got["small"], got["strided"], got["objects"]):
        assert not _mapped(array)
    files = {tuple(e["shape"]): e for e in manifest["arrays"]}
    assert files[(50_000, 8)]["dtype"] == "<f4"
    assert files[(50_000, 8)]["bytes"] == 50_000 * 8 * 4
    assert all(e["bytes"] >= MIN_MAPPED_BYTES for e in manifest["arrays"])


def test_reading_does_not_load_the_arrays_into_memory(tmp_path: Path) -> None:
    """A fresh process opening 256 MiB of arrays grows by far less than that."""
    size = 256 * 2**20
    write_artefact({"big": np.ones(size // 8, dtype=np.float64)}, tmp_path, meta={})
    script = textwrap.dedent(
        f"""
        import resource
        from interestlens.engine.artefact import read_artefact
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        obj, _ = read_artefact({str(tmp_path)!r})
        opened = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        assert obj["big"][-1] == 1.0
        print(before, opened)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    before_kib, opened_kib = map(int, out.split())
    assert (opened_kib - before_kib) * 1024 < size / 20


def test_writes_into_a_loaded_array_stay_out_of_the_file(tmp_path: Path, obj: dict) -> None:
    write_artefact(obj, tmp_path, meta={})
    got, _ = read_artefact(tmp_path)
    got["vectors"][3] = 0.0
    got["frame"].loc[5, "score"] = -1.0
    got["matrix"].data[:10] = 0.0
    assert (got["vectors"][3] == 0).all()
    assert got["frame"].loc[5, "score"] == -1.0

    again, _ = read_artefact(tmp_path)
    np.testing.assert_array_equal(again["vectors"], obj["vectors"])
    pd.testing.assert_frame_equal(again["frame"], obj["frame"])
    np.testing.assert_array_equal(again["matrix"].data, obj["matrix"].data)


def test_versions_accumulate_and_current_names_the_newest(tmp_path: Path) -> None:
    for i in range(3):
        folder = write_artefact({"x": np.full(20_000, i)}, tmp_path, meta={"i": i})
        assert folder == tmp_path / f"v{i + 1:06d}"
    assert list_versions(tmp_path) == ["v000001", "v000002", "v000003"]
    assert (tmp_path / "CURRENT").read_text().strip() == "v000003"
    got, manifest = read_artefact(tmp_path)
    assert manifest["meta"] == {"i": 2} and (got["x"] == 2).all()
    old, manifest = read_artefact(tmp_path, "v000001")
    assert manifest["meta"] == {"i": 0} and (old["x"] == 0).all()
    with pytest.raises(FileNotFoundError, match="v000009"):
        read_artefact(tmp_path, "v000009")


def test_versions_are_as_readable_as_the_umask_allows(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        folder = write_artefact({"x": np.zeros(20_000)}, tmp_path / "root", meta={})
    finally:
        os.umask(old)
    assert folder.stat().st_mode & 0o777 == 0o755
    assert all(p.stat().st_mode & 0o044 == 0o044 for p in folder.rglob("*"))


def test_prune_keeps_the_newest_and_the_current(tmp_path: Path) -> None:
    for i in range(5):
        write_artefact({"i": i}, tmp_path, meta={})
    assert prune(tmp_path, keep=2) == ["v000001", "v000002", "v000003"]
    assert list_versions(tmp_path) == ["v000004", "v000005"]

    # CURRENT rolled back to an older version: prune never removes it
    (tmp_path / "CURRENT").write_text("v000004\n")
    assert prune(tmp_path, keep=1) == []
    assert list_versions(tmp_path) == ["v000004", "v000005"]
    assert read_artefact(tmp_path)[0] == {"i": 3}

    # numbering continues past what was pruned
    assert write_artefact({"i": 5}, tmp_path, meta={}).name == "v000006"
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="keep"):
            prune(tmp_path, keep=bad)


def test_missing_root_or_current_says_to_fit(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="interestlens fit"):
        read_artefact(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"CURRENT.*interestlens fit"):
        read_artefact(tmp_path)


def _one_version(root: Path) -> Path:
    return write_artefact(
        {"a": np.arange(100_000, dtype=np.int64), "b": np.ones(30_000)}, root, meta={}
    )


def test_a_corrupt_manifest_is_refused_naming_it(tmp_path: Path) -> None:
    folder = _one_version(tmp_path)
    manifest = folder / "manifest.json"
    manifest.write_text("{not json")
    with pytest.raises(ValueError, match=r"manifest\.json.*not a readable manifest"):
        read_artefact(tmp_path)
    manifest.write_text(json.dumps({"format": FORMAT + 1}))
    with pytest.raises(ValueError, match=rf"manifest\.json.*format {FORMAT + 1}"):
        read_artefact(tmp_path)


def test_an_older_format_is_refused_before_unpickling_and_asks_for_a_fit(tmp_path: Path) -> None:
    folder = _one_version(tmp_path)
    manifest = folder / "manifest.json"
    old = json.loads(manifest.read_text())
    old["format"] = FORMAT - 1
    manifest.write_text(json.dumps(old))
    # a pickle that cannot be read: the format check must come first
    (folder / "object.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match=rf"format {FORMAT - 1}.*run `interestlens fit`"):
        read_artefact(tmp_path)


def test_a_missing_or_truncated_array_file_is_refused_naming_it(tmp_path: Path) -> None:
    folder = _one_version(tmp_path)
    files = sorted((folder / "arrays").iterdir())
    assert len(files) == 2
    with open(files[1], "r+b") as fh:
        fh.truncate(1000)
    with pytest.raises(ValueError, match=rf"{files[1].name}: 1000 bytes on disk.*truncated"):
        read_artefact(tmp_path)
    files[0].unlink()
    with pytest.raises(ValueError, match=rf"{files[0].name}: array file .* missing"):
        read_artefact(tmp_path)


def test_a_changed_pickle_is_refused_by_its_checksum(tmp_path: Path) -> None:
    folder = _one_version(tmp_path)
    path = folder / "object.pkl"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"object\.pkl: checksum mismatch"):
        read_artefact(tmp_path)


def test_a_crashed_write_leaves_current_alone_and_is_cleaned(tmp_path: Path) -> None:
    write_artefact({"gen": 1}, tmp_path, meta={})
    # what a writer killed after filling its temporary folder leaves behind
    crashed = tmp_path / ".tmp-crashed"
    (crashed / "arrays").mkdir(parents=True)
    (crashed / "object.pkl").write_bytes(pickle.dumps({"gen": 2}))
    (tmp_path / ".tmp-CURRENT").write_text("v000002\n")

    assert list_versions(tmp_path) == ["v000001"]
    assert read_artefact(tmp_path)[0] == {"gen": 1}

    assert write_artefact({"gen": 3}, tmp_path, meta={}).name == "v000002"
    assert not crashed.exists()
    assert read_artefact(tmp_path)[0] == {"gen": 3}
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".lock")) == [
        "CURRENT",
        "v000001",
        "v000002",
    ]


def test_a_failed_write_publishes_nothing(tmp_path: Path) -> None:
    write_artefact({"gen": 1}, tmp_path, meta={})
    with pytest.raises(TypeError, match="meta"):
        write_artefact({"gen": 2}, tmp_path, meta={"when": object()})
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        write_artefact({"gen": 2, "f": lambda: 0}, tmp_path, meta={})
    assert list_versions(tmp_path) == ["v000001"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")] == []
    assert read_artefact(tmp_path)[0] == {"gen": 1}


def test_torch_tensor_round_trips(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    tensor = torch.arange(50_000, dtype=torch.float32).reshape(500, 100)
    write_artefact({"t": tensor}, tmp_path, meta={})
    got, _ = read_artefact(tmp_path)
    assert torch.equal(got["t"], tensor)


def test_files_are_plain_arrays_on_disk(tmp_path: Path) -> None:
    """Each array file holds exactly the array's bytes, so other tools can map it."""
    vectors = np.random.default_rng(1).random((1000, 64)).astype(np.float32)
    folder = write_artefact({"v": vectors}, tmp_path, meta={})
    (entry,) = json.loads((folder / "manifest.json").read_text())["arrays"]
    on_disk = np.memmap(
        folder / entry["file"], dtype=entry["dtype"], mode="r", shape=tuple(entry["shape"])
    )
    np.testing.assert_array_equal(on_disk, vectors)
    assert os.path.getsize(folder / entry["file"]) == vectors.nbytes
