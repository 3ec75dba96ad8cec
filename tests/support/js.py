"""Run a ``tests/js/scenario.mjs`` scenario with the official Node socket.io-client, from trio tests.

Owns: finding node and ``tests/js/node_modules`` (failing with a clear message when they are missing: the
test command installs them with ``npm ci --prefix tests/js``), running the driver with ``trio.run_process``,
and parsing its JSON lines. Must not know about: which server is under test or what a test asserts.

    result = await run_scenario({"url": url, "transports": ["websocket"], "steps": [
        {"op": "expect", "type": "connect"},
        {"op": "emitWithAck", "event": "message-with-ack", "args": [1]},
    ]})
    assert result.first("ack")["args"] == [1]

Binary arguments travel as ``{"$binary": "<base64>"}``: build them with ``binary(b"...")``.
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

__all__ = ["JS_DIR", "ScenarioFailed", "ScenarioResult", "binary", "require_node", "run_scenario"]

JS_DIR = Path(__file__).resolve().parent.parent / "js"
SCENARIO = JS_DIR / "scenario.mjs"


class ScenarioFailed(AssertionError):
    """The scenario exited non-zero (an ``expect`` or ack timed out, or the driver failed)."""

    def __init__(self, result: ScenarioResult) -> None:
        super().__init__(
            f"scenario exited with {result.returncode}; last lines: {result.lines[-5:]!r}; "
            f"stderr: {result.stderr[-2000:]}"
        )
        self.result = result


@dataclass
class ScenarioResult:
    """What the driver printed: one dict per line, in order."""

    lines: list[dict[str, Any]]
    returncode: int
    stderr: str = field(default="", repr=False)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.lines)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("type") == kind]

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.of_type("event") if name is None or e.get("name") == name]

    def first(self, kind: str) -> dict[str, Any]:
        found = self.of_type(kind)
        if not found:
            raise AssertionError(f"no {kind!r} line in {self.lines!r}")
        return found[0]

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and bool(self.lines) and self.lines[-1].get("type") == "done"


def binary(data: bytes) -> dict[str, str]:
    """A binary argument for a scenario (the driver sends it as a Buffer)."""
    return {"$binary": base64.b64encode(data).decode("ascii")}


def require_node() -> str:
    """The node executable, after checking the JS test kit is installed; raises a clear error otherwise."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not on PATH: the JS client tests need Node 20+")
    if not (JS_DIR / "node_modules" / "socket.io-client").is_dir():
        raise RuntimeError(
            f"{JS_DIR / 'node_modules'} is missing: install the JS test kit with `npm ci --prefix tests/js`"
        )
    return node


async def run_scenario(
    scenario: Mapping[str, Any],
    *,
    timeout: float = 60.0,  # noqa: ASYNC109 - bounds the node process, not an API of ours
    check: bool = True,
) -> ScenarioResult:
    """Run one scenario and return its parsed output. With ``check`` (the default), a non-zero exit raises
    ``ScenarioFailed``; ``timeout`` bounds the whole process (kill on expiry) on top of the scenario's own."""
    node = require_node()
    payload = json.dumps(scenario).encode()
    with trio.fail_after(timeout):
        proc = await trio.run_process(
            [node, str(SCENARIO)],
            stdin=payload,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            cwd=str(JS_DIR),
        )
    lines = []
    for raw in proc.stdout.decode().splitlines():
        raw = raw.strip()
        if raw:
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                lines.append({"type": "stdout", "text": raw})
    result = ScenarioResult(lines, proc.returncode, proc.stderr.decode(errors="replace"))
    if check and proc.returncode != 0:
        raise ScenarioFailed(result)
    return result
