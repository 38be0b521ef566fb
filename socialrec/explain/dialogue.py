"""Conversational recommendation grounded in the catalog: `Dialogue`.

Each turn of a session is parsed through the catalog (`CatalogIndex.match`), not by a language
model, into constraints that accumulate over the session (`Constraints`):

- tags and genres named in the message ("trip hop", "comedy", "爵士") are wanted; after "no",
  "not", "without", "never" (不要, 别, 不想) they are excluded, after "less"/"fewer" (少) they
  are penalised; a wanted tag said again later replaces its earlier exclusion, and the reverse;
- items named ("like Massive Attack", "something like Toy Story") are seeds: items similar to
  them (the served model's ``similar``) rise; a negated item is never shown;
- "new", "popular", "friends" (新, 热门, 朋友) add a signal: newness, popularity, how many of the
  user's friends interacted with the item;
- "yes"/"no" (是, 不) answers the clarifying question of the previous turn.

Candidates come from the served recommender (``candidates(user_id, n)``: the hybrid with the
user's history; the popular list for a stranger, whose chat then works from the words alone),
joined with the items of the wanted tags (most popular first), the items similar to the seeds
and, with a flag, the newest, most popular or friends' items. Each is scored

    w_base * recommender rank score + w_tag * share of wanted tags it carries
    + w_seed * similarity rank to the closest seed + w_flag * flag signal - w_less * penalised tags

and, when at least k candidates carry a wanted tag, only those are kept. Items excluded by the
user, the seeds, the user's own history and (``exclude_shown``) items already shown earlier in
the session are dropped: a list the user answered with another request was not what they
wanted. When many candidates remain and the top ones are mixed, the turn asks about the most
informative tag (the one closest to half of the top ``ask_depth`` items).

The reply is a template (English, or Chinese when the message is Chinese), or, with a generator
(`socialrec.explain.llm`), a generated text that must pass `reply_problems`: every item it names
must be a returned item, in the user's history, or named by the user in the session; every
capitalised name must be one of those or a friend; a Chinese message needs a Chinese reply.
A generation that fails is replaced by the template.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from socialrec.errors import ConfigError
from socialrec.explain.catalog import CatalogIndex, Mention, has_chinese, normalize, titles_in, words

Candidates = Callable[[str | None, int], Sequence[tuple[str, float]]]
Similar = Callable[[str, int], Sequence[tuple[str, float]]]
Hidden = Callable[[str], Sequence[str]]  # external ids of the items a user hid

_HARD_NEG = {"no", "not", "without", "never", "hate", "dislike", "avoid", "dont", "don't", "nothing", "except", "skip"}
_SOFT_NEG = {"less", "fewer"}
_ZH_HARD_NEG = ("不要", "不想", "别", "不喜欢", "没有", "讨厌", "除了")
_ZH_SOFT_NEG = ("少点", "少一点", "少些", "少")
_YES = {"yes", "yeah", "yep", "sure", "ok", "okay", "please", "definitely", "y"}
_NO = {"no", "nope", "nah", "n"}
_FLAGS = {"new": {"new", "newer", "newest", "latest", "recent", "fresh"},
          "popular": {"popular", "hits", "hit", "trending", "famous", "mainstream"},
          "friends": {"friends", "friend", "friend's", "friends'"}}
_ZH_FLAGS = {"new": ("最新", "新"), "popular": ("热门", "火"), "friends": ("朋友", "好友")}


@dataclass(frozen=True)
class DialogueConfig:
    """How a turn is answered.

    pool: candidates asked of the recommender per turn.
    per_tag: items of each wanted tag added to the candidates (most popular first).
    per_seed: items similar to each seed added to the candidates.
    w_base, w_tag, w_seed, w_flag, w_less: weights of the score (module docstring).
    exclude_shown: items shown earlier in the session are not shown again.
    ask_above: ask a clarifying question only when more candidates than this remain.
    ask_depth: the top this many candidates are looked at to find the most informative tag.
    ask_min_share: ask about a tag only when it covers between this share and 1 - this share
        of them.
    max_message_chars: longer messages are refused (the HTTP schema enforces the same).
    """

    pool: int = 300
    per_tag: int = 300
    per_seed: int = 100
    w_base: float = 1.0
    w_tag: float = 1.0
    w_seed: float = 1.0
    w_flag: float = 0.5
    w_less: float = 0.5
    exclude_shown: bool = True
    ask_above: int = 30
    ask_depth: int = 50
    ask_min_share: float = 0.2
    max_message_chars: int = 2000

    def __post_init__(self) -> None:
        for name in ("pool", "per_tag", "per_seed", "ask_depth", "max_message_chars"):
            if getattr(self, name) < 1:
                raise ConfigError(f"DialogueConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.ask_min_share <= 0.5:
            raise ConfigError(f"DialogueConfig.ask_min_share must be in [0, 0.5], got {self.ask_min_share}")


@dataclass
class Constraints:
    """What the session has asked for so far (item indices and tag names of the catalog)."""

    tags: dict[str, float] = field(default_factory=dict)
    avoid_tags: set[str] = field(default_factory=set)
    less_tags: set[str] = field(default_factory=set)
    seeds: list[int] = field(default_factory=list)
    avoid_items: set[int] = field(default_factory=set)
    flags: set[str] = field(default_factory=set)

    def empty(self) -> bool:
        return not (self.tags or self.avoid_tags or self.less_tags or self.seeds or self.avoid_items or self.flags)

    def to_dict(self, catalog: CatalogIndex) -> dict[str, Any]:
        return {"tags": sorted(self.tags), "avoid_tags": sorted(self.avoid_tags), "less_tags": sorted(self.less_tags),
                "like_items": [str(catalog.item_ids[i]) for i in self.seeds],
                "avoid_items": sorted(str(catalog.item_ids[i]) for i in self.avoid_items), "flags": sorted(self.flags)}


@dataclass
class SessionState:
    """One conversation: its constraints, what was shown, the pending question."""

    constraints: Constraints = field(default_factory=Constraints)
    shown: list[int] = field(default_factory=list)
    named: set[int] = field(default_factory=set)
    asked: set[str] = field(default_factory=set)
    pending: str | None = None
    turns: int = 0


@dataclass(frozen=True)
class ChatItem:
    item_id: str
    title: str
    reason: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "title": self.title, "reason": self.reason}


@dataclass(frozen=True)
class ChatTurn:
    """A turn's answer. ``generated``: the reply came from the generator (else the template);
    ``problems``: why a generation was rejected; ``understood``: the session's constraints."""

    reply: str
    items: tuple[ChatItem, ...]
    question: str | None
    language: str
    generated: bool = False
    problems: tuple[str, ...] = ()
    understood: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


