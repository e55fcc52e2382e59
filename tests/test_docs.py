"""The README and docs stand on their own: every link they make resolves inside the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_links_resolve_inside_the_repository(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    assert "../shared" not in text, f"{doc.name} points outside the repository"
    broken = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+://", target):
            continue
        resolved = (doc.parent / target).resolve()
        if not resolved.is_relative_to(REPO) or not resolved.exists():
            broken.append(target)
    assert broken == [], f"{doc.name} links to missing or outside files: {broken}"


def test_readme_links_the_architecture_page() -> None:
    assert "(docs/architecture.md)" in (REPO / "README.md").read_text(encoding="utf-8")


def test_architecture_recipe_names_real_places() -> None:
    """The 'add an event kind' recipe names modules and decorators that exist."""
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    for path in re.findall(r"`(dtctl/[\w/]+\.py)`", text):
        assert (REPO / path).exists(), path
    handlers = (REPO / "dtctl" / "core" / "handlers.py").read_text(encoding="utf-8")
    assert "def handles(" in handlers and "@handles(" in text
