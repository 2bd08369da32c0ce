"""asyncio and a real HTTP client against a real local server (aiohttp + httpx).

Real delays here are tens of milliseconds and bounded; everything else in the
suite runs in virtual time.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import httpx
import pytest
import reactivex as rx
from aiohttp import web
from reactivex import operators as ops

import rxresilience as rxr


class Server:
    """A local HTTP server whose endpoints fail, hang or throttle on a script."""

    def __init__(self) -> None:
        self.requests: collections.Counter[str] = collections.Counter()
        self.times: dict[str, list[float]] = collections.defaultdict(list)
        self.dropped: collections.Counter[str] = collections.Counter()
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _count(self, request: web.Request) -> int:
        name = request.path.strip("/") + (
            "?" + request.query_string if request.query_string else ""
        )
        self.requests[name] += 1
        self.times[name].append(time.monotonic())
        return self.requests[name]

    async def ok(self, request: web.Request) -> web.Response:
        self._count(request)
        return web.json_response({"id": 42, "name": "Ada"})

    async def flaky(self, request: web.Request) -> web.Response:
        """Fails (500) the first ``fail`` requests with the same ``key``."""
        n = self._count(request)
        if n <= int(request.query.get("fail", "2")):
            return web.Response(status=500, text="boom")
        return web.json_response({"attempt": n})

    async def hang(self, request: web.Request) -> web.Response:
        self._count(request)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            self.dropped["hang"] += 1  # the client went away: aiohttp cancels us
            raise
        return web.Response(text="too late")

    async def busy(self, request: web.Request) -> web.Response:
        """503 with ``Retry-After: 0.2`` once, then 200."""
        n = self._count(request)
        if n == 1:
            return web.Response(status=503, headers={"Retry-After": "0.2"})
        return web.json_response({"attempt": n})

    async def down(self, request: web.Request) -> web.Response:
        self._count(request)
        return web.Response(status=503, text="down")

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application(handler_args={"handler_cancellation": True})
        app.add_routes(
            [
                web.get("/ok", self.ok),
                web.get("/flaky", self.flaky),
                web.get("/hang", self.hang),
                web.get("/busy", self.busy),
                web.get("/down", self.down),
            ]
        )
        runner = web.AppRunner(app, handler_cancellation=True)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", self.port)
        self._loop.run_until_complete(site.start())
        self._runner = runner
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def start(self) -> None:
        self._thread.start()
        assert self._ready.wait(10), "the test server did not start"

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def wait_for(self, condition: Any, seconds: float = 3.0) -> bool:
        """Wait (bounded) for something the server notices asynchronously."""
        deadline = time.monotonic() + seconds
        event = threading.Event()
        while time.monotonic() < deadline:
            if condition():
                return True
            event.wait(0.01)
        return bool(condition())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    running = Server()
    running.start()
    yield running
    running.stop()


def test_retries_reach_success(server: Server) -> None:
    async def main() -> Any:
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            get = rxr.from_async(
                lambda: client.get("/flaky", params={"key": "a", "fail": 2})
            )
            response = await rxr.to_async(
                get.pipe(
                    rxr.retry(
                        max_attempts=4,
                        backoff=0.01,
                        retry_if_result=lambda r: r.status_code >= 500,
                    )
                )
            )
            return response.json()

    assert asyncio.run(main()) == {"attempt": 3}
    assert server.requests["flaky?key=a&fail=2"] == 3


def test_a_hanging_request_is_cancelled_at_the_timeout(server: Server) -> None:
    async def main() -> None:
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            get = rxr.from_async(lambda: client.get("/hang"))
            with pytest.raises(rxr.TimeoutError):
                await rxr.to_async(get.pipe(rxr.timeout(0.1)))

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started < 5
    assert server.wait_for(lambda: server.dropped["hang"] >= 1), (
        "the server never saw the drop"
    )


def test_the_breaker_opens_and_rejects_without_sending_requests(server: Server) -> None:
    breaker = rxr.CircuitBreaker(
        failure_threshold=2,
        reset_timeout=60.0,
        failure_if=lambda r: r.status_code >= 500,
    )

    async def main() -> list[str]:
        outcomes = []
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            get = rxr.from_async(lambda: client.get("/down")).pipe(
                rxr.circuit_breaker(breaker)
            )
            for _ in range(5):
                try:
                    response = await rxr.to_async(get)
                    outcomes.append(str(response.status_code))
                except rxr.CircuitOpenError:
                    outcomes.append("rejected")
        return outcomes

    assert asyncio.run(main()) == ["503", "503", "rejected", "rejected", "rejected"]
    assert server.requests["down"] == 2


def test_retry_after_is_honoured(server: Server) -> None:
    async def main() -> Any:
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            get = rxr.from_async(lambda: client.get("/busy"))
            response = await rxr.to_async(
                get.pipe(
                    ops.map(rxr.raise_for_retry_after), rxr.retry(3, backoff=0.001)
                )
            )
            return response.json()

    assert asyncio.run(main()) == {"attempt": 2}
    first, second = server.times["busy"]
    assert second - first >= 0.19


def test_resilient_around_a_real_client(server: Server) -> None:
    breaker = rxr.CircuitBreaker(failure_threshold=5, reset_timeout=30.0)

    async def main() -> Any:
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            get = rxr.from_async(
                lambda: client.get("/flaky", params={"key": "r", "fail": 1})
            )
            user = get.pipe(
                ops.map(lambda r: r.raise_for_status()),
                rxr.resilient(
                    timeout=2.0,
                    retry=rxr.RetryPolicy(max_attempts=3, backoff=0.01),
                    breaker=breaker,
                ),
            )
            response = await rxr.to_async(user)
            return response.json()

    assert asyncio.run(main()) == {"attempt": 2}
    assert breaker.metrics().failures == 1


def test_call_async_guards_a_plain_coroutine(server: Server) -> None:
    breaker = rxr.CircuitBreaker(failure_threshold=1, reset_timeout=60.0)

    async def main() -> list[Any]:
        async with httpx.AsyncClient(base_url=server.base_url) as client:

            async def fetch(path: str) -> int:
                response = await client.get(path)
                response.raise_for_status()
                return response.status_code

            results: list[Any] = [await breaker.call_async(fetch, "/ok")]
            with pytest.raises(httpx.HTTPStatusError):
                await breaker.call_async(fetch, "/down")
            with pytest.raises(rxr.CircuitOpenError):
                await breaker.call_async(fetch, "/ok")
            results.append(breaker.state.value)
            return results

    before = server.requests["ok"]
    assert asyncio.run(main()) == [200, "open"]
    assert server.requests["ok"] == before + 1


def test_cancelling_the_awaiting_task_disposes_the_subscription() -> None:
    disposed = threading.Event()

    async def main() -> None:
        never = rx.never().pipe(ops.finally_action(disposed.set))
        task = asyncio.ensure_future(rxr.to_async(never))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert disposed.is_set()


def test_every_timer_runs_on_the_loop_without_threads() -> None:
    threads_before = threading.active_count()

    async def main() -> Any:
        source = rxr.testing.flaky(["ok"], failures=2)
        return await rxr.to_async(
            source.pipe(
                rxr.timeout(1.0),
                rxr.retry(3, backoff=rxr.ConstantBackoff(0.01)),
                rxr.timeout(total=2.0),
            )
        )

    assert asyncio.run(main()) == "ok"
    assert threading.active_count() == threads_before


def test_from_async_without_a_loop_is_a_clear_error() -> None:
    async def answer() -> int:
        return 1

    with pytest.raises(RuntimeError, match="event loop"):
        rxr.from_async(answer).run()


def test_parse_retry_after_reads_seconds_and_dates() -> None:
    assert rxr.parse_retry_after("3") == 3.0
    assert rxr.parse_retry_after(None) is None
    assert (
        rxr.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    )


@pytest.mark.parametrize(
    "date",
    [
        "Wed Oct 21 07:28:00 2015",  # asctime, which RFC 9110 makes recipients accept
        "Wed, 21 Oct 2015 07:28:00 -0000",
    ],
)
@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Tokyo", "UTC"])
def test_every_http_date_is_read_as_gmt_whatever_the_local_zone(
    date: str, zone: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Naive dates were read as local time: 14,410 s in New York, 0 in Tokyo.
    import time

    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        assert rxr.parse_retry_after(date, now=1445412470.0) == 10.0
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize(
    "value", ["-5", "1_000", "\u0661\u0662", "1e20", "1e400", "nan"]
)
def test_a_retry_after_that_is_no_delay_seconds_is_no_header(value: str) -> None:
    # "-5" meant "retry now", skipping the backoff; "1_000" and Arabic-Indic
    # digits parsed; "1e20" meant never.
    assert rxr.parse_retry_after(value) is None


def test_retry_after_reads_numbers_and_any_case_of_the_header_name() -> None:
    assert rxr.parse_retry_after(" 120 ") == 120.0
    assert rxr.parse_retry_after("1.5") == 1.5

    class Response:
        status_code = 503
        headers: ClassVar[dict[str, str]] = {"retry-after": "7"}

    with pytest.raises(rxr.RetryAfterError) as raised:
        rxr.raise_for_retry_after(Response())
    assert raised.value.retry_after == 7.0


def test_a_retry_after_date_is_measured_on_the_scheduler_s_clock() -> None:
    # Measured on the wall clock: in virtual time a "come back in 30 s" date
    # was retried at once, or never, by the date the test ran.
    from reactivex.testing import TestScheduler

    scheduler = TestScheduler()
    scheduler.advance_to(1445412440.0)  # virtual seconds since the epoch

    class Response:
        status_code = 503
        headers: ClassVar[dict[str, str]] = {
            "Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"
        }

    with pytest.raises(rxr.RetryAfterError) as raised:
        rxr.raise_for_retry_after(Response(), scheduler=scheduler)
    assert raised.value.retry_after == 40.0


def test_retry_after_takes_bytes_and_reads_endless_digits_as_never() -> None:
    assert rxr.parse_retry_after(b"120") == 120.0
    assert rxr.parse_retry_after("9" * 400) == float("inf")  # never, not "no header"


def test_raise_for_retry_after_refuses_a_scheduler_that_is_not_one() -> None:
    class Response:
        status_code = 200

    with pytest.raises(TypeError, match="scheduler"):
        rxr.raise_for_retry_after(Response(), scheduler="x")  # type: ignore[arg-type]
