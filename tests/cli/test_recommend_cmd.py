"""`socialrec recommend` and `socialrec evaluate --models hybrid`, end to end on the synthetic platform."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from socialrec.cli.main import main

pytest.importorskip("implicit")
pytest.importorskip("lightgbm")

FAST = "ease,itemknn,als,social-proof,trending"


def test_recommend_prints_titles_with_reasons(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["recommend", "--dataset", "synthetic", "--user", "user_0005", "--user", "someone-new",
                 "--k", "4", "--explain", "--channels", FAST, "--json"])
    assert code == 0
    out = capsys.readouterr().out
    doc = json.loads(out[out.index("{"):])
    known, new = doc["user_0005"], doc["someone-new"]
    assert len(known) == 4 and len(new) == 4
    for rec in known:
        assert rec["sentence"].startswith(rec["title"]) and rec["reasons"]
        assert {r["kind"] for r in rec["reasons"]} <= {"similar_to", "collaborative", "friends_liked", "trending",
                                                        "popular", "new", "matches_interest"}
    assert all(r["reasons"][0]["kind"] == "trending" for r in new)


@pytest.mark.slow
def test_evaluate_hybrid_beats_popularity(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    assert main(["evaluate", "--dataset", "synthetic", "--protocol", "random-811", "--models", "pop,hybrid",
                 "--k", "10", "--output", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["models"]["hybrid"]["ndcg@10"] > 2 * doc["models"]["pop"]["ndcg@10"]


def test_saved_model_loads_back_and_recommends_the_same(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "models" / "synthetic.pkl"
    args = ["recommend", "--dataset", "synthetic", "--user", "user_0005", "--k", "5", "--json"]
    assert main(args + ["--channels", FAST, "--save", str(path)]) == 0
    fitted = capsys.readouterr().out
    assert path.is_file() and not path.with_name(path.name + ".partial").exists()
    assert main(args + ["--load", str(path)]) == 0
    loaded = capsys.readouterr().out
    assert "loaded the hybrid (ease, itemknn, als, social-proof, trending)" in loaded

    def recs(out: str) -> list[dict]:
        return json.loads(out[out.index("{"):])["user_0005"]
    assert [r["item_id"] for r in recs(loaded)] == [r["item_id"] for r in recs(fitted)]
    assert [r["score"] for r in recs(loaded)] == pytest.approx([r["score"] for r in recs(fitted)])


def test_load_refuses_other_data_missing_files_and_foreign_files(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import pickle

    from socialrec.ingest.datasets import load
    from socialrec.ingest.datasets.synthetic import load_synthetic
    from socialrec.rank.hybrid import HybridRecommender
    from socialrec.rank.persist import load_model, read_header, save_model
    from socialrec.retrieve.base import TrainData

    data = load("synthetic")
    model = HybridRecommender(channels=("ease", "trending"), progress=False)
    model.fit(TrainData(user_items=data.user_item_matrix(), dataset=data))
    path = save_model(model, tmp_path / "m.pkl", data)
    assert read_header(path)["n_users"] == data.n_users
    back = load_model(path, data)
    users = [0, 3, 7]
    assert [list(i) for i in back.recommend(users, k=5)[0]] == [list(i) for i in model.recommend(users, k=5)[0]]

    other = load_synthetic(seed=1)  # same name, size and ids, other interactions
    with pytest.raises(ValueError, match="not the data given"):
        load_model(path, other)
    with pytest.raises(FileNotFoundError, match="no saved model there"):
        load_model(tmp_path / "missing.pkl", data)
    foreign = tmp_path / "foreign.pkl"
    foreign.write_bytes(pickle.dumps({"hello": 1}))
    with pytest.raises(ValueError, match="not a saved socialrec model"):
        load_model(foreign, data)
    (tmp_path / "text.pkl").write_text("not a pickle at all")
    with pytest.raises(ValueError, match="not a saved socialrec model"):
        load_model(tmp_path / "text.pkl", data)
    # the CLI reports a missing file as an error (exit 2), not a traceback
    assert main(["recommend", "--dataset", "synthetic", "--user", "user_0005", "--load", str(tmp_path / "none.pkl")]) == 2
    assert "no saved model there" in capsys.readouterr().err


def test_value_weighted_fit_trains_the_learned_channels_on_value_ranks(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from socialrec.ingest.datasets import load
    from socialrec.rank.persist import load_model

    path = tmp_path / "weighted.pkl"
    assert main(["recommend", "--dataset", "synthetic", "--user", "user_0005", "--k", "3", "--channels", FAST,
                 "--value-weighted", "--save", str(path)]) == 0
    model = load_model(path, load("synthetic"))
    assert model.value_weighted == ("itemknn", "als")
    models = model.retriever_.models_
    assert len(set(models["itemknn"].user_items_.data.tolist())) > 2  # rank weights, not 0/1
    assert set(models["ease"].user_items_.data.tolist()) == {1.0}
    capsys.readouterr()
    assert main(["recommend", "--dataset", "synthetic", "--user", "user_0005", "--load", str(path), "--value-weighted"]) != 0
    assert "--value-weighted with --load" in capsys.readouterr().err
