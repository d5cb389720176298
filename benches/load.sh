#!/usr/bin/env bash
# Pass-through load: scimgate, nginx and HAProxy proxying the same upstream (an nginx that
# answers a fixed 1.5 KB SCIM User), driven by wrk, in two core layouts, printed as one table.
#
#   layout A  the proxies on CPU 0; the upstream and wrk on CPU 1
#   layout B  the upstream and the proxy under test share CPU 1; wrk on CPU 0
#
# Each cell is the median of RUNS runs of DURATION; the CPU columns are the user and system
# time the serving process spent per request (from /proc/PID/stat), and "x nginx" compares a
# row with nginx's row of the same kind (GET, POST or TLS GET) at the same connection count.
# Loopback only; every run is bounded in time; every process is stopped on exit.
#
# Usage: benches/load.sh
#   env: DURATION=10s RUNS=3 CONNS="32 256" LAYOUTS="A B" PORT_BASE=18080
#        SCIMGATE_BIN=path   use this binary instead of building one
#        BASELINE_BIN=path   an older scimgate whose GET, POST and rules + policy rows are added,
#                            for before/after
#        FLOOR_BIN=path      examples/hyper_floor built (cargo build --release --example
#                            hyper_floor): its GET and POST rows are hyper alone, no scimgate work
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
RUNS=${RUNS:-3}
read -r -a CONNS <<<"${CONNS:-32 256}"
read -r -a LAYOUTS <<<"${LAYOUTS:-A B}"
PORT_BASE=${PORT_BASE:-18080}
UP=$PORT_BASE NGX=$((PORT_BASE + 1)) NGX_TLS=$((PORT_BASE + 2)) HAP=$((PORT_BASE + 3))
HAP_TLS=$((PORT_BASE + 4)) SG=$((PORT_BASE + 5)) SG_ADMIN=$((PORT_BASE + 6))
SG_TLS=$((PORT_BASE + 7)) SG_TLS_ADMIN=$((PORT_BASE + 8)) BASE=$((PORT_BASE + 9))
BASE_ADMIN=$((PORT_BASE + 10)) FLOOR=$((PORT_BASE + 11))
TOKEN=bench-token
ID=2819c223-7f76-453a-919d-413861904646
HZ=$(getconf CLK_TCK)

# ---------------------------------------------------------------------------------------------
# Helpers

die() { echo "load.sh: $*" >&2; exit 1; }

wait_port() { # port: true once something accepts on 127.0.0.1:port (5 s at most)
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

seconds() { # a wrk duration (10s, 2m, 1h) in seconds
  local n=${1%[smh]}
  case $1 in *m) echo $((n * 60)) ;; *h) echo $((n * 3600)) ;; *) echo "$n" ;; esac
}

cpu_ticks() { # pid: "utime stime" in clock ticks (fields 14 and 15 of /proc/PID/stat)
  sed 's/.*) //' "/proc/$1/stat" | awk '{print $12, $13}' # fields counted after "(comm) "
}

# pid: "peak/now" resident MiB. The peak (VmHWM) is what the process held while it served the
# most connections; now (VmRSS) depends on how long ago that was, as the allocator gives back
# freed memory lazily.
rss_mib() { awk '/^VmHWM/ {p = $2} /^VmRSS/ {n = $2} END {printf "%.1f/%.1f", p / 1024, n / 1024}' "/proc/$1/status"; }

to_ms() { # a wrk latency (812.00us, 1.23ms, 1.02s) in milliseconds
  awk -v v="$1" 'BEGIN { n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    f = (u == "us") ? 0.001 : (u == "s") ? 1000 : (u == "m") ? 60000 : 1; printf "%.3f", n * f }'
}

