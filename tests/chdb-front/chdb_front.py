#!/usr/bin/env python3
"""chdb-front: TEST SCAFFOLDING, not a ClickHouse server.

A small HTTP front over chdb (the ClickHouse engine as an in-process library)
that serves the part of ClickHouse's HTTP interface that Sluice uses, so
end-to-end tests can run against a modern engine on machines where no modern
clickhouse-server can be installed. The engine is real; this HTTP layer is
not ClickHouse's and must never be run in production or exposed beyond
loopback. See README.md beside this file for what it serves and what not.

    python3 chdb_front.py --host 127.0.0.1 --port 18124 --data-dir DIR \
        --user default --password PW

Python 3 standard library plus `chdb` and `lz4`; `clickhouse-cityhash`
(ClickHouse's CityHash128 v1.0.2) for the checksums of `decompress=1` request
blocks and `compress=1` responses: without it, request checksums go unchecked
and `compress=1` is refused.
"""

import argparse
import base64
import gzip
import hmac
import json
import os
import re
import shutil
import signal
import struct
import sys
import threading
import time
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import lz4.block
import lz4.frame

try:
    from clickhouse_cityhash.cityhash import CityHash128
except ImportError:  # compress=1 is then refused, request checksums unchecked
    CityHash128 = None

# URL parameters the ClickHouse HTTP handler consumes itself: they are not
# settings (ClickHouse's own list, HTTPHandler.cpp, plus query and param_*).
RESERVED_PARAMS = {
    "query", "database", "default_format", "user", "password", "quota_key", "query_id",
    "stacktrace", "role", "buffer_size", "wait_end_of_query", "session_id", "session_timeout",
    "session_check", "client_protocol_version", "close_session", "compress", "decompress",
}

# ClickHouse's exceptionCodeToHTTPStatus (src/Server/HTTP/exceptionCodeToHTTPStatus.cpp), by
# error name; the codes are read from the engine (system.errors) at start.
STATUS_BY_NAME = {
    "REQUIRED_PASSWORD": 401,
    **dict.fromkeys(["UNKNOWN_USER", "WRONG_PASSWORD", "AUTHENTICATION_FAILED", "SET_NON_GRANTED_ROLE",
                     "ACCESS_DENIED"], 403),
    **dict.fromkeys(["BAD_ARGUMENTS", "CANNOT_COMPILE_REGEXP", "CANNOT_PARSE_TEXT", "CANNOT_PARSE_ESCAPE_SEQUENCE",
                     "CANNOT_PARSE_QUOTED_STRING", "CANNOT_PARSE_DATE", "CANNOT_PARSE_DATETIME",
                     "CANNOT_PARSE_NUMBER", "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING", "CANNOT_PARSE_IPV4",
                     "CANNOT_PARSE_IPV6", "CANNOT_PARSE_INPUT_ASSERTION_FAILED", "CANNOT_PARSE_UUID",
                     "DUPLICATE_COLUMN", "ILLEGAL_COLUMN", "UNKNOWN_ELEMENT_IN_AST", "UNKNOWN_TYPE_OF_AST_NODE",
                     "THERE_IS_NO_COLUMN", "TOO_DEEP_AST", "TOO_BIG_AST", "UNEXPECTED_AST_STRUCTURE",
                     "SYNTAX_ERROR", "INCORRECT_DATA", "TYPE_MISMATCH", "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE"], 400),
    **dict.fromkeys(["UNKNOWN_TABLE", "UNKNOWN_FUNCTION", "UNKNOWN_IDENTIFIER", "UNKNOWN_TYPE", "UNKNOWN_STORAGE",
                     "UNKNOWN_DATABASE", "UNKNOWN_SETTING", "UNKNOWN_DIRECTION_OF_SORTING",
                     "UNKNOWN_AGGREGATE_FUNCTION", "UNKNOWN_FORMAT", "UNKNOWN_DATABASE_ENGINE",
                     "UNKNOWN_TYPE_OF_QUERY", "UNKNOWN_ROLE"], 404),
    "QUERY_IS_TOO_LARGE": 413,
    "NOT_IMPLEMENTED": 501,
    "SOCKET_TIMEOUT": 503,
    "CANNOT_OPEN_FILE": 503,
    "HTTP_LENGTH_REQUIRED": 411,
    "TIMEOUT_EXCEEDED": 408,
    "CANNOT_SCHEDULE_TASK": 503,
    "UNSUPPORTED_MEDIA_TYPE": 415,
}
# Filled from the engine at start; the fallbacks are the codes this front raises itself.
STATUS_BY_CODE = {516: 403, 62: 400, 36: 400, 115: 404, 48: 501}

