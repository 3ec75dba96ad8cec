"""Chaos soak: hundreds of clients, random disconnects, passivations and ``kill -9`` of the server; then a
proof from the store and the clients' records that nothing was lost, duplicated or reordered.

Owns: the soak run behind ``scripts/soak`` (``main``). Loopback only, bounded (``--minutes``), stops by
itself. The server is the real ``supervisor serve`` (SQLite store in a temporary directory, ``--agent
none`` so that every stored event is a client's action, a short close delay so idle sessions passivate).
Each client owns one session at a time: it connects with ``latest_event_id`` = the last id it saw, reads
the replay then live events, sends actions (each carrying a unique token) and disconnects at random. A
killer SIGKILLs the server every ``--kill-every`` seconds and restarts it on the same port and database.
An optional flooder (``--flood``) sends ``oh_user_action`` as fast as it can on its own session for the
second half of the run; other clients' ack latency p99 is compared between the halves (fairness).

The proof (printed as one JSON line, exit code 1 when it fails): every acknowledged action is stored
exactly once under its acknowledged id, no unacknowledged one twice; ids are contiguous per session; each
client, after a final catch-up connection, saw every event of its session exactly once, in order, with the
stored content; RSS per live session sampled before each kill stays flat across rounds.
Knows nothing of the server's internals: only its command line, its HTTP ``/healthz`` and Socket.IO.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
import trio

from server.client import ClientError, open_client

LISTENING = "Session Supervisor listening on http://127.0.0.1:"


class Server:
    """``supervisor serve`` on 127.0.0.1, restartable on the same port and database."""

    def __init__(self, workdir: Path) -> None:
        self.workdir, self.port, self.proc = workdir, 0, None
        self.db = workdir / "soak.db"
        self.starts = 0

    def start(self) -> None:
        script = Path(sys.executable).with_name("supervisor")
        cmd = [str(script)] if script.exists() else [sys.executable, "-m", "server.cli"]
        cmd += ["serve", "--host", "127.0.0.1", "--port", str(self.port), "--store", f"sqlite:///{self.db}",
                "--data-dir", str(self.workdir / "data"), "--agent", "none", "--close-delay", "1",
                "--close-delay-jitter", "0.5", "--log-level", "warning", "--log-format", "json"]
        env = {k: v for k, v in os.environ.items() if k != "SUPERVISOR_API_KEY"}
        with (self.workdir / "server.log").open("a") as log:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
        assert proc.stdout is not None
        for _ in range(50):
            line = proc.stdout.readline()
            if LISTENING in line:
                self.port = int(line.rsplit(":", 1)[1])
                self.proc, self.starts = proc, self.starts + 1
                return
            if not line:
                break
        proc.kill()
        raise RuntimeError(f"the server did not start; see {self.workdir / 'server.log'}")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def stop(self) -> int:
        if self.proc is None:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self.proc = None
        return code

    def sample(self) -> tuple[int, int] | None:
        """(RSS KiB, live sessions) of the running server, or None."""
        if self.proc is None:
            return None
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as response:
                live = int(json.loads(response.read())["live_sessions"])
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except (OSError, ValueError, KeyError):
            return None
        rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        return rss, live

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Record:
    """What one client knows of its session: every event it saw, and its actions' outcomes."""

    session: str
    seen: list[tuple[int, Any]] = field(default_factory=list)  # (id, token) in arrival order
    acked: dict[str, int] = field(default_factory=dict)  # token -> acknowledged id
    unknown: set[str] = field(default_factory=set)  # sent, no ack (the server died meanwhile)
    refused: int = 0  # error acks (e.g. a full mailbox)
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (sent at, seconds)
    connects: int = 0
    phase: str = "idle"  # what the client awaits now (names the await when a client is stuck past the end)

    @property
    def last_id(self) -> int:
        return self.seen[-1][0] if self.seen else -1


def _token(event: dict[str, Any]) -> Any:
    args = event.get("args")
    return args.get("content") if isinstance(args, dict) else None


