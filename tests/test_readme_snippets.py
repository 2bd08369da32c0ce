"""Every Python snippet of the README type-checks under ``mypy --strict``.

Each ```` ```python ```` block becomes the body of a function (``async def``
when it awaits) in one generated module, after a prelude that imports what
snippets use and declares the placeholders they talk about (``api``,
``order``, ...) as ``Any``: the library's own names, signatures and types are
checked for real. A snippet that uses a new placeholder fails here until the
name is added to ``PLACEHOLDERS``.
"""

from __future__ import annotations

import pathlib
import re

from mypy import api as mypy

ROOT = pathlib.Path(__file__).resolve().parent.parent

#: Names the README's snippets, and the site's code blocks
#: (tests/docs/test_code_blocks.py), use without defining them: the user's code.
PLACEHOLDERS = [
    "api",
    "args",
    "cached",
    "cached_quotes",
    "cached_user",
    "call",
    "cart",
    "cart_api",
    "edits",
    "failures",
    "fetch",
    "fn",
    "ids",
    "item",
    "inventory",
    "job",
    "journal",
    "key",
    "my_service_call",
    "order",
    "payments",
    "policy",
    "process_payment",
    "quotes",
    "render",
    "requests",
    "save_cart",
    "show_spinner",
    "show_toast",
    "source",
    "stream",
    "uid",
    "user_api",
    "user_id",
]

PRELUDE = """\
from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Any

import reactivex as rx
from hypothesis import given
from hypothesis import strategies as st
from reactivex import operators as ops

import rxresilience as rxr

{placeholders}

breaker = rxr.CircuitBreaker(5, 30.0)  # the library's own, checked as such


class NetworkError(Exception):
    pass


@dataclass(frozen=True)
class User:
    name: str


class Order:
    id: str
    total: int
    items: list[str]
"""


def snippets() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, re.S)


def as_module(blocks: list[str]) -> str:
    placeholders = "\n".join(f"{name}: Any = None" for name in PLACEHOLDERS)
    parts = [PRELUDE.format(placeholders=placeholders)]
    for number, block in enumerate(blocks):
        kind = "async def" if "await " in block else "def"
        body = "\n".join(
            f"    {line}" if line.strip() else "" for line in block.splitlines()
        )
        parts.append(f"\n\n{kind} readme_snippet_{number}() -> None:\n{body}\n")
    return "".join(parts)


def test_the_readme_has_snippets() -> None:
    # the README is a front page (tests/docs/test_readme.py): an opening
    # snippet and a taste of the API; the rest is on the site, checked there
    assert len(snippets()) >= 3


def test_every_readme_snippet_type_checks(tmp_path: pathlib.Path) -> None:
    module = tmp_path / "readme_snippets.py"
    module.write_text(as_module(snippets()))
    out, err, status = mypy.run(
        [
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "cache"),
            str(module),
        ]
    )
    errors = [line for line in out.splitlines() if ": error:" in line]
    source = module.read_text().splitlines()
    shown = [
        f"{line}\n    > {source[int(line.split(':')[1]) - 1].strip()}"
        for line in errors
    ]
    assert status == 0, "\n".join(shown) or out + err
