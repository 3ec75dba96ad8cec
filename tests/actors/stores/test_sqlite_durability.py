"""SqliteStore against a real crash: a writer process is SIGKILLed mid-stream, twice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import trio

from actors.stores import SqliteStore

WRITER = Path(__file__).with_name("crash_writer.py")
REPO_ROOT = Path(__file__).resolve().parents[3]
SESSIONS = ["s0", "s1", "s2", "s3"]


async def run_writer_until_killed(db: Path, run: str, acks_before_kill: int) -> list[tuple[str, int]]:
    """Start the writer, SIGKILL it once it acknowledged ``acks_before_kill`` events; every ack it printed."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = await trio.lowlevel.open_process(
        [sys.executable, str(WRITER), str(db), run, *SESSIONS], stdout=subprocess.PIPE, env=env
    )
    assert process.stdout is not None
    data = b""
    try:
        with trio.fail_after(60):  # a hang guard, not a speed assertion
            while data.count(b"\n") < acks_before_kill:
                chunk = await process.stdout.receive_some()
                assert chunk, f"writer exited early with {await process.wait()}"
                data += chunk
            process.kill()  # SIGKILL: no cleanup, no close, no checkpoint
            while chunk := await process.stdout.receive_some():  # acks printed before the kill count too
                data += chunk
            assert await process.wait() == -9
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    acks = []
    for line in data.split(b"\n")[:-1]:  # a torn last line (no newline) is not an acknowledgement
        tag, session_id, event_id = line.decode().split()
        assert tag == "ack"
        acks.append((session_id, int(event_id)))
    return acks


async def test_acknowledged_appends_survive_sigkill_and_ids_continue_without_reuse(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    first = await run_writer_until_killed(db, "first", 300)
    second = await run_writer_until_killed(db, "second", 300)
    assert len(first) >= 300 and len(second) >= 300

    async with SqliteStore(db) as store:
        for session_id in SESSIONS:
            record = await store.load(session_id)
            assert record is not None
            stored = await store.events_after(session_id, -1, 1_000_000)
            # the log is gap-free from 0, and ends where the store says
            assert [event.id for event in stored] == list(range(record.last_event_id + 1))
            runs = {event.id: event.payload["run"] for event in stored}
            acked_first = {i for sid, i in first if sid == session_id}
            acked_second = {i for sid, i in second if sid == session_id}
            # every acknowledged event is there, written by the run that acknowledged it (never overwritten)
            assert all(runs[i] == "first" for i in acked_first)
            assert all(runs[i] == "second" for i in acked_second)
            # the second run continued after everything the first one had committed: no id reused
            assert not acked_first & acked_second
            if acked_second:
                assert min(acked_second) > max(acked_first, default=-1)
