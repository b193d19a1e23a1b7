"""Tests of chdb-front (test scaffolding: an HTTP front over the chdb engine).

    python3 -m unittest tests/chdb-front/test_chdb_front.py -v

Starts the front on a free loopback port with a temporary data directory and
speaks HTTP to it the way the `clickhouse` crate does: SQL in the body or in
`query`, settings as URL parameters, RowBinary bodies (chunked, LZ4 blocks
with `decompress=1`), `Accept-Encoding: lz4`, `compress=1`. Needs chdb, lz4 and
clickhouse-cityhash (`scripts/stack.sh install chdb`).
"""

import base64
import http.client
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from urllib.parse import urlencode

import lz4.block
import lz4.frame
from clickhouse_cityhash.cityhash import CityHash128

HERE = os.path.dirname(os.path.abspath(__file__))
FRONT = os.path.join(HERE, "chdb_front.py")
PASSWORD = "s3cret"


# --- RowBinary, written here by hand ---------------------------------------------------------

def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def u8(v):
    return struct.pack("<B", v)


def u32(v):
    return struct.pack("<I", v)


def u64(v):
    return struct.pack("<Q", v)


def i64(v):
    return struct.pack("<q", v)


def string(v):
    data = v.encode("utf-8") if isinstance(v, str) else v
    return varint(len(data)) + data


def nullable_string(v):
    return b"\x01" if v is None else b"\x00" + string(v)


def datetime64_3(ms):
    return i64(ms)


def array_string(values):
    return varint(len(values)) + b"".join(string(v) for v in values)


# --- ClickHouse compressed blocks, written here by hand --------------------------------------

def checksum(block):
    value = CityHash128(block)
    return (value >> 64).to_bytes(8, "little") + (value & (2 ** 64 - 1)).to_bytes(8, "little")


def lz4_blocks(data, piece=1 << 20):
    out = bytearray()
    for start in range(0, len(data), piece):
        chunk = data[start:start + piece]
        compressed = lz4.block.compress(chunk, store_size=False)
        block = struct.pack("<BII", 0x82, 9 + len(compressed), len(chunk)) + compressed
        out += checksum(block) + block
    return bytes(out)


def read_blocks(body):
    """Decodes compressed blocks, checking each checksum; returns the data."""
    out = bytearray()
    pos = 0
    while pos < len(body):
        expected = body[pos:pos + 16]
        method, size, raw_size = struct.unpack_from("<BII", body, pos + 16)
        block = body[pos + 16:pos + 16 + size]
        if checksum(block) != expected:
            raise AssertionError(f"checksum mismatch at offset {pos}")
        if method != 0x82:
            raise AssertionError(f"method {method:#x}, expected LZ4 (0x82)")
        out += lz4.block.decompress(block[9:], uncompressed_size=raw_size)
        pos += 16 + size
    return bytes(out)


# CityHash128 v1.0.2 test vectors (the reference test's data generator and its
# expected (first, second) for lengths 0, 1, 16, 100, 200 and 298; the same as
# cityhash-rs's test_102.rs, which the `clickhouse` crate's checksum uses).
CITYHASH_VECTORS = {
    0: (0x3df09dfc64c09a2b, 0x3cb540c392e51e29),
    1: (0x1290f0e8a5caa74d, 0xca4c6bf7583f5cda),
    16: (0x8505c996b70ee9fc, 0xb92bba6b5d778eb7),
    100: (0x2a55645640911e27, 0x4fac2eefbd36e26f),
    200: (0xac61387d34b8eba3, 0xf658eceff68e4f98),
    298: (0x19fa48781ce2b326, 0xf34fc200e9ca457c),
}


def cityhash_test_data(size):
    k0 = 0xc3a5c85c97cb3127
    mask = 2 ** 64 - 1
    out = bytearray(size)
    a, b = 9, 777
    for i in range(size):
        a = (((a ^ (a >> 41)) * k0) + b) & mask
        b = (((b ^ (b >> 41)) * k0) + i) & mask
        out[i] = (b >> 37) & 0xFF
    return bytes(out)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return f"Reply({self.status}, {self.body[:300]!r})"


