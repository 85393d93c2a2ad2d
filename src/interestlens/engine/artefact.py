"""Versioned, memory-mapped artefacts: how a fitted engine lives on disk.

An artefact is any picklable object written as a small pickle plus one file per large
array. Opening it maps those files instead of reading them, so a command-line question
opens a fitted engine in a fraction of a second and pays memory only for the pages it
touches, where loading one pickle of the same state costs seconds and a full copy of every
array. Each write adds a version beside the old ones, so a server can keep reading the
version it holds while a refit publishes the next.

Layout of ``root``::

    root/CURRENT                    the name of the published version, e.g. "v000002"
    root/v000001/manifest.json      format, interestlens version, creation time, the
                                    caller's meta, the array files, the pickle's checksum
    root/v000001/object.pkl         pickle protocol 5 of the object, large buffers left out
    root/v000001/arrays/000000.bin  one raw buffer each, mapped copy-on-write on reading

A version appears whole or not at all: it is built in a hidden temporary folder, synced,
renamed into place, and only then named in ``CURRENT`` (replaced atomically), so a reader
never sees a half-written version. Writers serialise on a lock file, and a crashed
writer's temporary folder is removed by the next write.

Reading unpickles the object, which can run arbitrary code: read only artefacts you
wrote. Only Unix-like systems are supported (the writers' lock uses ``fcntl``).

Examples
--------
>>> import tempfile, numpy as np
>>> root = tempfile.mkdtemp()
>>> _ = write_artefact({"x": np.arange(100_000)}, root, meta={"rows": 100_000})
>>> obj, manifest = read_artefact(root)
>>> int(obj["x"][-1]), manifest["meta"], list_versions(root)
(99999, {'rows': 100000}, ['v000001'])
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import pickle
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from interestlens.version import installed

#: Layout number written to and required in every manifest. It goes up whenever the
#: files or the saved form of what the engine pickles change, so that an older version
#: is refused before unpickling rather than failing inside it (2: SASRec's network and
#: the Hybrid's ranker are saved as arrays and text, not as torch, scikit-learn or
#: LightGBM objects).
FORMAT = 2

#: Buffers smaller than this many bytes stay inside the pickle: a file and a mapping each
#: would cost more than copying them.
MIN_MAPPED_BYTES = 64 * 1024

_CURRENT = "CURRENT"
_MANIFEST = "manifest.json"
_PICKLE = "object.pkl"
_ARRAYS = "arrays"
_LOCK = ".lock"
_TMP_PREFIX = ".tmp-"
_VERSION_DIGITS = 6


def write_artefact(obj: Any, root: str | Path, *, meta: dict[str, Any]) -> Path:
    """Write ``obj`` as the next version under ``root`` and publish it in ``CURRENT``.

    Parameters
    ----------
    obj
        Any picklable object. Contiguous buffers of at least :data:`MIN_MAPPED_BYTES`
        (numpy arrays, hence pandas numeric columns and scipy sparse matrices' arrays)
        go to their own files; everything else stays in the pickle.
    root
        The artefact folder (created if missing).
    meta
        JSON-serialisable facts the caller wants back from :func:`read_artefact`
        without unpickling anything (e.g. a generation id, an event watermark).

    Returns
    -------
    Path
        The new version's folder, ``root/v000001`` for the first, then one more than
        the newest existing version.

    Raises
    ------
    TypeError
        ``meta`` is not JSON-serialisable.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    try:
        meta_json = json.loads(json.dumps(meta))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"meta must be JSON-serialisable: {exc}") from exc
    with _writer_lock(root):
        for stale in root.glob(f"{_TMP_PREFIX}*"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
        existing = list_versions(root)
        number = int(existing[-1][1:]) + 1 if existing else 1
        name = f"v{number:0{_VERSION_DIGITS}d}"
        # not tempfile.mkdtemp: its folder is private (0700), and the published version
        # must be readable by whoever may read root (servers under another user)
        tmp = root / f"{_TMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        tmp.mkdir()
        try:
            pickle_bytes, arrays = _write_payload(obj, tmp)
            manifest = {
                "format": FORMAT,
                "version": name,
                "interestlens_version": installed(),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "meta": meta_json,
                "pickle": {
                    "file": _PICKLE,
                    "bytes": len(pickle_bytes),
                    "sha256": hashlib.sha256(pickle_bytes).hexdigest(),
                },
                "arrays": arrays,
            }
            _write_synced(tmp / _MANIFEST, json.dumps(manifest, indent=1).encode())
            _fsync_dir(tmp / _ARRAYS)
            _fsync_dir(tmp)
            final = root / name
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _fsync_dir(root)
        _publish(root, name)
    return final


def read_artefact(root: str | Path, version: str | None = None) -> tuple[Any, dict[str, Any]]:
    """Open a version written by :func:`write_artefact`: the object and its manifest.

    The object's large arrays are memory-mapped copy-on-write: they are read from disk
    as they are touched, and writing into them (the engine zeroes a forgotten user's
    rows in place) changes this process's copy only, never the file.

    This unpickles the stored object, which can run arbitrary code: read only
    artefacts you wrote yourself.

    Parameters
    ----------
    root
        The artefact folder.
    version
        A version name (see :func:`list_versions`); ``None`` reads the one ``CURRENT``
        names.

    Returns
    -------
    tuple
        The object, and the manifest (``meta`` holds what the writer passed; also
        ``version``, ``created``, ``interestlens_version``, ``arrays``).

    Raises
    ------
    FileNotFoundError
        ``root``, its ``CURRENT`` or the requested version does not exist.
    ValueError
        The manifest is unreadable or of an unknown format, an array file is missing or
        of the wrong size, or the pickle does not match its checksum; the message names
        the file.
    """
    root = Path(root)
    if version is not None:
        return _read_version(root, version)
    # a writer may publish and prune between our reading CURRENT and opening the
    # version it named: read CURRENT again and retry while it keeps moving
    for _ in range(3):
        name = _current(root)
        try:
            return _read_version(root, name)
        except (FileNotFoundError, ValueError):
            if _current(root) == name:
                raise
    return _read_version(root, _current(root))


def published_version(root: str | Path) -> str | None:
    """The version ``CURRENT`` names under ``root`` (``None`` when none is published).

    >>> published_version("/nonexistent") is None
    True
    """
    try:
        return _current(Path(root)) or None
    except FileNotFoundError:
        return None


def list_versions(root: str | Path) -> list[str]:
    """The published version names under ``root``, oldest first (``[]`` if none).

    >>> list_versions("/nonexistent")
    []
    """
    root = Path(root)
    if not root.is_dir():
        return []
    names = [
        p.name
        for p in root.iterdir()
        if p.is_dir() and p.name.startswith("v") and p.name[1:].isdigit()
    ]
    return sorted(names, key=lambda n: int(n[1:]))


def prune(root: str | Path, keep: int) -> list[str]:
    """Delete all but the newest ``keep`` versions; the one ``CURRENT`` names always stays.

    A process that has a deleted version open keeps reading it: its mapped files live
    until the process lets them go.

    Parameters
    ----------
    root
        The artefact folder.
    keep
        How many of the newest versions to keep, at least 1.

    Returns
    -------
    list of str
        The names of the versions deleted.
    """
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise ValueError(f"keep must be an integer >= 1, got {keep!r}")
    root = Path(root)
    if not root.is_dir():
        return []
    with _writer_lock(root):
        versions = list_versions(root)
        current = (root / _CURRENT).read_text().strip() if (root / _CURRENT).exists() else None
        doomed = [v for v in versions[:-keep] if v != current]
        for name in doomed:
            shutil.rmtree(root / name)
        if doomed:
            _fsync_dir(root)
    return doomed


# ----- writing -------------------------------------------------------------------------
def _write_payload(obj: Any, folder: Path) -> tuple[bytes, list[dict[str, Any]]]:
    """Pickle ``obj`` into ``folder`` with its large buffers in files: the pickle, the files."""
    arrays_dir = folder / _ARRAYS
    arrays_dir.mkdir()
    arrays: list[dict[str, Any]] = []

    def out_of_band(buffer: pickle.PickleBuffer) -> bool:
        view = memoryview(buffer)
        if view.nbytes < MIN_MAPPED_BYTES or not view.contiguous:
            return True  # stays in band
        file = f"{_ARRAYS}/{len(arrays):06d}.bin"
        _write_synced(folder / file, buffer.raw())
        exporter = view.obj
        arrays.append(
            {
                "file": file,
                "dtype": exporter.dtype.str if isinstance(exporter, np.ndarray) else view.format,
                "shape": list(view.shape or ()),
                "bytes": view.nbytes,
            }
        )
        return False

    data = pickle.dumps(obj, protocol=5, buffer_callback=out_of_band)
    _write_synced(folder / _PICKLE, data)
    return data, arrays


def _write_synced(path: Path, data: bytes | memoryview) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish(root: Path, name: str) -> None:
    """Point ``root/CURRENT`` at ``name`` atomically and durably."""
    tmp = root / f"{_TMP_PREFIX}{_CURRENT}"
    _write_synced(tmp, f"{name}\n".encode())
    os.replace(tmp, root / _CURRENT)
    _fsync_dir(root)


@contextlib.contextmanager
def _writer_lock(root: Path) -> Iterator[None]:
    with open(root / _LOCK, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# ----- reading -------------------------------------------------------------------------
def _current(root: Path) -> str:
    if not root.is_dir():
        raise FileNotFoundError(
            f"no fitted artefact in {root}: the folder does not exist; run `interestlens fit` first"
        )
    current = root / _CURRENT
    if not current.exists():
        raise FileNotFoundError(
            f"no fitted artefact in {root}: {current.name} is missing; run `interestlens fit` first"
        )
    return current.read_text().strip()


def _read_version(root: Path, name: str) -> tuple[Any, dict[str, Any]]:
    folder = root / name
    if not folder.is_dir():
        raise FileNotFoundError(
            f"no version {name!r} in {root} (versions: {', '.join(list_versions(root)) or 'none'})"
        )
    manifest = _read_manifest(folder / _MANIFEST)
    pickle_path = folder / manifest["pickle"]["file"]
    if not pickle_path.exists():
        raise ValueError(f"{pickle_path}: the pickle named in the manifest is missing")
    data = pickle_path.read_bytes()
    if hashlib.sha256(data).hexdigest() != manifest["pickle"]["sha256"]:
        raise ValueError(
            f"{pickle_path}: checksum mismatch ({len(data)} bytes, the manifest says "
            f"{manifest['pickle']['bytes']}): the file is corrupt"
        )
    buffers = [_map(folder, entry) for entry in manifest["arrays"]]
    return pickle.loads(data, buffers=buffers), manifest


def _read_manifest(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ValueError(f"{path}: the manifest is missing")
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable manifest ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise ValueError(
            f"{path}: artefact format {found!r}, this interestlens {installed()} reads format "
            f"{FORMAT}; run `interestlens fit` to write a new version"
        )
    for key in ("pickle", "arrays", "meta"):
        if key not in manifest:
            raise ValueError(f"{path}: the manifest lacks the field {key!r}")
    return manifest


def _map(folder: Path, entry: dict[str, Any]) -> np.memmap:
    path = folder / entry["file"]
    if not path.exists():
        raise ValueError(f"{path}: array file named in the manifest is missing")
    size = path.stat().st_size
    if size != entry["bytes"]:
        raise ValueError(
            f"{path}: {size} bytes on disk, the manifest says {entry['bytes']}: the file is "
            "truncated or corrupt"
        )
    return np.memmap(path, dtype=np.uint8, mode="c", shape=(size,))
