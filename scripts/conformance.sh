#!/usr/bin/env bash
# Runs the SCIM 2.0 conformance suite scim2-tester (through scim2-cli) against scimgate in front
# of its embedded in-memory upstream, on loopback only, and exits non-zero if any check errors.
#
#   scripts/conformance.sh            # build with cargo, then test
#   SCIMGATE_BIN=path/to/scimgate scripts/conformance.sh
#   CONFORMANCE_VERBOSE=1 scripts/conformance.sh   # also print each failing check's data
#
# The full report and the proxy's log are kept in a temp folder whose path is printed at the end.
set -euo pipefail

# Versions verified against this repository; bump together and re-run.
SCIM2_CLI_VERSION=0.6.0
SCIM2_TESTER_VERSION=0.5.2
SCIM2_CLIENT_VERSION=0.13.2
SCIM2_MODELS_VERSION=0.12.3

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv-conformance"
TOKEN="conformance-token"
SUITE_TIMEOUT=${CONFORMANCE_TIMEOUT:-300}

log() { printf 'conformance: %s\n' "$*" >&2; }

# 1. The suite, in its own venv, at pinned versions.
if [[ ! -x "$VENV/bin/scim2" ]]; then
    log "creating $VENV"
    timeout 120 python3 -m venv "$VENV"
    timeout 600 "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "scim2-cli==$SCIM2_CLI_VERSION" "scim2-tester==$SCIM2_TESTER_VERSION" \
        "scim2-client==$SCIM2_CLIENT_VERSION" "scim2-models==$SCIM2_MODELS_VERSION"
fi

# 2. The binary: given, or built.
if [[ -n "${SCIMGATE_BIN:-}" ]]; then
    BIN=$SCIMGATE_BIN
else
    log "building scimgate"
    (cd "$ROOT" && timeout 1800 cargo build --quiet --bin scimgate)
    BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/scimgate"
fi
[[ -x "$BIN" ]] || { log "no executable at $BIN"; exit 2; }

# 3. A config with one memory tenant on free loopback ports.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/scimgate-conformance.XXXXXX")
HASH=$(printf '%s' "$TOKEN" | sha256sum | cut -d' ' -f1)
cat >"$WORK/scimgate.toml" <<EOF
[server]
listen = "127.0.0.1:0"

[admin]
listen = "127.0.0.1:0"

[log]
format = "json"
level = "info"

[[tenant]]
id = "demo"
route = { path_prefix = "/demo" }
upstream = { url = "memory:" }
auth.bearer = [{ sha256 = "$HASH" }]
EOF

# 4. Start the proxy; stop it whatever happens next.
"$BIN" serve --config "$WORK/scimgate.toml" >"$WORK/proxy.log" 2>&1 &
PID=$!
cleanup() {
    if kill -0 "$PID" 2>/dev/null; then
        kill -TERM "$PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$PID" 2>/dev/null || true
    fi
    wait "$PID" 2>/dev/null || true
}
trap cleanup EXIT

ADDR=""
for _ in $(seq 100); do
    LINE=$(grep -m1 '"listening"' "$WORK/proxy.log" || true)
    if [[ -n "$LINE" ]]; then
        ADDR=$(jq -r '.addr' <<<"$LINE")
        break
    fi
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
done
if [[ -z "$ADDR" || "$ADDR" == null ]]; then
    log "proxy did not start; its log:"
    cat "$WORK/proxy.log" >&2
    exit 2
fi
case "$ADDR" in
127.*) ;;
*) log "refusing non-loopback address $ADDR"; exit 2 ;;
esac
URL="http://$ADDR/demo"
log "proxy listening on $ADDR (log: $WORK/proxy.log)"

# 5. The suite. scim2-cli exits 1 on anything but SUCCESS (SKIPPED included), so its exit code
#    is not ours: we count statuses ourselves. The token goes by environment, not argv.
VERBOSE=()
[[ -n "${CONFORMANCE_VERBOSE:-}" ]] && VERBOSE=(--verbose)
set +e
SCIM_CLI_HEADERS="Authorization: Bearer $TOKEN" NO_COLOR=1 \
    timeout "$SUITE_TIMEOUT" "$VENV/bin/scim2" -u "$URL" test "${VERBOSE[@]}" >"$WORK/report.txt" 2>&1
RC=$?
set -e
cat "$WORK/report.txt"
if ((RC != 0 && RC != 1)); then
    log "scim2 test failed to run (exit $RC)"
    exit 2
fi

# 6. Summary: one count per status scim2-tester knows.
declare -A COUNT
TOTAL=0
for s in SUCCESS COMPLIANT ACCEPTABLE DEVIATION ERROR CRITICAL SKIPPED; do
    COUNT[$s]=$(grep -cE "^$s " "$WORK/report.txt" || true)
    TOTAL=$((TOTAL + COUNT[$s]))
done
echo
echo "conformance: $TOTAL checks: ${COUNT[SUCCESS]} SUCCESS, ${COUNT[COMPLIANT]} COMPLIANT," \
    "${COUNT[ACCEPTABLE]} ACCEPTABLE, ${COUNT[DEVIATION]} DEVIATION, ${COUNT[ERROR]} ERROR," \
    "${COUNT[CRITICAL]} CRITICAL, ${COUNT[SKIPPED]} SKIPPED"
echo "conformance: report and proxy log in $WORK"

if ((TOTAL == 0)); then
    log "no check ran"
    exit 2
fi
((COUNT[ERROR] + COUNT[CRITICAL] == 0))
