"""`socialrec scrub`: replace personal data in a JSON-lines file of texts with typed placeholders.

Reads ``{"id": ..., "text": "..."}`` lines and writes ``{"id": ..., "text": scrubbed, "spans":
[[start, end, type], ...]}`` lines, spans in the input text's character offsets. The whole input
is read and checked before anything is written, and the output is written to a temporary file
moved into place, so a bad line leaves no half-written output.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from socialrec.errors import DataError


def add_scrub_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    from socialrec.privacy.scrub import PII_TYPES

    sc = sub.add_parser("scrub", help="replace personal data (emails, phones, cards, ids, names ...) in JSONL texts")
    sc.add_argument("--input", type=Path, required=True, help='JSON lines with "id" and "text"')
    sc.add_argument("--output", type=Path, required=True, help='JSON lines with "id", scrubbed "text" and "spans"')
    sc.add_argument("--types", default=",".join(PII_TYPES),
                    help=f"comma-separated types to scrub (default all: {','.join(PII_TYPES)})")


def read_texts(path: Path) -> list[tuple[object, str]]:
    """The (id, text) of each non-blank line of ``path``; a DataError names the file and line."""
    try:
        handle = open(path, encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot read the input: {exc.strerror}", path=str(path)) from None
    rows: list[tuple[object, str]] = []
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"not valid JSON ({exc.msg} at column {exc.colno})", path=str(path), line=number,
                                fix='Each line must be one JSON object like {"id": "c1", "text": "..."}') from None
            if not isinstance(obj, dict):
                raise DataError(f"expected a JSON object, got {type(obj).__name__}", path=str(path), line=number)
            for key in ("id", "text"):
                if key not in obj:
                    raise DataError("missing field", path=str(path), line=number, field=key,
                                    fix='Each line must have "id" and "text"')
            if not isinstance(obj["text"], str):
                raise DataError(f"expected a string, got {type(obj['text']).__name__}", path=str(path),
                                line=number, field="text")
            rows.append((obj["id"], obj["text"]))
    return rows


def cmd_scrub(args: argparse.Namespace) -> int:
    from socialrec.privacy.scrub import Scrubber

    types = [t.strip().upper() for t in args.types.split(",") if t.strip()]
    scrubber = Scrubber(types)
    rows = read_texts(args.input)
    results = scrubber.scrub_many(text for _, text in rows)
    out = args.output
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for (row_id, _), result in zip(rows, results):
                fh.write(json.dumps({"id": row_id, "text": result.text, "spans": [list(s) for s in result.spans]},
                                    ensure_ascii=False) + "\n")
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    n_spans = sum(len(r.spans) for r in results)
    changed = sum(1 for r in results if r.spans)
    print(f"scrubbed {len(rows):,} texts: {changed:,} changed, {n_spans:,} spans replaced -> {out}")
    return 0
