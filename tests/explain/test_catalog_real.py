"""Requests understood through the real catalogs: LastFM's artists and tags, MovieLens' titles and
genres (exact names; the embedding match has its own test with MiniLM below)."""

from __future__ import annotations

import pytest

from socialrec.explain.catalog import CatalogIndex, titles_in
from socialrec.explain.dialogue import Dialogue, reply_problems
from socialrec.ingest.schema import Dataset

pytestmark = pytest.mark.realdata


def understood(catalog: CatalogIndex, message: str) -> dict:
    d = Dialogue(catalog, lambda _u, _n: [])
    state = d.new_session()
    d.understand(state, message)
    return state.constraints.to_dict(catalog)


def test_lastfm_artists_tags_and_negations(real_lastfm: Dataset) -> None:
    cat = CatalogIndex(real_lastfm)
    c = understood(cat, "something like Massive Attack but no pop, less metal, what's new with my friends?")
    assert [str(cat.titles[cat.index_of(i)]) for i in c["like_items"]] == ["Massive Attack"]
    assert c["avoid_tags"] == ["pop"] and c["less_tags"] == ["metal"] and c["flags"] == ["friends", "new"]
    c = understood(cat, "I want trip-hop and chillout")
    assert c["tags"] == ["chillout", "trip-hop"] and not c["like_items"]
    # Common words are not taken for one-word band names ("new", "air" written in lower case).
    c = understood(cat, "anything new with air in it")
    assert c["like_items"] == [] and c["flags"] == ["new"]
    assert understood(cat, "like Air")["like_items"] == [str(cat.item_ids[cat._names["air"][0]])]
    # The grounding scan reads titles as written: two tags listed are no compilation's name, and a
    # long title is one name, not the artists inside it.
    ambient = cat.items_named("Chillout & Ambient")
    assert ambient and ambient[0] not in titles_in("For chillout, ambient: Air.", cat)
    long = next(i for i, t in enumerate(cat.titles) if str(t).startswith("Demi Lovato, Meaghan Martin, Jordan"))
    assert titles_in(f"Try {cat.titles[long]}.", cat) == [long]


def test_movielens_titles_without_year_genres_and_chinese(real_movielens: Dataset) -> None:
    cat = CatalogIndex(real_movielens)
    c = understood(cat, "a comedy like Toy Story, no horror")
    assert c["tags"] == ["comedy"] and c["avoid_tags"] == ["horror"] and c["like_items"] == ["1"]
    c = understood(cat, "我想看科幻电影，不要恐怖片")
    assert c["tags"] == ["sci-fi"] and c["avoid_tags"] == ["horror"]
    # The grounding scan finds whole titles, the longest first.
    walking = cat.index_of("9")
    assert str(cat.titles[walking]).startswith("Dead Man Walking")
    assert titles_in("You could watch Dead Man Walking (1995) tonight.", cat) == [walking]
    assert reply_problems("Watch Dead Man Walking (1995).", cat, {walking}) == []
    assert reply_problems("Watch Dead Man Walking (1995) or Fargo (1996).", cat, {walking})


@pytest.mark.slow
def test_words_match_tags_by_embedding(real_lastfm: Dataset) -> None:
    pytest.importorskip("sentence_transformers")
    from socialrec.represent.encoders import get_encoder

    cat = CatalogIndex(real_lastfm, encoder=get_encoder("minilm"), max_tags=500)
    found = cat.match("something calm")
    assert found and all(m.how == "embedding" and m.score >= 0.6 for m in found)
    assert {m.tag for m in found} <= {"chillout", "chill", "relax", "relaxing", "chill out", "calm"}
