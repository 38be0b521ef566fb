"""Model versions on disk and the pointer to the current one.

``models/v0001/``, ``models/v0002/``, ... each hold one `Bundle`; ``models/CURRENT`` names the
version being served and is replaced atomically (write a temporary file, then rename), so a
restart after a crash always finds a complete version.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from socialrec.serve.bundle import Bundle

_VERSION = re.compile(r"^v(\d{4,})$")


class ModelRegistry:
    def __init__(self, state_dir: str | Path) -> None:
        self.root = Path(state_dir) / "models"
        self.root.mkdir(parents=True, exist_ok=True)

    def version_dirs(self) -> list[Path]:
        return sorted(p for p in self.root.iterdir() if p.is_dir() and _VERSION.match(p.name)
                      and (p / "meta.json").exists())

    def next_version(self) -> str:
        numbers = [int(_VERSION.match(p.name).group(1)) for p in self.root.iterdir()  # type: ignore[union-attr]
                   if p.is_dir() and _VERSION.match(p.name)]
        return f"v{max(numbers, default=0) + 1:04d}"

    def current(self) -> str | None:
        path = self.root / "CURRENT"
        if not path.exists():
            return None
        name = path.read_text().strip()
        return name if (self.root / name / "meta.json").exists() else None

    def save(self, bundle: Bundle) -> Path:
        return bundle.save(self.root / bundle.version)

    def set_current(self, version: str) -> None:
        tmp = self.root / "CURRENT.tmp"
        tmp.write_text(version)
        os.replace(tmp, self.root / "CURRENT")

    def load(self, version: str) -> Bundle:
        return Bundle.load(self.root / version)

    def versions(self) -> list[dict[str, Any]]:
        current = self.current()
        out = []
        for p in self.version_dirs():
            meta = json.loads((p / "meta.json").read_text())
            out.append({"version": p.name, "current": p.name == current, "kind": meta.get("kind"),
                        "created": meta.get("created"), "metrics": meta.get("metrics", {}),
                        "train_seconds": meta.get("train_seconds"), "users": meta.get("users"),
                        "items": meta.get("items"), "interactions": meta.get("interactions"),
                        "trained_through_seq": meta.get("trained_through_seq")})
        return out
