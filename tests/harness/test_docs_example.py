"""The example in docs/testing.md runs as written (the doc cannot drift from the harness)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import trio.testing

from server.testing.plugin import MakeSupervisor

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"


def doc_example() -> dict[str, Any]:
    match = re.search(r"## An example\n\n```python\n(.*?)```", DOC.read_text(), re.S)
    assert match, "docs/testing.md lost its example"
    namespace: dict[str, Any] = {}
    exec(compile(match.group(1), str(DOC), "exec"), namespace)
    return namespace


async def test_the_documented_example_passes(
    make_supervisor: MakeSupervisor, autojump_clock: trio.testing.MockClock
) -> None:
    example = doc_example()
    await example["test_total_survives_passivation"](make_supervisor, autojump_clock)
