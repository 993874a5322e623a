"""A STAND-IN for a ClickHouse server's HTTP interface, serving the chDB engine of the test process.

No ClickHouse server that clickhouse-connect can talk to installs on this machine (Debian's is 18.16), so
this reproduces the parts of the documented HTTP interface (https://clickhouse.com/docs/interfaces/http)
that clickhouse-connect's HTTP client uses, over the real engine:
- ``POST /`` with the SQL in the body (or the ``query`` parameter followed by the body), ``database``,
  ``param_<name>`` bind parameters and settings as URL parameters;
- inserts as ``INSERT INTO t (cols) FORMAT Native\\n`` followed by the data, in a chunked body that may be
  ``Content-Encoding: lz4`` (one LZ4 frame per block: every frame is decoded), gzip or deflate;
- results in the format the SQL names (``FORMAT Native``), with ``X-ClickHouse-Format``,
  ``X-ClickHouse-Timezone``, ``X-ClickHouse-Query-Id`` and ``X-ClickHouse-Summary`` headers;
- errors as HTTP 500 (401 for authentication) with ``X-ClickHouse-Exception-Code`` and the body
  ``Code: N. DB::Exception: ...``; credentials from Basic auth or ``X-ClickHouse-User``/``-Key``.
It can be stopped and started again on the same port to play a server outage.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import re
import socket
import tempfile
import threading
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

TRANSPORT = {
    "query", "database", "query_id", "session_id", "session_timeout", "session_check", "compress", "decompress",
    "wait_end_of_query", "buffer_size", "client_protocol_version", "enable_http_compression", "role",
    "send_progress_in_http_headers", "http_headers_progress_interval_ms", "default_format", "user", "password",
    "quota_key",
}  # fmt: skip
_INSERT = re.compile(rb"^\s*INSERT\s+INTO\s+(.+?)\s+FORMAT\s+(\w+)[ \t]*\r?\n", re.IGNORECASE | re.DOTALL)
_CODE = re.compile(r"Code:\s*(\d+)")
_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)


def decode_lz4_frames(data: bytes) -> bytes:
    """Concatenated LZ4 frames, every one of them decoded (not only the first)."""
    import lz4.frame

    out = bytearray()
    while data:
        decompressor = lz4.frame.LZ4FrameDecompressor()
        out += decompressor.decompress(data)
        if not decompressor.eof:
            raise ValueError("truncated LZ4 frame")
        data = decompressor.unused_data
    return bytes(out)


def decode_body(data: bytes, encoding: str | None) -> bytes:
    if not encoding or encoding == "identity":
        return data
    if encoding == "lz4":
        return decode_lz4_frames(data)
    if encoding == "gzip":
        return gzip.decompress(data)
    if encoding == "deflate":
        return zlib.decompress(data)
    raise ValueError(f"unsupported Content-Encoding {encoding}")


class ClickHouseHTTPStandIn:
    """Serve chDB at ``data_dir`` over ClickHouse's HTTP protocol on 127.0.0.1; see the module docstring."""

    def __init__(self, data_dir: Path, user: str = "default", password: str = "") -> None:
        import chdb
        from clickhouse_connect.driver._chdbclient import build_connection_string

        self.conn = chdb.connect(build_connection_string(str(data_dir), None))
        self.user = user
        self.password = password
        self.lock = threading.Lock()
        self.port = 0
        self.requests: list[dict[str, Any]] = []
        self.lz4_frames_seen = 0
        self.connections: set[Any] = set()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        handler = type("Handler", (_Handler,), {"standin": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Close the listening socket and open connections: clients fail to connect until :meth:`start`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for sock in list(self.connections):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.connections.clear()

    def close(self) -> None:
        self.stop()
        self.conn.close()

    # ---- the engine side ---------------------------------------------------

    def execute(self, sql: bytes, params: dict[str, str]) -> tuple[bytes, str, dict[str, str]]:
        """Run one statement; returns the body, its format and the summary."""
        database = params.get("database")
        binds = {k[len("param_") :]: v for k, v in params.items() if k.startswith("param_")}
        settings = {k: v for k, v in params.items() if k not in TRANSPORT and not k.startswith("param_")}
        with self.lock:
            if database:
                self.conn.query(f"USE `{database}`", "TabSeparated")
            for key, value in settings.items():
                if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                    self.conn.query(f"SET {key} = '{value.replace(chr(39), chr(92) + chr(39))}'", "TabSeparated")
            insert = _INSERT.match(sql)
            if insert:
                table, fmt = insert.group(1).decode(), insert.group(2).decode()
                with tempfile.NamedTemporaryFile(suffix=".data") as tmp:
                    tmp.write(sql[insert.end() :])
                    tmp.flush()
                    statement = f"INSERT INTO {table} FROM INFILE '{tmp.name}' FORMAT {fmt}"
                    result = self.conn.query(statement, "TabSeparated")
                rows = str(result.rows_read())
                return b"", "TabSeparated", {"written_rows": rows, "written_bytes": str(result.bytes_read())}
            text = sql.decode()
            match = _FORMAT.search(text)
            fmt = match.group(1) if match else params.get("default_format", "TabSeparated")
            result = self.conn.query(text, fmt, params=binds)
            return result.bytes() or b"", fmt, {"read_rows": str(result.rows_read())}


class _Handler(BaseHTTPRequestHandler):
    standin: ClickHouseHTTPStandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def setup(self) -> None:
        super().setup()
        self.standin.connections.add(self.connection)

    def finish(self) -> None:
        self.standin.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _authorized(self, params: dict[str, str]) -> bool:
        user = self.headers.get("X-ClickHouse-User") or params.get("user")
        key = self.headers.get("X-ClickHouse-Key") or params.get("password") or ""
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            user, _, key = base64.b64decode(auth[6:]).decode().partition(":")
        return (user or "default") == self.standin.user and key == self.standin.password

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self, sql_body: bytes) -> None:
        parts = urlsplit(self.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        query_id = params.get("query_id") or str(uuid.uuid4())
        common = {"X-ClickHouse-Query-Id": query_id, "X-ClickHouse-Server-Display-Name": "chdb-standin",
                  "X-ClickHouse-Timezone": "UTC"}  # fmt: skip
        if parts.path == "/ping":
            self._reply(200, b"Ok.\n", {"Content-Type": "text/plain"})
            return
        if not self._authorized(params):
            msg = b"Code: 516. DB::Exception: default: Authentication failed. (AUTHENTICATION_FAILED)\n"
            self._reply(401, msg, {**common, "X-ClickHouse-Exception-Code": "516"})
            return
        encoding = self.headers.get("Content-Encoding")
        try:
            body = decode_body(sql_body, encoding)
        except Exception as exc:
            error = f"Code: 432. DB::Exception: {exc}\n".encode()
            self._reply(400, error, {**common, "X-ClickHouse-Exception-Code": "432"})
            return
        if encoding == "lz4":
            self.standin.lz4_frames_seen += sql_body.count(b"\x04\x22\x4d\x18")
        sql = (params["query"].encode() + (b"\n" + body if body else b"")) if "query" in params else body
        self.standin.requests.append(
            {"method": self.command, "path": parts.path, "params": params, "encoding": encoding,
             "head": sql[:200].decode(errors="replace")}
        )  # fmt: skip
        try:
            data, fmt, summary = self.standin.execute(sql, params)
        except Exception as exc:
            text = " ".join(str(exc).split())
            code = _CODE.search(text)
            self._reply(
                500,
                (text if text.startswith("Code:") else f"Code: 1001. DB::Exception: {text}").encode() + b"\n",
                {**common, "X-ClickHouse-Exception-Code": code.group(1) if code else "1001"},
            )
            return
        self._reply(200, data, {**common, "X-ClickHouse-Format": fmt, "X-ClickHouse-Summary": json.dumps(summary),
                                "Content-Type": "application/octet-stream"})  # fmt: skip

    def do_POST(self) -> None:
        self._handle(self._body())

    def do_GET(self) -> None:
        self._body()
        self._handle(b"")
