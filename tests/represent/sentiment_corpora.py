"""Small labelled review corpora whose right answer is known: reviews built from positive or negative
phrases, written in the shared data's file formats (for the loaders and the CLI)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd

ZH_POS = ["很好", "非常喜欢", "满意", "强烈推荐", "不错", "很棒", "好吃", "很快", "值得购买", "服务热情"]
ZH_NEG = ["太差了", "非常失望", "后悔", "太慢了", "破了", "难吃", "浪费钱", "不推荐", "质量差", "态度恶劣"]
ZH_TOPIC = ["这个商品", "酒店", "外卖", "这本书", "快递", "手机", "衣服", "房间", "味道", "价格"]
EN_POS = ["I love it", "wonderful", "great quality", "very happy", "beautiful and comfortable", "highly recommend",
          "perfect fit", "excellent"]
EN_NEG = ["I hate it", "terrible", "poor quality", "very disappointed", "cheap and ugly", "returned it",
          "awful fit", "worst purchase"]
EN_TOPIC = ["this dress", "the fabric", "this top", "the color", "these pants", "the sweater"]


def zh_reviews(n: int, seed: int) -> pd.DataFrame:
    """``n`` Chinese reviews, label 1 built from ZH_POS phrases, label 0 from ZH_NEG."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        label = int(rng.integers(2))
        words = ZH_POS if label else ZH_NEG
        text = rng.choice(ZH_TOPIC) + "，" + "，".join(rng.choice(words, size=2, replace=False)) + "。"
        rows.append((text + str(rng.integers(1000)), label))  # a number keeps texts distinct
    return pd.DataFrame(rows, columns=["review", "label"])


def en_reviews(n: int, seed: int) -> pd.DataFrame:
    """``n`` English reviews with 1-5 stars: 4-5 built from EN_POS, 1-2 from EN_NEG, 3 mixed."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        stars = int(rng.integers(1, 6))
        if stars == 3:
            phrases = [rng.choice(EN_POS), rng.choice(EN_NEG)]
        else:
            phrases = list(rng.choice(EN_POS if stars >= 4 else EN_NEG, size=2, replace=False))
        body = f"{rng.choice(EN_TOPIC).capitalize()}: {phrases[0]}, {phrases[1]}. Order {i}."
        rows.append(("" if i % 3 else phrases[0].capitalize(), body, stars))
    return pd.DataFrame(rows, columns=["Title", "Review Text", "Rating"])


def write_data_dir(root: Path, *, n_zh: int = 300, n_en: int = 200, seed: int = 0) -> Path:
    """``root`` laid out like the shared data directory's reviews-zh/ and reviews-en-clothing/."""
    zh = root / "reviews-zh"
    zh.mkdir(parents=True, exist_ok=True)
    frame_zh = zh_reviews(n_zh, seed)
    parts = [frame_zh.iloc[i::3] for i in range(3)]
    names = ("online_shopping_10_cats.csv.gz", "waimai_10k.csv.gz", "ChnSentiCorp_htl_all.csv.gz")
    for name, part in zip(names, parts):
        frame = part[["label", "review"]]
        if name.startswith("online"):
            frame = frame.assign(cat="书籍")[["cat", "label", "review"]]
        with gzip.open(zh / name, "wt", encoding="utf-8") as fh:
            frame.to_csv(fh, index=False)
    en = root / "reviews-en-clothing"
    en.mkdir(parents=True, exist_ok=True)
    frame = en_reviews(n_en, seed + 1)
    frame.insert(0, "Clothing ID", 1)
    with gzip.open(en / "womens_clothing_ecommerce_reviews.csv.gz", "wt", encoding="utf-8") as fh:
        frame.to_csv(fh)
    return root
