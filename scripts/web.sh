#!/usr/bin/env bash
# The web UI: `build` (npm ci, then the production bundle in web/dist that
# sluice-api serves at /), `test` (Vitest: unit tests and the OpenAPI client
# drift check), `e2e` (Playwright driving Debian's Chromium against the
# running stack; expects scripts/stack.sh's environment and the services up).
# npm downloads are cached outside the checkout.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache_dir=${SLUICE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice}
web=$here/web

say() { printf 'web: %s\n' "$*"; }
die() { printf 'web: %s\n' "$*" >&2; exit 1; }

install() {
  command -v npm >/dev/null || die "npm is missing: install Node.js 20+"
  # Reinstall only when the lock file changed since the last install.
  local stamp=$web/node_modules/.sluice-lock
  if [ -f "$stamp" ] && cmp -s "$stamp" "$web/package-lock.json"; then
    return 0
  fi
  say "npm ci (cached in $cache_dir/npm)"
  (cd "$web" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error --cache "$cache_dir/npm") \
    || die "npm ci failed"
  cp "$web/package-lock.json" "$stamp"
}

build() {
  install
  say "building web/dist"
  (cd "$web" && npm run --silent build) || die "the web build failed"
}

unit() {
  install
  (cd "$web" && npm test --silent)
}

chromium_path() {
  command -v chromium 2>/dev/null || true
}

e2e() {
  local stack_dir=${SLUICE_STACK_DIR:?run through make test or make dev}
  local api=http://127.0.0.1:${SLUICE_API_PORT:-8080}
  local clickhouse=http://127.0.0.1:${SLUICE_CH_HTTP_PORT:-18123}
  local target_dir=${CARGO_TARGET_DIR:-$here/target}
  install
  if [ -z "$(chromium_path)" ]; then
    [ "$(id -u)" = 0 ] || die "Chromium is missing: apt-get install chromium"
    say "installing Debian's Chromium"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; } \
      || die "apt-get install chromium failed"
  fi
  curl -fs -o /dev/null "$api/readyz" || die "the API at $api is not up"
  curl -fs "$api/" | grep -q '<div id="root">' || die "the API at $api does not serve the web UI (SLUICE_WEB_DIR)"

  local admin; admin=$(cat "$stack_dir/admin-key")
  local suffix; suffix=$(date +%s)-$$
  json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
  local viewer
  viewer=$(curl -fsS -H "Authorization: Bearer $admin" -H 'content-type: application/json' \
    -d "{\"name\": \"web e2e viewer $suffix\", \"role\": \"viewer\"}" "$api/v1/keys" | json '["token"]')
  local database=web_e2e_${suffix//-/_}
  curl -fsS "$clickhouse/" --data-binary "CREATE DATABASE $database" >/dev/null
  local destination
  destination=$(curl -fsS -H "Authorization: Bearer $admin" -H 'content-type: application/json' \
    -d "{\"name\": \"web e2e $suffix\", \"url\": \"$clickhouse\", \"database\": \"$database\"}" \
    "$api/v1/destinations" | json '["id"]')

  local topic=web-orders-$suffix stream=web-clicks-$suffix
  local seed_log=$stack_dir/logs/web-e2e-seed.log
  SLUICE_TEST_KAFKA_BROKERS=127.0.0.1:${SLUICE_KAFKA_PORT:-19092} \
    SLUICE_TEST_KINESIS_ENDPOINT=http://127.0.0.1:${SLUICE_KINESIS_PORT:-14568} \
    "$target_dir/debug/sluice-e2e-seed" "$topic" "$stream" 900 >"$seed_log" 2>&1 &
  local seed=$!
  # shellcheck disable=SC2064
  trap "kill $seed 2>/dev/null || true" EXIT
  for _ in $(seq 1 120); do
    grep -q '^ready$' "$seed_log" && break
    kill -0 "$seed" 2>/dev/null || die "the seed producer stopped: $(tail -5 "$seed_log")"
    sleep 0.5
  done
  grep -q '^ready$' "$seed_log" || die "the seed producer is not ready after 60 s"
  # The seed serves a schema registry (test scaffolding) and an
  # AvroConfluent topic for the registry wizard test.
  local registry; registry=$(sed -n 's/^registry //p' "$seed_log")
  local avro_schema; avro_schema=$(sed -n 's/^avro-schema //p' "$seed_log")
  local proto_file; proto_file=$(sed -n 's/^proto-file //p' "$seed_log")

  say "browser tests (screenshots in web/e2e/screenshots/)"
  (cd "$web" && SLUICE_UI_URL=$api SLUICE_ADMIN_TOKEN=$admin SLUICE_VIEWER_TOKEN=$viewer \
    SLUICE_E2E_KAFKA_BROKERS=127.0.0.1:${SLUICE_KAFKA_PORT:-19092} \
    SLUICE_E2E_KINESIS_ENDPOINT=http://127.0.0.1:${SLUICE_KINESIS_PORT:-14568} \
    SLUICE_E2E_CLICKHOUSE_URL=$clickhouse SLUICE_E2E_KAFKA_TOPIC=$topic \
    SLUICE_E2E_KINESIS_STREAM=$stream SLUICE_E2E_DESTINATION_ID=$destination \
    SLUICE_E2E_REGISTRY_URL=$registry SLUICE_E2E_AVRO_TOPIC=$topic-avro \
    SLUICE_E2E_PROTO_TOPIC=$topic-proto SLUICE_E2E_PLAIN_AVRO_TOPIC=$topic-avro-plain \
    SLUICE_E2E_PLAIN_PROTO_TOPIC=$topic-proto-plain SLUICE_E2E_AVRO_STREAM=$stream-avro \
    SLUICE_E2E_AVRO_SCHEMA_FILE=$avro_schema SLUICE_E2E_PROTO_FILE=$proto_file \
    SLUICE_E2E_TYPES_TOPIC=$topic-types \
    CHROMIUM_PATH=$(chromium_path) npm run --silent e2e)
  kill "$seed" 2>/dev/null || true
  # The tests delete their pipes; what the harness made goes too.
  curl -fsS -o /dev/null -X DELETE -H "Authorization: Bearer $admin" "$api/v1/destinations/$destination" || true
  curl -fsS -o /dev/null -X DELETE -H "Authorization: Bearer $admin" "$api/v1/keys/${viewer%%.*}" || true
  curl -fsS "$clickhouse/" --data-binary "DROP DATABASE IF EXISTS $database" >/dev/null || true
}

case ${1:-} in
  install) install ;;
  build) build ;;
  test) unit ;;
  e2e) e2e ;;
  *) echo "usage: $0 install | build | test | e2e" >&2; exit 2 ;;
esac
