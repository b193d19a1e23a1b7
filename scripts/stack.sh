#!/usr/bin/env bash
# Starts and stops Sluice's local stack: a private Postgres, ClickHouse, the
# tansu Kafka broker, the Kinesis emulator, the chdb test front and the Sluice
# services.
#
#   scripts/stack.sh up   [component...]   install what is missing, start (idempotent)
#   scripts/stack.sh down                  stop what this stack directory started
#   scripts/stack.sh stop <component>      stop one component
#   scripts/stack.sh install chdb          install what a component needs, without starting it
#   scripts/stack.sh status
#
# Components: postgres clickhouse kafka kinesis chdb services (default: all).
# chdb is tests/chdb-front: test scaffolding, an HTTP front over the chdb
# engine (ClickHouse 26.x in-process) that speaks enough of ClickHouse's HTTP
# interface for Sluice; see its README.
# Everything lives under $SLUICE_STACK_DIR: data, logs/, pids/. Processes are
# stopped by the PID recorded when they were started (checked against the
# process start time, so a recycled PID is never signalled), never by name.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
stack_dir=${SLUICE_STACK_DIR:-$here/.dev}
cache_dir=${SLUICE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice}
pg_port=${SLUICE_PG_PORT:-54320}
ch_http_port=${SLUICE_CH_HTTP_PORT:-18123}
ch_tcp_port=${SLUICE_CH_TCP_PORT:-19000}
ch_https_port=${SLUICE_CH_HTTPS_PORT:-18443}
kafka_port=${SLUICE_KAFKA_PORT:-19092}
kinesis_port=${SLUICE_KINESIS_PORT:-14568}
kinesis_tls_port=${SLUICE_KINESIS_TLS_PORT:-14567}
chdb_port=${SLUICE_CHDB_HTTP_PORT:-18124}
chdb_password=${SLUICE_CHDB_PASSWORD-sluice}
api_port=${SLUICE_API_PORT:-8080}
tansu_version=0.6.0
kinesis_local_version=0.6.2

logs=$stack_dir/logs
pids=$stack_dir/pids

