"""make bench-kinesis: Kinesis pipes on the emulator, three cases in one run.

  polling                  4 shards, one XS replica (4 shard workers), GetRecords
  efo                      4 shards, one XS replica, enhanced fan-out
  efo-8-shards-4-workers   8 shards, one XS replica, enhanced fan-out: the
                           replica rotates its 4 workers over 8 shards

Each case, on a fresh stream and table:
  1. throughput: N records (about 1 KB of JSON) are put before the pipe
     starts; the time from start to the last row visible in ClickHouse gives
     MB/s. CPU seconds per GB are the worker process's.
  2. latency: the pipe caught up, records are put at a steady rate to every
     shard for LATENCY_SECONDS; each carries the time it was sent. The
     benchmark polls ClickHouse every 100 ms and takes, per row, the time it
     was first seen minus the time it was sent (p50, p99, max).
  3. max_shard_wait_s: the longest time a held shard waited for a shard
     worker over the whole case, from the worker's
     sluice_kinesis_shard_wait_seconds summary (its quantile 1), scraped
     every second: the summary covers only the last minute.

The pipes flush every second (streaming_max_insert_wait_ms = 1000), so
latency shows reading, not the batch timer. One JSON line per case, printed
and appended to bench/results/kinesis.jsonl.

Environment: SLUICE_BENCH_KINESIS_RECORDS (default 20000),
SLUICE_BENCH_LATENCY_SECONDS (default 60), SLUICE_BENCH_RATE (records/s,
default 100), SLUICE_KINESIS_PORT, and the ports of bench/common.py.
"""

import json
import os
import random
import sys
import threading
import time
import uuid

import boto3

from common import Sluice, append_results, ch, count, cpu_seconds, peak_rss_mb

N = int(os.environ.get("SLUICE_BENCH_KINESIS_RECORDS", "20000"))
LATENCY_SECONDS = int(os.environ.get("SLUICE_BENCH_LATENCY_SECONDS", "60"))
RATE = int(os.environ.get("SLUICE_BENCH_RATE", "100"))
ENDPOINT = f"http://127.0.0.1:{os.environ.get('SLUICE_KINESIS_PORT', '14568')}"
# The emulator accepts any signed credentials.
ACCESS_KEY, SECRET_KEY = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

COLUMNS = [("id", "UInt64"), ("sent_ms", "UInt64"), ("user", "String"), ("amount", "Float64"),
           ("payload", "String")]

CASES = [("polling", 4, False), ("efo", 4, True), ("efo-8-shards-4-workers", 8, True)]


def kinesis():
    return boto3.client("kinesis", endpoint_url=ENDPOINT, region_name="us-east-1",
                        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)


def record(i, sent_ms):
    return json.dumps({"id": i, "sent_ms": sent_ms, "user": f"user-{i % 10_000}",
                       "amount": round(random.random() * 1000, 2),
                       "payload": "".join(random.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(900))}).encode()


def put(client, stream, ids):
    """Puts records with random partition keys (every shard gets some);
    returns their bytes."""
    total = 0
    for start in range(0, len(ids), 500):
        entries = []
        for i in ids[start:start + 500]:
            data = record(i, int(time.time() * 1000))
            total += len(data)
            entries.append({"Data": data, "PartitionKey": uuid.uuid4().hex})
        while entries:
            response = client.put_records(StreamName=stream, Records=entries)
            entries = [e for e, r in zip(entries, response["Records"]) if "ErrorCode" in r]
    return total


def create_stream(client, stream, shards):
    client.create_stream(StreamName=stream, ShardCount=shards)
    while client.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
        time.sleep(0.2)


def max_shard_wait(metrics_text):
    """The summary's quantile 1 is the largest wait recorded (0 when no
    shard ever waited)."""
    for line in metrics_text.splitlines():
        if line.startswith("sluice_kinesis_shard_wait_seconds{") and 'quantile="1"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


class WaitWatcher(threading.Thread):
    def __init__(self, stack):
        super().__init__(daemon=True)
        self.stack, self.max, self.done = stack, 0.0, threading.Event()

    def run(self):
        while not self.done.wait(1.0):
            try:
                self.max = max(self.max, max_shard_wait(self.stack.worker_metrics()))
            except Exception:
                pass  # the worker's metrics endpoint is not up yet

    def stop(self):
        self.done.set()
        self.join()
        return self.max


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p))]


