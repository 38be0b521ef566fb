"""Personal data is scrubbed as user text enters the service (issue 24, item 1), through HTTP:
a comment with an email, a phone, a Luhn-valid card, a Chinese mobile and resident id and a
name, and a profile with an email in its bio, are exported with placeholders; no file of the
state directory (event store and its WAL, log, saved models, embedding cache) holds a raw value
or the hash the embedding cache would key it by, with and without SOCIALREC_DATA_KEY; a rejected
body is echoed scrubbed. With ``scrub_pii`` off the same checks find the raw values (the test can
fail)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serve.conftest import Served

pytest.importorskip("cryptography")
pytest.importorskip("jieba")
pytest.importorskip("names")
pytest.importorskip("phonenumbers")

EMAIL = "jane.doe@example.com"
PHONE = "+1 415-555-0132"
CARD = "4111 1111 1111 1111"  # Luhn-valid (a Visa test number)
CN_MOBILE = "13812345678"
CN_ID = "11010519491231002X"  # with its check digit
NAME = "Margaret Thompson"
COMMENT = (f"Great album! Call me at {PHONE} or mail {EMAIL}, card {CARD}, my name is {NAME}. "
           f"手机{CN_MOBILE} 身份证{CN_ID}")
SCRUBBED = ("Great album! Call me at <PHONE> or mail <EMAIL>, card <CARD>, my name is <PERSON>. "
            "手机<PHONE> 身份证<ID>")
BIO_EMAIL = "zed.cipher@example.net"
BIO = f"jazz and vinyl; write to {BIO_EMAIL}"
PROFILE_NAME = "Zed Cipher"  # outside the name gazetteer: only the field tells it is a name
RAW = [EMAIL, PHONE, "415-555-0132", CARD, "4111111111111111", CN_MOBILE, CN_ID, NAME, BIO_EMAIL, PROFILE_NAME,
       COMMENT, BIO]


def eid() -> str:
    return uuid.uuid4().hex


def _fixture(tmp_path_factory: pytest.TempPathFactory, name: str, encrypted: bool, **overrides: object) -> Served:
    from cryptography.fernet import Fernet

    environ = {"SOCIALREC_DATA_KEY": Fernet.generate_key().decode()} if encrypted else {}
    return Served(tmp_path_factory.mktemp(name), service_options={"environ": environ}, **overrides)


@pytest.fixture(scope="module", params=["encrypted", "clear"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    s = _fixture(tmp_path_factory, f"pii-{request.param}", request.param == "encrypted")
    yield s
    s.close()


@pytest.fixture(scope="module")
def unscrubbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    s = _fixture(tmp_path_factory, "pii-off", False, scrub_pii=False)
    yield s
    s.close()


def _encodings(text: str) -> list[bytes]:
    return [text.encode(enc) for enc in ("utf-8", "utf-16-le", "utf-32-le")] + [hashlib.sha1(text.encode()).digest()]


def leaks(state: Path, values: list[str]) -> list[tuple[str, str]]:
    """(file, value) for each raw value found in any file under ``state``: as UTF-8, UTF-16 or
    UTF-32, or as the sha1 the embedding cache keys texts by."""
    files = [p for p in state.rglob("*") if p.is_file()]
    assert any(p.name == "events.sqlite3" for p in files) and any(p.name == "serve.log" for p in files)
    found = []
    for p in files:
        data = p.read_bytes()
        found += [(p.name, v) for v in values if any(b in data for b in _encodings(v))]
    return found


def _ingest(s: Served, uid: str) -> dict:
    """A profile and a comment full of personal data, a rejected event full of it too, a retrain
    (saved model, embeddings); returns the user's export."""
    c, h = s.client, s.admin
    assert c.put(f"/v1/users/{uid}", json={"name": PROFILE_NAME, "text": BIO}, headers=h).status_code == 200
    s.post([{"event_id": eid(), "user_id": uid, "kind": "comment", "item_id": "item_0005", "text": COMMENT},
            {"event_id": eid(), "user_id": uid, "kind": "like", "item_id": "item_0006"}])
    # rejected: the first without an item (echoed whole), the second too long (echoed cut, after scrubbing)
    bad = [{"event_id": eid(), "user_id": uid, "kind": "comment", "text": COMMENT},
           {"event_id": eid(), "user_id": uid, "kind": "comment", "item_id": "item_0007", "text": COMMENT + " x" * 2500}]
    r = c.post("/v1/events", json={"events": bad}, headers=h)
    assert r.status_code == 422 and "missing" in r.text and "string_too_long" in r.text  # says why
    s.rejected_body = r.text  # type: ignore[attr-defined]
    assert c.post("/v1/admin/retrain?wait=true", headers=h).json()["status"] == "done"
    r = c.get(f"/v1/users/{uid}/export", headers=h)
    assert r.status_code == 200, r.text
    return r.json()


