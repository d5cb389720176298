#!/usr/bin/env bash
# Peak memory (VmHWM) of the proxy under the two expensive-answer shapes: a sortBy over an app
# without sorting whose users are large, and 8 answers of 30 MB read whole at once. Loopback
# only; an upstream in Python serves the pages. Usage: benches/memory.sh
# (env: BIN=target/release/scimgate MAX_BUFFERED=268435456 PORT_BASE=18280)
set -euo pipefail
cd "$(dirname "$0")/.."
PORT_BASE=${PORT_BASE:-18280}
UP=$PORT_BASE SG=$((PORT_BASE + 1)) ADMIN=$((PORT_BASE + 2))
BIN=${BIN:-target/release/scimgate}
[ -x "$BIN" ] || cargo build --release --quiet
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

cat > "$tmp/app.py" <<'PY'
import json, sys, urllib.parse
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
USERS, PAD = 10000, 20000          # 10,000 users of about 20 KB each
BIG = 30 << 20                     # one answer of 30 MB
def user(i, pad):
    return {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": f"u{i}",
            "userName": f"user{i:05}@example.com", "title": "x" * pad}
class App(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        if url.path.endswith("/Users"):
            start, count = int(q.get("startIndex", 1)), int(q.get("count", 100))
            page = [user(i, PAD) for i in range(start - 1, min(start - 1 + count, USERS))]
            doc = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                   "totalResults": USERS, "startIndex": start, "itemsPerPage": len(page), "Resources": page}
        elif "/Users/" in url.path:
            doc = user(0, BIG)
        else:
            self.send_response(404); self.send_header("content-length", "0"); self.end_headers(); return
        body = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("content-type", "application/scim+json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), App).serve_forever()
PY
python3 "$tmp/app.py" "$UP" & pids+=($!)

token=bench-token
cat > "$tmp/scimgate.toml" <<TOML
[server]
listen = "127.0.0.1:$SG"
${MAX_BUFFERED:+max_buffered_bytes = $MAX_BUFFERED}
[admin]
listen = "127.0.0.1:$ADMIN"
[log]
level = "warn"
[[tenant]]
id = "bench"
route = { path_prefix = "/bench" }
upstream = { url = "http://127.0.0.1:$UP/scim/v2", supports = { patch = true, filter = true, sort = false, bulk = false, etag = false, discovery = false } }
auth.bearer = [{ sha256 = "$(printf %s "$token" | sha256sum | cut -d' ' -f1)" }]
TOML

start() {
  "$BIN" serve --config "$tmp/scimgate.toml" > "$tmp/sg.log" 2>&1 & sg=$!; pids+=($sg)
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$SG) 2>/dev/null && break; sleep 0.1; done
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$UP) 2>/dev/null && break; sleep 0.1; done
}
peak() { awk '/VmHWM/ {printf "%d MiB", $2 / 1024}' "/proc/$sg/status"; }
get() { curl -s -o /dev/null -w '%{http_code} ' --max-time 60 -H "Authorization: Bearer $token" "$@"; }

start
echo "at rest: $(peak)"
codes=$(for _ in 1 2 3 4; do get "http://127.0.0.1:$SG/bench/Users?sortBy=userName" & done; wait)
echo "4 sortBy at once over 10,000 users of 20 KB: statuses $codes; peak $(peak)"
kill "$sg"; wait "$sg" 2>/dev/null || true

start
codes=$(for i in 1 2 3 4 5 6 7 8; do get "http://127.0.0.1:$SG/bench/Users/u$i?attributes=userName" & done; wait)
echo "8 answers of 30 MB read whole at once: statuses $codes; peak $(peak)"
