"""What ``tracehive serve`` checks before it says it is serving: that it holds its data dir and
its port.

- **The data dir**: one server per data dir. A second ``serve`` on the same dir would share the
  SQLite file (safe, but two servers each believing they own the journal and the key bootstrap)
  and, worse, hide a mistake: a user starting a "new" server on the old data. ``serve`` holds an
  exclusive ``flock`` on ``<data dir>/serve.lock`` for its whole life; the file names the holder
  (pid, address) so that the refusal can say which process has it. The kernel releases the lock
  when the process ends, even by ``kill -9``, so a crash never leaves the dir locked. The lock's
  descriptor is not inherited by child processes (Python's default), so the OTLP applier
  process never holds it.
- **The port**: bound (and listening) before the banner is printed, so that "serving on ..." is
  only ever printed by a server that got its port; a taken port is one line and a non-zero exit.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from pathlib import Path

LOCK_NAME = "serve.lock"


class GuardError(Exception):
    """Why ``serve`` cannot start, in one line for the user."""


def prepare_data_dir(data_dir: Path) -> Path:
    """The data dir, made if needed (0700), as an absolute path; ``GuardError`` when it is a file
    or cannot be made."""
    path = data_dir.expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise GuardError(f"the data dir {path} is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise GuardError(f"cannot create the data dir {path}: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise GuardError(f"the data dir {path} is not writable by this user")
    return path


class DataDirLock:
    """The exclusive hold of one data dir by one ``serve`` process (see the module docstring)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self, holder: str) -> None:
        """Take the lock and write ``holder`` (who we are) into the file; ``GuardError`` naming the
        other process when a running server holds it."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise GuardError(f"cannot open {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.read(fd, 4096).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise GuardError(
                f"the data dir {self.path.parent} is in use by another tracehive serve ({other}); "
                "stop it first, or give this one its own --data-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.encode() + b"\n", 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def bind_listener(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening; ``GuardError`` when it cannot be."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise GuardError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        # As uvicorn does: a restart may bind while the old connections sit in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        if exc.errno == errno.EADDRINUSE:
            reason = "address already in use (another server on that port?)"
        raise GuardError(f"cannot listen on {host}:{port}: {reason}") from None
    sock.set_inheritable(False)
    return sock
