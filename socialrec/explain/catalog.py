"""The catalog a conversation is grounded in: item facts, and words matched to them.

`CatalogIndex` is built once per served dataset. It holds each item's title and tags (LastFM's
top tags, MovieLens' genres, a dataset's category), the tag vocabulary with the items of each
tag, the names of items for exact matching, popularity, newness and the social graph. Its
`match` turns one message into `Mention`s: titles found by exact name (a one-word title only
when written with a capital or right after "like"/"no", so that "new" or "air" in a sentence is
not taken for a band), tags found by exact name, through a small Chinese glossary, and, when an
encoder is given, by text embedding of the message's remaining words against the tag vocabulary
(cosine >= ``embed_threshold``). Everything a mention names exists in the catalog: the dialogue
never reasons about an item or a tag the data does not have.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from socialrec.ingest.schema import Dataset

# Chinese words for the genres and styles of the datasets (Chinese messages name them so; the
# tags themselves are English). Only entries whose English tag is in the vocabulary are used.
ZH_TAGS = {
    "摇滚": "rock", "流行": "pop", "爵士": "jazz", "电子": "electronic", "古典": "classical", "说唱": "hip-hop",
    "嘻哈": "hip-hop", "民谣": "folk", "金属": "metal", "朋克": "punk", "布鲁斯": "blues", "蓝调": "blues",
    "灵魂乐": "soul", "乡村": "country", "独立": "indie", "氛围": "ambient", "舞曲": "dance", "另类": "alternative",
    "喜剧": "comedy", "动作": "action", "恐怖": "horror", "爱情": "romance", "浪漫": "romance", "科幻": "sci-fi",
    "动画": "animation", "纪录片": "documentary", "惊悚": "thriller", "战争": "war", "犯罪": "crime",
    "儿童": "children's", "冒险": "adventure", "剧情": "drama", "悬疑": "mystery", "西部": "western",
    "音乐剧": "musical", "黑色电影": "film-noir", "奇幻": "fantasy",
}

_WORD = re.compile(r"[a-z0-9\u00c0-\u024f][a-z0-9\u00c0-\u024f'&+.-]*")
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_YEAR = re.compile(r"\s*\((?:\d{4}|[a-z ]+)\)\s*$")


def has_chinese(text: str) -> bool:
    """Whether ``text`` holds a Chinese (Han) character: what gets a Chinese reply. Narrower than
    `represent.encoders.has_cjk`, which also counts kana and hangul (a Japanese or Korean
    message is not answered in Chinese)."""
    return _HAN.search(text) is not None


def normalize(text: str) -> str:
    """Lower case, accents folded, hyphens and underscores as spaces, spaces collapsed."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = re.sub(r"[-_/]+", " ", text)
    return " ".join(_WORD.findall(text)).strip(" .'")


def words(text: str) -> list[str]:
    return [w.strip(".'") for w in normalize(text).split() if w.strip(".'")]


@dataclass(frozen=True)
class Mention:
    """Something a message names: ``kind`` "item" (``index``: item index) or "tag" (``tag``);
    ``start``/``end``: word positions in the message (-1 for embedding and glossary matches);
    ``how``: "name", "glossary" or "embedding"; ``score``: 1 for names, else the cosine."""

    kind: str
    text: str
    index: int = -1
    tag: str = ""
    start: int = -1
    end: int = -1
    how: str = "name"
    score: float = 1.0


# Words that never start a one-word title match on their own (English function words and the
# dialogue's own vocabulary).
_COMMON = set("""a an the and or but no not more less like some any something anything me my i you your we us
it is are be was what whats what's new newer newest latest recent popular top hits hit trending friends friend
please want need give show find recommend recommendations music movie movies film films song songs band bands
artist artists similar than yes yeah nope ok okay sure maybe also too very much many few fewer without
with for of to in on at by from this that these those other others again good great best bad love hate play
listen watch something else stuff kind sort one ones""".split())


