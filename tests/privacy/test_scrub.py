"""PII scrubbing: every type in English and Chinese with known spans, validators that refuse
invalid numbers, offsets into the input, idempotence, datasets, and the `socialrec scrub` CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("phonenumbers")
pytest.importorskip("names")
pytest.importorskip("jieba")

from socialrec.errors import DataError  # noqa: E402
from socialrec.ingest.schema import build_dataset  # noqa: E402
from socialrec.privacy.scrub import (  # noqa: E402
    PII_TYPES,
    Scrubber,
    Span,
    card_valid,
    cn_id_check_digit,
    cn_id_valid,
    luhn_valid,
    scrub,
    scrub_dataset,
    url_is_personal,
)

REPO = Path(__file__).resolve().parents[2]

# (text, [(piece of personal data, type), ...]) with every piece written once in its text
CASES = [
    ("Email me at jane.doe+shop@gmail.com if it doesn't fit.", [("jane.doe+shop@gmail.com", "EMAIL")]),
    ("有问题发邮件到zhangwei_88@163.com，谢谢", [("zhangwei_88@163.com", "EMAIL")]),
    ("Call me at (415) 555-0132 after 5.", [("(415) 555-0132", "PHONE")]),
    ("Customer service 1-800-555-0199 ext. 42 was no help.", [("1-800-555-0199 ext. 42", "PHONE")]),
    ("My UK mobile is +44 7911 123456.", [("+44 7911 123456", "PHONE")]),
    ("有事打我电话13812345678", [("13812345678", "PHONE")]),
    ("客服电话+86 139-1234-5678根本打不通", [("+86 139-1234-5678", "PHONE")]),
    ("They charged my card 4111 1111 1111 1111 twice!", [("4111 1111 1111 1111", "CARD")]),
    ("信用卡号5500-0000-0000-0004被盗刷了", [("5500-0000-0000-0004", "CARD")]),
    ("Amex 3782 822463 10005 expired.", [("3782 822463 10005", "CARD")]),
    ("They asked for my SSN 123-45-6789 at the till.", [("123-45-6789", "ID")]),
    ("身份证号11010519491231002X，请核实。", [("11010519491231002X", "ID")]),
    ("Login from 203.0.113.7 was flagged.", [("203.0.113.7", "IP")]),
    ("后台显示IP地址2001:db8::8a2e:370:7334", [("2001:db8::8a2e:370:7334", "IP")]),
    ("Ship it to 1600 Pennsylvania Ave NW, Washington, DC 20500 please.",
     [("1600 Pennsylvania Ave NW, Washington, DC 20500", "ADDRESS")]),
    ("I live at 42 Maple Street Apt. 3 and it came fast.", [("42 Maple Street Apt. 3", "ADDRESS")]),
    ("我家住在北京市朝阳区建国路88号，欢迎来玩。", [("北京市朝阳区建国路88号", "ADDRESS")]),
    ("See my photos at https://www.instagram.com/jane_doe77/ for more.",
     [("https://www.instagram.com/jane_doe77/", "URL")]),
    ("我的主页https://weibo.com/u/1234567890，欢迎关注", [("https://weibo.com/u/1234567890", "URL")]),
    ("Order status: https://shop.example.com/orders?email=ann@example.org",
     [("https://shop.example.com/orders?email=ann@example.org", "URL")]),
    ("My daughter Emily Johnson loves it.", [("Emily Johnson", "PERSON")]),
    ("Hi, my name is Xochitl and I wear a size 8.", [("Xochitl", "PERSON")]),
    ("Thanks, Robert", [("Robert", "PERSON")]),
    ("我叫张伟，是老顾客了。", [("张伟", "PERSON")]),
    ("感谢快递员卢伟杰的服务！", [("卢伟杰", "PERSON")]),
    ("收件人：欧阳娜娜", [("欧阳娜娜", "PERSON")]),
]


def _expected(text: str, pieces: list[tuple[str, str]]) -> list[Span]:
    out = []
    for piece, kind in pieces:
        start = text.index(piece)
        out.append(Span(start, start + len(piece), kind))
    return sorted(out)


@pytest.fixture(scope="module")
def scrubber() -> Scrubber:
    return Scrubber()


@pytest.mark.parametrize(("text", "pieces"), CASES, ids=[f"{c[1][0][1]}-{i}" for i, c in enumerate(CASES)])
def test_known_spans_are_found_and_replaced(scrubber: Scrubber, text: str, pieces: list[tuple[str, str]]) -> None:
    result = scrubber.scrub(text)
    assert list(result.spans) == _expected(text, pieces)
    for piece, kind in pieces:
        assert piece not in result.text
        assert f"<{kind}>" in result.text


def test_every_type_is_covered_in_both_languages() -> None:
    def has_cjk(s: str) -> bool:
        return any("\u4e00" <= c <= "\u9fff" for c in s)

    for zh in (False, True):
        assert {k for text, pieces in CASES if has_cjk(text) == zh for _, k in pieces} == set(PII_TYPES)


@pytest.mark.parametrize("text", [
    "Love this dress! It runs small, so order a size up.",
    "Order #4111111111111112 shipped on 2019-03-14 for $49.99.",  # Luhn-invalid
    "My card 4111 1111 1111 1112 was declined.",  # Luhn-invalid card
    "身份证号110105194912310021已登记",  # wrong check digit (should be X)
    "身份证号110105194913310028已登记",  # month 13
    "SSN 000-12-3456 and 666-12-3456 and 912-34-5678 are never issued.",
    "Version 1.2.3 of the app; size 8; 5'6\", 135 lbs.",
    "See https://www.amazon.com/dp/B07XYZ1234 and http://t.cn/zOXAaic for the product.",
    "Tracking number 1Z999AA10123456784 arrived.",
    "Order 5514397298 arrived late.",  # ten bare digits without a phone cue
    "孙子很可爱，谢谢大家，温馨的酒店。",
    "May and June were rainy; I will wear it in Summer.",
    "Tracy Reese dresses always fit me.",
])
def test_look_alikes_are_not_flagged(scrubber: Scrubber, text: str) -> None:
    assert scrubber.scrub(text).spans == ()


def test_validators() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert card_valid("378282246310005") and not card_valid("378282246310006")
    assert not card_valid("1234567812345670")  # Luhn-valid, but no card network starts with 12
    assert cn_id_check_digit("11010519491231002") == "X"
    assert cn_id_valid("11010519491231002X") and cn_id_valid("11010519491231002x")
    assert not cn_id_valid("110105194912310021")
    assert url_is_personal("https://github.com/octocat") and not url_is_personal("https://github.com/about")
    assert not url_is_personal("https://www.example.com/products/123")


def test_offsets_map_back_to_the_input(scrubber: Scrubber) -> None:
    text = ("我叫张伟，手机13812345678。Mail jane@example.com, card 4111-1111-1111-1111, "
            "IP 10.0.0.1, SSN 123-45-6789, 身份证11010519491231002X.")
    result = scrubber.scrub(text)
    assert [s.type for s in result.spans] == ["PERSON", "PHONE", "EMAIL", "CARD", "IP", "ID", "ID"]
    # rebuilding the output from the spans gives the scrubbed text; the spans hold the originals
    rebuilt, pos = [], 0
    for s in result.spans:
        rebuilt += [text[pos:s.start], f"<{s.type}>"]
        pos = s.end
    assert "".join(rebuilt) + text[pos:] == result.text
    assert [text[s.start:s.end] for s in result.spans] == [
        "张伟", "13812345678", "jane@example.com", "4111-1111-1111-1111", "10.0.0.1", "123-45-6789",
        "11010519491231002X"]


def test_scrubbing_is_idempotent(scrubber: Scrubber) -> None:
    for text, _ in CASES:
        once = scrubber.scrub(text).text
        again = scrubber.scrub(once)
        assert again.text == once and again.spans == ()


def test_constructor_arguments(scrubber: Scrubber) -> None:
    only_email = Scrubber(["EMAIL"], placeholder="[{type}]")
    result = only_email.scrub("mail a@b.com or call (415) 555-0132")
    assert result.text == "mail [EMAIL] or call (415) 555-0132"
    assert only_email.get_params() == {"types": ["EMAIL"], "placeholder": "[{type}]", "languages": ("en", "zh")}
    with pytest.raises(ValueError, match="unknown PII type"):
        Scrubber(["EMAILS"])
    with pytest.raises(ValueError, match="placeholder"):
        Scrubber(placeholder="XXX")
    texts = [c[0] for c in CASES[:5]]
    assert scrubber.scrub_many(texts) == [scrubber.scrub(t) for t in texts]
    assert scrub(CASES[0][0]) == scrubber.scrub(CASES[0][0])


def test_scrub_dataset_replaces_texts_and_leaves_the_original() -> None:
    inter = pd.DataFrame({"user": ["u1", "u2"], "item": ["i1", "i1"]})
    texts = pd.DataFrame({"owner": ["user", "item", "user"], "id": ["u1", "i1", "u2"],
                          "field": ["post", "review", "post"],
                          "text": ["call me 13812345678", "great, from Emily Johnson", "no personal data"]})
    ds = build_dataset("pii", inter, texts=texts)
    clean = scrub_dataset(ds)
    assert list(clean.texts["text"]) == ["call me <PHONE>", "great, from <PERSON>", "no personal data"]
    assert list(ds.texts["text"])[0] == "call me 13812345678"
    assert "2 of 3 changed" in clean.notes[-1]
    users_only = scrub_dataset(ds, owners=("user",))
    assert list(users_only.texts["text"])[1] == "great, from Emily Johnson"


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "socialrec", "scrub", *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=120)


def test_cli_round_trip(tmp_path: Path) -> None:
    rows = [{"id": 1, "text": "Email jane@example.com, 我叫张伟"}, {"id": "c2", "text": "nothing here"}]
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    done = _run_cli("--input", str(src), "--output", str(dst))
    assert done.returncode == 0, done.stderr
    out = [json.loads(line) for line in dst.read_text(encoding="utf-8").splitlines()]
    assert [o["id"] for o in out] == [1, "c2"]
    assert out[0]["text"] == "Email <EMAIL>, 我叫<PERSON>"
    assert out[0]["spans"] == [[6, 22, "EMAIL"], [26, 28, "PERSON"]]
    assert rows[0]["text"][6:22] == "jane@example.com" and rows[0]["text"][26:28] == "张伟"
    assert out[1] == {"id": "c2", "text": "nothing here", "spans": []}


@pytest.mark.parametrize(("content", "message"), [
    ('{"id": 1, "text": "ok"}\n{"id": 2, "text": \n', "line 2: not valid JSON"),
    ('{"id": 1, "text": "ok"}\n\n{"text": "no id"}\n', "line 3, field 'id': missing field"),
    ('{"id": 1}\n', "line 1, field 'text': missing field"),
    ('{"id": 1, "text": 5}\n', "line 1, field 'text': expected a string"),
    ('[1, 2]\n', "line 1: expected a JSON object"),
])
def test_cli_refuses_malformed_input_and_writes_nothing(tmp_path: Path, content: str, message: str) -> None:
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(content, encoding="utf-8")
    done = _run_cli("--input", str(src), "--output", str(dst))
    assert done.returncode == 2
    assert str(src) in done.stderr and message in done.stderr
    assert not dst.exists() and list(tmp_path.iterdir()) == [src]


def test_read_texts_names_a_missing_file(tmp_path: Path) -> None:
    from socialrec.cli.scrub_cmd import read_texts

    with pytest.raises(DataError, match="absent.jsonl: cannot read the input"):
        read_texts(tmp_path / "absent.jsonl")
