"""``mkdocs build --strict`` passes, and the site holds what it promises.

A broken link, an unresolved cross-reference, a docstring that does not
parse or a failing notebook cell is a warning or an error of the build, so
each fails here.
"""

from __future__ import annotations

import importlib.util
import pathlib
import re
import sys

import rxresilience as rxr

from .conftest import ROOT, Build

NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.py"))


def _hook(name: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        name, ROOT / "docs" / "_hooks" / f"{name}.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_strict_build_passes(site_build: Build) -> None:
    assert site_build.returncode == 0, site_build.output[-8000:]
    # (the Jupyter kernel's own "[IPKernelApp] WARNING" lines are not the build's)
    warnings = [
        line for line in site_build.output.splitlines() if line.startswith("WARNING")
    ]
    assert warnings == []


def test_every_notebook_is_a_page_with_its_executed_figures(
    site: pathlib.Path,
) -> None:
    assert NOTEBOOKS, "no notebook found"
    for stem in NOTEBOOKS:
        page = (site / "notebooks" / stem / "index.html").read_text()
        figures = re.findall(r'<img[^>]+src="data:image/png;base64,', page)
        assert figures, f"{stem}: no figure rendered (was it executed?)"
        assert "Traceback" not in page, f"{stem}: a cell failed"


def test_every_public_name_has_a_reference_entry(site: pathlib.Path) -> None:
    grouped = _hook("api_reference").grouped_names()
    stray = [names for group, names in grouped.items() if group.slug == "other"]
    assert stray == [[]], f"add a group in docs/_hooks/api_reference.py for {stray}"
    pages = "".join(
        path.read_text() for path in (site / "reference").glob("*/index.html")
    )
    missing = [name for name in rxr.__all__ if f'id="rxresilience.{name}"' not in pages]
    assert missing == []


def test_signatures_show_types_and_link_to_their_classes(site: pathlib.Path) -> None:
    page = (site / "reference" / "retry" / "index.html").read_text()
    signature = page[page.index('id="rxresilience.retry"') :]
    assert "max_elapsed" in signature  # keywords unpacked from RetryOptions
    assert re.search(r'href="[^"]*#rxresilience\.RetryPolicy"', signature)


def test_the_benchmarks_figure_plots_every_recorded_ratio(site: pathlib.Path) -> None:
    hook = _hook("benchmark_figure")
    rows = hook.ratios((ROOT / "benchmarks" / "README.md").read_text())
    assert len(rows) >= 10
    assert all(row.ratio > 0 for row in rows)
    figure = site / "benchmarks" / "ratios.png"
    assert figure.read_bytes().startswith(b"\x89PNG")
    page = (site / "benchmarks" / "index.html").read_text()
    assert 'src="ratios.png"' in page or "ratios.png" in page
