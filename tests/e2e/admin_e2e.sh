#!/usr/bin/env bash
# End-to-end test of the admin dashboard (/admin/, controlplane/admin/) in a real browser: a real
# `inkwired serve` (roles controlplane + relay + edge) on a fresh database, an admin and a member API
# key, and tests/e2e/admin/admin_dashboard.js driving Debian's Chromium headless through
# playwright-core (installed from npm into tests/e2e/admin/node_modules by scripts/install-deps).
#
#   admin_e2e.sh INKWIRED
#
# Set-up as in agent_e2e.sh: a fresh database in the suite's cluster (INKWIRE_TEST_PG_DIR) or a
# private cluster, 127.0.0.1 only, every wait bounded, everything stopped by the EXIT trap.
# Screenshots go to $SCREENSHOT_DIR (default: the work directory, so a test run leaves the source
# tree alone); `SCREENSHOT_DIR=docs/screenshots` refreshes the committed ones. KEEP=1 keeps the
# work directory. Exits 77 (skipped) when Chromium or playwright-core is not installed.
set -euo pipefail

INKWIRE_SCRIPT_NAME=admin_e2e
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
root=$(cd -- "$here/../.." && pwd -P)
# shellcheck source-path=SCRIPTDIR/../..
source "$root/scripts/lib/common.sh"
source "$root/scripts/lib/pg.sh"

[[ $# -eq 1 ]] || { echo "usage: admin_e2e.sh INKWIRED" >&2; exit 2; }
inkwired=$(realpath -- "$1")
[[ -f $inkwired && -x $inkwired ]] || die "$inkwired is not an executable file"
for tool in curl jq psql timeout node; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
chromium=${CHROMIUM:-/usr/bin/chromium}
if [[ ! -x $chromium ]]; then
  echo "admin_e2e: SKIP: $chromium is not installed (scripts/install-deps installs Debian's chromium)" >&2
  exit 77
fi
if [[ ! -f $here/admin/node_modules/playwright-core/package.json ]]; then
  echo "admin_e2e: SKIP: playwright-core is not installed in $here/admin/node_modules (scripts/install-deps)" >&2
  exit 77
fi

pg_fixture_dir=${INKWIRE_TEST_PG_DIR:-}
clean_env=()
while IFS= read -r var; do
  if [[ $var == INKWIRE_* && $var != INKWIRE_PYTHON ]]; then clean_env+=(-u "$var"); fi
done < <(compgen -e)

started=$SECONDS
work=$(mktemp -d /tmp/inkwire-admin-e2e.XXXXXX)
chmod 755 "$work" # a private cluster's owner (postgres) must reach it
own_pg=0
admin_url=
db_name=
server_pid=
zone=admin.test

log() { printf '[%3ds] %s\n' "$((SECONDS - started))" "$*"; }
setup_fail() {
  printf 'admin_e2e: setup failed: %s\n' "$*" >&2
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
    echo "admin_e2e: kept $work" >&2
  else
    rm -rf -- "$work"
  fi
  log "done in $((SECONDS - started)) s, exit $rc"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

port_accepts() {
  # shellcheck disable=SC2016 # $1 is the inner shell's
  timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}
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
db_name="admin_e2e_$$_${RANDOM}"
timeout 20 psql -X -q -v ON_ERROR_STOP=1 "$admin_url" -c "CREATE DATABASE \"$db_name\"" >/dev/null ||
  setup_fail "cannot create database $db_name"
db_url="${admin_url%/*}/$db_name"

api_port=$(free_port)
hp=$(free_port) # edge.listen: agents (relay) and third parties (TLS)
pp=$(free_port) # edge.http_listen: plain HTTP
metrics_port=$(free_port)
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
[edge]
listen = "127.0.0.1:$hp"
http_listen = "127.0.0.1:$pp"
public_https_port = $hp
cert_check_seconds = 0
TOML

log "migrate, server certificate, organisation, API keys"
iw migrate -c "$cfg" >"$work/migrate.out" 2>&1 || setup_fail "inkwired migrate failed: $(tail -n 3 "$work/migrate.out")"
iw ca issue-server-cert -c "$cfg" --cert-out "$work/server.pem" --key-out "$work/server.key" \
  --dns "$zone" --dns "*.$zone" --ip 127.0.0.1 >"$work/cert.out" 2>&1 ||
  setup_fail "issue-server-cert failed: $(tail -n 3 "$work/cert.out")"
iw admin create-org -c "$cfg" --name e2e >"$work/org.out" 2>&1 || setup_fail "admin create-org failed"
admin_key=$(iw admin create-api-key -c "$cfg" --org e2e --scope admin 2>"$work/key.err") || setup_fail "create-api-key failed"
member_key=$(iw admin create-api-key -c "$cfg" --org e2e --scope member 2>>"$work/key.err") || setup_fail "create-api-key failed"
[[ $admin_key == ApiKey_* && $member_key == ApiKey_* ]] || setup_fail "create-api-key printed '$admin_key' / '$member_key'"

log "serve"
(exec env "${clean_env[@]}" "$inkwired" serve -c "$cfg" >>"$work/serve.log" 2>&1) &
server_pid=$!
deadline=$((SECONDS + 20))
until curl -fsS --max-time 2 "http://127.0.0.1:$api_port/readyz" >/dev/null 2>&1 && port_accepts "$hp"; do
  pid_alive "$server_pid" || setup_fail "inkwired serve exited during start-up: $(tail -n 5 "$work/serve.log")"
  ((SECONDS < deadline)) || setup_fail "inkwired serve not ready after 20 s"
  sleep 0.1
done

shots=${SCREENSHOT_DIR:-$work/screenshots}
mkdir -p -- "$shots"
shots=$(cd -- "$shots" && pwd -P)
log "browser (Chromium $("$chromium" --version 2>/dev/null | awk '{print $2}'), screenshots in $shots)"
rc=0
# The keys reach the test through its environment, never its command line (ps shows that).
ADMIN_KEY=$admin_key MEMBER_KEY=$member_key BASE_URL="http://127.0.0.1:$api_port" CHROMIUM=$chromium HTTPS_PORT=$hp \
  SCREENSHOT_DIR=$shots timeout 150 node "$here/admin/admin_dashboard.js" || rc=$?

# The dashboard never sends a key in a URL, so none may appear in the server's log.
if grep -qF -e "${admin_key#*.}" -e "${member_key#*.}" "$work/serve.log"; then
  echo "admin_e2e: FAIL: an API key's secret appears in the server log"
  rc=1
fi
((rc == 0)) && echo "admin_e2e: PASS" || echo "admin_e2e: FAIL (exit $rc)"
exit "$rc"
