#!/usr/bin/env bash
# End-to-end test of the edge (`inkwired serve` with roles controlplane + relay + edge), driven
# with real third-party clients: curl (HTTP/1.1 and h2), nghttp, openssl s_client, the Node `ws`
# package (Debian's node-ws) and Node's http2 client (tests/e2e/edge_clients.js), against agents
# that speak PROTOCOL.md §4 like the TypeScript SDK (tests/e2e/echo_agent.js).
#
#   edge_e2e.sh INKWIRED
#
# One TLS listener (edge.listen) serves agents (no SNI) and third parties ({name}.edge.test);
# clients reach 127.0.0.1 with the right SNI and Host through --connect-to, -servername, ...
# Tunnels: web (edge mode, echo agent), ptls (passthrough, agent with a certificate signed through
# sign-csr), idle (no agent), crash (agent killed in case 15), doomed (deleted in case 16).
#
# Every case is a function run in a subshell: it prints PASS or FAIL with the reason, and the
# script goes on; the exit status is non-zero when any case failed. A case during which
# inkwired died fails (with the exit status and the end of its log), and the server and the
# agents are started again so that the cases after it still test something. Database, processes and
# bounds as in relay_e2e.sh: a fresh database in the suite's cluster (INKWIRE_TEST_PG_DIR) or a
# private cluster, 127.0.0.1 only, every wait bounded, everything stopped by the EXIT trap.
# KEEP=1 keeps the work directory (configs, logs); CASES="1 5 17" runs only those cases;
# INKWIRED_WRAPPER="valgrind -q" runs the server under a wrapper.
set -euo pipefail

INKWIRE_SCRIPT_NAME=edge_e2e
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
root=$(cd -- "$here/../.." && pwd -P)
# shellcheck source-path=SCRIPTDIR/../..
source "$root/scripts/lib/common.sh"
source "$root/scripts/lib/pg.sh"