CONTENT_TYPES = {
    "tabseparated": "text/tab-separated-values; charset=UTF-8",
    "tsv": "text/tab-separated-values; charset=UTF-8",
    "tabseparatedraw": "text/tab-separated-values; charset=UTF-8",
    "tsvraw": "text/tab-separated-values; charset=UTF-8",
    "tabseparatedwithnames": "text/tab-separated-values; charset=UTF-8",
    "tabseparatedwithnamesandtypes": "text/tab-separated-values; charset=UTF-8",
    "csv": "text/csv; charset=UTF-8; header=absent",
    "csvwithnames": "text/csv; charset=UTF-8; header=present",
    "json": "application/json; charset=UTF-8",
    "jsoncompact": "application/json; charset=UTF-8",
    "jsoneachrow": "application/x-ndjson; charset=UTF-8",
    "jsoncompacteachrow": "application/x-ndjson; charset=UTF-8",
    "ndjson": "application/x-ndjson; charset=UTF-8",
}

LZ4_METHOD = 0x82
NONE_METHOD = 0x02
ZSTD_METHOD = 0x90
COMPRESSED_BLOCK_BYTES = 1 << 20  # ClickHouse's max_compress_block_size

AUTH_FAILED = "{user}: Authentication failed: password is incorrect, or there is no user with such name."


class FrontError(Exception):
    """An error answered the way ClickHouse answers: `Code: N. DB::Exception: ...`."""

    def __init__(self, code, message, name=None):
        text = f"Code: {code}. DB::Exception: {message}"
        if name:
            text += f" ({name})"
        super().__init__(text)
        self.code = code
        self.text = text


def engine_error(error):
    """The code and text of an exception raised by chdb (the engine's own message)."""
    text = str(error).strip()
    match = re.match(r"Code: (\d+)", text)
    return (int(match.group(1)) if match else 1001), text


def http_status(code):
    return STATUS_BY_CODE.get(code, 500)


# --- ClickHouse's compressed block framing (compress=1 / decompress=1) ----------------

