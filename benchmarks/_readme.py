"""Keep each benchmark's section of benchmarks/README.md between its own markers."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parent / "README.md"


def replace_section(marker: str, title: str, block: str) -> None:
    """Replace the text between ``<!-- MARKER:START -->`` and ``<!-- MARKER:END -->`` with
    ``block``, appending a new ``## title`` section the first time."""
    text = README.read_text() if README.exists() else "# Benchmarks\n"
    start, end = f"<!-- {marker}:START -->", f"<!-- {marker}:END -->"
    if start in text:
        text = text[: text.index(start) + len(start)] + "\n" + block + "\n" + text[text.index(end):]
    else:
        text += f"\n## {title}\n\n{start}\n{block}\n{end}\n"
    README.write_text(text)
