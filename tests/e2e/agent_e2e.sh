#!/usr/bin/env bash
# End-to-end test of our C++ agent's command line, `inkwire connect`, through the real server
# (`inkwired serve` with roles controlplane + relay + edge), driven as a user would: the agent
# forwards to a small local HTTP origin (Python, below) and third parties reach it with curl.
#
#   agent_e2e.sh INKWIRED INKWIRE HANDLER_EXAMPLE
#
# One tunnel, "shop", in edge mode. The agent finds the control plane through INKWIRE_API_URL /
# INKWIRE_API_KEY / INKWIRE_CA_FILE (plain http to the loopback API; the relay's TLS is verified
# against the installation CA), keeps its state in $work/state/shop, prints status lines on stderr
# (agent.err) and one line per request on stdout (agent.out). The relay and the third parties
# share one TLS listener (edge.listen); clients reach shop.$zone on 127.0.0.1 through --resolve.
#
# Every case is a function run in a subshell: it prints PASS or FAIL with the reason, and the
# script goes on; the exit status is non-zero when any case failed. Database, processes and bounds
# as in edge_e2e.sh: a fresh database in the suite's cluster (INKWIRE_TEST_PG_DIR) or a private
# cluster, 127.0.0.1 only, every wait bounded, everything stopped by the EXIT trap.
# KEEP=1 keeps the work directory (configs, logs); CASES="1 2 6" runs only those cases (a case
# that needs a connected agent starts one).
set -euo pipefail

INKWIRE_SCRIPT_NAME=agent_e2e
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
root=$(cd -- "$here/../.." && pwd -P)
# shellcheck source-path=SCRIPTDIR/../..
source "$root/scripts/lib/common.sh"
source "$root/scripts/lib/pg.sh"

