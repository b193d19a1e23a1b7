#!/usr/bin/env bash
# Regenerates crates/store/.sqlx, the query metadata that lets the sqlx macros
# check queries at compile time without a database. Run after changing a
# query or a migration. Starts the dev Postgres if needed.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$here/scripts/stack.sh" up postgres
port=${SLUICE_PG_PORT:-54320}
admin="postgres://postgres@127.0.0.1:$port"
psql "$admin/postgres" -qc "DROP DATABASE IF EXISTS sluice_sqlx_prepare" -c "CREATE DATABASE sluice_sqlx_prepare" >/dev/null
for migration in "$here"/migrations/*.sql; do
  psql "$admin/sluice_sqlx_prepare" -q -v ON_ERROR_STOP=1 -f "$migration" >/dev/null
done
rm -rf "$here/crates/store/.sqlx"
mkdir -p "$here/crates/store/.sqlx"
touch "$here/crates/store/src/lib.rs"
SQLX_OFFLINE=false DATABASE_URL="$admin/sluice_sqlx_prepare" SQLX_OFFLINE_DIR="$here/crates/store/.sqlx" \
  cargo check -p sluice-store --all-targets --quiet
echo "wrote $(ls "$here/crates/store/.sqlx" | wc -l) query files to crates/store/.sqlx"
