#!/usr/bin/env bash
# Instructions per pass-through request, counted by callgrind: repeatable where wall-clock
# figures move by ±10%, so a change of a few percent on the request path shows. The upstream
# is an nginx answering a fixed SCIM User; each binary runs under valgrind twice, for N and
# 5N keep-alive requests from one client, and the difference is divided by 4N, so start-up
# and shutdown drop out. Loopback only.
# Usage: benches/instructions.sh   (env: N=500 BIN=… BASELINE_BIN=… PORT_BASE=18180 IDP=auto
#        TENANT='limits = { rate_per_s = 100000 }')
# IDP sets the tenant's rule pack, to count what stage 6 costs; TENANT adds a line to the
# tenant, to count what a setting costs (limits that are never reached, an attribute policy).
# LOAD_DOCS=1 uses benches/load.sh's documents instead of a 300-byte User: the upstream
# answers benches/load/user.json and each POST sends benches/load/post-body.json (1.5 KB each).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-500}
PORT_BASE=${PORT_BASE:-18180}
UP=$PORT_BASE SG=$((PORT_BASE + 1)) ADMIN=$((PORT_BASE + 2))
command -v nginx >/dev/null && command -v valgrind >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light valgrind >/dev/null
}
BIN=${BIN:-target/release/scimgate}
[ -x "$BIN" ] || cargo build --release --quiet
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

user='{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"2819c223-7f76-453a-919d-413861904646","userName":"bjensen@example.com","name":{"familyName":"Jensen","givenName":"Barbara"},"emails":[{"value":"bjensen@example.com","type":"work","primary":true}],"active":true}'
spc='{"schemas":["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],"patch":{"supported":true},"bulk":{"supported":true},"filter":{"supported":true},"sort":{"supported":true},"etag":{"supported":false},"changePassword":{"supported":false},"authenticationSchemes":[]}'
printf '%s' "$user" > "$tmp/user.json"
if [ -n "${LOAD_DOCS:-}" ]; then
  user=$(<benches/load/user.json)
  user=${user//\\/\\\\} # nginx reads \" and \n in a quoted string as escapes
  cp benches/load/post-body.json "$tmp/user.json"
fi
cat > "$tmp/upstream.conf" <<NGINX
daemon off; worker_processes 1; pid $tmp/up.pid; error_log $tmp/up.err warn;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $tmp/body; proxy_temp_path $tmp/proxy;
  fastcgi_temp_path $tmp/fcgi; uwsgi_temp_path $tmp/uwsgi; scgi_temp_path $tmp/scgi;
  server { listen 127.0.0.1:$UP; keepalive_requests 100000; default_type application/scim+json;
    location / { return 200 '$user'; }
    location = /scim/v2/Users { return 201 '$user'; }
    location = /scim/v2/ServiceProviderConfig { return 200 '$spc'; } } }
NGINX
cat > "$tmp/scimgate.toml" <<TOML
[server]
listen = "127.0.0.1:$SG"
[admin]
listen = "127.0.0.1:$ADMIN"
[log]
level = "warn"
[[tenant]]
id = "bench"
route = { path_prefix = "/bench" }
upstream = { url = "http://127.0.0.1:$UP/scim/v2" }
auth.bearer = [{ sha256 = "$(printf %s bench-token | sha256sum | cut -d' ' -f1)" }]
${IDP:+idp = \"$IDP\"}
${TENANT:-}
TOML
nginx -c "$tmp/upstream.conf" & pids+=($!)

drive() { # method, path, count: keep-alive requests from one client, each checked
  python3 - "$SG" "$1" "$2" "$3" "$tmp/user.json" <<'PY'
import http.client, sys
port, method, path, n, body_file = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
body = open(body_file, 'rb').read() if method == 'POST' else None
c = http.client.HTTPConnection('127.0.0.1', port, timeout=60)
for _ in range(n):
    headers = {'Authorization': 'Bearer bench-token', 'Content-Type': 'application/scim+json'}
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse(); r.read()
    assert r.status in (200, 201), r.status
PY
}

total() { # binary, method, path, count → instructions of the whole run
  local out="$tmp/cg.$RANDOM"
  valgrind --tool=callgrind --callgrind-out-file="$out" "$1" serve --config "$tmp/scimgate.toml" \
    > "$tmp/sg.log" 2>&1 & local pid=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$SG) 2>/dev/null && break; sleep 0.2; done
  drive "$2" "$3" "$4"
  kill -TERM "$pid"; wait "$pid" || true
  awk '/^summary:/ {print $2}' "$out"
}

per_request() { # label, binary, method, path
  local small big
  small=$(total "$2" "$3" "$4" "$N")
  big=$(total "$2" "$3" "$4" $((5 * N)))
  printf '%-28s %8d instructions per request\n' "$1" $(((big - small) / (4 * N)))
}

for bin in "$BIN" ${BASELINE_BIN:+"$BASELINE_BIN"}; do
  per_request "$(basename "$bin") GET /Users/{id}" "$bin" GET /bench/Users/2819c223
  per_request "$(basename "$bin") POST /Users" "$bin" POST /bench/Users
done
