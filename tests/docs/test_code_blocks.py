"""Every code block of the documentation site is checked, as the README's are.

A ```` ```python ```` block of ``docs/`` is type-checked under ``mypy
--strict``, with the README snippets' prelude and placeholders
(tests/test_readme_snippets.py), plus the few names listed here; a block
that starts with ``>>>`` is run as a doctest instead. Shell blocks
(```` ```sh ````) and output are not code.
"""

from __future__ import annotations

import doctest
import pathlib
import re
import textwrap

from mypy import api as mypy

from ..test_readme_snippets import PLACEHOLDERS, PRELUDE
from .conftest import ROOT

DOCS = ROOT / "docs"

#: Placeholders the site's pages use beyond the README's.
DOC_PLACEHOLDERS = ["client", "redis_client", "pool", "limiter", "worker"]


def blocks() -> list[tuple[str, str]]:
    """``(page, code)`` for every python block of every page."""
    found = []
    for page in sorted(DOCS.rglob("*.md")):
        text = page.read_text()
        # fences may be indented inside a list item; ``py`` counts as python
        for _indent, code in re.findall(
            r"^( *)```(?:python|py)\n(.*?)^\1```", text, re.S | re.M
        ):
            found.append((str(page.relative_to(DOCS)), textwrap.dedent(code)))
    return found


def as_module(snippets: list[tuple[str, str]]) -> str:
    names = PLACEHOLDERS + [n for n in DOC_PLACEHOLDERS if n not in PLACEHOLDERS]
    placeholders = "\n".join(f"{name}: Any = None" for name in names)
    parts = [PRELUDE.format(placeholders=placeholders)]
    for number, (page, code) in enumerate(snippets):
        kind = "async def" if "await " in code else "def"
        body = "\n".join(
            f"    {line}" if line.strip() else "" for line in code.splitlines()
        )
        parts.append(f"\n\n# {page}\n{kind} docs_block_{number}() -> None:\n{body}\n")
    return "".join(parts)


def test_the_pages_have_code() -> None:
    assert len(blocks()) >= 15


def test_every_python_block_type_checks(tmp_path: pathlib.Path) -> None:
    typed = [(page, code) for page, code in blocks() if not code.startswith(">>>")]
    module = tmp_path / "docs_blocks.py"
    module.write_text(as_module(typed))
    out, err, status = mypy.run(
        [
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "cache"),
            str(module),
        ]
    )
    source = module.read_text().splitlines()

    def where(line: str) -> str:
        number = int(line.split(":")[1])
        page = next(
            (
                s[2:]
                for s in reversed(source[:number])
                if s.startswith("# ") and s.endswith(".md")
            ),
            "?",
        )
        return f"{page}: {line}\n    > {source[number - 1].strip()}"

    errors = [where(line) for line in out.splitlines() if ": error:" in line]
    assert status == 0, "\n".join(errors) or out + err


def test_every_doctest_block_passes() -> None:
    import reactivex as rx
    from reactivex import operators as ops

    import rxresilience as rxr

    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for page, code in blocks():
        if not code.startswith(">>>"):
            continue
        test = parser.get_doctest(
            code, {"rx": rx, "ops": ops, "rxr": rxr}, page, page, 0
        )
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0
    assert result.failed == 0