say() { printf '%s\n' "stack: $*" >&2; }
die() { say "error: $*"; exit 1; }

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_bin() {
  local name=$1
  if ! command -v "$name" >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/"$name" >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || die "$name not found: install PostgreSQL (apt-get install postgresql)"
    say "installing PostgreSQL from Debian (one time)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >>"$logs/apt.log" 2>&1 \
      || die "apt-get install postgresql failed; see $logs/apt.log"
  fi
  if command -v "$name" >/dev/null 2>&1; then command -v "$name"
  else ls /usr/lib/postgresql/*/bin/"$name" | sort -V | tail -1; fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # description, seconds, command...
  local what=$1 seconds=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    [ $SECONDS -lt $deadline ] || die "$what did not come up within ${seconds}s; see $logs"
    sleep 0.3
  done
}

start_time() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null; }

# running <name>: true when the process recorded for <name> is still the one we started.
running() {
  local file=$pids/$1.pid pid started
  [ -f "$file" ] || return 1
  read -r pid started <"$file"
  [ -n "$pid" ] && [ "$(start_time "$pid")" = "$started" ]
}

# launch <name> <port to check is free> <command...>: start in its own
# session (so the whole process group can be stopped) and record the PID.
launch() {
  local name=$1 port=$2; shift 2
  if running "$name"; then say "$name already running"; return 0; fi
  if [ -n "$port" ] && port_open "$port"; then
    die "port $port (for $name) is taken by a process this stack did not start; set another port (see README)"
  fi
  setsid "$@" >>"$logs/$name.log" 2>&1 </dev/null &
  local pid=$!
  local started=""
  for _ in 1 2 3 4 5 6 7 8 9 10; do started=$(start_time "$pid") && [ -n "$started" ] && break; sleep 0.05; done
  echo "$pid $started" >"$pids/$name.pid"
  say "$name started (pid $pid, log $logs/$name.log)"
}

stop_one() {
  local name=$1 file=$pids/$1.pid pid started
  [ -f "$file" ] || return 0
  read -r pid started <"$file"
  if running "$name"; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do running "$name" || break; sleep 0.2; done
    if running "$name"; then kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; fi
    say "$name stopped (pid $pid)"
  fi
  rm -f "$file"
}

# --- Postgres ---------------------------------------------------------------
postgres_up() {
  local data=$stack_dir/postgres sock=$stack_dir/postgres-socket
  local pg_ctl; pg_ctl=$(pg_bin pg_ctl)
  mkdir -p "$data" "$sock"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$data" "$sock"; chmod 700 "$data"; fi
  if [ ! -f "$data/PG_VERSION" ]; then
    as_postgres "$(pg_bin initdb)" -D "$data" -U postgres --auth=trust -E UTF8 >>"$logs/postgres-init.log" 2>&1 \
      || die "initdb failed; see $logs/postgres-init.log"
  fi
  if as_postgres "$pg_ctl" -D "$data" status >/dev/null 2>&1; then
    say "postgres already running"
  else
    port_open "$pg_port" && die "port $pg_port (for postgres) is taken; set SLUICE_PG_PORT"
    touch "$logs/postgres.log"
    [ "$(id -u)" = 0 ] && chown postgres: "$logs/postgres.log"
    as_postgres "$pg_ctl" -D "$data" -w -t 60 -l "$logs/postgres.log" \
      -o "-p $pg_port -k $sock -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" start >/dev/null \
      || die "postgres did not start; see $logs/postgres.log"
    say "postgres started on 127.0.0.1:$pg_port"
  fi
  if ! psql -h 127.0.0.1 -p "$pg_port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'sluice'" | grep -q 1; then
    psql -h 127.0.0.1 -p "$pg_port" -U postgres -qc "CREATE DATABASE sluice" >/dev/null
  fi
}

postgres_down() {
  local data=$stack_dir/postgres
  [ -f "$data/postmaster.pid" ] || return 0
  as_postgres "$(pg_bin pg_ctl)" -D "$data" -m fast -w stop >/dev/null 2>&1 && say "postgres stopped" || true
}

# --- A certificate authority of the stack's own -------------------------------
# Servers that speak TLS (ClickHouse's HTTPS port) get a certificate for
# 127.0.0.1 signed by it; clients trust it only when given tls/ca.crt.
tls_dir=$stack_dir/tls

make_test_ca() {
  [ -f "$tls_dir/server.crt" ] && return 0
  if ! command -v openssl >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || die "openssl is missing: apt-get install openssl"
    say "installing openssl from Debian (one time)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssl >>"$logs/apt.log" 2>&1 \
      || { apt-get update -q >>"$logs/apt.log" 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssl >>"$logs/apt.log" 2>&1; } \
      || die "apt-get install openssl failed; see $logs/apt.log"
  fi
  mkdir -p "$tls_dir"
  (
    cd "$tls_dir"
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
      -keyout ca.key -out ca.crt -subj "/CN=Sluice test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    openssl req -newkey rsa:2048 -nodes -sha256 -keyout server.key -out server.csr -subj "/CN=127.0.0.1"
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 3650 \
      -extfile server.ext -out server.crt
    chmod 600 ca.key server.key
  ) >>"$logs/tls.log" 2>&1 || die "making the test CA failed; see $logs/tls.log"
}

# --- ClickHouse (Debian's clickhouse-server) ---------------------------------
clickhouse_up() {
  make_test_ca
  if ! command -v clickhouse-server >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || die "clickhouse-server is missing: apt-get install clickhouse-server clickhouse-client"
    say "installing clickhouse-server from Debian (one time)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q clickhouse-server clickhouse-client >>"$logs/apt.log" 2>&1 \
      || { apt-get update -q >>"$logs/apt.log" 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q clickhouse-server clickhouse-client >>"$logs/apt.log" 2>&1; } \
      || die "apt-get install clickhouse-server failed; see $logs/apt.log"
  fi
  local dir=$stack_dir/clickhouse
  mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas"
  cat >"$dir/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>$logs/clickhouse-server.log</log>
        <errorlog>$logs/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
    </logger>
    <http_port>$ch_http_port</http_port>
    <https_port>$ch_https_port</https_port>
    <tcp_port>$ch_tcp_port</tcp_port>
    <openSSL>
        <server>
            <certificateFile>$tls_dir/server.crt</certificateFile>
            <privateKeyFile>$tls_dir/server.key</privateKeyFile>
            <verificationMode>none</verificationMode>
            <loadDefaultCAFile>false</loadDefaultCAFile>
            <cacheSessions>true</cacheSessions>
            <disableProtocols>sslv2,sslv3,tlsv1,tlsv1_1</disableProtocols>
            <preferServerCiphers>true</preferServerCiphers>
        </server>
    </openSSL>
    <listen_host>127.0.0.1</listen_host>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>200</max_concurrent_queries>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <path>$dir/data/</path>
    <tmp_path>$dir/tmp/</tmp_path>
    <user_files_path>$dir/user_files/</user_files_path>
    <format_schema_path>$dir/format_schemas/</format_schema_path>
    <users_config>$dir/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
</yandex>
XML
  cat >"$dir/users.xml" <<'XML'
<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <allow_experimental_low_cardinality_type>1</allow_experimental_low_cardinality_type>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval><duration>3600</duration><queries>0</queries><errors>0</errors>
            <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval>
        </default>
    </quotas>
</yandex>
XML
  launch clickhouse "$ch_http_port" clickhouse-server --config-file="$dir/config.xml"
  wait_for clickhouse 60 ch_ready
}

ch_ready() { [ "$(curl -fsS "http://127.0.0.1:$ch_http_port/ping" 2>/dev/null)" = "Ok." ]; }

# --- Kafka: the tansu broker ---------------------------------------------------
# Built with SQLite storage as well as memory: tests start brokers of their
# own on durable storage (users that survive a restart, a topic that grows).
tansu_root=$cache_dir/tansu-$tansu_version-libsql
tansu_bin=$tansu_root/bin/tansu

kafka_up() {
  if [ ! -x "$tansu_bin" ]; then
    say "building tansu $tansu_version (one time, ~8 minutes on 2 cores; cached in $cache_dir)"
    cargo install tansu --version "$tansu_version" --locked --features dynostore,libsql \
      --root "$tansu_root" >>"$logs/tansu-build.log" 2>&1 \
      || die "building tansu failed; see $logs/tansu-build.log"
  fi
  launch kafka "$kafka_port" "$tansu_bin" broker \
    --listener-url "tcp://127.0.0.1:$kafka_port" \
    --advertised-listener-url "tcp://127.0.0.1:$kafka_port" \
    --storage-engine memory://tansu/
  wait_for "kafka (tansu)" 30 port_open "$kafka_port"
}

# --- Kinesis: kinesis-mock (npm kinesis-local) --------------------------------
# The emulator enforces an account shard limit (50 by default); tests create a
# stream each, so the limit is lifted.
kinesis_dir=$cache_dir/kinesis-local-$kinesis_local_version/node_modules/kinesis-local

kinesis_up() {
  if [ ! -f "$kinesis_dir/main.js" ]; then
    command -v npm >/dev/null || die "npm is missing: install Node.js 20+"
    say "installing kinesis-local $kinesis_local_version from npm (cached in $cache_dir)"
    npm install --silent --no-audit --no-fund --prefix "$cache_dir/kinesis-local-$kinesis_local_version" \
      --cache "$cache_dir/npm" "kinesis-local@$kinesis_local_version" >>"$logs/npm.log" 2>&1 \
      || die "npm install kinesis-local failed; see $logs/npm.log"
  fi
  mkdir -p "$stack_dir/kinesis"
  (cd "$stack_dir/kinesis" && KINESIS_MOCK_CERT_PATH="$kinesis_dir/server.json" \
    KINESIS_MOCK_PLAIN_PORT=$kinesis_port KINESIS_MOCK_TLS_PORT=$kinesis_tls_port \
    SHARD_LIMIT=${SLUICE_KINESIS_SHARD_LIMIT:-100000} \
    launch kinesis "$kinesis_port" node "$kinesis_dir/main.js")
  wait_for "kinesis emulator" 30 port_open "$kinesis_port"
}

# --- chdb: the ClickHouse engine in-process, behind tests/chdb-front --------------
# Python packages: chdb (the engine), lz4, clickhouse-cityhash (checksums of
# ClickHouse's compressed blocks), and confluent-kafka with its registry
# serializers (the tests' Avro and Protobuf messages are written by them).
# Wheels are kept in $cache_dir/pip so later runs install offline.
chdb_packages=(chdb lz4 clickhouse-cityhash "confluent-kafka[avro,protobuf,schemaregistry]")

chdb_installed() {
  python3 -c "import chdb, lz4.block, lz4.frame, clickhouse_cityhash.cityhash, confluent_kafka.schema_registry.avro, confluent_kafka.schema_registry.protobuf" 2>/dev/null
}

# pip_install <args...>: pip install, also where Debian marks the system
# Python as externally managed (PEP 668).
pip_install() {
  python3 -m pip install --quiet --disable-pip-version-check "$@" >>"$logs/pip.log" 2>&1 && return 0
  grep -q externally-managed "$logs/pip.log" || return 1
  python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "$@" >>"$logs/pip.log" 2>&1
}

chdb_install() {
  chdb_installed && return 0
  mkdir -p "$logs"
  command -v python3 >/dev/null || die "python3 is missing (apt-get install python3)"
  if ! python3 -m pip --version >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || die "pip is missing for python3: apt-get install python3-pip"
    say "installing python3-pip from Debian (one time)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-pip >>"$logs/apt.log" 2>&1 \
      || { apt-get update -q >>"$logs/apt.log" 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-pip >>"$logs/apt.log" 2>&1; } \
      || die "apt-get install python3-pip failed; see $logs/apt.log"
  fi
  local pip_cache=$cache_dir/pip
  mkdir -p "$pip_cache"
  if ! pip_install --no-index --find-links "$pip_cache" "${chdb_packages[@]}"; then
    say "installing ${chdb_packages[*]} for python3 (one time, about 200 MB; wheels cached in $pip_cache)"
    python3 -m pip download --quiet --disable-pip-version-check --dest "$pip_cache" --find-links "$pip_cache" \
      "${chdb_packages[@]}" >>"$logs/pip.log" 2>&1 || die "pip download ${chdb_packages[*]} failed; see $logs/pip.log"
    pip_install --no-index --find-links "$pip_cache" "${chdb_packages[@]}" \
      || die "pip install ${chdb_packages[*]} failed; see $logs/pip.log"
  fi
  chdb_installed || die "chdb is installed but python3 cannot import it; see $logs/pip.log"
}

chdb_up() {
  chdb_install
  mkdir -p "$stack_dir/chdb"
  launch chdb "$chdb_port" python3 "$here/tests/chdb-front/chdb_front.py" --host 127.0.0.1 --port "$chdb_port" \
    --data-dir "$stack_dir/chdb" --user default --password "$chdb_password"
  wait_for "chdb front" 90 chdb_ready
}

chdb_ready() { [ "$(curl -fsS "http://127.0.0.1:$chdb_port/ping" 2>/dev/null)" = "Ok." ]; }

# --- Sluice services ------------------------------------------------------------
services_up() {
  say "building the Sluice services (cargo build --bins)"
  (cd "$here" && cargo build --bins --quiet) || die "cargo build failed"
  local target_dir=${CARGO_TARGET_DIR:-$here/target}
  local key_file=$stack_dir/admin-key
  if [ ! -s "$key_file" ]; then
    # An API key is "<key id>.<secret>"; make dev hands the API its first
    # admin key so it can print it again on every run.
    ( umask 077; printf 'sk%s.%s\n' "$(od -An -N10 -tx1 /dev/urandom | tr -d ' \n')" \
      "$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')" >"$key_file" )
  fi
  export SLUICE_DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/sluice"
  export SLUICE_MASTER_KEY_FILE=$stack_dir/master.key
  export SLUICE_BOOTSTRAP_ADMIN_KEY; SLUICE_BOOTSTRAP_ADMIN_KEY=$(cat "$key_file")
  export SLUICE_API_ADDR=127.0.0.1:$api_port
  # The built web UI (scripts/web.sh build); without it the API serves only
  # the API.
  export SLUICE_WEB_DIR=${SLUICE_WEB_DIR:-$here/web/dist}
  export RUST_LOG=${RUST_LOG:-info}
  launch sluice-api "$api_port" "$target_dir/debug/sluice-api"
  wait_for sluice-api 60 curl -fs -o /dev/null "http://127.0.0.1:$api_port/readyz"
  # The scheduler runs the workers itself (the local fleet runtime): as
  # many as the pipes need, between the bounds; they log into its log and
  # stop with it (same process group).
  SLUICE_FLEET=${SLUICE_FLEET:-local} SLUICE_FLEET_MIN_WORKERS=${SLUICE_FLEET_MIN_WORKERS:-1} \
    SLUICE_FLEET_MAX_WORKERS=${SLUICE_FLEET_MAX_WORKERS:-4} \
    launch sluice-scheduler "" "$target_dir/debug/sluice-scheduler"
  unset SLUICE_BOOTSTRAP_ADMIN_KEY
}

services_down() {
  stop_one sluice-worker
  stop_one sluice-scheduler
  stop_one sluice-api
}

# --- entry points ----------------------------------------------------------------
up() {
  mkdir -p "$logs" "$pids" "$cache_dir"
  chmod 755 "$stack_dir" "$logs"
  local components=("$@")
  [ ${#components[@]} -gt 0 ] || components=(postgres clickhouse kafka kinesis chdb services)
  for component in "${components[@]}"; do
    case $component in
      postgres) postgres_up ;;
      clickhouse) clickhouse_up ;;
      kafka) kafka_up ;;
      kinesis) kinesis_up ;;
      chdb) chdb_up ;;
      services) services_up ;;
      *) die "unknown component $component" ;;
    esac
  done
}

down() {
  [ -d "$pids" ] || { postgres_down; return 0; }
  services_down
  stop_one chdb
  stop_one kinesis
  stop_one kafka
  stop_one clickhouse
  postgres_down
}

status() {
  for name in clickhouse kafka kinesis chdb sluice-api sluice-scheduler sluice-worker; do
    if running "$name"; then echo "$name: running (pid $(cut -d' ' -f1 "$pids/$name.pid"))"; else echo "$name: stopped"; fi
  done
  if [ -f "$stack_dir/postgres/postmaster.pid" ]; then echo "postgres: running (pid $(head -1 "$stack_dir/postgres/postmaster.pid"))"; else echo "postgres: stopped"; fi
}

# stop <component>: stops one component (the fault tests stop ClickHouse).
stop() {
  case ${1:-} in
    postgres) postgres_down ;;
    clickhouse | kafka | kinesis | chdb) stop_one "$1" ;;
    services) services_down ;;
    *) die "unknown component ${1:-}" ;;
  esac
}

# install <component>: install what it needs without starting it (chdb only:
# make test's chdb oracle step needs the Python packages, not the front).
install_only() {
  mkdir -p "$logs" "$cache_dir"
  case ${1:-} in
    chdb) chdb_install ;;
    *) die "install: unknown component ${1:-} (only chdb)" ;;
  esac
}

case ${1:-} in
  up) shift; up "$@" ;;
  stop) shift; stop "$@" ;;
  install) shift; install_only "$@" ;;
  down) down ;;
  status) status ;;
  # Where the tansu CLI is (the README tour creates a topic and produces with it).
  tansu-path) echo "$tansu_bin" ;;
  *) echo "usage: $0 up [postgres|clickhouse|kafka|kinesis|chdb|services...] | stop <component> | install chdb | down | status | tansu-path" >&2; exit 2 ;;
esac