class CatalogIndex:
    """Item facts and name/tag matching for one dataset (see the module docstring).

    max_tags: the vocabulary is the tags carried by the most items, at most this many.
    min_tag_items: a tag carried by fewer items is left out of the vocabulary.
    encoder: a text encoder (``socialrec.represent.encoders``) for embedding matches, or None
        for exact names only. embed_threshold: least cosine of an embedding match.
    """

    def __init__(self, dataset: Dataset, *, max_tags: int = 2000, min_tag_items: int = 2,
                 encoder: Any = None, embed_threshold: float = 0.6) -> None:
        self.dataset = dataset
        self.max_tags = max_tags
        self.min_tag_items = min_tag_items
        self.encoder = encoder
        self.embed_threshold = embed_threshold
        n = dataset.n_items
        self.titles = np.asarray(dataset.item_titles(np.arange(n)), dtype=object)
        self.item_ids = np.asarray([str(x) for x in dataset.items.to_external(np.arange(n))], dtype=object)
        self.item_tags = _item_tags(dataset)
        counts: dict[str, int] = {}
        for tags in self.item_tags:
            for t in set(tags):
                counts[t] = counts.get(t, 0) + 1
        vocab = sorted((t for t, c in counts.items() if c >= min_tag_items and t), key=lambda t: (-counts[t], t))
        self.tags = vocab[:max_tags]
        self.tag_index = {t: j for j, t in enumerate(self.tags)}
        rows, cols = [], []
        for i, tags in enumerate(self.item_tags):
            for t in dict.fromkeys(tags):
                j = self.tag_index.get(t)
                if j is not None:
                    rows.append(i)
                    cols.append(j)
        self.item_tag = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, len(self.tags)))
        self.tag_items = self.item_tag.tocsc()
        self.tag_count = np.asarray([counts[t] for t in self.tags], dtype=np.int64)
        # Spellings of a tag ("trip-hop", "trip hop", "triphop") name its most common variant.
        self._tag_names: dict[str, str] = {}
        for t in self.tags:
            if normalize(t):
                self._tag_names.setdefault(normalize(t), t)
        for t in self.tags:
            self._tag_names.setdefault(normalize(t).replace(" ", ""), t)
        self.glossary = {zh: en for zh, en in ZH_TAGS.items() if en in self.tag_index}
        x = dataset.user_item_matrix()
        self.user_items = x
        self.popularity = np.asarray(x.sum(axis=0)).ravel().astype(np.float64)
        self.newness = _newness(dataset)
        self.social = dataset.social_matrix(symmetric=None) if len(dataset.social) else None
        self._names: dict[str, list[int]] = {}
        for i, title in enumerate(self.titles):  # keyed by the words `match` and `titles_in` see
            for key in {" ".join(words(str(title))), " ".join(words(_YEAR.sub("", str(title))))}:
                if key and len(key) >= 2:
                    self._names.setdefault(key, []).append(i)
        for key, idx in self._names.items():  # the most popular item of a shared name first
            idx.sort(key=lambda i: -self.popularity[i])
        self._max_name_words = min(40, max((len(k.split()) for k in self._names), default=1))
        self._tag_vectors: np.ndarray | None = None

    # --- facts -------------------------------------------------------------------------------
    @property
    def n_items(self) -> int:
        return len(self.titles)

    def items_named(self, text: str) -> list[int]:
        """Items whose title (with or without its year) is exactly ``text``, in its words."""
        return list(self._names.get(" ".join(words(text)), []))

    def index_of(self, item_id: str) -> int | None:
        return int(self.dataset.items.to_index(item_id)) if item_id in self.dataset.items else None

    def user_index(self, user_id: str | None) -> int | None:
        if user_id is None or user_id not in self.dataset.users:
            return None
        u = int(self.dataset.users.to_index(user_id))
        return u if u < self.user_items.shape[0] else None

    def history(self, user_id: str | None) -> np.ndarray:
        """Item indices of the user's interactions in the dataset (empty for a stranger)."""
        u = self.user_index(user_id)
        return np.zeros(0, np.int64) if u is None else self.user_items.indices[
            self.user_items.indptr[u]:self.user_items.indptr[u + 1]].astype(np.int64)

    def friends(self, user_id: str | None) -> list[str]:
        u = self.user_index(user_id)
        if u is None or self.social is None or u >= self.social.shape[0]:
            return []
        row = self.social.indices[self.social.indptr[u]:self.social.indptr[u + 1]]
        return [str(v) for v in self.dataset.users.to_external(row)]

    def friends_items(self, user_id: str | None) -> np.ndarray:
        """How many of the user's friends interacted with each item (zeros without friends)."""
        u = self.user_index(user_id)
        out = np.zeros(self.n_items)
        if u is None or self.social is None or u >= self.social.shape[0]:
            return out
        row = self.social.indices[self.social.indptr[u]:self.social.indptr[u + 1]]
        row = row[row < self.user_items.shape[0]]
        if len(row):
            out += np.asarray(self.user_items[row].sum(axis=0)).ravel()
        return out

    def tags_of(self, item: int, limit: int | None = None) -> list[str]:
        tags = [t for t in dict.fromkeys(self.item_tags[item]) if t in self.tag_index]
        return tags if limit is None else tags[:limit]

    def items_with_tag(self, tag: str) -> np.ndarray:
        j = self.tag_index[tag]
        return self.tag_items.indices[self.tag_items.indptr[j]:self.tag_items.indptr[j + 1]].astype(np.int64)

    # --- matching ----------------------------------------------------------------------------
    def match(self, message: str) -> list[Mention]:
        """Titles and tags a message names (see the module docstring), non-overlapping, longest
        first, in message order; then glossary and embedding matches of the words left."""
        raw = [w for w in re.findall(r"[\w'&+.-]+", unicodedata.normalize("NFKC", message))]
        toks = words(message)
        caps = _capitalised(raw, len(toks))
        taken = [False] * len(toks)
        found: list[Mention] = []
        for length in range(min(self._max_name_words, len(toks)), 0, -1):
            for s in range(len(toks) - length + 1):
                if any(taken[s:s + length]):
                    continue
                key = " ".join(toks[s:s + length])
                tag = self._tag_names.get(key)
                items = self._names.get(key)
                if tag is not None and (length > 1 or key not in _COMMON):
                    found.append(Mention("tag", tag, tag=tag, start=s, end=s + length))
                elif items and self._title_ok(toks, s, length, caps):
                    found.append(Mention("item", str(self.titles[items[0]]), index=items[0], start=s, end=s + length))
                else:
                    continue
                taken[s:s + length] = [True] * length
        found.sort(key=lambda m: m.start)
        if self.glossary and has_chinese(message):
            seen = {m.tag for m in found}
            for zh, en in sorted(self.glossary.items(), key=lambda kv: -len(kv[0])):
                if zh in message and en not in seen:
                    found.append(Mention("tag", zh, tag=en, how="glossary"))
                    seen.add(en)
        if self.encoder is not None:
            rest = [t for t, used in zip(toks, taken) if not used and t not in _COMMON]
            found += self._embedded(rest, {m.tag for m in found if m.kind == "tag"})
        return found

    def _title_ok(self, toks: list[str], s: int, length: int, caps: list[bool]) -> bool:
        if length > 1:
            return True
        word = toks[s]
        if word in _COMMON or len(word) < 3:
            return False
        cue = s > 0 and toks[s - 1] in ("like", "than", "as", "no", "not", "by", "to")
        return cue or caps[s]

    def tag_vectors(self) -> np.ndarray:
        if self._tag_vectors is None:
            from socialrec.represent.encoders import l2_normalize

            self._tag_vectors = l2_normalize(np.asarray(self.encoder.encode(self.tags), dtype=np.float32))
        return self._tag_vectors

    def _embedded(self, rest: list[str], seen: set[str]) -> list[Mention]:
        if not rest or not self.tags:
            return []
        from socialrec.represent.encoders import l2_normalize

        phrases = list(dict.fromkeys(rest + [" ".join(rest[i:i + 2]) for i in range(len(rest) - 1)]))
        q = l2_normalize(np.asarray(self.encoder.encode(phrases), dtype=np.float32))
        sims = q @ self.tag_vectors().T
        out = []
        for p, row in zip(phrases, sims):
            j = int(np.argmax(row))
            if row[j] >= self.embed_threshold and self.tags[j] not in seen:
                seen.add(self.tags[j])
                out.append(Mention("tag", p, tag=self.tags[j], how="embedding", score=float(row[j])))
        return out


