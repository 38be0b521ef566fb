"""PII scrubbing: precision and recall per type on real English and Chinese user texts.

The labelled set is built from real texts in the data directory: English reviews
(reviews-en-clothing, amazon-fashion-reviews) and Chinese comments (weibo-ced users' own texts,
reviews-zh shopping and take-away reviews). Into each chosen text the script inserts zero, one or
two sentences holding personal data of every type, in both languages, generated with Faker
(names, emails, US SSNs, Chinese resident ids, cards, IPs, US street addresses) and by hand-written
generators (international and Chinese phone numbers, Chinese addresses, personal URLs), at a
sentence boundary of the real text. Sentences with look-alikes that are not personal data (order
numbers, prices, dates, Luhn-invalid card-like numbers, product URLs) are inserted too, so that
precision is measured on hard negatives and not only on clean text. Person names that occur
naturally in the real texts were hand-labelled (benchmarks/scrub_natural_labels.json: every
candidate a broad finder proposed in the test sample, checked by hand).

Texts and templates are split in two: the dev portion (texts whose sha1 is even, the even-numbered
templates, seed 1) was used to build the rules; the numbers reported are on the test portion (the
other texts, the other templates, seed 2), which the rules were not tuned on.

Matching: a labelled span counts as found when spans of the same type cover at least 80% of its
characters; a predicted span is correct when at least half of its characters lie in labelled
spans of its type.

    PYTHONPATH=. .venv/bin/python benchmarks/scrub.py [--portion test] [--per-language 1000]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import re
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe  # noqa: E402
from _readme import replace_section  # noqa: E402

from socialrec.ingest.datasets import data_dir  # noqa: E402
from socialrec.privacy.scrub import PII_TYPES, Scrubber  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "scrub.json"
NATURAL = Path(__file__).resolve().parent / "scrub_natural_labels.json"

# ----------------------------------------------------------------------------- real texts


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def portion_of(text: str) -> str:
    return "dev" if int(_sha(text)[-1], 16) % 2 == 0 else "test"


def load_texts(root: Path) -> dict[str, list[tuple[str, str]]]:
    """(source, text) of the real texts, per language, each text once, short ones left out."""
    en: list[tuple[str, str]] = []
    df = pd.read_csv(root / "reviews-en-clothing" / "womens_clothing_ecommerce_reviews.csv.gz")
    en += [("reviews-en-clothing", t) for t in df["Review Text"].dropna().astype(str)]
    raw = (root / "amazon-fashion-reviews" / "AMAZON_FASHION_5.json").read_text()
    decoder, pos = json.JSONDecoder(), 0
    while pos < len(raw):
        while pos < len(raw) and raw[pos].isspace():
            pos += 1
        if pos >= len(raw):
            break
        obj, pos = decoder.raw_decode(raw, pos)
        if obj.get("reviewText"):
            en.append(("amazon-fashion-reviews", str(obj["reviewText"])))
    zh: list[tuple[str, str]] = []
    inter = pd.read_csv(root / "weibo-ced" / "interactions.tsv", sep="\t", usecols=["text"])
    zh += [("weibo-ced", t) for t in inter["text"].dropna().astype(str)]
    for name in ("online_shopping_10_cats.csv.gz", "waimai_10k.csv.gz"):
        with gzip.open(root / "reviews-zh" / name, "rt", encoding="utf-8") as fh:
            z = pd.read_csv(fh)
        zh += [("reviews-zh", t) for t in z["review"].dropna().astype(str)]
    out = {}
    for lang, rows in (("en", en), ("zh", zh)):
        seen: set[str] = set()
        keep = []
        for src, t in rows:
            t = t.strip()
            if len(t) >= 8 and t not in seen:
                seen.add(t)
                keep.append((src, t))
        out[lang] = keep
    return out


# ----------------------------------------------------------------------------- generators

ZH_PROVINCES = ["广东省", "浙江省", "江苏省", "四川省", "湖北省", "山东省", "河南省", "福建省", "湖南省", "陕西省"]
ZH_CITIES = ["广州市", "深圳市", "杭州市", "南京市", "成都市", "武汉市", "济南市", "郑州市", "厦门市", "长沙市", "西安市",
             "北京市", "上海市", "天津市", "重庆市", "苏州市", "宁波市", "青岛市"]
ZH_DISTRICTS = ["天河区", "南山区", "西湖区", "鼓楼区", "武侯区", "江汉区", "历下区", "金水区", "思明区", "岳麓区",
                "雁塔区", "朝阳区", "浦东新区", "和平区", "渝中区", "姑苏区", "海曙区", "市南区", "余杭区", "昌平区"]
ZH_ROADS = ["中山", "人民", "解放", "建设", "和平", "长江", "黄河", "文化", "科技", "学府", "滨江", "新华", "东风", "光明",
            "胜利", "青年", "复兴", "振兴", "幸福", "金桥"]
ZH_ROAD_KIND = ["路", "路", "大道", "街", "大街"]
ZH_ESTATES = ["阳光花园", "碧桂园", "万科城", "金色家园", "翠湖小区", "锦绣新村", "东方大厦", "世纪公寓"]


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _group(number: str, sizes: list[int], sep: str) -> str:
    parts, pos = [], 0
    for s in sizes:
        parts.append(number[pos:pos + s])
        pos += s
    if pos < len(number):
        parts.append(number[pos:])
    return sep.join(p for p in parts if p)


class Generator:
    """Personal data of every type, deterministic for a seed."""

    def __init__(self, seed: int) -> None:
        from faker import Faker

        self.rng = random.Random(seed)
        self.fake = {loc: Faker(loc) for loc in ("en_US", "en_GB", "en_IN", "zh_CN")}
        for i, f in enumerate(self.fake.values()):
            f.seed_instance(seed * 100 + i)

    def en_name(self) -> str:
        loc = self.rng.choices(["en_US", "en_GB", "en_IN"], [0.7, 0.15, 0.15])[0]
        f = self.fake[loc]
        return f"{f.first_name()} {f.last_name()}" if self.rng.random() < 0.7 else f.first_name()

    def zh_name(self) -> str:
        return self.fake["zh_CN"].name()

    def email(self, lang: str) -> str:
        if lang == "zh" and self.rng.random() < 0.5:
            return f"{_digits(self.rng, self.rng.randint(6, 10)).lstrip('0') or '1'}@qq.com"
        f = self.fake["en_US"]
        return self.rng.choice([f.free_email, f.company_email, f.email])()

    def phone(self, lang: str) -> str:
        r = self.rng.random()
        if lang == "zh" and r < 0.7:
            n = self.rng.choice("3456789")
            number = "1" + n + _digits(self.rng, 9)
            style = self.rng.randrange(4)
            if style == 0:
                return number
            if style == 1:
                return _group(number, [3, 4, 4], "-")
            if style == 2:
                return "+86 " + _group(number, [3, 4, 4], " ")
            return _group(number, [3, 4, 4], " ")
        if lang == "en" and r < 0.6:
            return self.fake["en_US"].phone_number()
        cc, first, length = self.rng.choice([("44", "7", 10), ("49", "15", 11), ("33", "6", 9), ("91", "9", 10),
                                             ("61", "4", 9), ("81", "90", 10), ("86", "13", 11), ("1", "415", 10)])
        national = first + _digits(self.rng, length - len(first))
        return f"+{cc} " + _group(national, [3, 3, 4] if length == 10 else [3, 4, 4], self.rng.choice([" ", "-", ""]))

    def card(self) -> str:
        kind = self.rng.choice(["visa", "mastercard", "amex", "discover", "jcb", "visa16", "mastercard"])
        number = self.fake["en_US"].credit_card_number(card_type=kind)
        sep = self.rng.choice(["", " ", "-", " "])
        sizes = [4, 6, 5] if len(number) == 15 else [4, 4, 4, 4, 3]
        return _group(number, sizes, sep) if sep else number

    def card_invalid(self) -> str:
        """A Luhn-invalid card-like number (a negative)."""
        number = self.fake["en_US"].credit_card_number(card_type="visa16")
        last = (int(number[-1]) + self.rng.randint(1, 9)) % 10
        return _group(number[:-1] + str(last), [4, 4, 4, 4], self.rng.choice([" ", "-"]))

    def id_number(self, lang: str) -> str:
        if lang == "zh":
            return self.fake["zh_CN"].ssn()
        ssn = self.fake["en_US"].ssn()
        return ssn if self.rng.random() < 0.85 else ssn.replace("-", " ")

    def id_invalid(self) -> str:
        good = self.fake["zh_CN"].ssn()
        wrong = self.rng.choice([c for c in "0123456789X" if c != good[-1]])
        return good[:-1] + wrong

    def ip(self) -> str:
        f = self.fake["en_US"]
        return f.ipv4_public() if self.rng.random() < 0.7 else f.ipv6()

    def address(self, lang: str) -> str:
        if lang == "zh":
            rng = self.rng
            parts = []
            if rng.random() < 0.4:
                parts.append(rng.choice(ZH_PROVINCES))
            parts.append(rng.choice(ZH_CITIES))
            if rng.random() < 0.8:
                parts.append(rng.choice(ZH_DISTRICTS))
            parts.append(f"{rng.choice(ZH_ROADS)}{rng.choice(ZH_ROAD_KIND)}{rng.randint(1, 999)}号")
            if rng.random() < 0.5:
                parts.append(rng.choice(ZH_ESTATES))
            if rng.random() < 0.6:
                parts.append(f"{rng.randint(1, 30)}栋{rng.randint(1, 6)}单元{rng.randint(101, 2808)}室")
            return "".join(parts)
        f = self.fake["en_US"]
        street = f.street_address()
        if self.rng.random() < 0.5:
            street += f", {f.city()}, {f.state_abbr()} {f.zipcode()}"
        return street

    def url(self, lang: str) -> str:
        f = self.fake["en_US"]
        user = f.user_name()
        uid = _digits(self.rng, 10).lstrip("0") or "1"
        choices = [f"https://www.facebook.com/{user}", f"https://www.instagram.com/{user}/",
                   f"https://github.com/{user}", f"https://www.linkedin.com/in/{user}-{_digits(self.rng, 4)}",
                   f"https://weibo.com/u/{uid}", f"http://weibo.com/{uid}", f"https://www.tiktok.com/@{user}",
                   f"https://shop.{f.domain_name()}/account/orders?email={f.free_email()}",
                   f"https://{f.domain_name()}/profile?id={uid}", f"https://{f.domain_name()}/users/{user}",
                   f"https://www.douban.com/people/{uid}/", f"https://www.zhihu.com/people/{user}"]
        return self.rng.choice(choices)


# ----------------------------------------------------------------------------- templates
# {X} is replaced by generated data of type X; {NEG_*} by look-alikes that are not personal data.
TEMPLATES: dict[str, dict[str, list[str]]] = {
    "en": {
        "EMAIL": ["Email me at {EMAIL} if you want to swap sizes.", "Questions? {EMAIL}",
                  "I contacted the seller ({EMAIL}) and got a refund.", "my email is {EMAIL} btw",
                  "Send pics to {EMAIL}!", "Reach me on {EMAIL} for the measurements."],
        "PHONE": ["Call me at {PHONE} if you want it.", "Customer service ({PHONE}) was super helpful.",
                  "text me {PHONE}", "Their number is {PHONE}, ask for returns.",
                  "My cell: {PHONE}.", "I called {PHONE} twice before anyone answered."],
        "CARD": ["They charged my card {CARD} twice!", "Paid with {CARD} and never got it.",
                 "Card number {CARD} was declined for no reason.", "used my visa {CARD} at checkout",
                 "my card ending... actually the full number {CARD} shows on the receipt", "Billing card: {CARD}"],
        "ID": ["They asked for my SSN {ID} to open the store card, seriously?", "SSN: {ID}",
               "I had to give my social security number {ID} for the credit check.", "my ssn is {ID} lol",
               "Why would a shop need {ID} (my SSN)?", "Social security no. {ID} was on the form."],
        "IP": ["My order was blocked from IP {IP} for some reason.", "The site logged my IP as {IP}.",
               "login from {IP} was flagged", "Support said my address {IP} was banned.",
               "Connecting from {IP} the checkout kept failing.", "IP {IP} again??"],
        "ADDRESS": ["Ship it to {ADDRESS} please.", "I live at {ADDRESS} and it arrived in 2 days.",
                    "Returned it to the store at {ADDRESS}.", "My old address ({ADDRESS}) was used by mistake.",
                    "Delivered to {ADDRESS} instead of my office.", "It came to {ADDRESS}, wrong house."],
        "URL": ["See my photos at {URL}", "Follow me {URL} for more try-ons!", "My review with pics: {URL}",
                "Check {URL} if you want to buy mine.", "profile here {URL}", "I posted it on {URL} too."],
        "PERSON": ["My daughter {PERSON} loves it.", "Thanks to {PERSON} at the store for helping me.",
                   "Bought this for my wife {PERSON}.", "The sales lady, {PERSON}, was so nice.",
                   "{PERSON} said it runs small and she was right.", "Gift from my friend {PERSON}.",
                   "Hi, I'm {PERSON} and I wear a size 8.", "My sister {PERSON} got the blue one."],
        "NEG": ["Order #{NEG_ORDER} arrived on {NEG_DATE}.", "Paid ${NEG_PRICE} for it, worth it.",
                "The tag said style {NEG_ORDER}.", "Tracking number {NEG_TRACK}.",
                "Got it on sale for {NEG_PRICE} dollars at https://www.amazon.com/dp/{NEG_ASIN}.",
                "Size 8, 5'6\", 135 lbs, 34C.", "My old card {NEG_CARD} was replaced.",
                "Version 2.1.3 of the app kept crashing.", "Bought it on 12/25/2019 from the outlet.",
                "Reference {NEG_CNID} on the invoice."],
    },
    "zh": {
        "EMAIL": ["有问题发邮件到{EMAIL}", "我的邮箱{EMAIL}，欢迎交流。", "联系邮箱：{EMAIL}", "发到{EMAIL}就行",
                  "卖家邮箱是{EMAIL}，一直不回。", "资料请发{EMAIL}谢谢"],
        "PHONE": ["有事打我电话{PHONE}", "客服电话{PHONE}根本打不通。", "我的手机号是{PHONE}，随时联系。",
                  "加微信或者打{PHONE}", "快递员电话：{PHONE}", "联系方式{PHONE}，非诚勿扰。"],
        "CARD": ["用{CARD}这张卡付的款，结果扣了两次。", "信用卡号{CARD}被盗刷了！", "银行卡{CARD}退款还没到账。",
                 "我的卡号是{CARD}", "付款卡：{CARD}", "绑定的卡{CARD}被冻结了"],
        "ID": ["身份证号{ID}，请核实。", "我的身份证{ID}被人冒用了", "登记的时候要填身份证号码{ID}", "身份证：{ID}",
               "拿着{ID}这个身份证去办的。", "实名认证用的是{ID}"],
        "IP": ["登录IP是{IP}，不是我本人。", "后台显示IP地址{IP}", "从{IP}登录的", "我的IP {IP} 被封了",
               "异常登录：{IP}", "服务器地址{IP}连不上"],
        "ADDRESS": ["收货地址：{ADDRESS}", "我家住在{ADDRESS}，欢迎来玩。", "寄到{ADDRESS}", "地址是{ADDRESS}，别送错了。",
                    "店在{ADDRESS}附近", "送到{ADDRESS}就行"],
        "URL": ["我的主页{URL}", "关注我{URL}", "详情见{URL}", "照片在这里：{URL}", "我在{URL}也发了", "链接{URL}"],
        "PERSON": ["我叫{PERSON}，是老顾客了。", "感谢快递员{PERSON}！", "我朋友{PERSON}推荐的。", "收件人：{PERSON}",
                   "{PERSON}说这家很好吃。", "找{PERSON}办的手续", "我同事{PERSON}也买了", "联系人{PERSON}"],
        "NEG": ["订单号{NEG_ORDER}，什么时候发货？", "花了{NEG_PRICE}元，值了。", "{NEG_DATE}下的单", "快递单号{NEG_TRACK}",
                "商品编号{NEG_ORDER}", "价格{NEG_PRICE}，还送了赠品", "旧卡{NEG_CARD}已经注销", "编号{NEG_CNID}"],
    },
}


def template_split(templates: list[str], portion: str) -> list[str]:
    return templates[0::2] if portion == "dev" else templates[1::2]


def fill(template: str, lang: str, gen: Generator) -> tuple[str, list[tuple[int, int, str]]]:
    """The sentence with generated values, and the personal-data spans in it."""
    out, spans, pos = [], [], 0
    for m in re.finditer(r"\{(\w+)\}", template):
        out.append(template[pos:m.start()])
        key = m.group(1)
        start = sum(map(len, out))
        if key == "PERSON":
            value = gen.en_name() if lang == "en" else gen.zh_name()
        elif key in ("EMAIL", "PHONE", "ID", "ADDRESS", "URL"):
            value = getattr(gen, {"ID": "id_number"}.get(key, key.lower()))(lang)
        elif key == "CARD":
            value = gen.card()
        elif key == "IP":
            value = gen.ip()
        elif key == "NEG_ORDER":
            value = _digits(gen.rng, gen.rng.randint(8, 14))
        elif key == "NEG_DATE":
            value = gen.rng.choice(["2019-03-14", "3/14/2019", "2020年5月1日", "10月12日"])
        elif key == "NEG_PRICE":
            value = f"{gen.rng.randint(5, 999)}.{gen.rng.randint(0, 99):02d}"
        elif key == "NEG_TRACK":
            value = gen.rng.choice(["1Z", "SF", "YT", "JD"]) + _digits(gen.rng, 12)
        elif key == "NEG_ASIN":
            value = "B0" + "".join(gen.rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(8))
        elif key == "NEG_CARD":
            value = gen.card_invalid()
        elif key == "NEG_CNID":
            value = gen.id_invalid()
        else:
            raise KeyError(key)
        out.append(value)
        if not key.startswith("NEG_"):
            spans.append((start, start + len(value), key))
        pos = m.end()
    out.append(template[pos:])
    return "".join(out), spans


def _boundaries(text: str, lang: str) -> list[int]:
    rx = r"(?<=[.!?])\s+" if lang == "en" else r"(?<=[。！？!?~])"
    cuts = [0] + [m.end() for m in re.finditer(rx, text)] + [len(text)]
    return sorted(set(cuts))


def build_set(texts: dict[str, list[tuple[str, str]]], portion: str, seed: int, per_language: int,
              natural: dict[str, list[list[Any]]]) -> list[dict[str, Any]]:
    """The labelled examples of a portion: real texts with 0-2 inserted sentences."""
    gen = Generator(seed)
    rng = random.Random(seed)
    examples = []
    for lang in ("en", "zh"):
        pool = [(s, t) for s, t in texts[lang] if portion_of(t) == portion and len(t) <= 600]
        chosen = rng.sample(pool, per_language)
        kinds = list(PII_TYPES)
        for k, (source, text) in enumerate(chosen):
            key = _sha(text)[:16]
            spans: list[tuple[int, int, str]] = [(a, b, c) for a, b, c in natural.get(key, [])]
            n_insert = rng.choices([0, 1, 2], [0.15, 0.6, 0.25])[0]
            for _ in range(n_insert):
                kind = kinds[k % len(kinds)] if rng.random() < 0.85 else "NEG"
                k += 1
                template = rng.choice(template_split(TEMPLATES[lang][kind], portion))
                sentence, sent_spans = fill(template, lang, gen)
                if lang == "zh" and sentence[-1] not in "。！？!?~，":
                    sentence += "。"
                if lang == "en" and sentence[-1] not in ".!?":
                    sentence += " ."[rng.randrange(2):] if sentence.endswith(tuple("0123456789")) else ""
                at = rng.choice([b for b in _boundaries(text, lang) if not any(a < b < e for a, e, _ in spans)])
                sep_before = " " if lang == "en" and at > 0 and not text[at - 1].isspace() else ""
                sep_after = " " if lang == "en" and at < len(text) and not text[at].isspace() else ""
                insert = sep_before + sentence + sep_after
                shift = len(insert)
                spans = [(a + shift if a >= at else a, b + shift if a >= at else b, c) for a, b, c in spans]
                offset = at + len(sep_before)
                spans += [(offset + a, offset + b, c) for a, b, c in sent_spans]
                text = text[:at] + insert + text[at:]
            examples.append({"id": f"{portion}-{lang}-{len(examples)}", "lang": lang, "source": source, "key": key,
                             "text": text, "spans": sorted(spans)})
    return examples


# ----------------------------------------------------------------------------- scoring


def _covered(span: tuple[int, int, str], others: list[tuple[int, int, str]]) -> int:
    a, b, t = span
    chars = set()
    for x, y, u in others:
        if u == t and x < b and y > a:
            chars.update(range(max(a, x), min(b, y)))
    return len(chars)


def score(examples: list[dict[str, Any]], predictions: list[list[tuple[int, int, str]]]) -> dict[str, Any]:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"gold": 0, "found": 0, "pred": 0, "correct": 0})
    misses, false_alarms = [], []
    for ex, pred in zip(examples, predictions):
        gold = [tuple(s) for s in ex["spans"]]
        for g in gold:
            c = counts[g[2]]
            c["gold"] += 1
            if _covered(g, pred) >= 0.8 * (g[1] - g[0]):
                c["found"] += 1
            else:
                misses.append({"id": ex["id"], "type": g[2], "text": ex["text"][g[0]:g[1]]})
        for p in pred:
            c = counts[p[2]]
            c["pred"] += 1
            if _covered(p, gold) >= 0.5 * (p[1] - p[0]):
                c["correct"] += 1
            else:
                false_alarms.append({"id": ex["id"], "type": p[2], "text": ex["text"][p[0]:p[1]]})
    per_type = {}
    total = {"gold": 0, "found": 0, "pred": 0, "correct": 0}
    for t in PII_TYPES:
        c = counts[t]
        for key in total:
            total[key] += c[key]
        per_type[t] = {**c, "recall": c["found"] / c["gold"] if c["gold"] else None,
                       "precision": c["correct"] / c["pred"] if c["pred"] else None}
    overall = {**total, "recall": total["found"] / total["gold"], "precision": total["correct"] / max(1, total["pred"])}
    return {"per_type": per_type, "overall": overall, "misses": misses, "false_alarms": false_alarms}


def time_scrubber(scrubber: Scrubber, texts: list[str], repeats: int = 3) -> dict[str, float]:
    scrubber.scrub_many(texts[:50])  # load the gazetteer and jieba's dictionary
    best = float("inf")
    per_text: list[float] = []
    for _ in range(repeats):
        times = []
        for t in texts:
            t0 = time.perf_counter()
            scrubber.scrub(t)
            times.append(time.perf_counter() - t0)
        if sum(times) < best:
            best, per_text = sum(times), times
    per_text.sort()
    return {"ms_mean": 1000 * best / len(texts), "ms_p50": 1000 * per_text[len(per_text) // 2],
            "ms_p99": 1000 * per_text[int(len(per_text) * 0.99)], "mean_chars": sum(map(len, texts)) / len(texts)}


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--portion", choices=["dev", "test"], default="test")
    parser.add_argument("--per-language", type=int, default=1000)
    parser.add_argument("--show", type=int, default=40, help="print this many misses and false alarms")
    parser.add_argument("--no-write", action="store_true", help="print only (for dev runs)")
    args = parser.parse_args()
    root = data_dir(args.data)
    t0 = time.perf_counter()
    texts = load_texts(root)
    natural = json.loads(NATURAL.read_text())["labels"] if NATURAL.exists() else {}
    seed = 1 if args.portion == "dev" else 2
    examples = build_set(texts, args.portion, seed, args.per_language, natural)
    print(f"{len(examples)} examples ({args.portion}, seed {seed}) built in {time.perf_counter() - t0:.1f}s")
    scrubber = Scrubber()
    predictions = [[tuple(s) for s in r.spans] for r in scrubber.scrub_many(ex["text"] for ex in examples)]
    doc: dict[str, Any] = {"portion": args.portion, "seed": seed, "examples": len(examples),
                           "scrubber": scrubber.get_params(), "machine": describe()}
    by_lang = {}
    for lang in ("en", "zh"):
        idx = [i for i, ex in enumerate(examples) if ex["lang"] == lang]
        by_lang[lang] = score([examples[i] for i in idx], [predictions[i] for i in idx])
    result = score(examples, predictions)
    timing = {}
    for lang in ("en", "zh"):
        real = [t for _, t in texts[lang] if portion_of(t) == args.portion][:2000]
        timing[f"real-{lang}"] = time_scrubber(scrubber, real)
    timing["labelled-set"] = time_scrubber(scrubber, [ex["text"] for ex in examples])
    doc.update({"per_type": result["per_type"], "overall": result["overall"],
                "per_language": {k: {"per_type": v["per_type"], "overall": v["overall"]} for k, v in by_lang.items()},
                "timing": timing, "misses": result["misses"], "false_alarms": result["false_alarms"]})
    lines = ["| type | labelled | recall | precision | recall en | recall zh | precision en | precision zh |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for t in (*PII_TYPES, "overall"):
        r = result["overall"] if t == "overall" else result["per_type"][t]
        e = by_lang["en"]["overall"] if t == "overall" else by_lang["en"]["per_type"][t]
        z = by_lang["zh"]["overall"] if t == "overall" else by_lang["zh"]["per_type"][t]
        lines.append(f"| {t} | {r['gold']} | {_fmt(r['recall'])} | {_fmt(r['precision'])} | {_fmt(e['recall'])} | "
                     f"{_fmt(z['recall'])} | {_fmt(e['precision'])} | {_fmt(z['precision'])} |")
    lines += ["", "| texts | mean chars | ms mean | ms p50 | ms p99 |", "|---|---:|---:|---:|---:|"]
    for name, tm in timing.items():
        lines.append(f"| {name} | {tm['mean_chars']:.0f} | {tm['ms_mean']:.3f} | {tm['ms_p50']:.3f} | {tm['ms_p99']:.3f} |")
    table = "\n".join(lines)
    print(table)
    for kind in ("misses", "false_alarms"):
        print(f"\n{kind} ({len(result[kind])}):")
        for m in result[kind][: args.show]:
            print(f"  {m['type']:<8} {m['text']!r}  [{m['id']}]")
    if args.no_write:
        return
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(doc, indent=2, ensure_ascii=False))
    block = (
        f"`benchmarks/scrub.py` on the {args.portion} portion ({len(examples):,} real texts, {args.per_language:,} "
        f"English reviews and {args.per_language:,} Chinese comments and reviews, seed {seed}; rules were built on "
        f"the dev portion, other texts and templates). Personal data inserted in real texts plus hand-labelled "
        f"names that occur in them; a span is found when >= 80% of its characters are covered by the same type. "
        f"Machine: {describe()}. Raw numbers, every miss and false alarm: `results/scrub.json`.\n\n" + table
    )
    replace_section("SCRUB", "PII scrubbing (benchmarks/scrub.py)", block)
    print(f"results: {RESULTS}")


if __name__ == "__main__":
    main()
