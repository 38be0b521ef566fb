"""The curated public API: every listed name resolves, and importing the package does no work."""

from __future__ import annotations

import subprocess
import sys

import socialrec


def test_every_public_name_resolves() -> None:
    for name in socialrec.__all__:
        assert getattr(socialrec, name) is not None, name


def test_importing_the_package_imports_no_layer() -> None:
    code = ("import sys, socialrec; "
            "print(sorted(m for m in sys.modules if m.startswith('socialrec.') and m != 'socialrec.errors'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_unknown_name_is_an_attribute_error() -> None:
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        socialrec.Nope  # noqa: B018
