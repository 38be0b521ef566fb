"""Sentiment models trained on labels: corpus loaders and split, Platt calibration, the Chinese
n-gram model (signs on known sentences, save/load), the analyser's routing to saved models, and
the real corpora."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from socialrec.errors import DataError
from socialrec.evaluate.classification import brier_score, expected_calibration_error, roc_auc
from socialrec.ingest.datasets.labelled_reviews import load_chinese_reviews, load_english_reviews, split_labelled
from socialrec.represent.sentiment import SentimentAnalyzer, language_of
from socialrec.represent.sentiment_models import (CharNgramSentiment, PlattScaling, has_saved_model,
                                                  load_sentiment_model, train_sentiment_model)
from tests.represent.sentiment_corpora import write_data_dir, zh_reviews

pytest.importorskip("sklearn")

POSITIVE_ZH = ["这部电影太好看了，我非常喜欢", "服务很好，下次还来", "味道很棒，强烈推荐", "质量不错，很满意"]
NEGATIVE_ZH = ["质量太差了，非常失望", "太难吃了，再也不来了", "快递很慢，包装也破了", "完全是浪费钱，后悔买了"]


# --- metrics and calibration -------------------------------------------------------------------
def test_brier_and_ece_on_known_values() -> None:
    assert brier_score([1.0, 0.0, 0.5], [1, 0, 1]) == pytest.approx(0.25 / 3)
    # Bin [0.2, 0.3): p 0.2 x2, one positive -> |0.4 - 1| = 0.6; bin [0.9, 1]: p 0.9 x2, both positive -> 0.2.
    assert expected_calibration_error([0.2, 0.2, 0.9, 0.9], [1, 0, 1, 1]) == pytest.approx((0.6 + 0.2) / 4)
    with pytest.raises(ValueError, match="lie in"):
        expected_calibration_error([1.5], [1])


def test_platt_scaling_recovers_the_true_link_and_calibrates() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(size=20000)
    y = rng.random(20000) < 1 / (1 + np.exp(-(2.0 * z - 1.0)))
    platt = PlattScaling.fit(z, y)
    assert platt.a == pytest.approx(2.0, abs=0.1) and platt.b == pytest.approx(-1.0, abs=0.1)
    raw = 1 / (1 + np.exp(-z))  # the right ranking, the wrong scale
    assert expected_calibration_error(raw, y) > 0.05
    assert expected_calibration_error(platt(z), y) < 0.02
    assert roc_auc(platt(z), y) == pytest.approx(roc_auc(z, y))  # monotone: ranking unchanged
    with pytest.raises(DataError, match="both classes"):
        PlattScaling.fit(z[:5], np.ones(5))


# --- loaders and split -------------------------------------------------------------------------
def test_loaders_read_labels_merge_duplicates_and_drop_three_stars(tmp_path) -> None:
    root = write_data_dir(tmp_path, n_zh=90, n_en=60)
    en = load_english_reviews(root)
    raw = pd.read_csv(root / "reviews-en-clothing" / "womens_clothing_ecommerce_reviews.csv.gz")
    assert len(en) == int((raw["Rating"] != 3).sum())
    assert set(en["label"]) == {0, 1} and not en["source"].eq("stars=3").any()
    assert (en["label"] == en["source"].isin(["stars=4", "stars=5"])).all()
    assert en["text"].str.contains(r"^\w[^.]*\. ", regex=True).any()  # "Title. body" where a title exists
    zh = load_chinese_reviews(root)
    assert len(zh) == 90 and set(zh["source"]) == {"online_shopping_10_cats", "waimai_10k", "ChnSentiCorp_htl_all"}
    # A text repeated with the same label is kept once; with conflicting labels it is dropped.
    path = root / "reviews-zh" / "waimai_10k.csv.gz"
    with gzip.open(path, "at", encoding="utf-8") as fh:
        fh.write("1,重复的评论\n1,重复的评论\n1,矛盾的评论\n0,矛盾的评论\n")
    zh2 = load_chinese_reviews(root)
    assert (zh2["text"] == "重复的评论").sum() == 1 and not (zh2["text"] == "矛盾的评论").any()


def test_loader_errors_name_the_file_line_and_field(tmp_path) -> None:
    root = write_data_dir(tmp_path, n_zh=30, n_en=20)
    path = root / "reviews-zh" / "waimai_10k.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("label,review\n1,好\n2,差\n")
    with pytest.raises(DataError, match=r"waimai_10k.csv.gz, line 3, field 'label'"):
        load_chinese_reviews(root)
    with pytest.raises(DataError, match="file not found"):
        load_english_reviews(tmp_path / "nowhere")


def test_split_is_stratified_disjoint_and_fixed_by_seed() -> None:
    frame = zh_reviews(1000, seed=3).rename(columns={"review": "text"})
    a, b, c = split_labelled(frame, seed=1), split_labelled(frame, seed=1), split_labelled(frame, seed=2)
    assert a.sizes() == {"train": 700, "valid": 100, "test": 200}
    assert a.test["text"].tolist() == b.test["text"].tolist() and a.test["text"].tolist() != c.test["text"].tolist()
    parts = [set(p["text"]) for p in (a.train, a.valid, a.test)]
    assert not (parts[0] & parts[2]) and not (parts[1] & parts[2]) and not (parts[0] & parts[1])
    share = frame["label"].mean()
    assert a.test["label"].mean() == pytest.approx(share, abs=0.01)


# --- the Chinese model -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def zh_model() -> CharNgramSentiment:
    train, valid = zh_reviews(600, seed=0), zh_reviews(200, seed=1)
    return CharNgramSentiment(c_grid=(1.0, 4.0)).fit(train["review"].tolist(), train["label"].to_numpy(),
                                                     valid["review"].tolist(), valid["label"].to_numpy())


def test_chinese_model_gets_the_signs_of_known_sentences(zh_model: CharNgramSentiment) -> None:
    p = zh_model.predict_proba(POSITIVE_ZH + NEGATIVE_ZH)
    np.testing.assert_array_equal(p > 0.5, [True] * 4 + [False] * 4)
    s = zh_model.score(POSITIVE_ZH + NEGATIVE_ZH)
    np.testing.assert_allclose(s, 2 * p - 1)
    test = zh_reviews(300, seed=2)
    assert roc_auc(zh_model.predict_proba(test["review"].tolist()), test["label"]) > 0.97
    assert zh_model.info_["chosen_C"] in (1.0, 4.0) and set(zh_model.info_["valid_auc_by_C"]) == {"1.0", "4.0"}


def test_chinese_model_batch_equals_single_and_survives_save_load(zh_model, tmp_path) -> None:
    texts = POSITIVE_ZH + NEGATIVE_ZH
    batch = zh_model.predict_proba(texts)
    single = np.array([zh_model.predict_proba([t])[0] for t in texts])
    np.testing.assert_allclose(batch, single, rtol=1e-6)
    zh_model.save(tmp_path / "zh")
    loaded = load_sentiment_model("zh", tmp_path)
    np.testing.assert_allclose(loaded.predict_proba(texts), batch, rtol=1e-6)
    assert loaded.calibration_ == zh_model.calibration_


def test_unfitted_and_missing_models_say_what_to_do(tmp_path) -> None:
    from socialrec.errors import NotFittedError

    with pytest.raises(NotFittedError, match="fit"):
        CharNgramSentiment().predict_proba(["好"])
    with pytest.raises(DataError, match="sentiment-train --language en"):
        load_sentiment_model("en", tmp_path)
    with pytest.raises(DataError, match="sentiment-train --language zh"):
        SentimentAnalyzer(models="trained", model_dir=tmp_path).score(["很好"])


# --- the analyser: trained model by default where saved ------------------------------------------
def test_analyser_uses_the_saved_model_of_a_language_and_the_lexicon_of_the_other(zh_model, tmp_path) -> None:
    pytest.importorskip("vaderSentiment")
    pytest.importorskip("snownlp")
    zh_model.save(tmp_path / "zh")
    assert has_saved_model("zh", tmp_path) and not has_saved_model("en", tmp_path)
    auto = SentimentAnalyzer(model_dir=tmp_path, cache_dir=tmp_path / "cache")
    assert auto.source("zh") == "trained:char-ngram-logreg" and auto.source("en") == "lexicon:vader"
    texts = ["", "I love it", POSITIVE_ZH[0], NEGATIVE_ZH[0], "I hate it", POSITIVE_ZH[0]]
    s = auto.score(texts)
    assert s.dtype == np.float32 and s[0] == 0.0 and s[2] == s[5]
    assert s[2] == pytest.approx(zh_model.score([POSITIVE_ZH[0]])[0], abs=1e-6)
    assert s[1] == pytest.approx(SentimentAnalyzer(models="lexicon").score_one("I love it"), abs=1e-6)
    lexicon = SentimentAnalyzer(models="lexicon", model_dir=tmp_path)
    assert lexicon.source("zh") == "lexicon:snownlp"
    assert lexicon.score_one(POSITIVE_ZH[0]) != pytest.approx(float(s[2]), abs=1e-6)
    r = auto.analyse(NEGATIVE_ZH[1])
    assert (r.language, r.label, r.source) == ("zh", "negative", "trained:char-ngram-logreg")
    assert r.probability == pytest.approx(zh_model.predict_proba([NEGATIVE_ZH[1]])[0], abs=1e-6)
    assert auto.analyse("   ").label == "neutral"
    assert language_of("good") == "en" and language_of("很好 good") == "zh"


def test_trained_scores_are_cached_by_model_identity(zh_model, tmp_path, monkeypatch) -> None:
    zh_model.save(tmp_path / "zh")
    texts = POSITIVE_ZH + NEGATIVE_ZH
    first = SentimentAnalyzer(model_dir=tmp_path, cache_dir=tmp_path / "cache")
    s1 = first.score(texts)
    model = first.trained_model("zh")
    assert model.identity.startswith("sentiment-char-ngram-logreg-zh-")
    np.testing.assert_allclose(s1, model.score(texts), atol=1e-5)
    second = SentimentAnalyzer(model_dir=tmp_path, cache_dir=tmp_path / "cache")
    monkeypatch.setattr(CharNgramSentiment, "decision", lambda *a, **k: pytest.fail("the cache was not used"))
    np.testing.assert_array_equal(second.score(texts), s1)
    # Another model (other saved files) has another identity: nothing stale is served.
    monkeypatch.undo()
    other = CharNgramSentiment(c_grid=(0.01,)).fit(texts, [1] * 4 + [0] * 4, texts, [1] * 4 + [0] * 4)
    other.save(tmp_path / "other" / "zh")
    third = SentimentAnalyzer(model_dir=tmp_path / "other", cache_dir=tmp_path / "cache")
    assert third.trained_model("zh").identity != model.identity
    np.testing.assert_allclose(third.score(texts), other.score(texts), atol=1e-5)


def test_default_model_folder_is_empty_in_tests() -> None:
    # conftest points it at an empty folder: models trained on this machine do not leak in.
    assert SentimentAnalyzer().source("zh") == "lexicon:snownlp"


# --- training through the product's function, and the real corpora -----------------------------
def test_train_sentiment_model_saves_a_model_trained_on_the_training_split(tmp_path) -> None:
    root = write_data_dir(tmp_path / "data", n_zh=400, n_en=20)
    from socialrec.represent.sentiment_models import SentimentTrainConfig

    model = train_sentiment_model("zh", data=root, model_dir=tmp_path / "models",
                                  config=SentimentTrainConfig(chinese={"c_grid": (1.0,)}), progress=False)
    assert has_saved_model("zh", tmp_path / "models")
    assert model.info_["split"] == {"train": 280, "valid": 40, "test": 80, "seed": 0}
    assert model.info_["n_train"] == 280 and model.info_["valid_auc"] > 0.95


@pytest.mark.realdata
def test_real_chinese_reviews_char_ngrams_beat_the_bar(real_data) -> None:
    split = split_labelled(load_chinese_reviews(real_data), seed=0)
    train = split.train.sample(n=4000, random_state=0)
    valid = split.valid.sample(n=1000, random_state=0)
    test = split.test.sample(n=1500, random_state=0)
    model = CharNgramSentiment(c_grid=(4.0,)).fit(train["text"].tolist(), train["label"].to_numpy(),
                                                  valid["text"].tolist(), valid["label"].to_numpy())
    p = model.predict_proba(test["text"].tolist())
    assert roc_auc(p, test["label"]) > 0.92
    assert expected_calibration_error(p, test["label"]) < 0.05


@pytest.mark.realdata
def test_real_corpora_sizes(real_data) -> None:
    en, zh = load_english_reviews(real_data), load_chinese_reviews(real_data)
    # 22,641 reviews with text minus 3 stars, duplicates merged; reviews-zh's three files overlap
    # (the hotel reviews are also in online_shopping_10_cats).
    assert 19_000 < len(en) < 20_500 and en["label"].mean() == pytest.approx(0.88, abs=0.02)
    assert 75_000 < len(zh) < 82_527 and set(zh["label"]) == {0, 1}


@pytest.mark.slow
def test_models_trained_on_this_machine_get_known_signs(tmp_path) -> None:
    """The models `socialrec sentiment-train` saved in the cache, where they exist (a clean clone
    has none: skipped)."""
    from socialrec.represent.cache import default_cache_dir

    saved = default_cache_dir() / "sentiment"
    if not (has_saved_model("en", saved) and has_saved_model("zh", saved)):
        pytest.skip(f"no trained models in {saved} (run `socialrec sentiment-train` to make them)")
    pytest.importorskip("peft")
    analyser = SentimentAnalyzer(models="trained", model_dir=saved, cache=False)
    english = ["I love this dress, it fits perfectly!", "Beautiful colour and great quality.",
               "Terrible fabric, it ripped after one wash.", "Very disappointed, I sent it back."]
    s = analyser.score(POSITIVE_ZH + NEGATIVE_ZH + english)
    np.testing.assert_array_equal(np.sign(s), [1] * 4 + [-1] * 4 + [1, 1, -1, -1])
