"""Client for OpenAI-compatible ``/v1/embeddings`` endpoints.

Speaks the request and response shape of OpenAI's embeddings API, which vLLM, Hugging
Face TEI, llama.cpp, Ollama, LiteLLM and others also serve.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import httpx


class EndpointError(RuntimeError):
    """An embeddings endpoint failed for good (after retries, or with a non-retryable answer)."""


def embeddings_url(url: str) -> str:
    """The full embeddings URL from a base URL (``.../v1``) or the full URL itself.

    Examples
    --------
    >>> embeddings_url("http://127.0.0.1:8000/v1/")
    'http://127.0.0.1:8000/v1/embeddings'
    >>> embeddings_url("https://api.example.com/v1/embeddings")
    'https://api.example.com/v1/embeddings'
    """
    url = url.rstrip("/")
    return url if url.endswith("/embeddings") else f"{url}/embeddings"


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None


class EndpointClient:
    """Embeds texts by POSTing them to an OpenAI-compatible embeddings endpoint.

    Parameters
    ----------
    url
        Base URL (``http://host:port/v1``) or full ``.../v1/embeddings`` URL.
    model
        Sent as ``"model"`` in every request; left out when ``None`` (servers that host
        one model often accept that, OpenAI does not).
    api_key
        Sent as ``Authorization: Bearer <api_key>`` when given.
    timeout
        Seconds allowed for each request (connect, read, write each).
    max_retries
        Retries after the first attempt on HTTP 429, 5xx, timeouts and connection
        errors, with exponential backoff (``backoff``, twice that, ...) or the server's
        ``Retry-After`` when it is longer (capped at 60 s). Other 4xx answers fail at once.
    backoff
        Seconds before the first retry.

    Examples
    --------
    >>> client = EndpointClient("http://127.0.0.1:8080/v1", model="all-MiniLM-L6-v2")
    >>> client.url
    'http://127.0.0.1:8080/v1/embeddings'
    >>> client.embed(["hello"])  # doctest: +SKIP
    array([[...]], dtype=float32)
    """

    def __init__(
        self,
        url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        self.url = embeddings_url(url)
        self.model = model
        self.max_retries = max_retries
        self.backoff = backoff
        self.timeout = timeout
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout, headers=headers)

    def embed(self, texts: list[str]) -> np.ndarray:
        """One request's worth of texts to L2-normalised float32 rows, in input order.

        Raises
        ------
        EndpointError
            After the last retry, or at once on a non-retryable answer or a malformed
            response; the message names the URL and the last status or error.
        """
        import httpx

        payload: dict[str, Any] = {"input": texts}
        if self.model is not None:
            payload["model"] = self.model
        attempts = self.max_retries + 1
        last = ""
        for attempt in range(attempts):
            wait = self.backoff * 2**attempt
            try:
                response = self._client.post(self.url, json=payload)
            except httpx.TimeoutException:
                last = f"timed out after {self.timeout:g} s"
            except httpx.TransportError as exc:
                last = f"connection failed ({type(exc).__name__}: {exc})"
            else:
                status = response.status_code
                if status < 400:
                    return self._parse(response, len(texts))
                last = f"HTTP {status} {response.reason_phrase}: {response.text[:300]}"
                if status != 429 and status < 500:
                    raise EndpointError(f"embeddings endpoint {self.url} answered {last}")
                wait = max(wait, min(_retry_after(response) or 0.0, 60.0))
            if attempt + 1 < attempts:
                time.sleep(wait)
        raise EndpointError(
            f"embeddings endpoint {self.url} failed after {attempts} attempt(s); last: {last}"
        )

    def _parse(self, response: httpx.Response, n: int) -> np.ndarray:
        try:
            data = response.json()["data"]
            rows = sorted(data, key=lambda d: d["index"])
            vectors = np.asarray([r["embedding"] for r in rows], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as exc:
            raise EndpointError(
                f"embeddings endpoint {self.url} sent a malformed response ({exc!r}): "
                f"{response.text[:300]}"
            ) from exc
        if vectors.ndim != 2 or len(vectors) != n or [r["index"] for r in rows] != list(range(n)):
            raise EndpointError(
                f"embeddings endpoint {self.url} returned {len(rows)} embeddings for {n} inputs"
            )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms > 0, norms, 1.0)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()