def test_personal_data_is_scrubbed_before_it_is_stored_logged_embedded_or_shown(served: Served) -> None:
    uid = f"pii-user-{eid()[:6]}"
    doc = _ingest(served, uid)
    # (a) the export shows the placeholders, not the values
    assert [e["text"] for e in doc["events"] if e["kind"] == "comment"] == [SCRUBBED]
    assert doc["profile"]["text"] == "jazz and vinyl; write to <EMAIL>" and doc["profile"]["name"] == "<PERSON>"
    assert not [v for v in RAW if v in str(doc)]
    # ... as do the store's rows (decrypted) and the 422 answer to the rejected event
    assert [e.text for e in served.service.store.events(user_id=uid) if e.text] == [SCRUBBED]
    assert not [v for v in RAW if v in served.rejected_body] and "<EMAIL>" in served.rejected_body  # type: ignore[attr-defined]
    # (b) no file holds a raw value: event store and WAL, log, saved versions, embedding cache
    state = Path(served.settings.state_dir)
    assert leaks(state, RAW) == []
    raw_db = b"".join(p.read_bytes() for p in state.glob("events.sqlite3*"))
    assert (b"<EMAIL>" in raw_db) is (not served.service.store.encrypted)  # the right file was read
    # (c) what a version may embed: the served dataset's texts hold none of them either
    texts = " ".join(served.service.model.dataset.texts["text"].astype(str))
    assert not [v for v in RAW if v in texts]
    # readiness says so; the metrics count what was replaced, by type only
    assert served.client.get("/readyz").json()["text_scrubbed"] is True
    metrics = served.client.get("/metrics", headers=served.admin).text
    assert 'socialrec_pii_scrubbed_total{type="CARD"}' in metrics
    # erasure then removes the scrubbed text too
    assert served.client.delete(f"/v1/users/{uid}", headers=served.admin).status_code == 200
    assert leaks(state, [uid, SCRUBBED, "jazz and vinyl; write to <EMAIL>"]) == []


def test_with_scrubbing_off_text_is_kept_as_given(unscrubbed: Served) -> None:
    uid = f"pii-off-{eid()[:6]}"
    doc = _ingest(unscrubbed, uid)
    assert [e["text"] for e in doc["events"] if e["kind"] == "comment"] == [COMMENT]
    assert doc["profile"] == {**doc["profile"], "name": PROFILE_NAME, "text": BIO}
    found = {v for _, v in leaks(Path(unscrubbed.settings.state_dir), RAW)}
    assert {EMAIL, CARD, CN_ID, NAME, BIO_EMAIL, PROFILE_NAME, COMMENT} <= found  # the same check fails here
    assert unscrubbed.client.get("/readyz").json()["text_scrubbed"] is False
    log = (Path(unscrubbed.settings.state_dir) / "logs" / "serve.log").read_text()
    assert "NOT scrubbed of personal data" in log


def test_dataset_texts_are_scrubbed_when_asked(tmp_path: Path) -> None:
    from socialrec.serve.service import base_dataset
    from socialrec.serve.settings import ServeSettings

    plain = base_dataset(ServeSettings(dataset="synthetic", state_dir=str(tmp_path)))
    scrubbed = base_dataset(ServeSettings(dataset="synthetic", state_dir=str(tmp_path), scrub_dataset_text=True))
    texts, after = plain.texts["text"].astype(str), scrubbed.texts["text"].astype(str)
    planted = texts.str.contains("@") | texts.str.contains(r"\d{3}[-. ]\d{3}[-. ]\d{4}", regex=True)
    assert planted.any()  # the synthetic platform plants emails and phones for these tests
    assert not after[planted.to_numpy()].str.contains(r"[\w.]+@[\w.]+\.\w", regex=True).any()
    assert after.str.contains("<EMAIL>").any() and "texts scrubbed" in scrubbed.notes[-1]


def test_cli_flags_reach_the_settings() -> None:
    from socialrec.cli.main import build_parser
    from socialrec.cli.serve_cmd import serve_settings

    default = serve_settings(build_parser().parse_args(["serve", "--dataset", "synthetic"]))
    assert default.scrub_pii is True and default.scrub_dataset_text is False  # type: ignore[attr-defined]
    given = serve_settings(build_parser().parse_args(["serve", "--dataset", "synthetic", "--no-scrub", "--scrub-text"]))
    assert given.scrub_pii is False and given.scrub_dataset_text is True  # type: ignore[attr-defined]
