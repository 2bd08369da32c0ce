"""The built site in a real browser: headless Chromium over the DevTools protocol.

Served from a local HTTP server, the home page, the circuit-breaker notebook
and an API page load without a console error, every image has a size, and
the search box finds ``retry_after``. Screenshots go to ``site-shots/``
(git-ignored), one of the whole page and one of each figure.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.server
import pathlib
import threading
from collections.abc import Iterator

import pytest

from ._cdp import Page, browser
from .conftest import ROOT

SHOTS = ROOT / "site-shots"
PAGES = {
    "home": "",
    "notebook-circuit-breaker": "notebooks/02_circuit_breaker/",
    "api-circuit-breaker": "reference/breaker/",
}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve(directory: pathlib.Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def _images(page: Page) -> list[tuple[str, int, int]]:
    found = await page.evaluate(
        "[...document.images].map(i => [i.currentSrc.slice(0, 60),"
        " i.naturalWidth, i.naturalHeight])"
    )
    return [tuple(image) for image in found]  # type: ignore[misc]


async def _search(page: Page, query: str) -> list[str]:
    """Type into Material's search box; the titles of the results."""
    await page.evaluate(
        "document.querySelector('[data-md-toggle=search]').checked = true;"
        "document.querySelector('[data-md-component=search-query]').focus()"
    )
    await page.send("Input.insertText", text=query)
    for _ in range(200):
        titles = await page.evaluate(
            "[...document.querySelectorAll('.md-search-result__item')]"
            ".map(e => e.innerText.split('\\n')[0])"
        )
        if titles:
            return list(titles)
        await asyncio.sleep(0.05)
    return []


async def _figure_shots(page: Page, name: str) -> int:
    boxes = await page.evaluate(
        "[...document.images].filter(i => i.naturalWidth > 100).map(i => {"
        " const r = i.getBoundingClientRect();"
        " return {x: r.left + scrollX, y: r.top + scrollY,"
        " width: r.width, height: r.height}; })"
    )
    for number, box in enumerate(boxes, 1):
        await page.screenshot(SHOTS / f"{name}-figure-{number}.png", clip=box)
    return len(boxes)


async def _visit_all(base: str, profile: pathlib.Path) -> dict[str, object]:
    seen: dict[str, object] = {}
    async with browser(profile) as page:
        for name, path in PAGES.items():
            await page.open(base + path)
            seen[f"{name} images"] = await _images(page)
            await page.screenshot(SHOTS / f"{name}.png")
            if name.startswith("notebook"):
                seen[f"{name} figure shots"] = await _figure_shots(page, name)
            if name == "home":
                seen["search"] = await _search(page, "retry_after")
                await page.screenshot(SHOTS / "home-search-retry_after.png")
            seen[f"{name} errors"] = page.console_errors()
    return seen


def test_the_site_renders_in_chromium(
    site: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    with serve(site) as base:
        seen = asyncio.run(_visit_all(base, tmp_path / "profile"))
    for name in PAGES:
        assert seen[f"{name} errors"] == [], name
        images = seen[f"{name} images"]
        assert isinstance(images, list)
        empty = [image for image in images if image[1] == 0 or image[2] == 0]
        assert empty == [], f"{name}: images with no size"
    assert len(seen["notebook-circuit-breaker images"]) >= 1  # type: ignore[arg-type]
    assert seen["notebook-circuit-breaker figure shots"] >= 1  # type: ignore[operator]
    assert seen["search"], "the search box found nothing for retry_after"


@pytest.mark.parametrize("flag", ["--headless", "--disable-background-networking"])
def test_chromium_is_started_for_a_closed_network(flag: str) -> None:
    from ._cdp import FLAGS

    assert flag in FLAGS