median() { # numbers: their median (the mean of the middle two for an even count)
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

started=()
start() { # name cpu port command...: starts command pinned to cpu, waits for its port
  local name=$1 cpu=$2 port=$3; shift 3
  taskset -c "$cpu" "$@" >>"$tmp/$name.out" 2>&1 &
  PID[$name]=$!; started+=("$!")
  wait_port "$port" || die "$name did not listen on $port; its output: $(cat "$tmp/$name.out")"
}

stop_all() { # stops every server started, SIGKILL after 5 s
  local p
  for p in "${started[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${started[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  started=()
}

# ---------------------------------------------------------------------------------------------
# Configuration of the servers

nginx_conf() { # name, server blocks
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

haproxy_conf() {
  cat > "$tmp/haproxy.cfg" <<HAPROXY
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  option forwardfor
  http-reuse always
  timeout connect 3s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 60s
frontend bench
  bind 127.0.0.1:$HAP
  bind 127.0.0.1:$HAP_TLS ssl crt $tmp/cert+key.pem
  default_backend app
backend app
  http-request replace-path /bench/(.*) /scim/v2/\1
  server upstream 127.0.0.1:$UP
HAPROXY
}

# rustls warns, once per handshake, that wrk sends the IP address as SNI: not worth a log line.
scimgate_conf() { # file listen admin [tls table] [extra tenants]
  cat > "$1" <<TOML
[server]
listen = "127.0.0.1:$2"
max_connections_per_address = 4096
${4:-}
[admin]
listen = "127.0.0.1:$3"
[log]
format = "json"
level = "warn,rustls=error"
[[tenant]]
id = "bench"
route = { path_prefix = "/bench" }
upstream = { url = "http://127.0.0.1:$UP/scim/v2" }
auth.bearer = [{ sha256 = "$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)" }]
${5:-}
TOML
}

# ---------------------------------------------------------------------------------------------
# Setup

for tool in nginx haproxy wrk openssl; do
  command -v "$tool" >/dev/null && continue
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq nginx-light haproxy wrk openssl >/dev/null
  break
done
BIN=${SCIMGATE_BIN:-target/release/scimgate}
[ -n "${SCIMGATE_BIN:-}" ] || cargo build --release --quiet
tmp=$(mktemp -d)
declare -A PID=() RPS=() P99=() USR=() SYS=() BAD=() RSS=()
cleanup() { stop_all; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
cat "$tmp/cert.pem" "$tmp/key.pem" > "$tmp/cert+key.pem"

# The upstream's answer, and the body every POST row sends: the same User with "active" as the
# string "true" (the rules row's pack types it) and an enterprise employeeNumber (its policy
# withholds it, from the request and from the answer).
user=$(<benches/load/user.json)
post_body=$(<benches/load/post-body.json)
# A complete app: it announces its abilities, so scimgate fills no gap and passes everything
# through; /Schemas lists no extension of its own.
spc='{"schemas":["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],"patch":{"supported":true},"bulk":{"supported":true,"maxOperations":1000,"maxPayloadSize":1048576},"filter":{"supported":true,"maxResults":200},"changePassword":{"supported":false},"sort":{"supported":true},"etag":{"supported":false},"authenticationSchemes":[]}'
schemas='{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":0,"Resources":[]}'
nginx_str() { echo "${1//\\/\\\\}"; } # nginx reads \" and \n in a quoted string as escapes

nginx_conf upstream "server { listen 127.0.0.1:$UP; keepalive_requests 1000000;
  default_type application/scim+json;
  location / { return 200 '$(nginx_str "$user")'; }
  location = /scim/v2/Users { return 201 '$(nginx_str "$user")'; }
  location = /scim/v2/Schemas { return 200 '$schemas'; }
  location = /scim/v2/ServiceProviderConfig { return 200 '$spc'; } }"
proxy_location="location /bench/ { proxy_pass http://app/scim/v2/; proxy_http_version 1.1;
    proxy_set_header Connection \"\"; proxy_set_header X-Forwarded-For \$remote_addr; }"
nginx_conf proxy "server { listen 127.0.0.1:$NGX; keepalive_requests 1000000; $proxy_location }
  server { listen 127.0.0.1:$NGX_TLS ssl; keepalive_requests 1000000;
    ssl_certificate $tmp/cert.pem; ssl_certificate_key $tmp/key.pem; $proxy_location }"
haproxy_conf
# One scimgate serves the plain tenant and a second one, "rules", on the same upstream with the
# Okta rule pack (the generic fixes: drop read-only id and meta, type "active") and an attribute
# policy that withholds employeeNumber both ways, so each body is read, rewritten and written.
rules_tenant="[[tenant]]
id = \"rules\"
route = { path_prefix = \"/rules\" }
upstream = { url = \"http://127.0.0.1:$UP/scim/v2\" }
auth.bearer = [{ sha256 = \"$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)\" }]
idp = \"okta\"
attributes = { deny = [\"employeeNumber\"] }"
scimgate_conf "$tmp/scimgate.toml" "$SG" "$SG_ADMIN" "" "$rules_tenant"
# TLS is a property of scimgate's listener, so the TLS row has a scimgate of its own.
scimgate_conf "$tmp/scimgate-tls.toml" "$SG_TLS" "$SG_TLS_ADMIN" \
  "tls = { cert = \"$tmp/cert.pem\", key = \"$tmp/key.pem\" }"
if [ -n "${BASELINE_BIN:-}" ]; then
  scimgate_conf "$tmp/baseline.toml" "$BASE" "$BASE_ADMIN" "" "$rules_tenant"
  # An older binary may not know every key of today's file.
  "$BASELINE_BIN" check --config "$tmp/baseline.toml" >/dev/null 2>&1 ||
    sed -i '/^max_connections_per_address/d' "$tmp/baseline.toml"
  "$BASELINE_BIN" check --config "$tmp/baseline.toml" >/dev/null || die "baseline config refused"
fi
"$BIN" check --config "$tmp/scimgate.toml" >/dev/null
"$BIN" check --config "$tmp/scimgate-tls.toml" >/dev/null

post_lua="$tmp/post.lua"
printf 'wrk.method = "POST"\nwrk.body = [==[%s]==]\nwrk.headers["Content-Type"] = "application/scim+json"\n' \
  "$post_body" > "$post_lua"

# ---------------------------------------------------------------------------------------------
# The rows: label | kind (whose nginx row "x nginx" compares with) | serving process | method | URL

ROWS=("upstream direct GET|GET|upstream|GET|http://127.0.0.1:$UP/scim/v2/Users/$ID"
  "nginx GET /Users/{id}|GET|nginx|GET|http://127.0.0.1:$NGX/bench/Users/$ID"
  "HAProxy GET|GET|haproxy|GET|http://127.0.0.1:$HAP/bench/Users/$ID"
  "scimgate GET|GET|scimgate|GET|http://127.0.0.1:$SG/bench/Users/$ID")
[ -z "${BASELINE_BIN:-}" ] || ROWS+=("baseline GET|GET|baseline|GET|http://127.0.0.1:$BASE/bench/Users/$ID")
[ -z "${FLOOR_BIN:-}" ] || ROWS+=("hyper floor GET|GET|floor|GET|http://127.0.0.1:$FLOOR/bench/Users/$ID")
ROWS+=("nginx POST /Users|POST|nginx|POST|http://127.0.0.1:$NGX/bench/Users"
  "HAProxy POST|POST|haproxy|POST|http://127.0.0.1:$HAP/bench/Users"
  "scimgate POST|POST|scimgate|POST|http://127.0.0.1:$SG/bench/Users")
[ -z "${BASELINE_BIN:-}" ] || ROWS+=("baseline POST|POST|baseline|POST|http://127.0.0.1:$BASE/bench/Users")
[ -z "${FLOOR_BIN:-}" ] || ROWS+=("hyper floor POST|POST|floor|POST|http://127.0.0.1:$FLOOR/bench/Users")
ROWS+=("scimgate POST rules+policy|POST|scimgate|POST|http://127.0.0.1:$SG/rules/Users")
[ -z "${BASELINE_BIN:-}" ] || ROWS+=("baseline POST rules+policy|POST|baseline|POST|http://127.0.0.1:$BASE/rules/Users")
ROWS+=(
  "nginx TLS GET|TLS|nginx|GET|https://127.0.0.1:$NGX_TLS/bench/Users/$ID"
  "HAProxy TLS GET|TLS|haproxy|GET|https://127.0.0.1:$HAP_TLS/bench/Users/$ID"
  "scimgate TLS GET|TLS|scimgate-tls|GET|https://127.0.0.1:$SG_TLS/bench/Users/$ID")
declare -A REF=([GET]="nginx GET /Users/{id}" [POST]="nginx POST /Users" [TLS]="nginx TLS GET")

start_servers() { # proxy_cpu upstream_cpu: the whole set, pinned
  local pc=$1 uc=$2
  start upstream "$uc" "$UP" nginx -c "$tmp/upstream.conf"
  start nginx "$pc" "$NGX" nginx -c "$tmp/proxy.conf"
  start haproxy "$pc" "$HAP" haproxy -db -f "$tmp/haproxy.cfg"
  start scimgate "$pc" "$SG" "$BIN" serve --config "$tmp/scimgate.toml"
  start scimgate-tls "$pc" "$SG_TLS" "$BIN" serve --config "$tmp/scimgate-tls.toml"
  [ -z "${BASELINE_BIN:-}" ] || start baseline "$pc" "$BASE" "$BASELINE_BIN" serve --config "$tmp/baseline.toml"
  [ -z "${FLOOR_BIN:-}" ] || start floor "$pc" "$FLOOR" "$FLOOR_BIN" "127.0.0.1:$FLOOR" "127.0.0.1:$UP" /bench/ /scim/v2/
  # nginx's master only starts and watches; its one worker serves.
  PID[upstream]=$(pgrep -P "${PID[upstream]}") PID[nginx]=$(pgrep -P "${PID[nginx]}")
}

probe() { # method url: the row answers 200 or 201 before it is measured
  local code
  if [ "$1" = POST ]; then
    code=$(curl -s --cacert "$tmp/cert.pem" -o "$tmp/probe" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
      -H 'Content-Type: application/scim+json' --data-binary @benches/load/post-body.json "$2")
  else
    code=$(curl -s --cacert "$tmp/cert.pem" -o "$tmp/probe" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$2")
  fi
  case $code in 200 | 201) ;; *) die "$1 $2 answered $code: $(head -c 300 "$tmp/probe")" ;; esac
  if [[ $2 == */rules/* ]] && grep -q employeeNumber "$tmp/probe"; then
    die "the rules tenant's answer still holds the withheld employeeNumber: is its policy on?"
  fi
}

bench() { # layout conns row: one wrk run, its figures appended to the row's cell
  local layout=$1 conns=$2 label kind proc method url extra=() out before after
  IFS='|' read -r label kind proc method url <<<"$3"
  [ "$method" = GET ] || extra=(-s "$post_lua")
  before=$(cpu_ticks "${PID[$proc]}")
  out=$(timeout -k 5 $(($(seconds "$DURATION") + 30)) taskset -c "$WRK_CPU" \
    wrk -t1 -c"$conns" -d"$DURATION" --latency -H "Authorization: Bearer $TOKEN" "${extra[@]}" "$url") ||
    die "wrk failed or overran on $url"
  after=$(cpu_ticks "${PID[$proc]}")
  local key="$layout|$label|$conns" reqs u0 s0 u1 s1
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  [ "${reqs:-0}" -gt 0 ] || die "no request answered on $url: $out"
  RPS[$key]+="$(awk '/^Requests\/sec/ {print $2}' <<<"$out") "
  P99[$key]+="$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")") "
  read -r u0 s0 <<<"$before"; read -r u1 s1 <<<"$after"
  USR[$key]+="$(awk -v t=$((u1 - u0)) -v n="$reqs" -v hz="$HZ" 'BEGIN {print t * 1e6 / hz / n}') "
  SYS[$key]+="$(awk -v t=$((s1 - s0)) -v n="$reqs" -v hz="$HZ" 'BEGIN {print t * 1e6 / hz / n}') "
  # Error answers or socket errors make a row's figures meaningless: flag the cell.
  if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then BAD[$key]=1; fi
}

# ---------------------------------------------------------------------------------------------
# The runs, layout by layout

for layout in "${LAYOUTS[@]}"; do
  case $layout in
    A) proxy_cpu=0 up_cpu=1 WRK_CPU=1 ;; # proxies on CPU 0; upstream and wrk on CPU 1
    B) proxy_cpu=1 up_cpu=1 WRK_CPU=0 ;; # upstream and the proxy under test on CPU 1; wrk on CPU 0
    *) die "unknown layout $layout (A or B)" ;;
  esac
  start_servers "$proxy_cpu" "$up_cpu"
  for row in "${ROWS[@]}"; do IFS='|' read -r _ _ _ method url <<<"$row"; probe "$method" "$url"; done
  echo "layout $layout: measuring ${#ROWS[@]} rows x ${#CONNS[@]} connection counts x $RUNS runs of $DURATION" >&2
  for conns in "${CONNS[@]}"; do
    for _ in $(seq "$RUNS"); do # runs interleaved across rows, so that drift hits every row alike
      for row in "${ROWS[@]}"; do bench "$layout" "$conns" "$row"; done
    done
  done
  for proc in scimgate scimgate-tls ${BASELINE_BIN:+baseline}; do RSS[$layout|$proc]=$(rss_mib "${PID[$proc]}"); done
  stop_all
done

# ---------------------------------------------------------------------------------------------
# The table

echo "wrk: 1 thread, $DURATION per run, median of $RUNS runs; loopback; $(nproc) CPUs"
echo "layout A: proxies on CPU 0; upstream and wrk on CPU 1"
echo "layout B: upstream and the proxy under test on CPU 1; wrk on CPU 0"
echo "x nginx: req/s over nginx's row of the same kind; CPU: µs user/system per request of the serving process"
echo
printf '%-2s %-27s' "" ""
for conns in "${CONNS[@]}"; do printf ' | %-39s' "$conns connections"; done
printf '\n%-2s %-27s' "" "row"
for _ in "${CONNS[@]}"; do printf ' | %8s %8s %7s %14s' "req/s" "p99 ms" "x nginx" "µs usr/sys"; done # µ is 2 bytes
echo
for layout in "${LAYOUTS[@]}"; do
  for row in "${ROWS[@]}"; do
    IFS='|' read -r label kind _ <<<"$row"
    printf '%-2s %-27s' "$layout" "$label"
    for conns in "${CONNS[@]}"; do
      key="$layout|$label|$conns"
      # shellcheck disable=SC2086 # the lists are space-separated numbers
      rps=$(median ${RPS[$key]}) p99=$(median ${P99[$key]}) usr=$(median ${USR[$key]}) sys=$(median ${SYS[$key]})
      # shellcheck disable=SC2086
      ref=$(median ${RPS[$layout|${REF[$kind]}|$conns]})
      printf ' | %7.0f%1s %8.2f %7.2f %6.1f/%-6.1f' "$rps" "${BAD[$key]:+!}" "$p99" \
        "$(awk -v a="$rps" -v b="$ref" 'BEGIN {print a / b}')" "$usr" "$sys"
    done
    echo
  done
done
echo
for layout in "${LAYOUTS[@]}"; do
  printf 'layout %s, RSS peak/after the %s-connection runs: scimgate %s MiB, scimgate TLS %s MiB' \
    "$layout" "${CONNS[-1]}" "${RSS[$layout|scimgate]}" "${RSS[$layout|scimgate-tls]}"
  if [ -n "${BASELINE_BIN:-}" ]; then printf ', baseline %s MiB' "${RSS[$layout|baseline]}"; fi
  echo
done
if [ ${#BAD[@]} -gt 0 ]; then echo "!: some runs of this cell had error answers or socket errors"; fi
for proc in scimgate scimgate-tls ${BASELINE_BIN:+baseline}; do # at level warn, a quiet run logs nothing
  warned=$(grep -c '"level":"\(WARN\|ERROR\)"' "$tmp/$proc.out" || true)
  [ "$warned" = 0 ] || echo "$proc logged $warned warnings or errors, the first: $(grep -m1 '"level":"\(WARN\|ERROR\)"' "$tmp/$proc.out")"
done
