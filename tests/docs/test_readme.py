"""The README is a front page: short, and every link in it leads somewhere.

The patterns' semantics live on the documentation site (``docs/``); the
README links into it with relative links, which GitHub follows as they are,
so a page renamed or moved must not leave a link dangling, and a page added
to the site must be reachable from the README.
"""

from __future__ import annotations

import re

from .conftest import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_LINES = 250


def without_fences(text: str) -> str:
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def prose(text: str) -> str:
    """A Markdown text without its fenced code blocks and inline code spans."""
    return re.sub(r"`[^`\n]*`", "", without_fences(text))


def links(text: str) -> list[str]:
    """The targets of the inline links ``[text](target)`` of a Markdown text."""
    return re.findall(r"\[[^\]]*\]\(([^)\s]+)\)", prose(text))


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    kept = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return kept.replace(" ", "-")


def anchors(page: str) -> set[str]:
    headings = re.findall(r"^#{1,6} (.+)$", without_fences(page), re.M)
    return {slug(heading) for heading in headings}


def test_the_readme_is_under_250_lines() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) < MAX_LINES, (
        f"README.md has {len(lines)} lines: move the details to a page of docs/"
    )


def test_the_readme_says_how_to_build_the_site() -> None:
    text = README.read_text()
    assert "make docs" in text
    assert "make demo" in text
    assert "make test" in text


def test_every_relative_link_of_the_readme_resolves() -> None:
    targets = links(README.read_text())
    assert len(targets) >= 15, targets  # the pattern still finds the links
    broken = []
    for target in targets:
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue  # a URL: not checked offline
        path, _, anchor = target.partition("#")
        file = ROOT / path if path else README
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif (
            anchor and file.suffix == ".md" and anchor not in anchors(file.read_text())
        ):
            broken.append(f"{target}: no heading with that anchor")
    assert not broken, "\n".join(broken)


def test_the_readme_links_every_page_of_the_site() -> None:
    linked = {
        (ROOT / target.partition("#")[0]).resolve()
        for target in links(README.read_text())
    }
    pages = {
        page.resolve()
        for page in DOCS.glob("**/*.md")
        if page.name != "index.md" and "_hooks" not in page.parts
    }
    assert pages, "no page found under docs/"
    missing = sorted(str(page.relative_to(DOCS)) for page in pages - linked)
    assert not missing, f"pages the README does not link: {missing}"


def test_the_link_checker_sees_links_and_anchors() -> None:
    text = "[a](docs/x.md) `[b](no.md)`\n```\n[c](no.md)\n```\n[d](https://e.org)"
    assert links(text) == ["docs/x.md", "https://e.org"]
    assert anchors("# Sagas under `asyncio`!\n## A, b\n") == {
        "sagas-under-asyncio",
        "a-b",
    }
