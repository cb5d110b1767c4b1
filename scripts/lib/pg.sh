# shellcheck shell=bash
# Private PostgreSQL clusters for scripts/up (the local stack) and tests/support/pg-cluster
# (the test suite's throwaway cluster). Sourced, never executed; needs lib/common.sh.
#
# Layout of a cluster directory DIR:
#   DIR/data/              PGDATA (initdb)
#   DIR/postgres.log       the server's log
#   DIR/.s.PGSQL.<port>    the Unix socket (when the path fits in sun_path)
# PostgreSQL refuses to run as root, so when we are root the server and its tools run as the
# unprivileged $INKWIRE_PG_USER [postgres], which owns DIR; otherwise they run as ourselves.
# The server listens on 127.0.0.1 only.

INKWIRE_PG_USER=${INKWIRE_PG_USER:-postgres}

# pg_bindir: prints the directory holding initdb/pg_ctl ($INKWIRE_PG_BINDIR, else the newest
# /usr/lib/postgresql/*/bin).
pg_bindir() {
  local dir=${INKWIRE_PG_BINDIR:-}
  if [[ -z $dir ]]; then
    dir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
  fi
  [[ -n $dir && -x $dir/initdb && -x $dir/pg_ctl ]] ||
    die "PostgreSQL server binaries not found (looked in ${dir:-/usr/lib/postgresql/*/bin}); run scripts/install-deps or set INKWIRE_PG_BINDIR"
  printf '%s\n' "$dir"
}

# pg_as PROGRAM ARGS...: runs a PostgreSQL program from pg_bindir as the cluster's owner,
# from "/" so that an unreadable current directory does not bother it.
pg_as() {
  local prog
  prog="$(pg_bindir)/$1"
  shift
  if ((EUID == 0)); then
    (cd / && runuser -u "$INKWIRE_PG_USER" -- "$prog" "$@")
  else
    "$prog" "$@"
  fi
}

# pg_test_as_owner TEST-ARGS...: `test` evaluated with the cluster owner's permissions.
pg_test_as_owner() {
  if ((EUID == 0)); then
    runuser -u "$INKWIRE_PG_USER" -- test "$@"
  else
    test "$@"
  fi
}

