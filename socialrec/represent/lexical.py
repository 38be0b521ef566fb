"""Lexical features of short social-media text in Chinese and English: tokens and TF-IDF.

`tokens` segments Chinese with jieba (extra ``zh``) and splits other text into lower-cased
words; mentions (``@name``), links, Weibo's emoticon codes (``[哈哈]``), numbers, punctuation,
single Chinese characters and a short list of function words are dropped, so what remains are
the content words that name a topic. `TfidfText` fits an inverse document frequency on a
corpus and turns texts into L2-normalised sparse vectors of word and character n-gram weights,
the lexical representation of the rumour classifier (the trend keywords count `tokens` with
their own document frequencies: `retrieve.bursts.trend_keywords`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from socialrec.errors import MissingDependencyError
from socialrec.params import HasParams
from socialrec.represent.encoders import has_cjk

EXTRA = "zh"

# Mentions, links, Weibo emoticon codes ([哈哈]) and reply prefixes carry no topic.
_NOISE = re.compile(r"@[^\s:：@，,。]+|https?:\S*|\[[^\[\]]{1,8}\]|回复|回覆|转发微博|//")
_LATIN_WORD = re.compile(r"[a-z][a-z0-9'\-]+")
# Function words of Weibo Chinese that jieba keeps as words of two or more characters.
STOPWORDS_ZH = frozenset("""
我们 你们 他们 她们 它们 自己 什么 怎么 这个 那个 这些 那些 这样 那样 这么 那么 还是 就是 不是 没有 可以
一个 一下 一些 已经 现在 然后 因为 所以 但是 如果 虽然 而且 或者 还有 只是 真是 真的 不过 今天 昨天 明天
大家 知道 觉得 看看 出来 起来 这里 那里 哪里 为什么 时候 的话 之后 之前 一起 其实 可能 应该 需要 一定
还要 只有 不要 不能 不会 没什么 东西 事情 问题 一样 这种 那种 那些 如此 目前 以及 以后 以前 通过 进行
表示 认为 据说 网友 微博 转发 评论 哈哈 呵呵 嘻嘻 啊啊 吗 呢 吧
""".split())
STOPWORDS_EN = frozenset("""
the a an and or but of to in on at for with from by is are was were be been it this that these those i you he
she we they my your his her our their me him us them not no do does did have has had will would can could
just so very too rt via amp http https www com
""".split())


def _jieba() -> Any:
    try:
        import jieba  # type: ignore[import-untyped]
    except ImportError as exc:
        raise MissingDependencyError("jieba", EXTRA, "Chinese word segmentation") from exc
    jieba.setLogLevel(60)  # its dictionary-loading messages go to stderr otherwise
    return jieba


def clean(text: str) -> str:
    """The text without mentions, links, emoticon codes and reply markers."""
    return _NOISE.sub(" ", text)


def tokens(text: str) -> list[str]:
    """Content words of ``text``: jieba words (two or more characters, no digits or
    punctuation, no function words) for Chinese; lower-cased words of two or more letters
    for other text."""
    text = clean(text)
    out: list[str] = []
    if has_cjk(text):
        for w in _jieba().lcut(text, HMM=True):
            w = w.strip().lower()
            if len(w) < 2 or w in STOPWORDS_ZH or w in STOPWORDS_EN:
                continue
            if has_cjk(w):
                if not re.search(r"[\d\W_]", w):
                    out.append(w)
            elif _LATIN_WORD.fullmatch(w):
                out.append(w)
        return out
    return [w for w in _LATIN_WORD.findall(text.lower()) if w not in STOPWORDS_EN]


class TfidfText(HasParams):
    """TF-IDF vectors of word tokens (`tokens`) and, optionally, character n-grams.

    char_ngrams: (min, max) character n-gram lengths added to the words (Chinese words are
        short and segmentation errs: character n-grams make the vector robust to it); None for
        words only.
    min_df: a term must occur in at least this many fitted texts.
    max_features: keep the most frequent terms (None: all).
    sublinear_tf: 1 + log(tf) instead of raw counts.
    """

    def __init__(self, char_ngrams: tuple[int, int] | None = (2, 3), min_df: int = 2,
                 max_features: int | None = 200_000, sublinear_tf: bool = True) -> None:
        self.char_ngrams = char_ngrams
        self.min_df = min_df
        self.max_features = max_features
        self.sublinear_tf = sublinear_tf

    def _terms(self, text: str) -> list[str]:
        words = tokens(text)
        if self.char_ngrams is None:
            return words
        lo, hi = self.char_ngrams
        chars = re.sub(r"\s+", " ", clean(text)).strip()
        grams = [f"#{chars[i:i + n]}" for n in range(lo, hi + 1) for i in range(len(chars) - n + 1)
                 if " " not in chars[i:i + n]]
        return words + grams

    def fit(self, texts: Sequence[str]) -> "TfidfText":
        docs = [set(self._terms(t)) for t in texts]
        df: dict[str, int] = {}
        for d in docs:
            for term in d:
                df[term] = df.get(term, 0) + 1
        kept = [(t, c) for t, c in df.items() if c >= self.min_df]
        kept.sort(key=lambda tc: (-tc[1], tc[0]))
        if self.max_features is not None:
            kept = kept[:self.max_features]
        if not kept:
            raise ValueError(f"no term occurs in at least min_df={self.min_df} of the {len(texts)} texts; "
                             "lower min_df or fit on more text")
        self.vocabulary_ = {t: i for i, (t, _) in enumerate(sorted(kept))}
        counts = np.array([c for _, c in sorted(kept)], dtype=np.float64)
        self.idf_ = np.log((1.0 + len(texts)) / (1.0 + counts)) + 1.0
        return self

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """(len(texts), n_terms) float32 CSR, rows L2-normalised (all-zero for texts with no
        known term)."""
        if not hasattr(self, "vocabulary_"):
            from socialrec.errors import NotFittedError

            raise NotFittedError("TfidfText is not fitted: call fit(texts) before transform(texts)")
        rows, cols, vals = [], [], []
        for r, text in enumerate(texts):
            tf: dict[int, int] = {}
            for term in self._terms(text):
                j = self.vocabulary_.get(term)
                if j is not None:
                    tf[j] = tf.get(j, 0) + 1
            for j, c in tf.items():
                rows.append(r)
                cols.append(j)
                vals.append((1.0 + np.log(c)) if self.sublinear_tf else float(c))
        m = sp.csr_matrix((np.asarray(vals, dtype=np.float64) * self.idf_[np.asarray(cols, dtype=np.int64)]
                           if vals else np.zeros(0), (rows, cols)), shape=(len(texts), len(self.vocabulary_)))
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return sp.csr_matrix(sp.diags(1.0 / norms) @ m, dtype=np.float32)

    def fit_transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        return self.fit(texts).transform(texts)

    def terms(self) -> list[str]:
        """Term of each column (character n-grams start with '#')."""
        out = [""] * len(self.vocabulary_)
        for t, i in self.vocabulary_.items():
            out[i] = t
        return out
