"""Raw non-blocking socket I/O on trio's public low-level API.

Owns: ``recv_some`` / ``send_all`` / ``close_socket`` over a stdlib socket in non-blocking mode, using
``trio.lowlevel.wait_readable`` / ``wait_writable`` / ``notify_closing``. Knows nothing of HTTP or WebSocket.
Every failure of the peer (reset, EOF, socket closed by another task) comes back as ``b""`` or ``False``,
never as an exception, so callers treat "the peer is gone" in one place.
"""

from __future__ import annotations

import socket

import trio


async def recv_some(sock: socket.socket, size: int, *, wait_first: bool = False) -> bytes:
    """The next bytes from ``sock``; ``b""`` when the peer closed or the socket is gone.

    Tries the kernel first and only parks on ``wait_readable`` when it has nothing (the same checkpoint
    discipline as trio's own sockets: one scheduling point per call, cancellable). ``wait_first`` skips
    that first try when it is bound to fail (a response was just written and the peer has not had time
    to answer it): one system call less per keep-alive request.
    """
    if not wait_first:
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            data = sock.recv(size)
        except BlockingIOError:
            pass
        except OSError:
            return b""
        else:
            await trio.lowlevel.cancel_shielded_checkpoint()
            return data
    while True:
        try:
            await trio.lowlevel.wait_readable(sock)
        except (trio.ClosedResourceError, OSError, ValueError):
            return b""
        try:
            return sock.recv(size)
        except BlockingIOError:
            continue
        except OSError:
            return b""


def send_now(sock: socket.socket, data: bytes) -> int | None:
    """Write what the kernel takes of ``data`` without waiting: the byte count, None if the socket is
    gone."""
    try:
        return sock.send(data)
    except BlockingIOError:
        return 0
    except OSError:
        return None


async def send_all(sock: socket.socket, data: bytes) -> bool:
    """Write all of ``data``; False if the peer or the socket went away first. Callers bound the time."""
    await trio.lowlevel.checkpoint_if_cancelled()
    view = memoryview(data)
    while view:
        try:
            sent = sock.send(view)
        except BlockingIOError:
            sent = 0
        except OSError:
            return False
        view = view[sent:]
        if view:
            try:
                await trio.lowlevel.wait_writable(sock)
            except (trio.ClosedResourceError, OSError, ValueError):
                return False
    return True


def socket_is_open(sock: socket.socket) -> bool:
    return sock.fileno() != -1


def close_socket(sock: socket.socket) -> None:
    """Close ``sock`` at once, waking any task parked on it (idempotent, never raises)."""
    if sock.fileno() == -1:
        return
    trio.lowlevel.notify_closing(sock)
    try:
        sock.close()
    except OSError:  # pragma: no cover - close() of a valid fd does not fail on Linux
        pass
