"""Sentence-transformers models run in this process, in bf16 where the hardware does it well.

bf16 here means the transformer (embeddings, attention, feed-forward) holds bf16 weights
and computes in bf16, while pooling and normalisation run in float32. Measured on this
project's machine (2-core Zen 5, all-MiniLM-L6-v2), that layout runs as fast as casting the
whole model to bf16 and keeps every sample within cosine 0.9999 of float32, whereas the
whole-model cast pools and normalises in bf16 and drops to cosine 0.997, and
``torch.autocast`` is accurate but 15-20 % slower because it re-casts the weights on every
batch.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

Precision = Literal["bf16", "fp32"]

#: Fixed sentences on which bf16 must agree with float32: titles, tags, prose, numbers,
#: code, other scripts, and one text long enough to fill many positions.
PRECISION_SAMPLE: tuple[str, ...] = (
    "Toy Story (1995)",
    "Dr. Strangelove or: How I Learned to Stop Worrying and Love the Bomb (1964)",
    "sci-fi, dystopia, mind-bending",
    "wireless noise-cancelling headphones",
    "How do I reset my password?",
    "Q. What's 200 feet long and has 4 teeth? A. The front row at a concert.",
    "The quarterly report shows revenue of $4.2M, up 13% on 2023.",
    "def fib(n): return n if n < 2 else fib(n - 1) + fib(n - 2)",
    "Le chat est sur la table, et il ne veut pas en descendre.",
    "東京は日本の首都です。",
    "I loved it!!! 10/10 would watch again :)",
    "a",
    (
        "A man visits the doctor. The doctor says he has bad news: the tests came back and "
        "there is little time left. The man asks how long. The doctor says ten. The man asks "
        "ten what, months, weeks? The doctor says nine, eight, seven. Everyone in the waiting "
        "room laughed, except the man, who had heard the joke before and did not like it at "
        "all, so he went home, read a book about medicine and wrote a long letter of complaint."
    ),
    "Introduction to machine learning: linear models, trees, ensembles and neural networks.",
    "Breaking: storm closes airport, hundreds of flights cancelled across the region.",
    "Organic green tea, 100 bags, caffeine-free",
)


@functools.cache
def _cpu_flags() -> frozenset[str]:
    """The CPU feature flags of ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        return frozenset(Path("/proc/cpuinfo").read_text(errors="ignore").split())
    except OSError:
        return frozenset()


def _torch_cpu_check(name: str) -> bool:
    import torch

    return bool(getattr(torch.cpu, name, lambda: False)())


def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bf16 arithmetic (AVX512-BF16 or AMX-BF16).

    Without it PyTorch emulates bf16 and is slower than float32.
    """
    if {"avx512_bf16", "amx_bf16"} & _cpu_flags():
        return True
    return _torch_cpu_check("_is_avx512_bf16_supported") or cpu_has_amx()


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX-BF16 tiles.

    On them bf16 matrix products of training size run 4 to 6 times faster than float32;
    AVX512-BF16 alone gains far less.
    """
    return "amx_bf16" in _cpu_flags() or _torch_cpu_check("_is_amx_tile_supported")


def device_supports_bf16(device: str) -> bool:
    """Whether ``device`` ("cpu", "cuda", "cuda:1", ...) computes natively in bf16."""
    if device.startswith("cuda"):
        import torch

        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return device == "cpu" and cpu_supports_bf16()


def choose_precision(
    requested: Literal["auto", "bf16", "fp32"],
    *,
    bf16_supported: bool,
    min_cosine: float | None = None,
    threshold: float = 0.999,
) -> Precision:
    """Decide the precision to encode in.

    Parameters
    ----------
    requested
        ``"fp32"`` and ``"bf16"`` are obeyed as given; ``"auto"`` picks bf16 only when
        the device supports it and the bf16 vectors agreed with float32.
    bf16_supported
        Result of :func:`device_supports_bf16`.
    min_cosine
        Lowest cosine between float32 and bf16 vectors of :data:`PRECISION_SAMPLE`;
        ``None`` when not measured.
    threshold
        Agreement needed for ``"auto"`` to choose bf16.

    Examples
    --------
    >>> choose_precision("auto", bf16_supported=True, min_cosine=0.9999)
    'bf16'
    >>> choose_precision("auto", bf16_supported=True, min_cosine=0.998)
    'fp32'
    >>> choose_precision("auto", bf16_supported=False)
    'fp32'
    """
    if requested not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision must be 'auto', 'bf16' or 'fp32', not {requested!r}")
    if requested != "auto":
        return requested
    if bf16_supported and min_cosine is not None and min_cosine >= threshold:
        return "bf16"
    return "fp32"


