"""Marble diagrams of recorded traces, drawn with matplotlib (an optional dependency)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._trace import Event, Trace

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["draw_timeline"]

# Sizes in points: the figure is usually shown shrunk to a page's width.
_FONT_SIZE = 9
_BAR = 16  # the completion bar's height, centred on its row
_GAP = 3  # between a label and what it must clear
_LINE = _FONT_SIZE + 3  # a label's height, with its descent
# Value labels go on up to two lines above their row (the first clears the
# completion bar; a label that would overlap its neighbour takes the next),
# error labels on one line below it.
_VALUE_LINES = (_BAR / 2 + _GAP, _BAR / 2 + 2 * _GAP + _LINE)
_ERROR_LINES = (_BAR / 2 + _GAP,)
_ABOVE = _VALUE_LINES[-1] + _LINE + _GAP  # the room a row's labels take above it
_BELOW = _ERROR_LINES[-1] + _LINE + _GAP  # and below it
_ROW_PITCH = 58.0  # between rows in a figure of our own: _ABOVE + _BELOW fits
_LABEL_LENGTH = 16  # characters, "…" included


def _label(payloads: Sequence[Any]) -> str:
    text = ", ".join(p if isinstance(p, str) else repr(p) for p in payloads)
    return text if len(text) <= _LABEL_LENGTH else text[: _LABEL_LENGTH - 1] + "…"


def _text_width(text: str) -> float:
    """The width of ``text`` at the labels' font size, in points."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    width, _, _ = TextToPath().get_text_width_height_descent(
        text, FontProperties(size=_FONT_SIZE), ismath=False
    )
    return float(width)


def _place(
    centres: Sequence[float], texts: Sequence[str], lines: int, width: float
) -> list[tuple[int, float] | None]:
    """Each label's line and its horizontal shift in points, or None where no
    line has room for it (the label is left out).

    ``centres`` are the marks' positions in points from the axes' left edge
    (``width`` points wide), in increasing order. Greedy, left to right: a
    label takes the first line where it clears the label before it, shifted
    back inside the axes at either end.
    """
    right_edges = [float("-inf")] * lines
    placed: list[tuple[int, float] | None] = []
    for centre, text in zip(centres, texts, strict=True):
        half = _text_width(text) / 2 + 1.0
        shift = max(0.0, half - centre) - max(0.0, centre + half - width)
        left = centre + shift - half
        line = next((i for i, edge in enumerate(right_edges) if left > edge), None)
        if line is None:
            placed.append(None)
            continue
        right_edges[line] = left + 2 * half + _GAP
        placed.append((line, shift))
    return placed


