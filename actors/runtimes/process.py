"""Child processes an agent owns: started in their own process group, ended with a grace period.

Owns: ``owned_process`` (an async context manager around ``trio.lowlevel.open_process``), ``end_process``
(SIGTERM to the group, a grace period, then SIGKILL to the group and every descendant still alive),
``descendants`` (a /proc walk) and ``signal_group``. Knows nothing of agents, sessions or events.

Why a process group and a /proc walk both: a signal to the group reaches everything the child started in
the foreground, but a grandchild may have moved to its own group or session; the walk by parent pid finds
those too, as long as they are still below us. A process that daemonises (double fork) escapes both: that is
what a sandbox launcher (bubblewrap's ``--die-with-parent`` and PID namespace) is for.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

import trio

DEFAULT_GRACE = 5.0


def descendants(pid: int) -> set[int]:
    """Every live process whose chain of parents reaches ``pid`` (``pid`` excluded), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: fields resume after the last ')'.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) < 2 or fields[0] == b"Z":
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to a process group; False if the group is gone."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def kill_all(pids: set[int], sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


async def end_process(proc: trio.Process, grace: float = DEFAULT_GRACE) -> int:
    """End ``proc`` (the leader of its own process group) and everything below it; return its exit status.

    SIGTERM to the group, up to ``grace`` seconds for the leader to exit, then SIGKILL to the group and to
    every descendant found in /proc. Shielded: it runs to completion even in a cancelled scope, and takes
    at most ``grace`` seconds plus the time the kernel needs to reap."""
    with trio.CancelScope(shield=True):
        pid = proc.pid
        stragglers = descendants(pid)
        if proc.returncode is None:
            signal_group(pid, signal.SIGTERM)
            kill_all(stragglers, signal.SIGTERM)
            with trio.move_on_after(grace):
                await proc.wait()
        # The leader is gone (or past its grace): whatever it left behind goes now, without a grace period.
        stragglers |= descendants(pid) if proc.returncode is None else set()
        signal_group(pid, signal.SIGKILL)
        kill_all(stragglers)
        code = await proc.wait()
    # Children re-parented to init after the leader died are not below us any more: the ones seen before
    # were killed by pid above.
    return code


@asynccontextmanager
async def owned_process(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    grace: float = DEFAULT_GRACE,
    stdin: int | None = subprocess.PIPE,
    stdout: int | None = subprocess.PIPE,
    stderr: int | None = subprocess.PIPE,
) -> AsyncIterator[trio.Process]:
    """Start ``argv`` in a new session (so a process group of its own) and end it on exit, whatever the
    reason (normal exit, exception, cancellation): see ``end_process``."""
    proc = await trio.lowlevel.open_process(
        list(argv),
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        with trio.CancelScope(shield=True):
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                        await stream.aclose()
            await end_process(proc, grace)
