"""Pieces every benchmark uses: ClickHouse over HTTP, process CPU and memory
from /proc, and a private Sluice (release build: API, scheduler, worker) on
its own Postgres database, driven through the REST API."""

import json
import os
import random
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CH = f"http://127.0.0.1:{os.environ.get('SLUICE_CH_HTTP_PORT', '18123')}"
PG = f"postgres://postgres@127.0.0.1:{os.environ.get('SLUICE_PG_PORT', '54320')}"
STACK = os.environ.get("SLUICE_STACK_DIR", os.path.join(ROOT, ".dev"))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
TICK = os.sysconf("SC_CLK_TCK")


def ch(sql, data=None):
    request = urllib.request.Request(f"{CH}/?query={urllib.parse.quote(sql)}", data=data, method="POST")
    with urllib.request.urlopen(request, timeout=600) as response:
        return response.read().decode()


def count(table):
    try:
        return int(ch(f"SELECT count() FROM {table}").strip())
    except Exception:
        return 0


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def peak_rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def clickhouse_pid():
    with open(os.path.join(STACK, "pids", "clickhouse.pid")) as f:
        return int(f.read().split()[0])


def append_results(name, lines):
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with open(os.path.join(HERE, "results", name), "a") as out:
        for line in lines:
            out.write(json.dumps(dict(line, at=at)) + "\n")


class Sluice:
    """API and scheduler at once; the worker when `start_worker` is called,
    so a benchmark can time from the moment ingestion can begin."""

    def __init__(self):
        db = "bench_" + uuid.uuid4().hex
        subprocess.run(["psql", f"{PG}/postgres", "-qc", f"CREATE DATABASE {db}"], check=True)
        self.key = f"sk{uuid.uuid4().hex[:20]}.{uuid.uuid4().hex}{uuid.uuid4().hex}"
        self.port = 28500 + random.randint(0, 400)
        self.metrics_port = self.port + 500
        self.env = dict(os.environ, SLUICE_DATABASE_URL=f"{PG}/{db}", SLUICE_API_ADDR=f"127.0.0.1:{self.port}",
                        SLUICE_MASTER_KEY_FILE=os.path.join(tempfile.mkdtemp(), "master.key"),
                        SLUICE_BOOTSTRAP_ADMIN_KEY=self.key,
                        SLUICE_WORKER_METRICS_ADDR=f"127.0.0.1:{self.metrics_port}", RUST_LOG="warn")
        self.processes = [self._spawn("sluice-api"), self._spawn("sluice-scheduler")]
        self.worker = None
        for _ in range(100):
            try:
                self.call("GET", "/v1/pipes")
                return
            except Exception:
                time.sleep(0.1)
        raise RuntimeError("sluice-api did not start")

    def _spawn(self, name):
        return subprocess.Popen([os.path.join(TARGET, "release", name)], env=self.env)

    def call(self, method, path, body=None):
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method,
                                         data=json.dumps(body).encode() if body else None,
                                         headers={"Authorization": f"Bearer {self.key}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def destination(self):
        return self.call("POST", "/v1/destinations", {"name": "bench", "url": CH, "database": "default"})["id"]

    def start_worker(self):
        self.worker = self._spawn("sluice-worker")
        self.processes.append(self.worker)
        return self.worker

    def worker_metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as response:
            return response.read().decode()

    def stop(self):
        for process in reversed(self.processes):
            process.terminate()
            process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.stop()
