"""A deterministic synthetic social platform with planted structure whose right answers are known.

Used by the unit tests and as the demo's fallback when no real data is present. Everything comes
from ``numpy.random.default_rng(seed)``, so the same arguments give the same tables.

Planted structure
-----------------
* Topics ``0..n_communities-1`` (names in `topic_names`): sports, music, cooking, ... and, past
  the hand-written lists, ``topic10``, ``topic11``, ... with generated vocabularies.
* Every user belongs to one community (balanced sizes); community ``c`` prefers topic ``c``.
* Every item has one topic (balanced sizes); within a topic, item popularity follows a Zipf law
  ``weight ~ 1 / rank**popularity_exponent`` over a random ranking of the topic's items.
* Each user has exactly ``interactions_per_user`` interactions with distinct items. A share
  ``topic_purity`` (in expectation; the per-user count is randomly rounded) comes from the
  community's topic, drawn by popularity, and the rest uniformly from the other topics' items.
  Kinds are view/click/like/comment/share/purchase/rating (`KIND_PROBS`); a rating holds a value
  1..5, higher on in-topic items. Timestamps are integer unix seconds within ``days`` days from
  `EPOCH`, strictly increasing per user (each user starts at a random time in the first 60% of
  the window); the table is sorted by time, so a global time cut is a temporal split.
* Each user follows exactly ``friends_per_user`` other users: a share ``homophily`` (in
  expectation) inside their community, the rest outside; directed "follow" edges, no self-loops,
  no duplicates.
* Texts: item "title" and "description" (topic words), user "bio" (words of the community's
  topic), and one "comment" (owner "user", timestamp = the interaction's) per interaction of
  kind "comment": positive wording (`POSITIVE_WORDS`) on in-topic items, negative wording
  (`NEGATIVE_WORDS`) on out-of-topic ones, naming a word of the item's topic. A comment is tied
  to its item through (user, timestamp) in the interactions. A few comments carry fake PII
  (``user12@example.com``, ``+1 555 0134``) for scrubbing tests.

`synthetic_truth` reads the planted communities and topics back from the tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import pandas as pd

from socialrec.ingest.schema import Dataset, build_dataset

__all__ = [
    "EPOCH",
    "KIND_PROBS",
    "NEGATIVE_WORDS",
    "POSITIVE_WORDS",
    "SyntheticTruth",
    "load_synthetic",
    "synthetic_truth",
    "topic_names",
    "topic_vocabulary",
]

EPOCH = 1_700_000_000  # unix seconds; the start of the interaction window
DAY = 86_400

KIND_PROBS: dict[str, float] = {
    "view": 0.40, "click": 0.20, "like": 0.15, "comment": 0.07,
    "share": 0.04, "purchase": 0.04, "rating": 0.10,
}
# P(rating = 1..5) on items of the user's own topic and on other topics' items.
_RATING_P_IN = (0.02, 0.05, 0.18, 0.35, 0.40)
_RATING_P_OUT = (0.25, 0.30, 0.25, 0.13, 0.07)

POSITIVE_WORDS = frozenset({
    "love", "great", "amazing", "awesome", "excellent", "fantastic", "wonderful", "brilliant",
    "best", "recommend",
})
NEGATIVE_WORDS = frozenset({
    "boring", "awful", "hate", "terrible", "dull", "disappointing", "bad", "worst",
})
_POS_ADJ = ("great", "amazing", "awesome", "excellent", "fantastic", "wonderful", "brilliant")
_NEG_ADJ = ("boring", "awful", "terrible", "dull", "disappointing", "bad")
_POS_TEMPLATES = (
    "Love this one, the {w} part is {a}!",
    "Really {a} {w}, would recommend.",
    "{A}! Best {w} I have seen in a while.",
    "So {a}. I love the {w} here.",
)
_NEG_TEMPLATES = (
    "Honestly {a}, the {w} part did nothing for me.",
    "I hate how {a} this {w} is.",
    "{A}. Not my thing, skipped the {w} bits.",
    "Worst {w} I have tried, just {a}.",
)

_VOCAB_SIZE = 15
_VOCABULARIES: dict[str, tuple[str, ...]] = {
    "sports": ("goal", "stadium", "league", "match", "coach", "striker", "tournament", "referee",
               "jersey", "playoff", "sprint", "marathon", "dribble", "trophy", "rally"),
    "music": ("guitar", "album", "melody", "concert", "chorus", "drummer", "vinyl", "lyrics",
              "rhythm", "piano", "festival", "ballad", "remix", "tempo", "synth"),
    "cooking": ("recipe", "pasta", "oven", "spice", "kitchen", "baking", "garlic", "sauce",
                "dough", "grill", "flavor", "chef", "noodle", "pastry", "skillet"),
    "travel": ("passport", "airport", "beach", "hostel", "itinerary", "backpack", "island",
               "luggage", "cruise", "mountain", "roadtrip", "hiking", "museum", "souvenir", "train"),
    "gaming": ("console", "controller", "quest", "multiplayer", "speedrun", "arcade", "boss",
               "level", "loot", "esports", "pixel", "dungeon", "joystick", "respawn", "raid"),
    "fashion": ("denim", "sneaker", "runway", "jacket", "vintage", "couture", "handbag", "fabric",
                "stitch", "outfit", "scarf", "boutique", "tailor", "silk", "accessory"),
    "science": ("telescope", "molecule", "galaxy", "experiment", "physics", "fossil", "microscope",
                "quantum", "genome", "robot", "laboratory", "orbit", "chemistry", "neuron", "asteroid"),
    "photography": ("camera", "lens", "aperture", "portrait", "shutter", "tripod", "exposure",
                    "snapshot", "darkroom", "zoom", "landscape", "flash", "filter", "focus", "photo"),
    "books": ("novel", "author", "chapter", "poetry", "library", "paperback", "fiction", "mystery",
              "bookshelf", "memoir", "bestseller", "sequel", "prose", "thriller", "manuscript"),
    "fitness": ("workout", "yoga", "protein", "treadmill", "dumbbell", "cardio", "stretch",
                "pilates", "squat", "kettlebell", "calories", "gym", "trainer", "endurance", "warmup"),
}
_SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ze", "po", "qu", "dy", "fe", "gu", "ba", "xi")
_BRAND_SUFFIXES = ("Co", "Works", "Labs", "House")
_DESC_ADJ = ("new", "classic", "compact", "popular", "limited", "deluxe", "handmade", "everyday")
_DESC_NOUN = ("collection", "guide", "set", "bundle", "edition", "kit", "series", "pack")
_BIO_OPENERS = ("Into", "Big fan of", "Always talking about", "Mostly here for", "Posting about")

_SAMPLE_CELLS = 1 << 22  # random keys drawn per block when sampling without replacement
_REJECTION_ROUNDS = 48


@dataclass(frozen=True)
class SyntheticTruth:
    """The planted structure, indexed by internal user/item indices.

    user_community[u] is u's community; community c prefers topic c. item_topic[i] is i's topic,
    an index into topic_names.
    """

    user_community: np.ndarray
    item_topic: np.ndarray
    topic_names: tuple[str, ...]

    @property
    def n_topics(self) -> int:
        return len(self.topic_names)


def topic_names(n_topics: int) -> tuple[str, ...]:
    """Names of topics 0..n_topics-1: the hand-written ones, then ``topic10``, ``topic11``, ..."""
    known = tuple(_VOCABULARIES)
    return known[:n_topics] + tuple(f"topic{t}" for t in range(len(known), n_topics))


def topic_vocabulary(n_topics: int) -> tuple[tuple[str, ...], ...]:
    """One tuple of 15 distinct words per topic; no word belongs to two topics."""
    known = list(_VOCABULARIES.values())
    out = [tuple(v) for v in known[:n_topics]]
    n_gen = max(0, n_topics - len(known))
    if n_gen:
        # Fixed-length base-16 syllable codes of distinct integers are distinct words.
        n_codes = n_gen * _VOCAB_SIZE
        digits = max(3, math.ceil(math.log(n_codes, len(_SYLLABLES))))
        for t in range(n_gen):
            words = []
            for j in range(_VOCAB_SIZE):
                code = t * _VOCAB_SIZE + j
                syl = []
                for _ in range(digits):
                    code, r = divmod(code, len(_SYLLABLES))
                    syl.append(_SYLLABLES[r])
                words.append("".join(syl))
            out.append(tuple(words))
    return tuple(out)


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_real(name: str, value: object, low: float, high: float | None, *, open_low: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    v = float(value)
    if (v <= low if open_low else v < low) or (high is not None and v > high):
        rng_txt = f"{'(' if open_low else '['}{low:g}, {'inf)' if high is None else f'{high:g}]'}"
        raise ValueError(f"{name} must be in {rng_txt}, got {value!r}")
    return v


def _split_share(total: int, share: float) -> tuple[int, float]:
    """floor(total*share) and the fractional rest, robust to float noise."""
    x = total * share
    base = int(math.floor(x + 1e-9))
    frac = max(0.0, x - base)
    return base, (0.0 if frac < 1e-9 else frac)


def _balanced_groups(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """A random assignment of n things to k groups whose sizes differ by at most one."""
    return rng.permutation(np.arange(n) % k).astype(np.int64)


def _sample_distinct(
    rng: np.random.Generator,
    counts: np.ndarray,
    n_cand: int,
    log_weights: np.ndarray | None = None,
    exclude: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each row r, ``counts[r]`` distinct candidates drawn without replacement.

    Candidates are weighted by ``exp(log_weights)`` (uniform when None), i.e. successive
    sampling: the first ``counts[r]`` distinct values of an i.i.d. stream. ``exclude[r]`` is a
    candidate row r may not take. Returns flat (row, position within the row, candidate) arrays,
    rows ascending. Small draws use vectorised redraw-the-duplicates rejection (cost ~ draws);
    large ones, or rows still unfinished after a few rounds, use Gumbel top-k (cost ~ rows x
    candidates); both give the same distribution.
    """
    counts = np.asarray(counts, dtype=np.int64)
    n_rows = len(counts)
    k_max = int(counts.max()) if n_rows else 0
    if k_max == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, empty
    if 4 * k_max > n_cand:
        return _gumbel_topk(rng, counts, n_cand, log_weights, exclude)
    rows = np.repeat(np.arange(n_rows), counts)
    pos = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    if log_weights is None:
        def draw(size: int) -> np.ndarray:
            return rng.integers(0, n_cand, size=size)
    else:
        cdf = np.cumsum(np.exp(log_weights - log_weights.max()))

        def draw(size: int) -> np.ndarray:
            return np.minimum(np.searchsorted(cdf, rng.random(size) * cdf[-1], side="right"), n_cand - 1)
    cand = draw(len(rows))
    for _ in range(_REJECTION_ROUNDS):
        key = rows * n_cand + cand
        order = np.argsort(key, kind="stable")  # the earliest copy of a value is kept
        bad = np.zeros(len(rows), dtype=bool)
        bad[order[1:][key[order][1:] == key[order][:-1]]] = True
        if exclude is not None:
            bad |= cand == exclude[rows]
        n_bad = int(bad.sum())
        if n_bad == 0:
            return rows, pos, cand
        cand[bad] = draw(n_bad)
    # Heavily skewed weights can keep colliding: finish the unfinished rows exactly.
    todo = np.unique(rows[bad])
    keep = ~np.isin(rows, todo)
    r2, p2, c2 = _gumbel_topk(rng, counts[todo], n_cand, log_weights,
                              None if exclude is None else exclude[todo])
    rows = np.concatenate([rows[keep], todo[r2]])
    pos = np.concatenate([pos[keep], p2])
    cand = np.concatenate([cand[keep], c2])
    order = np.lexsort((pos, rows))
    return rows[order], pos[order], cand[order]


