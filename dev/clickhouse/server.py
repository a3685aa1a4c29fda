"""ClickHouse's HTTP interface over the chdb engine, for the local stack.

The engine is ClickHouse 26.9.2.1 (chdb-core 26.9.0), built as an in-process library. It runs the real SQL, the MergeTree
storage, the Kafka table engine with its background consumers, and materialized views, but it opens no
network port of its own (its embedded server has no listener setup: `SYSTEM START LISTEN HTTP` answers
"start_servers_callback is not set"). This process holds the engine for its whole life and carries
ClickHouse's HTTP protocol to it; every query, error and result byte comes from the engine.

What it serves (a subset of ClickHouse's HTTP interface, see dev/clickhouse/README.md):
  GET/HEAD /ping, GET / without a query      -> 200 "Ok.\n"
  GET  /?query=...                            -> runs the query read-only (readonly=2), as ClickHouse does
  POST / with the query in the body, or in ?query= with the body appended after a newline (INSERT data)
  params: database, default_format, param_<name> (query parameters), user/password, query_id; every other
          parameter is applied as a ClickHouse setting (SET name = value), so unknown ones fail like
          ClickHouse: "Unknown setting".
  headers: X-ClickHouse-User / X-ClickHouse-Key, HTTP basic auth, X-ClickHouse-Database, X-ClickHouse-Format.
  answers: the result in the query's FORMAT clause, else default_format, else TabSeparated; headers
          X-ClickHouse-Query-Id, X-ClickHouse-Format, X-ClickHouse-Timezone, X-ClickHouse-Summary.
  errors:  ClickHouse's exception text with X-ClickHouse-Exception-Code, and the status ClickHouse gives that
          code (400 parse errors, 403 authentication, 404 unknown objects, 500 otherwise).
Not served: sessions (session_id), compression, progress headers, the native TCP protocol, /play.

Each request gets its own engine connection (about half a millisecond), so settings, USE and query
parameters of one request never leak into another, as with ClickHouse's session-less HTTP requests.
"""

from __future__ import annotations

import argparse
import base64
import ctypes
import hmac
import importlib.machinery
import importlib.metadata
import importlib.util
import json
import logging
import os
import re
import signal
import site
import sys
import threading
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

LOG = logging.getLogger("clickhouse-http")

# Parameters with a meaning of their own in ClickHouse's HTTP interface; all others are settings.
RESERVED_PARAMS = {
    "query", "database", "default_format", "user", "password", "quota_key", "query_id", "session_id",
    "session_timeout", "session_check", "compress", "decompress", "buffer_size", "wait_end_of_query",
    "stacktrace", "role",
}

# ClickHouse's HTTP status for an exception code (HTTPHandler's exceptionCodeToHTTPStatus, the codes the
# project can meet); anything else is 500.
STATUS_BY_CODE = {
    194: HTTPStatus.UNAUTHORIZED,  # REQUIRED_PASSWORD
    192: HTTPStatus.FORBIDDEN,  # UNKNOWN_USER
    193: HTTPStatus.FORBIDDEN,  # WRONG_PASSWORD
    516: HTTPStatus.FORBIDDEN,  # AUTHENTICATION_FAILED
    164: HTTPStatus.FORBIDDEN,  # READONLY
    6: HTTPStatus.BAD_REQUEST,  # CANNOT_PARSE_TEXT
    26: HTTPStatus.BAD_REQUEST,  # CANNOT_PARSE_QUOTED_STRING
    27: HTTPStatus.BAD_REQUEST,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
    36: HTTPStatus.BAD_REQUEST,  # BAD_ARGUMENTS
    41: HTTPStatus.BAD_REQUEST,  # CANNOT_PARSE_DATETIME
    62: HTTPStatus.BAD_REQUEST,  # SYNTAX_ERROR
    46: HTTPStatus.NOT_FOUND,  # UNKNOWN_FUNCTION
    47: HTTPStatus.NOT_FOUND,  # UNKNOWN_IDENTIFIER
    50: HTTPStatus.NOT_FOUND,  # UNKNOWN_TYPE
    56: HTTPStatus.NOT_FOUND,  # UNKNOWN_STORAGE
    60: HTTPStatus.NOT_FOUND,  # UNKNOWN_TABLE
    73: HTTPStatus.NOT_FOUND,  # UNKNOWN_FORMAT
    81: HTTPStatus.NOT_FOUND,  # UNKNOWN_DATABASE
    115: HTTPStatus.NOT_FOUND,  # UNKNOWN_SETTING
    48: HTTPStatus.NOT_IMPLEMENTED,  # NOT_IMPLEMENTED
    159: HTTPStatus.REQUEST_TIMEOUT,  # TIMEOUT_EXCEEDED
}

