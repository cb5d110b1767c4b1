# shellcheck shell=bash
# The local stack's layout and process handling, shared by scripts/up and scripts/down.
# Sourced after lib/common.sh and lib/pg.sh, with STACK_ROOT set to the checkout.
#
# .local/
#   bin/inkwired            the installed server
#   inkwired.toml           its config (0600: holds the database password)
#   stack.env               what clients need (0600: holds the admin API key)
#   pg/                     the private PostgreSQL cluster (lib/pg.sh layout), pg-port its port
#   secrets/ (0700)         pg-password, admin-api-key
#   ca/ tls/                the installation CA (made by inkwired) and the server certificate
#   log/inkwired.log        the server's output
#   run/*.pid               PIDs of what scripts/up started

# shellcheck disable=SC2034 # the variables are used by scripts/up and scripts/down
{
  STACK_LOCAL=$STACK_ROOT/.local
  STACK_BIN=$STACK_LOCAL/bin
  STACK_RUN=$STACK_LOCAL/run
  STACK_LOG_DIR=$STACK_LOCAL/log
  STACK_LOG=$STACK_LOG_DIR/inkwired.log
  STACK_PG=$STACK_LOCAL/pg
  STACK_PG_PORT_FILE=$STACK_LOCAL/pg-port
  STACK_SECRETS=$STACK_LOCAL/secrets
  STACK_CA=$STACK_LOCAL/ca
  STACK_TLS=$STACK_LOCAL/tls
  STACK_CONFIG=$STACK_LOCAL/inkwired.toml
  STACK_ENV=$STACK_LOCAL/stack.env
  STACK_INKWIRED_PID=$STACK_RUN/inkwired.pid
  STACK_POSTGRES_PID=$STACK_RUN/postgres.pid
}

# stack_lock: one scripts/up or scripts/down at a time. The lock is on file descriptor 9,
# which no daemon may inherit (close_extra_fds), or it would hold the lock after we exit.
stack_lock() {
  mkdir -p -- "$STACK_LOCAL" || die "cannot create $STACK_LOCAL"
  exec 9>"$STACK_LOCAL/.lock" || die "cannot open $STACK_LOCAL/.lock"
  flock -n 9 || die "another scripts/up or scripts/down is running in $STACK_ROOT"
}

# stack_inkwired_pid: prints the PID of the inkwired scripts/up started, if it still runs.
stack_inkwired_pid() {
  local pid
  pid=$(read_pid "$STACK_INKWIRED_PID")
  if [[ -n $pid ]] && pid_matches "$pid" inkwired; then
    printf '%s\n' "$pid"
  fi
}

# stack_postgres_pid: prints the PID of the stack's PostgreSQL, if it runs.
stack_postgres_pid() {
  local pid
  pid=$(pg_pid "$STACK_PG")
  pid=${pid:-$(read_pid "$STACK_POSTGRES_PID")}
  if [[ -n $pid ]] && pid_matches "$pid" postgres; then
    printf '%s\n' "$pid"
  fi
}

# stack_stop_inkwired: SIGTERM, up to 15 s for a graceful exit, then SIGKILL.
stack_stop_inkwired() {
  local pid
  pid=$(stack_inkwired_pid)
  if [[ -n $pid ]]; then
    info "stopping inkwired (PID $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" 15; then
      warn "inkwired (PID $pid) did not exit within 15 s of SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone "$pid" 5 || die "cannot stop inkwired (PID $pid)"
    fi
  fi
  rm -f -- "$STACK_INKWIRED_PID"
}

# stack_stop_postgres: pg_ctl stop -m fast, falling back to the PID.
stack_stop_postgres() {
  local pid
  pid=$(stack_postgres_pid)
  if [[ -n $pid ]]; then
    info "stopping PostgreSQL (PID $pid)"
    pg_stop "$STACK_PG" "$pid"
  fi
  rm -f -- "$STACK_POSTGRES_PID"
}

# The demo tunnel scripts/up brings online: a static page served by Python on loopback and an
# `inkwire connect demo` agent forwarding to it, both in their own sessions with PID files.
STACK_DEMO=$STACK_LOCAL/demo
STACK_DEMO_ORIGIN_PID=$STACK_RUN/demo-origin.pid
STACK_DEMO_AGENT_PID=$STACK_RUN/demo-agent.pid

# stack_demo_origin_pid / stack_demo_agent_pid: the PID if that process still runs.
stack_demo_origin_pid() {
  local pid exe
  pid=$(read_pid "$STACK_DEMO_ORIGIN_PID")
  [[ -n $pid ]] && pid_alive "$pid" || return 0
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 0
  [[ $(basename -- "${exe% (deleted)}") == python3* ]] && printf '%s\n' "$pid"
  return 0
}
stack_demo_agent_pid() {
  local pid
  pid=$(read_pid "$STACK_DEMO_AGENT_PID")
  if [[ -n $pid ]] && pid_matches "$pid" inkwire; then printf '%s\n' "$pid"; fi
}

# stack_stop_demo: the agent first (it closes the tunnel's session cleanly), then the origin.
stack_stop_demo() {
  local pid
  for pid in "$(stack_demo_agent_pid)" "$(stack_demo_origin_pid)"; do
    [[ -n $pid ]] || continue
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" 10; then
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone "$pid" 5 || warn "cannot stop PID $pid"
    fi
  done
  rm -f -- "$STACK_DEMO_AGENT_PID" "$STACK_DEMO_ORIGIN_PID"
}
