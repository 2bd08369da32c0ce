"""The Redis breaker's Lua templates: rendered whole, with the reasons of Python.

The differential test (tests/breaker/test_redis.py) checks that the Lua
machine behaves as the Python one; these check the rendering itself: no
placeholder survives, every reason the Lua can give is a Python-defined one,
and every literal reads back in Lua as exactly the Python value.
"""

from __future__ import annotations

import re
import string
from importlib import resources
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import rxresilience as rxr
from rxresilience.breaker import _reasons, _redis_scripts
from rxresilience.breaker._redis_scripts import (
    lua_number,
    lua_reason,
    lua_string,
    render,
)

from .._redis_server import RedisServer

CONFIGS = [
    rxr.BreakerConfig(3, 10.0, 1, None, None, None, None, 1),
    rxr.BreakerConfig(
        None, 30.0, 2, rxr.CountWindow(5), 0.5, 2.0, 0.75, 5, max_half_open_wait=6.0
    ),
    rxr.BreakerConfig(5, 0.1, 3, rxr.TimeWindow(10.0, 4), 1.0, None, None, 10),
]

TEMPLATES = sorted(
    entry.name
    for entry in resources.files("rxresilience.breaker").iterdir()
    if entry.name.endswith(".lua")
)


def test_the_templates_are_shipped_in_the_package() -> None:
    assert TEMPLATES == [
        "redis_acquire.lua",
        "redis_force.lua",
        "redis_half_open_if_due.lua",
        "redis_prelude.lua",
        "redis_read.lua",
        "redis_record.lua",
    ]


@pytest.mark.parametrize("config", CONFIGS)
def test_a_rendered_script_has_no_placeholder_left(config: rxr.BreakerConfig) -> None:
    for script in render(config):
        assert "$" not in script
        assert "%(" not in script  # nor one of the old %-format style
        assert not string.Template.pattern.search(script)


def test_every_placeholder_of_the_templates_is_filled() -> None:
    """Each template's placeholders are exactly the values rendered (none unused)."""
    values = _redis_scripts._values(CONFIGS[0])
    used: set[str] = set()
    for name in TEMPLATES:
        found = _redis_scripts.template(name[len("redis_") : -len(".lua")])
        used |= set(found.get_identifiers())
    assert used == set(values)


def _moves(script: str) -> list[str]:
    """The reason argument of every ``move(target, reason)`` in ``script``."""
    calls = re.findall(
        r"(?<!function )\bmove\(\s*(?:'[a-z-]+'|target)\s*,\s*(ARGV\[\d\]|[A-Za-z_]\w*)",
        script,
    )
    assert len(calls) == script.count("move(") - script.count("function move(")
    return calls


def test_every_reason_the_lua_gives_is_one_defined_in_python() -> None:
    scripts = render(CONFIGS[1])
    reasons: set[str] = set()
    for script in scripts:
        reasons |= set(_moves(script))
    # Every transition gives a Python-defined reason, or the caller's own
    # (manual control passes the breaker's reason, as its ARGV[6]); every
    # reason the Python machine gives, the Lua one can give too.
    assert reasons == {f"REASON_{name}" for name in _reasons.MACHINE_REASONS} | {
        "reason"
    }
    assert _moves(scripts.force) == ["reason"]
    assert "local target, reason = ARGV[5], ARGV[6]" in scripts.force
    # No reason text is spelt in the Lua itself: only the rendered definitions.
    prelude = _redis_scripts.template("prelude").template
    for name in TEMPLATES:
        text = _redis_scripts.template(name[len("redis_") : -len(".lua")]).template
        for reason in _reasons.MACHINE_REASONS.values():
            words = reason.split("{")[0].strip() or reason.split("}")[-1].strip()
            assert words not in text, (name, words)
    assert "${reasons}" in prelude


SAMPLE_FIELDS: dict[str, dict[str, Any]] = {
    "TRIALS_SUCCEEDED": {"successes": 3},
    "CONSECUTIVE_FAILURES": {"failures": 12},
    "FAILURE_RATE": {"failures": 5, "calls": 10, "threshold": "50%"},
    "SLOW_CALL_RATE": {"slow_calls": 7, "calls": 9, "threshold": "75%"},
}


def _lua_table(fields: dict[str, Any]) -> str:
    return (
        "{"
        + ", ".join(
            f"{key} = {lua_string(v) if isinstance(v, str) else lua_number(v)}"
            for key, v in fields.items()
        )
        + "}"
    )


@pytest.mark.parametrize("name", list(_reasons.MACHINE_REASONS))
def test_each_lua_reason_reads_as_the_python_text(
    redis_server: RedisServer, name: str
) -> None:
    text = _reasons.MACHINE_REASONS[name]
    fields = SAMPLE_FIELDS.get(name, {})
    call = f"REASON_{name}" + (f"({_lua_table(fields)})" if fields else "")
    script = f"{lua_reason(name, text)}\nreturn {call}"
    got = redis_server.client().eval(script, 0)
    assert got.decode() == text.format(**fields)


def test_a_reason_changed_in_python_changes_the_lua(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(
        _reasons.MACHINE_REASONS, "TRIAL_FAILED", "the trial's call failed"
    )
    assert "local REASON_TRIAL_FAILED = 'the trial\\039s call failed'" in (
        render(CONFIGS[0]).record
    )


@pytest.mark.parametrize("text", ["{n:>3} failures", "{n!r} failures", "{a.b} x"])
def test_a_reason_lua_cannot_render_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="plain name"):
        lua_reason("BAD", text)


def test_numbers_are_refused_when_lua_cannot_hold_them_exactly() -> None:
    for value in (float("inf"), float("nan")):
        with pytest.raises(ValueError, match="no Lua numeral"):
            lua_number(value)
    with pytest.raises(ValueError, match="not exact"):
        lua_number(2**53 + 1)
    with pytest.raises(TypeError):
        lua_number(True)
    assert lua_number(-2.5) == "(-2.5)"
    assert lua_number(1e17) == "1e+17"


@given(text=st.text())
def test_a_lua_string_reads_back_as_the_text(
    redis_server: RedisServer, text: str
) -> None:
    got = redis_server.client().eval(f"return {lua_string(text)}", 0)
    assert got == text.encode("utf-8")


@given(
    value=st.one_of(
        st.floats(allow_nan=False, allow_infinity=False),
        st.integers(-(2**53), 2**53),
    )
)
def test_a_lua_number_reads_back_as_exactly_the_value(
    redis_server: RedisServer, value: float
) -> None:
    # Subtracted from 0, so a negative numeral is not read as a comment.
    script = f"return string.format('%.17g', 0 -{lua_number(value)})"
    got = redis_server.client().eval(script, 0)
    assert float(got) == 0 - value
