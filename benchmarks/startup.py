"""Start-up cost of a command-line question: imports, and opening the fitted engine.

Prints a table and writes benchmarks/results/startup.json.

Every `interestlens recommend`, `profile` or `interests` is a new process that imports the
package and opens the fitted engine before it can answer. This measures both parts, each
in fresh subprocesses (interleaved, --repeats of each, medians and best):

- import time of ``interestlens.cli`` (what every command pays), and of
  ``interestlens.engine`` (what opening a fitted engine pays on top, since unpickling it
  imports every layer);
- opening the engine the old way, one ``pickle.load`` of ``DATA_DIR/engine/engine.pkl``,
  against ``engine.artefact.read_artefact`` of the same object written with
  ``write_artefact`` (small pickle plus memory-mapped arrays): seconds, after the imports
  above, and the process's peak resident memory (``ru_maxrss``) after opening, with
  its value before opening beside it. A mapped array costs memory only for the pages a
  question touches, so the artefact's peak is a lower bound of a real question's;
- the size on disk of both.

    python benchmarks/startup.py [DATA_DIR] [--repeats 5] [--allow-busy]

DATA_DIR is a data dir `interestlens fit` wrote; without it, the bundled ml-latest-small
is fitted into a temporary one first (minutes of both cores; progress on stderr). The
run records how much of the cores other processes took (`machine.Competition`, over the
measurements only, not the fit) and refuses to write its result when that exceeds 10%,
unless --allow-busy marks it busy.
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

_WRITE = """
import json, pickle, sys, time
from interestlens.engine.artefact import write_artefact
with open(sys.argv[1], "rb") as fh:
    doc = pickle.load(fh)
t = time.perf_counter()
folder = write_artefact(doc, sys.argv[2], meta={"source": sys.argv[1]})
print(json.dumps({"write_seconds": time.perf_counter() - t, "folder": str(folder)}))
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


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def measure(pickle_file: Path, artefact_root: Path, repeats: int) -> dict:
    """Medians and best of every variant over ``repeats`` interleaved fresh processes."""
    runs: dict[str, list[dict]] = {name: [] for name in VARIANTS}
    print(f"{HEADER}", flush=True)
    for r in range(repeats):
        names = list(VARIANTS)
        names = names[r % len(names) :] + names[: r % len(names)]
        for name in names:
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
    load, before = get("load_seconds"), get("rss_before_load")
    return (
        f"{get('import_seconds'):>9.3f}"
        + (f"{load:>9.3f}" if load is not None else f"{'':>9}")
        + f"{get('process_seconds'):>11.3f}"
        + (f"{before / mib:>11.0f}" if before is not None else f"{'':>11}")
        + f"{get('peak_rss') / mib:>10.0f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data_dir", nargs="?", type=Path, help="a fitted data dir (default: fit one)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--allow-busy", action="store_true", help="write the result even if others used the CPU"
    )
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="interestlens-startup-") as tmp:
        data_dir = args.data_dir
        if data_dir is None:
            data_dir = Path(tmp) / "data"
            fit_bundled(data_dir)
        pickle_file = data_dir / "engine" / "engine.pkl"
        if not pickle_file.exists():
            raise SystemExit(
                f"{pickle_file} does not exist: give a data dir `interestlens fit` wrote"
            )
        artefact_root = Path(tmp) / "artefact"

        competition = Competition().start()
        print(f"writing {pickle_file} as an artefact in {artefact_root} ...", flush=True)
        written, _ = _run(_WRITE, str(pickle_file), str(artefact_root))
        folder = Path(written["folder"])
        manifest = json.loads((folder / "manifest.json").read_text())
        sizes = {
            "engine_pkl_bytes": pickle_file.stat().st_size,
            "artefact_bytes": _size(folder),
            "artefact_pickle_bytes": manifest["pickle"]["bytes"],
            "artefact_array_files": len(manifest["arrays"]),
            "artefact_array_bytes": sum(a["bytes"] for a in manifest["arrays"]),
        }
        timings = measure(pickle_file, artefact_root, args.repeats)
        machine = competition.stop()

    mib = 2**20
    print(f"\nmedians{HEADER[7:]}")
    for name, t in timings.items():
        print(f"{'':<13}{name:<27}{_row(t)}")
    print(
        f"\nmedians of {args.repeats} fresh processes each. engine.pkl "
        f"{sizes['engine_pkl_bytes'] / mib:.0f} MiB; artefact {sizes['artefact_bytes'] / mib:.0f} MiB "
        f"({sizes['artefact_pickle_bytes'] / mib:.1f} MiB pickle + {sizes['artefact_array_files']} "
        f"array files, {sizes['artefact_array_bytes'] / mib:.0f} MiB), written in "
        f"{written['write_seconds']:.2f} s"
    )
    refuse_if_busy(machine, args.allow_busy)

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {
        "interestlens": interestlens.__version__,
        "python": platform.python_version(),
        "architecture": platform.machine(),
        "cpus": os.cpu_count(),
        "machine": machine,
        "data_dir": str(args.data_dir)
        if args.data_dir
        else "bundled ml-latest-small, fitted by this run",
        "repeats": args.repeats,
        "sizes": sizes,
        "write_seconds": written["write_seconds"],
        "timings": timings,
    }
    (RESULTS / "startup.json").write_text(json.dumps(out, indent=2))
    print(f"\nwrote {RESULTS / 'startup.json'}")


if __name__ == "__main__":
    main()