def _file_digest(path: Path, size: int) -> bytes:
    """Whole content of small files; 16 evenly spaced 4 kB samples of large ones."""
    if size <= 1 << 20:
        return hashlib.blake2b(path.read_bytes(), digest_size=16).digest()
    h = hashlib.blake2b(digest_size=16)
    with path.open("rb") as f:
        for k in range(16):
            f.seek((size - 4096) * k // 15)
            h.update(f.read(4096))
    return h.digest()


def model_fingerprint(folder: str | Path) -> str:
    """A short digest of a model folder that changes when its files change.

    It covers every file's relative path and size, the whole content of files up to
    1 MB (configs, vocabularies) and sampled content of larger ones (weights), and skips
    hidden files and Markdown. Reading samples instead of whole weight files keeps it
    to about a millisecond, so a warm-cache refit need not read 90 MB.
    """
    root = Path(folder)
    h = hashlib.blake2b(digest_size=8)
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if not path.is_file() or rel.startswith(".") or "/." in rel or rel.endswith(".md"):
            continue
        size = path.stat().st_size
        h.update(f"{rel}\0{size}\0".encode())
        h.update(_file_digest(path, size))
    return h.hexdigest()


@contextmanager
def _quiet_loader() -> Iterator[None]:
    """Hide transformers' "Loading weights" bar while a model loads, then restore the setting.

    The bar would reach the stderr of every command that loads the model; our own bars
    (:mod:`interestlens.progress`) are not tqdm and stay on.
    """
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


def _outputs_to_fp32(module: Any, args: Any, output: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v.float() if getattr(v, "is_floating_point", lambda: False)() else v
        for k, v in output.items()
    }


class LocalModel:
    """A sentence-transformers model loaded from a local folder.

    Parameters
    ----------
    path
        Folder holding a sentence-transformers model (``modules.json`` and friends).
    device
        Torch device.
    precision
        ``"auto"``, ``"bf16"`` or ``"fp32"``; see :func:`choose_precision`.
    min_cosine
        Agreement with float32 that ``"auto"`` requires before choosing bf16.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        device: str = "cpu",
        precision: Literal["auto", "bf16", "fp32"] = "auto",
        min_cosine: float = 0.999,
    ) -> None:
        from sentence_transformers import SentenceTransformer

        with _quiet_loader():
            self.model: SentenceTransformer = SentenceTransformer(
                str(path), device=device, local_files_only=True
            )
        self.model.eval()
        preprocess = getattr(self.model, "preprocess", None)
        self._preprocess: Callable[[list[str]], dict[str, Any]] = (
            preprocess if preprocess is not None else self.model.tokenize
        )
        get_dim = getattr(self.model, "get_embedding_dimension", None) or (
            self.model.get_sentence_embedding_dimension
        )
        self.dim: int = int(get_dim())
        #: Lowest float32-vs-bf16 cosine on :data:`PRECISION_SAMPLE`, when measured.
        self.bf16_cosine: float | None = None
        self.precision: Precision = self._settle_precision(precision, device, min_cosine)

    def _settle_precision(
        self, requested: Literal["auto", "bf16", "fp32"], device: str, min_cosine: float
    ) -> Precision:
        supported = device_supports_bf16(device)
        if requested == "fp32" or (requested == "auto" and not supported):
            return choose_precision(requested, bf16_supported=supported)
        transformer = self.model[0]
        saved: dict[str, torch.Tensor] | None = None
        reference = None
        if requested == "auto":
            reference = self.encode(list(PRECISION_SAMPLE))
            saved = {k: v.detach().clone() for k, v in transformer.state_dict().items()}
        import torch

        transformer.to(torch.bfloat16)
        hook = transformer.register_forward_hook(_outputs_to_fp32)
        if reference is not None:
            candidate = self.encode(list(PRECISION_SAMPLE))
            self.bf16_cosine = float(np.min(np.sum(reference * candidate, axis=1)))
        chosen = choose_precision(
            requested,
            bf16_supported=supported,
            min_cosine=self.bf16_cosine,
            threshold=min_cosine,
        )
        if chosen == "fp32" and saved is not None:
            hook.remove()
            transformer.to(torch.float32)
            transformer.load_state_dict(saved)
        return chosen

    def encode(self, texts: list[str]) -> np.ndarray:
        """One batch of texts to L2-normalised float32 rows, in the given order."""
        import torch
        from sentence_transformers.util import batch_to_device

        with torch.inference_mode():
            features = batch_to_device(self._preprocess(texts), self.model.device)
            emb = self.model(features)["sentence_embedding"].float()
            emb = torch.nn.functional.normalize(emb, p=2, dim=1)
            return emb.cpu().numpy()
