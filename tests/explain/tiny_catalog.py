"""A tiny catalog whose right answers are known, for the conversation tests: three genres of four
items each, two friends of u0, a popularity order; candidates are the popularity list, similar
items share the seed's genre."""

from __future__ import annotations

import numpy as np
import pandas as pd

from socialrec.explain.catalog import CatalogIndex
from socialrec.explain.dialogue import Dialogue, DialogueConfig
from socialrec.ingest.schema import build_dataset

GENRES = {"jazz": ["Blue Note Trio", "Miles Ahead Quartet", "Late Night Sax", "Bebop Kings"],
          "rock": ["Thunder Road Band", "Iron Guitars", "Garage Heroes", "Loud Engine"],
          "ambient": ["Slow Clouds", "Quiet Harbor", "Deep Drift", "Morning Fog Ensemble"]}
TITLES = {f"i{g}{n}": t for g, ts in GENRES.items() for n, t in enumerate(ts)}
GENRE_OF = {f"i{g}{n}": g for g, ts in GENRES.items() for n in range(len(ts))}


def tiny_catalog() -> CatalogIndex:
    ids = list(TITLES)
    items = pd.DataFrame({"id": ids, "title": [TITLES[i] for i in ids],
                          "tags": pd.Series([(GENRE_OF[i], "instrumental" if GENRE_OF[i] != "rock" else "vocal")
                                             for i in ids], dtype=object)})
    rows = []
    rng = np.random.default_rng(0)
    # Item popularity falls with its position in each genre; user u0 has listened to Bebop Kings.
    for u in range(30):
        for i in ids:
            if rng.random() < 0.9 / (1 + int(i[-1])):
                rows.append((f"u{u + 1}", i))
    rows.append(("u0", "ijazz3"))
    inter = pd.DataFrame(rows, columns=["user", "item"])
    social = pd.DataFrame({"source": ["u0", "u0"], "target": ["u1", "u2"]})
    return CatalogIndex(build_dataset("tiny", inter, items=items, social=social))


def make_dialogue(catalog: CatalogIndex, generator: object = None, **config: object) -> Dialogue:
    pop = np.argsort(-catalog.popularity, kind="stable")

    def candidates(user_id: str | None, n: int) -> list[tuple[str, float]]:
        seen = set(catalog.history(user_id).tolist())
        return [(str(catalog.item_ids[i]), float(catalog.popularity[i])) for i in pop if i not in seen][:n]

    def similar(item_id: str, n: int) -> list[tuple[str, float]]:
        g = GENRE_OF[item_id]
        return [(i, 1.0) for i in TITLES if GENRE_OF[i] == g and i != item_id][:n]

    return Dialogue(catalog, candidates, similar, generator=generator, config=DialogueConfig(**config))


def genres(turn: object) -> set[str]:
    return {GENRE_OF[it.item_id] for it in turn.items}  # type: ignore[attr-defined]
