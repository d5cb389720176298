#!/usr/bin/env bash
# Runs the SCIM 2.0 conformance suite scim2-tester (through scim2-cli) against scimgate, on
# loopback only, and exits non-zero if any check errors. The upstream behind the proxy is the
# embedded memory store (`memory`, the default) or the partial legacy app of examples/
# (`legacy`), whose gaps the proxy fills.
#
#   scripts/conformance.sh [memory|legacy]   # build with cargo, then test
#   SCIMGATE_BIN=path/to/scimgate LEGACY_BIN=path/to/legacy_app scripts/conformance.sh legacy
#   CONFORMANCE_VERBOSE=1 scripts/conformance.sh   # also print each failing check's data
#   IDP=auto scripts/conformance.sh memory     # the tenant normalizes requests with its IdP pack
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
TARGET=${1:-memory}
case "$TARGET" in memory | legacy) ;; *) echo "usage: $0 [memory|legacy]" >&2; exit 2 ;; esac
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

# 2. The binaries: given, or built.
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
if [[ -n "${SCIMGATE_BIN:-}" ]]; then
    BIN=$SCIMGATE_BIN
else
    log "building scimgate"
    (cd "$ROOT" && timeout 1800 cargo build --quiet --bin scimgate)
    BIN="$TARGET_DIR/debug/scimgate"
fi
[[ -x "$BIN" ]] || { log "no executable at $BIN"; exit 2; }

# The address in the first line of FILE that matches PATTERN, waited for up to 10 s.
wait_for_addr() { # file, pid, extract-command
    for _ in $(seq 100); do
        local addr
        addr=$("$3" <"$1" || true)
        if [[ -n "$addr" ]]; then echo "$addr"; return; fi
        kill -0 "$2" 2>/dev/null || break
        sleep 0.1
    done
    log "no address from pid $2; its output:"
    cat "$1" >&2
    exit 2
}
proxy_addr() { python3 -c 'import json,sys
for l in sys.stdin:
    if "\"listening\"" in l: print(json.loads(l)["addr"]); break'; }
legacy_addr() { sed -n 's|^legacy app listening on http://\([^/]*\).*|\1|p' | head -n1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/scimgate-conformance.XXXXXX")
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT

UPSTREAM='url = "memory:"'
if [[ "$TARGET" == legacy ]]; then
    if [[ -n "${LEGACY_BIN:-}" ]]; then
        LEGACY=$LEGACY_BIN
    else
        log "building the legacy app"
        (cd "$ROOT" && timeout 1800 cargo build --quiet --example legacy_app)
        LEGACY="$TARGET_DIR/debug/examples/legacy_app"
    fi
    LEGACY_TOKEN=legacy-secret "$LEGACY" --listen 127.0.0.1:0 >"$WORK/legacy.log" 2>&1 &
    PIDS+=($!)
    LEGACY_ADDR=$(wait_for_addr "$WORK/legacy.log" "$!" legacy_addr)
    export LEGACY_TOKEN=legacy-secret
    UPSTREAM="url = \"http://$LEGACY_ADDR/scim/v2\", token_env = \"LEGACY_TOKEN\""
fi

# 3. A config with one tenant on free loopback ports.
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
upstream = { $UPSTREAM }
auth.bearer = [{ sha256 = "$HASH" }]
${IDP:+idp = \"$IDP\"}
EOF

# 4. Start the proxy; it is stopped on exit whatever happens next.
"$BIN" serve --config "$WORK/scimgate.toml" >"$WORK/proxy.log" 2>&1 &
PIDS+=($!)
ADDR=$(wait_for_addr "$WORK/proxy.log" "$!" proxy_addr)
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
echo "conformance ($TARGET): $TOTAL checks: ${COUNT[SUCCESS]} SUCCESS, ${COUNT[COMPLIANT]} COMPLIANT," \
    "${COUNT[ACCEPTABLE]} ACCEPTABLE, ${COUNT[DEVIATION]} DEVIATION, ${COUNT[ERROR]} ERROR," \
    "${COUNT[CRITICAL]} CRITICAL, ${COUNT[SKIPPED]} SKIPPED"
echo "conformance: report and proxy log in $WORK"

if ((TOTAL == 0)); then
    log "no check ran"
    exit 2
fi
((COUNT[ERROR] + COUNT[CRITICAL] == 0))
