"""The one SQL filter for "under this org path" (DESIGN.md §3: a unit sees itself and everything below).

Org paths are codes joined by "/" ("440106/440106006000/..."). A path is under ``scope`` when it is
``scope`` itself or starts with ``scope + "/"``. That prefix test is written as a range on the
column's binary order, ``col >= 'scope/' AND col < 'scope0'`` ("0" is the character after "/"),
instead of ``LIKE 'scope/%'``: nothing in the path needs escaping (``%`` and ``_`` in a code once
matched neighbouring units through differently escaped LIKEs), and SQLite can use an index on the
column. The column must use the default BINARY collation (all our path columns do).
"""

from __future__ import annotations

from typing import Any

__all__ = ["under"]


def under(column: str, path: str) -> tuple[str, list[Any]]:
    """SQL fragment and parameters selecting rows whose ``column`` lies at or below ``path``.

    ``column`` is a trusted identifier from our own code (never user input); ``path`` is bound.
    """
    path = path.rstrip("/")  # as ``roles.path_within``: "44/01/" is the unit "44/01"
    if not path:  # the root (a city hub): everything
        return "1 = 1", []
    return f"({column} = ? OR ({column} >= ? AND {column} < ?))", [path, path + "/", path + "0"]
