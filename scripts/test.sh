#!/usr/bin/env bash
# make test: every test against real services (a private Postgres and
# ClickHouse on their own ports, started here and stopped on exit), then the
# README tour end to end, rustfmt and clippy.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"

export SLUICE_STACK_DIR=${SLUICE_TEST_STACK_DIR:-$here/.test-stack}
export SLUICE_PG_PORT=${SLUICE_TEST_PG_PORT:-54330}
export SLUICE_CH_HTTP_PORT=${SLUICE_TEST_CH_HTTP_PORT:-28123}
export SLUICE_CH_TCP_PORT=${SLUICE_TEST_CH_TCP_PORT:-29000}
export SLUICE_CH_HTTPS_PORT=${SLUICE_TEST_CH_HTTPS_PORT:-28443}
export SLUICE_API_PORT=${SLUICE_TEST_API_PORT:-28080}
export SLUICE_KAFKA_PORT=${SLUICE_TEST_KAFKA_PORT:-29092}
export SLUICE_KINESIS_PORT=${SLUICE_TEST_KINESIS_PORT:-24568}
export SLUICE_KINESIS_TLS_PORT=${SLUICE_TEST_KINESIS_TLS_PORT:-24567}
export SLUICE_CHDB_HTTP_PORT=${SLUICE_TEST_CHDB_HTTP_PORT:-28124}
export SLUICE_CHDB_PASSWORD=${SLUICE_TEST_CHDB_PASSWORD:-sluice}

cleanup() {
  local status=$?
  if [ "$status" != 0 ] && [ -d "$SLUICE_STACK_DIR/logs" ]; then
    # The stack is removed below: show what the services said first.
    for log in "$SLUICE_STACK_DIR"/logs/e2e-*.log; do
      [ -f "$log" ] && { echo "--- tail of $log"; tail -n 40 "$log"; }
    done
  fi
  scripts/stack.sh down || true
  rm -rf "$SLUICE_STACK_DIR"
}
trap cleanup EXIT
cleanup

step() { printf '\n== %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all --check

step "chdb (the ClickHouse engine as the oracle for modern types)"
# chdb, lz4 and clickhouse-cityhash; wheels cached so later runs install offline.
scripts/stack.sh install chdb

step "chdb-front (test scaffolding: an HTTP front over chdb, a modern engine for the end-to-end tests)"
python3 -m unittest tests/chdb-front/test_chdb_front.py -v

step "web UI: build, unit tests and the OpenAPI client check (Vitest)"
scripts/web.sh build
scripts/web.sh test

step "services: postgres, clickhouse, kafka (tansu), kinesis (kinesis-mock), chdb (tests/chdb-front)"
scripts/stack.sh up postgres clickhouse kafka kinesis chdb
export SLUICE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$SLUICE_PG_PORT/postgres
export SLUICE_TEST_CLICKHOUSE_URL=http://127.0.0.1:$SLUICE_CH_HTTP_PORT
export SLUICE_TEST_CLICKHOUSE_HTTPS_URL=https://127.0.0.1:$SLUICE_CH_HTTPS_PORT
export SLUICE_TEST_TLS_DIR=$SLUICE_STACK_DIR/tls
export SLUICE_TEST_KAFKA_BROKERS=127.0.0.1:$SLUICE_KAFKA_PORT
export SLUICE_TEST_KINESIS_ENDPOINT=http://127.0.0.1:$SLUICE_KINESIS_PORT
export SLUICE_TEST_CHDB_URL=http://127.0.0.1:$SLUICE_CHDB_HTTP_PORT
export SLUICE_TEST_CHDB_PASSWORD=$SLUICE_CHDB_PASSWORD
export SLUICE_TEST_LOG_DIR=$SLUICE_STACK_DIR/logs
export SLUICE_TEST_TANSU=$("$here/scripts/stack.sh" tansu-path)

step "cargo test"
# The end-to-end tests run the service binaries as processes.
cargo build --bins
cargo test --workspace --all-targets

step "README tour against the running services"
tests/readme_tour.sh

step "web UI in Chromium against the running services (Playwright)"
scripts/web.sh e2e

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

echo
echo "make test: all passed"
