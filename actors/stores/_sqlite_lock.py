"""One server per SQLite store: an exclusive ``flock`` on a lock file next to the database.

Owns: ``StoreLock`` (acquire/release the lock file ``<database>.lock``, which records the holder's pid and
host), ``StoreLocked`` (another live process holds it) and ``network_filesystem`` (the fs type of a path
when it is a network filesystem, where SQLite's locking and WAL are unreliable). Plain blocking calls, run
in a worker thread; knows nothing of trio, SQL or the ``Store`` API.

Why: each server caches its sessions' next event ids, so two servers appending to one database would
collide. The kernel releases a ``flock`` when its holder exits or is killed (SIGKILL included), so a crash
never leaves a stale lock; the pid/host written into the file only serve the error message.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from pathlib import Path
from typing import IO

from actors.stores.base import StoreError

__all__ = ["NETWORK_FS_TYPES", "StoreLock", "StoreLocked", "lock_path", "network_filesystem"]

NETWORK_FS_TYPES = frozenset(
    {"nfs", "nfs4", "cifs", "smb", "smb2", "smbfs", "smb3", "fuse.sshfs", "sshfs", "9p", "afs",
     "ceph", "glusterfs", "fuse.glusterfs", "lustre", "gpfs", "fuse.s3fs", "fuse.rclone", "davfs", "ncpfs"}
)


class StoreLocked(StoreError):
    """Another live process holds the store's lock file; ``pid`` and ``host`` name it when known."""

    def __init__(self, message: str, *, pid: int | None, host: str | None) -> None:
        super().__init__(message)
        self.pid, self.host = pid, host


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


class StoreLock:
    """The exclusive lock on ``<database>.lock``. ``acquire`` raises ``StoreLocked`` when it is held."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.path = lock_path(database)
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        # "a+": never truncate before holding the lock, so the holder's record stays readable.
        file = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 (held until release)
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = _parse(file.read())
            file.close()
            pid, host = holder.get("pid"), holder.get("host")
            who = f"pid {pid} on host {host}" if pid is not None else "another process"
            raise StoreLocked(
                f"the store {str(self.database)!r} is in use by another server ({who}); "
                f"stop it first, or use another --store / --data-dir (lock file {str(self.path)!r})",
                pid=pid if isinstance(pid, int) else None,
                host=host if isinstance(host, str) else None,
            ) from None
        except BaseException:
            file.close()
            raise
        file.seek(0)
        file.truncate()
        file.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}) + "\n")
        file.flush()
        self._file = file

    def release(self) -> None:
        file, self._file = self._file, None
        if file is None:
            return
        try:
            file.seek(0)
            file.truncate()  # no stale holder record; the file itself stays (unlinking would race)
        finally:
            file.close()  # closing the descriptor releases the flock


def _parse(text: str) -> dict[str, object]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def network_filesystem(path: Path, mounts: str = "/proc/mounts") -> str | None:
    """The filesystem type holding ``path`` if it is a network one (nfs, cifs, sshfs, ...), else None."""
    try:
        text = Path(mounts).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    target = os.path.realpath(path)
    best, best_type = "", ""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        mount_point = parts[1].replace("\\040", " ")
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) > len(best):
            best, best_type = mount_point, parts[2]
    return best_type if best_type in NETWORK_FS_TYPES or best_type.startswith("nfs") else None
