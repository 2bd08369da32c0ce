"""``draw_timeline``: labels that never overlap, a legend that covers nothing."""

from __future__ import annotations

import itertools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.transforms import Bbox

from rxresilience.testing import draw_timeline

ROWS = {
    # a value and the completion at one instant (a `just` after a wait)
    "answer": [(6.0, "next", "profile"), (6.0, "completed", None)],
    # values a few hundredths apart, and three at one instant
    "burst": [
        (1.0, "next", "alpha"),
        (1.05, "next", "beta"),
        (1.1, "next", "gamma"),
        (3.0, "next", 1),
        (3.0, "next", 2),
        (3.0, "next", 3),
        (3.0, "completed", None),
    ],
    # errors close together, then one with its completion bar nearby
    "timeouts": [
        (2.0, "error", TimeoutError()),
        (2.1, "error", TimeoutError()),
        (8.0, "next", "late"),
        (8.0, "error", ConnectionError()),
    ],
}


@pytest.fixture
def drawn() -> Axes:
    ax = draw_timeline(
        ROWS,
        spans={"answer": [(0.0, 2.0), (3.0, None)]},
        title="a title",
        until=10,
    )
    ax.figure.tight_layout()
    ax.figure.canvas.draw()
    yield ax
    plt.close(ax.figure)


def _texts(ax: Axes) -> list[Bbox]:
    renderer = ax.figure.canvas.get_renderer()  # type: ignore[attr-defined]
    return [t.get_window_extent(renderer) for t in ax.texts if t.get_text()]


def _inside(inner: Bbox, outer: Bbox) -> bool:
    return bool(
        outer.x0 <= inner.x0
        and inner.x1 <= outer.x1
        and outer.y0 <= inner.y0
        and inner.y1 <= outer.y1
    )


def test_no_two_labels_overlap(drawn: Axes) -> None:
    boxes = _texts(drawn)
    assert len(boxes) >= 6
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), (a, b)


def test_no_label_touches_a_completion_bar(drawn: Axes) -> None:
    renderer = drawn.figure.canvas.get_renderer()  # type: ignore[attr-defined]
    bars = [
        line.get_window_extent(renderer)
        for line in drawn.lines
        if isinstance(line, Line2D)
        and line.get_marker() == "|"
        and len(line.get_xdata())
    ]
    assert len(bars) == 2
    for label, bar in itertools.product(_texts(drawn), bars):
        assert not label.overlaps(bar), (label, bar)


def test_the_legend_sits_outside_the_data(drawn: Axes) -> None:
    renderer = drawn.figure.canvas.get_renderer()  # type: ignore[attr-defined]
    legend = drawn.get_legend()
    assert legend is not None
    box = legend.get_window_extent(renderer)
    plot = drawn.get_window_extent(renderer)
    assert not box.overlaps(plot)
    assert _inside(box, drawn.figure.bbox)
    labels = [text.get_text() for text in legend.get_texts()]
    assert labels == ["value", "error", "completed", "subscribed"]


def test_every_label_stays_inside_the_axes(drawn: Axes) -> None:
    plot = drawn.get_window_extent(
        drawn.figure.canvas.get_renderer()  # type: ignore[attr-defined]
    )
    for box in _texts(drawn):
        assert _inside(box, plot), (box, plot)


def test_values_at_one_instant_share_one_label(drawn: Axes) -> None:
    labels = [t.get_text() for t in drawn.texts]
    assert "1, 2, 3" in labels


def test_the_axes_are_labelled(drawn: Axes) -> None:
    assert drawn.get_xlabel() == "virtual time (s)"
    assert [t.get_text() for t in drawn.get_yticklabels()] == [
        "timeouts",
        "burst",
        "answer",
    ]
    assert drawn.get_title() == "a title"


def test_an_axes_of_the_callers_own_is_drawn_on() -> None:
    figure, ax = plt.subplots()
    try:
        assert draw_timeline({"one": [(1.0, "next", "x")]}, ax=ax) is ax
    finally:
        plt.close(figure)
