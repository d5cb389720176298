#!/usr/bin/env bash
# What the audit log costs a write-heavy load: POST /Users through scimgate without [audit] and
# with it (a line per create, written and fdatasync'd before the answer), both in front of the
# same upstream (an nginx answering 201 with a fixed SCIM User). scimgate on CPU 0, the upstream
# and wrk on CPU 1. Loopback only; every run is bounded by DURATION.
# Usage: benches/audit.sh   (env: DURATION=10s CONNS=64 PORT_BASE=18180 AUDIT_DIR=<folder>)
# AUDIT_DIR puts the audit file on another file system (default: a temporary folder).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
PORT_BASE=${PORT_BASE:-18180}
UP=$PORT_BASE PLAIN=$((PORT_BASE + 1)) AUDITED=$((PORT_BASE + 2))
PLAIN_ADMIN=$((PORT_BASE + 3)) AUDITED_ADMIN=$((PORT_BASE + 4))

if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light wrk >/dev/null
fi
BIN=${SCIMGATE_BIN:-target/release/scimgate}
[ -n "${SCIMGATE_BIN:-}" ] || cargo build --release --quiet
tmp=$(mktemp -d)
AUDIT_DIR=${AUDIT_DIR:-$tmp}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

user='{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"2819c223-7f76-453a-919d-413861904646","externalId":"bjensen","userName":"bjensen@example.com","name":{"formatted":"Ms. Barbara J Jensen III","familyName":"Jensen","givenName":"Barbara"},"emails":[{"value":"bjensen@example.com","type":"work","primary":true}],"active":true,"meta":{"resourceType":"User","created":"2010-01-23T04:56:22Z","lastModified":"2011-05-13T04:42:34Z","version":"W/\"3694e05e9dff591\"","location":"https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646"}}'
spc='{"schemas":["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],"patch":{"supported":true},"bulk":{"supported":true,"maxOperations":1000,"maxPayloadSize":1048576},"filter":{"supported":true,"maxResults":200},"changePassword":{"supported":false},"sort":{"supported":true},"etag":{"supported":false},"authenticationSchemes":[]}'

cat > "$tmp/upstream.conf" <<NGINX
daemon off; worker_processes 1; pid $tmp/up.pid; error_log $tmp/up.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $tmp/body; proxy_temp_path $tmp/proxy;
  fastcgi_temp_path $tmp/fcgi; uwsgi_temp_path $tmp/uwsgi; scgi_temp_path $tmp/scgi;
  server { listen 127.0.0.1:$UP; keepalive_requests 100000;
    default_type application/scim+json;
    location = /scim/v2/Users { return 201 '$user'; }
    location = /scim/v2/ServiceProviderConfig { return 200 '$spc'; }
    location / { return 200 '$user'; } }
}
NGINX

token=bench-token
config() { # listen port, admin port, extra
  cat <<TOML
[server]
listen = "127.0.0.1:$1"
[admin]
listen = "127.0.0.1:$2"
[log]
format = "json"
level = "warn"
$3
[[tenant]]
id = "bench"
route = { path_prefix = "/bench" }
upstream = { url = "http://127.0.0.1:$UP/scim/v2" }
auth.bearer = [{ sha256 = "$(printf %s "$token" | sha256sum | cut -d' ' -f1)" }]
TOML
}
head -c 32 /dev/urandom > "$tmp/audit.key"
config "$PLAIN" "$PLAIN_ADMIN" "" > "$tmp/plain.toml"
config "$AUDITED" "$AUDITED_ADMIN" "[audit]
path = \"$AUDIT_DIR/bench-audit.log\"
key_file = \"$tmp/audit.key\"" > "$tmp/audited.toml"
rm -f "$AUDIT_DIR"/bench-audit.log*

taskset -c 1 nginx -c "$tmp/upstream.conf" & pids+=($!)
taskset -c 0 "$BIN" serve --config "$tmp/plain.toml" > "$tmp/plain.log" & pids+=($!)
taskset -c 0 "$BIN" serve --config "$tmp/audited.toml" > "$tmp/audited.log" & audited_pid=$!; pids+=($audited_pid)
for port in $UP $PLAIN $AUDITED; do
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done

post_lua="$tmp/post.lua"
printf 'wrk.method = "POST"\nwrk.body = [[%s]]\nwrk.headers["Content-Type"] = "application/scim+json"\n' "$user" > "$post_lua"

run() { # label, url, [extra wrk args]
  local label=$1 url=$2; shift 2
  local out
  out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"$DURATION" --latency -H "Authorization: Bearer $token" "$@" "$url")
  printf '%-30s %10s req/s   p50 %8s   p99 %8s   non-2xx %s\n' "$label" \
    "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
    "$(awk '$1=="50%" {print $2}' <<<"$out")" "$(awk '$1=="99%" {print $2}' <<<"$out")" \
    "$(awk '/Non-2xx/ {print $5}' <<<"$out" | grep . || echo 0)"
}

echo "wrk: 1 thread, $CONNS connections, $DURATION per run; scimgate on CPU 0, upstream and wrk on CPU 1"
echo "audit file on: $(df -T "$AUDIT_DIR" | awk 'NR==2 {print $2}') ($AUDIT_DIR)"
run "POST /Users without [audit]" "http://127.0.0.1:$PLAIN/bench/Users" -s "$post_lua"
run "POST /Users with [audit]" "http://127.0.0.1:$AUDITED/bench/Users" -s "$post_lua"
run "POST /Users without [audit]" "http://127.0.0.1:$PLAIN/bench/Users" -s "$post_lua"
run "POST /Users with [audit]" "http://127.0.0.1:$AUDITED/bench/Users" -s "$post_lua"
metrics=$(curl -s "http://127.0.0.1:$AUDITED_ADMIN/metrics")
echo "audit lines written: $(awk '/^scimgate_audit_lines_total/ {print $2}' <<<"$metrics"), write failures: $(awk '/^scimgate_audit_write_failures_total/ {print $2}' <<<"$metrics")"
echo "audit bytes: $(cat "$AUDIT_DIR"/bench-audit.log* | wc -c) in $(ls "$AUDIT_DIR"/bench-audit.log* | wc -l) file(s)"
kill "$audited_pid"; wait "$audited_pid" 2>/dev/null || true
"$BIN" audit verify --key-file "$tmp/audit.key" "$AUDIT_DIR"/bench-audit.log* | head -1
rm -f "$AUDIT_DIR"/bench-audit.log*
