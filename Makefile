# Sluice: the two set-up commands are `make dev` and `make test` (see README).
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Heavy builds (cargo's target dir, tansu, npm packages) live outside the
# checkout and survive between runs and clones on the same machine.
export SLUICE_CACHE_DIR ?= $(HOME)/.cache/sluice
export CARGO_TARGET_DIR ?= $(SLUICE_CACHE_DIR)/target

.PHONY: help dev stop status test openapi sqlx-prepare fmt bench-kafka bench-kinesis bench-json bench-scheduler

help:
	@echo "make dev           install what is missing, start the local stack, print where to go"
	@echo "make stop          stop every process 'make dev' started"
	@echo "make status        what is running"
	@echo "make test          the whole test suite against real services, rustfmt and clippy"
	@echo "make openapi       regenerate openapi/openapi.json from the code"
	@echo "make sqlx-prepare  regenerate the sqlx offline query metadata"
	@echo "make bench-kafka   the Kafka benchmark (docs/benchmarks.md)"
	@echo "make bench-kinesis polling and fan-out: throughput, latency, shard waits (docs/benchmarks.md)"
	@echo "make bench-scheduler placement simulated: 10,000 pipes on 1,000 workers (docs/benchmarks.md)"
	@echo "make bench-json    JSON parsers compared (docs/benchmarks.md)"

dev:
	@scripts/dev.sh

stop:
	@scripts/stack.sh down

status:
	@scripts/stack.sh status

test:
	@scripts/test.sh

openapi:
	cargo run --quiet -p sluice-api -- openapi > openapi/openapi.json

sqlx-prepare:
	scripts/sqlx-prepare.sh

fmt:
	cargo fmt --all

# The Kafka benchmark (not a test): see bench/kafka.py and docs/benchmarks.md.
bench-kafka:
	scripts/stack.sh up postgres clickhouse kafka
	cargo build --release --bins
	python3 -c "import confluent_kafka.schema_registry.avro, confluent_kafka.schema_registry.protobuf" 2>/dev/null \
		|| pip install --quiet "confluent-kafka[avro,protobuf,schemaregistry]"
	python3 bench/kafka.py

bench-kinesis:
	scripts/stack.sh up postgres clickhouse kinesis
	cargo build --release --bins
	python3 -c "import boto3" 2>/dev/null || pip install --quiet boto3
	python3 bench/kinesis.py

# Which JSON parser: serde_json vs simd-json vs sonic-rs on the benchmark's messages.
bench-json:
	cargo run --release --quiet -p sluice-bench-json

# Placement and reconcile in memory (no services): see bench/scheduler.
bench-scheduler:
	cargo run --release --quiet -p sluice-bench-scheduler