def latency_phase(client, stream, table, first_id):
    """Produces at RATE records/s while watching ClickHouse; returns the
    per-row produce→visible latencies in ms."""
    total = RATE * LATENCY_SECONDS
    ids = list(range(first_id, first_id + total))

    def produce():
        per_tick = max(1, RATE // 10)
        started = time.time()
        for k in range(0, total, per_tick):
            put(client, stream, ids[k:k + per_tick])
            delay = started + (k + per_tick) / RATE - time.time()
            if delay > 0:
                time.sleep(delay)

    producer = threading.Thread(target=produce)
    producer.start()
    seen = {}
    deadline = time.time() + LATENCY_SECONDS + 300
    while len(seen) < total and time.time() < deadline:
        now_ms = int(time.time() * 1000)
        rows = ch(f"SELECT id, sent_ms FROM {table} WHERE id >= {first_id} FORMAT TSV")
        for line in rows.splitlines():
            i, sent = (int(x) for x in line.split("\t"))
            seen.setdefault(i, now_ms - sent)
        time.sleep(0.1)
    producer.join()
    if len(seen) < total:
        print(f"{stream}: only {len(seen)} of {total} latency records arrived", file=sys.stderr)
    return sorted(seen.values()), total - len(seen)


def run_case(name, shards, fan_out):
    client = kinesis()
    stream = f"bench-{name}-{uuid.uuid4().hex[:8]}"
    table = f"bench_kinesis_{name.replace('-', '_')}"
    ch(f"DROP TABLE IF EXISTS {table}")
    create_stream(client, stream, shards)
    print(f"{name}: putting {N} records on {shards} shards", file=sys.stderr, flush=True)
    total_bytes = put(client, stream, list(range(N)))
    with Sluice() as stack:
        dest = stack.destination()
        pipe = stack.call("POST", "/v1/pipes", {
            "name": f"bench {name}",
            "source": {"kinesis": {"streamName": stream, "region": "us-east-1", "endpoint": ENDPOINT,
                                   "iteratorType": "TRIM_HORIZON", "useEnhancedFanOut": fan_out,
                                   "authentication": "IAM_USER",
                                   "accessKey": {"accessKeyId": ACCESS_KEY, "secretKey": SECRET_KEY}}},
            "destination": {"destinationId": dest, "table": table, "managedTable": True,
                            "tableDefinition": {"sortingKey": ["id"]},
                            "columns": [{"name": n, "type": t} for n, t in COLUMNS]},
            "scaling": {"replicas": 1, "replicaSize": "XS"},
            "settings": {"streaming_max_insert_wait_ms": 1000},
        })["id"]
        worker = stack.start_worker()
        waits = WaitWatcher(stack)
        waits.start()
        start = time.time()
        stack.call("PATCH", f"/v1/pipes/{pipe}/state", {"command": "start"})
        while count(table) < N:
            time.sleep(0.1)
        seconds = time.time() - start
        drain_cpu = cpu_seconds(worker.pid)
        print(f"{name}: {N} records in {seconds:.1f} s; measuring latency for {LATENCY_SECONDS} s",
              file=sys.stderr, flush=True)
        latencies, missing = latency_phase(client, stream, table, N)
        line = {
            "case": name, "records": N, "shards": shards, "shard_workers": 4,
            "mb_per_s": round(total_bytes / 1e6 / seconds, 2),
            "cpu_s_per_gb": round(drain_cpu / (total_bytes / 1e9), 1),
            "p50_ms": percentile(latencies, 0.50), "p99_ms": percentile(latencies, 0.99),
            "max_ms": latencies[-1] if latencies else None,
            "latency_records": len(latencies), "latency_missing": missing,
            "max_shard_wait_s": round(max(waits.stop(), max_shard_wait(stack.worker_metrics())), 2),
            "peak_rss_mb": round(peak_rss_mb(worker.pid), 1),
        }
        stack.call("DELETE", f"/v1/pipes/{pipe}")
    client.delete_stream(StreamName=stream, EnforceConsumerDeletion=True)
    print(json.dumps(line), flush=True)
    return line


def main():
    lines = [run_case(*case) for case in CASES]
    append_results("kinesis.jsonl", lines)


if __name__ == "__main__":
    main()