def _capitalised(raw: list[str], n: int) -> list[bool]:
    """Per normalised word, whether the message wrote it with a capital (best effort: the raw
    words align with the normalised ones when the message has no hyphens or accents)."""
    flags: list[bool] = []
    for w in raw:
        parts = [p for p in re.split(r"[-_/]+", w) if p]
        flags.extend(p[:1].isupper() for p in parts)
    return (flags + [False] * n)[:n]


def _tag(value: object) -> str:
    return " ".join(str(value).lower().split())


def _item_tags(ds: Dataset) -> list[tuple[str, ...]]:
    """Each item's tags, most telling first: the item table's ``tags`` or ``genres`` tuples and
    its ``category``, else the tag assignments (most frequent first), else tag/genre texts."""
    n = ds.n_items
    out: list[list[str]] = [[] for _ in range(n)]
    table = ds.item_table
    for col in ("tags", "genres"):
        if col in table.columns:
            for i, value in enumerate(table[col].tolist()[:n]):
                if isinstance(value, (tuple, list)):
                    out[i].extend(_tag(str(v)) for v in value)
                elif isinstance(value, str) and value:
                    out[i].extend(_tag(v) for v in re.split(r"[|,;]", value))
    if "category" in table.columns:
        for i, value in enumerate(table["category"].tolist()[:n]):
            if isinstance(value, str) and value:
                out[i].append(_tag(value))
    if not any(out) and len(ds.tag_assignments):
        ta = ds.tag_assignments
        counts = ta.groupby(["item", "tag"]).size().reset_index(name="n").sort_values(["item", "n"], ascending=[True, False])
        for i, t in zip(counts["item"].to_numpy(), counts["tag"].astype(str)):
            out[int(i)].append(_tag(t))
    if not any(out) and len(ds.texts):
        tx = ds.texts[(ds.texts["owner"] == "item") & ds.texts["field"].isin(["tag", "genre", "category"])]
        for i, t in zip(tx["index"].to_numpy(), tx["text"].astype(str)):
            out[int(i)].extend(_tag(v) for v in re.split(r"[|,;]", t))
    return [tuple(t for t in dict.fromkeys(tags) if t) for tags in out]


