"""Start-up cost of a command-line question: imports, and opening the fitted engine.

Prints a table and writes benchmarks/results/startup.json.

Every `interestlens recommend`, `profile` or `interests` is a new process that imports the
package and opens the fitted engine before it can answer. This measures both parts, each
in fresh subprocesses (interleaved, --repeats of each, medians and best):

- import time of ``interestlens.cli`` (what every command pays), and of
  ``interestlens.engine`` (what opening a fitted engine pays on top, since unpickling it
  imports every layer);
- opening the engine the old way, one ``pickle.load`` of the whole object (what
  ``Engine.save`` wrote to ``engine.pkl`` before the artefacts), against
  ``engine.artefact.read_artefact`` of the same object (small pickle plus memory-mapped
  arrays): seconds, after the imports above, and the process's peak resident memory
  (``ru_maxrss``) after opening, with its value before opening beside it. A mapped array
  costs memory only for the pages a question touches, so the artefact's peak is a lower
  bound of a real question's. Whichever of the two forms the data dir holds, the other
  is written from it into a temporary folder;
- when the data dir holds an artefact (the engine opens from it),
  ``interestlens recommend USER --json`` end to end: wall seconds and peak RSS;
- the size on disk of both forms.

    python benchmarks/startup.py [DATA_DIR] [--user 1] [--repeats 5] [--allow-busy]

DATA_DIR is a data dir `interestlens fit` wrote (left unchanged but for the slates
`recommend` logs); without it, the bundled ml-latest-small is fitted into a temporary
one first (minutes of both cores; progress on stderr). The run records how much of the
cores other processes took (`machine.Competition`, over the measurements only, not the
fit) and refuses to write its result when that exceeds 10%, unless --allow-busy marks it
busy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import interestlens
from machine import Competition, refuse_if_busy

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

# Each child prints one JSON line: seconds of its imports, of the load, and its peak RSS
# before and after the load, in bytes (ru_maxrss is in KiB on Linux).
_CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
{imports}
t1 = time.perf_counter()
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
{load}
t2 = time.perf_counter()
rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({{"import_seconds": t1 - t0, "load_seconds": t2 - t1,
                  "rss_before_load": rss0, "peak_rss": rss1}}))
"""

VARIANTS = {
    "import interestlens.cli": ("import interestlens.cli", None),
    "import interestlens.engine": ("import interestlens.engine", None),
    "pickle.load engine.pkl": (
        "import pickle, interestlens.engine",
        "with open(sys.argv[1], 'rb') as fh: obj = pickle.load(fh)",
    ),
    "read_artefact": (
        "from interestlens.engine.artefact import read_artefact",
        "obj, manifest = read_artefact(sys.argv[2])",
    ),
}

HEADER = (
    f"{'':<13}{'variant':<27}{'import s':>9}{'load s':>9}{'process s':>11}"
    f"{'MiB before':>11}{'peak MiB':>10}"
)

# an engine.pkl as an artefact: the same object, written the new way
_TO_ARTEFACT = """
import json, pickle, sys, time
from interestlens.engine.artefact import write_artefact
with open(sys.argv[1], "rb") as fh:
    doc = pickle.load(fh)
t = time.perf_counter()
folder = write_artefact(doc, sys.argv[2], meta={"source": sys.argv[1]})
print(json.dumps({"seconds": time.perf_counter() - t, "folder": str(folder)}))
"""

# an artefact as one pickle: the same object, written the old way (Engine.save before
# the artefacts pickled its whole state into engine.pkl)
_TO_PICKLE = """
import json, pickle, sys, time
from interestlens.engine.artefact import read_artefact
obj, manifest = read_artefact(sys.argv[2])
t = time.perf_counter()
with open(sys.argv[1], "wb") as fh:
    pickle.dump(obj, fh, protocol=5)
folder = sys.argv[2] + "/" + manifest["version"]
print(json.dumps({"seconds": time.perf_counter() - t, "folder": folder}))
"""


def _run(code: str, *args: str) -> tuple[dict, float]:
    """Run ``code`` in a fresh interpreter; its one JSON line and the subprocess's wall time."""
    t = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"child failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1]), wall


def fit_bundled(data_dir: Path) -> None:
    """Fit the default pipeline on the bundled ml-latest-small into ``data_dir``."""
    print(f"fitting the bundled ml-latest-small into {data_dir} (minutes) ...", flush=True)
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from interestlens.cli import main; main()",
            "--verbose",
            "fit",
            "--data-dir",
            str(data_dir),
        ],
        check=True,
    )


