"""make bench-kafka: Sluice against the limits of the machine, side by side.

Preloads N JSON messages of about 1.6 KB into a fresh topic, then measures
in one run, one after another on the same broker and ClickHouse:
  noop-consumer     librdkafka (confluent-kafka) draining the topic, doing nothing
  clickhouse-client ClickHouse's own client inserting the same rows from a file
  sluice            one Sluice replica (release build) draining it into ClickHouse
  python-consumer   confluent-kafka + json.loads per message + HTTP inserts of
                    100,000-row JSONEachRow batches (what custom code would do)
  sluice-avro       the same records as AvroConfluent (confluent-kafka's
                    AvroSerializer, the test registry's scaffolding process)
  sluice-protobuf   the same records as Protobuf in Confluent's framing
                    (ProtobufSerializer)
For each: MB/s, rows/s, client CPU seconds per GB, ClickHouse server CPU
seconds per GB (from /proc), peak RSS; the format variants per GB of their
own (smaller) messages and, comparable across formats, worker CPU seconds
per million rows. One JSON line per contender, printed and appended to
bench/results/kafka.jsonl.

Environment: SLUICE_BENCH_MESSAGES (default 1000000), SLUICE_BENCH_FORMATS
(default "avro,protobuf"; empty for JSON only), the stack's ports
(SLUICE_KAFKA_PORT, SLUICE_CH_HTTP_PORT, SLUICE_CH_TCP_PORT, SLUICE_PG_PORT),
SLUICE_STACK_DIR, CARGO_TARGET_DIR.
"""

import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

import urllib.request

from common import ROOT, Sluice, append_results, ch, clickhouse_pid, count, cpu_seconds, peak_rss_mb

N = int(os.environ.get("SLUICE_BENCH_MESSAGES", "1000000"))
PARTITIONS = 4
KAFKA = f"127.0.0.1:{os.environ.get('SLUICE_KAFKA_PORT', '19092')}"
CH_TCP = os.environ.get("SLUICE_CH_TCP_PORT", "19000")

COLUMNS = [
    ("id", "UInt64"), ("ts", "DateTime"), ("user", "String"), ("country", "String"),
    ("amount", "Float64"), ("qty", "Int32"), ("tags", "Array(String)"), ("status", "String"),
    ("payload", "String"),
]


FORMATS = [f for f in os.environ.get("SLUICE_BENCH_FORMATS", "avro,protobuf").split(",") if f]


def record(i):
    # About 1.6 KB as JSON, the size of the reference's published figure.
    return {
        "id": i, "ts": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(1_700_000_000 + i)), "user": f"user-{i % 100_000}",
        "country": random.choice(["DE", "FR", "JP", "KR", "US", "BR"]),
        "amount": round(random.random() * 1000, 2), "qty": i % 1000,
        "tags": [f"t{i % 7}", f"t{i % 11}"], "status": "paid" if i % 3 else "new",
        "payload": "".join(random.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(1380)),
    }


def message(i):
    return json.dumps(record(i)).encode()


def create_table(name):
    columns = ", ".join(f"`{n}` {t}" for n, t in COLUMNS)
    ch(f"CREATE TABLE {name} ({columns}) ENGINE = MergeTree() ORDER BY id")


def result(contender, seconds, total_bytes, client_cpu, server_cpu, rss):
    gb = total_bytes / 1e9
    line = {
        "contender": contender, "messages": N,
        "mb_per_s": round(total_bytes / 1e6 / seconds, 1),
        "rows_per_s": round(N / seconds),
        "cpu_s_per_gb": round(client_cpu / gb, 2),
        "cpu_s_per_million_rows": round(client_cpu / (N / 1e6), 2),
        "server_cpu_s_per_gb": round(server_cpu / gb, 2),
        "peak_rss_mb": round(rss, 1),
        "message_bytes": round(total_bytes / N),
    }
    print(json.dumps(line), flush=True)
    return line


