"""make bench-kafka: Sluice against the limits of the machine, side by side.

Preloads N JSON messages of about 1.6 KB into a fresh topic, then measures
in one run, one after another on the same broker and ClickHouse:
  noop-consumer     librdkafka (confluent-kafka) draining the topic, doing nothing
  clickhouse-client ClickHouse's own client inserting the same rows from a file
  sluice            one Sluice replica (release build) draining it into ClickHouse
  python-consumer   confluent-kafka + json.loads per message + HTTP inserts of
                    100,000-row JSONEachRow batches (what custom code would do)
For each: MB/s, rows/s, client CPU seconds per GB, ClickHouse server CPU
seconds per GB (from /proc), peak RSS. One JSON line per contender, printed
and appended to bench/results/kafka.jsonl.

Environment: SLUICE_BENCH_MESSAGES (default 1000000), the stack's ports
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

from common import Sluice, append_results, ch, clickhouse_pid, count, cpu_seconds, peak_rss_mb

N = int(os.environ.get("SLUICE_BENCH_MESSAGES", "1000000"))
PARTITIONS = 4
KAFKA = f"127.0.0.1:{os.environ.get('SLUICE_KAFKA_PORT', '19092')}"
CH_TCP = os.environ.get("SLUICE_CH_TCP_PORT", "19000")

COLUMNS = [
    ("id", "UInt64"), ("ts", "DateTime"), ("user", "String"), ("country", "String"),
    ("amount", "Float64"), ("qty", "Int32"), ("tags", "Array(String)"), ("status", "String"),
    ("payload", "String"),
]


def message(i):
    # About 1.6 KB, the size of the reference's published figure.
    return json.dumps({
        "id": i, "ts": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(1_700_000_000 + i)), "user": f"user-{i % 100_000}",
        "country": random.choice(["DE", "FR", "JP", "KR", "US", "BR"]),
        "amount": round(random.random() * 1000, 2), "qty": i % 1000,
        "tags": [f"t{i % 7}", f"t{i % 11}"], "status": "paid" if i % 3 else "new",
        "payload": "".join(random.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(1380)),
    }).encode()


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
        "server_cpu_s_per_gb": round(server_cpu / gb, 2),
        "peak_rss_mb": round(rss, 1),
    }
    print(json.dumps(line), flush=True)
    return line


def preload(topic):
    admin = AdminClient({"bootstrap.servers": KAFKA})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result()
    producer = Producer({"bootstrap.servers": KAFKA, "linger.ms": 50, "batch.num.messages": 1000,
                         "queue.buffering.max.kbytes": 1048576, "compression.type": "none"})
    total = 0
    rows_file = tempfile.NamedTemporaryFile("wb", delete=False, suffix=".jsonl")
    for i in range(N):
        m = message(i)
        total += len(m)
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


def sluice(topic, total_bytes):
    with Sluice() as stack:
        dest = stack.destination()
        pipe = stack.call("POST", "/v1/pipes", {
            "name": "bench", "source": {"kafka": {"brokers": KAFKA, "topics": [topic]}},
            "destination": {"destinationId": dest, "table": "bench_sluice", "managedTable": True,
                            "tableDefinition": {"sortingKey": ["id"]},
                            "columns": [{"name": n, "type": t} for n, t in COLUMNS]},
            "scaling": {"replicas": 1, "replicaSize": "L"},
        })["id"]
        worker = stack.start_worker()
        server = clickhouse_pid()
        server_cpu = cpu_seconds(server)
        start = time.time()
        stack.call("PATCH", f"/v1/pipes/{pipe}/state", {"command": "start"})
        while count("bench_sluice") < N:
            time.sleep(0.2)
        seconds = time.time() - start
        return result("sluice", seconds, total_bytes, cpu_seconds(worker.pid),
                      cpu_seconds(server) - server_cpu, peak_rss_mb(worker.pid))


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
    append_results("kafka.jsonl", lines)


if __name__ == "__main__":
    main()
