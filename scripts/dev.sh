#!/usr/bin/env bash
# make dev: start the whole local stack and print where to go next.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
stack_dir=${SLUICE_STACK_DIR:-$here/.dev}
api_port=${SLUICE_API_PORT:-8080}
ch_http_port=${SLUICE_CH_HTTP_PORT:-18123}

if ! command -v jq >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q jq >/dev/null 2>&1 || true  # the README tour uses jq
fi
# The web UI is optional: without npm the API still runs.
if command -v npm >/dev/null 2>&1; then
  "$here/scripts/web.sh" build || echo "dev: the web UI did not build; the API runs without it" >&2
else
  echo "dev: npm is missing, so the web UI is not built; the API runs without it" >&2
fi
"$here/scripts/stack.sh" up

cat >"$stack_dir/env" <<ENV
export SLUICE_API=http://127.0.0.1:$api_port
export SLUICE_KEY=$(cat "$stack_dir/admin-key")
export SLUICE_CLICKHOUSE=http://127.0.0.1:$ch_http_port
export SLUICE_KAFKA=127.0.0.1:${SLUICE_KAFKA_PORT:-19092}
export SLUICE_TANSU=$("$here/scripts/stack.sh" tansu-path)
export SLUICE_KINESIS=http://127.0.0.1:${SLUICE_KINESIS_PORT:-14568}
export SLUICE_CHDB=http://127.0.0.1:${SLUICE_CHDB_HTTP_PORT:-18124}
ENV
chmod 600 "$stack_dir/env"

cat <<MSG

Sluice is running.
  Web UI       http://127.0.0.1:$api_port/   (sign in with the admin key below)
  API          http://127.0.0.1:$api_port   (OpenAPI: /v1/openapi.json, interactive docs: /docs)
  Admin key    $(cat "$stack_dir/admin-key")
  ClickHouse   http://127.0.0.1:$ch_http_port
  Kafka        127.0.0.1:${SLUICE_KAFKA_PORT:-19092} (tansu)
  Kinesis      http://127.0.0.1:${SLUICE_KINESIS_PORT:-14568} (kinesis-mock)
  chdb         http://127.0.0.1:${SLUICE_CHDB_HTTP_PORT:-18124} (ClickHouse 26 engine behind a test front; user default, password ${SLUICE_CHDB_PASSWORD-sluice})
  Logs         $stack_dir/logs/
  Stop         make stop

Try it:
  . $stack_dir/env
  curl -H "Authorization: Bearer \$SLUICE_KEY" \$SLUICE_API/v1/pipes

The five-minute tour is in README.md.
MSG
