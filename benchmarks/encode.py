"""Encoding speed: interestlens' Encoder against raw sentence-transformers, and the cache.

Prints a table and writes benchmarks/results/encode.json.

Texts: the 9,742 movie titles of the bundled ml-latest-small, and paragraphs cut from the
100 Jester jokes (each joke's words cycled from 10 different starting points and cut at
the last whole word within --tokens word pieces, [CLS] and [SEP] included), so every
paragraph is distinct and of the length the anchors name.

For each text set, in one process: raw SentenceTransformer.encode in float32, raw in
bf16 (the whole model cast with .to(torch.bfloat16)), and our Encoder without a cache,
all with batch size 128 and normalised outputs. The machine is shared, so the three take
turns chunk by chunk (1,024 titles or 256 paragraphs, starting variant rotated), and noise
falls on all of them alike. A warm-up pass comes first; figures are medians of --repeats
passes, with the best pass beside them.

Cache: a cold refit (new Encoder on an empty cache folder: model load, precision check
and encoding of every title) and right after it a warm one (new Encoder on the filled
folder, same titles); the stricter ratio, against encoding alone with the model already
loaded, is reported beside it. Medians of --cache-repeats.

    python benchmarks/encode.py [--repeats 3] [--cache-repeats 5] [--tokens 73] [--variants 10]
                                [--allow-busy]

The run records how much of the cores other processes took (`machine.Competition`) and
refuses to write its result when that exceeds 10%, unless --allow-busy marks it busy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sentence_transformers import SentenceTransformer

import interestlens
from interestlens.text import Encoder
from interestlens.text.local import cpu_supports_bf16
from machine import Competition, refuse_if_busy

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MOVIES = ROOT / "src" / "interestlens" / "data" / "bundled" / "ml-latest-small" / "movies.csv"
JOKES = ROOT.parent / "shared" / "data" / "jester5k" / "jokes.csv"
BATCH = 128


def paragraphs(jokes: list[str], tokenizer, tokens: int, variants: int) -> list[str]:
    """Distinct texts of at most ``tokens`` word pieces (specials included), whole words."""
    out = []
    for joke in jokes:
        words = joke.split()
        pieces = [len(tokenizer.tokenize(w)) for w in words]
        for v in range(variants):
            start = v * len(words) // variants
            chosen: list[str] = []
            used = 2  # [CLS] and [SEP]
            k = start
            while used + pieces[k % len(words)] <= tokens:
                used += pieces[k % len(words)]
                chosen.append(words[k % len(words)])
                k += 1
            out.append(" ".join(chosen))
    return out


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved_pass(
    texts: list[str], runners: dict[str, Callable[[list[str]], np.ndarray]], chunk: int, rep: int
) -> dict[str, float]:
    """Seconds per runner over all texts, the runners taking turns chunk by chunk."""
    names = list(runners)
    seconds = dict.fromkeys(names, 0.0)
    for c, start in enumerate(range(0, len(texts), chunk)):
        part = texts[start : start + chunk]
        shift = (rep + c) % len(names)
        for k in names[shift:] + names[:shift]:
            seconds[k] += timed(lambda k=k, part=part: runners[k](part))
    return seconds


def speed_table(
    name: str,
    texts: list[str],
    runners: dict[str, Callable[[list[str]], np.ndarray]],
    repeats: int,
    chunk: int,
) -> dict:
    reference = runners["raw fp32"](texts)
    cosine = {k: float(np.sum(reference * f(texts), axis=1).min()) for k, f in runners.items()}
    interleaved_pass(texts, runners, chunk, -1)  # warm-up
    passes = [interleaved_pass(texts, runners, chunk, rep) for rep in range(repeats)]
    seconds = {k: [p[k] for p in passes] for k in runners}
    rate = {k: len(texts) / statistics.median(v) for k, v in seconds.items()}
    best = {k: len(texts) / min(v) for k, v in seconds.items()}
    return {
        "texts": name,
        "n": len(texts),
        "distinct": len(set(texts)),
        "chunk": chunk,
        "per_second": rate,
        "per_second_best_pass": best,
        "runs_seconds": seconds,
        "min_cosine_vs_raw_fp32": cosine,
        "ours_over_best_raw": rate["ours"] / max(rate["raw fp32"], rate["raw bf16"]),
        "ours_over_best_raw_best_pass": best["ours"] / max(best["raw fp32"], best["raw bf16"]),
    }


def cache_refits(titles: list[str], repeats: int) -> dict:
    """Cold and warm refits, back to back in each repeat."""
    cold_total, cold_encode, warm, same = [], [], [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as d:
            start = time.perf_counter()
            cold = Encoder(cache_dir=d, progress=False)
            first = cold.encode(titles)
            cold_total.append(time.perf_counter() - start)
            cold.close()
            start = time.perf_counter()
            again = Encoder(cache_dir=d, progress=False)
            second = again.encode(titles)
            warm.append(time.perf_counter() - start)
            assert again._backend is None, "the warm refit loaded the model"
            again.close()
            same.append(bool(np.array_equal(first, second)))
        with tempfile.TemporaryDirectory() as d:
            loaded = Encoder(cache_dir=d, progress=False)
            assert loaded.dim > 0  # loads the model and settles the precision
            cold_encode.append(timed(lambda enc=loaded: enc.encode(titles)))
            loaded.close()
    med = statistics.median
    return {
        "n": len(titles),
        "cold_refit_seconds": med(cold_total),
        "cold_encode_only_seconds": med(cold_encode),
        "warm_refit_seconds": med(warm),
        "speedup": med(cold_total) / med(warm),
        "speedup_vs_encoding_alone": med(cold_encode) / med(warm),
        "speedup_best_runs": min(cold_total) / min(warm),
        "speedup_vs_encoding_alone_best_runs": min(cold_encode) / min(warm),
        "warm_equals_cold": all(same),
        "runs": {"cold_refit": cold_total, "cold_encode_only": cold_encode, "warm_refit": warm},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cache-repeats", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=73)
    ap.add_argument("--variants", type=int, default=10, help="paragraphs per joke")
    ap.add_argument("--jokes", type=Path, default=JOKES)
    ap.add_argument(
        "--allow-busy", action="store_true", help="write the result even if others used the CPU"
    )
    args = ap.parse_args()

    competition = Competition().start()
    titles = pd.read_csv(MOVIES)["title"].tolist()
    ours = Encoder(progress=False)
    path = str(ours._model_path())
    raw32 = SentenceTransformer(path, device="cpu")
    raw16 = SentenceTransformer(path, device="cpu").to(torch.bfloat16)
    paras = paragraphs(
        pd.read_csv(args.jokes)["text"].tolist(), raw32.tokenizer, args.tokens, args.variants
    )

    def raw(model: SentenceTransformer) -> Callable[[list[str]], np.ndarray]:
        return lambda t: model.encode(t, batch_size=BATCH, normalize_embeddings=True)

    runners = {"raw fp32": raw(raw32), "raw bf16": raw(raw16), "ours": ours.encode}
    speed = [
        speed_table("titles", titles, runners, args.repeats, chunk=1024),
        speed_table("paragraphs", paras, runners, args.repeats, chunk=256),
    ]
    for row, texts in zip(speed, (titles, paras), strict=True):
        row["mean_tokens"] = float(np.mean([len(x) for x in raw32.tokenizer(texts)["input_ids"]]))
    cache = cache_refits(titles, args.cache_repeats)

    print(
        f"\nEncoder precision: {ours.precision_} (bf16 check min cosine "
        f"{ours._backend.bf16_cosine:.5f}); CPU bf16: {cpu_supports_bf16()}; "
        f"torch threads {torch.get_num_threads()}"
    )
    print(
        f"\n{'texts':<11}{'n':>6}{'tokens':>8}{'raw fp32/s':>12}{'raw bf16/s':>12}{'ours/s':>10}"
        f"{'ours/best':>11}{'(best pass)':>13}{'min cos ours':>14}{'min cos bf16':>14}"
    )
    for row in speed:
        r, c = row["per_second"], row["min_cosine_vs_raw_fp32"]
        print(
            f"{row['texts']:<11}{row['n']:>6}{row['mean_tokens']:>8.1f}{r['raw fp32']:>12.0f}"
            f"{r['raw bf16']:>12.0f}{r['ours']:>10.0f}{row['ours_over_best_raw']:>11.3f}"
            f"{row['ours_over_best_raw_best_pass']:>13.3f}{c['ours']:>14.5f}{c['raw bf16']:>14.5f}"
        )
    print(
        f"\ncache, {cache['n']} titles, median of {args.cache_repeats}: cold refit "
        f"{cache['cold_refit_seconds']:.2f} s (encoding alone, model loaded: "
        f"{cache['cold_encode_only_seconds']:.2f} s), warm refit "
        f"{1000 * cache['warm_refit_seconds']:.1f} ms; speed-up {cache['speedup']:.0f}x "
        f"({cache['speedup_vs_encoding_alone']:.0f}x against encoding alone; best runs "
        f"{cache['speedup_best_runs']:.0f}x and {cache['speedup_vs_encoding_alone_best_runs']:.0f}x)"
        f"; identical vectors: {cache['warm_equals_cold']}"
    )
    targets = {
        "titles: ours >= 0.95 x best raw": speed[0]["ours_over_best_raw"] >= 0.95,
        "paragraphs: ours >= 0.95 x best raw": speed[1]["ours_over_best_raw"] >= 0.95,
        "warm refit >= 50x faster than cold": cache["speedup"] >= 50,
        "warm refit >= 50x faster than encoding alone": cache["speedup_vs_encoding_alone"] >= 50,
    }
    print()
    for what, met in targets.items():
        print(f"  [{'met' if met else 'MISSED'}] {what}")
    machine = competition.stop()
    refuse_if_busy(machine, args.allow_busy)

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {
        "interestlens": interestlens.__version__,
        "torch": torch.__version__,
        "architecture": platform.machine(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_bf16": cpu_supports_bf16(),
        "machine": machine,
        "batch_size": BATCH,
        "repeats": args.repeats,
        "cache_repeats": args.cache_repeats,
        "encoder_precision": ours.precision_,
        "encoder_bf16_check_min_cosine": ours._backend.bf16_cosine,
        "speed": speed,
        "cache": cache,
        "targets": targets,
    }
    (RESULTS / "encode.json").write_text(json.dumps(out, indent=2))
    print(f"\nwrote {RESULTS / 'encode.json'}")


if __name__ == "__main__":
    main()