def cityhash_checksum(data):
    """The 16 checksum bytes ClickHouse writes before a compressed block:
    CityHash128 v1.0.2 as (first, second) u64 little-endian."""
    value = CityHash128(data)
    return (value >> 64).to_bytes(8, "little") + (value & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little")


def decompress_blocks(body, verify=True):
    """Decodes a `decompress=1` request body: a sequence of compressed blocks."""
    out = []
    pos = 0
    view = memoryview(body)
    while pos < len(body):
        if len(body) - pos < 25:
            raise FrontError(432, f"Cannot decompress: {len(body) - pos} trailing bytes are not a whole block header",
                             "UNKNOWN_CODEC")
        checksum = bytes(view[pos:pos + 16])
        method = body[pos + 16]
        compressed_size, uncompressed_size = struct.unpack_from("<II", body, pos + 17)
        if compressed_size < 9 or pos + 16 + compressed_size > len(body):
            raise FrontError(271, f"Cannot decompress: compressed block size {compressed_size} is out of range "
                                  f"({len(body) - pos - 16} bytes left)", "CANNOT_DECOMPRESS")
        block = view[pos + 16:pos + 16 + compressed_size]
        if verify and CityHash128 is not None:
            actual = cityhash_checksum(block)
            if actual != checksum:
                raise FrontError(
                    40,
                    "Checksum doesn't match: corrupted data. Reference: "
                    f"{checksum.hex()}. Actual: {actual.hex()}. Size of compressed block: {compressed_size}",
                    "CHECKSUM_DOESNT_MATCH")
        payload = block[9:]
        if method == LZ4_METHOD:
            try:
                out.append(lz4.block.decompress(payload, uncompressed_size=uncompressed_size))
            except Exception as error:  # lz4's own message
                raise FrontError(271, f"Cannot decompress LZ4-encoded data: {error}", "CANNOT_DECOMPRESS")
        elif method == NONE_METHOD:
            out.append(bytes(payload))
        elif method == ZSTD_METHOD:
            try:
                import zstandard  # optional: the crate sends LZ4
            except ImportError:
                raise FrontError(432, "ZSTD-compressed blocks are not supported by this test front "
                                      "(pip install zstandard)", "UNKNOWN_CODEC")
            out.append(zstandard.ZstdDecompressor().decompress(bytes(payload), max_output_size=uncompressed_size))
        else:
            raise FrontError(432, f"Unknown codec family code: {method}", "UNKNOWN_CODEC")
        pos += 16 + compressed_size
    return b"".join(out)


def compress_blocks(data):
    """Encodes a `compress=1` response: LZ4 blocks with their CityHash128 checksums."""
    out = []
    for start in range(0, max(len(data), 1), COMPRESSED_BLOCK_BYTES):
        chunk = data[start:start + COMPRESSED_BLOCK_BYTES]
        if not chunk:
            break
        compressed = lz4.block.compress(chunk, store_size=False)
        block = struct.pack("<BII", LZ4_METHOD, 9 + len(compressed), len(chunk)) + compressed
        out.append(cityhash_checksum(block))
        out.append(block)
    return b"".join(out)


# --- HTTP Content-Encoding -------------------------------------------------------------

def decode_content_encoding(body, encoding):
    encoding = (encoding or "").strip().lower()
    if not encoding or encoding == "identity" or not body:
        return body
    try:
        if encoding in ("gzip", "x-gzip"):
            return gzip.decompress(body)
        if encoding == "deflate":
            return zlib.decompress(body)
        if encoding == "lz4":
            return lz4.frame.decompress(body)
    except Exception as error:
        raise FrontError(271, f"Cannot decompress the request body ({encoding}): {error}", "CANNOT_DECOMPRESS")
    raise FrontError(48, f"Content-Encoding {encoding!r} is not supported by this test front "
                         "(gzip, deflate and lz4 are)", "NOT_IMPLEMENTED")


def response_encoding(accept):
    """The Content-Encoding for a response, as ClickHouse picks it from Accept-Encoding
    (only those this front implements)."""
    accept = (accept or "").lower()
    for name in ("gzip", "deflate", "lz4"):
        if re.search(r"(^|[\s,])" + name + r"($|[\s,;])", accept):
            return name
    return None


def encode_content(body, encoding):
    if encoding == "gzip":
        return gzip.compress(body, compresslevel=3)
    if encoding == "deflate":
        return zlib.compress(body, 3)
    if encoding == "lz4":
        # As ClickHouse's Lz4DeflatingWriteBuffer: an LZ4 frame, 256 KiB linked blocks.
        return lz4.frame.compress(body, block_size=lz4.frame.BLOCKSIZE_MAX256KB, block_linked=True,
                                  content_checksum=False, store_size=False)
    return body


# --- SQL: INSERT ... FORMAT and the FORMAT of a result ----------------------------------

_WORD = re.compile(rb"[A-Za-z_][A-Za-z0-9_$]*")
_INSERT = re.compile(rb"(?:\s|--[^\n]*\n|/\*.*?\*/)*INSERT\s+INTO\s", re.IGNORECASE | re.DOTALL)


class InsertHeader:
    """`INSERT INTO <target> [(cols)] [SETTINGS ...] FORMAT <name>` and where its data starts."""

    def __init__(self, target, settings, fmt, data_start):
        self.target = target
        self.settings = settings
        self.fmt = fmt
        self.data_start = data_start


def _skip_quoted(buf, i):
    quote = buf[i]
    i += 1
    while i < len(buf):
        c = buf[i]
        if c == 0x5C:  # backslash escape
            i += 2
            continue
        if c == quote:
            if i + 1 < len(buf) and buf[i + 1] == quote:  # doubled quote
                i += 2
                continue
            return i + 1
        i += 1
    return i


def parse_insert(buf, scan_limit=1 << 20):
    """Finds the header of an `INSERT ... FORMAT <name>` statement at the start of `buf`
    (bytes) and where its data begins by ClickHouse's rule: after spaces and tabs, one
    optional CR LF or LF. None when `buf` is not such a statement (VALUES, SELECT, ...)."""
    match = _INSERT.match(buf)
    if not match:
        return None
    i = match.end()
    limit = min(len(buf), scan_limit)
    depth = 0
    words = 0
    settings_at = None
    while i < limit:
        c = buf[i]
        if c in (0x27, 0x22, 0x60):  # ' " `
            i = _skip_quoted(buf, i)
            words += 1
            continue
        if c == 0x2D and buf[i + 1:i + 2] == b"-":  # -- comment
            end = buf.find(b"\n", i)
            i = limit if end < 0 else end + 1
            continue
        if c == 0x2F and buf[i + 1:i + 2] == b"*":  # /* comment */
            end = buf.find(b"*/", i + 2)
            i = limit if end < 0 else end + 2
            continue
        if c == 0x28:
            depth += 1
        elif c == 0x29:
            depth -= 1
        elif depth == 0:
            word = _WORD.match(buf, i)
            if word:
                upper = word.group(0).upper()
                if upper == b"FORMAT" and words > 0:
                    j = word.end()
                    while j < limit and buf[j] in b" \t\r\n":
                        j += 1
                    name = _WORD.match(buf, j)
                    if not name:
                        return None
                    k = name.end()
                    while k < len(buf) and buf[k] in b" \t\f":
                        k += 1
                    if buf[k:k + 1] == b"\r":
                        k += 1
                    if buf[k:k + 1] == b"\n":
                        k += 1
                    head = buf[match.start():settings_at if settings_at is not None else word.start()]
                    settings = buf[settings_at:word.start()] if settings_at is not None else b""
                    return InsertHeader(head.decode("utf-8").strip(), settings.decode("utf-8").strip(),
                                        name.group(0).decode("ascii"), k)
                if upper in (b"VALUES", b"SELECT", b"WITH", b"FROM", b"WATCH") and words > 0:
                    return None
                if upper == b"SETTINGS" and words > 0 and settings_at is None:
                    settings_at = i
                words += 1
                i = word.end()
                continue
        i += 1
    return None


_TRAILING_FORMAT = re.compile(r"\bFORMAT\s+([A-Za-z_][A-Za-z0-9_]*)\s*;?\s*$", re.IGNORECASE)
_EMPTY = re.compile(r"^(\s|--[^\n]*(\n|$)|/\*.*?\*/)*$", re.DOTALL)


def output_format(sql, default):
    match = _TRAILING_FORMAT.search(sql)
    return match.group(1) if match else default


def quote_literal(value):
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_ident(name):
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


# --- the engine: one chdb connection behind one lock ------------------------------------

class Engine:
    def __init__(self, data_dir, tmp_dir):
        import chdb  # imported here: loading the engine takes a second or two

        self.conn = chdb.connect(data_dir)
        self.lock = threading.Lock()
        self.tmp_dir = tmp_dir
        self.version = self._query("SELECT version()", "TSVRaw").strip()
        codes = self._query("SELECT DISTINCT name, code FROM system.errors "
                            "SETTINGS system_events_show_zero_values = 1", "JSONEachRow")
        for row in map(json.loads, filter(None, codes.split("\n"))):
            if row["name"] in STATUS_BY_NAME:
                STATUS_BY_CODE[int(row["code"])] = STATUS_BY_NAME[row["name"]]
        # Settings changed in the session at start: a request's changes are undone back to these.
        self.baseline = self._changed_settings()
        self.closed = False

    def _query(self, sql, fmt="TabSeparated", params=None):
        return self.conn.query(sql, fmt, params=params or {}).bytes().decode("utf-8", "replace")

    def _changed_settings(self):
        text = self._query("SELECT name, value FROM system.settings WHERE changed", "JSONEachRow")
        return {row["name"]: row["value"] for row in map(json.loads, filter(None, text.split("\n")))}

    def execute(self, sql, fmt, database, settings, params, insert_data=None, insert_header=None):
        """Runs one statement; returns (output bytes, summary dict). Raises FrontError or the
        engine's exception. Settings apply to this statement only."""
        tmp_path = None
        if insert_header is not None:
            tmp_path = os.path.join(self.tmp_dir, f"insert-{uuid.uuid4().hex}.bin")
            with open(tmp_path, "wb") as f:
                f.write(insert_data)
            # FROM INFILE runs the engine's own insert path with the input format: the
            # column list, the table's DEFAULT expressions (RowBinaryWithDefaults, omitted
            # JSON fields), materialized views and their exceptions, deduplication tokens.
            # (Newlines between the parts: the target or the settings may end in a -- comment.)
            sql = (f"{insert_header.target}\nFROM INFILE {quote_literal(tmp_path)} COMPRESSION 'none'\n"
                   f"{insert_header.settings}\nFORMAT {insert_header.fmt}")
        applied = []
        try:
            with self.lock:
                if self.closed:
                    raise FrontError(210, "the test front is shutting down", "NETWORK_ERROR")
                try:
                    self.conn.query(f"USE {quote_ident(database)}", "TabSeparated")
                    if re.match(r"\s*SET\b.*\breadonly\b", sql, re.IGNORECASE | re.DOTALL):
                        raise FrontError(48, "SET readonly is not supported by this test front (its one engine "
                                             "session could not be changed back)", "NOT_IMPLEMENTED")
                    for name, value in settings:
                        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                            raise FrontError(115, f"Unknown setting '{name}'", "UNKNOWN_SETTING")
                        if name.lower() == "readonly":
                            raise FrontError(48, "the readonly setting is not supported by this test front (its "
                                                 "one engine session could not be changed back)", "NOT_IMPLEMENTED")
                        self.conn.query(f"SET {name} = {quote_literal(value)}", "TabSeparated")
                        applied.append(name)
                    started = time.monotonic_ns()
                    result = self.conn.query(sql, fmt, params=params)
                    elapsed = time.monotonic_ns() - started
                    body = result.bytes()
                    summary = {
                        "read_rows": str(result.rows_read()),
                        "read_bytes": str(result.bytes_read()),
                        "written_rows": str(result.rows_written()),
                        "written_bytes": str(result.bytes_written()),
                        "result_bytes": str(len(body)),
                        "elapsed_ns": str(elapsed),
                    }
                    return body, summary
                finally:
                    self._restore(applied, sql)
        finally:
            if tmp_path is not None:
                try:
                    os.unlink(tmp_path)
                except OSError:
                    pass

    def _restore(self, applied, sql):
        for name in applied:
            try:
                if name in self.baseline:
                    self.conn.query(f"SET {name} = {quote_literal(self.baseline[name])}", "TabSeparated")
                else:
                    self.conn.query(f"SET {name} = DEFAULT", "TabSeparated")
            except Exception as error:  # never leave a request's settings behind silently
                log(f"could not restore setting {name}: {error}")
        if re.match(r"\s*SET\b", sql, re.IGNORECASE):
            # A SET statement over HTTP (no session) changes nothing for later requests.
            try:
                for name, value in self._changed_settings().items():
                    if name not in self.baseline:
                        self.conn.query(f"SET {name} = DEFAULT", "TabSeparated")
                    elif self.baseline[name] != value:
                        self.conn.query(f"SET {name} = {quote_literal(self.baseline[name])}", "TabSeparated")
            except Exception as error:
                log(f"could not restore the session settings: {error}")

    def close(self):
        with self.lock:
            if not self.closed:
                self.closed = True
                self.conn.close()


# --- HTTP ---------------------------------------------------------------------------------

def log(message):
    sys.stderr.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} chdb-front: {message}\n")
    sys.stderr.flush()


