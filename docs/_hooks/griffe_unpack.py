"""Griffe extension: ``**options: Unpack[SomeTypedDict]`` shown as its keywords.

The operators take their options as typed keyword lists (one TypedDict per
family, shared with the policies), so the signature Python reports is
``retry(max_attempts, **options)``. The reference shows what a caller types
instead: every key of the TypedDict (its bases included) as a keyword-only
parameter with its type, which is also what the docstrings' ``Args:``
sections describe.
"""

from __future__ import annotations

from typing import Any

import griffe


def _typed_dict(function: griffe.Function, annotation: Any) -> griffe.Class | None:
    if not isinstance(annotation, griffe.ExprSubscript):
        return None
    if str(annotation.left).split(".")[-1] != "Unpack":
        return None
    target = annotation.slice
    path = getattr(target, "canonical_path", None)
    if not isinstance(path, str):
        return None
    try:
        found = function.modules_collection[path]
    except KeyError:
        return None
    while isinstance(found, griffe.Alias):
        found = found.final_target
    return found if isinstance(found, griffe.Class) else None


def _keys(typed_dict: griffe.Class) -> list[griffe.Attribute]:
    """The TypedDict's keys, its bases' first (as Python orders them)."""
    keys: dict[str, griffe.Attribute] = {}
    for cls in reversed(typed_dict.mro()):
        keys.update(_own_keys(cls))
    keys.update(_own_keys(typed_dict))
    return list(keys.values())


def _own_keys(cls: griffe.Class) -> dict[str, griffe.Attribute]:
    return {
        name: member
        for name, member in cls.members.items()
        if isinstance(member, griffe.Attribute) and member.annotation is not None
    }


class UnpackedKeywords(griffe.Extension):
    """Replace ``**name: Unpack[TD]`` by TD's keys, keyword-only."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        self._visit(pkg)

    def _visit(self, obj: griffe.Object) -> None:
        for member in list(obj.members.values()):
            if isinstance(member, griffe.Alias):
                continue
            if isinstance(member, griffe.Function):
                self._expand(member)
                for overload in member.overloads or []:
                    self._expand(overload)
            elif isinstance(member, griffe.Module | griffe.Class):
                self._visit(member)

    def _expand(self, function: griffe.Function) -> None:
        parameters = list(function.parameters)
        for index, parameter in enumerate(parameters):
            if parameter.kind is not griffe.ParameterKind.var_keyword:
                continue
            typed_dict = _typed_dict(function, parameter.annotation)
            if typed_dict is None:
                continue
            taken = {p.name for p in parameters}
            keywords = [
                griffe.Parameter(
                    key.name,
                    annotation=key.annotation,
                    kind=griffe.ParameterKind.keyword_only,
                    default="...",
                )
                for key in _keys(typed_dict)
                if key.name not in taken
            ]
            parameters[index : index + 1] = keywords
            function.parameters = griffe.Parameters(*parameters)
            return
