"""Marble diagrams of recorded traces, drawn with matplotlib (an optional dependency)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._trace import Event, Trace

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["draw_timeline"]


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

    if ax is None:
        _, ax = plt.subplots(figsize=(10, 0.8 + 0.7 * max(1, len(rows))))
    labels = list(rows)
    last = 0.0
    for index, label in enumerate(labels):
        y = len(labels) - 1 - index
        row = rows[label]
        events = row.events if isinstance(row, Trace) else list(row)
        for start, end in (spans or {}).get(label, ()):
            stop = (
                end if end is not None else (until if until is not None else start + 1)
            )
            ax.plot([start, stop], [y, y], color="tab:blue", linewidth=6, alpha=0.25)
            last = max(last, stop)
        ax.axhline(y, color="0.8", linewidth=1, zorder=0)
        for time, kind, payload in events:
            last = max(last, time)
            if kind == "next":
                ax.plot(time, y, "o", color="tab:green", markersize=9)
                text = payload if isinstance(payload, str) else repr(payload)
                ax.annotate(
                    text[:12],
                    (time, y),
                    textcoords="offset points",
                    xytext=(0, 9),
                    ha="center",
                    fontsize=8,
                )
            elif kind == "error":
                ax.plot(time, y, "x", color="tab:red", markersize=11, markeredgewidth=3)
                ax.annotate(
                    type(payload).__name__,
                    (time, y),
                    textcoords="offset points",
                    xytext=(0, -15),
                    ha="center",
                    fontsize=8,
                    color="tab:red",
                )
            else:
                ax.plot([time, time], [y - 0.25, y + 0.25], color="black", linewidth=2)
    ax.plot([], [], "o", color="tab:green", label="value")
    ax.plot([], [], "x", color="tab:red", markeredgewidth=3, label="error")
    ax.plot(
        [], [], "|", color="black", markersize=12, markeredgewidth=2, label="completed"
    )
    if spans:
        ax.plot([], [], color="tab:blue", linewidth=6, alpha=0.25, label="subscribed")
    ax.legend(loc="upper left", fontsize=8, ncol=4, frameon=False)
    ax.set_yticks(range(len(labels)), list(reversed(labels)))
    ax.set_ylim(-0.7, len(labels) + 0.2)
    ax.set_xlim(left=-0.5, right=(until if until is not None else last) + 0.5)
    ax.set_xlabel("virtual time (s)")
    if title:
        ax.set_title(title)
    return ax