[[ $# -eq 3 ]] || { echo "usage: agent_e2e.sh INKWIRED INKWIRE HANDLER_EXAMPLE" >&2; exit 2; }
inkwired=$(realpath -- "$1")
inkwire=$(realpath -- "$2")
handler_example=$(realpath -- "$3")
for bin in "$inkwired" "$inkwire" "$handler_example"; do
  [[ -f $bin && -x $bin ]] || die "$bin is not an executable file"
done
for tool in curl openssl jq psql timeout sha256sum "$INKWIRE_PYTHON"; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done

pg_fixture_dir=${INKWIRE_TEST_PG_DIR:-}
clean_env=()
while IFS= read -r var; do
  if [[ $var == INKWIRE_* && $var != INKWIRE_PYTHON ]]; then clean_env+=(-u "$var"); fi
done < <(compgen -e)

started=$SECONDS
work=$(mktemp -d /tmp/inkwire-agent-e2e.XXXXXX)
chmod 755 "$work" # a private cluster's owner (postgres) must reach it
: >"$work/pids"   # every background process, one pid a line (cases run in subshells)
own_pg=0
admin_url=
db_name=
zone=edge.test
name=shop
failed=0
crashes=0
results=()

log() { printf '[%3ds] %s\n' "$((SECONDS - started))" "$*"; }
setup_fail() {
  printf 'agent_e2e: setup failed: %s\n' "$*" >&2
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
# The server, the agent and the origin may be (re)started inside a case's subshell: their pids
# live in files, not in variables.
pid_of() { cat "$work/$1.pid" 2>/dev/null || true; } # pid_of server|agent|origin

cleanup() {
  local rc=$?
  set +e
  local pid
  for pid in $(pid_of agent) $(pid_of origin) $(pid_of agent-chat) $(pid_of agent-vault) $(pid_of agent-secure) $(pid_of agent-inproc) $(pid_of ex-sigs); do stop_pid "$pid" 2; done
  while read -r pid; do stop_pid "$pid" 2; done <"$work/pids"
  stop_pid "$(pid_of server)" 15
  if [[ -n $db_name && -n $admin_url ]]; then
    timeout 20 psql -X -q "$admin_url" -c "DROP DATABASE IF EXISTS \"$db_name\" WITH (FORCE)" >/dev/null 2>&1 ||
      warn "could not drop database $db_name"
  fi
  ((own_pg == 0)) || pg_stop "$work/pg"
  if ((rc != 0)) && [[ -f $work/serve.log ]]; then
    echo "----- server log: warnings and errors (last 40) -----" >&2
    awk '$2 ~ /^(warn|warning|error|critical)$/' "$work/serve.log" | tail -n 40 | cut -c1-400 >&2
    echo "----- agent stderr (last 20) -----" >&2
    tail -n 20 "$work/agent.err" 2>/dev/null | cut -c1-400 >&2
  fi
  if [[ ${KEEP:-0} == 1 ]]; then
    echo "agent_e2e: kept $work" >&2
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
db_name="agent_e2e_$$_${RANDOM}"
timeout 20 psql -X -q -v ON_ERROR_STOP=1 "$admin_url" -c "CREATE DATABASE \"$db_name\"" >/dev/null ||
  setup_fail "cannot create database $db_name"
db_url="${admin_url%/*}/$db_name"

api_port=$(free_port)
hp=$(free_port) # edge.listen: the agent (relay) and third parties (TLS)
pp=$(free_port) # edge.http_listen: plain HTTP
op=$(free_port) # the origin
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
# 10 days: inside the agents' 14-day renewal window from the start, so case 12 sees a renewal.
leaf_days = 10
[tls]
cert_file = "$work/server.pem"
key_file = "$work/server.key"
[relay]
listen = ""
queue_wait_seconds = 2
response_deadline_seconds = 8
[edge]
listen = "127.0.0.1:$hp"
http_listen = "127.0.0.1:$pp"
public_https_port = $hp
cert_check_seconds = 0
max_request_body_bytes = 100663296
TOML
# (relay.response_deadline_seconds is 8 below: case 13 waits for it.)

log "migrate, server certificate, organisation, API key"
iw migrate -c "$cfg" >"$work/migrate.out" 2>&1 || setup_fail "inkwired migrate failed: $(tail -n 3 "$work/migrate.out")"
iw ca issue-server-cert -c "$cfg" --cert-out "$work/server.pem" --key-out "$work/server.key" \
  --dns "$zone" --dns "*.$zone" --ip 127.0.0.1 >"$work/cert.out" 2>&1 ||
  setup_fail "issue-server-cert failed: $(tail -n 3 "$work/cert.out")"
iw admin create-org -c "$cfg" --name e2e >"$work/org.out" 2>&1 || setup_fail "admin create-org failed"
api_key=$(iw admin create-api-key -c "$cfg" --org e2e --scope admin 2>"$work/key.err") || setup_fail "create-api-key failed"
[[ $api_key == ApiKey_* ]] || setup_fail "create-api-key printed '$api_key'"

# start_server: `inkwired serve`, its output appended to serve.log, its pid in server.pid; waits
# for the API and both edge ports.
start_server() {
  echo "----- agent_e2e: inkwired serve starts -----" >>"$work/serve.log"
  (exec env "${clean_env[@]}" "$inkwired" serve -c "$cfg" >>"$work/serve.log" 2>&1) &
  echo $! >"$work/server.pid"
  local pid=$! deadline=$((SECONDS + 20))
  until curl -fsS --max-time 2 "http://127.0.0.1:$api_port/readyz" >/dev/null 2>&1 && port_accepts "$hp" && port_accepts "$pp"; do
    pid_alive "$pid" || { log "inkwired serve exited during start-up: $(tail -n 5 "$work/serve.log")"; return 1; }
    ((SECONDS < deadline)) || { log "inkwired serve not ready after 20 s"; return 1; }
    sleep 0.1
  done
}
log "serve"
start_server || setup_fail "inkwired serve did not start"

# The origin: files from $work/www on GET and HEAD (http.server), and on POST an echo of the
# body with its sha256 in X-Body-Sha256. HTTP/1.1 with keep-alive, as the agent pools connections.
mkdir -p "$work/www"
printf 'hello from the origin\n' >"$work/www/hello.txt"
printf '<!doctype html><title>agent e2e</title><p>index</p>\n' >"$work/www/index.html"
head -c $((5 * 1024 * 1024)) /dev/urandom >"$work/www/big.bin"
cat >"$work/origin.py" <<'PY'
import hashlib, http.server, sys

class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(parts), "chunked"
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0)), "length"

    def do_POST(self):
        body, framing = self.read_body()
        if self.path.startswith("/sink"):
            # Large uploads: only the digest comes back (the echo would exceed the response cap).
            answer = ("%d %s %s\n" % (len(body), hashlib.sha256(body).hexdigest(), framing)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Body-Sha256", hashlib.sha256(body).hexdigest())
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("origin: " + (fmt % args) + "\n")

port, root = int(sys.argv[1]), sys.argv[2]
handler = lambda *a, **k: Handler(*a, directory=root, **k)
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
server.daemon_threads = True
print("origin listening", flush=True)
server.serve_forever()
PY
start_origin() {
  ("$INKWIRE_PYTHON" "$work/origin.py" "$op" "$work/www" >>"$work/origin.log" 2>&1) &
  echo $! >"$work/origin.pid"
  wait_until 10 port_accepts "$op" || { log "the origin did not start: $(tail -n 5 "$work/origin.log")"; return 1; }
}
start_origin || setup_fail "the origin did not start"
log "stack up: https $hp, http $pp, api $api_port, origin $op"

# ---------------------------------------------------------------------------------------------
# The agent.

agent_env=(env "${clean_env[@]}" HOME="$work/home" INKWIRE_API_URL="http://127.0.0.1:$api_port"
  INKWIRE_API_KEY="$api_key" INKWIRE_CA_FILE="$ca")
mkdir -p "$work/home" "$work/state"
state=$work/state/$name
# cli ARGS...: the inkwire CLI, configured like the agent.
cli() { timeout 20 "${agent_env[@]}" "$inkwire" "$@"; }

# start_agent: `inkwire connect` on $state in the background, appending to agent.out (stdout)
# and agent.err (stderr); its pid in agent.pid, its exit status (once it exits) in agent.rc. The
# SIGINT disposition is reset to the default, since a background job of a script starts with
# SIGINT ignored and a user's shell would not do that. Does not wait.
start_agent() {
  rm -f -- "$work/agent.rc"
  echo "----- agent_e2e: inkwire connect starts -----" >>"$work/agent.err"
  (
    # shellcheck disable=SC2016 # $1 is the inner shell's
    "${agent_env[@]}" sh -c 'echo $$ >"$1"; shift; exec "$@"' _ "$work/agent.pid" \
      env --default-signal=INT,QUIT "$inkwire" connect "$name" --forward-to "http://127.0.0.1:$op" \
      --state-dir "$state" --max-request-bytes 100663296 </dev/null >>"$work/agent.out" 2>>"$work/agent.err"
    echo $? >"$work/agent.rc"
  ) &
  echo $! >>"$work/pids"
  wait_until 5 test -s "$work/agent.pid" || { log "no agent pid"; return 1; }
}
connected_lines() { grep -c ' connected$' "$work/agent.err" || true; }
# wait_connected SECONDS N: the agent's stderr holds at least N "connected" lines.
wait_connected() {
  local deadline=$((SECONDS + $1))
  until (($(connected_lines) >= $2)); do
    ((SECONDS < deadline)) || return 1
    [[ ! -e $work/agent.rc ]] || return 1
    sleep 0.1
  done
}
# ensure_agent: a connected agent on $state (started when none runs).
ensure_agent() {
  local pid
  pid=$(pid_of agent)
  if [[ -n $pid ]] && pid_alive "$pid"; then return 0; fi
  rm -f -- "$work/agent.pid"
  local before
  before=$(connected_lines)
  start_agent || fail "could not start the agent"
  wait_connected 10 $((before + 1)) || fail "the agent did not connect within 10 s: $(tail -n 5 "$work/agent.err")"
}
# stop_agent: SIGTERM, then waits for the exit (a failure when it takes over 5 s).
stop_agent() {
  local pid
  pid=$(pid_of agent)
  [[ -n $pid ]] || return 0
  stop_pid "$pid" 5
  wait_until 5 test -e "$work/agent.rc" || true
}
tunnel_json() { cli tunnels get "$name" --json; } # the Tunnel object
connected_is() { [[ $(tunnel_json | jq -r .currently_connected) == "$1" ]]; }
tunnel_count() { cli tunnels list --json | jq '.tunnels | length'; }

# ---------------------------------------------------------------------------------------------
# Client helpers. Case N keeps its files as $work/cN.*

# c ARGS...: curl to the edge, $name.$zone:$hp resolved to 127.0.0.1 (SNI and Host from the URL).
c() { curl -sS --max-time 20 --cacert "$ca" --resolve "$name.$zone:$hp:127.0.0.1" "$@"; }
url() { echo "https://$name.$zone:$hp$1"; } # url PATH
header() { sed -n "s/^$2: *//Ip" "$1" | tr -d '\r' | head -n 1; } # header FILE NAME
status_of() { sed -n '1s/^HTTP\/[0-9.]* \([0-9]*\).*/\1/p' "$1"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
# get_code PATH: the status of a GET (000 when the request failed).
get_code() { c -o /dev/null -w '%{http_code}' "$(url "$1")" 2>/dev/null || true; }
# request_logged METHOD PATH STATUS: the agent printed a request line for it.
request_logged() { grep -Eq "^[0-9:]+ +$1 +$2 +$3 " "$work/agent.out"; }

# ---------------------------------------------------------------------------------------------
case_1() { # first connect: tunnel created and connected; state.json
  ! cli tunnels get "$name" --json >/dev/null 2>&1 || fail "tunnel $name exists before the first connect"
  [[ ! -e $state ]] || fail "$state exists before the first connect"
  ensure_agent
  grep -q "^Forwarding https://${name}\.${zone}[:/0-9]* -> http://127.0.0.1:$op\$" "$work/agent.err" ||
    fail "no 'Forwarding https://$name.$zone... -> http://127.0.0.1:$op' line: $(head -n 5 "$work/agent.err")"
  wait_until 5 connected_is true || fail "currently_connected is not true after 5 s: $(tunnel_json)"
  local t
  t=$(tunnel_json)
  [[ $(jq -r .tunnel_name <<<"$t") == "$name" && $(jq -r .tls_mode <<<"$t") == edge ]] ||
    fail "tunnel: $(jq -c '{tunnel_name, tls_mode}' <<<"$t")"
  [[ -f $state/state.json ]] || fail "no $state/state.json: $(ls -la "$state" 2>&1)"
  [[ $(stat -c %a "$state") == 700 ]] || fail "$state has mode $(stat -c %a "$state"), want 700"
  [[ $(stat -c %a "$state/state.json") == 600 ]] || fail "state.json has mode $(stat -c %a "$state/state.json"), want 600"
  local s=$state/state.json
  jq -e . "$s" >/dev/null || fail "state.json is not JSON: $(head -c 300 "$s")"
  [[ $(jq -r .tunnel_id "$s") == "$(jq -r .id <<<"$t")" ]] ||
    fail "state.json tunnel_id $(jq -r .tunnel_id "$s"), the API's id $(jq -r .id <<<"$t")"
  [[ $(jq -r .name "$s") == "$name" ]] || fail "state.json name: $(jq -r .name "$s")"
  [[ $(jq -r .mode "$s") == edge ]] || fail "state.json mode: $(jq -r .mode "$s")"
  [[ $(jq -r '.secret // ""' "$s") != "" ]] || fail "state.json has no secret"
  [[ $(jq -r '.zone // ""' "$s") != "" ]] || fail "state.json has no zone"
  [[ $(jq -r '.public_host // ""' "$s") == "$name.$zone"* ]] || fail "state.json public_host: $(jq -r .public_host "$s")"
  log "   (state.json: $(jq -c 'del(.secret)' "$s"))"
}

case_2() { # GET through the edge: small files, the 5 MiB file, the agent's request lines
  ensure_agent
  local f=$work/c2 code
  code=$(c -o "$f.hello" -w '%{http_code}' "$(url /hello.txt)") || fail "GET /hello.txt failed: $code"
  [[ $code == 200 ]] || fail "GET /hello.txt: status $code: $(head -c 300 "$f.hello")"
  cmp -s "$f.hello" "$work/www/hello.txt" || fail "GET /hello.txt: body '$(head -c 200 "$f.hello")'"
  code=$(c -o "$f.index" -w '%{http_code}' "$(url /)") || fail "GET / failed: $code"
  [[ $code == 200 ]] || fail "GET /: status $code"
  cmp -s "$f.index" "$work/www/index.html" || fail "GET /: status $code, body $(head -c 200 "$f.index")"
  code=$(c -D "$f.h" -o "$f.big" -w '%{http_code}' "$(url /big.bin)") || fail "GET /big.bin failed: $code"
  [[ $code == 200 ]] || fail "GET /big.bin: status $code"
  [[ $(stat -c %s "$f.big") == $((5 * 1024 * 1024)) ]] || fail "GET /big.bin: $(stat -c %s "$f.big") bytes"
  [[ $(sha "$f.big") == "$(sha "$work/www/big.bin")" ]] || fail "GET /big.bin: sha256 differs"
  code=$(get_code /missing.txt)
  [[ $code == 404 ]] || fail "GET /missing.txt: status $code, want the origin's 404"
  local p
  for p in "/hello.txt 200" "/big.bin 200" "/missing.txt 404"; do
    wait_until 3 request_logged GET "${p% *}" "${p#* }" || fail "no 'GET ${p% *} ${p#* }' line on the agent's stdout: $(tail -n 5 "$work/agent.out")"
  done
}

case_3() { # POST 1 MiB to the echo, over HTTP/1.1 and h2
  ensure_agent
  local f=$work/c3 want v
  head -c $((1024 * 1024)) /dev/urandom >"$f.bin"
  want=$(sha "$f.bin")
  for v in --http1.1 --http2; do
    c "$v" -D "$f$v.h" -o "$f$v.out" -w '%{http_code} %{http_version}\n' -H 'Content-Type: application/octet-stream' \
      --data-binary "@$f.bin" "$(url /upload)" >"$f$v.code" || fail "$v: curl failed: $(cat "$f$v.code")"
    read -r code version <"$f$v.code"
    [[ $code == 200 ]] || fail "$v: status $code: $(head -c 300 "$f$v.out")"
    [[ $v != --http2 || $version == 2 ]] || fail "curl --http2 used HTTP/$version"
    [[ $(header "$f$v.h" x-body-sha256) == "$want" ]] || fail "$v: the origin got sha256 $(header "$f$v.h" x-body-sha256), sent $want"
    [[ $(sha "$f$v.out") == "$want" ]] || fail "$v: the echoed body differs ($(stat -c %s "$f$v.out") bytes)"
  done
  wait_until 3 request_logged POST /upload 200 || fail "no 'POST /upload 200' line on the agent's stdout"
}

case_4() { # origin down: 502 from the agent; origin back: 200
  ensure_agent
  local f=$work/c4
  [[ $(get_code /hello.txt) == 200 ]] || fail "before: GET /hello.txt is not 200"
  stop_pid "$(pid_of origin)" 5
  ! port_accepts "$op" || fail "the origin still accepts connections"
  local v
  for v in --http1.1 --http2; do
    c "$v" -D "$f$v.h" -o "$f$v.body" "$(url /hello.txt)" || fail "$v: curl failed with the origin down"
    [[ $(status_of "$f$v.h") == 502 ]] || fail "$v: status $(status_of "$f$v.h") with the origin down, want 502"
    [[ -z $(header "$f$v.h" x-inkwire-error) ]] ||
      fail "$v: x-inkwire-error '$(header "$f$v.h" x-inkwire-error)' (the edge answered, not the agent)"
  done
  wait_until 3 request_logged GET /hello.txt 502 || fail "no 'GET /hello.txt 502' line on the agent's stdout"
  grep -q 'agent answered 502 (upstream-unreachable)' "$work/serve.log" ||
    fail "no 'agent answered 502 (upstream-unreachable)' line in the server log"
  log "   (origin down: 502, body '$(head -c 100 "$f--http1.1.body")')"
  start_origin || fail "the origin did not start again"
  local code
  code=$(get_code /hello.txt)
  [[ $code == 200 ]] || fail "the first GET after the origin came back: status $code"
  code=$(c -o "$f.big" -w '%{http_code}' "$(url /big.bin)")
  [[ $code == 200 && $(sha "$f.big") == "$(sha "$work/www/big.bin")" ]] || fail "GET /big.bin after the origin came back: $code"
}

case_5() { # restart with the same state directory: the same tunnel
  ensure_agent
  local id created_at creates
  id=$(jq -r .tunnel_id "$state/state.json")
  created_at=$(tunnel_json | jq -r .created_at)
  stop_agent
  [[ $(cat "$work/agent.rc" 2>/dev/null) == 0 ]] || fail "the first agent exited with '$(cat "$work/agent.rc" 2>/dev/null)' on SIGTERM"
  ensure_agent
  [[ $(jq -r .tunnel_id "$state/state.json") == "$id" ]] || fail "tunnel_id changed: $id -> $(jq -r .tunnel_id "$state/state.json")"
  [[ $(tunnel_json | jq -r .id) == "$id" ]] || fail "the API's tunnel $name has id $(tunnel_json | jq -r .id), state $id"
  [[ $(tunnel_json | jq -r .created_at) == "$created_at" ]] || fail "created_at changed: $created_at -> $(tunnel_json | jq -r .created_at)"
  local n
  n=$(tunnel_count)
  [[ $n == 1 ]] || fail "$n tunnels after the restart, want 1: $(cli tunnels list)"
  creates=$(grep -c "tunnel created .* name=$name " "$work/serve.log" || true)
  [[ $creates == 1 ]] || fail "$creates 'tunnel created ... name=$name' lines in the server log, want 1"
  wait_until 5 connected_is true || fail "currently_connected is not true after the restart"
  [[ $(get_code /hello.txt) == 200 ]] || fail "GET /hello.txt after the restart is not 200"
  log "   (tunnel $id reused, created_at $created_at)"
}

case_6() { # server restart: the agent reconnects by itself
  ensure_agent
  local before_conn before_re t0 ms
  before_conn=$(connected_lines)
  before_re=$(grep -c ' reconnecting in ' "$work/agent.err" || true)
  stop_pid "$(pid_of server)" 15
  wait_until 10 test "$(grep -c ' reconnecting in ' "$work/agent.err" || true)" -gt "$before_re" ||
    fail "no 'reconnecting' line within 10 s of the server's exit: $(tail -n 3 "$work/agent.err")"
  start_server || fail "the server did not start again"
  t0=$(now_ms)
  wait_connected 10 $((before_conn + 1)) ||
    fail "no 'connected' line within 10 s of the server's restart: $(tail -n 5 "$work/agent.err")"
  ms=$(($(now_ms) - t0))
  local code
  code=$(get_code /hello.txt)
  [[ $code == 200 ]] || fail "GET /hello.txt after the reconnect: $code"
  wait_until 5 connected_is true || fail "currently_connected is not true after the reconnect"
  log "   (connected again $ms ms after the server was ready; $(grep ' reconnecting in ' "$work/agent.err" | tail -n 1))"
}

case_7() { # a wrong secret: exit 5 with one error line, within seconds
  ensure_agent
  local bad=$work/state/bad f=$work/c7 rc=0 t0 ms
  mkdir -m 700 "$bad"
  jq '.secret = "wrong-" + .secret' "$state/state.json" >"$bad/state.json"
  chmod 600 "$bad/state.json"
  t0=$(now_ms)
  timeout 15 "${agent_env[@]}" "$inkwire" connect "$name" --forward-to "http://127.0.0.1:$op" --state-dir "$bad" \
    </dev/null >"$f.out" 2>"$f.err" || rc=$?
  ms=$(($(now_ms) - t0))
  ((rc != 124)) || fail "still running after 15 s: $(cat "$f.err")"
  [[ $rc == 5 ]] || fail "exit status $rc, want 5: $(cat "$f.err")"
  ((ms < 5000)) || fail "took $ms ms"
  local errors
  errors=$(grep -c '^inkwire: ' "$f.err" || true)
  [[ $errors == 1 ]] || fail "$errors 'inkwire: ' lines on stderr, want 1: $(cat "$f.err")"
  grep -q '^inkwire: .*secret' "$f.err" || fail "the error does not mention the secret: $(grep '^inkwire: ' "$f.err")"
  # The tunnel's own agent is unaffected.
  wait_until 3 connected_is true || fail "currently_connected is false after the refused agent"
  [[ $(get_code /hello.txt) == 200 ]] || fail "GET /hello.txt after the refused agent is not 200"
  pid_alive "$(pid_of agent)" || fail "the tunnel's agent exited"
  log "   (exit 5 after $ms ms: $(grep '^inkwire: ' "$f.err"))"
}

# signal_agent SIGNAL: sends SIGNAL to a connected agent; it must exit 0 within 5 s, and the API
# must show the tunnel disconnected within 5 s.
signal_agent() {
  local sig=$1 pid t0 ms rc
  ensure_agent
  wait_until 5 connected_is true || fail "$sig: currently_connected is not true before the signal"
  pid=$(pid_of agent)
  t0=$(now_ms)
  kill "-$sig" "$pid"
  wait_gone "$pid" 5 || fail "$sig: the agent still runs 5 s after the signal"
  ms=$(($(now_ms) - t0))
  wait_until 3 test -e "$work/agent.rc" || fail "$sig: no exit status recorded"
  rc=$(cat "$work/agent.rc")
  [[ $rc == 0 ]] || fail "$sig: exit status $rc, want 0: $(tail -n 3 "$work/agent.err")"
  tail -n 2 "$work/agent.err" | grep -q ' closed: ' || fail "$sig: no 'closed:' line: $(tail -n 3 "$work/agent.err")"
  wait_until 5 connected_is false || fail "$sig: currently_connected is still true 5 s after the exit"
  log "   ($sig: exit 0 after $ms ms, '$(tail -n 1 "$work/agent.err")')"
}
case_8() { # SIGINT and SIGTERM: exit 0 at once, the tunnel disconnected
  signal_agent INT
  signal_agent TERM
}


# ---------------------------------------------------------------------------------------------
# More tunnels, each with its own agent: chat (WebSocket origin over http), vault (the same
# origin over https, with a certificate from the installation CA).
wsp=$(free_port)  # ws_origin.js over http
wssp=$(free_port) # ws_origin.js over https
export NODE_PATH=/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}
start_node_origin() { # start_node_origin NAME PORT [CERT KEY]
  local n=$1
  shift
  (exec node "$here/ws_origin.js" "$@" >>"$work/$n.log" 2>&1) &
  echo $! >"$work/$n.pid"
  echo $! >>"$work/pids"
  wait_until 10 port_accepts "$1" || fail "the $n origin did not start: $(tail -n 5 "$work/$n.log")"
}
# start_named_agent NAME FORWARD_TO [ARGS...]: `inkwire connect NAME` in the background, logs in
# agent-NAME.out/.err; waits for its "connected" line.
start_named_agent() {
  local n=$1 to=$2
  shift 2
  (exec "${agent_env[@]}" env --default-signal=INT "$inkwire" connect "$n" --forward-to "$to" \
    --state-dir "$work/state/$n" "$@" </dev/null >>"$work/agent-$n.out" 2>>"$work/agent-$n.err") &
  echo $! >"$work/agent-$n.pid"
  echo $! >>"$work/pids"
  local deadline=$((SECONDS + 10))
  until grep -q ' connected$' "$work/agent-$n.err" 2>/dev/null; do
    ((SECONDS < deadline)) || fail "agent $n did not connect: $(tail -n 5 "$work/agent-$n.err")"
    pid_alive "$(cat "$work/agent-$n.pid")" || fail "agent $n exited: $(tail -n 5 "$work/agent-$n.err")"
    sleep 0.1
  done
}
ws_client() { # ws_client NAME OUT: edge_clients.js ws-h1 against NAME.$zone
  timeout 20 node "$here/edge_clients.js" ws-h1 "$hp" "$1.$zone" "$ca" >"$2.json" 2>"$2.err" || true
  jq -e . "$2.json" >/dev/null 2>&1 || fail "ws client: $(cat "$2.json" "$2.err" | head -c 500)"
  [[ $(jq -r '.error // empty' "$2.json") == "" ]] || fail "ws client error: $(cat "$2.json")"
  [[ $(jq -r .protocol "$2.json") == chat.v1 ]] || fail "subprotocol $(jq -r .protocol "$2.json"), want chat.v1 (the origin's choice)"
  [[ $(jq -r .text "$2.json") == 'hello edge' ]] || fail "text echo: $(jq -r .text "$2.json")"
  [[ $(jq -r .binary_ok "$2.json") == true ]] || fail "1 MiB binary echo differs (got $(jq -r .binary_len "$2.json") bytes)"
  [[ $(jq -r .close_code "$2.json") == 4001 ]] || fail "close code $(jq -r .close_code "$2.json"), want the origin's 4001"
  [[ $(jq -r .close_reason "$2.json") == bye ]] || fail "close reason '$(jq -r .close_reason "$2.json")', want 'bye'"
}

case_9() { # WebSocket through the agent to a local ws origin (§6.4)
  [[ -n $(pid_of ws-origin) ]] && pid_alive "$(pid_of ws-origin)" || start_node_origin ws-origin "$wsp"
  local a
  a=$(pid_of agent-chat)
  [[ -n $a ]] && pid_alive "$a" || start_named_agent chat "http://127.0.0.1:$wsp"
  ws_client chat "$work/c9"
  wait_until 3 grep -Eq '^[0-9:]+ +GET +/ws\?x=1 +101 ' "$work/agent-chat.out" ||
    fail "no 'GET /ws?x=1 101' line on the agent's stdout: $(tail -n 3 "$work/agent-chat.out")"
  # An origin that refuses the upgrade (403): its status reaches the third party.
  local code
  code=$(curl -sS --max-time 10 --cacert "$ca" --resolve "chat.$zone:$hp:127.0.0.1" -o /dev/null -w '%{http_code}' \
    --http1.1 -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
    -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' "https://chat.$zone:$hp/refuse")
  [[ $code == 403 ]] || fail "an upgrade the origin refuses: status $code, want the origin's 403"
  local code2
  code2=$(curl -sS --max-time 10 --cacert "$ca" --resolve "chat.$zone:$hp:127.0.0.1" -o /dev/null -w '%{http_code}' "https://chat.$zone:$hp/hello")
  [[ $code2 == 200 ]] || fail "GET /hello on chat: $code2"
  # Over this agent's own body cap (32 MiB, the default): 413 from the agent, announced or not,
  # and the tunnel goes on (the intake is cut only after the relay has the answer).
  head -c $((40 * 1024 * 1024)) /dev/zero >"$work/c9.big"
  local v big_code
  for v in "" "-H Transfer-Encoding:chunked"; do
    # shellcheck disable=SC2086 # $v is one flag and its value, or nothing
    : >"$work/c9.big.out"
    big_code=$(curl -sS --max-time 20 --cacert "$ca" --resolve "chat.$zone:$hp:127.0.0.1" --http1.1 $v -o "$work/c9.big.out" \
      -w '%{http_code}' --data-binary "@$work/c9.big" "https://chat.$zone:$hp/upload") || true
    [[ $big_code == 413 ]] || fail "40 MiB POST over the agent's 32 MiB cap ${v:-with a length}: status $big_code, want 413: $(head -c 200 "$work/c9.big.out" 2>/dev/null)"
  done
  code2=$(curl -sS --max-time 10 --cacert "$ca" --resolve "chat.$zone:$hp:127.0.0.1" -o /dev/null -w '%{http_code}' "https://chat.$zone:$hp/hello")
  [[ $code2 == 200 ]] || fail "GET /hello on chat after the refused uploads: $code2"
  log "   (ws: $(jq -c . "$work/c9.json"); refused upgrade: $code)"
}

case_10() { # an https:// upstream: GET and WebSocket, verified with --forward-to-ca-bundle
  if [[ ! -s $work/origin-tls.pem ]]; then
    iw ca issue-server-cert -c "$cfg" --cert-out "$work/origin-tls.pem" --key-out "$work/origin-tls.key" \
      --dns localhost --ip 127.0.0.1 >"$work/c10.cert" 2>&1 || fail "issue-server-cert for the origin: $(tail -n 3 "$work/c10.cert")"
  fi
  [[ -n $(pid_of wss-origin) ]] && pid_alive "$(pid_of wss-origin)" ||
    start_node_origin wss-origin "$wssp" "$work/origin-tls.pem" "$work/origin-tls.key"
  # Without the CA the upstream's certificate is not trusted: 502 from the agent.
  start_named_agent vault "https://127.0.0.1:$wssp"
  local f=$work/c10 code
  code=$(curl -sS --max-time 10 --cacert "$ca" --resolve "vault.$zone:$hp:127.0.0.1" -o "$f.body" -w '%{http_code}' "https://vault.$zone:$hp/hello")
  [[ $code == 502 ]] || fail "untrusted upstream certificate: status $code, want 502"
  stop_pid "$(pid_of agent-vault)" 5
  start_named_agent vault "https://127.0.0.1:$wssp" --forward-to-ca-bundle "$ca"
  code=$(curl -sS --max-time 10 --cacert "$ca" --resolve "vault.$zone:$hp:127.0.0.1" -D "$f.h" -o "$f.body" -w '%{http_code}' "https://vault.$zone:$hp/hello")
  [[ $code == 200 ]] || fail "GET /hello over an https upstream: status $code: $(head -c 200 "$f.body")"
  [[ $(cat "$f.body") == "hello from node" ]] || fail "body '$(head -c 200 "$f.body")'"
  [[ $(header "$f.h" x-seen-forwarded-host) == "vault.$zone" ]] || fail "the origin saw X-Forwarded-Host '$(header "$f.h" x-seen-forwarded-host)'"
  [[ $(header "$f.h" x-seen-forwarded-proto) == https ]] || fail "the origin saw X-Forwarded-Proto '$(header "$f.h" x-seen-forwarded-proto)'"
  ws_client vault "$work/c10ws"
  stop_pid "$(pid_of agent-vault)" 5
}

case_11() { # a 48 MiB upload streams through the agent (chunked and with a length); its memory stays flat
  ensure_agent
  local f=$work/c11 pid hwm_before hwm_after want line server server_before server_after
  pid=$(pid_of agent)
  server=$(pid_of server)
  server_before=$(awk '/^VmHWM/ {print $2}' "/proc/$server/status")
  head -c $((48 * 1024 * 1024)) /dev/urandom >"$f.bin"
  want=$(sha "$f.bin")
  hwm_before=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
  c --http1.1 -o "$f.len" -H 'Content-Type: application/octet-stream' --data-binary "@$f.bin" "$(url /sink)" ||
    fail "upload with a length failed"
  read -r -a line <"$f.len"
  [[ ${line[0]} == $((48 * 1024 * 1024)) && ${line[1]} == "$want" && ${line[2]} == length ]] ||
    fail "upload with a length: the origin got '$(cat "$f.len")', want $((48 * 1024 * 1024)) $want length"
  c --http1.1 -o "$f.chunked" -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/octet-stream' \
    --data-binary "@$f.bin" "$(url /sink)" || fail "chunked upload failed"
  read -r -a line <"$f.chunked"
  [[ ${line[0]} == $((48 * 1024 * 1024)) && ${line[1]} == "$want" && ${line[2]} == chunked ]] ||
    fail "chunked upload: the origin got '$(cat "$f.chunked")', want $((48 * 1024 * 1024)) $want chunked"
  hwm_after=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
  # Over the edge's own cap (edge.max_request_body_bytes, 96 MiB here), announced: the edge's 413.
  local over
  over=$(head -c $((97 * 1024 * 1024)) /dev/zero | c --http1.1 -o /dev/null -w '%{http_code}' -H 'Content-Type: application/octet-stream' \
    -H "Content-Length: $((97 * 1024 * 1024))" --data-binary @- "$(url /sink)") || true
  [[ $over == 413 ]] || fail "a 97 MiB upload over the edge's 96 MiB cap: status $over, want 413"
  if [[ -n ${ASAN_OPTIONS:-} ]]; then
    # AddressSanitizer keeps freed memory in quarantine (256 MiB): RSS says nothing there.
    log "   (sanitizer build: the RSS bounds are not checked)"
    return 0
  fi
  ((hwm_after - hwm_before < 16384)) || fail "the agent's peak RSS grew by $((hwm_after - hwm_before)) KiB over two 48 MiB uploads"
  # The edge streams them too (its HTTP/1.1 reader once kept every byte of a request's body).
  server_after=$(awk '/^VmHWM/ {print $2}' "/proc/$server/status")
  ((server_after - server_before < 16384)) ||
    fail "inkwired's peak RSS grew by $((server_after - server_before)) KiB over two 48 MiB HTTP/1.1 uploads"
  log "   (peak RSS: agent ${hwm_before} -> ${hwm_after} KiB, inkwired ${server_before} -> ${server_after} KiB)"
}

case_12() { # passthrough: the agent terminates TLS with its own leaf and serves h1 and h2 (§4.9, §6.5)
  local n=secure f=$work/c12 code v a c_out
  a=$(pid_of agent-$n)
  [[ -n $a ]] && pid_alive "$a" || start_named_agent "$n" "http://127.0.0.1:$op" --tls-mode passthrough
  [[ -s $work/state/$n/cert_chain.pem && -s $work/state/$n/private_key.pem ]] ||
    fail "no cert_chain.pem / private_key.pem in the state directory: $(ls -la "$work/state/$n")"
  [[ $(stat -c %a "$work/state/$n/private_key.pem") == 600 ]] || fail "private_key.pem mode $(stat -c %a "$work/state/$n/private_key.pem")"
  local t
  t=$(cli tunnels get "$n" --json)
  [[ $(jq -r .tls_mode <<<"$t") == passthrough && $(jq -r .status <<<"$t") == active ]] ||
    fail "tunnel: $(jq -c '{tls_mode, status}' <<<"$t")"
  # The leaf the third party sees is the agent's, signed by the installation CA.
  timeout 10 openssl s_client -connect "127.0.0.1:$hp" -servername "$n.$zone" -CAfile "$ca" -verify_return_error \
    </dev/null >"$f.sclient" 2>&1 || fail "openssl s_client failed: $(tail -n 5 "$f.sclient")"
  local seen api
  seen=$(openssl x509 -in "$f.sclient" -outform DER 2>/dev/null | sha256sum | cut -d' ' -f1)
  api=$(jq -r .cert_fingerprint_sha256 <<<"$t" | tr -d ':' | tr 'A-F' 'a-f')
  [[ -n $seen && $seen == "$api" ]] || fail "leaf fingerprint $seen, the API says $api"
  for v in --http1.1 --http2; do
    code=$(curl -sS --max-time 20 --cacert "$ca" --resolve "$n.$zone:$hp:127.0.0.1" "$v" -o "$f$v.out" \
      -w '%{http_code} %{http_version}' "https://$n.$zone:$hp/hello.txt") || fail "$v: curl failed"
    [[ $code == "200 ${v#--http}" ]] || fail "$v: status and version '$code'"
    cmp -s "$f$v.out" "$work/www/hello.txt" || fail "$v: body '$(head -c 200 "$f$v.out")'"
  done
  head -c $((1024 * 1024)) /dev/urandom >"$f.bin"
  c_out=$(curl -sS --max-time 20 --cacert "$ca" --resolve "$n.$zone:$hp:127.0.0.1" --http2 -D "$f.h" -o "$f.echo" \
    -w '%{http_code}' --data-binary "@$f.bin" "https://$n.$zone:$hp/upload") || fail "POST over h2 failed"
  [[ $c_out == 200 ]] || fail "POST over h2: $c_out"
  [[ $(sha "$f.echo") == "$(sha "$f.bin")" ]] || fail "POST over h2: the echo differs"
  wait_until 3 grep -Eq "^[0-9:]+ +TLS +$n\.$zone " "$work/agent-$n.out" ||
    fail "no 'TLS $n.$zone' line on the agent's stdout: $(tail -n 3 "$work/agent-$n.out")"
  log "   (leaf $seen; $(grep -c 'TLS' "$work/agent-$n.out") TLS connections logged)"
  # Renewal while running: the leaf (10 days, ca.leaf_days) is always within 14 days of expiry, so
  # an agent that checks every 2 s re-signs, and new connections get the new leaf.
  stop_pid "$(pid_of agent-$n)" 5
  start_named_agent "$n" "http://127.0.0.1:$op" --tls-mode passthrough --cert-check-seconds 2
  local first renewed=''
  first=$(openssl x509 -in "$work/state/$n/cert_chain.pem" -outform DER | sha256sum | cut -d' ' -f1)
  local deadline=$((SECONDS + 10))
  while ((SECONDS < deadline)); do
    renewed=$(openssl x509 -in "$work/state/$n/cert_chain.pem" -outform DER 2>/dev/null | sha256sum | cut -d' ' -f1)
    [[ $renewed == "$first" ]] || break
    sleep 0.3
  done
  [[ $renewed != "$first" ]] || fail "cert_chain.pem was not renewed within 10 s (--cert-check-seconds 2)"
  sleep 0.5
  timeout 10 openssl s_client -connect "127.0.0.1:$hp" -servername "$n.$zone" -CAfile "$ca" -verify_return_error \
    </dev/null >"$f.sclient2" 2>&1 || fail "openssl s_client after the renewal failed: $(tail -n 5 "$f.sclient2")"
  seen=$(openssl x509 -in "$f.sclient2" -outform DER 2>/dev/null | sha256sum | cut -d' ' -f1)
  [[ $seen != "$first" ]] || fail "a new connection still gets the old leaf after the renewal"
  code=$(curl -sS --max-time 20 --cacert "$ca" --resolve "$n.$zone:$hp:127.0.0.1" -o /dev/null -w '%{http_code}' \
    "https://$n.$zone:$hp/hello.txt") || fail "GET after the renewal failed"
  [[ $code == 200 ]] || fail "GET after the renewal: $code"
  stop_pid "$(pid_of agent-$n)" 5
}

case_13() { # in-process handlers (the library's API): HTTP, streamed echo, deadline cancellation, exceptions, WebSocket
  local n=inproc f=$work/c13 code pid
  pid=$(pid_of agent-$n)
  if [[ -z $pid ]] || ! pid_alive "$pid"; then
    (exec "${agent_env[@]}" env --default-signal=INT "$handler_example" "$n" --state-dir "$work/state/$n" \
      </dev/null >>"$work/agent-$n.out" 2>>"$work/agent-$n.err") &
    echo $! >"$work/agent-$n.pid"
    echo $! >>"$work/pids"
    wait_until 10 grep -q '^connected$' "$work/agent-$n.err" || fail "the handler example did not connect: $(tail -n 5 "$work/agent-$n.err")"
  fi
  local h=(--cacert "$ca" --resolve "$n.$zone:$hp:127.0.0.1")
  code=$(curl -sS --max-time 10 "${h[@]}" -D "$f.h" -o "$f.body" -w '%{http_code}' "https://$n.$zone:$hp/hello?x=1") || fail "GET /hello failed"
  [[ $code == 200 && $(cat "$f.body") == "hello from a handler" ]] || fail "GET /hello: $code '$(head -c 200 "$f.body")'"
  [[ $(header "$f.h" x-seen-url) == "https://$n.$zone/hello?x=1" ]] || fail "the handler saw url '$(header "$f.h" x-seen-url)'"
  [[ $(header "$f.h" x-seen-forwarded-for) == 127.0.0.1 ]] || fail "forwarded_for_ip '$(header "$f.h" x-seen-forwarded-for)'"
  [[ $(header "$f.h" x-seen-host) == "$n.$zone" ]] || fail "host '$(header "$f.h" x-seen-host)'"
  [[ -n $(header "$f.h" x-seen-request-id) ]] || fail "no request id in the context's envelope"
  head -c $((3 * 1024 * 1024)) /dev/urandom >"$f.bin"
  code=$(curl -sS --max-time 20 "${h[@]}" --http2 -o "$f.echo" -w '%{http_code}' --data-binary "@$f.bin" "https://$n.$zone:$hp/echo") ||
    fail "POST /echo failed"
  [[ $code == 200 && $(sha "$f.echo") == "$(sha "$f.bin")" ]] || fail "POST /echo: $code, $(stat -c %s "$f.echo") bytes back"
  code=$(curl -sS --max-time 10 "${h[@]}" -o /dev/null -w '%{http_code}' "https://$n.$zone:$hp/throw") || true
  [[ $code == 500 ]] || fail "GET /throw: $code, want 500"
  local t0 ms
  t0=$(now_ms)
  code=$(curl -sS --max-time 20 "${h[@]}" -o /dev/null -w '%{http_code}' "https://$n.$zone:$hp/slow") || true
  ms=$(($(now_ms) - t0))
  [[ $code == 504 ]] || fail "GET /slow: $code, want 504 at the response deadline"
  wait_until 3 grep -q '^handler: cancelled at the deadline$' "$work/agent-$n.err" ||
    fail "the handler's cancellation signal did not fire: $(tail -n 3 "$work/agent-$n.err")"
  ws_client "$n" "$f.ws"
  wait_until 3 grep -q '^GET /ws?x=1 101$' "$work/agent-$n.out" || fail "no 'GET /ws?x=1 101' line: $(tail -n 3 "$work/agent-$n.out")"
  stop_pid "$(pid_of agent-$n)" 5
  log "   (/slow answered 504 after $ms ms; the handler saw the cancellation)"
}

# run_example NAME ENV...: the handler example for tunnel NAME in the background with extra
# environment; its pid in $work/ex-NAME.pid, its exit status (once it exits) in $work/ex-NAME.rc.
run_example() {
  local n=$1
  shift
  rm -f -- "$work/ex-$n.rc"
  (
    "${agent_env[@]}" "$@" env --default-signal=INT,TERM "$handler_example" "$n" --state-dir "$work/state/$n" \
      </dev/null >>"$work/ex-$n.out" 2>>"$work/ex-$n.err" &
    echo $! >"$work/ex-$n.pid"
    local status=0
    wait $! || status=$?
    echo "$status" >"$work/ex-$n.rc"
  ) &
  echo $! >>"$work/pids"
  wait_until 5 test -s "$work/ex-$n.pid" || fail "no pid for the example $n"
  wait_until 10 grep -q '^connected$' "$work/ex-$n.err" || fail "example $n did not connect: $(tail -n 5 "$work/ex-$n.err")"
}
case_14() { # signal policy: on -> SIGTERM closes, exit 0; off -> SIGTERM's default (143); auto leaves a program's own handler alone
  local n=sigs pid rc
  : >"$work/ex-$n.err"
  run_example "$n" INKWIRE_EXAMPLE_SIGNALS=on
  pid=$(cat "$work/ex-$n.pid")
  kill -TERM "$pid"
  wait_until 5 test -e "$work/ex-$n.rc" || fail "on: still running 5 s after SIGTERM"
  rc=$(cat "$work/ex-$n.rc")
  [[ $rc == 0 ]] || fail "on: exit $rc after SIGTERM, want 0 (the listener closed)"
  grep -q '^closed' "$work/ex-$n.err" || fail "on: no 'closed' status: $(tail -n 3 "$work/ex-$n.err")"

  : >"$work/ex-$n.err"
  run_example "$n" INKWIRE_EXAMPLE_SIGNALS=off
  pid=$(cat "$work/ex-$n.pid")
  kill -TERM "$pid"
  wait_until 5 test -e "$work/ex-$n.rc" || fail "off: still running 5 s after SIGTERM"
  rc=$(cat "$work/ex-$n.rc")
  [[ $rc == 143 ]] || fail "off: exit $rc after SIGTERM, want 143 (no handler: the default action)"

  : >"$work/ex-$n.err"
  run_example "$n" INKWIRE_EXAMPLE_SIGNALS=auto INKWIRE_EXAMPLE_OWN_SIGTERM=1
  pid=$(cat "$work/ex-$n.pid")
  kill -TERM "$pid"
  wait_until 5 grep -q '^program: SIGTERM handled by the program$' "$work/ex-$n.err" ||
    fail "auto + the program's handler: the program's handler did not run: $(tail -n 3 "$work/ex-$n.err")"
  sleep 0.5
  pid_alive "$pid" || fail "auto + the program's handler: the listener closed on SIGTERM (it must leave it to the program)"
  [[ $(curl -sS --max-time 10 --cacert "$ca" --resolve "$n.$zone:$hp:127.0.0.1" -o /dev/null -w '%{http_code}' \
    "https://$n.$zone:$hp/hello") == 200 ]] || fail "auto: the tunnel stopped serving after the program's SIGTERM"
  kill -INT "$pid"
  wait_until 5 test -e "$work/ex-$n.rc" || fail "auto: SIGINT did not end it"
  rc=$(cat "$work/ex-$n.rc")
  [[ $rc == 0 ]] || fail "auto: exit $rc after SIGINT (unclaimed: the listener's), want 0"

  # The async lifecycle: serve_forever() on the program's io_context; wait() afterwards is refused.
  : >"$work/ex-$n.err"
  run_example "$n" INKWIRE_EXAMPLE_ASYNC=1
  pid=$(cat "$work/ex-$n.pid")
  [[ $(curl -sS --max-time 10 --cacert "$ca" --resolve "$n.$zone:$hp:127.0.0.1" -o /dev/null -w '%{http_code}' \
    "https://$n.$zone:$hp/hello") == 200 ]] || fail "async: GET /hello is not 200"
  kill -TERM "$pid"
  wait_until 5 test -e "$work/ex-$n.rc" || fail "async: still running 5 s after SIGTERM"
  rc=$(cat "$work/ex-$n.rc")
  [[ $rc == 0 ]] || fail "async: exit $rc after SIGTERM, want 0: $(tail -n 3 "$work/ex-$n.err")"
  grep -q '^wait() after serve_forever(): .*cannot be mixed' "$work/ex-$n.err" ||
    fail "async: wait() after serve_forever() was not refused: $(tail -n 3 "$work/ex-$n.err")"
}

case_15() { # a second agent on the same tunnel supersedes the first: it ends with exit 6 and says why
  ensure_agent
  local second=$work/state/shop-second f=$work/c15 rc=0 first
  first=$(pid_of agent)
  rm -rf -- "$second"
  cp -a "$state" "$second"
  (exec "${agent_env[@]}" "$inkwire" connect "$name" --forward-to "http://127.0.0.1:$op" --state-dir "$second" \
    </dev/null >"$f.out" 2>"$f.err") &
  local pid2=$!
  echo "$pid2" >>"$work/pids"
  wait_until 10 grep -q ' connected$' "$f.err" || fail "the second agent did not connect: $(tail -n 3 "$f.err")"
  wait_gone "$first" 10 || fail "the first agent still runs 10 s after the second connected"
  wait_until 3 test -e "$work/agent.rc" || fail "no exit status for the first agent"
  rc=$(cat "$work/agent.rc")
  [[ $rc == 6 ]] || fail "the first agent exited $rc, want 6 (superseded): $(tail -n 3 "$work/agent.err")"
  grep -q '^inkwire: .*another agent' "$work/agent.err" || fail "no 'another agent' line: $(tail -n 3 "$work/agent.err")"
  [[ $(get_code /hello.txt) == 200 ]] || fail "GET /hello.txt through the second agent is not 200"
  stop_pid "$pid2" 5
  rm -f -- "$work/agent.pid"
}

case_16() { # a deleted tunnel: connect restores it (auto-restore), or refuses with --on-pending-removal error
  stop_agent
  cli tunnels delete "$name" >/dev/null || fail "tunnels delete failed"
  [[ $(tunnel_json | jq -r .status) == delete_pending ]] || fail "status after delete: $(tunnel_json | jq -r .status)"
  local f=$work/c16 rc=0
  timeout 15 "${agent_env[@]}" "$inkwire" connect "$name" --forward-to "http://127.0.0.1:$op" --state-dir "$state" \
    --on-pending-removal error </dev/null >"$f.out" 2>"$f.err" || rc=$?
  ((rc != 0 && rc != 124)) || fail "--on-pending-removal error: exit $rc: $(cat "$f.err")"
  grep -qi '^inkwire: .*pending removal\|^inkwire: .*deleted' "$f.err" || fail "the error does not say it was deleted: $(cat "$f.err")"
  [[ $(tunnel_json | jq -r .status) == delete_pending ]] || fail "the error policy restored the tunnel"
  rm -f -- "$work/agent.pid"
  ensure_agent
  [[ $(tunnel_json | jq -r .status) == active ]] || fail "status after an auto-restoring connect: $(tunnel_json | jq -r .status)"
  [[ $(get_code /hello.txt) == 200 ]] || fail "GET /hello.txt after the restore is not 200"
}

case_17() { # rotate-secret: the running agent keeps serving; a restart with the old secret fails (5); with the new one it works
  ensure_agent
  local f=$work/c17 secret rc=0
  secret=$(cli tunnels rotate-secret "$name" --json | jq -r .connect_secret)
  [[ -n $secret && $secret != null ]] || fail "rotate-secret printed no secret"
  [[ $(get_code /hello.txt) == 200 ]] || fail "the running agent stopped serving after the rotation"
  stop_agent
  timeout 15 "${agent_env[@]}" "$inkwire" connect "$name" --forward-to "http://127.0.0.1:$op" --state-dir "$state" \
    </dev/null >"$f.out" 2>"$f.err" || rc=$?
  [[ $rc == 5 ]] || fail "a restart with the old secret: exit $rc, want 5: $(cat "$f.err")"
  rc=0
  timeout 15 "${agent_env[@]}" INKWIRE_SECRET="$secret" "$inkwire" connect "$name" --forward-to "http://127.0.0.1:$op" \
    --state-dir "$state" </dev/null >"$f.out2" 2>"$f.err2" &
  local pid=$!
  echo "$pid" >>"$work/pids"
  wait_until 10 grep -q ' connected$' "$f.err2" || fail "no connection with the new secret: $(tail -n 3 "$f.err2")"
  [[ $(jq -r .secret "$state/state.json") == "$secret" ]] || fail "the new secret was not saved in state.json"
  [[ $(get_code /hello.txt) == 200 ]] || fail "GET /hello.txt with the new secret is not 200"
  stop_pid "$pid" 5
  rm -f -- "$work/agent.pid"
  ensure_agent # from the state file alone now
}

case_18() { # passthrough WebSocket: the agent splices an h1 Upgrade and an h2 extended CONNECT to a ws origin (§6.5)
  local n=secure f=$work/c18 a code
  [[ -n $(pid_of ws-origin) ]] && pid_alive "$(pid_of ws-origin)" || start_node_origin ws-origin "$wsp"
  a=$(pid_of agent-$n)
  if [[ -n $a ]] && pid_alive "$a"; then stop_pid "$a" 5; fi
  start_named_agent "$n" "http://127.0.0.1:$wsp" --tls-mode passthrough
  # HTTP/1.1 (the ws package): subprotocol, text echo, 1 MiB binary echo, the origin's close 4001 'bye'.
  ws_client "$n" "$f"
  # HTTP/2 extended CONNECT (node:http2): :status 200, the subprotocol, an echo, a clean close.
  timeout 20 node "$here/edge_clients.js" ws-h2 "$hp" "$n.$zone" "$ca" >"$f.h2.json" 2>"$f.h2.err" || true
  jq -e . "$f.h2.json" >/dev/null 2>&1 || fail "ws-h2 client: $(cat "$f.h2.json" "$f.h2.err" | head -c 500)"
  [[ $(jq -r '.error // empty' "$f.h2.json") == "" ]] || fail "ws-h2 client error: $(cat "$f.h2.json")"
  [[ $(jq -r .status "$f.h2.json") == 200 && $(jq -r .enable_connect_protocol "$f.h2.json") == true ]] ||
    fail "ws-h2: $(cat "$f.h2.json")"
  [[ $(jq -r .protocol "$f.h2.json") == chat.v1 && $(jq -r .echo "$f.h2.json") == 'hi over h2' ]] ||
    fail "ws-h2: $(cat "$f.h2.json")"
  [[ $(jq -r .close_code "$f.h2.json") == 1000 ]] || fail "ws-h2 close code: $(cat "$f.h2.json")"
  # An upgrade the origin refuses (403): its answer reaches the third party.
  code=$(curl -sS --max-time 10 --cacert "$ca" --resolve "$n.$zone:$hp:127.0.0.1" -o /dev/null -w '%{http_code}' \
    --http1.1 -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
    -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' "https://$n.$zone:$hp/refuse")
  [[ $code == 403 ]] || fail "an upgrade the origin refuses: status $code, want the origin's 403"
  log "   (passthrough ws: h1 $(jq -c '{protocol, close_code}' "$f.json"); h2 $(jq -c '{status, protocol, close_code}' "$f.h2.json"); refused: $code)"
  stop_pid "$(pid_of agent-$n)" 5
}

# ---------------------------------------------------------------------------------------------
titles=(
  [1]="first connect creates the tunnel, connected; state.json 0600 in a 0700 directory"
  [2]="GET through the edge: files, 5 MiB sha256, 404, request lines"
  [3]="POST 1 MiB to the origin's echo over HTTP/1.1 and h2"
  [4]="origin down: 502 from the agent; origin back: 200"
  [5]="restart with the same state directory: same tunnel, no new one"
  [6]="server restart: the agent reconnects by itself within its backoff"
  [7]="wrong secret: exit 5, one error line, within seconds"
  [8]="SIGINT and SIGTERM: exit 0 promptly, tunnel shown disconnected"
  [9]="WebSocket through the agent to a local ws origin: subprotocol, echo, 1 MiB, close 4001"
  [10]="https:// upstream: untrusted -> 502; with --forward-to-ca-bundle GET and WebSocket work"
  [11]="48 MiB HTTP/1.1 uploads stream through edge and agent (length and chunked), peak RSS of both grows < 16 MiB"
  [12]="passthrough: the agent's own leaf (fingerprint = the API's), h1 and h2, 1 MiB POST echo; renewal while running"
  [13]="in-process handlers: request and context, streamed echo, 504 + cancellation at the deadline, 500, WebSocket"
  [14]="signal policy: on closes (exit 0), off leaves the default (143), auto leaves a program's handler alone; async lifecycle"
  [15]="a second agent supersedes the first: exit 6 with a line saying why; traffic goes on"
  [16]="deleted tunnel: --on-pending-removal error refuses; the default restores it and serves"
  [17]="rotate-secret: serving goes on; old secret -> exit 5; the new one (INKWIRE_SECRET) connects and is saved"
  [18]="passthrough WebSocket: h1 Upgrade and h2 extended CONNECT spliced to a ws origin; a refusal's 403"
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
  local died='' pid
  pid=$(pid_of server)
  if ! pid_alive "$pid"; then
    died=" [inkwired serve died during this case]"
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
    log "inkwired serve died; the last lines of its log:"
    tail -n 12 "$work/serve.log" | cut -c1-400 | sed 's/^/      /'
    start_server || log "the restart failed; the remaining cases will fail"
  fi
  # A case that stopped the origin and failed before starting it again.
  pid_alive "$(pid_of origin)" || start_origin || log "the origin did not start again"
}

for n in ${CASES:-$(seq 1 18)}; do run_case "$n"; done

elapsed=$((SECONDS - started))
echo
echo "agent_e2e: summary ($elapsed s)"
printf '  %s\n' "${results[@]}"
if ((elapsed >= 150)); then
  echo "agent_e2e: FAIL: the run took $elapsed s (limit 150 s)"
  failed=$((failed + 1))
fi
((crashes == 0)) || echo "agent_e2e: inkwired serve died $crashes time(s) (restarted each time)"
((failed == 0)) || { echo "agent_e2e: $failed failure(s)"; exit 1; }
echo "agent_e2e: PASS"
