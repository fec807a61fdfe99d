"""What the docs generators share: write a generated page, or (`--check`) say it is stale."""

from __future__ import annotations

from pathlib import Path


def write_or_check(output: Path, text: str, argv: list[str], script: str) -> int:
    """Exit status: with ``--check``, 1 when ``output`` differs from ``text``; else write it."""
    root = Path(__file__).resolve().parents[1]
    if "--check" in argv:
        if not output.exists() or output.read_text() != text:
            print(f"{output.relative_to(root)} is out of date: run {script}")
            return 1
        return 0
    output.parent.mkdir(exist_ok=True)
    output.write_text(text)
    print(f"wrote {output.relative_to(root)}")
    return 0
