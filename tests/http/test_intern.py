"""The bounded string pool shares repeated strings and never grows past its limit."""

from __future__ import annotations

from server.http._intern import StringPool


def test_repeated_strings_share_one_copy() -> None:
    pool = StringPool(limit=10)
    first = pool("".join(["user", "-agent"]))
    again = pool("".join(["user-", "agent"]))
    assert first == again and first is again


def test_past_the_limit_new_strings_are_returned_unpooled() -> None:
    pool = StringPool(limit=3)
    for i in range(100):
        assert pool(f"header-{i}") == f"header-{i}"
    assert len(pool) == 3
    late = "".join(["header-", "50"])
    assert pool(late) is late  # not pooled: the table is full
