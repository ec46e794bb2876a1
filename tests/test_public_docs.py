"""Every public name of graphcore and golgi has a docstring with an example, and so has every
public method and property of a public class, unless it overrides a documented method of a base
class (``Layer.build`` documents what each layer's ``build`` does) or the class's own example
calls it. The examples run as doctests in the suite; this test makes sure they are there."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

import golgi
import graphcore

PACKAGES = (graphcore, golgi)


def _public(pkg: ModuleType) -> Iterator[tuple[str, Any]]:
    for name in pkg.__all__:
        obj = getattr(pkg, name)
        # typing aliases (InitWFn) and constants (__version__) cannot carry a __doc__ of their own
        if typing.get_origin(obj) is not None:
            continue
        if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj):
            yield f"{pkg.__name__}.{name}", obj


def _doc(obj: Any) -> str:
    if isinstance(obj, staticmethod | classmethod):
        obj = obj.__func__
    return inspect.getdoc(obj) or ""


def _documented_by_a_base(cls: type, name: str) -> bool:
    return any(name in vars(base) and _doc(vars(base)[name]) for base in cls.__mro__[1:])


def _undocumented_members(cls: type) -> list[str]:
    class_doc = _doc(cls)
    missing = []
    for name, member in vars(cls).items():
        if name.startswith("_") or not (callable(member) or isinstance(member, property)):
            continue
        if isinstance(member, type):  # a nested class: checked where it is public
            continue
        if ">>>" in _doc(member) or _documented_by_a_base(cls, name):
            continue
        if f".{name}" in class_doc:  # the class's example shows it
            continue
        missing.append(name)
    return missing


@pytest.mark.parametrize("pkg", PACKAGES, ids=lambda p: p.__name__)
def test_every_public_name_has_a_docstring_with_an_example(pkg: ModuleType) -> None:
    missing = [name for name, obj in _public(pkg) if ">>>" not in _doc(obj)]
    assert not missing, f"public names without an example in their docstring: {missing}"


@pytest.mark.parametrize("pkg", PACKAGES, ids=lambda p: p.__name__)
def test_every_public_method_has_an_example(pkg: ModuleType) -> None:
    missing = [
        f"{name}.{member}"
        for name, obj in _public(pkg)
        if inspect.isclass(obj)
        for member in _undocumented_members(obj)
    ]
    assert not missing, f"public methods without an example (or a documented base): {missing}"


def test_the_check_catches_a_method_without_an_example() -> None:
    class Documented:
        """A class.

        Example:
            >>> Documented().shown()
        """

        def shown(self) -> None:
            """Shown by the class example."""

        def hidden(self) -> None:
            """No example, and the class's example does not call it."""

    class Override(Documented):
        def shown(self) -> None:  # documented by the base
            pass

    assert _undocumented_members(Documented) == ["hidden"]
    assert _undocumented_members(Override) == []