CONTENT_TYPES = {
    "tabseparated": "text/tab-separated-values; charset=UTF-8",
    "tsv": "text/tab-separated-values; charset=UTF-8",
    "tabseparatedwithnames": "text/tab-separated-values; charset=UTF-8",
    "tabseparatedwithnamesandtypes": "text/tab-separated-values; charset=UTF-8",
    "csv": "text/csv; charset=UTF-8; header=absent",
    "csvwithnames": "text/csv; charset=UTF-8; header=present",
    "json": "application/json; charset=UTF-8",
    "jsoncompact": "application/json; charset=UTF-8",
    "jsoneachrow": "application/x-ndjson; charset=UTF-8",
    "jsoncompacteachrow": "application/x-ndjson; charset=UTF-8",
}

# The output format a query names itself (its last FORMAT clause outside strings is good enough here).
FORMAT_CLAUSE = re.compile(r"\bFORMAT\s+([A-Za-z][A-Za-z0-9_]*)\s*;?\s*$", re.IGNORECASE)
CODE_RE = re.compile(r"Code: (\d+)\.")


def load_engine() -> Any:
    """Loads chdb's engine module (_chdb) without running the chdb package's __init__.

    The package's __init__ opens a connection to read the version and closes it; closing the last
    connection shuts the engine down, and the message-broker pool does not come back after that: any later
    CREATE TABLE ... ENGINE = Kafka fails with "Shutdown was called". Loading the module directly keeps
    the engine alive from the first connection on.
    """
    pkg = None
    for sp in site.getsitepackages():
        cand = os.path.join(sp, "chdb")
        if os.path.exists(os.path.join(cand, "_chdb.abi3.so")):
            pkg = cand
            break
    if pkg is None:
        raise RuntimeError("chdb-core is not installed in this Python (run dev/clickhouse.sh up)")
    so = os.path.join(pkg, "_chdb.abi3.so")
    cwd = os.getcwd()
    os.chdir(pkg)  # its pybind11 stub library is found relative to the package directory
    try:
        # RTLD_DEEPBIND, as the package does: the engine's allocator wins over any other loaded libstdc++.
        ctypes.CDLL(so, mode=sys.getdlopenflags() | 0x00008)
        loader = importlib.machinery.ExtensionFileLoader("_chdb", so)
        spec = importlib.util.spec_from_loader("_chdb", loader)
        module = importlib.util.module_from_spec(spec)
        loader.exec_module(module)
    finally:
        os.chdir(cwd)
    return module


class Engine:
    """One embedded ClickHouse engine; an anchor connection keeps it alive until close()."""

    def __init__(self, data_path: str, config_file: str) -> None:
        self._chdb = load_engine()
        self._conn_str = f"{data_path}?config-file={config_file}"
        self._anchor = self._chdb.connect(self._conn_str)
        self.version = self.query_text("SELECT version()").strip()
        self.timezone = self.query_text("SELECT serverTimezone()").strip()

    def connect(self) -> Any:
        return self._chdb.connect(self._conn_str)

    def query_text(self, sql: str) -> str:
        return self._anchor.query(sql, "TabSeparated").bytes().decode()

    def close(self) -> None:
        self._anchor.close()