class Dialogue:
    """Answers chat turns over one catalog and one served recommender (module docstring).

    catalog: the `CatalogIndex` of the served dataset.
    candidates: ``(user_id or None, n) -> [(item_id, score)]``, best first: the recommender's
        list for the user (a stranger's: the popular list), excluding what they already have.
    similar: ``(item_id, n) -> [(item_id, score)]``, or None (seeds then add nothing).
    generator: a `socialrec.explain.llm` generator for the reply text, or None: templates.
    config: `DialogueConfig`.
    """

    def __init__(self, catalog: CatalogIndex, candidates: Candidates, similar: Similar | None = None, *,
                 generator: Any = None, config: DialogueConfig | None = None, hidden: Hidden | None = None) -> None:
        self.catalog = catalog
        self.candidates = candidates
        self.similar = similar
        self.hidden = hidden
        self.generator = generator
        self.config = config or DialogueConfig()

    def new_session(self) -> SessionState:
        return SessionState()

    # --- understanding -------------------------------------------------------------------
    def understand(self, state: SessionState, message: str) -> list[Mention]:
        """Fold the message into the session's constraints; returns the catalog mentions."""
        c = state.constraints
        mentions = self.catalog.match(message)
        clauses = _clause_cues(message)
        toks = words(message)
        for m in mentions:
            polarity = _polarity(m, clauses, message)
            if m.kind == "tag":
                c.tags.pop(m.tag, None)
                c.avoid_tags.discard(m.tag)
                c.less_tags.discard(m.tag)
                if polarity == "no":
                    c.avoid_tags.add(m.tag)
                elif polarity == "less":
                    c.less_tags.add(m.tag)
                else:
                    c.tags[m.tag] = 1.0
            else:
                state.named.add(m.index)
                if polarity in ("no", "less"):
                    c.avoid_items.add(m.index)
                    if m.index in c.seeds:
                        c.seeds.remove(m.index)
                elif m.index not in c.seeds:
                    c.avoid_items.discard(m.index)
                    c.seeds.append(m.index)
        first = toks[0] if toks else ""
        if state.pending is not None:
            tag = state.pending
            said = {m.tag for m in mentions if m.kind == "tag"}
            if tag not in said:
                zh = message.strip()
                if first in _YES or zh.startswith(("是", "好", "要", "对", "可以")):
                    c.tags[tag] = 1.0
                    c.avoid_tags.discard(tag)
                    c.less_tags.discard(tag)
                elif first in _NO or zh.startswith(("不", "别")):
                    c.less_tags.add(tag)
                    c.tags.pop(tag, None)
        negated = {i for i, t in enumerate(toks) if t in _HARD_NEG}
        for flag, cues in _FLAGS.items():
            hit = [i for i, t in enumerate(toks) if t in cues]
            if any(not any(j in negated for j in range(max(0, i - 2), i)) for i in hit):
                c.flags.add(flag)
            elif hit:
                c.flags.discard(flag)
        if has_chinese(message):
            for flag, cues in _ZH_FLAGS.items():
                if any(q in message for q in cues) and not (flag == "new" and "新" not in message.replace("最新", "新")):
                    c.flags.add(flag)
        return mentions

    # --- ranking -------------------------------------------------------------------------
    def rank(self, state: SessionState, user_id: str | None, k: int
             ) -> tuple[list[int], dict[int, dict[str, Any]], int, np.ndarray]:
        """Top-k item indices for the session, the evidence behind each, how many candidates
        passed the filters, and the top ``ask_depth`` of them."""
        cat, cfg, c = self.catalog, self.config, state.constraints
        n = cat.n_items
        base = np.zeros(n)
        pool: set[int] = set()
        listed = [(cat.index_of(i), s) for i, s in self.candidates(user_id, cfg.pool)]
        listed = [(i, s) for i, s in listed if i is not None]
        for r, (i, _s) in enumerate(listed):
            base[i] = max(base[i], 1.0 - r / cfg.pool)
            pool.add(i)
        tag_cols = [cat.tag_index[t] for t in c.tags if t in cat.tag_index]
        tagw = np.asarray([c.tags[cat.tags[j]] for j in tag_cols])
        log_pop = np.log1p(cat.popularity)
        for j in tag_cols:
            items = cat.items_with_tag(cat.tags[j])
            pool.update(items[np.argsort(-(log_pop[items] + base[items]), kind="stable")[:cfg.per_tag]].tolist())
        seed_sim = np.zeros(n)
        seed_of = np.full(n, -1)
        if self.similar is not None:
            for s in c.seeds:
                try:
                    sims = self.similar(str(cat.item_ids[s]), cfg.per_seed)
                except Exception:  # a seed the model cannot place (outside its training items)
                    continue
                for r, (iid, _score) in enumerate(sims):
                    i = cat.index_of(iid)
                    if i is None:
                        continue
                    v = 1.0 - r / cfg.per_seed
                    if v > seed_sim[i]:
                        seed_sim[i], seed_of[i] = v, s
                    pool.add(i)
        flag = np.zeros(n)
        if "popular" in c.flags:
            pop = log_pop / max(log_pop.max(), 1e-9)
            flag += pop
            pool.update(np.argsort(-pop, kind="stable")[:cfg.per_tag].tolist())
        if "new" in c.flags:
            flag += cat.newness
            pool.update(np.argsort(-(cat.newness + 0.1 * log_pop / max(log_pop.max(), 1e-9)), kind="stable")[:cfg.per_tag].tolist())
        friends = np.zeros(n)
        if "friends" in c.flags:
            friends = cat.friends_items(user_id)
            if friends.max() > 0:
                flag += friends / friends.max()
                pool.update(np.flatnonzero(friends)[np.argsort(-friends[friends > 0], kind="stable")[:cfg.per_tag]].tolist())
        drop = set(c.avoid_items) | set(c.seeds) | set(cat.history(user_id).tolist())
        if self.hidden is not None and user_id is not None:  # tags, seeds and flags propose items too
            drop |= {i for i in map(cat.index_of, self.hidden(user_id)) if i is not None}
        if cfg.exclude_shown:
            drop |= set(state.shown)
        cand = np.asarray(sorted(pool - drop), dtype=np.int64)
        if len(cand) == 0:
            return [], {}, 0, np.zeros(0, np.int64)
        it = cat.item_tag[cand]
        if c.avoid_tags:
            cols = [cat.tag_index[t] for t in c.avoid_tags if t in cat.tag_index]
            if cols:
                keep = np.asarray(it[:, cols].sum(axis=1)).ravel() == 0
                cand, it = cand[keep], it[keep]
        tag_share = np.zeros(len(cand))
        if tag_cols:
            tag_share = (it[:, tag_cols] @ tagw) / tagw.sum()
            tag_share = np.asarray(tag_share).ravel()
            if (tag_share > 0).sum() >= k:
                keep = tag_share > 0
                cand, it, tag_share = cand[keep], it[keep], tag_share[keep]
        less = np.zeros(len(cand))
        if c.less_tags:
            cols = [cat.tag_index[t] for t in c.less_tags if t in cat.tag_index]
            if cols:
                less = np.asarray(it[:, cols].sum(axis=1)).ravel() > 0
        score = (cfg.w_base * base[cand] + cfg.w_tag * tag_share + cfg.w_seed * seed_sim[cand]
                 + cfg.w_flag * flag[cand] - cfg.w_less * less + 1e-6 * log_pop[cand])
        order = np.argsort(-score, kind="stable")
        top = cand[order[:k]].tolist()
        evidence: dict[int, dict[str, Any]] = {}
        shares = dict(zip(cand.tolist(), tag_share.tolist()))
        for i in top:
            evidence[i] = {"tags": [t for t in cat.tags_of(i) if t in c.tags] if shares.get(i, 0) > 0 else [],
                           "seed": int(seed_of[i]) if seed_sim[i] > 0 else None, "base": float(base[i]),
                           "friends": int(friends[i]), "score": float(score[order[top.index(i)]])}
        return top, evidence, len(cand), cand[order[:cfg.ask_depth]]

    def question_tag(self, state: SessionState, remaining: int, top: np.ndarray) -> str | None:
        """The tag to ask about, or None: asked when more than ``ask_above`` candidates remain
        and some tag splits the top ``ask_depth`` between ``ask_min_share`` and its complement."""
        cfg, c, cat = self.config, state.constraints, self.catalog
        if remaining <= cfg.ask_above or len(top) < 2:
            return None
        share = np.asarray(cat.item_tag[top].mean(axis=0)).ravel()
        known = set(c.tags) | c.avoid_tags | c.less_tags | state.asked
        best, best_v = None, -1.0
        for j in np.argsort(-share * (1 - share), kind="stable")[:20]:
            t = cat.tags[int(j)]
            if t in known or not cfg.ask_min_share <= share[j] <= 1 - cfg.ask_min_share:
                continue
            v = share[j] * (1 - share[j])
            if v > best_v:
                best, best_v = t, v
        return best

    # --- a turn ----------------------------------------------------------------------------
    def respond(self, state: SessionState, user_id: str | None, message: str, k: int = 10, *,
                shown_text: str | None = None) -> ChatTurn:
        """Answer one message of the session ``state`` (updated in place). ``shown_text``: the
        message as the generator may see it (the service passes it scrubbed of personal data:
        the catalog's artists are people too, so the raw message is what is understood, and
        nothing of it is kept); default ``message``."""
        start = time.perf_counter()
        if len(message) > self.config.max_message_chars:
            raise ValueError(f"message of {len(message)} characters is over the limit of "
                             f"{self.config.max_message_chars}; send a shorter message")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        zh = has_chinese(message)
        lang = "zh" if zh else "en"
        mentions = self.understand(state, message)
        top, evidence, remaining, head = self.rank(state, user_id, k)
        state.turns += 1
        asked = self.question_tag(state, remaining, head)
        state.pending = asked
        if asked is not None:
            state.asked.add(asked)
        items = tuple(ChatItem(str(self.catalog.item_ids[i]), str(self.catalog.titles[i]),
                               self._reason(evidence[i], user_id, zh), evidence[i]["score"]) for i in top)
        question = None if asked is None else (f"要更多「{asked}」吗？" if zh else f"Would you like more {asked}?")
        template = self._template(state, items, mentions, user_id, zh)
        reply, generated, problems = template, False, ()
        if self.generator is not None and items:
            prompt = message if shown_text is None else shown_text
            reply, generated, problems = self._generate(state, prompt, items, user_id, zh, template)
        state.shown.extend(top)
        return ChatTurn(reply, items, question, lang, generated, tuple(problems),
                        state.constraints.to_dict(self.catalog), time.perf_counter() - start)

    def _reason(self, ev: dict[str, Any], user_id: str | None, zh: bool) -> str:
        cat = self.catalog
        parts = []
        if ev["tags"]:
            parts.append(("标签：" if zh else "tagged ") + ", ".join(ev["tags"][:3]))
        if ev["seed"] is not None:
            parts.append(("类似 " if zh else "similar to ") + str(cat.titles[ev["seed"]]))
        if ev["friends"]:
            parts.append(f"{ev['friends']} 位朋友喜欢" if zh else f"{ev['friends']} of your friends like it")
        if not parts:
            if ev["base"] > 0 and cat.user_index(user_id) is not None:
                parts.append("符合你的口味" if zh else "fits your taste")
            else:
                parts.append("热门" if zh else "popular")
        return "；".join(parts) if zh else "; ".join(parts)

    def _template(self, state: SessionState, items: Sequence[ChatItem], mentions: Sequence[Mention],
                  user_id: str | None, zh: bool) -> str:
        c = state.constraints
        titles = [it.title for it in items[:3]]
        if not items:
            return ("没有找到符合这些条件的内容，换个说法试试？" if zh else
                    "Nothing in the catalog fits all of that; try loosening a condition.")
        wanted = list(c.tags)[:3]
        like = [str(self.catalog.titles[i]) for i in c.seeds[-2:]]
        if zh:
            head = "为你找到" if (wanted or like or c.flags) else ("没完全听懂，先看看" if not mentions and c.empty() else "推荐")
            parts = []
            if wanted:
                parts.append("「" + "、".join(wanted) + "」")
            if like:
                parts.append("类似 " + "、".join(like))
            return f"{head}{'（' + '，'.join(parts) + '）' if parts else ''}：{'、'.join(titles)}。"
        if c.empty() and not mentions:
            who = "fits your taste" if self.catalog.user_index(user_id) is not None else "is popular"
            return f"I didn't catch a genre, tag or title I know, so here is what {who}: {_join(titles)}."
        parts = []
        if wanted:
            parts.append(", ".join(wanted))
        if like:
            parts.append("like " + " and ".join(like))
        if c.avoid_tags or c.less_tags:
            parts.append("without " + ", ".join(sorted(c.avoid_tags | c.less_tags)[:3]))
        for flag in sorted(c.flags):
            parts.append({"new": "new", "popular": "popular", "friends": "liked by your friends"}[flag])
        text = "; ".join(parts)
        head = f"For {text}" if wanted or like or c.flags else text[:1].upper() + text[1:]
        return f"{head}: {_join(titles)}."

    def allowed_items(self, state: SessionState, items: Sequence[ChatItem], user_id: str | None) -> set[int]:
        cat = self.catalog
        idx = {cat.index_of(it.item_id) for it in items}
        c = state.constraints
        # A tag the user named may also be a title (LastFM's "chillout & ambient"): saying it back is no invention.
        said = {i for t in set(c.tags) | c.avoid_tags | c.less_tags for i in cat.items_named(t)}
        return ({i for i in idx if i is not None} | set(cat.history(user_id).tolist()) | state.named | set(state.shown)
                | said)

    def _generate(self, state: SessionState, message: str, items: Sequence[ChatItem], user_id: str | None,
                  zh: bool, template: str) -> tuple[str, bool, list[str]]:
        lines = "\n".join(f"- {it.title} ({it.reason})" for it in items[:3])
        prompt = [{"role": "system", "content": "You are a friendly recommendation assistant. In one or two short "
                   "sentences, introduce the recommended items to the user. Mention only the titles listed, written "
                   "exactly. Do not add any other name." + (" Answer in Chinese." if zh else "")},
                  {"role": "user", "content": f"My request: {message[:300]}\nRecommended:\n{lines}"}]
        try:
            text = self.generator.generate(prompt).strip()
        except Exception as exc:  # a backend down or failing: the template answers
            return template, False, [f"generator failed: {type(exc).__name__}"]
        allowed = self.allowed_items(state, items, user_id)
        extra_names = self.catalog.friends(user_id) + list(state.constraints.tags)
        problems = reply_problems(text, self.catalog, allowed, extra_names, zh=zh, strict=True)
        if problems:
            return template, False, problems
        return text, True, []