class ChdbFrontTest(unittest.TestCase):
    proc = None

    @classmethod
    def setUpClass(cls):
        cls.data_dir = tempfile.mkdtemp(prefix="chdb-front-test-")
        cls.port = free_port()
        cls.log_path = os.path.join(cls.data_dir, "front.log")
        cls.log = open(cls.log_path, "wb")
        cls.proc = subprocess.Popen(
            [sys.executable, FRONT, "--host", "127.0.0.1", "--port", str(cls.port),
             "--data-dir", os.path.join(cls.data_dir, "data"), "--user", "default", "--password", PASSWORD],
            stdout=cls.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while True:
            try:
                if cls.raw("GET", "/ping").body == b"Ok.\n":
                    break
            except OSError:
                pass
            if cls.proc.poll() is not None or time.monotonic() > deadline:
                cls.log.close()
                raise RuntimeError("chdb-front did not start:\n" + open(cls.log_path).read())
            time.sleep(0.2)

    @classmethod
    def tearDownClass(cls):
        if cls.proc is not None and cls.proc.poll() is None:
            cls.proc.send_signal(signal.SIGTERM)
            try:
                cls.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                cls.proc.kill()
                cls.proc.wait()
        cls.log.close()
        shutil.rmtree(cls.data_dir, ignore_errors=True)

    # -- HTTP helpers

    @classmethod
    def raw(cls, method, path, body=None, headers=None, chunks=None):
        conn = http.client.HTTPConnection("127.0.0.1", cls.port, timeout=120)
        try:
            headers = dict(headers or {})
            if chunks is not None:
                headers["Transfer-Encoding"] = "chunked"
                conn.putrequest(method, path)
                for name, value in headers.items():
                    conn.putheader(name, value)
                conn.endheaders()
                for chunk in chunks:
                    conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                conn.send(b"0\r\n\r\n")
            else:
                conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return Reply(response.status, response.headers, response.read())
        finally:
            conn.close()

    def q(self, sql=None, body=None, params=None, headers=None, auth=True, chunks=None, method="POST"):
        """SQL in the body, or, when a body or chunks are given, in the `query` parameter."""
        params = dict(params or {})
        if body is None and chunks is None:
            body = sql.encode("utf-8") if sql is not None else b""
        elif sql is not None:
            params["query"] = sql
        headers = dict(headers or {})
        if auth:
            headers.setdefault("X-ClickHouse-User", "default")
            headers.setdefault("X-ClickHouse-Key", PASSWORD)
        path = "/" + ("?" + urlencode(params) if params else "")
        return self.raw(method, path, body=body, headers=headers, chunks=chunks)

    def ok(self, sql=None, **kwargs):
        reply = self.q(sql, **kwargs)
        self.assertEqual(reply.status, 200, reply)
        return reply

    def insert(self, statement, data, **kwargs):
        return self.q(statement, body=data, **kwargs)

    def rows(self, sql):
        text = self.ok(sql + " FORMAT JSONEachRow").text
        return [json.loads(line) for line in text.splitlines() if line]

    # -- the tests

    def test_ping(self):
        for path in ("/ping", "/"):
            reply = self.raw("GET", path)
            self.assertEqual((reply.status, reply.body), (200, b"Ok.\n"))

    def test_ddl_and_select_jsoneachrow(self):
        reply = self.ok("CREATE DATABASE IF NOT EXISTS ddl_db")
        self.assertEqual(reply.body, b"")
        reply = self.ok("CREATE TABLE ddl_db.t (id UInt64, name String) ENGINE = MergeTree ORDER BY id")
        self.assertEqual(reply.body, b"")
        self.ok("INSERT INTO ddl_db.t VALUES (1, 'one'), (2, 'two')")
        reply = self.ok("SELECT id, name FROM ddl_db.t ORDER BY id FORMAT JSONEachRow")
        self.assertEqual(reply.headers["X-ClickHouse-Format"], "JSONEachRow")
        self.assertEqual([json.loads(line) for line in reply.text.splitlines()],
                         [{"id": 1, "name": "one"}, {"id": 2, "name": "two"}])
        # Without FORMAT: TabSeparated, or default_format.
        self.assertEqual(self.ok("SELECT count() FROM ddl_db.t").body, b"2\n")
        reply = self.ok("SELECT count() AS c FROM ddl_db.t", params={"default_format": "JSONEachRow"})
        self.assertEqual(reply.body, b'{"c":2}\n')
        # GET with the query in the URL.
        reply = self.q(None, body=b"", method="GET", params={"query": "SELECT 1 + 1"})
        self.assertEqual((reply.status, reply.body), (200, b"2\n"))
        self.ok("DROP TABLE ddl_db.t")
        self.assertEqual(self.q("SELECT * FROM ddl_db.t").status, 404)

    def test_database_parameter(self):
        self.ok("CREATE DATABASE IF NOT EXISTS db_param")
        self.ok("CREATE TABLE db_param.only_here (id UInt64) ENGINE = MergeTree ORDER BY id")
        reply = self.insert("INSERT INTO only_here (id) FORMAT RowBinary", u64(7) + u64(8),
                            params={"database": "db_param"})
        self.assertEqual(reply.status, 200, reply)
        reply = self.ok("SELECT sum(id) FROM only_here", params={"database": "db_param"})
        self.assertEqual(reply.body, b"15\n")
        # The next request without it is back in `default`.
        reply = self.q("SELECT sum(id) FROM only_here")
        self.assertEqual(reply.status, 404, reply)
        self.assertEqual(reply.headers["X-ClickHouse-Exception-Code"], "60")
        self.assertEqual(self.ok("SELECT currentDatabase()").body, b"default\n")
        reply = self.q("SELECT 1", params={"database": "no_such_db"})
        self.assertEqual((reply.status, reply.headers["X-ClickHouse-Exception-Code"]), (404, "81"), reply)

    def test_rowbinary_round_trip_of_types(self):
        self.ok("CREATE TABLE types_t (id UInt64, s String, n Nullable(String), t DateTime64(3, 'UTC'), "
                "a Array(String)) ENGINE = MergeTree ORDER BY id")
        rows = [
            (1, "plain", None, 1700000000123, []),
            (2, "ünïcødé ✓", "", 0, ["x"]),
            (3, "tab\tnew\nline\x00nul", "set", -1000, ["a", "", "ccc" * 100]),
            (2 ** 64 - 1, "x" * 300, "n" * 200, 10413791999999, ["é"] * 3),
        ]
        data = b"".join(u64(i) + string(s) + nullable_string(n) + datetime64_3(t) + array_string(a)
                        for i, s, n, t, a in rows)
        reply = self.insert("INSERT INTO default.types_t (id, s, n, t, a) FORMAT RowBinary", data)
        self.assertEqual(reply.status, 200, reply)
        self.assertEqual(reply.body, b"")
        # The bytes come back as they were sent.
        reply = self.ok("SELECT id, s, n, t, a FROM types_t ORDER BY id FORMAT RowBinary")
        self.assertEqual(reply.headers["X-ClickHouse-Format"], "RowBinary")
        self.assertEqual(reply.body, data)
        got = self.rows("SELECT id, s, n, toUnixTimestamp64Milli(t) AS ms, a FROM types_t ORDER BY id")
        self.assertEqual([(r["id"], r["s"], r["n"], int(r["ms"]), r["a"]) for r in got],
                         [(i, s, n, t, a) for i, s, n, t, a in rows])

    def test_insert_deduplication_token(self):
        self.ok("CREATE TABLE dedup_t (id UInt64, s String) ENGINE = MergeTree ORDER BY id "
                "SETTINGS non_replicated_deduplication_window = 1000")
        data = b"".join(u64(i) + string(f"row {i}") for i in range(10))
        statement = "INSERT INTO default.dedup_t (id, s) FORMAT RowBinary"
        for _ in range(3):
            reply = self.insert(statement, data, params={"insert_deduplication_token": "abc",
                                                         "wait_end_of_query": "1"})
            self.assertEqual(reply.status, 200, reply)
        self.assertEqual(self.ok("SELECT count() FROM dedup_t").body, b"10\n")
        reply = self.insert(statement, data, params={"insert_deduplication_token": "def"})
        self.assertEqual(reply.status, 200, reply)
        self.assertEqual(self.ok("SELECT count() FROM dedup_t").body, b"20\n")
        # The token applied to those inserts only.
        self.assertEqual(self.ok("SELECT getSetting('insert_deduplication_token')").body, b"\n")

    def test_materialized_view_exception_fails_the_insert(self):
        self.ok("CREATE TABLE mv_src (id UInt64) ENGINE = MergeTree ORDER BY id")
        self.ok("CREATE MATERIALIZED VIEW mv ENGINE = MergeTree ORDER BY id AS "
                "SELECT id, throwIf(id = 5) AS x FROM mv_src")
        statement = "INSERT INTO default.mv_src (id) FORMAT RowBinary"
        reply = self.insert(statement, b"".join(u64(i) for i in (1, 2, 3)))
        self.assertEqual(reply.status, 200, reply)
        reply = self.insert(statement, b"".join(u64(i) for i in (4, 5, 6)),
                            params={"insert_deduplication_token": "mv-1"})
        self.assertNotEqual(reply.status, 200, reply)
        self.assertEqual(reply.status, 500, reply)
        self.assertEqual(reply.headers["X-ClickHouse-Exception-Code"], "395")
        self.assertTrue(reply.text.startswith("Code: 395. DB::Exception: "), reply)
        self.assertIn("throwIf", reply.text)
        self.assertIn("(FUNCTION_THROW_IF_VALUE_IS_NON_ZERO)", reply.text)
        # The same failing insert through the LZ4 path fails the same way.
        reply = self.insert(statement, lz4_blocks(u64(5)), params={"decompress": "1"})
        self.assertEqual((reply.status, reply.headers["X-ClickHouse-Exception-Code"]), (500, "395"), reply)

    def test_rowbinary_with_defaults_evaluates_default_expressions(self):
        self.ok("CREATE TABLE defaults_t (a UInt64, b String DEFAULT concat('x', toString(a)), "
                "c UInt32 DEFAULT a * 2, d String) ENGINE = MergeTree ORDER BY a")
        data = (
            b"\x00" + u64(1) + b"\x01" + b"\x01"                          # b, c: defaults
            + b"\x00" + u64(2) + b"\x00" + string("given") + b"\x00" + u32(7)
            + b"\x00" + u64(3) + b"\x01" + b"\x00" + u32(9)
        )
        reply = self.insert("INSERT INTO default.defaults_t (a, b, c) FORMAT RowBinaryWithDefaults", data)
        self.assertEqual(reply.status, 200, reply)
        self.assertEqual(self.rows("SELECT a, b, c, d FROM defaults_t ORDER BY a"), [
            {"a": 1, "b": "x1", "c": 2, "d": ""},
            {"a": 2, "b": "given", "c": 7, "d": ""},
            {"a": 3, "b": "x3", "c": 9, "d": ""},
        ])

    def test_jsoneachrow_insert_with_defaults(self):
        self.ok("CREATE TABLE json_t (a UInt64, b String DEFAULT concat('x', toString(a))) "
                "ENGINE = MergeTree ORDER BY a")
        reply = self.insert("INSERT INTO json_t FORMAT JSONEachRow", b'{"a":1}\n{"a":2,"b":"given"}\n')
        self.assertEqual(reply.status, 200, reply)
        self.assertEqual(self.rows("SELECT a, b FROM json_t ORDER BY a"),
                         [{"a": 1, "b": "x1"}, {"a": 2, "b": "given"}])

    def test_json_column_as_string_setting(self):
        self.ok("CREATE TABLE json_col_t (id UInt64, j JSON) ENGINE = MergeTree ORDER BY id")
        data = u64(1) + string('{"k":"v","n":2}')
        statement = "INSERT INTO json_col_t (id, j) FORMAT RowBinary"
        reply = self.insert(statement, data)
        self.assertNotEqual(reply.status, 200, reply)  # JSON's binary encoding expected without it
        reply = self.insert(statement, data, params={"input_format_binary_read_json_as_string": "1"})
        self.assertEqual(reply.status, 200, reply)
        self.assertEqual(self.rows("SELECT id, j FROM json_col_t"), [{"id": 1, "j": {"k": "v", "n": 2}}])

    def test_settings_apply_to_one_query(self):
        reply = self.ok("SELECT getSetting('max_threads'), getSetting('max_execution_time')",
                        params={"max_threads": "1", "max_execution_time": "17", "wait_end_of_query": "1"})
        self.assertEqual(reply.body, b"1\t17\n")
        reply = self.ok("SELECT getSetting('max_execution_time')")
        self.assertEqual(reply.body, b"0\n")
        reply = self.q("SELECT 1", params={"no_such_setting": "1"})
        self.assertEqual((reply.status, reply.headers["X-ClickHouse-Exception-Code"]), (404, "115"), reply)
        # A SET statement sent over HTTP (no session) changes nothing afterwards.
        self.ok("SET max_execution_time = 33")
        self.assertEqual(self.ok("SELECT getSetting('max_execution_time')").body, b"0\n")
        # readonly could not be undone in the engine's one session: refused.
        self.assertEqual(self.q("SELECT 1", params={"readonly": "1"}).status, 501)
        self.assertEqual(self.q("SET readonly = 1").status, 501)
        self.ok("CREATE TABLE IF NOT EXISTS still_writable (id UInt64) ENGINE = Memory")

    def test_query_parameters(self):
        reply = self.ok("SELECT {x:UInt32} + 1, {s:String}", params={"param_x": "41", "param_s": "a b"})
        self.assertEqual(reply.body, b"42\ta b\n")
        # The crate sends param_* in a multipart/form-data body next to the query.
        boundary = "----front-test-boundary"
        fields = {"query": "SELECT {x:UInt32} * 2", "param_x": "21"}
        body = "".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                       for k, v in fields.items()) + f"--{boundary}--\r\n"
        reply = self.q(None, body=body.encode(), headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        self.assertEqual((reply.status, reply.body), (200, b"42\n"), reply)

    def test_chunked_body(self):
        self.ok("CREATE TABLE chunked_t (id UInt64, s String) ENGINE = MergeTree ORDER BY id")
        data = b"".join(u64(i) + string("v" * (i % 50)) for i in range(5000))
        pieces, pos, size = [], 0, 1
        while pos < len(data):  # uneven chunk sizes, from 1 byte up
            pieces.append(data[pos:pos + size])
            pos += size
            size = size * 3 % 9973 + 1
        self.assertEqual(b"".join(pieces), data)
        reply = self.insert("INSERT INTO chunked_t (id, s) FORMAT RowBinary", b"", chunks=pieces)
        self.assertEqual(reply.status, 200, reply)
        self.assertEqual(self.ok("SELECT id, s FROM chunked_t ORDER BY id FORMAT RowBinary").body, data)

    def test_lz4_compressed_request_body(self):
        self.ok("CREATE TABLE lz4_t (id UInt64, s String) ENGINE = MergeTree ORDER BY id")
        data = b"".join(u64(i) + string(f"payload {i}" * 3) for i in range(40000))
        body = lz4_blocks(data, piece=300000)  # several blocks
        reply = self.insert("INSERT INTO lz4_t (id, s) FORMAT RowBinary", b"",
                            params={"decompress": "1", "wait_end_of_query": "1"},
                            chunks=[body[i:i + 65536] for i in range(0, len(body), 65536)])
        self.assertEqual(reply.status, 200, reply)
        self.assertEqual(self.ok("SELECT id, s FROM lz4_t ORDER BY id FORMAT RowBinary").body, data)
        # A corrupted block is refused by its checksum.
        bad = bytearray(lz4_blocks(u64(1) + string("x")))
        bad[-1] ^= 0xFF
        reply = self.insert("INSERT INTO lz4_t (id, s) FORMAT RowBinary", bytes(bad), params={"decompress": "1"})
        self.assertEqual(reply.headers["X-ClickHouse-Exception-Code"], "40", reply)
        self.assertNotEqual(reply.status, 200)

    def test_checksum_matches_cityhash_v102_vectors(self):
        data = cityhash_test_data(300 * 300)
        for length, (first, second) in CITYHASH_VECTORS.items():
            value = CityHash128(data[length * length:length * length + length])
            self.assertEqual((value >> 64, value & (2 ** 64 - 1)), (first, second), length)

    def test_compressed_response(self):
        sql = "SELECT number, toString(number) FROM system.numbers LIMIT 300000 FORMAT RowBinary"
        plain = self.ok(sql).body
        reply = self.ok(sql, params={"compress": "1"})
        self.assertEqual(reply.headers.get("Content-Encoding"), None)
        self.assertGreater(len(plain), 1 << 20)  # more than one block
        self.assertEqual(read_blocks(reply.body), plain)

    def test_accept_encoding_lz4(self):
        # What the crate sends with every query: Accept-Encoding: lz4 (an LZ4 frame back).
        sql = "SELECT number FROM system.numbers LIMIT 100000 FORMAT JSONEachRow"
        plain = self.ok(sql).body
        reply = self.ok(sql, headers={"Accept-Encoding": "lz4"})
        self.assertEqual(reply.headers["Content-Encoding"], "lz4")
        self.assertEqual(lz4.frame.decompress(reply.body), plain)
        reply = self.ok(sql, headers={"Accept-Encoding": "lz4"}, params={"enable_http_compression": "0"})
        self.assertIsNone(reply.headers.get("Content-Encoding"))
        self.assertEqual(reply.body, plain)
        # Errors are compressed too, as ClickHouse does.
        reply = self.q("SELECT * FROM no_such_table", headers={"Accept-Encoding": "lz4"})
        self.assertEqual(reply.status, 404)
        self.assertIn(b"Code: 60. DB::Exception:", lz4.frame.decompress(reply.body))

    def test_authentication(self):
        expected = (b"Code: 516. DB::Exception: default: Authentication failed: password is incorrect, "
                    b"or there is no user with such name. (AUTHENTICATION_FAILED)\n")
        basic = "Basic " + base64.b64encode(b"default:wrong").decode()
        for headers, params in [
            ({"Authorization": basic}, {}),
            ({"X-ClickHouse-User": "default", "X-ClickHouse-Key": "wrong"}, {}),
            ({}, {"user": "default", "password": "wrong"}),
            ({}, {}),  # no credentials: `default` with an empty password
        ]:
            reply = self.q("SELECT 1", headers=headers, params=params, auth=False)
            self.assertEqual((reply.status, reply.body), (403, expected), (headers, params))
            self.assertEqual(reply.headers["X-ClickHouse-Exception-Code"], "516")
        reply = self.q("SELECT 1", headers={"X-ClickHouse-User": "nobody", "X-ClickHouse-Key": PASSWORD}, auth=False)
        self.assertEqual(reply.status, 403)
        self.assertTrue(reply.text.startswith("Code: 516. DB::Exception: nobody: Authentication failed"), reply)
        good = "Basic " + base64.b64encode(f"default:{PASSWORD}".encode()).decode()
        for headers, params in [({"Authorization": good}, {}), ({}, {"user": "default", "password": PASSWORD})]:
            reply = self.q("SELECT 1", headers=headers, params=params, auth=False)
            self.assertEqual((reply.status, reply.body), (200, b"1\n"))

    def test_errors_are_never_200(self):
        cases = [
            ("SELEC 1", 400, "62"),
            ("SELECT * FROM default.absent_table", 404, "60"),
            ("SELECT throwIf(1)", 500, "395"),
            ("", 400, "62"),
        ]
        for sql, status, code in cases:
            reply = self.q(sql)
            self.assertEqual((reply.status, reply.headers["X-ClickHouse-Exception-Code"]), (status, code), sql)
            self.assertTrue(reply.text.startswith(f"Code: {code}. DB::Exception: "), reply)
        self.ok("CREATE TABLE err_t (id UInt64, s String) ENGINE = MergeTree ORDER BY id")
        reply = self.insert("INSERT INTO err_t (id, s) FORMAT RowBinary", u64(1) + b"\x05ab")  # truncated
        self.assertEqual(reply.headers["X-ClickHouse-Exception-Code"], "33", reply)
        self.assertEqual(reply.status, 500)
        reply = self.insert("INSERT INTO err_t (id, nope) FORMAT RowBinary", u64(1) + string("x"))
        self.assertNotEqual(reply.status, 200, reply)
        self.assertEqual(self.ok("SELECT count() FROM err_t").body, b"0\n")

    def test_body_is_the_query_with_inline_data(self):
        self.ok("CREATE TABLE inline_t (id UInt64, s String) ENGINE = MergeTree ORDER BY id")
        data = u64(10) + string(" leading space") + u64(32) + string("\n")
        reply = self.q(None, body=b"INSERT INTO inline_t (id, s) FORMAT RowBinary\n" + data)
        self.assertEqual(reply.status, 200, reply)
        self.assertEqual(self.ok("SELECT id, s FROM inline_t ORDER BY id FORMAT RowBinary").body, data)
        # With settings in the statement.
        reply = self.q(None, body=b"INSERT INTO inline_t (id, s) SETTINGS max_threads = 1 FORMAT TabSeparated\n"
                                  b"11\televen\n")
        self.assertEqual(reply.status, 200, reply)
        self.assertEqual(self.ok("SELECT count() FROM inline_t").body, b"3\n")

    def test_crate_statement_shapes(self):
        # The crate's typed insert writes `INSERT INTO {table}({fields}) FORMAT RowBinary`.
        self.ok("CREATE TABLE shape_t (a UInt64, `b c` String) ENGINE = MergeTree ORDER BY a")
        reply = self.insert("INSERT INTO `default`.`shape_t`(`a`,`b c`) FORMAT RowBinary", u64(1) + string("x"))
        self.assertEqual(reply.status, 200, reply)
        # An insert without rows inserts nothing and succeeds.
        reply = self.insert("INSERT INTO shape_t (a, `b c`) FORMAT RowBinary", b"")
        self.assertEqual(reply.status, 200, reply)
        # Comments and a lower-case statement.
        reply = self.insert("/* batch 7 */ insert into shape_t -- the table\n (a, `b c`) -- columns\n"
                            "settings max_threads = 1 -- settings\n format RowBinary",
                            u64(2) + string(b"\xff\xfe not UTF-8"))
        self.assertEqual(reply.status, 200, reply)
        self.assertEqual(self.ok("SELECT a, `b c` FROM shape_t ORDER BY a FORMAT RowBinary").body,
                         u64(1) + string("x") + u64(2) + string(b"\xff\xfe not UTF-8"))

    def test_twenty_megabyte_insert(self):
        self.ok("CREATE TABLE big_t (id UInt64, s String, t DateTime64(3)) ENGINE = MergeTree ORDER BY id")
        row_payload = "y" * 80
        data = b"".join(u64(i) + string(row_payload) + i64(1700000000000 + i) for i in range(215000))
        self.assertGreater(len(data), 20 * 1000 * 1000)
        # As Sluice sends it: LZ4 blocks of 1 MiB, streamed with chunked transfer encoding.
        body = lz4_blocks(data)
        started = time.monotonic()
        reply = self.insert("INSERT INTO default.big_t (id, s, t) FORMAT RowBinary", b"",
                            params={"decompress": "1", "insert_deduplication_token": "big",
                                    "wait_end_of_query": "1"},
                            chunks=[body[i:i + (1 << 20)] for i in range(0, len(body), 1 << 20)])
        elapsed = time.monotonic() - started
        self.assertEqual(reply.status, 200, reply)
        self.assertLess(elapsed, 5.0)
        sys.stderr.write(f"\n  {len(data) / 1e6:.1f} MB insert (LZ4, chunked) took {elapsed:.2f} s\n")
        # And uncompressed, in one piece.
        started = time.monotonic()
        reply = self.insert("INSERT INTO default.big_t (id, s, t) FORMAT RowBinary", data)
        elapsed = time.monotonic() - started
        self.assertEqual(reply.status, 200, reply)
        self.assertLess(elapsed, 5.0)
        sys.stderr.write(f"  {len(data) / 1e6:.1f} MB insert (plain) took {elapsed:.2f} s\n")
        self.assertEqual(self.ok("SELECT count(), uniqExact(id) FROM big_t").body, b"430000\t215000\n")

    def test_parallel_requests(self):
        self.ok("CREATE TABLE par_t (worker UInt64, id UInt64) ENGINE = MergeTree ORDER BY (worker, id)")
        failures = []

        def work(worker):
            try:
                for batch in range(5):
                    data = b"".join(u64(worker) + u64(batch * 100 + i) for i in range(100))
                    reply = self.insert("INSERT INTO par_t (worker, id) FORMAT RowBinary", data,
                                        params={"database": "default", "max_threads": str(1 + worker % 3)})
                    if reply.status != 200:
                        failures.append(reply)
                    reply = self.q("SELECT count() FROM par_t WHERE worker = {w:UInt64}",
                                   params={"param_w": str(worker)})
                    if reply.status != 200 or int(reply.body) != (batch + 1) * 100:
                        failures.append((worker, batch, reply))
            except Exception as error:  # reported below
                failures.append(error)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(failures, [])
        self.assertEqual(self.ok("SELECT count() FROM par_t").body, b"4000\n")

    def test_summary_and_query_id_headers(self):
        reply = self.ok("SELECT 1", params={"query_id": "my-query"})
        self.assertEqual(reply.headers["X-ClickHouse-Query-Id"], "my-query")
        summary = json.loads(reply.headers["X-ClickHouse-Summary"])
        self.assertIn("read_rows", summary)

    def test_keep_alive_connection_serves_many_requests(self):
        # hyper (under the crate) reuses connections: errors and chunked bodies included.
        self.ok("CREATE TABLE keepalive_t (id UInt64) ENGINE = MergeTree ORDER BY id")
        auth = {"X-ClickHouse-User": "default", "X-ClickHouse-Key": PASSWORD}
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            replies = []
            for path, body in [
                ("/", b"SELECT 1"),
                ("/", b"SELEC 1"),
                ("/?" + urlencode({"query": "INSERT INTO keepalive_t FORMAT RowBinary"}), iter([u64(1), u64(2)])),
                ("/?" + urlencode({"query": "INSERT INTO keepalive_t FORMAT RowBinary", "decompress": "1"}),
                 lz4_blocks(u64(3))),
                ("/", b"SELECT sum(id) FROM keepalive_t"),
            ]:
                chunked = not isinstance(body, bytes)
                conn.request("POST", path, body=body, headers=auth, encode_chunked=chunked)
                response = conn.getresponse()
                replies.append((response.status, response.read()))
                self.assertFalse(response.will_close)
            self.assertEqual([status for status, _ in replies], [200, 400, 200, 200, 200], replies)
            self.assertEqual(replies[-1][1], b"6\n")
        finally:
            conn.close()

    def test_unknown_path(self):
        self.assertEqual(self.raw("GET", "/nope").status, 404)

    def test_zz_sigterm_stops_cleanly(self):
        # Runs last (alphabetical order): stops the front.
        proc = type(self).proc
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(timeout=30), 0)
        with open(self.log_path) as f:
            log = f.read()
        self.assertIn("stopped", log)
        self.assertIn("200", log)  # one line per request, with its status


if __name__ == "__main__":
    unittest.main()
