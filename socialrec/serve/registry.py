"""Model versions on disk and the pointer to the current one.

``models/v0001/``, ``models/v0002/``, ... each hold one served model (``served.pkl``: a header
checked before unpickling, then the fitted model, its dataset and friend recommender; see
`socialrec.persist`) and ``meta.json``. ``models/CURRENT`` names the version being served and
is replaced atomically, so a restart after a crash always finds a complete version. At most
``keep`` versions stay on disk: older ones are deleted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from socialrec.persist import load_object, save_object

_VERSION = re.compile(r"^v(\d{4,})$")
MODEL_FILE = "served.pkl"


class ModelRegistry:
    def __init__(self, state_dir: str | Path, keep: int = 3) -> None:
        self.root = Path(state_dir) / "models"
        self.root.mkdir(parents=True, exist_ok=True)
        self.keep = keep

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

    def save(self, served: Any) -> Path:
        """Write a served model's version folder (the model file first, meta.json last: a folder
        without meta.json is not a version)."""
        directory = self.root / served.version
        directory.mkdir(parents=True, exist_ok=True)
        header = {"dataset": served.meta.get("dataset"), "data": served.meta.get("data"),
                  "n_users": int(served.model.n_users_),
                  "n_items": int(served.model.n_items_), "fingerprint": served.model.training_fingerprint()}
        save_object(served, directory / MODEL_FILE, header)
        tmp = directory / "meta.json.tmp"
        tmp.write_text(json.dumps(served.meta, indent=2, default=str))
        os.replace(tmp, directory / "meta.json")
        return directory

    def set_current(self, version: str) -> None:
        tmp = self.root / "CURRENT.tmp"
        tmp.write_text(version)
        os.replace(tmp, self.root / "CURRENT")
        self.prune()

    def load(self, version: str, dataset: str | None = None, data: str | None = None) -> Any:
        """The served model of a version, refused (before unpickling) unless it was trained on
        ``dataset`` and, when given, the same ``data`` (the served part: all of it or a holdout)."""
        expect = {"dataset": dataset} if dataset else {}
        if data is not None:
            expect["data"] = data
        _, served = load_object(self.root / version / MODEL_FILE, expect,
                                what=f"dataset {dataset!r} ({data or 'all of it'})")
        return served

    def prune(self) -> list[str]:
        """Delete versions beyond the newest ``keep`` (never the current one); returns their names."""
        current = self.current()
        dirs = self.version_dirs()
        old = [p for p in dirs[:-self.keep] if p.name != current] if len(dirs) > self.keep else []
        for p in old:
            shutil.rmtree(p, ignore_errors=True)
        return [p.name for p in old]

    def delete_except(self, keep_version: str | None) -> list[str]:
        """Delete every version but ``keep_version`` (erasure: older versions hold the user)."""
        gone = []
        for p in self.version_dirs():
            if p.name != keep_version:
                shutil.rmtree(p, ignore_errors=True)
                gone.append(p.name)
        return gone

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
