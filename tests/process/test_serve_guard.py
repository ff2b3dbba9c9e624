"""``tracehive serve`` holds its port and its data dir before it says it is serving (issue 16,
points 4 and 5): a taken port, a data dir held by a running server, and a data dir that is a file
each give one clear line and a non-zero exit, never a banner or a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from tests.process.server import CLI_TIMEOUT, TracehiveServer, clean_env, free_port


def serve(data_dir: Path, port: int) -> subprocess.CompletedProcess[str]:
    """Run ``tracehive serve`` expecting it to refuse to start (bounded: a server that did start
    would time out here and fail the test)."""
    return subprocess.run(
        [sys.executable, "-m", "tracehive", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--data-dir", str(data_dir)],
        capture_output=True, text=True, env=clean_env(), timeout=CLI_TIMEOUT,
    )  # fmt: skip


def test_a_taken_port_is_one_line_and_no_banner(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve(tmp_path / "data", port)
    assert result.returncode != 0
    assert "serving on" not in result.stdout
    assert result.stderr.strip() == (f"tracehive serve: cannot listen on 127.0.0.1:{port}: address already in use "
                                     "(another server on that port?)")
    # Nothing was opened or made for a server that never started: no project, no key printed.
    assert "API key" not in result.stdout and not (tmp_path / "data" / "tracehive.db").exists()


def test_a_second_server_on_a_held_data_dir_is_refused_naming_the_first(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with TracehiveServer(data_dir) as first:
        result = serve(data_dir, free_port())
        assert result.returncode != 0 and "serving on" not in result.stdout
        message = result.stderr.strip()
        assert message.startswith(f"tracehive serve: the data dir {data_dir} is in use by another tracehive serve")
        assert f"pid {first.pid}, http://127.0.0.1:{first.port}" in message
        assert "Traceback" not in result.stderr
        assert first.running  # the refused one did not disturb it
        with first.client(first.bootstrap_key) as c:
            assert c.get("/v1/whoami").status_code == 200


def test_the_data_dir_is_free_again_after_a_kill9(tmp_path: Path) -> None:
    """The kernel drops the lock with the process: a crash never leaves the data dir locked."""
    server = TracehiveServer(tmp_path / "data")
    server.start()
    server.kill9()
    assert server.proc is not None and server.proc.returncode == -9
    server.start()
    try:
        assert server.running
    finally:
        server.stop()


def test_a_data_dir_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    result = serve(not_a_dir, free_port())
    assert result.returncode != 0
    assert result.stderr.strip() == f"tracehive serve: the data dir {not_a_dir} is a file, not a directory"
    below_a_file = not_a_dir / "data"
    result = serve(below_a_file, free_port())
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().startswith(f"tracehive serve: cannot create the data dir {below_a_file}: ")
