# shellcheck shell=bash
# Helpers shared by scripts/up, scripts/down, scripts/test and tests/support/pg-cluster.
# Sourced, never executed. Every failure is one line on stderr naming the script, then a
# non-zero exit.

# The name errors are reported under, e.g. "up" or "pg-cluster".
INKWIRE_SCRIPT_NAME=${INKWIRE_SCRIPT_NAME:-$(basename -- "$0")}

die() {
  printf '%s: error: %s\n' "$INKWIRE_SCRIPT_NAME" "$*" >&2
  exit 1
}

warn() {
  printf '%s: warning: %s\n' "$INKWIRE_SCRIPT_NAME" "$*" >&2
}

info() {
  printf '%s: %s\n' "$INKWIRE_SCRIPT_NAME" "$*"
}

# Debian's python3 (DESIGN.md: the python3 first on PATH may be another build).
INKWIRE_PYTHON=${INKWIRE_PYTHON:-/usr/bin/python3}

# free_port: prints a TCP port on 127.0.0.1 that nobody listens on right now. The kernel
# picks it (bind to port 0); a race with another program remains possible, so callers that
# can retry do.
free_port() {
  "$INKWIRE_PYTHON" -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
' || die "cannot pick a free TCP port on 127.0.0.1 (is $INKWIRE_PYTHON installed?)"
}

# port_is_free PORT: true when PORT on 127.0.0.1 can be bound (so nothing listens on it).
port_is_free() {
  "$INKWIRE_PYTHON" - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
PY
}

# check_port NAME VALUE: dies unless VALUE is a TCP port number.
check_port() {
  local name=$1 value=$2
  if ! [[ $value =~ ^[0-9]{1,5}$ ]] || ((10#$value < 1 || 10#$value > 65535)); then
    die "$name must be a TCP port number (1-65535), got '$value'"
  fi
}

# pid_matches PID NAME: true when process PID is alive and its executable's base name is
# NAME, so a stale PID file whose number was reused by another program is not mistaken for
# ours.
pid_matches() {
  local pid=$1 name=$2 exe
  [[ $pid =~ ^[1-9][0-9]*$ ]] || return 1
  pid_alive "$pid" || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  exe=${exe% (deleted)}
  [[ $(basename -- "$exe") == "$name" ]]
}

# pid_alive PID: true while PID runs (a zombie, exited but not yet reaped, does not count).
pid_alive() {
  local stat
  kill -0 "$1" 2>/dev/null || return 1
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) } # the state follows the parenthesised command name
  [[ ${stat%% *} != Z ]]
}

# wait_gone PID SECONDS: waits until PID has exited; false if it still runs after SECONDS.
wait_gone() {
  local pid=$1 deadline=$((SECONDS + $2))
  while pid_alive "$pid"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# close_extra_fds: closes every file descriptor above 2 in the current (sub)shell, so that a
# daemon started from it holds no lock file or pipe of ours (or of whoever ran us): a caller
# waiting for end-of-file on a pipe would otherwise wait for as long as the daemon lives.
close_extra_fds() {
  local fd
  for fd in /proc/"$BASHPID"/fd/*; do
    fd=${fd##*/}
    if ((fd > 2)); then
      eval "exec $fd>&-" 2>/dev/null || true
    fi
  done
}

# read_pid FILE: prints the first line of FILE if it is a PID, else nothing.
read_pid() {
  local pid=
  if [[ -r $1 ]]; then
    IFS= read -r pid <"$1" || true
  fi
  [[ $pid =~ ^[1-9][0-9]*$ ]] && printf '%s\n' "$pid"
  return 0
}
