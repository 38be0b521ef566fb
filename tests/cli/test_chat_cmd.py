"""`socialrec chat` (scripted with --message) and `socialrec generate`, end to end on the synthetic platform."""

from __future__ import annotations

import json

import pytest

from socialrec.cli.main import main

pytest.importorskip("implicit")


def test_chat_refines_turn_by_turn(capsys: pytest.CaptureFixture[str]) -> None:
    from socialrec.explain.catalog import CatalogIndex
    from socialrec.ingest.datasets import load

    catalog = CatalogIndex(load("synthetic"))
    tag, other = [t for t in catalog.tags if [m.tag for m in catalog.match(t)] == [t]][:2]
    code = main(["chat", "--dataset", "synthetic", "--user", "user_0005", "--model", "itemknn", "--encoder", "none",
                 "--k", "5", "--json", "--message", f"I want {tag}", "--message", f"no {other}"])
    assert code == 0
    turns = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert len(turns) == 2
    assert turns[0]["understood"]["tags"] == [tag]
    assert turns[1]["understood"]["avoid_tags"] == [other]
    for it in turns[1]["items"]:
        tags = catalog.tags_of(catalog.index_of(it["item_id"]))
        assert tag in tags and other not in tags
    assert not {i["item_id"] for i in turns[0]["items"]} & {i["item_id"] for i in turns[1]["items"]}


def test_generate_writes_blurbs_and_posts(capsys: pytest.CaptureFixture[str]) -> None:
    from socialrec.ingest.datasets import load

    ds = load("synthetic")
    item = str(ds.items.external_ids[0])
    title = ds.item_titles([0])[0]
    assert main(["generate", "--dataset", "synthetic", "--item", item, "--kind", "post", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["text"].startswith(f"Recommending {title}") and "#" in doc["text"] and doc["generated"] is False
    assert main(["generate", "--dataset", "synthetic", "--item", "no-such-item"]) == 2
    assert "unknown item" in capsys.readouterr().err