# pg_conf_quote VALUE: VALUE as a postgresql.conf string literal.
pg_conf_quote() {
  local v=${1//\\/\\\\}
  printf "'%s'" "${v//\'/\'\'}"
}

# pg_prepare_dir DIR: creates DIR owned by the cluster owner (mode 0700) and checks that the
# owner can reach it; if a parent directory blocks it, names that directory.
pg_prepare_dir() {
  local dir=$1 d path
  local -a parts
  if ((EUID == 0)); then
    id -u "$INKWIRE_PG_USER" >/dev/null 2>&1 ||
      die "user '$INKWIRE_PG_USER' does not exist (PostgreSQL cannot run as root); run scripts/install-deps or set INKWIRE_PG_USER"
  fi
  mkdir -p -- "$dir" || die "cannot create $dir"
  if ((EUID == 0)); then
    chown -- "$INKWIRE_PG_USER:" "$dir" || die "cannot chown $dir to $INKWIRE_PG_USER"
  fi
  chmod 0700 -- "$dir" || die "cannot chmod $dir"
  if ! pg_test_as_owner -w "$dir" -a -x "$dir"; then
    # Find the first directory on the way down that the owner cannot traverse.
    path=
    IFS=/ read -r -a parts <<<"${dir#/}"
    for d in "" "${parts[@]}"; do
      [[ -n $d ]] && path="$path/$d"
      if ! pg_test_as_owner -x "${path:-/}"; then
        die "directory ${path:-/} is not traversable by user '$INKWIRE_PG_USER', so PostgreSQL cannot use $dir; allow it (chmod o+x ${path:-/}, or setfacl -m u:$INKWIRE_PG_USER:x ${path:-/}) or keep the checkout elsewhere"
      fi
    done
    die "user '$INKWIRE_PG_USER' cannot write to $dir"
  fi
}

# pg_exists DIR: true when DIR holds an initialised cluster.
pg_exists() {
  [[ -f $1/data/PG_VERSION ]]
}

# pg_init DIR INITDB-ARGS...: a fresh cluster in DIR/data (DIR/data must not exist yet).
# A --pwfile=FILE argument may name a file only we can read: initdb gets a private copy
# owned by the cluster owner, deleted right after.
pg_init() {
  local dir=$1 arg pwcopy='' rc=0
  local -a args=()
  shift
  pg_prepare_dir "$dir"
  [[ ! -e $dir/data ]] || die "$dir/data already exists; refusing to initdb over it"
  for arg in "$@"; do
    if [[ $arg == --pwfile=* ]]; then
      pwcopy=$dir/.pwfile
      (umask 077 && cp -- "${arg#--pwfile=}" "$pwcopy") || die "cannot read ${arg#--pwfile=}"
      if ((EUID == 0)); then chown -- "$INKWIRE_PG_USER:" "$pwcopy"; fi
      arg=--pwfile=$pwcopy
    fi
    args+=("$arg")
  done
  pg_as initdb -D "$dir/data" --encoding=UTF8 --locale=C.UTF-8 --no-instructions "${args[@]}" \
    >"$dir/initdb.log" 2>&1 || rc=$?
  [[ -z $pwcopy ]] || rm -f -- "$pwcopy"
  if ((rc != 0)); then
    tail -n 20 -- "$dir/initdb.log" >&2 || true
    die "initdb failed for $dir/data (full output in $dir/initdb.log)"
  fi
  # Per-start settings (port, listen address, socket directory) live in a file pg_start
  # rewrites, so a moved checkout or a changed port needs no edit of postgresql.conf.
  printf "\n# inkwire\ninclude_if_exists = 'inkwire-runtime.conf'\n" >>"$dir/data/postgresql.conf"
}

# pg_set DIR NAME VALUE: appends a setting to the cluster's postgresql.conf.
pg_set() {
  printf '%s = %s\n' "$2" "$(pg_conf_quote "$3")" >>"$1/data/postgresql.conf"
}

# pg_pid DIR: the postmaster's PID from DIR/data/postmaster.pid, or nothing.
pg_pid() {
  read_pid "$1/data/postmaster.pid"
}

# pg_is_running DIR: true when the cluster in DIR runs.
pg_is_running() {
  local pid
  pid=$(pg_pid "$1")
  [[ -n $pid ]] && pid_matches "$pid" postgres
}

# pg_wait_ready PORT SECONDS: waits until the server on 127.0.0.1:PORT accepts connections.
pg_wait_ready() {
  local port=$1 deadline=$((SECONDS + $2)) bindir
  bindir=$(pg_bindir)
  until "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" -t 2; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# pg_start DIR PORT: starts the cluster on 127.0.0.1:PORT and waits (30 s at most) until it
# answers. Returns 1 (after showing the log's tail) if it does not come up, so a caller can
# retry with another port.
pg_start() {
  local dir=$1 port=$2 socket_dir=$1 runtime log
  log=$dir/postgres.log
  # sun_path holds 107 bytes: beyond that, no Unix socket (everything uses TCP anyway).
  if ((${#dir} + ${#port} + 10 > 107)); then
    socket_dir=
  fi
  runtime=$dir/data/inkwire-runtime.conf
  {
    echo "# written by scripts/lib/pg.sh at every start"
    printf 'port = %s\n' "$port"
    echo "listen_addresses = '127.0.0.1'"
    printf 'unix_socket_directories = %s\n' "$(pg_conf_quote "$socket_dir")"
  } >"$runtime"
  if ((EUID == 0)); then
    chown -- "$INKWIRE_PG_USER:" "$runtime"
    # The log is opened by pg_ctl as the cluster owner; keep an old root-owned one writable.
    [[ ! -e $log ]] || chown -- "$INKWIRE_PG_USER:" "$log"
  fi
  local out
  if ! out=$(close_extra_fds && pg_as pg_ctl -D "$dir/data" -l "$log" -w -t 30 -s start 2>&1) ||
    ! pg_wait_ready "$port" 30; then
    [[ -z $out ]] || printf '%s\n' "$out" >&2
    echo "--- last lines of $log ---" >&2
    tail -n 15 -- "$log" >&2 2>/dev/null || true
    pg_stop "$dir"
    return 1
  fi
}

# pg_stop DIR [PID]: stops the cluster in DIR (pg_ctl stop -m fast, 20 s at most), then by
# PID if it still runs (SIGQUIT, the immediate shutdown, then SIGKILL). PID is used when
# DIR's postmaster.pid is gone. Does nothing when nothing runs.
pg_stop() {
  local dir=$1 pid
  pid=$(pg_pid "$dir")
  pid=${pid:-${2:-}}
  [[ -n $pid ]] && pid_matches "$pid" postgres || return 0
  if [[ -d $dir/data ]]; then
    pg_as pg_ctl -D "$dir/data" -m fast -w -t 20 -s stop >/dev/null 2>&1 || true
  fi
  if pid_matches "$pid" postgres; then
    warn "PostgreSQL (PID $pid) did not stop with pg_ctl; sending SIGQUIT"
    kill -QUIT "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" 10; then
      warn "PostgreSQL (PID $pid) still runs; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone "$pid" 5 || die "cannot stop PostgreSQL (PID $pid)"
    fi
  fi
}