def _join(titles: Sequence[str]) -> str:
    titles = list(titles)
    return titles[0] if len(titles) == 1 else ", ".join(titles[:-1]) + " and " + titles[-1]


_NOT_NAMES = set("""i i'm you you'll you've your we we're it it's its this that they their he she if since because as and
also so here how what why enjoy love like liked our a an the hey hi people friends plus with fans check try give based
these those there then some all both each for from into just more most new great perfect hope happy sure discover
explore listen watch recommended recommendations recommend picks pick top favorite favourite artists artist music
movies movie films film songs tracks bands band genre genres style sounds sound vibes vibe mood fan classic classics
my me let's let don't do if when while yes no ok okay thanks thank""".split())


def reply_problems(text: str, catalog: CatalogIndex, allowed_items: set[int], extra_names: Sequence[str] = (), *,
                   zh: bool = False, strict: bool = False) -> list[str]:
    """Why a reply is not grounded (empty: it is). Every catalog item the reply names must be in
    ``allowed_items``; with ``strict`` (a generated reply) every capitalised word must belong to
    an allowed item's title, one of ``extra_names`` (friends, tags) or common words; a Chinese
    request (``zh``) needs Chinese in the reply."""
    problems = []
    if not text.strip():
        return ["is empty"]
    for i in titles_in(text, catalog):
        if i not in allowed_items and not any(normalize(str(catalog.titles[a])) == normalize(str(catalog.titles[i]))
                                              for a in allowed_items):
            problems.append(f"names {catalog.titles[i]!r}, which is neither recommended, in the history nor asked for")
    if zh and not has_chinese(text):
        problems.append("answers a Chinese message in another language")
    if strict:
        ok = {w for i in allowed_items for w in words(str(catalog.titles[i]))}
        ok |= {w for name in extra_names for w in words(str(name))}
        for w in re.findall(r"[A-Za-z][\w'&+.-]*", text):
            lw = w.lower().strip(".'")
            if w[:1].isupper() and lw not in _NOT_NAMES and lw not in ok and normalize(w) not in ok:
                problems.append(f"names {w!r}, which is in no returned item")
    return problems


