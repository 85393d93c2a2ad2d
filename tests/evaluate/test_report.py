"""Reports: paired bootstrap intervals, comparisons, JSON, Markdown and PNG output."""

from __future__ import annotations

import json
import struct

import numpy as np
import pandas as pd

from interestlens.evaluate import EvaluationReport


def test_intervals_contain_the_mean_and_are_seeded(pop_vs_random):
    s = pop_vs_random.summary()
    per_user = s.dropna(subset=["ci_low"])
    assert len(per_user) >= 20
    assert (
        (per_user["ci_low"] <= per_user["value"] + 1e-12)
        & (per_user["value"] <= per_user["ci_high"] + 1e-12)
    ).all()
    again = EvaluationReport(pop_vs_random.per_user, "leave_last_out", 10, n_bootstrap=500)
    pd.testing.assert_frame_equal(again.summary(), s)
    other = EvaluationReport(
        pop_vs_random.per_user, "leave_last_out", 10, n_bootstrap=500, random_state=1
    )
    assert not np.allclose(other.summary()["ci_low"].dropna(), per_user["ci_low"])


def test_compare_detects_a_real_difference(pop_vs_random):
    c = pop_vs_random.compare("popularity", "random", "ndcg")
    assert c.difference > 0.01 and c.ci_low > 0
    assert c.p_value < 0.05 and c.wilcoxon_p < 0.05 and c.significant()
    assert c.n_users == 609
    assert c.difference == pop_vs_random.compare("popularity", "random", "ndcg").difference


def test_compare_finds_no_difference_between_a_model_and_itself(pop_vs_random):
    c = pop_vs_random.compare("popularity", "popularity", "hr")
    assert (c.difference, c.ci_low, c.ci_high, c.p_value, c.wilcoxon_p) == (0, 0, 0, 1, 1)
    assert not c.significant()


def test_json_shape(pop_vs_random, tmp_path):
    text = pop_vs_random.to_json(tmp_path / "report.json")
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc == json.loads(text)
    assert doc["protocol"] == "leave_last_out" and doc["k"] == 10 and doc["n_users"] == 609
    assert set(doc["results"]) == {"popularity", "random"}
    for metrics in doc["results"].values():
        for name, entry in metrics.items():
            assert set(entry) == {"value", "ci"}
            if name in ("coverage", "gini"):
                assert entry["ci"] is None
            else:
                lo, hi = entry["ci"]
                assert lo <= entry["value"] <= hi
    comp = doc["comparisons"][0]
    assert (comp["a"], comp["b"], comp["metric"]) == ("random", "popularity", "ndcg")
    assert "NaN" not in text


def test_markdown(pop_vs_random, tmp_path):
    md = pop_vs_random.to_markdown(tmp_path / "report.md")
    assert md.startswith("# Evaluation: leave_last_out, K = 10")
    assert "| metric | popularity | random |" in md and "| ndcg | 0.01" in md
    assert "## Differences against popularity" in md
    assert (tmp_path / "report.md").read_text() == md


def test_plot_writes_a_real_png(pop_vs_random, tmp_path):
    path = pop_vs_random.plot(tmp_path / "ndcg.png", metric="ndcg")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 400 and height >= 300 and len(data) > 5000


def test_reports_need_the_same_users():
    a = pd.DataFrame({"hr": [1.0, 0.0]}, index=pd.Index(["u", "v"], name="user_id"))
    b = pd.DataFrame({"hr": [1.0, 0.0]}, index=pd.Index(["u", "w"], name="user_id"))
    try:
        EvaluationReport({"a": a, "b": b}, "loo", 10)
    except ValueError as exc:
        assert "same users" in str(exc)
    else:
        raise AssertionError("mismatched users were accepted")
