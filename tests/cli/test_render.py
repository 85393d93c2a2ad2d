"""The renderer shows data as it is, keeps piped tables whole, and prints strict JSON."""

from __future__ import annotations

import json

import pytest

from interestlens.cli import render

#: Text rich would read as markup (an unmatched closing tag crashes it), an emoji code,
#: and backslashes.
HOSTILE = "[/bold]Lamp [red]hot[/red] :smile: C:\\new\\[b]"


def test_a_table_shows_hostile_cells_and_title_whole(capsys):
    long = "x" * 300
    render.table(
        f"title {HOSTILE}",
        ("name", "n"),
        [(HOSTILE, "1"), (render.bold(long), "22")],
        right=("n",),
    )
    text = capsys.readouterr().out
    assert text.count(HOSTILE) == 2 and long in text and "…" not in text


def test_say_keeps_markup_as_text_and_can_write_to_stderr(capsys):
    render.say(HOSTILE, (" and more", "bold"))
    render.say(f"progress {HOSTILE}", stderr=True)
    captured = capsys.readouterr()
    assert captured.out == f"{HOSTILE} and more\n"
    assert captured.err == f"progress {HOSTILE}\n"


def test_error_is_one_line_with_control_characters_escaped(capsys):
    render.error(f"bad {HOSTILE}\nsecond\tline")
    assert capsys.readouterr().err == f"error: bad {HOSTILE}\\nsecond\\tline\n"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_json_is_strict_with_null_for_non_finite_numbers(capsys, bad):
    render.emit_json({"items": [{"score": bad, "p": 0.5}], "pair": (bad, 1)})

    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    doc = json.loads(capsys.readouterr().out, parse_constant=refuse)
    assert doc == {"items": [{"score": None, "p": 0.5}], "pair": [None, 1]}


def test_a_profile_prints_every_part(capsys):
    render.profile(
        {
            "user_id": HOSTILE,
            "n_events": 1234,
            "as_of": "2024-01-01T00:00:00+00:00",
            "interests": [{"label": HOSTILE, "weight": 0.25, "trend": "rising"}],
            "broad": [{"label": "broad one", "weight": 0.5}],
            "dislikes": [{"label": "disliked"}],
            "texts": [{"text": "great [b]", "sentiment": 0.5}],
            "sentiment": 0.5,
        }
    )
    text = capsys.readouterr().out
    assert f"interests of user {HOSTILE} (1,234 events" in text
    assert "25.0%" in text and "↑ rising" in text
    assert "broad: broad one 50%" in text and "dislikes: disliked" in text
    assert "own words (1, mean sentiment 0.5): great [b] (+0.50)" in text
