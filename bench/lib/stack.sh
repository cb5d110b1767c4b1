# shellcheck shell=bash
# bench/lib/stack.sh: the inkwire stack that bench/edge and bench/agent measure, on 127.0.0.1 only.
# Sourced, never executed; needs scripts/lib/common.sh and scripts/lib/pg.sh sourced first and
# $root set to the repository. One stack at a time per shell:
#   bench_prepare always|if-missing   packages, then the build of inkwired and inkwire (always, or
#                                     only when a binary is missing); sets $inkwired and $inkwire
#   stack_start WORK ORIGIN_URL       PostgreSQL, inkwired (controlplane + relay + edge, one thread
#                                     each) and our agent `inkwire connect bench` forwarding to
#                                     ORIGIN_URL; returns once the agent says "connected"
#   stack_wait_tunnel                 until https://bench.<zone>/small answers 200 through the edge
#   stack_in_ns CMD...                CMD in a private mount namespace where bench.<zone> resolves to
#                                     127.0.0.1 and the system trust store also holds our CA (wrk
#                                     cannot be told where a name resolves; nothing outside changes)
#   stack_stop                        stops what stack_start started (by PID)
# After stack_start: $stack_server_pid $stack_agent_pid $stack_zone $stack_host (bench.<zone>)
# $stack_api_port $stack_https_port $stack_http_port; logs in WORK/inkwired.log, WORK/agent.log.
# Request and response bodies of up to 4 GiB pass the edge, the relay and the agent (the agent
# streams them), so bulk transfers of 1 GiB go through in both directions.

stack_server_pid=
stack_agent_pid=
stack_work=

bench_prepare() {
  local build=$1
  "$root/scripts/install-deps"
  if [[ ${SKIP_APT:-0} != 1 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      wrk nginx-light openssh-server openssh-client curl procps util-linux python3 >/dev/null ||
      die "apt-get install failed"
  fi
  inkwired=$root/build/inkwired/inkwired
  inkwire=$root/build/agent/inkwire
  if [[ $build == always || ! -x $inkwired || ! -x $inkwire ]]; then
    if [[ ! -f $root/build/build.ninja ]]; then
      cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    fi
    cmake --build "$root/build" --target inkwired inkwire >/dev/null
  fi
}

stack_start() {
  local work=$1 origin=$2 pg_port key
  stack_work=$work
  pg_init "$work/pg" --auth=trust -U postgres
  pg_port=$(free_port)
  pg_start "$work/pg" "$pg_port" || die "PostgreSQL did not start"
  "$(pg_bindir)/psql" -q -h 127.0.0.1 -p "$pg_port" -U postgres -c "CREATE DATABASE inkwire" postgres
  stack_zone=edge.bench
  stack_host=bench.$stack_zone
  stack_api_port=$(free_port)
  stack_https_port=$(free_port)
  stack_http_port=$(free_port)
  cat >"$work/inkwired.toml" <<TOML
roles = ["controlplane", "relay", "edge"]
zone = "$stack_zone"
data_plane_host = "127.0.0.1:$stack_https_port"
[database]
url = "postgresql://postgres@127.0.0.1:$pg_port/inkwire"
[api]
listen = "127.0.0.1:$stack_api_port"
threads = 1
[metrics]
listen = ""
[ca]
dir = "$work/ca"
[tls]
cert_file = "$work/server.pem"
key_file = "$work/server.key"
[relay]
listen = ""
max_response_body_bytes = 4294967296
[edge]
listen = "127.0.0.1:$stack_https_port"
http_listen = "127.0.0.1:$stack_http_port"
serve_plain_http = true
access_log = false
max_connections_per_ip = 100000
max_request_body_bytes = 4294967296
[log]
level = "warn"
TOML
  "$inkwired" migrate -c "$work/inkwired.toml" >/dev/null
  "$inkwired" ca issue-server-cert -c "$work/inkwired.toml" --cert-out "$work/server.pem" --key-out "$work/server.key" \
    --ip 127.0.0.1 --dns "$stack_zone" --dns "*.$stack_zone" >/dev/null
  "$inkwired" admin create-org -c "$work/inkwired.toml" --name bench >/dev/null
  key=$("$inkwired" admin create-api-key -c "$work/inkwired.toml" --org bench --scope admin)
  "$inkwired" serve -c "$work/inkwired.toml" >"$work/inkwired.log" 2>&1 &
  stack_server_pid=$!
  for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$stack_api_port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done

  INKWIRE_API_URL=http://127.0.0.1:$stack_api_port INKWIRE_API_KEY=$key INKWIRE_CA_FILE=$work/ca/ca.pem \
    "$inkwire" connect bench --forward-to "$origin" --state-dir "$work/agent-state" --quiet \
    --max-request-bytes 4294967296 --max-response-bytes 4294967296 \
    >"$work/agent.log" 2>&1 &
  stack_agent_pid=$!
  for _ in $(seq 150); do grep -q ' connected$' "$work/agent.log" && return 0; sleep 0.1; done
  cat "$work/agent.log" "$work/inkwired.log" >&2
  die "the agent did not connect"
}

stack_wait_tunnel() {
  local code
  for _ in $(seq 100); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$stack_work/ca/ca.pem" \
      --resolve "$stack_host:$stack_https_port:127.0.0.1" "https://$stack_host:$stack_https_port/small")
    [[ $code == 200 ]] && return 0
    sleep 0.1
  done
  cat "$stack_work/agent.log" "$stack_work/inkwired.log" >&2
  die "the tunnel does not answer"
}

stack_in_ns() {
  local w=$stack_work
  [[ -f $w/hosts ]] || { cat /etc/hosts; echo "127.0.0.1 $stack_host"; } >"$w/hosts"
  [[ -f $w/ca-bundle.crt ]] || cat /etc/ssl/certs/ca-certificates.crt "$w/ca/ca.pem" >"$w/ca-bundle.crt"
  unshare --mount bash -c 'mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/ssl/certs/ca-certificates.crt &&
    shift 2 && exec "$@"' _ "$w/hosts" "$w/ca-bundle.crt" "$@"
}

stack_stop() {
  local pid
  for pid in "$stack_agent_pid" "$stack_server_pid"; do
    [[ -z $pid ]] || { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  done
  stack_agent_pid= stack_server_pid=
  [[ -z $stack_work ]] || pg_stop "$stack_work/pg" || true
}
