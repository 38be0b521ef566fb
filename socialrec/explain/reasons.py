"""Structured reasons for a recommendation, and the one readable sentence rendered from them.

A `Reason` names the signal that produced (part of) a recommendation and the evidence behind it,
in external ids and display names so that it can be shown, logged and checked: the grounding
check of a generated sentence compares the names it mentions with the names in the reasons.

Kinds (``Reason.kind``) and their ``evidence`` keys:
- ``friends_liked``: ``friends`` (list of {"id", "name"}, strongest tie first) who interacted
  with the item, and ``count``, how many friends did in all.
- ``similar_to``: ``item`` ({"id", "name"}): an item the user liked that is close to this one.
- ``recently``: ``item`` ({"id", "name"}): one of the user's newest items that this one follows
  (a sequential channel's evidence), and ``verb`` (str, past tense: "played", "bought", ...).
- ``looks_like``: ``item`` ({"id", "name"}) and ``modality`` ("image", "audio", ...): an item the
  user liked whose vector in that modality is closest to this one's ("looks like X you liked"
  for images, "sounds like X you liked" for audio).
- ``matches_interest``: ``tags`` (list of str): the user's recurring tags/categories it carries.
- ``collaborative``: ``users_like_you`` (int, optional): users with similar histories liked it.
- ``trending``: ``recent_interactions`` (int): interactions in the recent window.
- ``new``: ``age_days`` (float, optional): a new item, shown for exposure.
- ``popular``: no evidence (the fallback when nothing personal is known).
- ``matches_request``: ``query`` (str): a conversational request the item answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

KINDS = ("friends_liked", "similar_to", "recently", "looks_like", "matches_interest", "collaborative", "trending",
         "new", "popular", "matches_request")


# How a sentence says two items are close in a modality ("it looks like X").
MODALITY_VERBS = {"image": "looks", "visual": "looks", "video": "looks", "audio": "sounds", "acoustic": "sounds"}


@dataclass(frozen=True)
class Reason:
    """One signal behind a recommendation. ``weight`` is the signal's contribution to the final
    score (larger first); ``evidence`` holds the names and ids a sentence may mention."""

    kind: str
    weight: float = 0.0
    evidence: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown reason kind {self.kind!r}; use one of {', '.join(KINDS)}")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "weight": round(float(self.weight), 6), "evidence": self.evidence}


def _names(people: list[dict[str, Any]], total: int | None = None, limit: int = 2) -> str:
    names = [str(p.get("name") or p.get("id")) for p in people][:limit]
    others = max(len(people) if total is None else total, len(people)) - len(names)
    if others <= 0:
        return " and ".join(names)
    return f"{', '.join(names)} and {others} other{'s' if others > 1 else ''}"


def _clause(reason: Reason) -> str | None:
    ev = reason.evidence
    if reason.kind == "friends_liked" and ev.get("friends"):
        friends = ev["friends"]
        total = int(ev.get("count", len(friends)))
        verb = "likes" if total == 1 else "like"
        return f"{_names(friends, total)} {verb} it"
    if reason.kind == "similar_to" and ev.get("item"):
        item = ev["item"]
        return f"it is similar to {item.get('name') or item.get('id')}, which you liked"
    if reason.kind == "recently" and ev.get("item"):
        item = ev["item"]
        return f"you recently {ev.get('verb') or 'chose'} {item.get('name') or item.get('id')}"
    if reason.kind == "looks_like" and ev.get("item"):
        item = ev["item"]
        name = item.get("name") or item.get("id")
        verb = MODALITY_VERBS.get(str(ev.get("modality")))
        if verb is None:
            return f"its {ev.get('modality')} is like that of {name}, which you liked"
        return f"it {verb} like {name}, which you liked"
    if reason.kind == "matches_interest" and ev.get("tags"):
        return f"it matches your interest in {', '.join(str(t) for t in ev['tags'][:3])}"
    if reason.kind == "collaborative":
        return "people with tastes like yours liked it"
    if reason.kind == "trending":
        n = ev.get("recent_interactions")
        return f"it is trending ({n} recent interactions)" if n else "it is trending"
    if reason.kind == "new":
        return "it is new"
    if reason.kind == "popular":
        return "it is popular right now"
    if reason.kind == "matches_request" and ev.get("query"):
        return f"it fits your request \"{ev['query']}\""
    return None


def render_sentence(title: str, reasons: list[Reason], *, max_clauses: int = 2) -> str:
    """One sentence from the strongest reasons, e.g. "Recommended because Ann and Bo like it and
    it is similar to Blur, which you liked." Uses only names present in the reasons."""
    ordered = sorted(reasons, key=lambda r: -r.weight)
    clauses = [c for c in (_clause(r) for r in ordered) if c][:max_clauses]
    if not clauses:
        clauses = ["it is popular right now"]
    return f"{title}: recommended because {' and '.join(clauses)}."


def grounded_names(reasons: list[Reason], title: str) -> set[str]:
    """Every name or id a sentence about this recommendation may mention."""
    allowed = {title}
    for r in reasons:
        ev = r.evidence
        for person in ev.get("friends", []):
            allowed.update(str(v) for v in (person.get("name"), person.get("id")) if v is not None)
        item = ev.get("item")
        if item:
            allowed.update(str(v) for v in (item.get("name"), item.get("id")) if v is not None)
        allowed.update(str(t) for t in ev.get("tags", []))
    return allowed
