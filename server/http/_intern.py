"""A bounded string pool: one shared copy of the strings that repeat from connection to connection.

Owns: ``StringPool`` and the process-wide ``pool``. Header names, common header values and environ keys are
kept for as long as a websocket lives, so sharing them is memory per idle connection. Unlike ``sys.intern``
(immortal on some CPython builds) the table is bounded: past its limit, new strings are simply not pooled,
so clients sending ever-new header names cannot grow it. Knows nothing of HTTP.
"""

from __future__ import annotations


class StringPool:
    __slots__ = ("_limit", "_table")

    def __init__(self, limit: int = 4096) -> None:
        self._table: dict[str, str] = {}
        self._limit = limit

    def __call__(self, value: str) -> str:
        pooled = self._table.get(value)
        if pooled is not None:
            return pooled
        if len(self._table) < self._limit:
            self._table[value] = value
        return value

    def __len__(self) -> int:
        return len(self._table)


pool = StringPool()
