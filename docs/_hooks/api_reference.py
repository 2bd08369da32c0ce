"""MkDocs hook: the API reference pages, generated from ``rxresilience.__all__``.

Every public name lands on exactly one page, chosen by the module that
defines it, so a name added to the package appears in the reference without
anyone editing a page (a name no group claims goes to "Other names", which
the docs tests keep empty). A group with no name yet makes no page.
"""

from __future__ import annotations

import importlib
import sys
import types
from dataclasses import dataclass
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files


@dataclass(frozen=True)
class Group:
    """One reference page: the names whose defining module matches ``modules``."""

    slug: str
    title: str
    intro: str
    modules: tuple[str, ...]


GROUPS = (
    Group(
        "retry",
        "Retry and backoff",
        "The retry operator, its policy and the backoff policies. "
        "Guide: [Retry and backoff](../patterns/retry.md).",
        ("rxresilience._retry", "rxresilience._backoff"),
    ),
    Group(
        "timeout",
        "Timeout, fallback and resilient",
        "Guides: [Timeout and fallback](../patterns/timeout.md), "
        "[resilient](../patterns/resilient.md).",
        ("rxresilience._timeout", "rxresilience._fallback", "rxresilience._resilient"),
    ),
    Group(
        "breaker",
        "Circuit breaker",
        "Guide: [Circuit breaker](../patterns/circuit-breaker.md).",
        ("rxresilience.breaker",),
    ),
    Group(
        "rate-limiter",
        "Rate limiter",
        "Guide: [Rate limiter](../patterns/rate-limiter.md).",
        ("rxresilience.rate_limit",),
    ),
    Group(
        "bulkhead",
        "Bulkhead",
        "Guide: [Bulkhead](../patterns/bulkhead.md).",
        ("rxresilience._bulkhead",),
    ),
    Group(
        "hedging",
        "Hedging",
        "Guide: [Hedging](../patterns/hedging.md).",
        ("rxresilience._hedge",),
    ),
    Group(
        "idempotency",
        "Idempotency, stores and codecs",
        "Guide: [Idempotency](../patterns/idempotency.md).",
        ("rxresilience.idempotency", "rxresilience.stores", "rxresilience._codec"),
    ),
    Group(
        "sagas",
        "Sagas and journals",
        "Guide: [Sagas](../patterns/sagas.md).",
        ("rxresilience.saga",),
    ),
    Group(
        "optimistic",
        "Optimistic updates",
        "Guide: [Optimistic updates](../patterns/optimistic.md).",
        ("rxresilience._optimistic",),
    ),
    Group(
        "telemetry",
        "Telemetry",
        "Guide: [Telemetry](../patterns/telemetry.md).",
        ("rxresilience.telemetry", "rxresilience._telemetry"),
    ),
    Group(
        "asyncio",
        "asyncio and HTTP",
        "Guide: [asyncio and HTTP](../asyncio.md).",
        ("rxresilience._async", "rxresilience._http"),
    ),
    Group(
        "errors",
        "Errors",
        "Every error the library raises on its own account. "
        "When each is raised: [the error reference](../errors.md).",
        ("rxresilience.errors",),
    ),
    Group(
        "testing",
        "Testing and chaos",
        "Guide: [Testing your pipelines](../testing.md).",
        ("rxresilience.testing", "rxresilience.chaos"),
    ),
)

OTHER = Group("other", "Other names", "Public names that no page above claims.", ())


def _module_of(name: str, value: Any) -> str:
    if isinstance(value, types.ModuleType):
        return value.__name__
    module = str(getattr(value, "__module__", "") or "")
    if module.startswith("rxresilience."):
        return module
    # A type alias (``ChangeSink = Callable[...]``) reports ``typing``: the
    # package module that holds the same object under that name defines it.
    holders = [
        held
        for held, loaded in sorted(sys.modules.items())
        if held.startswith("rxresilience.") and getattr(loaded, name, None) is value
    ]
    return holders[-1] if holders else module


def _claims(group: Group, module: str) -> bool:
    return any(
        module == m or module.startswith(m + "_") or module.startswith(m + ".")
        for m in group.modules
    )


def grouped_names() -> dict[Group, list[str]]:
    """Every name of ``rxresilience.__all__``, on the page that claims it."""
    package = importlib.import_module("rxresilience")
    pages: dict[Group, list[str]] = {group: [] for group in (*GROUPS, OTHER)}
    for name in sorted(package.__all__, key=str.lower):
        module = _module_of(name, getattr(package, name))
        group = next((g for g in GROUPS if _claims(g, module)), OTHER)
        pages[group].append(name)
    return pages


def page_text(group: Group, names: list[str]) -> str:
    lines = [f"# {group.title}", "", group.intro, ""]
    for name in names:
        lines += [f"::: rxresilience.{name}", ""]
    return "\n".join(lines)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    for group, names in grouped_names().items():
        if not names:  # a pattern still to land, or no stray name
            continue
        files.append(
            File.generated(
                config, f"reference/{group.slug}.md", content=page_text(group, names)
            )
        )
    return files
