#!/usr/bin/env bash
# Pass-through load: scimgate and nginx, each on CPU 0, proxying the same upstream (an nginx
# that answers a fixed SCIM User) on CPU 1, driven by wrk on CPU 1. Loopback only; every run
# is bounded by DURATION. Usage: benches/load.sh   (env: DURATION=10s CONNS=64 PORT_BASE=18080)
# BASELINE_BIN=path/to/an/older/scimgate adds its rows to the same run, for before/after figures.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
PORT_BASE=${PORT_BASE:-18080}
UP=$PORT_BASE NGX=$((PORT_BASE + 1)) SG=$((PORT_BASE + 2)) ADMIN=$((PORT_BASE + 3))
BASE=$((PORT_BASE + 4)) BASE_ADMIN=$((PORT_BASE + 5))

if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light wrk >/dev/null
fi
BIN=${SCIMGATE_BIN:-target/release/scimgate}
[ -n "${SCIMGATE_BIN:-}" ] || cargo build --release --quiet
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

user='{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"2819c223-7f76-453a-919d-413861904646","externalId":"bjensen","userName":"bjensen@example.com","name":{"formatted":"Ms. Barbara J Jensen III","familyName":"Jensen","givenName":"Barbara"},"emails":[{"value":"bjensen@example.com","type":"work","primary":true}],"active":true,"meta":{"resourceType":"User","created":"2010-01-23T04:56:22Z","lastModified":"2011-05-13T04:42:34Z","version":"W/\"3694e05e9dff591\"","location":"https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646"}}'
# A complete app: it announces its abilities, so scimgate passes everything through.
spc='{"schemas":["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],"patch":{"supported":true},"bulk":{"supported":true,"maxOperations":1000,"maxPayloadSize":1048576},"filter":{"supported":true,"maxResults":200},"changePassword":{"supported":false},"sort":{"supported":true},"etag":{"supported":false},"authenticationSchemes":[]}'

nginx_conf() { # name, body of the server block
  cat > "$tmp/$1.conf" <<NGINX
daemon off; worker_processes 1; pid $tmp/$1.pid; error_log $tmp/$1.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $tmp/$1-body; proxy_temp_path $tmp/$1-proxy;
  fastcgi_temp_path $tmp/$1-fcgi; uwsgi_temp_path $tmp/$1-uwsgi; scgi_temp_path $tmp/$1-scgi;
  upstream app { server 127.0.0.1:$UP; keepalive 128; }
  $2
}
NGINX
}
nginx_conf upstream "server { listen 127.0.0.1:$UP; keepalive_requests 100000;
  default_type application/scim+json;
  location / { return 200 '$user'; }
  location = /scim/v2/Users { return 201 '$user'; }
  location = /scim/v2/ServiceProviderConfig { return 200 '$spc'; } }"
nginx_conf proxy "server { listen 127.0.0.1:$NGX; keepalive_requests 100000;
  location /bench/ { proxy_pass http://app/scim/v2/; proxy_http_version 1.1;
    proxy_set_header Connection \"\"; proxy_set_header X-Forwarded-For \$remote_addr; } }"

token=bench-token
cat > "$tmp/scimgate.toml" <<TOML
[server]
listen = "127.0.0.1:$SG"
[admin]
listen = "127.0.0.1:$ADMIN"
[log]
format = "json"
level = "warn"
[[tenant]]
id = "bench"
route = { path_prefix = "/bench" }
upstream = { url = "http://127.0.0.1:$UP/scim/v2" }
auth.bearer = [{ sha256 = "$(printf %s "$token" | sha256sum | cut -d' ' -f1)" }]
TOML

if [ -n "${BASELINE_BIN:-}" ]; then
  sed -e "s/127.0.0.1:$SG\"/127.0.0.1:$BASE\"/" -e "s/127.0.0.1:$ADMIN\"/127.0.0.1:$BASE_ADMIN\"/" \
    "$tmp/scimgate.toml" > "$tmp/baseline.toml"
  taskset -c 0 "$BASELINE_BIN" serve --config "$tmp/baseline.toml" > "$tmp/baseline.log" & base_pid=$!; pids+=($base_pid)
fi
taskset -c 1 nginx -c "$tmp/upstream.conf" & pids+=($!)
taskset -c 0 nginx -c "$tmp/proxy.conf" & pids+=($!)
taskset -c 0 "$BIN" serve --config "$tmp/scimgate.toml" > "$tmp/scimgate.log" & sg_pid=$!; pids+=($sg_pid)
for port in $UP $NGX $SG ${BASELINE_BIN:+$BASE}; do
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done

post_lua="$tmp/post.lua"
printf 'wrk.method = "POST"\nwrk.body = [[%s]]\nwrk.headers["Content-Type"] = "application/scim+json"\n' "$user" > "$post_lua"

run() { # label, url, [extra wrk args]
  local label=$1 url=$2; shift 2
  local out
  out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"$DURATION" --latency -H "Authorization: Bearer $token" "$@" "$url")
  printf '%-34s %10s req/s   p50 %8s   p99 %8s\n' "$label" \
    "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
    "$(awk '$1=="50%" {print $2}' <<<"$out")" "$(awk '$1=="99%" {print $2}' <<<"$out")"
}

echo "wrk: 1 thread, $CONNS connections, $DURATION per run; proxies on CPU 0, upstream and wrk on CPU 1"
run "upstream direct        GET" "http://127.0.0.1:$UP/scim/v2/Users/2819c223"
run "nginx     -> upstream  GET" "http://127.0.0.1:$NGX/bench/Users/2819c223"
run "scimgate  -> upstream  GET" "http://127.0.0.1:$SG/bench/Users/2819c223"
[ -z "${BASELINE_BIN:-}" ] || run "baseline  -> upstream  GET" "http://127.0.0.1:$BASE/bench/Users/2819c223"
run "nginx     -> upstream  POST" "http://127.0.0.1:$NGX/bench/Users" -s "$post_lua"
run "scimgate  -> upstream  POST" "http://127.0.0.1:$SG/bench/Users" -s "$post_lua"
[ -z "${BASELINE_BIN:-}" ] || run "baseline  -> upstream  POST" "http://127.0.0.1:$BASE/bench/Users" -s "$post_lua"
rss=$(awk '/VmRSS/ {print $2}' "/proc/$sg_pid/status")
echo "scimgate RSS after the runs: $((rss / 1024)) MiB"
if [ -n "${BASELINE_BIN:-}" ]; then
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$base_pid/status")
  echo "baseline RSS after the runs: $((rss / 1024)) MiB"
fi
