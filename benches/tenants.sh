#!/usr/bin/env bash
# Many tenants: how long `scimgate check`, start-up (until the port answers) and a reload
# (SIGHUP until "configuration reloaded" is logged) take with a generated file of TENANTS
# tenants (examples/many_tenants.rs). Loopback only; prints one line per measurement, RUNS
# times each. Usage: benches/tenants.sh   (env: TENANTS=10000 RUNS=5 SCIMGATE_BIN=...)
set -euo pipefail
cd "$(dirname "$0")/.."
TENANTS=${TENANTS:-10000}
RUNS=${RUNS:-5}
target=${CARGO_TARGET_DIR:-target}
BIN=${SCIMGATE_BIN:-$target/release/scimgate}
[ -n "${SCIMGATE_BIN:-}" ] || cargo build --release --quiet
cargo build --release --quiet --example many_tenants
tmp=$(mktemp -d)
pid=
cleanup() { [ -z "$pid" ] || kill "$pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

"$target/release/examples/many_tenants" --tenants "$TENANTS" > "$tmp/big.toml"
echo "$TENANTS tenants, $(wc -c < "$tmp/big.toml") bytes"
ms() { echo $(( ($2 - $1) / 1000000 )); }

for _ in $(seq "$RUNS"); do
  t0=$(date +%s%N)
  "$BIN" check --config "$tmp/big.toml" > /dev/null
  echo "check: $(ms "$t0" "$(date +%s%N)") ms"
done

# Polls every 2 ms until `$1` (a command) succeeds, for at most 30 s.
until_ok() {
  for _ in $(seq 15000); do eval "$1" && return 0; sleep 0.002; done
  echo "timed out: $1" >&2; return 1
}

for _ in $(seq "$RUNS"); do
  t0=$(date +%s%N)
  "$BIN" serve --config "$tmp/big.toml" > "$tmp/log" 2>&1 &
  pid=$!
  until_ok 'grep -q "\"listening\"" "$tmp/log"'
  addr=$(grep -o '"addr":"[^"]*"' "$tmp/log" | head -1 | cut -d'"' -f4)
  until_ok "curl -s -o /dev/null http://$addr/t00000/Users"
  echo "serve: $(ms "$t0" "$(date +%s%N)") ms until the port answers"
  for _ in 1 2 3; do
    n=$(grep -c 'configuration reloaded' "$tmp/log" || true)
    t0=$(date +%s%N)
    kill -HUP "$pid"
    until_ok '[ "$(grep -c "configuration reloaded" "$tmp/log")" -gt "$n" ]'
    echo "reload: $(ms "$t0" "$(date +%s%N)") ms until logged"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
done