class Response:
    def __init__(self, status, body=b"", headers=None, compressible=True):
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.compressible = compressible


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "chdb-front"
    timeout = 600

    # Set on the class by main().
    engine = None
    user = "default"
    password = ""

    def version_string(self):
        return self.server_version

    def log_request(self, code="-", size="-"):  # _send writes one line per request
        pass

    def log_message(self, format, *args):
        log(format % args)

    def do_GET(self):
        self._handle()

    def do_POST(self):
        self._handle()

    def do_HEAD(self):
        self._handle()

    def do_PUT(self):
        self._handle()

    # -- plumbing

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("connection closed inside a chunked body")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers, then the blank line
                        trailer = self.rfile.readline(65537)
                        if trailer in (b"\r\n", b"\n", b""):
                            break
                    return b"".join(chunks)
                data = self.rfile.read(size)
                if len(data) != size:
                    raise ConnectionError("connection closed inside a chunk")
                chunks.append(data)
                self.rfile.readline(65537)  # the CRLF after the chunk
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            data = self.rfile.read(length)
            if len(data) != length:
                raise ConnectionError("connection closed inside the body")
            return data
        return b""

    def _send(self, response, query_text, started):
        body = response.body
        headers = dict(response.headers)
        if body and response.compressible and self._http_compression:
            headers["Content-Encoding"] = self._http_compression
            body = encode_content(body, self._http_compression)
        try:
            self.send_response(response.status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        finally:
            elapsed = (time.monotonic() - started) * 1000
            query_text = " ".join((query_text or "").split())
            log(f"{self.command} {query_text[:200]!r} {response.status} {elapsed:.1f} ms")

    def _error(self, code, text, query_id=None):
        headers = {
            "Content-Type": "text/plain; charset=UTF-8",
            "X-ClickHouse-Exception-Code": str(code),
        }
        if query_id:
            headers["X-ClickHouse-Query-Id"] = query_id
        return Response(http_status(code), (text.rstrip("\n") + "\n").encode("utf-8"), headers)

    def _handle(self):
        started = time.monotonic()
        self._http_compression = None
        self._log_text = self.path
        query_text = None
        try:
            response, query_text = self._route()
        except FrontError as error:
            response = self._error(error.code, error.text)
        except (ConnectionError, ValueError) as error:
            self.close_connection = True
            response = Response(400, f"Code: 1001. DB::Exception: bad HTTP request: {error}\n".encode(),
                                {"X-ClickHouse-Exception-Code": "1001", "Content-Type": "text/plain; charset=UTF-8"})
        try:
            self._send(response, query_text or self._log_text, started)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _authenticate(self, params):
        """ClickHouse's authenticateUserByHTTP, for one user with a password."""
        header_user = self.headers.get("X-ClickHouse-User", "")
        header_key = self.headers.get("X-ClickHouse-Key", "")
        authorization = self.headers.get("Authorization")
        in_params = "user" in params or "password" in params
        if header_user or header_key:
            if not header_user:
                raise FrontError(516, "Got an empty user name from X-ClickHouse HTTP headers", "AUTHENTICATION_FAILED")
            if authorization is not None:
                raise FrontError(516, "Invalid authentication: it is not allowed to use X-ClickHouse HTTP headers "
                                      "and Authorization HTTP header simultaneously", "AUTHENTICATION_FAILED")
            if in_params:
                raise FrontError(516, "Invalid authentication: it is not allowed to use X-ClickHouse HTTP headers "
                                      "and authentication via parameters simultaneously", "AUTHENTICATION_FAILED")
            user, password = header_user, header_key
        elif authorization is not None:
            if in_params:
                raise FrontError(516, "Invalid authentication: it is not allowed to use Authorization HTTP header "
                                      "and authentication via parameters simultaneously", "AUTHENTICATION_FAILED")
            scheme, _, info = authorization.strip().partition(" ")
            if scheme.lower() != "basic":
                raise FrontError(516, f"Invalid authentication: '{scheme}' HTTP Authorization scheme is not "
                                      "supported", "AUTHENTICATION_FAILED")
            try:
                user, _, password = base64.b64decode(info.strip(), validate=True).decode("utf-8").partition(":")
            except Exception:
                raise FrontError(516, "Invalid authentication: malformed Basic credentials", "AUTHENTICATION_FAILED")
            if not user:
                raise FrontError(516, "Got an empty user name from Authorization HTTP header", "AUTHENTICATION_FAILED")
        else:
            user = params.get("user", "default")
            password = params.get("password", "")
            if not user:
                raise FrontError(516, "Got an empty user name from authentication via parameters",
                                 "AUTHENTICATION_FAILED")
        ok_user = hmac.compare_digest(user.encode(), self.user.encode())
        ok_password = hmac.compare_digest(password.encode(), self.password.encode())
        if not (ok_user and ok_password):
            raise FrontError(516, AUTH_FAILED.format(user=user), "AUTHENTICATION_FAILED")

    def _route(self):
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        body = self._read_body() if self.command in ("POST", "PUT") or self.headers.get("Content-Length") \
            or self.headers.get("Transfer-Encoding") else b""
        path = url.path.rstrip("/") or "/"

        if path in ("/ping", "/replicas_status") and self.command in ("GET", "HEAD"):
            return Response(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"}, False), path
        if path != "/":
            return Response(404, f"There is no handle {url.path}\n\nUse / or /ping for health checks.\n"
                                 "This is chdb-front, a test front over chdb (see its README).\n".encode(),
                            {"Content-Type": "text/plain; charset=UTF-8"}, False), url.path
        if self.command in ("GET", "HEAD") and "query" not in params and not body:
            return Response(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"}, False), "/"

        # multipart/form-data: the crate sends the query and param_* this way.
        content_type = self.headers.get("Content-Type", "")
        if content_type.lower().startswith("multipart/form-data"):
            params.update(self._multipart(body, content_type))
            body = b""
        self._log_text = params.get("query") or body[:200].decode("utf-8", "replace")

        self._authenticate(params)

        enable = params.get("enable_http_compression", "1").strip().lower()
        if enable not in ("0", "false"):
            self._http_compression = response_encoding(self.headers.get("Accept-Encoding"))

        query_id = params.get("query_id") or str(uuid.uuid4())
        try:
            body = decode_content_encoding(body, self.headers.get("Content-Encoding"))
            if params.get("decompress", "0") not in ("0", "") and body:
                body = decompress_blocks(body)
        except FrontError as error:
            return self._error(error.code, error.text, query_id), params.get("query", "")

        query_param = params.get("query")
        full = (query_param.encode("utf-8") + b"\n" + body) if query_param is not None else body
        header = parse_insert(full)
        if header is not None:
            sql_text = full[:header.data_start].decode("utf-8", "replace")
            insert_data = full[header.data_start:]
        else:
            try:
                sql_text = full.decode("utf-8")
            except UnicodeDecodeError:
                return self._error(62, "Code: 62. DB::Exception: the query is not valid UTF-8 (this test front "
                                       "takes binary data only after INSERT ... FORMAT <name>). (SYNTAX_ERROR)",
                                   query_id), ""
            insert_data = None

        if _EMPTY.match(sql_text):
            return self._error(62, "Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)", query_id), ""

        settings = [(k, v) for k, v in params.items()
                    if k not in RESERVED_PARAMS and not k.startswith("param_") and k]
        query_params = {k[len("param_"):]: v for k, v in params.items() if k.startswith("param_")}
        default_format = params.get("default_format") or "TabSeparated"
        fmt = output_format(sql_text, default_format) if header is None else default_format
        database = params.get("database") or "default"

        compress = params.get("compress", "0") not in ("0", "")
        if compress and CityHash128 is None:
            return self._error(36, "Code: 36. DB::Exception: compress=1 is not supported by this test front "
                                   "(install clickhouse-cityhash). (BAD_ARGUMENTS)", query_id), sql_text

        try:
            output, summary = self.engine.execute(sql_text, fmt, database, settings, query_params,
                                                  insert_data, header)
        except FrontError as error:
            return self._error(error.code, error.text, query_id), sql_text
        except Exception as error:  # the engine's exception: its own code and message
            code, text = engine_error(error)
            return self._error(code, text, query_id), sql_text

        headers = {
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Summary": json.dumps(summary, separators=(",", ":")),
            "X-ClickHouse-Server-Display-Name": "chdb-front",
            "X-ClickHouse-Timezone": os.environ.get("TZ", "UTC"),
        }
        if header is None:
            headers["X-ClickHouse-Format"] = fmt
            headers["Content-Type"] = CONTENT_TYPES.get(fmt.lower(), "application/octet-stream"
                                                        if "binary" in fmt.lower() or fmt.lower() in
                                                        ("native", "parquet", "arrow", "arrowstream", "orc",
                                                         "avro", "msgpack", "protobuf")
                                                        else "text/plain; charset=UTF-8")
        else:
            headers["Content-Type"] = "text/plain; charset=UTF-8"
        if compress and output:
            output = compress_blocks(output)
        return Response(200, output, headers), sql_text

    def _multipart(self, body, content_type):
        match = re.search(r'boundary="?([^";]+)"?', content_type)
        if not match:
            raise FrontError(27, "multipart/form-data without a boundary", "CANNOT_PARSE_INPUT_ASSERTION_FAILED")
        delimiter = b"--" + match.group(1).encode()
        fields = {}
        for part in body.split(delimiter)[1:]:
            if part.startswith(b"--"):
                break
            part = part[2:] if part.startswith(b"\r\n") else part
            head, _, value = part.partition(b"\r\n\r\n")
            if value.endswith(b"\r\n"):
                value = value[:-2]
            name = re.search(rb'name="([^"]*)"', head)
            if not name:
                continue
            if re.search(rb"filename=", head):
                raise FrontError(48, "external data (multipart files) is not supported by this test front",
                                 "NOT_IMPLEMENTED")
            fields[name.group(1).decode()] = value.decode("utf-8")
        return fields


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="chdb-front: TEST SCAFFOLDING, an HTTP front over chdb serving the part of "
                    "ClickHouse's HTTP interface Sluice uses. Not a server for production.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18124)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--user", default="default")
    parser.add_argument("--password", default="")
    parser.add_argument("--timezone", default="UTC", help="the engine's time zone (default UTC)")
    args = parser.parse_args(argv)

    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.host.startswith("127."):
        parser.error("chdb-front is test scaffolding: it listens on loopback addresses only")

    os.environ["TZ"] = args.timezone
    time.tzset()
    data_dir = os.path.abspath(args.data_dir)
    os.makedirs(data_dir, exist_ok=True)
    tmp_dir = os.path.join(data_dir, ".chdb-front-tmp")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    os.makedirs(tmp_dir)

    engine = Engine(data_dir, tmp_dir)
    Handler.engine = engine
    Handler.user = args.user
    Handler.password = args.password
    server = Server((args.host, args.port), Handler)

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    thread = threading.Thread(target=server.serve_forever, name="serve", daemon=True)
    thread.start()
    log(f"listening on http://{args.host}:{server.server_address[1]} (chdb engine {engine.version}, "
        f"data {data_dir}, user {args.user}, "
        f"checksums {'CityHash128' if CityHash128 is not None else 'unavailable: compress=1 refused'}) "
        "- test scaffolding, not a ClickHouse server")
    while not stop.wait(1):
        pass
    log("stopping")
    server.shutdown()
    server.server_close()
    engine.close()  # waits for a statement in flight
    shutil.rmtree(tmp_dir, ignore_errors=True)
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
