"""HandlerRegistry: connect/disconnect handlers get only the arguments their signature takes, and a
handler's signature is read once, not at every connect."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from server.socketio import handlers as handlers_module
from server.socketio.handlers import HandlerRegistry


async def test_trailing_arguments_are_trimmed_per_handler_and_the_signature_read_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads: list[object] = []
    original = inspect.signature

    def counting_signature(obj: Any, *args: Any, **kwargs: Any) -> inspect.Signature:
        reads.append(obj)
        return original(obj, *args, **kwargs)

    monkeypatch.setattr(handlers_module.inspect, "signature", counting_signature)
    registry = HandlerRegistry()
    seen: list[tuple[Any, ...]] = []

    def two(sid: str, environ: dict[str, Any]) -> None:
        seen.append((sid, environ))

    async def three(sid: str, environ: dict[str, Any], auth: Any) -> str:
        seen.append((sid, environ, auth))
        return "ok"

    registry.on("connect", two)
    for n in range(3):
        await registry.trigger_trimmed("connect", "/", f"s{n}", {}, {"token": "t"})
    assert seen == [("s0", {}), ("s1", {}), ("s2", {})]
    assert reads == [two]  # read once for three connects
    registry.on("connect", three)  # a new handler: its own signature, read once too
    assert await registry.trigger_trimmed("connect", "/", "s3", {}, {"token": "t"}) == "ok"
    assert await registry.trigger_trimmed("connect", "/", "s4", {}, None) == "ok"
    assert seen[3:] == [("s3", {}, {"token": "t"}), ("s4", {}, None)]
    assert reads == [two, three]
