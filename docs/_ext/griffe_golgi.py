"""Griffe extension for the docs build: read golgi's docstrings the way they are written.

golgi's docstrings are Google style with one difference: examples follow ``Example:``
(singular), which Griffe's Google parser would render as an admonition of Markdown text, so
the ``>>>`` lines became block quotes. This extension renames that header to ``Examples:``
and turns Sphinx roles (``:func:`ToDot```) into inline code. It only changes what the docs
show; the library's docstrings stay as they are.
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


class GolgiDocstrings(griffe.Extension):
    """Rewrite ``Example:`` headers and Sphinx roles in every docstring."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _rewrite(obj.docstring.value)
