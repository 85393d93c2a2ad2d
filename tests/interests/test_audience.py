"""Resolving queries to interests: the real taxonomy of ml-latest-small and the bundled model."""

from __future__ import annotations

import numpy as np
import pytest

from interestlens.interests.audience import TextMatcher, nonsense_probes, resolve_interests

REAL = ("space opera", "animation", "gangsters and the mafia", "romantic comedy")
NONSENSE = ("xyzzy qwerty", "qwertyuiop", "asdf jkl", "lorem ipsum dolor", "zzzz")


@pytest.fixture(scope="module")
def matcher(ml_engine) -> TextMatcher:
    return ml_engine.text_matcher()


@pytest.mark.parametrize("query", ["", "   ", "\t\n"])
def test_an_empty_query_is_an_error(ml_engine, query):
    with pytest.raises(ValueError, match="the query is empty"):
        ml_engine.resolve(query)
    with pytest.raises(ValueError, match="the query is empty"):
        ml_engine.audience(query)
    # even without an encoder: nothing is matched against a blank
    with pytest.raises(ValueError, match="the query is empty"):
        resolve_interests(ml_engine.snapshot.taxonomy, query)


@pytest.mark.parametrize("query", NONSENSE)
def test_nonsense_names_no_interest(ml_engine, query):
    with pytest.raises(ValueError, match=f"no interest matches {query!r}"):
        ml_engine.audience(query)


def test_the_floors_are_measured_on_nonsense_and_real_queries_clear_them(ml_engine, matcher):
    tax = ml_engine.snapshot.taxonomy
    encode = ml_engine.encoder.encode
    # fresh nonsense, not the probes the floors were measured on, stays below both floors
    fresh = nonsense_probes(matcher.vocabulary_, n=100, random_state=12345)
    assert not set(fresh) & set(nonsense_probes(matcher.vocabulary_))
    term_stat, item_stat = matcher._statistics(tax, encode(fresh))
    assert (term_stat <= matcher.term_floor_).mean() >= 0.97
    assert (item_stat <= matcher.item_floor_).mean() >= 0.97
    assert all(not matcher.match(tax, encode([q]))[0] for q in NONSENSE)
    # the floors sit well under what real queries reach
    real_terms, _ = matcher._statistics(tax, encode(list(REAL)))
    assert (real_terms > matcher.term_floor_ + 0.05).all()
    assert 0.3 < matcher.term_floor_ < 0.8 and 0.3 < matcher.item_floor_ < 0.8


@pytest.mark.parametrize("query", REAL)
def test_real_queries_resolve(ml_engine, query):
    found = ml_engine.resolve(query)
    assert 1 <= len(found) <= 3
    assert len(ml_engine.audience(query)) > 0


def test_space_opera_finds_the_interest_of_star_wars(ml_engine):
    tax = ml_engine.snapshot.taxonomy
    found = {i.interest_id for i in ml_engine.resolve("space opera")}
    star_wars = ("260", "1196", "1210")  # Episodes IV, V and VI
    holders = [{i for i, _ in tax.item_interests(sw)} for sw in star_wars]
    assert all(found & h for h in holders)
    # through the "space opera" tag the Star Wars films carry
    assert ml_engine.audience("space opera").attrs["how"] in ("text-term", "text-both")


def test_a_term_outweighs_a_frequent_near_match(ml_engine):
    # "courtroom drama" is a tag on two films; "drama" is on thousands and close too
    tax = ml_engine.snapshot.taxonomy
    found = [i.interest_id for i in ml_engine.resolve("courtroom drama")]
    terms = ml_engine.snapshot.item_terms
    courtroom = [i for i, t in terms.items() if "courtroom drama" in t]
    assert courtroom
    held = {i for item in courtroom for i, _ in tax.item_interests(item)}
    assert set(found) & held


def test_without_item_terms_text_alone_matches_above_its_floor(ml_engine):
    tax = ml_engine.snapshot.taxonomy
    encode = ml_engine.encoder.encode
    plain = TextMatcher().fit(tax, encode)
    assert plain.vocabulary_ == [] and np.isinf(plain.term_floor_)
    ids, how = plain.match(tax, encode(["Pixar cartoons for kids"]))
    assert how == "text" and ids
    assert plain.match(tax, encode(["xyzzy qwerty"])) == ([], "")