def draw_timeline(
    rows: Mapping[str, Trace | Sequence[Event] | Sequence[tuple[float, str, Any]]],
    *,
    ax: Axes | None = None,
    title: str = "",
    spans: Mapping[str, Sequence[tuple[float, float | None]]] | None = None,
    until: float | None = None,
) -> Axes:
    """Draw one marble line per row: values as dots, errors as red crosses,
    completions as bars, and optional ``spans`` (subscriptions) as thick bands.

    Values are labelled above their row and errors (by type) below it, clear
    of the completion bars. Values at one instant share a dot and a label
    (``"1, 2, 3"``); a value label that would overlap the one before it
    moves up a line, and a label with no room left is left out rather than
    drawn over another. The legend sits to the right of the axes, covering
    nothing. On axes of your own, lay the figure out (``tight_layout``)
    before drawing: the labels are spaced for the axes' size at the time.

    Examples:
        >>> import reactivex as rx
        >>> from rxresilience.testing import run
        >>> trace = run(lambda s: rx.timer(2.0, scheduler=s))
        >>> axes = draw_timeline({"timer": trace}, title="a timer")  # doctest: +SKIP

    Args:
        rows: label -> a ``Trace`` or its events, top to bottom.
        ax: where to draw (default: a new figure).
        title: the axes title.
        spans: label -> ``(start, end)`` intervals to shade on that row
            (``end`` None: still open), e.g. a ``flaky`` source's subscriptions.
        until: the right end of the time axis.

    Returns:
        The axes.
    """
    import matplotlib.pyplot as plt

    labels = list(rows)
    count = max(1, len(labels))
    own = None
    if ax is None:
        # title, axis labels and margins, then the rows at _ROW_PITCH apart
        height = (_ABOVE + _BELOW + (count - 1) * _ROW_PITCH) / 72 + 1.15
        own, ax = plt.subplots(figsize=(10, height))
    figure = ax.figure
    events = {
        label: list(row.events if isinstance(row, Trace) else row)
        for label, row in rows.items()
    }
    bands = {
        label: [
            (
                start,
                end if end is not None else until if until is not None else start + 1,
            )
            for start, end in (spans or {}).get(label, ())
        ]
        for label in labels
    }
    last = max(
        [0.0]
        + [time for row in events.values() for time, _, _ in row]
        + [stop for row in bands.values() for _, stop in row]
    )
    left, right = -0.5, (until if until is not None else last) + 0.5
    ax.set_xlim(left, right)
    ax.set_ylim(-0.5, count - 0.5)  # for the layout; set in points below
    ax.set_yticks(range(len(labels)), list(reversed(labels)))
    ax.set_xlabel("virtual time (s)")
    if title:
        ax.set_title(title)
    ax.plot([], [], "o", color="tab:green", label="value")
    ax.plot([], [], "x", color="tab:red", markeredgewidth=3, label="error")
    ax.plot(
        [], [], "|", color="black", markersize=12, markeredgewidth=2, label="completed"
    )
    if spans:
        ax.plot([], [], color="tab:blue", linewidth=6, alpha=0.25, label="subscribed")
    ax.legend(
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=_FONT_SIZE,
        frameon=False,
        borderaxespad=0.0,
    )
    if own is not None:
        own.tight_layout()
    # The axes' size in points, now that it is laid out: labels are spaced in
    # points (they must clear each other and the marks whatever the scale).
    width = ax.bbox.width * 72.0 / figure.dpi
    height = ax.bbox.height * 72.0 / figure.dpi
    if count > 1:
        pitch = max((height - _ABOVE - _BELOW) / (count - 1), 1.0)
        ax.set_ylim(-_BELOW / pitch, count - 1 + _ABOVE / pitch)
    else:
        slack = max(height - _ABOVE - _BELOW, 0.0) / 2  # one row: points are units
        ax.set_ylim(-(_BELOW + slack), _ABOVE + slack)
    points_per_second = width / (right - left)
    for index, label in enumerate(labels):
        y = len(labels) - 1 - index
        for start, stop in bands[label]:
            ax.plot([start, stop], [y, y], color="tab:blue", linewidth=6, alpha=0.25)
        ax.axhline(y, color="0.8", linewidth=1, zorder=0)
        values: dict[float, list[Any]] = {}
        errors: dict[float, list[str]] = {}
        for time, kind, payload in events[label]:
            if kind == "next":
                values.setdefault(time, []).append(payload)
            elif kind == "error":
                errors.setdefault(time, []).append(type(payload).__name__)
            else:
                ax.plot(
                    time,
                    y,
                    "|",
                    color="black",
                    markersize=_BAR,
                    markeredgewidth=2,
                    zorder=3,
                )
        for time in values:
            ax.plot(time, y, "o", color="tab:green", markersize=9, zorder=2)
        for time in errors:
            ax.plot(
                time,
                y,
                "x",
                color="tab:red",
                markersize=11,
                markeredgewidth=3,
                zorder=2,
            )
        for marks, offsets, colour in (
            (values, _VALUE_LINES, "black"),
            (errors, _ERROR_LINES, "tab:red"),
        ):
            times = sorted(marks)
            texts = [_label(marks[time]) for time in times]
            centres = [(time - left) * points_per_second for time in times]
            placed = _place(centres, texts, len(offsets), width)
            for time, text, place in zip(times, texts, placed, strict=True):
                if place is None:
                    continue
                line, shift = place
                above = offsets is _VALUE_LINES
                ax.annotate(
                    text,
                    (time, y),
                    textcoords="offset points",
                    xytext=(shift, offsets[line] if above else -offsets[line]),
                    ha="center",
                    va="bottom" if above else "top",
                    fontsize=_FONT_SIZE,
                    color=colour,
                )
    return ax
