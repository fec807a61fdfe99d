"""Every relative link in README.md and docs/*.md leads to a file of the repository (issue 14).

A directory counts when the link has no anchor; no link may leave the repository (such as
../shared/PRODUCT.md, which a reader of the repository alone does not have). An anchor into a
Markdown page must name one of its headings, as GitHub makes them (lower case, punctuation
dropped, spaces as hyphens): a bold paragraph is no anchor.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# [label](target) and [label]: target, outside code spans and fences.
INLINE = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)", re.MULTILINE)
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
CODE = re.compile(r"`[^`\n]*`")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives ``page``'s headings (a repeated one gets ``-1``, ``-2``…)."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for title in HEADING.findall(FENCE.sub("", page.read_text())):
        slug = re.sub(r"[^\w\- ]", "", title.replace("`", "").strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        found.add(f"{slug}-{n}" if n else slug)
    return found


def links(page: Path) -> list[str]:
    text = CODE.sub("", FENCE.sub("", page.read_text()))
    return INLINE.findall(text) + REFERENCE.findall(text)


def problem(page: Path, target: str) -> str | None:
    if re.match(r"^[a-z][a-z0-9+.-]*:", target):
        return None  # a URL (https:, mailto:)
    path, _, anchor = target.partition("#")
    resolved = (page.parent / path).resolve() if path else page
    if not resolved.is_relative_to(ROOT):
        return "points outside the repository"
    if resolved.is_dir():
        return "a directory with an anchor" if anchor else None
    if not resolved.is_file():
        return "no such file"
    if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
        return "no such heading"
    return None


def test_the_pages_exist() -> None:
    assert (ROOT / "docs" / "README.md") in PAGES
    assert len(PAGES) >= 8


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_resolves_inside_the_repository(page: Path) -> None:
    broken = [f"{t}: {why}" for t in links(page) if (why := problem(page, t))]
    assert broken == []


def test_the_checker_catches_what_it_should(tmp_path: Path) -> None:
    page = ROOT / "README.md"
    assert problem(page, "../shared/PRODUCT.md") == "points outside the repository"
    assert problem(page, "docs/nothing.md") == "no such file"
    assert problem(page, "deploy#x") == "a directory with an anchor"
    assert problem(page, "deploy") is None
    assert problem(page, "docs/runbooks.md#redis-is-down") is None
    assert problem(page, "docs/runbooks.md#redis-is-gone") == "no such heading"
    assert problem(page, "#the-sandbox") is None
    assert problem(page, "#upgrading-to-this-version") is None
    assert problem(page, "#upgrading-across-the-execution-gate-this-version") == "no such heading"
    assert problem(ROOT / "docs" / "runbooks.md", "#a-request-is-in-doubt") is None
    assert problem(page, "https://api.slack.com/apps") is None
    sample = tmp_path / "x.md"
    sample.write_text("[a](one.md) `[b](two.md)`\n```\n[c](three.md)\n```\n[d]: four.md\n")
    assert links(sample) == ["one.md", "four.md"]


def test_the_readme_links_the_docs_not_the_shared_folder() -> None:
    text = (ROOT / "README.md").read_text()
    assert "../shared" not in text
    assert "(docs/README.md)" in text
