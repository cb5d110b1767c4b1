#!/usr/bin/env bash
# End-to-end test of `inkwired serve` (roles controlplane + relay), driven as a user would, with
# real clients: curl (REST API), openssl s_client (TLS + ALPN), nghttp (HTTP/2 hello) and Node's
# http2 client (tests/e2e/agent.js, the stack of the TypeScript SDK) for a session that stays up.
#
#   relay_e2e.sh INKWIRED
#
# Database: a fresh database in the test suite's cluster (ctest fixture "pg", found through
# INKWIRE_TEST_PG_DIR), dropped at the end; run by hand without INKWIRE_TEST_PG_DIR, the script
# starts a private cluster of its own. Everything listens on 127.0.0.1 only, every wait has a
# deadline, and every process the script starts is stopped by the EXIT trap.
# KEEP=1 keeps the work directory (configs, logs) for a look afterwards.
set -euo pipefail

INKWIRE_SCRIPT_NAME=relay_e2e
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
root=$(cd -- "$here/../.." && pwd -P)
# shellcheck source-path=SCRIPTDIR/../..
source "$root/scripts/lib/common.sh"
source "$root/scripts/lib/pg.sh"

[[ $# -eq 1 ]] || { echo "usage: relay_e2e.sh INKWIRED" >&2; exit 2; }
inkwired=$(realpath -- "$1")
[[ -x $inkwired ]] || die "$inkwired is not an executable"
for tool in curl openssl nghttp jq psql timeout; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
have_node=0
if command -v node >/dev/null; then have_node=1; fi

# inkwired reads INKWIRE_* from the environment (docs/CONFIG.md): the test's config must be the
# only source, so every exported INKWIRE_* variable is removed from the server's environment.
pg_fixture_dir=${INKWIRE_TEST_PG_DIR:-}
clean_env=()
while IFS= read -r var; do
  if [[ $var == INKWIRE_* ]]; then clean_env+=(-u "$var"); fi
done < <(compgen -e)

started=$SECONDS
work=$(mktemp -d /tmp/inkwire-e2e.XXXXXX)
chmod 755 "$work" # a private cluster's owner (postgres) must reach it
server_pid=
agent_pid=
own_pg=0
admin_url=
db_name=
checks=0

log() { printf '[%3ds] %s\n' "$((SECONDS - started))" "$*"; }
ok() {
  checks=$((checks + 1))
  log "ok: $*"
}
fail() {
  printf 'relay_e2e: FAIL: %s\n' "$*" >&2
  exit 1
}

# stop_pid PID SECONDS: SIGTERM, then SIGKILL after SECONDS; reaps it.
stop_pid() {
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
  stop_pid "$agent_pid" 3
  stop_pid "$server_pid" 15
  if [[ -n $db_name && -n $admin_url ]]; then
    timeout 20 psql -X -q "$admin_url" -c "DROP DATABASE IF EXISTS \"$db_name\" WITH (FORCE)" >/dev/null 2>&1 ||
      warn "could not drop database $db_name"
  fi
  ((own_pg == 0)) || pg_stop "$work/pg"
  if ((rc != 0)); then
    local f
    for f in "$work"/*.log "$work"/*.out "$work"/*.err; do
      [[ -f $f ]] || continue
      echo "----- $f (last 40 lines) -----" >&2
      tail -n 40 -- "$f" >&2
    done
  fi
  if [[ ${KEEP:-0} == 1 ]]; then
    echo "relay_e2e: kept $work" >&2
  else
    rm -rf -- "$work"
  fi
  log "done: $checks checks, exit $rc"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# wait_until SECONDS WHAT CMD...: runs CMD every 0.1 s until it succeeds; fails after SECONDS.
wait_until() {
  local seconds=$1 what=$2
  local deadline=$((SECONDS + seconds))
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "timed out ($seconds s) waiting for $what"
    sleep 0.1
  done
}

# port_accepts PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_accepts() {
  # shellcheck disable=SC2016 # $1 is the inner shell's
  timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

port_closed() { ! port_accepts "$1"; }

iw() { env "${clean_env[@]}" "$inkwired" "$@"; }

# ---------------------------------------------------------------------------------------------
log "database"
if [[ -n $pg_fixture_dir ]]; then
  [[ -s $pg_fixture_dir/url ]] || fail "no cluster URL in $pg_fixture_dir/url: is the pg fixture running?"
  admin_url=$(head -n 1 -- "$pg_fixture_dir/url")
else
  own_pg=1
  pg_init "$work/pg" --auth=trust --username=postgres --no-sync
  pg_port=$(free_port)
  pg_start "$work/pg" "$pg_port" || fail "PostgreSQL did not start"
  admin_url="postgresql://postgres@127.0.0.1:$pg_port/postgres"
fi
db_name="e2e_$$_${RANDOM}"
timeout 20 psql -X -q -v ON_ERROR_STOP=1 "$admin_url" -c "CREATE DATABASE \"$db_name\"" >/dev/null ||
  fail "cannot create database $db_name"
db_url="${admin_url%/*}/$db_name"
ok "created database $db_name"

api_port=$(free_port)
relay_port=$(free_port)
cfg=$work/inkwired.toml
cat >"$cfg" <<TOML
roles = ["controlplane", "relay"]
zone = "127.0.0.1"
[database]
url = "$db_url"
[api]
listen = "127.0.0.1:$api_port"
[metrics]
listen = ""
[ca]
dir = "$work/ca"
[tls]
cert_file = "$work/server.pem"
key_file = "$work/server.key"
[relay]
listen = "127.0.0.1:$relay_port"
TOML

log "migrate, server certificate, organisation, API key"
timeout 30 env "${clean_env[@]}" "$inkwired" migrate -c "$cfg" >"$work/migrate.out" 2>&1 ||
  fail "inkwired migrate failed"
timeout 30 env "${clean_env[@]}" "$inkwired" ca issue-server-cert -c "$cfg" --cert-out "$work/server.pem" \
  --key-out "$work/server.key" --ip 127.0.0.1 --dns localhost >"$work/cert.out" 2>&1 ||
  fail "inkwired ca issue-server-cert failed"
[[ -s $work/ca/ca.pem && -s $work/server.pem && -s $work/server.key ]] || fail "CA or server certificate missing"
timeout 30 env "${clean_env[@]}" "$inkwired" admin create-org -c "$cfg" --name e2e >"$work/org.out" 2>&1 ||
  fail "inkwired admin create-org failed"
api_key=$(timeout 30 env "${clean_env[@]}" "$inkwired" admin create-api-key -c "$cfg" --org e2e --scope admin 2>"$work/key.err") ||
  fail "inkwired admin create-api-key failed"
[[ $api_key == ApiKey_* ]] || fail "create-api-key printed '$api_key', not an API key"
ok "migrated, issued the server certificate, created org e2e and an admin key"

# start_server LOG: starts `inkwired serve` and waits for /readyz and the relay port.
start_server() {
  local out=$1 deadline=$((SECONDS + 20))
  # exec: $! is inkwired itself. 9>&-: it must not hold the agent's stdin pipe open.
  (exec env "${clean_env[@]}" "$inkwired" serve -c "$cfg" >"$out" 2>&1 9>&-) &
  server_pid=$!
  until curl -fsS --max-time 2 "http://127.0.0.1:$api_port/readyz" >/dev/null 2>&1 && port_accepts "$relay_port"; do
    pid_alive "$server_pid" || fail "inkwired serve exited during start-up (see $out)"
    ((SECONDS < deadline)) || fail "inkwired serve not ready after 20 s"
    sleep 0.1
  done
}

# stop_server LOG: SIGTERM; inkwired must exit 0 within 10 s having logged "draining", and its
# ports must stop accepting connections.
stop_server() {
  local out=$1 rc=0 t0 ms
  pid_alive "$server_pid" || fail "inkwired serve died before SIGTERM (see $out)"
  t0=$(date +%s%N)
  kill -TERM "$server_pid"
  wait_gone "$server_pid" 10 || fail "inkwired still runs 10 s after SIGTERM"
  ms=$((($(date +%s%N) - t0) / 1000000))
  wait "$server_pid" || rc=$?
  server_pid=
  ((rc == 0)) || fail "inkwired exited $rc after SIGTERM, not 0"
  grep -q 'draining' "$out" || fail "inkwired did not log 'draining' on SIGTERM"
  ! port_accepts "$relay_port" || fail "the relay port still accepts connections after exit"
  ! port_accepts "$api_port" || fail "the API port still accepts connections after exit"
  ok "SIGTERM: exit 0 after ${ms} ms, logged draining, relay and API ports closed"
}

api() { # api METHOD PATH [JSON]: prints the body, then a last line with the status code
  local -a args=(-sS --max-time 10 -X "$1" -H "X-API-Key: $api_key" -w '\n%{http_code}')
  [[ $# -lt 3 ]] || args+=(-H 'Content-Type: application/json' --data-binary "$3")
  curl "${args[@]}" "http://127.0.0.1:$api_port$2"
}

connected() { # connected true|false: the tunnel's currently_connected is $1
  local out
  out=$(api GET "/api/v1/tunnels/$tunnel_id") || return 1
  [[ $(tail -n 1 <<<"$out") == 200 ]] || return 1
  [[ $(sed '$d' <<<"$out" | jq -r .currently_connected) == "$1" ]]
}

# ---------------------------------------------------------------------------------------------
log "serve"
start_server "$work/serve1.log"
ok "inkwired serve ready (api $api_port, relay $relay_port)"

out=$(api POST /api/v1/tunnels/ '{"tunnel_name":"e2e","tls_mode":"edge"}') || fail "POST /api/v1/tunnels/ failed"
[[ $(tail -n 1 <<<"$out") == 201 ]] || fail "create tunnel: status $(tail -n 1 <<<"$out"), body $(sed '$d' <<<"$out")"
body=$(sed '$d' <<<"$out")
tunnel_id=$(jq -r .tunnel.id <<<"$body")
secret=$(jq -r .connect_secret <<<"$body")
[[ $tunnel_id =~ ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$ ]] || fail "tunnel.id '$tunnel_id'"
[[ -n $secret && $secret != null ]] || fail "no connect_secret in $body"
jq -e '.tunnel.status == "active" and .tunnel.currently_connected == false' <<<"$body" >/dev/null ||
  fail "new tunnel is not active and disconnected: $body"
ok "created tunnel $tunnel_id"

# --- 1. TLS and ALPN --------------------------------------------------------------------------
log "1. TLS + ALPN (openssl s_client)"
timeout 10 openssl s_client -connect "127.0.0.1:$relay_port" -alpn h2 -CAfile "$work/ca/ca.pem" \
  -verify_ip 127.0.0.1 -verify_return_error </dev/null >"$work/tls-h2.out" 2>&1 ||
  fail "TLS handshake with ALPN h2 failed"
grep -aq '^ALPN protocol: h2$' "$work/tls-h2.out" || fail "ALPN h2 was not selected"
grep -aq 'Verify return code: 0 (ok)' "$work/tls-h2.out" || fail "server certificate did not verify against ca.pem"
grep -aEq '^New, TLSv1\.[23], Cipher is ' "$work/tls-h2.out" || fail "not TLS 1.2 or 1.3: $(grep -a '^New,' "$work/tls-h2.out")"
ok "ALPN h2, $(grep -ao 'TLSv1\.[0-9]' "$work/tls-h2.out" | head -n 1), certificate verified (IP SAN 127.0.0.1)"

timeout 10 openssl s_client -connect "127.0.0.1:$relay_port" -alpn h2 -CAfile "$work/ca/ca.pem" -tls1_2 \
  </dev/null >"$work/tls12.out" 2>&1 || fail "a TLS 1.2 handshake failed"
grep -aq '^ALPN protocol: h2$' "$work/tls12.out" || fail "ALPN h2 was not selected over TLS 1.2"
ok "TLS 1.2 with ALPN h2 works too"

if timeout 10 openssl s_client -connect "127.0.0.1:$relay_port" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' \
  -alpn h2 </dev/null >"$work/tls11.out" 2>&1; then
  fail "a TLS 1.1 handshake succeeded"
fi
grep -aq 'alert protocol version' "$work/tls11.out" || fail "TLS 1.1 was not refused with a protocol_version alert"
ok "TLS 1.1 refused (protocol_version alert)"

if timeout 10 openssl s_client -connect "127.0.0.1:$relay_port" -alpn http/1.1 -CAfile "$work/ca/ca.pem" \
  </dev/null >"$work/tls-http11.out" 2>&1; then
  fail "the handshake offering only http/1.1 succeeded"
fi
grep -aq 'alert no application protocol' "$work/tls-http11.out" ||
  fail "offering only http/1.1 did not end in a no_application_protocol alert"
ok "ALPN http/1.1 only: handshake refused with no_application_protocol"

# --- 2. hello with nghttp ---------------------------------------------------------------------
# nghttp cannot verify an IP SAN (it reports "hostname mismatch"), so -y; s_client did above.
# hello ID SECRET OUT [HEADER...]: POST /_system/hello with an empty body; verbose frames to OUT.
hello() {
  local id=$1 sec=$2 out=$3
  shift 3
  local -a hdrs=(-H "x-tunnel-id: $id" -H "x-tunnel-secret: $sec")
  local h
  for h in "$@"; do hdrs+=(-H "$h"); done
  timeout 10 nghttp -v -y -d /dev/null "${hdrs[@]}" "https://127.0.0.1:$relay_port/_system/hello" >"$out" 2>&1 ||
    fail "nghttp hello failed (exit $?)"
}
status_of() { sed -n 's/.*recv (stream_id=[0-9]*) :status: \([0-9]*\).*/\1/p' "$1" | head -n 1; }
body_of() { sed -n 's/^\({[^{}]*}\).*/\1/p' "$1" | head -n 1; }

log "2. hello (nghttp)"
hello "$tunnel_id" "$secret" "$work/hello.out"
grep -q ':method: POST' "$work/hello.out" || fail "nghttp did not send a POST"
[[ $(status_of "$work/hello.out") == 200 ]] || fail "hello: status $(status_of "$work/hello.out"), not 200"
body=$(body_of "$work/hello.out")
jq -e '(.owner_token | type == "string" and length > 0) and .default_pool_size == 4
       and .response_deadline_seconds == 30 and .intake_idle_seconds == 300' <<<"$body" >/dev/null ||
  fail "hello body: $body"
ok "hello 200: owner_token, default_pool_size 4, response_deadline_seconds 30, intake_idle_seconds 300"

# The server's SETTINGS frame (the first non-ACK SETTINGS nghttp received).
settings=$(awk '/recv SETTINGS frame/ && !/flags=0x01/ && !seen {on = 1; seen = 1; next} /^\[/ {on = 0} on' "$work/hello.out")
grep -q 'SETTINGS_ENABLE_CONNECT_PROTOCOL(0x08):1\]' <<<"$settings" ||
  fail "server SETTINGS lack ENABLE_CONNECT_PROTOCOL=1: $settings"
mcs=$(sed -n 's/.*SETTINGS_MAX_CONCURRENT_STREAMS(0x03):\([0-9]*\)\].*/\1/p' <<<"$settings")
if [[ -z $mcs ]] || ((mcs < 256)); then fail "server MAX_CONCURRENT_STREAMS '${mcs}' < 256"; fi
! grep -q 'recv PUSH_PROMISE' "$work/hello.out" || fail "the relay pushed"
ok "server SETTINGS: ENABLE_CONNECT_PROTOCOL 1, MAX_CONCURRENT_STREAMS $mcs"

# pool_size_is SENT WANTED: hello with x-pool-size SENT answers 200 with default_pool_size WANTED.
pool_size_is() {
  local out=$work/hello-pool$1.out
  hello "$tunnel_id" "$secret" "$out" "x-pool-size: $1"
  if [[ $(status_of "$out") != 200 ]] || ! jq -e --argjson n "$2" '.default_pool_size == $n' <<<"$(body_of "$out")" >/dev/null; then
    fail "hello with x-pool-size $1: status $(status_of "$out"), body $(body_of "$out")"
  fi
}
pool_size_is 7 7
pool_size_is 99 32
ok "x-pool-size 7 echoed, 99 clamped to 32"

# --- 3. refused hellos ------------------------------------------------------------------------
log "3. refused hellos"
hello "$tunnel_id" "tsec_wrong" "$work/hello-wrong.out"
[[ $(status_of "$work/hello-wrong.out") == 401 ]] || fail "wrong secret: status $(status_of "$work/hello-wrong.out"), not 401"
jq -e '.detail | type == "string"' <<<"$(body_of "$work/hello-wrong.out")" >/dev/null ||
  fail "wrong secret: body $(body_of "$work/hello-wrong.out")"
hello "00000000-0000-4000-8000-000000000000" "$secret" "$work/hello-unknown.out"
[[ $(status_of "$work/hello-unknown.out") == 401 ]] || fail "unknown id: status $(status_of "$work/hello-unknown.out"), not 401"
[[ $(body_of "$work/hello-wrong.out") == "$(body_of "$work/hello-unknown.out")" ]] ||
  fail "wrong secret and unknown id answer differently: $(body_of "$work/hello-wrong.out") / $(body_of "$work/hello-unknown.out")"
ok "wrong secret -> 401, unknown id -> 401, same body"

# --- 4. a held session (Node http2 agent) -----------------------------------------------------
# start_agent OUT: the agent runs until fd 9 (its stdin) is closed.
start_agent() {
  local out=$1
  rm -f -- "$work/agent.in"
  mkfifo "$work/agent.in"
  timeout 45 node "$here/agent.js" "$relay_port" "$work/ca/ca.pem" "$tunnel_id" "$secret" 40 \
    <"$work/agent.in" >"$out" 2>&1 &
  agent_pid=$!
  exec 9>"$work/agent.in"
  wait_until 10 "the agent's hello and intake ($out)" grep -q '^intake-sent$' "$out"
  grep -q '^hello 200 ' "$out" || fail "agent hello: $(grep '^hello' "$out")"
}
# agent_exit: waits (5 s) for the agent to exit; it must exit 0.
agent_exit() {
  local rc=0
  wait_gone "$agent_pid" 5 || fail "the agent did not exit"
  wait "$agent_pid" || rc=$?
  agent_pid=
  ((rc == 0)) || fail "the agent exited $rc"
}

if ((have_node)); then
  log "4. a held session (node http2)"
  start_agent "$work/agent1.out"
  grep '^settings ' "$work/agent1.out" | sed 's/^settings //' |
    jq -e '.enableConnectProtocol == true and .maxConcurrentStreams >= 256' >/dev/null ||
    fail "node saw server settings $(grep '^settings ' "$work/agent1.out")"
  wait_until 10 "currently_connected true" connected true
  ok "hello + parked intake from node http2 (certificate verified): currently_connected true"
  sleep 1
  ! grep -q '^intake-\(status\|closed\|error\)' "$work/agent1.out" || fail "the relay did not hold the intake: $(cat "$work/agent1.out")"
  ok "the intake stays parked"
  exec 9>&-
  wait_until 5 "the agent to close its session" grep -q '^closed$' "$work/agent1.out"
  agent_exit
  wait_until 10 "currently_connected false after the agent left" connected false
  ok "agent closed its session: currently_connected false"
else
  log "4. skipped: node is not installed"
fi

# --- 5. SIGTERM drains and exits --------------------------------------------------------------
log "5. SIGTERM"
if ((have_node)); then
  start_agent "$work/agent2.out"
  wait_until 10 "currently_connected true" connected true
fi
stop_server "$work/serve1.log"
if ((have_node)); then
  wait_until 5 "the agent's session to end" grep -q '^closed$' "$work/agent2.out"
  agent_exit
  exec 9>&-
  ok "the agent's session was ended by the relay ($(grep -c '^goaway' "$work/agent2.out" || true) GOAWAY)"
fi

# --- 6. restart -------------------------------------------------------------------------------
log "6. restart with the same config"
start_server "$work/serve2.log"
ok "second inkwired serve ready on the same ports"
wait_until 10 "currently_connected false after the restart" connected false
ok "currently_connected false after the restart"
hello "$tunnel_id" "$secret" "$work/hello-restart.out"
[[ $(status_of "$work/hello-restart.out") == 200 ]] || fail "hello after restart: status $(status_of "$work/hello-restart.out")"
ok "hello 200 after the restart"

# --- 6b. SIGUSR1: drain the relay, keep the process -------------------------------------------
if ((have_node)); then
  log "6b. SIGUSR1 drains the agents and keeps the control plane"
  start_agent "$work/agent3.out"
  wait_until 10 "currently_connected true" connected true
  kill -USR1 "$server_pid"
  wait_until 5 "the agent's session to end after SIGUSR1" grep -q '^closed$' "$work/agent3.out"
  agent_exit
  exec 9>&-
  grep -q '^goaway' "$work/agent3.out" || fail "no GOAWAY before the drained session closed"
  pid_alive "$server_pid" || fail "inkwired exited on SIGUSR1"
  wait_until 5 "the relay port to stop accepting" port_closed "$relay_port"
  curl -fsS --max-time 5 "http://127.0.0.1:$api_port/readyz" >/dev/null || fail "the API stopped answering after SIGUSR1"
  wait_until 10 "currently_connected false after the drain" connected false
  ok "SIGUSR1: GOAWAY to the agent, relay port closed, API still up"
fi
stop_server "$work/serve2.log"

# --- 7. relay role without tls.cert_file ------------------------------------------------------
log "7. relay role without tls.cert_file"
bad_relay_port=$(free_port)
bad_api_port=$(free_port)
cat >"$work/bad.toml" <<TOML
roles = ["relay"]
zone = "127.0.0.1"
[database]
url = "$db_url"
[api]
listen = "127.0.0.1:$bad_api_port"
[metrics]
listen = ""
[relay]
listen = "127.0.0.1:$bad_relay_port"
TOML
rc=0
timeout 15 env "${clean_env[@]}" "$inkwired" serve -c "$work/bad.toml" >"$work/bad.out" 2>"$work/bad.err" || rc=$?
((rc == 1)) || fail "serve without tls.cert_file exited $rc, not 1"
last=$(tail -n 1 "$work/bad.err")
[[ $last == *tls.cert_file* ]] || fail "the error does not mention tls.cert_file: $last"
! port_accepts "$bad_relay_port" || fail "something listens on the misconfigured relay's port"
# With the startup log silenced, the error is all there is: one line.
rc=0
timeout 15 env "${clean_env[@]}" "$inkwired" serve -c "$work/bad.toml" --set log.level=warn \
  >"$work/bad-warn.out" 2>"$work/bad-warn.err" || rc=$?
((rc == 1)) || fail "serve without tls.cert_file (log.level=warn) exited $rc, not 1"
[[ $(wc -l <"$work/bad-warn.err") -eq 1 && ! -s $work/bad-warn.out ]] ||
  fail "expected exactly one line of error output, got: $(cat "$work/bad-warn.out" "$work/bad-warn.err")"
grep -q 'tls.cert_file' "$work/bad-warn.err" || fail "the error does not mention tls.cert_file"
ok "roles [relay] without tls.cert_file: exit 1, one line: $last"

# --- 8. a relay-only node ----------------------------------------------------------------------
log "8. roles [relay] alone: agents and its own /metrics"
solo_relay_port=$(free_port)
solo_metrics_port=$(free_port)
cat >"$work/solo.toml" <<TOML
roles = ["relay"]
zone = "127.0.0.1"
[database]
url = "$db_url"
[metrics]
listen = "127.0.0.1:$solo_metrics_port"
[tls]
cert_file = "$work/server.pem"
key_file = "$work/server.key"
[relay]
listen = "127.0.0.1:$solo_relay_port"
TOML
(exec env "${clean_env[@]}" "$inkwired" serve -c "$work/solo.toml" >"$work/solo.log" 2>&1 9>&-) &
server_pid=$!
deadline=$((SECONDS + 20))
until port_accepts "$solo_relay_port" && curl -fsS --max-time 2 "http://127.0.0.1:$solo_metrics_port/healthz" >/dev/null 2>&1; do
  pid_alive "$server_pid" || fail "relay-only inkwired exited during start-up (see $work/solo.log)"
  ((SECONDS < deadline)) || fail "relay-only inkwired not ready after 20 s"
  sleep 0.1
done
saved_relay_port=$relay_port
relay_port=$solo_relay_port
hello "$tunnel_id" "$secret" "$work/hello-solo.out"
[[ $(status_of "$work/hello-solo.out") == 200 ]] || fail "hello on the relay-only node: status $(status_of "$work/hello-solo.out")"
curl -fsS --max-time 5 "http://127.0.0.1:$solo_metrics_port/metrics" >"$work/solo-metrics.txt" ||
  fail "GET /metrics on the relay-only node failed"
grep -q '^inkwire_relay_hellos_total{result="ok"} 1' "$work/solo-metrics.txt" ||
  fail "the relay-only node's /metrics does not count the hello"
kill -TERM "$server_pid"
wait_gone "$server_pid" 10 || fail "relay-only inkwired still runs 10 s after SIGTERM"
rc=0
wait "$server_pid" || rc=$?
server_pid=
relay_port=$saved_relay_port
((rc == 0)) || fail "relay-only inkwired exited $rc after SIGTERM"
ok "relay-only node: hello 200, /metrics counts it, SIGTERM exit 0"

elapsed=$((SECONDS - started))
((elapsed < 60)) || fail "the test took $elapsed s (limit 60 s)"
log "PASS"