async def _connection(url: str, rec: Record, rng: random.Random, stop_at: float, actions: int,
                      name: str) -> None:
    """One connection: catch up, act ``actions`` times with pauses, then leave (or lose the server)."""
    query = {"conversation_id": rec.session, "latest_event_id": rec.last_id}
    rec.phase = "connecting"
    async with open_client(url, query=query, reconnect=False, connect_timeout=5) as client:
        rec.connects += 1

        async def read() -> None:
            while True:
                event = await client.receive()
                if event.name != "oh_event":
                    continue
                payload = event.args[0]
                if isinstance(payload, dict) and isinstance(payload.get("id"), int):
                    rec.seen.append((payload["id"], _token(payload)))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            for n in range(actions):
                if trio.current_time() > stop_at:
                    break
                token = f"{name}-{rec.connects}-{n}"
                rec.unknown.add(token)
                started = trio.current_time()
                rec.phase = "calling"
                ack = await client.call("oh_user_action", {"action": "message", "args": {"content": token}},
                                        timeout=10)
                rec.latencies.append((started, trio.current_time() - started))
                rec.unknown.discard(token)
                if isinstance(ack, dict) and isinstance(ack.get("id"), int):
                    rec.acked[token] = ack["id"]
                else:
                    rec.refused += 1
                rec.phase = "pausing"
                await trio.sleep(rng.uniform(0.05, 0.5))
            await trio.sleep(rng.uniform(0, 0.3))
            nursery.cancel_scope.cancel()
        rec.phase = "closing"
    rec.phase = "idle"


async def _client(server: Server, rec: Record, rng: random.Random, stop_at: float, name: str) -> None:
    while trio.current_time() < stop_at:
        try:
            await _connection(server.url, rec, rng, stop_at, rng.randint(1, 6), name)
        except (ClientError, TimeoutError, OSError, trio.BrokenResourceError):
            pass  # the server was killed (or refused while restarting): reconnect from the last id seen
        except BaseExceptionGroup as group:
            _, rest = group.split((ClientError, TimeoutError, OSError, trio.BrokenResourceError))
            if rest is not None:
                raise
        rec.phase = "idle"
        await trio.sleep(rng.uniform(0.1, 1.5))  # away for a while: the session may passivate


async def _drain(client: Any, rec: Record) -> None:
    while True:
        event = await client.receive()
        payload = event.args[0] if event.args else None
        if isinstance(payload, dict) and isinstance(payload.get("id"), int):
            rec.seen.append((payload["id"], _token(payload)))


async def _flooder(server: Server, rec: Record, start_at: float, stop_at: float, width: int = 64) -> None:
    """One connection sending ``oh_user_action`` as fast as it can: ``width`` calls always in flight."""
    await trio.sleep_until(start_at)
    counter = iter(range(1, 1 << 62))

    async def caller(client: Any) -> None:
        while trio.current_time() < stop_at:
            token = f"flood-{next(counter)}"
            rec.unknown.add(token)
            ack = await client.call("oh_user_action", {"action": "message", "args": {"content": token}})
            rec.unknown.discard(token)
            if isinstance(ack, dict) and isinstance(ack.get("id"), int):
                rec.acked[token] = ack["id"]
            else:
                rec.refused += 1

    while trio.current_time() < stop_at:
        query = {"conversation_id": rec.session, "latest_event_id": rec.last_id}
        try:
            async with open_client(server.url, query=query, reconnect=False, connect_timeout=5) as client, \
                    trio.open_nursery() as nursery:
                nursery.start_soon(_drain, client, rec)
                for _ in range(width):
                    nursery.start_soon(caller, client)
                await trio.sleep_until(stop_at)
                nursery.cancel_scope.cancel()
        except (ClientError, TimeoutError, OSError, trio.BrokenResourceError, BaseExceptionGroup):
            await trio.sleep(0.2)


async def _killer(server: Server, every: float, stop_at: float, rounds: list[dict[str, Any]]) -> None:
    while trio.current_time() + every < stop_at:
        await trio.sleep(every)
        sample = await trio.to_thread.run_sync(server.sample)
        if sample is not None:
            rounds.append({"rss_kib": sample[0], "live_sessions": sample[1]})
        server.kill()
        await trio.to_thread.run_sync(server.start)


async def _catch_up(server: Server, rec: Record) -> None:
    """A final connection from the last id seen, read until STATUS$READY."""
    query = {"conversation_id": rec.session, "latest_event_id": rec.last_id}
    async with open_client(server.url, query=query, reconnect=False) as client:
        while True:
            event = await client.receive(timeout=30)
            payload = event.args[0] if event.args else None
            if not isinstance(payload, dict):
                continue
            if payload.get("id") == "STATUS$READY":
                return
            if isinstance(payload.get("id"), int):
                rec.seen.append((payload["id"], _token(payload)))


def _p99(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1)


