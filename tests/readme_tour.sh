#!/usr/bin/env bash
# Runs the README's five-minute tour exactly as written (the shell blocks
# between the tour markers) against the Sluice services, so the README
# cannot drift from the product. Expects scripts/stack.sh's environment
# (SLUICE_STACK_DIR, ports); starts the services and writes the env file the
# tour sources.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
stack_dir=${SLUICE_STACK_DIR:?}

"$here/scripts/stack.sh" up services
cat >"$stack_dir/env" <<ENV
export SLUICE_API=http://127.0.0.1:${SLUICE_API_PORT:?}
export SLUICE_KEY=$(cat "$stack_dir/admin-key")
export SLUICE_CLICKHOUSE=http://127.0.0.1:${SLUICE_CH_HTTP_PORT:?}
export SLUICE_KAFKA=127.0.0.1:${SLUICE_KAFKA_PORT:?}
export SLUICE_TANSU=$("$here/scripts/stack.sh" tansu-path)
ENV

script=$(awk '/<!-- tour:start -->/{on=1; next} /<!-- tour:end -->/{on=0} on' "$here/README.md" \
  | awk '/^```sh$/{on=1; next} /^```$/{on=0} on' \
  | sed "s|\. \.dev/env|. $stack_dir/env|")
[ -n "$script" ] || { echo "no tour found in README.md" >&2; exit 1; }

output=$(cd "$here" && bash -euo pipefail -c "$script" 2>&1) || {
  echo "$output" >&2
  echo "README tour failed" >&2
  exit 1
}
echo "$output" | tail -n 20
# The tour ends by reading the pipe's status: it must show the started pipe.
grep -q '"desiredState": "running"' <<<"$output" || { echo "the tour's pipe is not running" >&2; exit 1; }
grep -q '"ok": true' <<<"$output" || { echo "the tour's destination check failed" >&2; exit 1; }
# The orders produced after the pipe started (and after its topic existed) landed.
grep -q '^orders landed: 3$' <<<"$output" || { echo "the tour's orders did not land" >&2; exit 1; }
echo "README tour: ok"