def _gumbel_topk(
    rng: np.random.Generator,
    counts: np.ndarray,
    n_cand: int,
    log_weights: np.ndarray | None,
    exclude: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_sample_distinct` by Gumbel top-k over every candidate, in blocks of rows."""
    n_rows = len(counts)
    k_max = int(counts.max())
    block = max(1, _SAMPLE_CELLS // n_cand)
    rows, pos, cand = [], [], []
    for start in range(0, n_rows, block):
        stop = min(n_rows, start + block)
        keys = rng.gumbel(size=(stop - start, n_cand))
        if log_weights is not None:
            keys += log_weights
        if exclude is not None:
            keys[np.arange(stop - start), exclude[start:stop]] = -np.inf
        if k_max < n_cand:
            top = np.argpartition(-keys, k_max - 1, axis=1)[:, :k_max]
        else:
            top = np.broadcast_to(np.arange(n_cand), keys.shape).copy()
        order = np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        mask = np.arange(k_max)[None, :] < counts[start:stop, None]
        r, p = np.nonzero(mask)
        rows.append(r + start)
        pos.append(p)
        cand.append(top[mask])
    return np.concatenate(rows), np.concatenate(pos), np.concatenate(cand)


def _group_sizes(n: int, k: int) -> tuple[int, int]:
    return n // k, -(-n // k)


def load_synthetic(
    *,
    n_users: int = 600,
    n_items: int = 400,
    n_communities: int = 4,
    interactions_per_user: int = 25,
    friends_per_user: int = 8,
    homophily: float = 0.85,
    topic_purity: float = 0.85,
    seed: int = 0,
    popularity_exponent: float = 1.0,
    days: float = 90.0,
) -> Dataset:
    """Generate the synthetic social platform described in the module docstring.

    n_users, n_items: catalogue sizes (communities and topics get balanced shares).
    n_communities: communities = topics (>= 2); community c prefers topic c.
    interactions_per_user: distinct items each user interacts with.
    friends_per_user: users each user follows.
    homophily: expected share of follows inside the user's community.
    topic_purity: expected share of a user's interactions on their community's topic.
    seed: seed of ``numpy.random.default_rng``.
    popularity_exponent: Zipf exponent of item popularity within a topic (0 = uniform).
    days: length of the interaction window starting at `EPOCH`.

    Raises ValueError naming the argument when a value is invalid or the sizes cannot hold the
    requested structure (e.g. more in-topic interactions than a topic has items).
    """
    n_users = _check_int("n_users", n_users, 2)
    n_items = _check_int("n_items", n_items, 1)
    n_communities = _check_int("n_communities", n_communities, 2)
    interactions_per_user = _check_int("interactions_per_user", interactions_per_user, 1)
    friends_per_user = _check_int("friends_per_user", friends_per_user, 0)
    homophily = _check_real("homophily", homophily, 0.0, 1.0)
    topic_purity = _check_real("topic_purity", topic_purity, 0.0, 1.0)
    seed = _check_int("seed", seed, 0)
    popularity_exponent = _check_real("popularity_exponent", popularity_exponent, 0.0, None)
    days = _check_real("days", days, 0.0, None, open_low=True)
    if n_users < n_communities:
        raise ValueError(f"n_users={n_users} must be >= n_communities={n_communities} "
                         f"(every community needs a member)")
    if n_items < n_communities:
        raise ValueError(f"n_items={n_items} must be >= n_communities={n_communities} "
                         f"(every topic needs an item)")
    k, f = interactions_per_user, friends_per_user
    min_topic, max_topic = _group_sizes(n_items, n_communities)
    in_base, in_frac = _split_share(k, topic_purity)
    need_in, need_out = in_base + (in_frac > 0), k - in_base
    if need_in > min_topic or need_out > n_items - max_topic:
        raise ValueError(
            f"interactions_per_user={k} is too large for the catalogue: with topic_purity="
            f"{topic_purity:g} a user needs up to {need_in} distinct items of their topic "
            f"(smallest topic: {min_topic} items) and up to {need_out} of other topics "
            f"(at least {n_items - max_topic} available); lower interactions_per_user or "
            f"raise n_items")
    min_comm, max_comm = _group_sizes(n_users, n_communities)
    fin_base, fin_frac = _split_share(f, homophily)
    fneed_in, fneed_out = fin_base + (fin_frac > 0), f - fin_base
    if fneed_in > min_comm - 1 or fneed_out > n_users - max_comm:
        raise ValueError(
            f"friends_per_user={f} is too large: with homophily={homophily:g} a user needs up "
            f"to {fneed_in} other members of their community (smallest community: {min_comm} "
            f"users) and up to {fneed_out} users outside it (at least {n_users - max_comm}); "
            f"lower friends_per_user or raise n_users")
    window = int(round(days * DAY))
    if window < 2 * k:
        raise ValueError(f"days={days:g} is too short for {k} interactions per user at one per second")

    rng = np.random.default_rng(seed)
    names = topic_names(n_communities)
    vocab = np.array(topic_vocabulary(n_communities), dtype=object)  # (T, 15)
    n_topics = n_communities

    user_comm = _balanced_groups(rng, n_users, n_communities)
    item_topic = _balanced_groups(rng, n_items, n_topics)
    # Popularity rank of each item within its topic (0 = most popular), a random order.
    item_rank = np.empty(n_items, dtype=np.int64)
    shuffled = rng.permutation(n_items)
    for t in range(n_topics):
        members = shuffled[item_topic[shuffled] == t]
        item_rank[members] = np.arange(len(members))
    item_logw = -popularity_exponent * np.log1p(item_rank)

    # ---- interactions: an (n_users, k) matrix of distinct items per user
    k_in = in_base + (rng.random(n_users) < in_frac).astype(np.int64)
    k_out = k - k_in
    item_mat = np.empty((n_users, k), dtype=np.int64)
    for c in range(n_communities):
        users_c = np.flatnonzero(user_comm == c)
        in_items = np.flatnonzero(item_topic == c)
        out_items = np.flatnonzero(item_topic != c)
        r, p, j = _sample_distinct(rng, k_in[users_c], len(in_items), item_logw[in_items])
        item_mat[users_c[r], p] = in_items[j]
        r, p, j = _sample_distinct(rng, k_out[users_c], len(out_items))
        item_mat[users_c[r], k_in[users_c[r]] + p] = out_items[j]
    item_mat = rng.permuted(item_mat, axis=1)  # mix in- and out-of-topic items in time
    starts = rng.integers(0, int(0.6 * (window - k)) + 1, size=n_users)
    offsets = np.sort(rng.random((n_users, k)), axis=1) * (window - k - starts)[:, None]
    times = EPOCH + starts[:, None] + np.floor(offsets).astype(np.int64) + np.arange(k)[None, :]

    inter_user = np.repeat(np.arange(n_users), k)
    inter_item = item_mat.ravel()
    inter_time = times.ravel()
    n_inter = len(inter_user)
    in_topic = item_topic[inter_item] == user_comm[inter_user]
    kinds = np.array(list(KIND_PROBS), dtype=object)
    kind = kinds[rng.choice(len(kinds), size=n_inter, p=np.array(list(KIND_PROBS.values())))]
    value = np.full(n_inter, np.nan, dtype=np.float64)
    is_rating = kind == "rating"
    r_in = rng.choice(5, size=n_inter, p=_RATING_P_IN) + 1
    r_out = rng.choice(5, size=n_inter, p=_RATING_P_OUT) + 1
    value[is_rating] = np.where(in_topic, r_in, r_out)[is_rating]
    order = np.lexsort((inter_user, inter_time))
    inter_user, inter_item, inter_time = inter_user[order], inter_item[order], inter_time[order]
    kind, value, in_topic = kind[order], value[order], in_topic[order]

    user_ids = np.array([f"user_{u:04d}" for u in range(n_users)], dtype=object)
    item_ids = np.array([f"item_{i:04d}" for i in range(n_items)], dtype=object)
    interactions = pd.DataFrame({
        "user": user_ids[inter_user], "item": item_ids[inter_item],
        "timestamp": inter_time.astype(np.float64), "kind": kind, "value": value,
    })

    # ---- social: directed follows, a share `homophily` inside the community
    f_in = fin_base + (rng.random(n_users) < fin_frac).astype(np.int64)
    f_out = f - f_in
    src_parts, dst_parts = [], []
    if f:
        for c in range(n_communities):
            users_c = np.flatnonzero(user_comm == c)
            others = np.flatnonzero(user_comm != c)
            r, _, j = _sample_distinct(rng, f_in[users_c], len(users_c), exclude=np.arange(len(users_c)))
            src_parts += [users_c[r]]
            dst_parts += [users_c[j]]
            r, _, j = _sample_distinct(rng, f_out[users_c], len(others))
            src_parts += [users_c[r]]
            dst_parts += [others[j]]
        src = np.concatenate(src_parts)
        dst = np.concatenate(dst_parts)
        edge_order = np.lexsort((dst, src))
        src, dst = src[edge_order], dst[edge_order]
    else:
        src = dst = np.empty(0, dtype=np.int64)
    social = pd.DataFrame({
        "source": user_ids[src], "target": user_ids[dst],
        "kind": "follow", "weight": np.ones(len(src), dtype=np.float32),
    })

    # ---- items table and item texts
    word_perm = np.argsort(rng.random((n_items, _VOCAB_SIZE)), axis=1)[:, :5]
    item_words = vocab[item_topic[:, None], word_perm]  # (n_items, 5)
    n_tags = rng.integers(2, 4, size=n_items)
    brand_pick = rng.choice(len(_BRAND_SUFFIXES), size=n_items, p=[0.4, 0.3, 0.2, 0.1])
    brand_word = vocab[item_topic, rng.integers(0, _VOCAB_SIZE, size=n_topics)[item_topic]]
    price = np.round(np.maximum(0.99, 8.0 * (1 + item_topic % 7) * rng.lognormal(0.0, 0.6, n_items)), 2)
    created = EPOCH - rng.integers(DAY, 365 * DAY, size=n_items)
    desc_adj = rng.integers(0, len(_DESC_ADJ), size=n_items)
    desc_noun = rng.integers(0, len(_DESC_NOUN), size=n_items)
    titles = [" ".join(w.capitalize() for w in row[:3]) for row in item_words]
    tags = [tuple(row[2:2 + n]) for row, n in zip(item_words, n_tags)]
    brands = [f"{w.capitalize()}{_BRAND_SUFFIXES[b]}" for w, b in zip(brand_word, brand_pick)]
    descriptions = [
        f"A {_DESC_ADJ[a]} {names[t]} {_DESC_NOUN[n]} featuring {row[3]} and {row[4]}."
        for a, t, n, row in zip(desc_adj, item_topic, desc_noun, item_words)
    ]
    items = pd.DataFrame({
        "id": item_ids, "title": titles, "category": [names[t] for t in item_topic],
        "tags": pd.Series(tags, dtype=object), "price": price.astype(np.float64),
        "brand": brands, "created": created.astype(np.float64),
    })

    # ---- users table and bios
    bio_perm = np.argsort(rng.random((n_users, _VOCAB_SIZE)), axis=1)[:, :3]
    bio_words = vocab[user_comm[:, None], bio_perm]
    opener = rng.integers(0, len(_BIO_OPENERS), size=n_users)
    bios = [f"{_BIO_OPENERS[o]} {w[0]}, {w[1]} and {w[2]}." for o, w in zip(opener, bio_words)]
    joined = (EPOCH + starts).astype(np.float64)
    users = pd.DataFrame({"id": user_ids, "community": user_comm.astype(np.int64), "bio": bios,
                          "joined": joined})

    # ---- comments: sentiment follows whether the item is on the user's topic
    com = np.flatnonzero(kind == "comment")
    n_com = len(com)
    tmpl = rng.integers(0, len(_POS_TEMPLATES), size=n_com)
    adj_pos = rng.integers(0, len(_POS_ADJ), size=n_com)
    adj_neg = rng.integers(0, len(_NEG_ADJ), size=n_com)
    com_word = vocab[item_topic[inter_item[com]], rng.integers(0, _VOCAB_SIZE, size=n_com)]
    comments = []
    for q in range(n_com):
        if in_topic[com[q]]:
            a = _POS_ADJ[adj_pos[q]]
            text = _POS_TEMPLATES[tmpl[q]]
        else:
            a = _NEG_ADJ[adj_neg[q]]
            text = _NEG_TEMPLATES[tmpl[q]]
        comments.append(text.format(w=com_word[q], a=a, A=a.capitalize()))
    n_pii = min(n_com, max(2, n_com // 100))
    pii_rows = np.sort(rng.choice(n_com, size=n_pii, replace=False)) if n_pii else np.empty(0, np.int64)
    for m, q in enumerate(pii_rows):
        u = int(inter_user[com[q]])
        if m % 2 == 0:
            comments[q] += f" Email me at user{u}@example.com"
        else:
            comments[q] += f" Call me on +1 555 01{u % 100:02d}"

    texts = pd.DataFrame({
        "owner": ["item"] * (2 * n_items) + ["user"] * (n_users + n_com),
        "id": np.concatenate([item_ids, item_ids, user_ids, user_ids[inter_user[com]]]),
        "field": ["title"] * n_items + ["description"] * n_items + ["bio"] * n_users + ["comment"] * n_com,
        "text": titles + descriptions + bios + comments,
        "timestamp": np.concatenate([created, created, joined, inter_time[com]]).astype(np.float64),
    })

    note = (f"synthetic: n_users={n_users}, n_items={n_items}, n_communities={n_communities}, "
            f"interactions_per_user={k}, friends_per_user={f}, homophily={homophily:g}, "
            f"topic_purity={topic_purity:g}, popularity_exponent={popularity_exponent:g}, "
            f"days={days:g}, seed={seed}")
    return build_dataset(
        "synthetic", interactions, social=social if len(social) else None, social_directed=True,
        items=items, users=users, texts=texts, rating_range=(1.0, 5.0), notes=(note,),
    )


def synthetic_truth(dataset: Dataset) -> SyntheticTruth:
    """The planted communities and topics of a `load_synthetic` dataset, read from its tables.

    user_community comes from the user table's ``community`` column, item_topic from the item
    table's ``category`` column (a topic name, mapped to its index in `topic_names`).
    """
    ut, it = dataset.user_table, dataset.item_table
    if "community" not in ut.columns or "category" not in it.columns:
        raise ValueError(f"dataset {dataset.name!r} is not a synthetic dataset: it needs a user "
                         f"'community' column and an item 'category' column")
    if ut["community"].isna().any() or it["category"].isna().any():
        raise ValueError(f"dataset {dataset.name!r} has users without a community or items without "
                         f"a category")
    user_community = ut["community"].to_numpy(dtype=np.int64)
    n_topics = int(user_community.max()) + 1
    names = topic_names(n_topics)
    lookup = {name: t for t, name in enumerate(names)}
    categories = it["category"].astype(str).tolist()
    unknown = sorted({c for c in categories if c not in lookup})
    if unknown or user_community.min() < 0:
        raise ValueError(f"dataset {dataset.name!r} is not a synthetic dataset: categories "
                         f"{unknown[:5]} are not among the topics {list(names)}")
    item_topic = np.fromiter((lookup[c] for c in categories), dtype=np.int64, count=len(categories))
    return SyntheticTruth(user_community=user_community, item_topic=item_topic, topic_names=names)