def preload(topic, encode=None):
    """N messages into a fresh topic: JSON (also written to a file for
    clickhouse-client), or `encode(i)`'s bytes."""
    admin = AdminClient({"bootstrap.servers": KAFKA})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result()
    producer = Producer({"bootstrap.servers": KAFKA, "linger.ms": 50, "batch.num.messages": 1000,
                         "queue.buffering.max.kbytes": 1048576, "compression.type": "none"})
    total = 0
    rows_file = tempfile.NamedTemporaryFile("wb", delete=False, suffix=".jsonl")
    for i in range(N):
        m = encode(i) if encode else message(i)
        total += len(m)
        if not encode:
            rows_file.write(m + b"\n")
        while True:
            try:
                producer.produce(topic, m, key=str(i).encode())
                break
            except BufferError:
                producer.poll(0.1)
        if i % 10000 == 0:
            producer.poll(0)
    producer.flush(600)
    rows_file.close()
    return total, rows_file.name


def noop_consumer(topic, total_bytes):
    start_cpu, start = time.process_time(), time.time()
    c = Consumer({"bootstrap.servers": KAFKA, "group.id": "bench-noop-" + uuid.uuid4().hex,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    seen = 0
    while seen < N:
        for m in c.consume(10000, timeout=1.0):
            if not m.error():
                seen += 1
    seconds = time.time() - start
    c.close()
    rss = peak_rss_mb(os.getpid())
    return result("noop-consumer", seconds, total_bytes, time.process_time() - start_cpu, 0.0, rss)


def clickhouse_client(rows_path, total_bytes):
    create_table("bench_client")
    server = clickhouse_pid()
    server_cpu = cpu_seconds(server)
    start = time.time()
    with open(rows_path, "rb") as rows:
        process = subprocess.Popen(["clickhouse-client", "--port", CH_TCP, "--query",
                                    "INSERT INTO bench_client FORMAT JSONEachRow"], stdin=rows)
        usage = os.wait4(process.pid, 0)[2]
    seconds = time.time() - start
    assert count("bench_client") == N, "clickhouse-client inserted every row"
    return result("clickhouse-client", seconds, total_bytes, usage.ru_utime + usage.ru_stime,
                  cpu_seconds(server) - server_cpu, usage.ru_maxrss / 1024)


def sluice(topic, total_bytes, contender="sluice", table="bench_sluice", source_fields=None):
    with Sluice() as stack:
        dest = stack.destination()
        pipe = stack.call("POST", "/v1/pipes", {
            "name": "bench",
            "source": {"kafka": dict({"brokers": KAFKA, "topics": [topic]}, **(source_fields or {}))},
            "destination": {"destinationId": dest, "table": table, "managedTable": True,
                            "tableDefinition": {"sortingKey": ["id"]},
                            "columns": [{"name": n, "type": t} for n, t in COLUMNS]},
            "scaling": {"replicas": 1, "replicaSize": "L"},
        })["id"]
        worker = stack.start_worker()
        server = clickhouse_pid()
        server_cpu = cpu_seconds(server)
        start = time.time()
        stack.call("PATCH", f"/v1/pipes/{pipe}/state", {"command": "start"})
        while count(table) < N:
            time.sleep(0.2)
        seconds = time.time() - start
        return result(contender, seconds, total_bytes, cpu_seconds(worker.pid),
                      cpu_seconds(server) - server_cpu, peak_rss_mb(worker.pid))


AVRO_SCHEMA = json.dumps({"type": "record", "name": "Order", "namespace": "bench", "fields": [
    {"name": "id", "type": "long"}, {"name": "ts", "type": "string"}, {"name": "user", "type": "string"},
    {"name": "country", "type": "string"}, {"name": "amount", "type": "double"},
    {"name": "qty", "type": "int"}, {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "status", "type": "string"}, {"name": "payload", "type": "string"}]})


def order_message_class():
    """The same fields as a Protobuf message type, built without protoc."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    f = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name="bench/order.proto", package="bench", syntax="proto3")
    message = file.message_type.add(name="Order")
    for number, (name, kind) in enumerate([
            ("id", f.TYPE_UINT64), ("ts", f.TYPE_STRING), ("user", f.TYPE_STRING), ("country", f.TYPE_STRING),
            ("amount", f.TYPE_DOUBLE), ("qty", f.TYPE_INT32), ("tags", f.TYPE_STRING),
            ("status", f.TYPE_STRING), ("payload", f.TYPE_STRING)], start=1):
        label = f.LABEL_REPEATED if name == "tags" else f.LABEL_OPTIONAL
        message.field.add(name=name, number=number, type=kind, label=label)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("bench.Order"))


class Registry:
    """The test registry (scaffolding: no Confluent-compatible registry
    installs here) as a process of its own."""

    def __init__(self):
        port = 28950 + random.randint(0, 40)
        binary = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")),
                              "release", "sluice-test-registry")
        self.process = subprocess.Popen([binary, str(port)], stdout=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{self.url}/subjects", timeout=1).read()
                return
            except Exception:
                time.sleep(0.1)
        raise RuntimeError("the test registry did not start")

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.process.terminate()
        self.process.wait()


def format_variants():
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.serialization import MessageField, SerializationContext

    lines = []
    with Registry() as registry:
        client = SchemaRegistryClient({"url": registry.url})
        for fmt in FORMATS:
            ch(f"DROP TABLE IF EXISTS bench_sluice_{fmt}")
            topic = f"bench-{fmt}-" + uuid.uuid4().hex
            context = SerializationContext(topic, MessageField.VALUE)
            if fmt == "avro":
                from confluent_kafka.schema_registry.avro import AvroSerializer
                serializer = AvroSerializer(client, AVRO_SCHEMA)
                encode = lambda i: serializer(record(i), context)  # noqa: E731
                source = {"format": "AvroConfluent", "schemaRegistry": {"url": registry.url}}
            elif fmt == "protobuf":
                from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
                order = order_message_class()
                serializer = ProtobufSerializer(order, client, {"use.deprecated.format": False})
                encode = lambda i: serializer(order(**record(i)), context)  # noqa: E731
                source = {"format": "Protobuf", "schemaRegistry": {"url": registry.url}}
            else:
                raise SystemExit(f"unknown format {fmt} in SLUICE_BENCH_FORMATS")
            print(f"preloading {N} {fmt} messages into {topic}", file=sys.stderr, flush=True)
            total_bytes, rows_path = preload(topic, encode)
            os.unlink(rows_path)
            lines.append(sluice(topic, total_bytes, f"sluice-{fmt}", f"bench_sluice_{fmt}", source))
    return lines


def python_consumer(topic, total_bytes):
    create_table("bench_python")
    server = clickhouse_pid()
    server_cpu = cpu_seconds(server)
    start_cpu, start = time.process_time(), time.time()
    c = Consumer({"bootstrap.servers": KAFKA, "group.id": "bench-py-" + uuid.uuid4().hex,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    seen, batch = 0, []

    def flush():
        ch("INSERT INTO bench_python FORMAT JSONEachRow", "\n".join(json.dumps(r) for r in batch).encode())
        c.commit(asynchronous=False)
        batch.clear()

    while seen < N:
        for m in c.consume(10000, timeout=1.0):
            if m.error():
                continue
            batch.append(json.loads(m.value()))
            seen += 1
            if len(batch) >= 100_000:
                flush()
    if batch:
        flush()
    seconds = time.time() - start
    c.close()
    return result("python-consumer", seconds, total_bytes, time.process_time() - start_cpu,
                  cpu_seconds(server) - server_cpu, peak_rss_mb(os.getpid()))


def main():
    for table in ("bench_client", "bench_sluice", "bench_python"):
        ch(f"DROP TABLE IF EXISTS {table}")
    topic = "bench-" + uuid.uuid4().hex
    print(f"preloading {N} messages into {topic}", file=sys.stderr, flush=True)
    total_bytes, rows_path = preload(topic)
    print(f"{total_bytes / 1e6:.0f} MB preloaded", file=sys.stderr, flush=True)
    lines = [noop_consumer(topic, total_bytes), clickhouse_client(rows_path, total_bytes),
             sluice(topic, total_bytes), python_consumer(topic, total_bytes)]
    os.unlink(rows_path)
    lines += format_variants()
    append_results("kafka.jsonl", lines)


if __name__ == "__main__":
    main()