class Handler(BaseHTTPRequestHandler):
    server_version = "ClickHouse-chdb"
    protocol_version = "HTTP/1.1"
    engine: Engine
    user: str
    password: str

    def log_message(self, fmt: str, *args: Any) -> None:  # access log on the server's logger
        LOG.debug("%s %s", self.address_string(), fmt % args)

    # --- routing ------------------------------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self, head: bool = False) -> None:
        url = urlsplit(self.path)
        params = parse_qsl(url.query, keep_blank_values=True)
        body = self._read_body()
        if url.path == "/ping" and self.command in ("GET", "HEAD"):
            self._send(HTTPStatus.OK, b"Ok.\n", "text/html; charset=UTF-8", head=head)
            return
        if url.path != "/":
            msg = f"There is no handle {url.path}\n\nUse / or /ping\n"
            self._send(HTTPStatus.NOT_FOUND, msg.encode(), "text/plain; charset=UTF-8", head=head)
            return
        query_params = [v for k, v in params if k == "query"]
        if self.command in ("GET", "HEAD") and not query_params:
            self._send(HTTPStatus.OK, b"Ok.\n", "text/html; charset=UTF-8", head=head)
            return
        if self.command == "POST":
            sql = "\n".join(query_params + [body.decode("utf-8", "surrogateescape")]) if query_params else body.decode("utf-8", "surrogateescape")
        else:
            sql = query_params[0]
        self._run(sql, params, readonly=self.command != "POST", head=head)

    def _read_body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(n) if n > 0 else b""

    # --- queries ------------------------------------------------------------------------------------------

    def _run(self, sql: str, params: list[tuple[str, str]], readonly: bool, head: bool) -> None:
        query_id = next((v for k, v in params if k == "query_id"), "") or str(uuid.uuid4())
        if not self._authenticated(params):
            name = self._credentials(params)[0] or "default"
            self._error(
                f"Code: 516. DB::Exception: {name}: Authentication failed: password is incorrect, or there is "
                f"no user with such name. (AUTHENTICATION_FAILED) (version {self.engine.version})",
                query_id, head)
            return
        database = self.headers.get("X-ClickHouse-Database") or next((v for k, v in params if k == "database"), "")
        fmt = (self.headers.get("X-ClickHouse-Format") or next((v for k, v in params if k == "default_format"), "")
               or "TabSeparated")
        query_params = {k[len("param_"):]: v for k, v in params if k.startswith("param_")}
        settings = [(k, v) for k, v in params if k not in RESERVED_PARAMS and not k.startswith("param_")]
        conn = self.engine.connect()
        try:
            if database:
                conn.query(f"USE {quote_ident(database)}", "TabSeparated")
            for k, v in settings:
                conn.query(f"SET {quote_ident(k)} = {quote_string(v)}", "TabSeparated")
            if readonly:
                conn.query("SET readonly = 2", "TabSeparated")
            res = conn.query(sql, fmt, params=query_params) if query_params else conn.query(sql, fmt)
            if res.has_error():
                raise RuntimeError(res.error_message())
            out = res.bytes()
            # An INSERT's FORMAT names its input; its (empty) answer is in the default format.
            m = None if sql.lstrip()[:6].upper() == "INSERT" else FORMAT_CLAUSE.search(sql)
            used = m.group(1) if m else fmt
            summary = {
                "read_rows": str(res.rows_read()),
                "read_bytes": str(res.bytes_read()),
                "elapsed_ns": str(int(res.elapsed() * 1e9)),
            }
        except Exception as e:  # the engine's own exception text goes back to the client
            self._error(str(e), query_id, head)
            return
        finally:
            conn.close()
        headers = {
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Format": used,
            "X-ClickHouse-Timezone": self.engine.timezone,
            "X-ClickHouse-Summary": json.dumps(summary, separators=(",", ":")),
        }
        ctype = CONTENT_TYPES.get(used.lower(), "text/plain; charset=UTF-8")
        self._send(HTTPStatus.OK, out, ctype, headers, head)

    def _credentials(self, params: list[tuple[str, str]]) -> tuple[str, str]:
        user = self.headers.get("X-ClickHouse-User")
        key = self.headers.get("X-ClickHouse-Key")
        if user is not None or key is not None:
            return user or "default", key or ""
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            try:
                u, _, p = base64.b64decode(auth[6:].strip()).decode().partition(":")
                return u, p
            except (ValueError, UnicodeDecodeError):
                return "", "\0invalid"
        return (next((v for k, v in params if k == "user"), "default"),
                next((v for k, v in params if k == "password"), ""))

    def _authenticated(self, params: list[tuple[str, str]]) -> bool:
        user, password = self._credentials(params)
        return (hmac.compare_digest(user.encode(), self.user.encode())
                and hmac.compare_digest(password.encode(), self.password.encode()))

    # --- answers ------------------------------------------------------------------------------------------

    def _error(self, message: str, query_id: str, head: bool) -> None:
        m = CODE_RE.search(message)
        code = int(m.group(1)) if m else 1000
        status = STATUS_BY_CODE.get(code, HTTPStatus.INTERNAL_SERVER_ERROR)
        headers = {"X-ClickHouse-Exception-Code": str(code), "X-ClickHouse-Query-Id": query_id}
        if status == HTTPStatus.UNAUTHORIZED:
            headers["WWW-Authenticate"] = 'Basic realm=""'
        LOG.info("query %s failed: code %d", query_id, code)
        self._send(status, (message.rstrip("\n") + "\n").encode(), "text/plain; charset=UTF-8", headers, head)

    def _send(self, status: HTTPStatus, body: bytes, ctype: str, headers: dict[str, str] | None = None,
              head: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "Keep-Alive")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)


def quote_ident(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def quote_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--data", required=True, help="the engine's data directory")
    ap.add_argument("--config", required=True, help="the engine's config.xml (config.d/ beside it is merged)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18123)
    ap.add_argument("--user", default="default")
    ap.add_argument("--password-file", help="file holding the password the HTTP clients must present")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)

    password = ""
    if args.password_file:
        with open(args.password_file, encoding="utf-8") as f:
            password = f.read().strip()
    engine = Engine(args.data, args.config)
    Handler.engine, Handler.user, Handler.password = engine, args.user, password
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    httpd = ThreadingHTTPServer((args.host, args.port), Handler)

    def stop(signum: int, _frame: Any) -> None:
        LOG.info("signal %d: stopping", signum)
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    LOG.info("ClickHouse %s (chdb-core %s), timezone %s, data %s: serving HTTP on %s:%d",
             engine.version, importlib.metadata.version("chdb-core"), engine.timezone, args.data, args.host, args.port)
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        httpd.server_close()
        engine.close()  # the last connection: the engine flushes and stops its consumers
        LOG.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