def _clause_cues(message: str) -> list[tuple[int, int, list[str]]]:
    """The message's clauses as (first word, end word, words) over `words(message)` positions:
    punctuation ends a clause, and "but", "and", "or", "though" start a new one."""
    out = []
    pos = 0
    for chunk in re.split(r"[,;!?，。；！？]|\.(?=\s|$)", message):
        toks = words(chunk)
        start = 0
        for i, t in enumerate(toks):
            if t in ("but", "and", "or", "though") and i > start:
                out.append((pos + start, pos + i, toks[start:i]))
                start = i
        out.append((pos + start, pos + len(toks), toks[start:]))
        pos += len(toks)
    return out


def _polarity(m: Mention, clauses: list[tuple[int, int, list[str]]], message: str) -> str:
    """"no", "less" or "yes" for a mention, from the nearest cue before it in its clause."""
    if m.start < 0:  # glossary or embedding: look at the raw text just before it
        at = message.find(m.text)
        before = message[max(0, at - 4):at] if at >= 0 else ""
        if any(q in before for q in _ZH_HARD_NEG):
            return "no"
        if any(q in before for q in _ZH_SOFT_NEG):
            return "less"
        if m.how == "embedding":
            ws = words(message)
            first = words(m.text)[:1]
            if first and first[0] in ws:
                i = ws.index(first[0])
                for first_word, end, toks in clauses:
                    if first_word <= i < end:
                        for t in reversed(toks[:i - first_word]):
                            if t in _HARD_NEG:
                                return "no"
                            if t in _SOFT_NEG:
                                return "less"
        return "yes"
    for first, end, toks in clauses:
        if first <= m.start < end:
            for t in reversed(toks[:m.start - first]):
                if t in _HARD_NEG:
                    return "no"
                if t in _SOFT_NEG:
                    return "less"
                if t in ("more", "like", "want"):
                    return "yes"
    return "yes"