def cli_question(data_dir: Path, user: str) -> dict:
    """``interestlens recommend USER`` end to end: wall seconds and peak RSS of its process."""
    with tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from interestlens.cli import main; main()",
                "recommend",
                user,
                "--data-dir",
                str(data_dir),
                "--json",
            ],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"interestlens recommend {user} failed:\n{err.read().decode()}")
    return {"process_seconds": wall, "peak_rss": usage.ru_maxrss * 1024}


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def measure(
    pickle_file: Path, artefact_root: Path, repeats: int, question: tuple[Path, str] | None
) -> dict:
    """Medians and best of every variant over ``repeats`` interleaved fresh processes.

    ``question``: the data dir and user of an end-to-end ``interestlens recommend``, when
    the engine in that data dir opens from its artefact.
    """
    variants = list(VARIANTS) + ([f"interestlens recommend {question[1]}"] if question else [])
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    print(f"{HEADER}", flush=True)
    for r in range(repeats):
        names = variants[r % len(variants) :] + variants[: r % len(variants)]
        for name in names:
            if name not in VARIANTS:
                doc = cli_question(*question)
                runs[name].append(doc)
                print(f"pass {r + 1:>3}/{repeats:<3}  {name:<27}{_row(doc)}", flush=True)
                continue
            imports, load = VARIANTS[name]
            doc, wall = _run(
                _CHILD.format(imports=imports, load=load or "pass"),
                str(pickle_file),
                str(artefact_root),
            )
            doc["process_seconds"] = wall
            if load is None:
                del doc["load_seconds"], doc["rss_before_load"]
            runs[name].append(doc)
            print(f"pass {r + 1:>3}/{repeats:<3}  {name:<27}{_row(doc)}", flush=True)
    return {
        name: {
            **{
                key: {
                    "median": statistics.median(d[key] for d in docs),
                    "best": min(d[key] for d in docs),
                }
                for key in docs[0]
            },
            "runs": docs,
        }
        for name, docs in runs.items()
    }


def _row(doc: dict) -> str:
    """One line of figures; ``doc`` holds numbers or {"median": ...} of the keys of a run."""

    def get(key: str) -> float | None:
        v = doc.get(key)
        return v["median"] if isinstance(v, dict) else v

    mib = 2**20
    imports, load, before = get("import_seconds"), get("load_seconds"), get("rss_before_load")
    return (
        (f"{imports:>9.3f}" if imports is not None else f"{'':>9}")
        + (f"{load:>9.3f}" if load is not None else f"{'':>9}")
        + f"{get('process_seconds'):>11.3f}"
        + (f"{before / mib:>11.0f}" if before is not None else f"{'':>11}")
        + f"{get('peak_rss') / mib:>10.0f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data_dir", nargs="?", type=Path, help="a fitted data dir (default: fit one)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--user", default="1", help="the user of `interestlens recommend`")
    ap.add_argument("--note", default="", help="what else the reader of the result should know")
    ap.add_argument(
        "--allow-busy", action="store_true", help="write the result even if others used the CPU"
    )
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="interestlens-startup-") as tmp:
        data_dir = args.data_dir
        if data_dir is None:
            data_dir = Path(tmp) / "data"
            fit_bundled(data_dir)
        engine_dir = data_dir / "engine"
        competition = Competition().start()
        if (engine_dir / "CURRENT").exists():
            source, artefact_root = "artefact", engine_dir
            pickle_file = Path(tmp) / "engine.pkl"
            print(f"writing {artefact_root} as one pickle, {pickle_file} ...", flush=True)
            converted, _ = _run(_TO_PICKLE, str(pickle_file), str(artefact_root))
        elif (engine_dir / "engine.pkl").exists():
            source, pickle_file = "engine.pkl", engine_dir / "engine.pkl"
            artefact_root = Path(tmp) / "artefact"
            print(f"writing {pickle_file} as an artefact in {artefact_root} ...", flush=True)
            converted, _ = _run(_TO_ARTEFACT, str(pickle_file), str(artefact_root))
        else:
            raise SystemExit(
                f"{engine_dir} holds neither an artefact nor an engine.pkl: give a data dir "
                "`interestlens fit` wrote"
            )
        folder = Path(converted["folder"])
        manifest = json.loads((folder / "manifest.json").read_text())
        sizes = {
            "engine_pkl_bytes": pickle_file.stat().st_size,
            "artefact_bytes": _size(folder),
            "artefact_pickle_bytes": manifest["pickle"]["bytes"],
            "artefact_array_files": len(manifest["arrays"]),
            "artefact_array_bytes": sum(a["bytes"] for a in manifest["arrays"]),
        }
        question = (data_dir, args.user) if source == "artefact" else None
        timings = measure(pickle_file, artefact_root, args.repeats, question)
        machine = competition.stop()

    mib = 2**20
    print(f"\nmedians{HEADER[7:]}")
    for name, t in timings.items():
        print(f"{'':<13}{name:<27}{_row(t)}")
    print(
        f"\nmedians of {args.repeats} fresh processes each. engine.pkl "
        f"{sizes['engine_pkl_bytes'] / mib:.0f} MiB; artefact {sizes['artefact_bytes'] / mib:.0f} MiB "
        f"({sizes['artefact_pickle_bytes'] / mib:.1f} MiB pickle + {sizes['artefact_array_files']} "
        f"array files, {sizes['artefact_array_bytes'] / mib:.0f} MiB); the fitted engine was "
        f"saved as {source}, the other written from it in {converted['seconds']:.2f} s"
    )
    refuse_if_busy(machine, args.allow_busy)

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {
        "interestlens": interestlens.__version__,
        "interestlens_source": str(Path(interestlens.__file__).parent),
        "note": args.note,
        "python": platform.python_version(),
        "architecture": platform.machine(),
        "cpus": os.cpu_count(),
        "machine": machine,
        "data_dir": str(args.data_dir)
        if args.data_dir
        else "bundled ml-latest-small, fitted by this run",
        "repeats": args.repeats,
        "sizes": sizes,
        "saved_as": source,
        "conversion_seconds": converted["seconds"],
        "timings": timings,
    }
    (RESULTS / "startup.json").write_text(json.dumps(out, indent=2))
    print(f"\nwrote {RESULTS / 'startup.json'}")


if __name__ == "__main__":
    main()