def _newness(ds: Dataset) -> np.ndarray:
    """Per item, in [0, 1], how new it is: by its release date when the item table has one, else
    by its first interaction's timestamp, else by catalog order (later ids are newer)."""
    n = ds.n_items
    table = ds.item_table
    values = np.full(n, np.nan)
    if "release_date" in table.columns:
        import pandas as pd

        dates = pd.to_datetime(table["release_date"].iloc[:n], errors="coerce", format="mixed")
        values[:len(dates)] = dates.astype("int64").where(dates.notna(), np.nan).to_numpy(dtype=np.float64)
    if np.isnan(values).all():
        inter = ds.interactions
        ts = inter["timestamp"].to_numpy(np.float64)
        if np.isfinite(ts).any():
            first = np.full(n, np.inf)
            np.minimum.at(first, inter["item"].to_numpy(), np.where(np.isfinite(ts), ts, np.inf))
            values = np.where(np.isfinite(first), first, np.nan)
    if np.isnan(values).all():
        values = np.arange(n, dtype=np.float64)
    order = np.argsort(np.argsort(np.where(np.isnan(values), -np.inf, values), kind="stable"), kind="stable")
    return order / max(n - 1, 1)


def titles_in(text: str, catalog: CatalogIndex, *, min_chars: int = 4) -> list[int]:
    """Catalog items whose full title (at least ``min_chars`` characters, two words or more, or
    one capitalised word not a common one) appears in ``text`` as whole words and as written
    (with or without its year, in any case), longest first and not inside a longer title found
    ("Dead Man Walking" is not also "Dead Man"): what a grounding check looks for besides
    capitalised names."""
    toks = words(text)
    raw = re.findall(r"[\w'&+.-]+", unicodedata.normalize("NFKC", text))
    caps = _capitalised(raw, len(toks))
    hits: list[int] = []
    folded = unicodedata.normalize("NFKC", text).casefold()
    taken = [False] * len(toks)
    for length in range(min(catalog._max_name_words, len(toks)), 0, -1):  # longest first, no overlaps
        for s in range(len(toks) - length + 1):
            if any(taken[s:s + length]):
                continue
            key = " ".join(toks[s:s + length])
            items = catalog._names.get(key)
            if not items or len(key) < min_chars:
                continue
            if length == 1 and (key in _COMMON or not caps[s]):
                continue
            written = [i for i in items if str(catalog.titles[i]).casefold() in folded
                       or _YEAR.sub("", str(catalog.titles[i]).casefold()) in folded]
            if not written:
                continue  # the words only, across punctuation ("chillout, ambient" is no "Chillout & Ambient")
            hits.append(written[0])
            taken[s:s + length] = [True] * length
    return list(dict.fromkeys(hits))
