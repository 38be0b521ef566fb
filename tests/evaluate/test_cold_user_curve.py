"""The cold-user curve: users absent from training reveal their first 0, 1, 3, 5 items online,
and a model that reads the newest item finds the next one from the first revealed item on."""

from __future__ import annotations

import pytest

from socialrec.evaluate.protocol import cold_user_curve
from socialrec.ingest.split import cold_user_split, leave_one_out
from socialrec.retrieve.popular import MostPopular
from tests.retrieve.test_sequential import FAST, chain_dataset


def test_the_first_revealed_item_tells_a_sequence_model_where_the_user_is() -> None:
    pytest.importorskip("torch")
    from socialrec.retrieve.sequential import SASRec

    split = cold_user_split(chain_dataset(n_users=200), share=0.2, seed=0)
    model = SASRec(**FAST).fit(split.train_data())
    curve = cold_user_curve(model, split, histories=(0, 1, 3), ks=(1, 10), metrics=("hit", "ndcg"))
    # Every cold user walked the cycle for 5 steps: more than 3 items each, so all are measured.
    assert curve[0]["n_users"] == curve[3]["n_users"] == 20
    # With no item the model can only guess (a user's 5 items of 12: about 5 in 12 at rank 1);
    # with the first item revealed the next one is its successor, which a sequence model gets right
    # (had the newest item been revealed instead of the oldest, its successor would not be in the truth).
    assert curve[0]["hit@1"] < 0.7
    assert curve[1]["hit@1"] >= 0.9 and curve[3]["hit@1"] >= 0.9
    pop = cold_user_curve(MostPopular().fit(split.train_data()), split, histories=(0, 1), ks=(1,), metrics=("hit",))
    assert pop[1]["hit@1"] < 0.7  # popularity ignores where the user is (4 of 12 items left)


def test_a_split_with_warm_test_users_is_refused() -> None:
    split = leave_one_out(chain_dataset(n_users=20))
    with pytest.raises(ValueError, match="use cold_user_split"):
        cold_user_curve(MostPopular().fit(split.train_data()), split)


def test_the_cold_user_protocol_reports_the_curve(capsys: pytest.CaptureFixture) -> None:
    from socialrec.cli.main import run_evaluation

    doc = run_evaluation("chains", "cold-user", ["pop", "itemknn"], (10,), 0, data=None, quick=True, output=None,
                         report=None, dataset=chain_dataset(n_users=200))
    curve = doc["models"]["itemknn"]["cold_user_curve"]
    assert set(curve) == {"0", "1", "3", "5"} - {"5"}  # every user has 5 items: none is left after 5
    assert curve["0"]["ndcg@10"] == pytest.approx(doc["models"]["itemknn"]["ndcg@10"])
    assert curve["1"]["ndcg@10"] > curve["0"]["ndcg@10"]  # one item says where on the cycle the user is
    assert "after their first n items" in capsys.readouterr().out
