"""Mutation testing of the modules the published numbers rest on.

mutmut (configured under ``[tool.mutmut]`` in pyproject.toml: the modules and the fast tests that
check them) changes one thing at a time in the code (``<`` to ``<=``, a constant, a dropped
argument ...) and runs the tests that reach the changed function; a mutant the tests do not notice
"survives". It runs on a copy of the tree, so the working copy never holds a mutated file.

Each survivor is either killed by a new test or explained as equivalent (it cannot change what a
user observes) in ``benchmarks/mutation_decisions.json``; the table lists every survivor with its
decision, and survivors without one are marked "undecided".

    python benchmarks/mutation.py [--max-children 2] [--keep DIR]

Writes benchmarks/results/mutation.json and the "Mutation testing" section of benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import describe as machine  # noqa: E402
from _readme import replace_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "mutation.json"
DECISIONS = ROOT / "benchmarks" / "mutation_decisions.json"
TARGET = 0.85


def modules() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    return list(config["only_mutate"])


def copy_tree(dest: Path) -> None:
    """Tracked and untracked-but-not-ignored files: what a clean clone plus the working edits hold."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


STATUS = {1: "killed", 3: "killed", 0: "survived", 36: "timeout", -24: "timeout", 24: "timeout", 152: "timeout",
          255: "timeout", 5: "no tests", 33: "no tests", 34: "skipped", None: "not checked"}


def collect(work: Path, paths: list[str]) -> dict[str, dict[str, object]]:
    """Status of every mutant, read from mutmut's per-file meta data."""
    out: dict[str, dict[str, object]] = {}
    for path in paths:
        meta = json.loads((work / "mutants" / (path + ".meta")).read_text())
        for name, code in meta["exit_code_by_key"].items():
            out[name] = {"module": path, "status": STATUS.get(code, "suspicious"), "exit_code": code}
    return out


def diff_of(work: Path, name: str) -> str:
    shown = subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=work, capture_output=True, text=True)
    lines = [ln for ln in shown.stdout.splitlines() if ln.startswith(("+", "-")) and not ln.startswith(("+++", "---"))]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--keep", type=Path, help="run in this directory and keep it (default: a temporary one)")
    args = parser.parse_args()
    paths = modules()
    work = args.keep or Path(tempfile.mkdtemp(prefix="socialrec-mutation-"))
    if args.keep and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    copy_tree(work)
    data = os.environ.get("SOCIALREC_DATA", str(ROOT.parent / "shared" / "data"))
    env = {**os.environ, "PYTHONPATH": str(work / "mutants"), "SOCIALREC_DATA": data}
    start = time.perf_counter()
    command = [sys.executable, "-m", "mutmut", "run", "--max-children", str(args.max_children)]
    if subprocess.run(command, cwd=work, env=env).returncode != 0:
        # mutmut's first stats-collection pass sometimes fails on a cold start here (the same tests
        # pass alone and on the second try); a rerun resumes, keeping every finished mutant.
        subprocess.run(command, cwd=work, env=env, check=True)
    seconds = time.perf_counter() - start
    mutants = collect(work, paths)
    decisions = json.loads(DECISIONS.read_text()) if DECISIONS.exists() else {}
    survivors = []
    for name, m in sorted(mutants.items()):
        if m["status"] == "survived":
            survivors.append({"mutant": name, "module": m["module"], "diff": diff_of(work, name),
                              "decision": decisions.get(name, "undecided")})
    per_module = {}
    for path in paths:
        counts = Counter(m["status"] for m in mutants.values() if m["module"] == path)
        killed, survived = counts["killed"], counts["survived"]
        per_module[path] = {"killed": killed, "survived": survived, "timeout": counts["timeout"],
                            "no_tests": counts["no tests"], "other": sum(counts.values()) - killed - survived
                            - counts["timeout"] - counts["no tests"],
                            "score": round(killed / (killed + survived), 4) if killed + survived else None}
    result = {"machine": machine(), "tool": f"mutmut {importlib.metadata.version('mutmut')}",
              "seconds": round(seconds, 1), "target": TARGET, "modules": per_module, "survivors": survivors}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    replace_section("MUTATION", "Mutation testing", render(result))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(render(result))


def render(result: dict) -> str:
    rows = ["| module | killed | survived | timeout | no tests | score (killed / (killed + survived)) |",
            "|---|---|---|---|---|---|"]
    for path, m in result["modules"].items():
        score = "n/a" if m["score"] is None else f"{m['score']:.3f}"
        rows.append(f"| `{path}` | {m['killed']} | {m['survived']} | {m['timeout']} | {m['no_tests']} | {score} |")
    lines = [f"{result['tool']} over the modules in `[tool.mutmut]` of pyproject.toml, with their fast tests; "
             f"{result['seconds']:.0f} s on {result['machine']}. Target: score >= {result['target']} per module. "
             "Rerun: `python benchmarks/mutation.py`.", "", *rows, ""]
    if result["survivors"]:
        lines += ["Survivors and the decision on each (`benchmarks/mutation_decisions.json`):", "",
                  "| mutant | change | decision |", "|---|---|---|"]
        for s in result["survivors"]:
            change = s["diff"].replace("|", "\\|").replace("\n", "<br>").replace("`", "'")
            lines.append(f"| `{s['mutant'].split('.')[-1]}` ({s['module'].split('/')[-1]}) | <code>{change}</code> | {s['decision']} |")
    else:
        lines.append("No survivors.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
