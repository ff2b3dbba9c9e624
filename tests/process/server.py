"""Run a real ``tracehive serve`` process (and the CLI) for the process-level tests.

``TracehiveServer`` starts ``python -m tracehive serve`` as a subprocess, waits (bounded) for
``GET /healthz`` to answer 200, captures stdout and stderr in background threads (so the pipes
never fill up), parses the bootstrap API key the server prints on first start, and stops the
process with SIGTERM (then SIGKILL) or ``kill9()``. It is a context manager; ``start()`` may be
called again after a stop to restart on the same data dir.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx

PROJECT_KEY_RE = re.compile(r"^hh_[A-Za-z0-9]{24}_[A-Za-z0-9_-]{64}$")
INGESTION_KEY_RE = re.compile(r"^hh_ingst_[A-Za-z0-9]{24}_[A-Za-z0-9_-]{64}$")
STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0  # the server's own graceful shutdown is bounded at 10 s
CLI_TIMEOUT = 60.0


# Ports this process has handed out: the kernel may give the same free port to two binds in a
# row once the first socket is closed, and two servers started on it would share one URL.
_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago and that this process has not handed out before (the
    server may still lose a race for it to another process: see start())."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def _listening_inodes(port: int) -> set[str]:
    """The socket inodes listening on TCP ``port`` in this network namespace (Linux /proc)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def holds_listener(pid: int, port: int) -> bool | None:
    """Whether process ``pid`` holds the socket listening on ``port``: a /healthz answer on the
    port proves nothing when another server took it first. None where /proc cannot tell."""
    if not Path("/proc/net/tcp").exists():
        return None
    inodes = _listening_inodes(port)
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            return True
    return False


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test process's environment without any TRACEHIVE_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEHIVE_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def run_cli(
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    check: bool = True,
    timeout: float = CLI_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m tracehive ARGS`` and return its result (text stdout/stderr)."""
    result = subprocess.run(
        [sys.executable, "-m", "tracehive", *args],
        capture_output=True,
        text=True,
        env=clean_env(env),
        cwd=cwd,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"tracehive {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


def _pump(stream: IO[str], sink: list[str]) -> None:
    for line in stream:
        sink.append(line.rstrip("\n"))
    stream.close()


class ServerError(RuntimeError):
    pass


class TracehiveServer:
    """One ``tracehive serve`` process.

    With ``flags=True`` (the default) the server gets ``--host``, ``--port`` and ``--data-dir``;
    with ``flags=False`` it gets none, and ``env`` must supply them (``port``/``host`` then only
    tell the helper where to find the server).
    """

    def __init__(
        self,
        data_dir: str | Path | None = None,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        env: Mapping[str, str] | None = None,
        flags: bool = True,
        extra_args: Sequence[str] = (),
        cwd: str | Path | None = None,
        startup_timeout: float = STARTUP_TIMEOUT,
        tls_ca: str | Path | None = None,
    ) -> None:
        """``tls_ca``: the server runs TLS (its flags are in ``extra_args`` or ``env``); clients
        trust this CA file."""
        self.tls_ca = str(tls_ca) if tls_ca is not None else None
        if flags and data_dir is None:
            raise ValueError("data_dir is required when passing flags")
        if not flags and port is None:
            raise ValueError("port is required without flags (it must come from env)")
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.host = host
        self._fixed_port = port
        self.port = port or 0
        self.env = dict(env or {})
        self.flags = flags
        self.extra_args = list(extra_args)
        self.cwd = cwd
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[str] | None = None
        self.stdout_lines: list[str] = []
        self.stderr_lines: list[str] = []
        self._pumps: list[threading.Thread] = []
        self.starts = 0

    # Lifecycle ---------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"{'https' if self.tls_ca else 'http'}://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise ServerError("not started")
        return self.proc.pid

    def memory_kib(self, field: str = "VmRSS") -> int:
        """A memory figure of the running server from /proc/<pid>/status (VmRSS: resident now,
        VmHWM: the peak resident size), in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise ServerError(f"{field} not in /proc/{self.pid}/status")

    def _verify(self) -> ssl.SSLContext | bool:
        return ssl.create_default_context(cafile=self.tls_ca) if self.tls_ca else True

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "tracehive", "serve"]
        if self.flags:
            assert self.data_dir is not None
            cmd += ["--host", self.host, "--port", str(self.port), "--data-dir", str(self.data_dir)]
        return cmd + self.extra_args

    def start(self) -> TracehiveServer:
        """Start (or restart) the server and wait until /healthz answers 200."""
        if self.running:
            raise ServerError("already running")
        attempts = 1 if self._fixed_port else 3
        for attempt in range(attempts):
            if not self._fixed_port:
                self.port = free_port(self.host)
            try:
                self._start_once()
                self.starts += 1
                return self
            except ServerError:
                lost_port_race = "address already in use" in self.stderr.lower()
                if attempt + 1 < attempts and lost_port_race:
                    continue
                raise
        raise AssertionError("unreachable")

    def _start_once(self) -> None:
        self.stdout_lines, self.stderr_lines = [], []
        self.proc = subprocess.Popen(
            self.command(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=clean_env(self.env),
            cwd=self.cwd,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._pumps = [
            threading.Thread(target=_pump, args=(self.proc.stdout, self.stdout_lines), daemon=True),
            threading.Thread(target=_pump, args=(self.proc.stderr, self.stderr_lines), daemon=True),
        ]
        for t in self._pumps:
            t.start()
        deadline = time.monotonic() + self.startup_timeout
        healthy = False
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._join_pumps()
                raise ServerError(
                    f"tracehive serve exited with {self.proc.returncode} during start-up\n"
                    f"stdout:\n{self.stdout}\nstderr:\n{self.stderr}"
                )
            if not healthy:
                try:
                    r = httpx.get(self.url + "/healthz", timeout=2.0, verify=self._verify())
                    healthy = r.status_code == 200 and holds_listener(self.proc.pid, self.port) is not False
                    last_error = f"/healthz answered {r.status_code}: {r.text[:200]}"
                    if r.status_code == 200 and not healthy:
                        last_error = f"another process answers on port {self.port}"
                except httpx.HTTPError as exc:
                    last_error = repr(exc)
            # The banner is printed (and flushed) before uvicorn starts; wait until our reader
            # thread has it too, so that ``bootstrap_key`` is complete.
            if healthy and any(" serving on http" in line for line in self.stdout_lines):
                return
            time.sleep(0.1)
        self._hard_kill()
        raise ServerError(
            f"tracehive serve was not ready within {self.startup_timeout} s ({last_error})\n"
            f"stdout:\n{self.stdout}\nstderr:\n{self.stderr}"
        )

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._hard_kill()
        self._join_pumps()
        return self.proc.returncode

    def kill9(self) -> int | None:
        """SIGKILL: no shutdown code runs, like a crash or power cut of the process."""
        if self.proc is None:
            return None
        self._hard_kill()
        self._join_pumps()
        return self.proc.returncode

    def _hard_kill(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(STOP_TIMEOUT)

    def _join_pumps(self) -> None:
        for t in self._pumps:
            t.join(5)

    def restart(self) -> TracehiveServer:
        self.stop()
        return self.start()

    def __enter__(self) -> TracehiveServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # Output ------------------------------------------------------------------------------------

    @property
    def stdout(self) -> str:
        return "\n".join(self.stdout_lines)

    @property
    def stderr(self) -> str:
        return "\n".join(self.stderr_lines)

    @property
    def printed_keys(self) -> list[str]:
        """Every line of this run's stdout that is an API key, in order."""
        return [
            line.strip()
            for line in self.stdout_lines
            if PROJECT_KEY_RE.match(line.strip()) or INGESTION_KEY_RE.match(line.strip())
        ]

    @property
    def bootstrap_key(self) -> str | None:
        """The key printed by this run (first start on an empty data dir), else None."""
        keys = self.printed_keys
        if len(keys) > 1:
            raise ServerError(f"more than one key printed:\n{self.stdout}")
        return keys[0] if keys else None

    # Clients -----------------------------------------------------------------------------------

    def client(self, key: str | None = None, timeout: float = 30.0, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        kwargs.setdefault("verify", self._verify())
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout, **kwargs)


def serving(data_dir: str | Path, **kwargs: Any) -> Iterator[TracehiveServer]:
    """Generator body for a pytest fixture: a started server, always stopped afterwards."""
    server = TracehiveServer(data_dir, **kwargs)
    try:
        yield server.start()
    finally:
        server.stop()