def verify(db: Path, records: list[Record]) -> list[str]:
    """Every failure of the proof, as text (empty: proven)."""
    problems: list[str] = []
    logs: dict[str, list[tuple[int, Any]]] = {}
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        for session, event_id, text in conn.execute("SELECT session_id, id, json FROM events ORDER BY 1, 2"):
            logs.setdefault(session, []).append((event_id, _token(json.loads(text))))
    where: dict[Any, list[tuple[str, int]]] = {}
    for session, log in logs.items():
        if [i for i, _ in log] != list(range(len(log))):
            problems.append(f"session {session}: ids not contiguous")
        for event_id, token in log:
            where.setdefault(token, []).append((session, event_id))
    for rec in records:
        for token, event_id in rec.acked.items():
            if where.get(token) != [(rec.session, event_id)]:
                problems.append(f"acked {token} as {event_id}: stored as {where.get(token)}")
        for token in rec.unknown:
            if len(where.get(token, [])) > 1:
                problems.append(f"unacknowledged {token} stored twice")
        if rec.seen != logs.get(rec.session, []):
            problems.append(f"a client of {rec.session} saw {len(rec.seen)} events, not exactly the "
                            f"{len(logs.get(rec.session, []))} stored, once each, in order")
    return problems


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    server = Server(workdir)
    await trio.to_thread.run_sync(server.start)
    duration = args.minutes * 60
    start = trio.current_time()
    stop_at = start + duration
    records = [Record(f"soak-{i % args.sessions}") for i in range(args.clients)]
    flood = Record("soak-flood") if args.flood else None
    rounds: list[dict[str, Any]] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_killer, server, args.kill_every, stop_at, rounds)
        if flood is not None:
            nursery.start_soon(_flooder, server, flood, start + duration / 2, stop_at)
        # Bounded: a client still inside a connection 30 s after the end is stuck; it is cancelled and
        # reported with the await it was in, never waited for.
        with trio.move_on_at(stop_at + 30):
            async with trio.open_nursery() as clients:
                for i, rec in enumerate(records):
                    clients.start_soon(_client, server, rec, random.Random(rng.random()), stop_at, f"c{i}")
        nursery.cancel_scope.cancel()
    stuck = collections.Counter(rec.phase for rec in records if rec.phase != "idle")
    everyone = records + ([flood] if flood is not None else [])
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            for rec in everyone:
                nursery.start_soon(_catch_up, server, rec)
    code = await trio.to_thread.run_sync(server.stop)
    problems = verify(server.db, everyone)
    if stuck:
        problems.insert(0, f"clients stuck 30 s past the end, by the await they were in: {dict(stuck)}")
    if code != 0:
        problems.append(f"the last server exited {code} on SIGTERM")
    per_session = [r["rss_kib"] / r["live_sessions"] for r in rounds if r["live_sessions"] >= 10]
    flat = len(per_session) < 2 or max(per_session[len(per_session) // 2:]) <= 1.5 * min(per_session)
    if not flat:
        problems.append("RSS per live session grew across rounds")
    half = start + duration / 2
    latencies = [(t, d) for rec in records for t, d in rec.latencies]
    p99_before = _p99([d for t, d in latencies if t < half])
    p99_after = _p99([d for t, d in latencies if t >= half])
    return {
        "ok": not problems, "minutes": args.minutes, "clients": args.clients, "sessions": args.sessions,
        "server_starts": server.starts, "kills": server.starts - 1,
        "connects": sum(r.connects for r in everyone),
        "acked": sum(len(r.acked) for r in everyone), "unacknowledged": sum(len(r.unknown) for r in everyone),
        "refused": sum(r.refused for r in everyone), "events_seen": sum(len(r.seen) for r in everyone),
        "rss_kib_per_live_session_by_round": [round(x, 1) for x in per_session],
        "rounds": rounds,
        "ack_p99_ms_first_half": p99_before, "ack_p99_ms_second_half": p99_after,
        "flood": bool(flood), "flood_acked": len(flood.acked) if flood else 0,
        "problems": problems[:20], "problem_count": len(problems),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the chaos lasts (bounded)")
    parser.add_argument("--clients", type=int, default=300)
    parser.add_argument("--sessions", type=int, default=60)
    parser.add_argument("--kill-every", type=float, default=5.0, help="seconds between kill -9s")
    parser.add_argument("--flood", action="store_true", help="one client floods in the second half")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if not 0 < args.minutes <= 120:
        parser.error("--minutes must be in (0, 120]")
    structlog.configure(  # the clients' own logs: warnings only, on stderr (stdout is the JSON line)
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        result = trio.run(run, args, Path(tmp))
    print(json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
