"""The Lua scripts of ``RedisBreakerStorage``: templates rendered per breaker.

The scripts are ``redis_*.lua`` beside this module, shipped in the package:
``redis_prelude.lua`` (the settings, the reasons, the state read at the
start, the shared functions) and one file per operation. They are templates
(:class:`string.Template`, ``${name}``): :func:`render` fills in a breaker's
settings when its storage is bound, so each breaker runs scripts with its
settings as constants, and the reasons of :mod:`._reasons`, so a reason is
written once, in Python.

Every value is rendered as a Lua literal that Lua reads back exactly:

- a text as a single-quoted Lua string, every byte that is not printable
  ASCII (and ``'`` and ``\\``) as a three-digit decimal escape;
- an int as its digits (within 2**53, where a Lua number is exact), a float
  as its ``repr`` (the shortest text that reads back as the same double,
  ``1e+17`` included), negative ones in parentheses (``a -(-1.0)``, never
  ``a --1.0``, which Lua reads as a comment);
- a reason with fields as a Lua function of a table of them
  (``REASON_FAILURE_RATE({failures = f, calls = c, threshold = t})``).
"""

from __future__ import annotations

import functools
import math
import re
import string
from importlib import resources
from typing import NamedTuple

from .._arguments import is_number, require_instance
from .._clock import RESOLUTION
from ._machine import BreakerConfig
from ._reasons import MACHINE_REASONS, rate_text, trial_wait_cap
from ._window import CountWindow, TimeWindow

__all__ = [
    "LOG_SIZE",
    "Scripts",
    "lua_number",
    "lua_reason",
    "lua_string",
    "render",
    "template",
]

#: Transitions kept in Redis for processes catching up; one that has missed
#: more sees only the last ones.
LOG_SIZE = 32

#: The largest int a Lua number (a double) holds exactly, and its negative.
_EXACT_INT = 2**53

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEYWORDS = """and break do else elseif end false for function if in local nil not
or repeat return then true until while"""
_LUA_KEYWORDS = frozenset(_KEYWORDS.split())
# Bytes a Lua string literal may hold as they are.
_PLAIN = frozenset(range(0x20, 0x7F)) - {ord("'"), ord("\\")}


_OPERATIONS = ("acquire", "record", "half_open_if_due", "force", "read")


class Scripts(NamedTuple):
    """One breaker's scripts, each the rendered prelude and its operation."""

    acquire: str
    record: str
    half_open_if_due: str
    force: str
    read: str


def lua_string(text: str) -> str:
    """``text`` as a Lua string literal (its UTF-8 bytes, escaped)."""
    require_instance("text", text, str, "a str")
    return (
        "'"
        + "".join(
            chr(byte) if byte in _PLAIN else f"\\{byte:03d}"
            for byte in text.encode("utf-8")
        )
        + "'"
    )


def lua_number(value: int | float) -> str:
    """``value`` as a Lua numeral that reads back as exactly the same number."""
    if not is_number(value):
        raise TypeError(f"a Lua number needs an int or a float, got {value!r}")
    if isinstance(value, int):
        if abs(value) > _EXACT_INT:
            raise ValueError(f"{value} is not exact as a Lua number")
        text = str(value)
    else:
        if not math.isfinite(value):
            raise ValueError(f"{value!r} has no Lua numeral")
        text = repr(value)
    return f"({text})" if text.startswith("-") else text


def lua_reason(name: str, text: str) -> str:
    """The Lua definition of reason ``name``: a string, or a function of its fields."""
    fields: list[str] = []
    parts: list[str] = []
    for literal, field, spec, conversion in string.Formatter().parse(text):
        if literal:
            parts.append(lua_string(literal))
        if field is None:
            continue
        if spec or conversion or not _is_identifier(field):
            raise ValueError(
                f"reason {name}: field {{{field}}} must be a plain name "
                "(no format spec or conversion) that Lua can use"
            )
        fields.append(field)
        parts.append(f"fields.{field}")
    if not _is_identifier(name):
        raise ValueError(f"reason name {name!r} is not a Lua identifier")
    if not fields:
        return f"local REASON_{name} = {lua_string(text)}"
    body = " .. ".join(parts)
    return f"local function REASON_{name}(fields) return {body} end"


def _is_identifier(name: str) -> bool:
    return _IDENTIFIER.fullmatch(name) is not None and name not in _LUA_KEYWORDS


@functools.cache
def template(name: str) -> string.Template:
    """The template ``redis_{name}.lua``, read once from the package."""
    source = resources.files(__package__).joinpath(f"redis_{name}.lua")
    return string.Template(source.read_text(encoding="utf-8"))


def render(config: BreakerConfig) -> Scripts:
    """The scripts of a breaker with ``config``, settings and reasons filled in."""
    values = _values(config)
    prelude = template("prelude").substitute(values)
    return Scripts(
        *(prelude + template(name).substitute(values) for name in _OPERATIONS)
    )


def _values(config: BreakerConfig) -> dict[str, str]:
    """The breaker's settings as Lua literals, and the reasons as Lua definitions."""
    window = config.window
    kind, size, width = "", 1, 1.0
    if isinstance(window, CountWindow):
        kind, size = "count", window.size
    elif isinstance(window, TimeWindow):
        kind, size = "time", window.bucket_count
        width = window.seconds / window.bucket_count
    fail_rate = config.failure_rate_threshold
    slow_rate = config.slow_call_rate_threshold
    wait = config.max_half_open_wait
    reset = float(config.reset_timeout)
    return {
        "threshold": lua_number(config.failure_threshold or 0),
        "reset": lua_number(reset),
        "trials": lua_number(config.half_open_max_calls),
        "window": lua_string(kind),
        "size": lua_number(size),
        "width": lua_number(float(width)),
        "fail_rate": lua_number(float(fail_rate or 0.0)),
        "fail_rate_text": lua_string("" if fail_rate is None else rate_text(fail_rate)),
        "slow_rate": lua_number(float(slow_rate or 0.0)),
        "slow_rate_text": lua_string("" if slow_rate is None else rate_text(slow_rate)),
        "minimum": lua_number(config.minimum_calls),
        "permit_wait": lua_number(float(reset if wait is None else wait)),
        "trial_limit": lua_number(float(wait or 0.0)),
        "trial_wait_cap": lua_number(trial_wait_cap(reset)),
        "resolution": lua_number(RESOLUTION),
        "log_size": lua_number(LOG_SIZE),
        "reasons": "\n".join(
            lua_reason(name, text) for name, text in MACHINE_REASONS.items()
        ),
    }
