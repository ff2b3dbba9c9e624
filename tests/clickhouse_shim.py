"""A ClickHouse HTTP interface in front of chDB, for testing ``HttpExecutor`` without a server.

    python -m tests.clickhouse_shim --path DIR [--port 0] [--user U --password P]

prints ``port N`` once it listens on 127.0.0.1, then serves until killed. It runs in its own
process because chDB's engine is global to a process (the tests' own chDB sessions live in theirs).

It speaks the part of ClickHouse's HTTP interface that clickhouse-connect uses:
- ``GET /ping``; ``GET``/``POST /`` with the SQL in ``query=`` and/or the body (``query`` first,
  then a newline and the body: an INSERT's data follows its statement), or in a multipart form
  (clickhouse-connect switches to one when the bound parameters pass 4 KiB);
- ``param_<name>`` fields, handed to chDB as they are: the engine parses them, as a server does;
- ``database``, ``default_format`` and the settings (every other field not reserved by the HTTP
  interface), which apply to this request only, as on a server without sessions;
- HTTP Basic auth (or ``X-ClickHouse-User``/``-Key``, or ``user``/``password``) when started with
  ``--user``;
- errors as a server sends them: a 4xx/5xx status, ``X-ClickHouse-Exception-Code: N`` and the body
  ``Code: N. DB::Exception: ... (NAME) (version ...)``.
Not spoken: sessions (``session_id`` is ignored), compressed bodies, progress headers, and
``SET`` statements (they would outlive their request here).

Requests are handled on threads (keep-alive connections must not block each other) but run on
the one chDB session one at a time.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
import threading
import uuid
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

# Request fields the HTTP interface keeps for itself; everything else (but param_*) is a setting.
RESERVED = {
    "query", "database", "default_format", "user", "password", "quota_key", "query_id", "session_id",
    "session_timeout", "session_check", "close_session", "compress", "decompress", "buffer_size",
    "wait_end_of_query", "stacktrace", "role", "client_protocol_version",
}
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CODE = re.compile(r"Code: (\d+)")
# The statuses a server answers for a few error codes (the rest are 500).
_STATUS = {516: 403, 62: 400, 27: 400, 6: 400, 26: 400, 60: 404, 81: 404, 115: 404}


class ShimError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"Code: {code}. DB::Exception: {message}")
        self.code = code


class Engine:
    """The chDB session and the request-scoped state laid on it (database, settings)."""

    def __init__(self, path: str) -> None:
        from chdb import session as chdb_session

        self.session: Any = chdb_session.Session(path)
        self.lock = threading.Lock()
        self.database = "default"
        self.applied: dict[str, str] = {}  # settings this shim SET, by name
        self.version = self.session.query("SELECT version()", "TabSeparated").bytes().decode().strip()

    def run(self, sql: str, fmt: str, database: str, settings: dict[str, str], params: dict[str, str]) -> Any:
        with self.lock:
            try:
                self._use(database)
                self._apply(settings)
                return self.session.query(sql, fmt, params=params or None)
            except Exception:
                # chDB may keep a failed query's partial output and prepend it to the next result
                # (see ChdbExecutor._guarded): a throwaway query takes it.
                try:
                    self.session.query("SELECT 1", "TabSeparated")
                except Exception:
                    pass
                raise

    def _use(self, database: str) -> None:
        if database != self.database:
            self.session.query(f"USE `{database.replace('`', '``')}`", "TabSeparated")
            self.database = database

    def _apply(self, settings: dict[str, str]) -> None:
        """Make the session's settings those of this request: a setting the last request set and
        this one does not goes back to its default."""
        for name in [n for n in self.applied if n not in settings]:
            self.session.query(f"SET {name} = DEFAULT", "TabSeparated")
            del self.applied[name]
        for name, value in settings.items():
            if not _SETTING_NAME.match(name):
                raise ShimError(115, f"Unknown setting '{name}'. (UNKNOWN_SETTING)")
            if self.applied.get(name) != value:
                literal = value.replace("\\", "\\\\").replace("'", "\\'")
                self.session.query(f"SET {name} = '{literal}'", "TabSeparated")
                self.applied[name] = value


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clickhouse-connect's pool expects
    # Headers and body go out in two writes: with Nagle's algorithm the body would wait for the
    # client's delayed ACK of the headers (40 ms a request on Linux).
    disable_nagle_algorithm = True
    server: Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # quiet: the tests read the port from stdout

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if urlsplit(self.path).path.rstrip("/") == "/ping":
            self._send(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
        else:
            self._handle(b"")

    def do_POST(self) -> None:  # noqa: N802
        self._handle(self._body())

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _fields(self, body: bytes) -> tuple[dict[str, str], bytes]:
        """The request's fields (URL, then form) and what is left of the body."""
        fields = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
        ctype = self.headers.get("Content-Type", "")
        if ctype.startswith("multipart/form-data"):
            message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if name:
                    fields[str(name)] = part.get_payload(decode=True).decode()
            return fields, b""
        return fields, body

    def _handle(self, body: bytes) -> None:
        query_id = str(uuid.uuid4())
        try:
            if self.headers.get("Content-Encoding", "identity") != "identity":
                raise ShimError(48, "the test shim does not decompress request bodies. (NOT_IMPLEMENTED)")
            fields, rest = self._fields(body)
            query_id = fields.get("query_id") or query_id
            self._authenticate(fields)
            sql = fields.get("query", "")
            if rest:
                sql = f"{sql}\n{rest.decode()}" if sql else rest.decode()
            if not sql.strip():
                raise ShimError(62, "Empty query. (SYNTAX_ERROR)")
            fmt = fields.get("default_format") or "TabSeparated"
            params = {k[len("param_"):]: v for k, v in fields.items() if k.startswith("param_")}
            settings = {k: v for k, v in fields.items() if k not in RESERVED and not k.startswith("param_")}
            result = self.server.engine.run(sql, fmt, fields.get("database") or "default", settings, params)
        except Exception as exc:  # the engine's text, as a server would send it
            self._error(exc, query_id)
            return
        data = result.bytes()
        summary = {"read_rows": str(result.rows_read()), "read_bytes": str(result.bytes_read()),
                   "written_rows": str(result.rows_written()), "written_bytes": str(result.bytes_written()),
                   "result_rows": "0", "elapsed_ns": str(int(result.elapsed() * 1e9))}
        headers = {"Content-Type": "text/plain; charset=UTF-8", "X-ClickHouse-Query-Id": query_id,
                   "X-ClickHouse-Timezone": "UTC", "X-ClickHouse-Summary": json.dumps(summary)}
        if data:
            headers["X-ClickHouse-Format"] = fmt
        self._send(200, data, headers)

    def _authenticate(self, fields: dict[str, str]) -> None:
        want = self.server.credentials
        if want is None:
            return
        user, password = fields.get("user", "default"), fields.get("password", "")
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        elif "X-ClickHouse-User" in self.headers:
            user, password = self.headers["X-ClickHouse-User"], self.headers.get("X-ClickHouse-Key", "")
        if (user, password) != want:
            raise ShimError(516, f"{user}: Authentication failed: password is incorrect, or there is no user "
                                 "with such name. (AUTHENTICATION_FAILED)")

    def _error(self, exc: Exception, query_id: str) -> None:
        text = str(exc).strip() or type(exc).__name__
        match = _CODE.search(text)
        code = int(match.group(1)) if match else 1001  # STD_EXCEPTION
        if not match:
            text = f"Code: {code}. DB::Exception: {text}. (STD_EXCEPTION)"
        body = f"{text} (version {self.server.engine.version} (chdb shim))\n".encode()
        self._send(_STATUS.get(code, 500), body, {"Content-Type": "text/plain; charset=UTF-8",
                                                  "X-ClickHouse-Exception-Code": str(code),
                                                  "X-ClickHouse-Query-Id": query_id})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, engine: Engine, credentials: tuple[str, str] | None) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.engine = engine
        self.credentials = credentials


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", required=True, help="chDB's data directory")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    parser.add_argument("--user", help="require this user (HTTP Basic auth)")
    parser.add_argument("--password", default="")
    args = parser.parse_args(argv)
    server = Server(args.port, Engine(args.path), (args.user, args.password) if args.user else None)
    print(f"port {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    sys.exit(main())
