"""Headless Chromium driven through the Chrome DevTools protocol.

Debian's ``chromium`` package, started with the flags this closed network
needs (no background networking, no component updates) and a fresh profile;
the protocol's websocket is spoken with ``aiohttp``, which the tests already
use. Nothing here downloads a browser.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import pathlib
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

FLAGS = [
    "--headless",
    "--no-sandbox",  # the machine runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
]


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise RuntimeError("chromium is not installed: run `sh .ci/install-chromium`")
    return found


@dataclass
class Page:
    """One tab: commands by id, events kept in order of arrival."""

    socket: aiohttp.ClientWebSocketResponse
    events: list[dict[str, Any]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _waiting: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    _reader: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for message in self.socket:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            if "id" in data:
                future = self._waiting.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
            else:
                self.events.append(data)
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(ConnectionError("the browser went away"))

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        command = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = (
            asyncio.get_running_loop().create_future()
        )
        self._waiting[command] = future
        await self.socket.send_str(
            json.dumps({"id": command, "method": method, "params": params})
        )
        reply = await asyncio.wait_for(future, timeout=60)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (promises awaited)."""
        reply = await self.send(
            "Runtime.evaluate",
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
        )
        if "exceptionDetails" in reply:
            raise RuntimeError(f"{expression!r}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    async def open(self, url: str, *, timeout: float = 60) -> None:
        """Navigate and wait for the load event and every image."""
        self.events.clear()
        start = len(self.events)
        await self.send("Page.navigate", url=url)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not any(
            e.get("method") == "Page.loadEventFired" for e in self.events[start:]
        ):
            if loop.time() > deadline:
                raise TimeoutError(f"{url} did not load in {timeout} s")
            await asyncio.sleep(0.05)
        await self.evaluate(
            "Promise.all([...document.images].map(i => i.complete ? 0 :"
            " new Promise(r => { i.onload = r; i.onerror = r; })))"
        )

    def console_errors(self) -> list[str]:
        """Errors the page reported: console.error, exceptions, failed loads."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params["type"] in (
                "error",
                "assert",
            ):
                texts = [
                    str(a.get("value", a.get("description"))) for a in params["args"]
                ]
                found.append("console: " + " ".join(texts))
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                found.append(
                    "exception: "
                    + str(details.get("exception", {}).get("description", details))
                )
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                entry = params["entry"]
                found.append(f"log: {entry['text']} {entry.get('url', '')}")
        return found

    async def screenshot(
        self, path: pathlib.Path, *, clip: dict[str, float] | None = None
    ) -> None:
        """A PNG of the whole page (at most 8,000 px tall), or of ``clip``."""
        if clip is None:
            metrics = await self.send("Page.getLayoutMetrics")
            size = metrics["cssContentSize"]
            clip = {
                "x": 0,
                "y": 0,
                "width": size["width"],
                "height": min(size["height"], 8000),
            }
        shot = await self.send(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={**clip, "scale": 1},
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))


@contextlib.asynccontextmanager
async def browser(profile: pathlib.Path) -> AsyncIterator[Page]:
    """Start Chromium with an empty profile and attach to its first tab."""
    profile.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [chromium_path(), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        for _ in range(600):
            if port_file.exists() and port_file.read_text().strip():
                break
            if process.poll() is not None:
                raise RuntimeError(f"chromium exited with {process.returncode}")
            await asyncio.sleep(0.05)
        else:
            raise TimeoutError("chromium did not open its debugging port")
        port = int(port_file.read_text().split()[0])
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as reply:
                targets = await reply.json()
            page_url = next(
                t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page"
            )
            async with session.ws_connect(page_url, max_msg_size=0) as socket:
                page = Page(socket)
                page.start()
                for domain in ("Page", "Runtime", "Log"):
                    await page.send(f"{domain}.enable")
                await page.send(
                    "Emulation.setDeviceMetricsOverride",
                    width=1280,
                    height=900,
                    deviceScaleFactor=1,
                    mobile=False,
                )
                yield page
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
