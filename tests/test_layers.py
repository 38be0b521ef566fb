"""The layers hold: `lint-imports` checks pyproject.toml's import-linter contracts.

ingest < represent < retrieve < rank < explain < serve < cli; evaluate and privacy beside the
layers; ground modules (errors, params, types, config, ...) import no layer; no import cycles.
Function-local imports count: moving an upward import into a function does not hide it.
"""

from __future__ import annotations

import pkgutil
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import socialrec

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports() -> str:
    exe = Path(sys.executable).with_name("lint-imports")
    if exe.exists():
        return str(exe)
    found = shutil.which("lint-imports")
    if found is None:
        pytest.fail("lint-imports (import-linter) is not installed: pip install -e '.[dev]'")
    return found


def _contracts() -> list[dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return config["tool"]["importlinter"]["contracts"]


def test_import_contracts_are_kept() -> None:
    proc = subprocess.run([_lint_imports(), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.fail(
            "import-linter found imports that break the layers (pyproject.toml, [tool.importlinter]).\n"
            "Move the shared piece down (to a ground module or a lower layer) instead of importing upward;\n"
            "an import inside a function counts too.\n\n" + proc.stdout + proc.stderr, pytrace=False)


def test_every_top_level_module_has_a_place() -> None:
    """A new socialrec.X must be named in a contract (a layer, beside the layers, or ground),
    otherwise nothing checks what it imports or who imports it."""
    named: set[str] = set()
    for contract in _contracts():
        for key in ("layers", "source_modules", "forbidden_modules"):
            named.update(contract.get(key, ()))
    top = {f"socialrec.{m.name}" for m in pkgutil.iter_modules(socialrec.__path__)} - {"socialrec.__main__"}
    missing = sorted(top - named)
    assert not missing, (f"{missing} are in no import-linter contract: add each to pyproject.toml's layers, "
                         "to the evaluate/privacy contracts, or to the ground modules")
