"""The conversation on a tiny catalog whose right answers are known (tests/explain/tiny_catalog.py)."""

from __future__ import annotations

import pytest

from socialrec.explain.catalog import CatalogIndex
from socialrec.explain.dialogue import reply_problems
from socialrec.explain.writer import ItemWriter
from tests.explain.tiny_catalog import genres, make_dialogue, tiny_catalog


@pytest.fixture(scope="module")
def catalog() -> CatalogIndex:
    return tiny_catalog()


def test_a_named_tag_keeps_only_its_items(catalog: CatalogIndex) -> None:
    d = make_dialogue(catalog)
    turn = d.respond(d.new_session(), "u5", "I want some Jazz please", k=3)
    assert genres(turn) == {"jazz"}
    assert turn.understood["tags"] == ["jazz"]
    assert all("jazz" in it.reason for it in turn.items)
    assert reply_problems(turn.reply, catalog, {catalog.index_of(it.item_id) for it in turn.items}) == []


def test_items_the_user_hid_are_not_proposed_even_by_a_tag(catalog: CatalogIndex) -> None:
    from socialrec.explain.dialogue import Dialogue

    plain = make_dialogue(catalog)
    shown = [it.item_id for it in plain.respond(plain.new_session(), "u0", "jazz", k=3).items]
    assert shown[0] == "ijazz0"  # the most popular jazz item, which u0 then hides
    # The served model's own list already leaves hidden items out; the tag's items must too.
    hiding = Dialogue(catalog, lambda u, n: [c for c in plain.candidates(u, n + 1) if c[0] != "ijazz0"][:n],
                      plain.similar, hidden=lambda user: ["ijazz0"] if user == "u0" else [])
    items = [it.item_id for it in hiding.respond(hiding.new_session(), "u0", "jazz", k=3).items]
    assert "ijazz0" not in items and items[:2] == ["ijazz1", "ijazz2"]  # ijazz3 is in u0's history


def test_negation_excludes_and_a_later_wish_replaces_it(catalog: CatalogIndex) -> None:
    d = make_dialogue(catalog, exclude_shown=False)
    s = d.new_session()
    turn = d.respond(s, None, "no rock, nothing loud", k=8)
    assert "rock" not in genres(turn) and len(turn.items) == 8
    assert turn.understood["avoid_tags"] == ["rock"]
    assert turn.reply.startswith("Without rock: ")
    turn = d.respond(s, None, "actually I want rock", k=3)
    assert genres(turn) == {"rock"} and turn.understood["avoid_tags"] == []


def test_like_a_title_seeds_similar_items_and_never_returns_the_seed(catalog: CatalogIndex) -> None:
    d = make_dialogue(catalog, w_base=0.1)
    turn = d.respond(d.new_session(), None, "something like quiet harbor", k=3)
    assert genres(turn) == {"ambient"}
    assert "iambient1" not in {it.item_id for it in turn.items}
    assert turn.understood["like_items"] == ["iambient1"]
    assert all("similar to Quiet Harbor" in it.reason for it in turn.items)


def test_the_users_history_is_not_recommended_and_friends_flag_uses_friends(catalog: CatalogIndex) -> None:
    d = make_dialogue(catalog)
    turn = d.respond(d.new_session(), "u0", "jazz my friends like", k=4)
    assert "ijazz3" not in {it.item_id for it in turn.items}  # u0's own history
    assert turn.understood["flags"] == ["friends"]
    assert any("friends like it" in it.reason for it in turn.items)


def test_chinese_gets_chinese_and_glossary_tags(catalog: CatalogIndex) -> None:
    d = make_dialogue(catalog)
    turn = d.respond(d.new_session(), "u5", "我想听爵士，不要摇滚", k=3)
    assert turn.language == "zh" and genres(turn) == {"jazz"}
    assert turn.understood["avoid_tags"] == ["rock"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in turn.reply)


def test_a_mixed_list_asks_the_most_informative_tag_and_yes_applies_it(catalog: CatalogIndex) -> None:
    d = make_dialogue(catalog, ask_above=5, ask_depth=12, exclude_shown=False)
    s = d.new_session()
    turn = d.respond(s, None, "surprise me", k=4)
    # Two thirds of the catalogue is instrumental: the tags closest to a half split are asked.
    assert turn.question is not None and s.pending is not None
    asked = s.pending
    turn = d.respond(s, None, "yes", k=4)
    assert asked in turn.understood["tags"]
    assert all(asked in catalog.tags_of(catalog.index_of(it.item_id)) for it in turn.items)


def test_shown_items_are_not_shown_again(catalog: CatalogIndex) -> None:
    d = make_dialogue(catalog)
    s = d.new_session()
    first = {it.item_id for it in d.respond(s, None, "jazz", k=2).items}
    second = {it.item_id for it in d.respond(s, None, "more jazz", k=2).items}
    assert len(first) == len(second) == 2 and not first & second