[[ $# -eq 1 ]] || { echo "usage: edge_e2e.sh INKWIRED" >&2; exit 2; }
inkwired=$(realpath -- "$1")
[[ -f $inkwired && -x $inkwired ]] || die "$inkwired is not an executable file"
for tool in curl openssl nghttp jq psql timeout node sha256sum; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
# Debian's node packages (node-ws) live in /usr/share/nodejs, which a Node from elsewhere
# does not search by itself.
export NODE_PATH=/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}
node -e 'require("ws")' 2>/dev/null || die "the Node ws package is missing (apt-get install node-ws)"

pg_fixture_dir=${INKWIRE_TEST_PG_DIR:-}
clean_env=()
while IFS= read -r var; do
  if [[ $var == INKWIRE_* ]]; then clean_env+=(-u "$var"); fi
done < <(compgen -e)

started=$SECONDS
work=$(mktemp -d /tmp/inkwire-edge-e2e.XXXXXX)
chmod 755 "$work" # a private cluster's owner (postgres) must reach it
: >"$work/pids"   # every background process, one pid a line (cases run in subshells)
server_pid=
own_pg=0
admin_url=
db_name=
zone=edge.test
failed=0
crashes=0
results=()

log() { printf '[%3ds] %s\n' "$((SECONDS - started))" "$*"; }
setup_fail() {
  printf 'edge_e2e: setup failed: %s\n' "$*" >&2
  exit 1
}
# fail MESSAGE: ends the current case (a subshell) with MESSAGE as its reason.
fail() {
  printf '%s\n' "$*" >>"$work/why"
  exit 1
}

stop_pid() { # stop_pid PID SECONDS: SIGTERM, SIGKILL after SECONDS
  local pid=$1
  [[ -n $pid ]] || return 0
  if pid_alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" "$2"; then
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone "$pid" 5 || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  set +e
  exec 9>&-
  local pid
  while read -r pid; do stop_pid "$pid" 2; done <"$work/pids"
  stop_pid "$server_pid" 15
  if [[ -n $db_name && -n $admin_url ]]; then
    timeout 20 psql -X -q "$admin_url" -c "DROP DATABASE IF EXISTS \"$db_name\" WITH (FORCE)" >/dev/null 2>&1 ||
      warn "could not drop database $db_name"
  fi
  ((own_pg == 0)) || pg_stop "$work/pg"
  if ((rc != 0)) && [[ -f $work/serve.log ]]; then
    echo "----- server log: warnings and errors (last 40) -----" >&2
    awk '$2 ~ /^(warn|warning|error|critical)$/' "$work/serve.log" | tail -n 40 | cut -c1-400 >&2
  fi
  if [[ ${KEEP:-0} == 1 ]]; then
    echo "edge_e2e: kept $work" >&2
  else
    rm -rf -- "$work"
  fi
  log "done in $((SECONDS - started)) s, exit $rc"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# wait_until SECONDS CMD...: runs CMD every 0.1 s until it succeeds; false after SECONDS.
wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}
port_accepts() {
  # shellcheck disable=SC2016 # $1 is the inner shell's
  timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
iw() { timeout 30 env "${clean_env[@]}" "$inkwired" "$@"; }

# ---------------------------------------------------------------------------------------------
log "database"
if [[ -n $pg_fixture_dir ]]; then
  [[ -s $pg_fixture_dir/url ]] || setup_fail "no cluster URL in $pg_fixture_dir/url: is the pg fixture running?"
  admin_url=$(head -n 1 -- "$pg_fixture_dir/url")
else
  own_pg=1
  pg_init "$work/pg" --auth=trust --username=postgres --no-sync
  pg_port=$(free_port)
  pg_start "$work/pg" "$pg_port" || setup_fail "PostgreSQL did not start"
  admin_url="postgresql://postgres@127.0.0.1:$pg_port/postgres"
fi
db_name="edge_e2e_$$_${RANDOM}"
timeout 20 psql -X -q -v ON_ERROR_STOP=1 "$admin_url" -c "CREATE DATABASE \"$db_name\"" >/dev/null ||
  setup_fail "cannot create database $db_name"
db_url="${admin_url%/*}/$db_name"

api_port=$(free_port)
hp=$(free_port)      # edge.listen: agents and third parties (TLS)
pp=$(free_port)      # edge.http_listen: plain HTTP
metrics_port=$(free_port)
ca=$work/ca/ca.pem
cfg=$work/inkwired.toml
cat >"$cfg" <<TOML
roles = ["controlplane", "relay", "edge"]
zone = "$zone"
data_plane_host = "127.0.0.1:$hp"
[database]
url = "$db_url"
[api]
listen = "127.0.0.1:$api_port"
[metrics]
listen = "127.0.0.1:$metrics_port"
[ca]
dir = "$work/ca"
[tls]
cert_file = "$work/server.pem"
key_file = "$work/server.key"
[relay]
listen = ""
queue_wait_seconds = 2
max_response_body_bytes = 268435456
[edge]
listen = "127.0.0.1:$hp"
http_listen = "127.0.0.1:$pp"
public_https_port = $hp
request_head_timeout_seconds = 2
send_timeout_seconds = 3
cert_check_seconds = 0
TOML

log "migrate, server certificate, organisation, API key"
issue_server_cert() { # issue_server_cert CERT KEY
  iw ca issue-server-cert -c "$cfg" --cert-out "$1" --key-out "$2" \
    --dns "$zone" --dns "*.$zone" --ip 127.0.0.1 >>"$work/cert.out" 2>&1
}
iw migrate -c "$cfg" >"$work/migrate.out" 2>&1 || setup_fail "inkwired migrate failed: $(tail -n 3 "$work/migrate.out")"
issue_server_cert "$work/server.pem" "$work/server.key" || setup_fail "issue-server-cert failed: $(tail -n 3 "$work/cert.out")"
iw admin create-org -c "$cfg" --name e2e >"$work/org.out" 2>&1 || setup_fail "admin create-org failed"
api_key=$(iw admin create-api-key -c "$cfg" --org e2e --scope admin 2>"$work/key.err") || setup_fail "create-api-key failed"
[[ $api_key == ApiKey_* ]] || setup_fail "create-api-key printed '$api_key'"

log "serve"
# The agents' stdin: a FIFO whose only writer is this script (fd 9), so that they exit by
# themselves should the script die without its EXIT trap.
mkfifo "$work/agents.in"
exec 9<>"$work/agents.in" # read-write: the open does not wait for a reader
# start_server: `inkwired serve`, its output appended to serve.log; waits for the API and both
# edge ports. INKWIRED_WRAPPER, when set, prefixes the command (e.g. "valgrind -q").
start_server() {
  echo "----- edge_e2e: inkwired serve starts -----" >>"$work/serve.log"
  # shellcheck disable=SC2086 # the wrapper is a command line
  (exec env "${clean_env[@]}" ${INKWIRED_WRAPPER:-} "$inkwired" serve -c "$cfg" >>"$work/serve.log" 2>&1 9>&-) &
  server_pid=$!
  local deadline=$((SECONDS + 20))
  until curl -fsS --max-time 2 "http://127.0.0.1:$api_port/readyz" >/dev/null 2>&1 && port_accepts "$hp" && port_accepts "$pp"; do
    pid_alive "$server_pid" || { log "inkwired serve exited during start-up: $(tail -n 5 "$work/serve.log")"; return 1; }
    ((SECONDS < deadline)) || { log "inkwired serve not ready after 20 s"; return 1; }
    sleep 0.1
  done
  grep -q "inkwired edge: https port $hp" "$work/serve.log" || { log "no 'inkwired edge: https port $hp' line in the log"; return 1; }
}
start_server || setup_fail "inkwired serve did not start"

api() { # api METHOD PATH [JSON]: prints the body, then a last line with the status code
  local -a args=(-sS --max-time 10 -X "$1" -H "X-API-Key: $api_key" -w '\n%{http_code}')
  [[ $# -lt 3 ]] || args+=(-H 'Content-Type: application/json' --data-binary "$3")
  curl "${args[@]}" "http://127.0.0.1:$api_port$2"
}
declare -A tid tsecret
create_tunnel() { # create_tunnel NAME MODE
  local out
  out=$(api POST /api/v1/tunnels/ "{\"tunnel_name\":\"$1\",\"tls_mode\":\"$2\"}") || setup_fail "create $1"
  [[ $(tail -n 1 <<<"$out") == 201 ]] || setup_fail "create tunnel $1: $out"
  tid[$1]=$(sed '$d' <<<"$out" | jq -r .tunnel.id)
  tsecret[$1]=$(sed '$d' <<<"$out" | jq -r .connect_secret)
}
create_tunnel web edge
create_tunnel ptls passthrough
create_tunnel idle edge
create_tunnel crash edge
create_tunnel doomed edge

# The passthrough agent's key and certificate: an EC P-256 CSR (as the SDKs make it), signed by
# the installation CA through the REST API (PROTOCOL.md §2.5.9).
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/ptls.key" \
  -subj "/CN=ptls.$zone" -addext "subjectAltName=DNS:ptls.$zone" -out "$work/ptls.csr" 2>/dev/null ||
  setup_fail "openssl req failed"
out=$(api POST "/api/v1/tunnels/${tid[ptls]}/sign-csr" "$(jq -n --rawfile c "$work/ptls.csr" '{csr_pem: $c}')")
[[ $(tail -n 1 <<<"$out") == 200 ]] || setup_fail "sign-csr: $out"
sed '$d' <<<"$out" | jq -j '.cert_pem + .chain_pem' >"$work/ptls-chain.pem"

# start_agent NAME [ARGS...]: an echo agent for tunnel NAME, output in $work/agent-NAME.out (an
# earlier agent's output is kept as agent-NAME.out.PID); waits for its hello and its 4 intakes.
start_agent() {
  local name=$1 out=$work/agent-$1.out pid
  shift
  if [[ -f $work/agent-$name.pid ]]; then
    pid=$(cat "$work/agent-$name.pid")
    stop_pid "$pid" 2
    [[ ! -f $out ]] || mv -- "$out" "$out.$pid"
  fi
  (exec node "$here/echo_agent.js" --port "$hp" --ca "$ca" --tunnel-id "${tid[$name]}" \
    --secret "${tsecret[$name]}" --pool 4 "$@" <"$work/agents.in" >"$out" 2>&1 9>&-) &
  echo $! >"$work/agent-$name.pid"
  echo $! >>"$work/pids"
  wait_until 10 grep -q '^intake-parked 3$' "$out" && grep -q '^hello 200 ' "$out" && return 0
  log "agent $name did not come up: $(head -c 300 "$out")"
  return 1
}
# start_agents: agents for every tunnel that should have one (doomed only until case 16 deleted it).
start_agents() {
  local ok=0
  start_agent web || ok=1
  start_agent ptls --cert "$work/ptls-chain.pem" --key "$work/ptls.key" || ok=1
  start_agent crash || ok=1
  [[ -f $work/doomed.deleted ]] || start_agent doomed || ok=1
  return "$ok"
}
start_agents || setup_fail "the agents did not come up"
log "stack up: https $hp, http $pp, api $api_port, metrics $metrics_port; agents for web, ptls, crash, doomed"

# ---------------------------------------------------------------------------------------------
# Client helpers. Case N keeps its files as $work/cN.*

# c ARGS...: curl to the edge: any host:port goes to 127.0.0.1:$hp (SNI and Host from the URL).
c() { curl -sS --max-time 15 --cacert "$ca" --connect-to "::127.0.0.1:$hp" "$@"; }
url() { echo "https://$1.$zone:$hp$2"; } # url NAME PATH
# header FILE NAME: the value of the first NAME header in a curl -D dump (case-insensitive).
header() { sed -n "s/^$2: *//Ip" "$1" | tr -d '\r' | head -n 1; }
status_of() { sed -n '1s/^HTTP\/[0-9.]* \([0-9]*\).*/\1/p' "$1"; }
# raw NAME MAX_MS < REQUEST: REQUEST over TLS with SNI NAME.$zone; response on stdout, "closed
# MS" / "open MS" on stderr.
raw() { node "$here/edge_clients.js" raw "$hp" "$1.$zone" "$2"; }
requests_seen() { grep -c '^request ' "$work/agent-$1.out" || true; }
echo_field() { jq -r "$2" "$1"; } # echo_field JSON_FILE JQ

# ---------------------------------------------------------------------------------------------
case_1() { # HTTP/1.1 GET /echo: what reaches the agent
  local f=$work/c1
  c --http1.1 -D "$f.h" -o "$f.json" -H 'X-Forwarded-For: 6.6.6.6' -H 'Forwarded: for=6.6.6.6' \
    -H 'X-Forwarded-Host: evil.example' -H 'Accept-Encoding: gzip, br' "$(url web /echo?q=1)"
  [[ $(status_of "$f.h") == 200 ]] || fail "status $(status_of "$f.h"), want 200: $(cat "$f.h" "$f.json")"
  [[ $(header "$f.h" content-type) == application/json ]] || fail "content-type $(header "$f.h" content-type)"
  jq -e . "$f.json" >/dev/null || fail "body is not JSON: $(head -c 300 "$f.json")"
  [[ $(echo_field "$f.json" .method) == GET && $(echo_field "$f.json" .path) == "/echo?q=1" ]] ||
    fail "method/path: $(jq -c '[.method,.path]' "$f.json")"
  [[ $(echo_field "$f.json" .forwarded_for) == 127.0.0.1 ]] || fail "forwarded_for $(echo_field "$f.json" .forwarded_for)"
  [[ $(echo_field "$f.json" .sni_host) == "web.$zone" ]] || fail "sni_host $(echo_field "$f.json" .sni_host)"
  [[ $(jq -c '[.headers[] | select(.[0] == "accept-encoding") | .[1]]' "$f.json") == '["identity"]' ]] ||
    fail "accept-encoding at the agent: $(jq -c '[.headers[] | select(.[0] == "accept-encoding")]' "$f.json")"
  local forged
  forged=$(jq -c '[.headers[] | select(.[0] | test("^(x-forwarded-|forwarded$)"))]' "$f.json")
  [[ $forged == '[]' ]] || fail "forged forwarding headers reached the agent: $forged"
  [[ $(jq -c '[.headers[] | select(.[0] | test("^inkbox-"))]' "$f.json") == '[]' ]] || fail "inkbox-* among forwarded headers"
}

case_2() { # the same over h2 (curl and nghttp)
  local f=$work/c2
  c --http2 -D "$f.h" -o "$f.json" -w '%{http_version}' -H 'X-Forwarded-For: 6.6.6.6' "$(url web /echo)" >"$f.ver"
  [[ $(cat "$f.ver") == 2 ]] || fail "curl --http2 used HTTP/$(cat "$f.ver")"
  [[ $(status_of "$f.h") == 200 ]] || fail "curl h2: status $(status_of "$f.h")"
  [[ $(echo_field "$f.json" .forwarded_for) == 127.0.0.1 && $(echo_field "$f.json" .sni_host) == "web.$zone" ]] ||
    fail "curl h2: $(jq -c '[.forwarded_for,.sni_host]' "$f.json")"
  [[ $(jq -c '[.headers[] | select(.[0] == "x-forwarded-for")]' "$f.json") == '[]' ]] || fail "curl h2: x-forwarded-for reached the agent"
  # nghttp takes the SNI from :authority (an override of the URL's host); it verifies against
  # OpenSSL's default store, which SSL_CERT_FILE points at the CA.
  SSL_CERT_FILE=$ca timeout 10 nghttp -v -H ":authority: web.$zone" "https://127.0.0.1:$hp/echo?via=nghttp" >"$f.ng" 2>&1 ||
    fail "nghttp failed: $(tail -n 5 "$f.ng")"
  grep -q 'recv (stream_id=[0-9]*) :status: 200' "$f.ng" || fail "nghttp: no 200: $(grep ':status' "$f.ng")"
  grep -q '"path":"/echo?via=nghttp"' "$f.ng" || fail "nghttp: body is not the agent's echo: $(tail -n 3 "$f.ng")"
  grep -q "\"sni_host\":\"web.$zone\"" "$f.ng" || fail "nghttp: sni_host is not web.$zone"
}

case_3() { # 10 MiB POST bodies, h1 and h2
  local f=$work/c3 want
  head -c $((10 * 1024 * 1024)) /dev/urandom >"$f.bin"
  want=$(sha256sum "$f.bin" | cut -d' ' -f1)
  local v
  for v in --http1.1 --http2; do
    c "$v" -o "$f$v.json" -w '%{http_code}' -H 'Content-Type: application/octet-stream' --data-binary "@$f.bin" \
      "$(url web /echo/upload)" >"$f$v.code"
    [[ $(cat "$f$v.code") == 200 ]] || fail "$v: status $(cat "$f$v.code"): $(head -c 300 "$f$v.json")"
    [[ $(echo_field "$f$v.json" .body_length) == 10485760 ]] || fail "$v: body_length $(echo_field "$f$v.json" .body_length)"
    [[ $(echo_field "$f$v.json" .body_sha256) == "$want" ]] || fail "$v: body_sha256 differs"
    [[ $(echo_field "$f$v.json" .method) == POST ]] || fail "$v: method $(echo_field "$f$v.json" .method)"
  done
}

case_4() { # HEAD, 304, 418, Set-Cookie (two fields and one merged field)
  local f=$work/c4
  printf 'HEAD /echo HTTP/1.1\r\nHost: web.%s\r\nConnection: close\r\n\r\n' "$zone" | raw web 5000 >"$f.head" 2>"$f.head.meta"
  grep -q '^closed' "$f.head.meta" || fail "HEAD over HTTP/1.1: connection not closed (Connection: close)"
  [[ $(head -n 1 "$f.head" | tr -d '\r') == 'HTTP/1.1 200 OK' ]] || fail "HEAD: $(head -n 1 "$f.head")"
  local after
  after=$(awk 'BEGIN{RS="\r\n\r\n"} NR>1' "$f.head" | wc -c)
  ((after == 0)) || fail "HEAD: $after bytes after the head (a body was sent)"
  printf 'GET /not-modified HTTP/1.1\r\nHost: web.%s\r\nConnection: close\r\n\r\n' "$zone" | raw web 5000 >"$f.304" 2>/dev/null
  [[ $(head -n 1 "$f.304" | tr -d '\r') == 'HTTP/1.1 304 Not Modified' ]] || fail "/not-modified: $(head -n 1 "$f.304")"
  after=$(awk 'BEGIN{RS="\r\n\r\n"} NR>1' "$f.304" | wc -c)
  ((after == 0)) || fail "304: $after bytes after the head"
  ! grep -qi '^transfer-encoding' "$f.304" || fail "304 with transfer-encoding"
  # Over h2 as well.
  c --http2 -I -o /dev/null -D "$f.head2" "$(url web /echo)"
  [[ $(status_of "$f.head2") == 200 ]] || fail "HEAD h2: status $(status_of "$f.head2")"
  c --http1.1 -D "$f.418h" -o "$f.418" "$(url web /status/418)"
  [[ $(status_of "$f.418h") == 418 ]] || fail "/status/418: status $(status_of "$f.418h")"
  [[ $(cat "$f.418") == 'status 418 from the agent' ]] || fail "/status/418 body: $(head -c 200 "$f.418")"
  local path v
  for path in /cookies /merged-cookies; do
    for v in --http1.1 --http2; do
      c "$v" -D "$f.ck" -o /dev/null "$(url web "$path")"
      [[ $(status_of "$f.ck") == 200 ]] || fail "$path $v: status $(status_of "$f.ck")"
      local cookies
      cookies=$(sed -n 's/^set-cookie: *//Ip' "$f.ck" | tr -d '\r' | paste -sd '|')
      [[ $cookies == 'a=1; Path=/|b=2; Path=/' ]] || fail "$path $v: Set-Cookie headers [$cookies], want two: a=1; Path=/ and b=2; Path=/"
    done
  done
}

case_5() { # an h2 client's two cookie fields arrive joined into one inkbox-h-cookie
  local f=$work/c5
  SSL_CERT_FILE=$ca timeout 10 nghttp -v -H ":authority: web.$zone" -H 'cookie: a=1' -H 'cookie: b=2' \
    "https://127.0.0.1:$hp/echo" >"$f.ng" 2>&1 || fail "nghttp failed: $(tail -n 5 "$f.ng")"
  [[ $(grep -c 'cookie: [ab]=' "$f.ng") -ge 2 ]] || fail "nghttp did not send two cookie fields"
  sed -n 's/^\({.*}\).*/\1/p' "$f.ng" | head -n 1 >"$f.json"
  local got
  got=$(jq -c '[.headers[] | select(.[0] == "cookie") | .[1]]' "$f.json") || fail "no JSON echo: $(tail -n 3 "$f.ng")"
  [[ $got == '["a=1; b=2"]' ]] || fail "cookie fields at the agent: $got, want [\"a=1; b=2\"]"
}

case_6() { # SNI web, Host other: 421 misdirected-request
  local f=$work/c6 v
  for v in --http1.1 --http2; do
    c "$v" -D "$f.h" -o "$f.body" -H "Host: other.$zone" "$(url web /echo)"
    [[ $(status_of "$f.h") == 421 ]] || fail "$v: status $(status_of "$f.h"), want 421"
    [[ $(header "$f.h" x-inkwire-error) == misdirected-request ]] || fail "$v: x-inkwire-error '$(header "$f.h" x-inkwire-error)'"
  done
}

case_7() { # unknown tunnel: 404 unknown-tunnel, HTML or JSON
  local f=$work/c7
  c --http1.1 -D "$f.h" -o "$f.body" "$(url nope /)"
  [[ $(status_of "$f.h") == 404 ]] || fail "status $(status_of "$f.h"), want 404"
  [[ $(header "$f.h" x-inkwire-error) == unknown-tunnel ]] || fail "x-inkwire-error '$(header "$f.h" x-inkwire-error)'"
  [[ $(header "$f.h" content-type) == text/html* ]] || fail "default content-type $(header "$f.h" content-type)"
  c --http2 -D "$f.jh" -o "$f.json" -H 'Accept: application/json' "$(url nope /x)"
  [[ $(status_of "$f.jh") == 404 && $(header "$f.jh" x-inkwire-error) == unknown-tunnel ]] ||
    fail "Accept json: status $(status_of "$f.jh"), error $(header "$f.jh" x-inkwire-error)"
  [[ $(header "$f.jh" content-type) == application/json* ]] || fail "Accept json: content-type $(header "$f.jh" content-type)"
  jq -e 'type == "object"' "$f.json" >/dev/null || fail "Accept json: body is not a JSON object: $(head -c 200 "$f.json")"
}

case_8() { # SNI outside the zone: unrecognized_name alert
  local f=$work/c8
  if timeout 10 openssl s_client -connect "127.0.0.1:$hp" -servername example.com -CAfile "$ca" </dev/null >"$f.out" 2>&1; then
    fail "the handshake with SNI example.com succeeded"
  fi
  grep -aq 'unrecognized name' "$f.out" || fail "no 'unrecognized name' alert: $(grep -a -m 3 -i 'alert\|error' "$f.out")"
}

case_9() { # plain HTTP: 308 to https on the public HTTPS port
  local f=$work/c9
  curl -sS --max-time 10 --connect-to "::127.0.0.1:$pp" -D "$f.h" -o /dev/null "http://web.$zone:$pp/x?y"
  [[ $(status_of "$f.h") == 308 ]] || fail "status $(status_of "$f.h"), want 308"
  [[ $(header "$f.h" location) == "https://web.$zone:$hp/x?y" ]] || fail "location '$(header "$f.h" location)', want https://web.$zone:$hp/x?y"
}

case_10() { # plain HTTP on the TLS port: 400 naming https
  local f=$work/c10
  curl -sS --max-time 10 -D "$f.h" -o "$f.body" "http://127.0.0.1:$hp/" || fail "curl failed"
  [[ $(status_of "$f.h") == 400 ]] || fail "status $(status_of "$f.h"), want 400"
  grep -qi https "$f.body" || fail "body does not mention https: $(cat "$f.body")"
}

case_11() { # WebSocket over HTTP/1.1 (Node ws)
  local f=$work/c11
  timeout 20 node "$here/edge_clients.js" ws-h1 "$hp" "web.$zone" "$ca" >"$f.json" 2>"$f.err" || true
  jq -e . "$f.json" >/dev/null 2>&1 || fail "ws client: $(cat "$f.json" "$f.err" | head -c 500)"
  [[ $(jq -r '.error // empty' "$f.json") == "" ]] || fail "ws client error: $(cat "$f.json")"
  [[ $(jq -r .protocol "$f.json") == chat.v1 ]] || fail "subprotocol $(jq -r .protocol "$f.json"), want chat.v1"
  [[ $(jq -r .text "$f.json") == 'hello edge' ]] || fail "text echo: $(jq -r .text "$f.json")"
  [[ $(jq -r .binary_ok "$f.json") == true ]] || fail "1 MiB binary echo differs (got $(jq -r .binary_len "$f.json") bytes)"
  [[ $(jq -r .close_code "$f.json") == 4001 ]] || fail "close code $(jq -r .close_code "$f.json"), want 4001"
  grep -q '^request GET /ws?x=1 ws-upgrade$' "$work/agent-web.out" || fail "the agent logged no ws-upgrade for /ws?x=1"
}

case_12() { # WebSocket over h2 (RFC 8441)
  local f=$work/c12
  timeout 15 node "$here/edge_clients.js" ws-h2 "$hp" "web.$zone" "$ca" >"$f.json" 2>"$f.err" || true
  jq -e . "$f.json" >/dev/null 2>&1 || fail "h2 ws client: $(cat "$f.json" "$f.err" | head -c 500)"
  [[ $(jq -r .enable_connect_protocol "$f.json") == true ]] || fail "the edge's SETTINGS lack ENABLE_CONNECT_PROTOCOL=1"
  [[ $(jq -r .status "$f.json") == 200 ]] || fail "extended CONNECT status $(jq -r .status "$f.json"): $(cat "$f.json")"
  [[ $(jq -r .protocol "$f.json") == chat.v1 ]] || fail "subprotocol $(jq -r .protocol "$f.json")"
  [[ $(jq -r .echo "$f.json") == 'hi over h2' ]] || fail "echo: $(cat "$f.json")"
  [[ $(jq -r '.error // empty' "$f.json") == "" ]] || fail "error: $(cat "$f.json")"
}

case_13() { # passthrough: the agent's certificate, and HTTP through its TLS
  local f=$work/c13
  timeout 10 openssl s_client -connect "127.0.0.1:$hp" -servername "ptls.$zone" -CAfile "$ca" \
    -verify_hostname "ptls.$zone" </dev/null >"$f.out" 2>&1 || true
  grep -aq "^subject=CN = ptls.$zone\$" "$f.out" || fail "subject: $(grep -a '^subject=' "$f.out") $(grep -a -m 3 -i error "$f.out")"
  local ca_subject
  ca_subject=$(openssl x509 -in "$ca" -noout -subject | sed 's/^subject=//')
  grep -aq "^issuer=$ca_subject\$" "$f.out" || fail "issuer: $(grep -a '^issuer=' "$f.out"), want $ca_subject"
  grep -aq 'Verify return code: 0 (ok)' "$f.out" || fail "verify: $(grep -a 'Verify return code' "$f.out")"
  c -o "$f.body" -w '%{http_code}' "$(url ptls /)" >"$f.code" || fail "curl through passthrough failed: $(cat "$f.code")"
  [[ $(cat "$f.code") == 200 && $(cat "$f.body") == 'hello from passthrough' ]] ||
    fail "passthrough GET: status $(cat "$f.code"), body $(head -c 200 "$f.body")"
  grep -q '^tcp-request GET /$' "$work/agent-ptls.out" || fail "the agent saw no request behind its TLS"
}

case_14() { # no agent: 503 no-agent-connected within the queue wait (2 s), over h2 and HTTP/1.1
  local f=$work/c14 t0 ms v problems=()
  for v in --http2 --http1.1; do
    : >"$f.h"
    t0=$(now_ms)
    if ! c "$v" -D "$f.h" -o "$f.body" "$(url idle /)" 2>"$f.err"; then
      problems+=("$v: $(tr -d '\n' <"$f.err") after $(($(now_ms) - t0)) ms")
      continue
    fi
    ms=$(($(now_ms) - t0))
    if [[ $(status_of "$f.h") != 503 || $(header "$f.h" x-inkwire-error) != no-agent-connected ]]; then
      problems+=("$v: status $(status_of "$f.h") x-inkwire-error '$(header "$f.h" x-inkwire-error)', want 503 no-agent-connected")
    elif ((ms > 4000)); then
      problems+=("$v: took $ms ms (relay.queue_wait_seconds = 2)")
    fi
  done
  ((${#problems[@]} == 0)) || fail "${problems[*]}"
}

case_15() { # agent killed while a request is held: 502 at once
  local f=$work/c15 t0 ms pid
  c --http1.1 -D "$f.h" -o "$f.body" --max-time 25 "$(url crash /hold)" &
  local curl_pid=$!
  wait_until 5 grep -q '^request GET /hold$' "$work/agent-crash.out" || fail "the agent never got /hold"
  pid=$(cat "$work/agent-crash.pid")
  t0=$(now_ms)
  kill -KILL "$pid"
  wait "$curl_pid" || true
  ms=$(($(now_ms) - t0))
  [[ $(status_of "$f.h") == 502 ]] || fail "status $(status_of "$f.h"), want 502 (after $ms ms)"
  ((ms < 3000)) || fail "502 came $ms ms after the kill"
  log "   (502 $(header "$f.h" x-inkwire-error) $ms ms after SIGKILL)"
}

case_16() { # tunnel deleted while its agent is connected: 404 tunnel-pending-removal within 1 s
  local f=$work/c16 code out t0 ms
  code=$(c -o /dev/null -w '%{http_code}' "$(url doomed /)")
  [[ $code == 200 ]] || fail "before the delete: status $code"
  out=$(api DELETE "/api/v1/tunnels/${tid[doomed]}")
  [[ $(tail -n 1 <<<"$out") == 200 ]] || fail "DELETE: $out"
  touch "$work/doomed.deleted"
  t0=$(now_ms)
  until c --http1.1 -D "$f.h" -o /dev/null "$(url doomed /)" && [[ $(status_of "$f.h") == 404 ]]; do
    (($(now_ms) - t0 < 1000)) || fail "1 s after the delete: status $(status_of "$f.h"), $(header "$f.h" x-inkwire-error)"
    sleep 0.05
  done
  ms=$(($(now_ms) - t0))
  [[ $(header "$f.h" x-inkwire-error) == tunnel-pending-removal ]] || fail "x-inkwire-error '$(header "$f.h" x-inkwire-error)'"
  c --http2 -D "$f.h2" -o /dev/null "$(url doomed /x)"
  [[ $(status_of "$f.h2") == 404 && $(header "$f.h2" x-inkwire-error) == tunnel-pending-removal ]] ||
    fail "h2 after the delete: $(status_of "$f.h2") $(header "$f.h2" x-inkwire-error)"
  wait_until 3 grep -q '^closed$' "$work/agent-doomed.out" || fail "the agent's session was not closed"
  log "   (404 tunnel-pending-removal $ms ms after the delete)"
}

# smuggle LABEL REQUEST: REQUEST must get 400 and a closed connection, and reach no agent.
smuggle() {
  local label=$1 f=$work/c17-$1 before
  before=$(requests_seen web)
  printf '%b' "$2" | raw web 5000 >"$f.out" 2>"$f.meta"
  local first
  first=$(head -n 1 "$f.out" | tr -d '\r')
  [[ $first == 'HTTP/1.1 400 '* ]] || fail "$label: got '${first:-nothing}', want 400"
  grep -q '^closed' "$f.meta" || fail "$label: 400 but the connection stayed open"
  sleep 0.2
  [[ $(requests_seen web) == "$before" ]] || fail "$label: the agent received a request"
}
case_17() { # request smuggling shapes
  local h="Host: web.$zone\r\n"
  smuggle cl-te "POST /echo HTTP/1.1\r\n${h}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
  smuggle cl-cl "POST /echo HTTP/1.1\r\n${h}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"
  smuggle te-gzip-chunked "POST /echo HTTP/1.1\r\n${h}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
  smuggle bare-lf "GET /echo HTTP/1.1\r\n${h}X-A: 1\nX-B: 2\r\n\r\n"
  smuggle obs-fold "GET /echo HTTP/1.1\r\n${h}X-A: 1\r\n  folded\r\n\r\n"
  smuggle space-before-colon "GET /echo HTTP/1.1\r\n${h}Content-Length : 0\r\n\r\n"
}

case_18() { # slow header: cut after edge.request_head_timeout_seconds (2)
  local f=$work/c18 ms
  printf 'GET /echo HTTP/1.1\r\nHost: web.%s\r\nX-Slow: 1' "$zone" | raw web 8000 >"$f.out" 2>"$f.meta"
  read -r state ms <"$f.meta"
  [[ $state == closed ]] || fail "connection still open after $ms ms"
  ((ms >= 1500 && ms <= 4500)) || fail "closed after $ms ms, want about 2000"
  log "   (closed after $ms ms; the edge answered: $(head -n 1 "$f.out" | tr -d '\r'))"
}

serial_of_new_connection() {
  timeout 10 openssl s_client -connect "127.0.0.1:$hp" -servername "web.$zone" -CAfile "$ca" </dev/null 2>/dev/null |
    openssl x509 -noout -serial
}
case_19() { # SIGHUP reloads the certificate; open connections keep working
  local f=$work/c19 old new
  old=$(serial_of_new_connection) || fail "cannot read the current serial"
  node "$here/edge_clients.js" keepalive "$hp" "web.$zone" "$ca" "$f.go" >"$f.out" 2>&1 &
  local ka=$!
  echo "$ka" >>"$work/pids"
  wait_until 5 grep -q '^first ' "$f.out" || fail "keep-alive client: $(cat "$f.out")"
  grep -q '^first 200 ' "$f.out" || fail "keep-alive first request: $(cat "$f.out")"
  issue_server_cert "$work/new.pem" "$work/new.key" || fail "issuing a new certificate failed"
  mv -f "$work/new.key" "$work/server.key"
  mv -f "$work/new.pem" "$work/server.pem"
  kill -HUP "$server_pid"
  local deadline=$((SECONDS + 3))
  while new=$(serial_of_new_connection) && [[ $new == "$old" ]]; do
    ((SECONDS < deadline)) || fail "3 s after SIGHUP new connections still get $old"
    sleep 0.1
  done
  [[ -n $new ]] || fail "no certificate on a new connection after SIGHUP"
  touch "$f.go"
  wait "$ka" || true
  grep -q '^second 200 ' "$f.out" || fail "the keep-alive connection broke: $(cat "$f.out")"
  local code
  code=$(c -o /dev/null -w '%{http_code}' "$(url web /echo)")
  [[ $code == 200 ]] || fail "a request on a new connection after the reload: $code"
  grep -q 'SIGHUP' "$work/serve.log" || fail "no SIGHUP line in the log"
  log "   ($old -> $new)"
}

case_20() { # metrics and access log
  local f=$work/c20 code value
  code=$(c -o /dev/null -w '%{http_code}' "$(url web /echo)") # counted even right after a restart
  [[ $code == 200 ]] || fail "GET /echo: $code"
  curl -fsS --max-time 5 "http://127.0.0.1:$metrics_port/metrics" >"$f.txt" || fail "GET /metrics failed"
  value=$(awk '/^inkwire_edge_tunnel_requests_total\{/ && /tunnel="web"/ && /class="2xx"/ {print $2; exit}' "$f.txt")
  [[ -n $value ]] || fail "no inkwire_edge_tunnel_requests_total{tunnel=\"web\",class=\"2xx\"}: $(grep -m 5 inkwire_edge_tunnel "$f.txt")"
  awk -v v="$value" 'BEGIN{exit !(v > 0)}' || fail "inkwire_edge_tunnel_requests_total{web,2xx} = $value"
  grep -q 'access tunnel=web proto=.* status=200 ' "$work/serve.log" || fail "no 'access tunnel=web ... status=200' line in the server log"
  log "   (inkwire_edge_tunnel_requests_total{tunnel=\"web\",class=\"2xx\"} = $value)"
}

case_21() { # an agent answer slower than request_head_timeout_seconds (2) is still delivered
  local f=$work/c21 v problems=() t0
  for v in --http1.1 --http2; do
    : >"$f.h"
    : >"$f.body"
    t0=$(now_ms)
    if ! c "$v" -D "$f.h" -o "$f.body" "$(url web /slow/3000)" 2>"$f.err"; then
      problems+=("$v: $(tr -d '\n' <"$f.err") after $(($(now_ms) - t0)) ms")
    elif [[ $(status_of "$f.h") != 200 || $(cat "$f.body") != slow ]]; then
      problems+=("$v: status $(status_of "$f.h"), body $(head -c 100 "$f.body")")
    fi
  done
  ((${#problems[@]} == 0)) || fail "${problems[*]}"
}

# rss_kb: inkwired's VmRSS in kB. send_timeouts: inkwire_edge_timeouts_total{kind="send"} (0
# before the first).
rss_kb() { awk '$1 == "VmRSS:" {print $2; found=1} END {exit !found}' "/proc/$server_pid/status"; }
send_timeouts() {
  curl -fsS --max-time 5 "http://127.0.0.1:$metrics_port/metrics" |
    awk '/^inkwire_edge_timeouts_total\{/ && /kind="send"/ {v = $2} END {print v + 0}'
}
# case_22 needs relay.max_response_body_bytes above its 200 MiB (the default is 32 MiB). The edge's
# FIN waits behind the bytes the client has not taken, so the client sees the close only once it
# reads again (after STALL_MS); the moment of the cut is when the send timeout counter moves.
case_22() { # a client that never reads: bounded memory, cut after edge.send_timeout_seconds (3)
  local f=$work/c22 n=$((200 * 1024 * 1024)) stall_ms=5500 before rss max sent_ms t cut_ms='' sends0 sends
  sends0=$(send_timeouts) || fail "GET /metrics failed"
  before=$(rss_kb) || fail "no VmRSS for inkwired (pid $server_pid)"
  max=$before
  node "$here/edge_clients.js" stall "$hp" "web.$zone" "$ca" "/bytes/$n" "$stall_ms" 8000 >"$f.out" 2>"$f.err" &
  local client=$!
  echo "$client" >>"$work/pids"
  wait_until 5 grep -q '^sent ' "$f.out" || fail "the client sent no request: $(cat "$f.out" "$f.err" | head -c 300)"
  sent_ms=$(sed -n 's/^sent //p' "$f.out")
  # While the client takes nothing: inkwired's VmRSS, and when the send timeout counter moves.
  until grep -q '^resumed ' "$f.out" || ! pid_alive "$client"; do
    rss=$(rss_kb) || fail "no VmRSS for inkwired (pid $server_pid)"
    ((rss <= max)) || max=$rss
    if [[ -z $cut_ms ]]; then
      sends=$(send_timeouts) || fail "GET /metrics failed"
      t=$(now_ms)
      ((sends <= sends0)) || cut_ms=$((t - sent_ms))
    fi
    sleep 0.1
  done
  wait "$client" || true
  local state ms bytes buffered
  read -r state ms bytes < <(grep -E '^(closed|open) ' "$f.out") || fail "client: $(cat "$f.out" "$f.err" | head -c 300)"
  buffered=$(sed -n 's/^resumed //p' "$f.out")
  [[ $(sed -n 's/^status //p' "$f.out" | tr -d '\r') == 'HTTP/1.1 200 OK' ]] ||
    fail "response: '$(sed -n 's/^status //p' "$f.out")', want HTTP/1.1 200 OK"
  ((buffered < 1048576)) || fail "the client had $buffered bytes buffered while it stalled (it read)"
  ((max - before < 32768)) || fail "VmRSS grew from $before kB to $max kB (+$((max - before)) kB, limit 32768)"
  [[ -n $cut_ms ]] || fail "inkwire_edge_timeouts_total{kind=\"send\"} still $sends0 $stall_ms ms after the request"
  ((cut_ms >= 2500 && cut_ms <= 5000)) || fail "the send timeout fired $cut_ms ms after the request, want about 3000 (2500 to 5000)"
  [[ $state == closed ]] || fail "connection still open $ms ms after the request ($bytes bytes received)"
  ((bytes < n)) || fail "the client received all $bytes bytes: the connection was not cut"
  local code
  code=$(c -o /dev/null -w '%{http_code}' "$(url web /echo)")
  [[ $code == 200 ]] || fail "GET /echo after the stalled client: $code"
  local agent
  agent=$(grep '^post-aborted ' "$work/agent-web.out" | tail -n 1) || agent="no post-aborted line"
  log "   (VmRSS $before kB before, max $max kB (+$((max - before)) kB); send timeout $cut_ms ms after" \
    "the request; the client got $bytes of $n bytes, saw the close at $ms ms; agent: $agent)"
}

# ---------------------------------------------------------------------------------------------
titles=(
  [1]="HTTP/1.1 GET /echo: forwarded_for, sni_host, identity encoding, forged forwarding headers dropped"
  [2]="HTTP/2 GET /echo with curl and nghttp"
  [3]="10 MiB POST over HTTP/1.1 and h2, sha256 intact"
  [4]="HEAD, 304, 418 and Set-Cookie splitting"
  [5]="h2 cookie fields joined into one inkbox-h-cookie"
  [6]="Host/SNI mismatch: 421 misdirected-request"
  [7]="unknown tunnel: 404 unknown-tunnel (HTML and JSON)"
  [8]="SNI outside the zone: unrecognized_name alert"
  [9]="plain HTTP: 308 to HTTPS"
  [10]="plain HTTP on the TLS port: 400"
  [11]="WebSocket over HTTP/1.1 (ws): text, 1 MiB binary, subprotocol, close 4001"
  [12]="WebSocket over h2 (extended CONNECT)"
  [13]="passthrough: agent's certificate, HTTP through its TLS"
  [14]="no agent: 503 no-agent-connected"
  [15]="agent SIGKILLed with a request in flight: 502 at once"
  [16]="tunnel deleted: 404 tunnel-pending-removal within 1 s"
  [17]="request smuggling shapes: 400, closed, nothing reaches the agent"
  [18]="slow request head cut after request_head_timeout_seconds"
  [19]="SIGHUP certificate reload; keep-alive connection survives"
  [20]="metrics and access log"
  [21]="agent answering in 3 s (> request_head_timeout_seconds) over HTTP/1.1 and h2"
  [22]="a client that never reads a 200 MiB response: bounded edge memory, cut after send_timeout_seconds"
)

run_case() { # run_case N: case_N in a subshell (set -e, its own failure reason)
  local n=$1 rc=0
  : >"$work/why"
  set +e
  (
    set -eE
    trap 'printf "unexpected failure at line %s: %s\n" "$LINENO" "$BASH_COMMAND" >>"$work/why"' ERR
    "case_$n"
  )
  rc=$?
  set -e
  local died=
  if ! pid_alive "$server_pid"; then
    local status=0
    wait "$server_pid" 2>/dev/null || status=$?
    died=" [inkwired serve died during this case, exit status $status]"
    rc=1
    crashes=$((crashes + 1))
  fi
  if ((rc == 0)); then
    log "PASS $n. ${titles[$n]}"
    results+=("PASS $n. ${titles[$n]}")
  else
    failed=$((failed + 1))
    local why
    why=$(head -c 2000 "$work/why")
    log "FAIL $n. ${titles[$n]}: ${why:-exit $rc}$died"
    results+=("FAIL $n. ${titles[$n]}: ${why:-exit $rc}$died")
  fi
  if [[ -n $died ]]; then
    # Show how it died, then bring the stack back so that the other cases still say something.
    log "inkwired serve died; the last lines of its log:"
    tail -n 12 "$work/serve.log" | cut -c1-400 | sed 's/^/      /'
    if ! start_server || ! start_agents; then log "the restart failed; the remaining cases will fail"; fi
  fi
}

for n in ${CASES:-$(seq 1 22)}; do run_case "$n"; done

elapsed=$((SECONDS - started))
echo
echo "edge_e2e: summary ($elapsed s)"
printf '  %s\n' "${results[@]}"
if ((elapsed >= 120)); then
  echo "edge_e2e: FAIL: the run took $elapsed s (limit 120 s)"
  failed=$((failed + 1))
fi
((crashes == 0)) || echo "edge_e2e: inkwired serve died $crashes time(s) (restarted each time)"
((failed == 0)) || { echo "edge_e2e: $failed failure(s)"; exit 1; }
echo "edge_e2e: PASS"
