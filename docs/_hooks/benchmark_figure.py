"""MkDocs hook: the Benchmarks page, drawn from ``benchmarks/README.md``.

Nothing is measured during the build: the figure plots the ``ratio`` column
of every table the benchmarks README records, and the page embeds the
README itself under the figure, so the two cannot disagree.
"""

from __future__ import annotations

import io
import pathlib
import re
from dataclasses import dataclass

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

ROOT = pathlib.Path(__file__).resolve().parents[2]
README = ROOT / "benchmarks" / "README.md"
FIGURE = "benchmarks/ratios.png"
MARKER = "<!-- benchmarks/README.md -->"


@dataclass(frozen=True)
class Ratio:
    """One row of a benchmarks table: what was measured, ours over the baseline."""

    section: str
    label: str
    ratio: float


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _plain(label: str, width: int = 58) -> str:
    text = re.sub(r"[`*]", "", label)
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def ratios(markdown: str) -> list[Ratio]:
    """The rows of every table with a ``ratio`` column (current figures only).

    Tables comparing a ratio before and after a change have no column named
    exactly ``ratio``, so each measurement is plotted once.
    """
    found: list[Ratio] = []
    section = ""
    column: int | None = None
    for line in markdown.splitlines():
        if line.startswith("#"):
            section = line.lstrip("#").strip()
            column = None
        elif line.startswith("|"):
            cells = _cells(line)
            if "ratio" in cells and column is None:
                column = cells.index("ratio")
            elif column is not None and not set(line) <= set("|-: "):
                match = re.fullmatch(r"([0-9.]+)x", cells[column])
                if match:
                    found.append(Ratio(section, _plain(cells[0]), float(match[1])))
        else:
            column = None
    return found


def figure_png(rows: list[Ratio]) -> bytes:
    """A horizontal bar per measurement, on a log scale centred on 1x."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter

    fig, ax = plt.subplots(figsize=(10, 1.6 + 0.3 * len(rows)), dpi=110)
    labels = [f"{row.section}: {row.label}" for row in rows]
    values = [row.ratio for row in rows]
    cheaper, dearer = "#2e7d32", "#ef6c00"
    colours = [cheaper if value < 1.0 else dearer for value in values]
    positions = list(range(len(rows)))
    ax.barh(positions, values, color=colours, height=0.6)
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks(positions, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(min(values) / 2, max(values) * 4)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}x"))
    for position, value in zip(positions, values, strict=True):
        ax.text(value * 1.1, position, f"{value:g}x", va="center", fontsize=8)
    ax.set_xlabel("time per operation: ours / baseline (log scale)")
    ax.set_title(
        "Each benchmark as a ratio to its baseline (1x: the same cost)",
        fontsize=11,
        loc="left",
    )
    ax.grid(axis="x", which="major", alpha=0.3)
    fig.legend(
        handles=[
            Patch(color=cheaper, label="ours cheaper than the baseline"),
            Patch(color=dearer, label="ours dearer (some baselines do less work)"),
        ],
        loc="lower center",
        ncol=2,
        frameon=False,
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def on_files(files: Files, config: MkDocsConfig) -> Files:
    rows = ratios(README.read_text(encoding="utf-8"))
    files.append(File.generated(config, FIGURE, content=figure_png(rows)))
    return files


def on_page_markdown(
    markdown: str, page: Page, config: MkDocsConfig, files: Files
) -> str:
    if MARKER not in markdown:
        return markdown
    text = README.read_text(encoding="utf-8")
    body = text.split("\n", 1)[1]  # the page has its own title
    body = re.sub(r"^(#+) ", r"#\1 ", body, flags=re.M)  # one level down
    return markdown.replace(MARKER, body)