def test_unknown_words_and_long_messages(catalog: CatalogIndex) -> None:
    d = make_dialogue(catalog, max_message_chars=50)
    turn = d.respond(d.new_session(), None, "   ", k=3)
    assert len(turn.items) == 3 and "didn't catch" in turn.reply
    with pytest.raises(ValueError, match="over the limit"):
        d.respond(d.new_session(), None, "x" * 51, k=3)


class Fixed:
    version = "fixed"

    def __init__(self, text: str) -> None:
        self.text, self.calls = text, 0

    def generate(self, messages: object) -> str:
        self.calls += 1
        self.seen = messages
        return self.text


def test_a_generation_naming_an_item_it_did_not_return_falls_back_to_the_template(catalog: CatalogIndex) -> None:
    d = make_dialogue(catalog, generator=Fixed("You will love Iron Guitars and Thunder Road Band!"))
    turn = d.respond(d.new_session(), None, "jazz", k=3)
    assert not turn.generated and genres(turn) == {"jazz"}
    assert any("Iron Guitars" in p for p in turn.problems)
    assert "Iron Guitars" not in turn.reply


def test_a_grounded_generation_is_used(catalog: CatalogIndex) -> None:
    d = make_dialogue(catalog, generator=Fixed("Enjoy Blue Note Trio, a jazz classic!"))
    turn = d.respond(d.new_session(), None, "jazz", k=4)
    assert turn.generated and turn.reply == "Enjoy Blue Note Trio, a jazz classic!"
    # An invented capitalised name is refused even when it is no catalog title.
    d = make_dialogue(catalog, generator=Fixed("Enjoy Blue Note Trio, loved by Zorblax!"))
    assert not d.respond(d.new_session(), None, "jazz", k=4).generated
    # A Chinese message answered in English is refused.
    d = make_dialogue(catalog, generator=Fixed("Enjoy Blue Note Trio!"))
    turn = d.respond(d.new_session(), None, "爵士", k=4)
    assert not turn.generated and turn.language == "zh"


def test_item_writer_templates_generations_and_cache(catalog: CatalogIndex) -> None:
    w = ItemWriter(catalog)
    text = w.write("ijazz0", "blurb")
    assert text.text.startswith("Blue Note Trio: jazz, instrumental") and not text.generated
    assert "#jazz" in w.write("ijazz0", "post").text
    gen = Fixed("Blue Note Trio is smooth, late-night jazz.")
    w = ItemWriter(catalog, gen, model_version="v1")
    assert w.write("ijazz0").generated and w.write("ijazz0").text == gen.text and gen.calls == 1
    bad = ItemWriter(catalog, Fixed("Blue Note Trio sounds like Iron Guitars."))
    assert not bad.write("ijazz0").generated
    with pytest.raises(KeyError):
        w.write("nope")


def test_the_generator_sees_the_shown_text_not_the_raw_message(catalog: CatalogIndex) -> None:
    gen = Fixed("Enjoy Slow Clouds!")
    d = make_dialogue(catalog, generator=gen)
    turn = d.respond(d.new_session(), None, "like Quiet Harbor, mail me at ann@example.org", k=3,
                     shown_text="like Quiet Harbor, mail me at <EMAIL>")
    assert turn.understood["like_items"] == ["iambient1"]
    prompt = str(gen.seen)
    assert "<EMAIL>" in prompt and "ann@example.org" not in prompt


def test_common_words_at_the_start_of_a_sentence_are_not_taken_for_names(catalog: CatalogIndex) -> None:
    assert reply_problems("Thank you for asking. Thanks, enjoy the music!", catalog, set(), strict=True) == []
    assert reply_problems("Thank you: try Bogus Band.", catalog, set(), strict=True) != []  # a made-up name fails


def test_item_writer_quotes_people_through_clean() -> None:
    import pandas as pd

    from socialrec.ingest.schema import build_dataset
    from socialrec.privacy.scrub import scrub

    ds = build_dataset("said", pd.DataFrame({"user": ["u1"], "item": ["i1"]}),
                       items=pd.DataFrame({"id": ["i1"], "title": ["Blue Note Trio"]}),
                       texts=pd.DataFrame({"owner": ["item"], "id": ["i1"], "field": ["review"],
                                           "text": ["Great record, write me at jane.doe@example.com"]}))
    sent: list[str] = []

    class Spy:
        version = "spy"

        def generate(self, messages: list[dict[str, str]]) -> str:
            sent.append(messages[-1]["content"])
            return "Blue Note Trio, smooth."

    raw = ItemWriter(CatalogIndex(ds)).write("i1").text
    assert "jane.doe@example.com" in raw  # without clean the quote is as written
    writer = ItemWriter(CatalogIndex(ds), Spy(), clean=lambda t: scrub(t).text)
    assert "jane.doe@example.com" not in writer.write("i1").text
    assert "<EMAIL>" in writer.facts(0)["said"][0] and "jane.doe" not in sent[0]
