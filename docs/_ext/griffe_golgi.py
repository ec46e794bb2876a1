"""Griffe extension for the docs build: read golgi's docstrings the way they are written.

golgi's docstrings are Google style with one difference: examples follow ``Example:``
(singular), which Griffe's Google parser would render as an admonition of Markdown text, so
the ``>>>`` lines became block quotes. This extension renames that header to ``Examples:``
and turns Sphinx roles (``:func:`ToDot```) into inline code. It also shows the real
parameters of functions that forward ``**options`` to ``Trainer.fit`` (``golgi.fit``, marked
``@takes_fit_options``), as ``help()`` does. It only changes what the docs show; the library's
docstrings stay as they are.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example(\s*\([^)]*\))?:\s*$")
_ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|exc|obj):`~?([^`]+)`")


def _rewrite(text: str) -> str:
    lines = []
    for line in text.splitlines():
        m = _EXAMPLE.match(line)
        lines.append(f"{m.group(1)}Examples:" if m else line)
    return _ROLE.sub(r"`\1`", "\n".join(lines))


def _functions(obj: griffe.Object) -> list[griffe.Function]:
    out: list[griffe.Function] = []
    for member in obj.members.values():
        if member.is_alias:
            continue
        if member.is_function:
            out.append(member)
        elif member.is_module or member.is_class:
            out += _functions(member)
    return out


def _show_fit_options(pkg: griffe.Module) -> None:
    """Replace ``**options`` of ``@takes_fit_options`` functions by ``Trainer.fit``'s
    keyword-only parameters (what the decorator does for ``inspect.signature``)."""
    try:
        target = pkg["training.fitting.TrainerFitting.fit"]
    except KeyError:
        return
    forwarded = [p for p in target.parameters if p.kind is griffe.ParameterKind.keyword_only]
    for fn in _functions(pkg):
        if not any(str(d.value).startswith("takes_fit_options") for d in fn.decorators):
            continue
        kept = [p for p in fn.parameters if p.kind is not griffe.ParameterKind.var_keyword]
        fn.parameters = griffe.Parameters(
            *kept,
            *(
                griffe.Parameter(p.name, annotation=p.annotation, kind=p.kind, default=p.default)
                for p in forwarded
            ),
        )


class GolgiDocstrings(griffe.Extension):
    """Rewrite ``Example:`` headers and Sphinx roles in every docstring; show forwarded
    ``Trainer.fit`` parameters."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _rewrite(obj.docstring.value)

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.name == "golgi":
            _show_fit_options(pkg)
