"""Under CI=true a real-data test whose dataset is missing fails, saying where the data should be."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, ci: str) -> subprocess.CompletedProcess[str]:
    test = tmp_path / "test_needs_data.py"
    test.write_text("def test_it(real_movielens):\n    assert real_movielens.n_users > 0\n")
    (tmp_path / "conftest.py").write_text(f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
                                          "from tests.conftest import real_movielens  # noqa: F401\n")
    env = {"PATH": "/usr/bin:/bin", "SOCIALREC_DATA": str(tmp_path / "nowhere"), "CI": ci}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)],
                          cwd=tmp_path, env=env, capture_output=True, text=True)


def test_missing_data_fails_under_ci(tmp_path: Path) -> None:
    out = _run(tmp_path, "true")
    assert out.returncode == 1 and "CI must find the datasets" in out.stdout, out.stdout[-2000:]


def test_missing_data_skips_elsewhere(tmp_path: Path) -> None:
    out = _run(tmp_path, "")
    assert out.returncode == 0 and "1 skipped" in out.stdout, out.stdout[-2000:]
