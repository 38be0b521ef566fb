"""Generated content about one item: a short blurb or a shareable post, from the item's facts.

The facts are the catalog's: the title, the item's tags or genres (most telling first), how many
users interacted with it, and up to two things people wrote about it (the dataset's reviews or
posts, cut short). A generator (`socialrec.explain.llm`) writes the text from them; it must pass
the same grounding check as a chat reply (`reply_problems`: it may name the item and nothing
else of the catalog, and no capitalised name outside the facts), or the template text is used.
Texts are cached per (item, kind, generator version, model version): a new served version or
another generator writes anew.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from socialrec.explain.catalog import CatalogIndex
from socialrec.explain.dialogue import reply_problems
from socialrec.represent.profiles import REVIEW_FIELDS

KINDS = ("blurb", "post")


@dataclass(frozen=True)
class ItemText:
    item_id: str
    kind: str
    text: str
    generated: bool
    problems: tuple[str, ...] = ()
    facts: tuple[tuple[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "kind": self.kind, "text": self.text, "generated": self.generated}


class ItemWriter:
    """Blurbs and posts for the items of one catalog (module docstring).

    generator: a `socialrec.explain.llm` generator, or None (templates). model_version: part of
        the cache key (the served version the facts come from). cache_size: texts kept.
    clean: applied to what people said about the item before it is quoted or sent to a generator
        (the service passes its PII scrubber: reviews and comments are people's words).
    """

    def __init__(self, catalog: CatalogIndex, generator: Any = None, *, model_version: str = "",
                 cache_size: int = 10_000, clean: Callable[[str], str | None] | None = None) -> None:
        self.catalog = catalog
        self.generator = generator
        self.clean = clean
        self.model_version = model_version
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, str, str, str], ItemText] = OrderedDict()
        self._lock = threading.Lock()
        self._said = _said_about(catalog)

    def facts(self, item: int) -> dict[str, Any]:
        cat = self.catalog
        said = self._said.get(item, [])[:2]
        if self.clean is not None:
            said = [s for s in (self.clean(s) for s in said) if s]
        return {"title": str(cat.titles[item]), "tags": cat.tags_of(item, 5), "users": int(cat.popularity[item]),
                "said": said}

    def write(self, item_id: str, kind: str = "blurb") -> ItemText:
        """The cached or newly written text; raises KeyError for an item outside the catalog."""
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
        item = self.catalog.index_of(item_id)
        if item is None:
            raise KeyError(item_id)
        version = getattr(self.generator, "version", "template")
        key = (item_id, kind, version, self.model_version)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        facts = self.facts(item)
        template = _template(facts, kind)
        text, generated, problems = template, False, []
        if self.generator is not None:
            try:
                out = self.generator.generate(_prompt(facts, kind)).strip()
                problems = reply_problems(out, self.catalog, {item}, facts["tags"], strict=True)
                if facts["title"].lower() not in out.lower():
                    problems.append(f"leaves out the title {facts['title']!r}")
                if not problems:
                    text, generated = out, True
            except Exception as exc:  # a backend down: the template
                problems = [f"generator failed: {type(exc).__name__}"]
        result = ItemText(item_id, kind, text, generated, tuple(problems), tuple(facts.items()))
        with self._lock:
            self._cache[key] = result
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return result


def _template(facts: dict[str, Any], kind: str) -> str:
    title, tags = facts["title"], facts["tags"]
    tag_text = ", ".join(tags[:3])
    if kind == "post":
        hashtags = " ".join("#" + t.replace(" ", "").replace("'", "") for t in tags[:3])
        return f"Recommending {title}{' (' + tag_text + ')' if tags else ''}. {hashtags}".strip()
    users = facts["users"]
    said = f' Someone said: "{facts["said"][0]}"' if facts["said"] else ""
    return (f"{title}{': ' + tag_text if tags else ''}. "
            f"{users} {'person' if users == 1 else 'people'} here enjoyed it.{said}")


def _prompt(facts: dict[str, Any], kind: str) -> list[dict[str, str]]:
    what = ("a two-sentence description" if kind == "blurb" else "a short, upbeat social media post")
    said = "; ".join(facts["said"]) or "nothing"
    return [{"role": "system", "content": f"Write {what} of the item from the facts given. Use only these facts. "
             "Write the title exactly. Do not name any other person, band, film or place."},
            {"role": "user", "content": f"Title: {facts['title']}\nTags: {', '.join(facts['tags']) or 'none'}\n"
             f"People who enjoyed it: {facts['users']}\nWhat people said: {said}"}]


def _said_about(catalog: CatalogIndex, limit: int = 120) -> dict[int, list[str]]:
    texts = catalog.dataset.texts
    if not len(texts):
        return {}
    rows = texts[(texts["owner"] == "item") & texts["field"].isin(REVIEW_FIELDS)]
    out: dict[int, list[str]] = {}
    for i, t in zip(rows["index"].to_numpy(), rows["text"].astype(str)):
        if len(out.get(int(i), [])) < 2 and t.strip():
            out.setdefault(int(i), []).append(t.strip()[:limit])
    return out
