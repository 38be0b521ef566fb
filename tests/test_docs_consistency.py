"""Every measured number in README.md and benchmarks/README.md comes from a results file.

A number is checked when it has a decimal point (.2305, 0.94, 3.94) or a unit of time, share or
ratio (46 s, 11 ms, +35%, 25.3x). It passes when a value in the results files its section draws
on rounds to it (as written; x100 for numbers of 1 or more: percentages, LLMRank's scale; x1000 for ms), when it is a
ratio or relative gain of two numbers of the same section, or when it is a published number from
the data README. A section draws on the results files it names (``results/x.json``) and on those
of the generated blocks it holds (`SOURCES` below, by marker). Code spans and blocks are skipped
(commands, hyperparameter grids), as are plain integers (counts, k, seeds).

When this fails, rerun the benchmark that writes the section, or correct the paragraph and name
the results file it quotes.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
READMES = ("README.md", "benchmarks/README.md")

# Generated block marker -> the results files its script writes.
SOURCES = {
    "QUALITY": ["quality-*.json"],
    "SOCIAL": ["social-*.json", "friends-*.json"],
    "CONTENT": ["content-*.json"],
    "SENTIMENT": ["sentiment.json"],
    "SERVING": ["serving.json", "fuzz.json"],
    "LLMRANK": ["llmrank-*.json"],
    "HYBRID-LASTFM-RECBOLE": ["hybrid-lastfm-recbole*.json"],
    "HYBRID-CIAO-RECDIFF": ["hybrid-ciao-recdiff*.json"],
    "HYBRID-AMAZON-GAMES": ["hybrid-amazon-games*.json"],
    "PARAPHRASE": ["paraphrase-*.json"],
    "DIVERSITY-AMAZON-GAMES": ["diversity-amazon-games*.json"],
    "VALUE-WEIGHTS-LASTFM": ["value-weights-lastfm.json"],
    "SERVED": ["served.json", "replay-*.json", "evaluate-*.json"],
    "SCRUB": ["scrub.json"],
    "PRIVACY-DP": ["privacy-dp.json"],
    "MEMBERSHIP-AUDIT": ["membership-audit.json"],
    "MUTATION": ["mutation.json"],
    "EXPORT": ["export-*.json"],
    "SEQUENTIAL": ["sequential-*.json"],
    "MULTIMODAL": ["multimodal-*.json"],
    "SCALE": ["scale-*.json"],
}

NUMBER = re.compile(r"(?<![\w.@/=#<>≤≥-])(?<![<>≤≥] )(?<![<>]= )([+-]?)(\d[\d,]*\.\d+|\.\d+|\d[\d,]*)(\s?)(%|x(?![\w-])|×|ms\b|s\b|min\b)?")


def _leaves(node: object):
    if isinstance(node, bool):
        return
    if isinstance(node, (int, float)):
        if math.isfinite(node):
            yield float(node)
    elif isinstance(node, dict):
        for v in node.values():
            yield from _leaves(v)
    elif isinstance(node, list):
        for v in node:
            yield from _leaves(v)
    elif isinstance(node, str):  # numbers inside recorded strings ("0.2149 at epoch 50")
        for m in re.finditer(r"-?\d+(?:\.\d+)?", node):
            yield float(m.group())


def _values(names: set[str]) -> np.ndarray:
    files = {p for name in names for p in RESULTS.glob(name)}
    out = [v for p in sorted(files) for v in _leaves(json.loads(p.read_text()))]
    return np.unique(np.array(out, dtype=np.float64)) if out else np.zeros(0)


def _published() -> np.ndarray:
    data = ROOT.parent / "shared" / "data" / "README.md"
    if not data.exists():
        return np.zeros(0)
    text = data.read_text().replace(",", "")
    return np.unique(np.array([float(m) for m in re.findall(r"\d*\.\d+|\d+", text)]))


def _prose(text: str) -> str:
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)  # link targets
    text = re.sub(r"(?i)\b(python|torch|version|v)\s?\d+(\.\d+)+", "", text)
    return re.sub(r"<!--.*?-->", "", text)


def _sections(text: str) -> list[str]:
    """Level-1 and level-2 headings start a section; '#' lines inside code blocks do not."""
    text = re.sub(r"```.*?```", lambda m: "\n" * m.group().count("\n"), text, flags=re.S)
    return re.split(r"\n(?=#{1,2} )", text)


def _near(x: float, decimals: int, pool: np.ndarray, unit: str | None = None) -> bool:
    """Some value rounds to x as written; x100 only for numbers >= 1 (percent, LLMRank's scale),
    x1000 only for milliseconds."""
    if not len(pool):
        return False
    tol = 0.5 * 10.0 ** -decimals + 1e-9
    scales = [1.0] + ([100.0] if abs(x) >= 1 else []) + ([1000.0] if unit == "ms" else [])
    return any(bool(np.any(np.abs(pool * s - x) <= tol)) for s in scales)


def _is_relative(x: float, decimals: int, numbers: np.ndarray) -> bool:
    if len(numbers) < 2:
        return False
    a, b = numbers[:, None], numbers[None, :]
    with np.errstate(all="ignore"):
        derived = np.concatenate([(a / b).ravel(), ((a / b - 1) * 100).ravel(), (a / b * 100).ravel(),
                                  ((a - b) * 100).ravel(), (a - b).ravel()])
    derived = np.abs(derived[np.isfinite(derived)])
    return bool(np.any(np.abs(derived - abs(x)) <= 0.5 * 10.0 ** -decimals + 1e-9))


def unsupported_numbers(readme: str) -> list[str]:
    raw = (ROOT / readme).read_text()
    published = _published()
    problems = []
    for section in _sections(raw):
        names = set(re.findall(r"([\w.*-]+\.json)", section))
        for marker in re.findall(r"<!-- ([A-Z0-9-]+):START -->", section):
            names |= set(SOURCES.get(marker, []))
        pool = _values(names)
        prose = _prose(section)
        found = []
        for m in NUMBER.finditer(prose):
            sign, digits, _, unit = m.groups()
            text = digits.replace(",", "")
            decimals = len(text.split(".")[1]) if "." in text else 0
            found.append((m, sign, text, decimals, float(text), unit))
        numbers = np.array([f[4] for f in found])
        for m, sign, text, decimals, x, unit in found:
            if decimals == 0 and not unit:
                continue
            if _near(x, decimals, pool, unit) or _near(x, decimals, published):
                continue
            if (unit in ("%", "x", "×") or sign) and _is_relative(x, decimals, numbers):
                continue
            context = prose[max(0, m.start() - 70):m.end() + 20].replace("\n", " ")
            heading = section.strip().splitlines()[0][:60]
            problems.append(f"{readme} [{heading}]: {sign}{text}{unit or ''} in '...{context}...'")
    return problems


@pytest.mark.parametrize("readme", READMES)
def test_every_number_in_the_readme_comes_from_a_results_file(readme: str) -> None:
    problems = unsupported_numbers(readme)
    assert not problems, (f"{len(problems)} number(s) in {readme} appear in no results file the section names "
                          "(rerun its benchmark, or correct the text and name the file):\n" + "\n".join(problems))


def test_the_check_catches_a_drifted_number(tmp_path, monkeypatch) -> None:
    """A paragraph quoting a number its results file does not hold fails; the right one passes."""
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "toy.json").write_text(json.dumps({"ndcg@10": 0.06881, "fit_s": 165.2}))
    module = sys.modules[__name__]
    monkeypatch.setattr(module, "ROOT", tmp_path)
    monkeypatch.setattr(module, "RESULTS", tmp_path / "benchmarks" / "results")
    (tmp_path / "R.md").write_text("## Toy\n\nFrom results/toy.json: NDCG@10 .0688, trained in 165 s.\n")
    assert unsupported_numbers("R.md") == []
    (tmp_path / "R.md").write_text("## Toy\n\nFrom results/toy.json: NDCG@10 .0590, trained in 46 s.\n")
    assert [p.split(": ")[1].split(" in")[0] for p in unsupported_numbers("R.md")] == [".0590", "46s"]
    (tmp_path / "R.md").write_text("## Toy\n\nNDCG@10 .0688 with no file named.\n")
    assert len(unsupported_numbers("R.md")) == 1
