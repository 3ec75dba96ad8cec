"""One server per SQLite store: a second ``supervisor serve`` on the same database refuses to start.

Real subprocesses: the first server holds the lock; the second exits 2 with one line naming the holder's
pid and host; after the first is killed with SIGKILL the kernel has released the lock and a new server
starts on the same database. Also the network-filesystem detection from a mounts table.
"""

from __future__ import annotations

import fcntl
import socket
from pathlib import Path

import pytest

from actors.stores._sqlite_lock import network_filesystem
from tests.gateway.server_process import ServerProcess
from tests.reliability.serve_run import serve_fails


def test_a_second_server_on_the_same_store_refuses_and_the_lock_survives_no_crash(tmp_path: Path) -> None:
    first = ServerProcess(tmp_path)
    with first:
        pid = first.pid
        store = f"sqlite:///{first.db}"
        code, line = serve_fails(tmp_path, "--store", store, "--data-dir", str(tmp_path / "d2"))
        assert code == 2
        assert line.startswith("error: ") and "in use by another server" in line, line
        assert f"pid {pid} on host {socket.gethostname()}" in line, line
        assert first.running  # the refused second server did not disturb the first
        assert first.kill() == -9
        # SIGKILL: no cleanup ran, the kernel released the flock; a new server opens the same store.
        first.start()
        assert first.running and first.pid != pid


def test_a_server_stopped_cleanly_frees_the_store(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path)
    with server:
        assert server.stop() == 0
        lock = Path(f"{server.db}.lock")
        assert lock.exists() and lock.read_text() == ""  # no stale holder record
        server.start()
        assert server.running


def test_network_filesystems_are_detected_from_the_mounts_table(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "/dev/sda1 / ext4 rw 0 0\n"
        f"server:/export {tmp_path}/nfs nfs4 rw 0 0\n"
        f"me@host:/x {tmp_path}/ssh fuse.sshfs rw 0 0\n"
        f"tmpfs {tmp_path}/nfs/local tmpfs rw 0 0\n"
    )
    assert network_filesystem(tmp_path / "nfs" / "s.db", str(mounts)) == "nfs4"
    assert network_filesystem(tmp_path / "ssh" / "a" / "s.db", str(mounts)) == "fuse.sshfs"
    assert network_filesystem(tmp_path / "nfs" / "local" / "s.db", str(mounts)) is None  # nearest mount
    assert network_filesystem(tmp_path / "elsewhere.db", str(mounts)) is None
    assert network_filesystem(tmp_path / "x.db", str(tmp_path / "missing")) is None


def test_the_lock_is_held_by_the_server_process_itself(tmp_path: Path) -> None:
    """The lock file names the live server (a second opener would read it for its error message)."""
    with ServerProcess(tmp_path) as server:
        text = Path(f"{server.db}.lock").read_text()
        assert f'"pid": {server.pid}' in text
        with open(f"{server.db}.lock") as file, pytest.raises(BlockingIOError):
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
