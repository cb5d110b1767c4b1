#!/usr/bin/env bash
# Checks the systemd files in deploy/systemd/ with systemd's own tools:
#   * `systemd-analyze verify` finds no problem in inkwired.service (any message fails: verify exits
#     0 even for unknown keys and bad values, so its output must be empty); a copy with a typo must
#     be reported, so the check is known to bite on this systemd;
#   * the hardening the unit promises is there, and `systemd-analyze security --offline` scores it
#     at most 2.0 ("OK");
#   * TimeoutStopSec is above the drains configured in deploy/config/inkwired.production.toml;
#   * as root: systemd-sysusers and systemd-tmpfiles, run on a scratch root, create the user and
#     the directories the unit uses, with the intended owners and modes.
#
#   deploy_systemd.sh [SOURCE_DIR]
#
# Exits 77 (skipped) when systemd-analyze is not installed. verify needs the ExecStart binaries to
# exist, so it checks a copy whose /usr/local/bin/inkwired points at a stub in a scratch directory;
# nothing else in the copy differs.
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
root=${1:-$(cd -- "$here/../.." && pwd -P)}
unit=$root/deploy/systemd/inkwired.service
sysusers=$root/deploy/systemd/inkwire.sysusers.conf
tmpfiles=$root/deploy/systemd/inkwire.tmpfiles.conf
config=$root/deploy/config/inkwired.production.toml

fail() {
  printf 'deploy_systemd: FAIL: %s\n' "$*" >&2
  exit 1
}
pass() { printf 'deploy_systemd: ok: %s\n' "$*"; }

if ! command -v systemd-analyze >/dev/null; then
  echo "deploy_systemd: systemd-analyze is not installed; skipped"
  exit 77
fi
for f in "$unit" "$sysusers" "$tmpfiles" "$config"; do
  [[ -f $f ]] || fail "$f is missing"
done

work=$(mktemp -d /tmp/inkwire-deploy-systemd.XXXXXX)
trap 'rm -rf -- "$work"' EXIT

# --- verify -------------------------------------------------------------------------------------
binary=/usr/local/bin/inkwired
[[ $(grep -c "^ExecStart\(Pre\)\?=$binary " "$unit") == 2 ]] ||
  fail "expected ExecStartPre= and ExecStart= to run $binary"
mkdir -p "$work/bin" "$work/unit" "$work/bad"
printf '#!/bin/sh\nexit 0\n' >"$work/bin/inkwired"
chmod 0755 "$work/bin/inkwired"
sed "s#$binary #$work/bin/inkwired #" "$unit" >"$work/unit/inkwired.service"
[[ $(diff "$unit" "$work/unit/inkwired.service" | grep -c '^>') == 2 ]] ||
  fail "the stub substitution changed other lines than ExecStartPre= and ExecStart="

verify() { (cd -- "$(dirname -- "$1")" && systemd-analyze verify --man=no "./$(basename -- "$1")" 2>&1); }

out=$(verify "$work/unit/inkwired.service") || fail "systemd-analyze verify failed: $out"
[[ -z $out ]] || fail "systemd-analyze verify reported: $out"
pass "systemd-analyze verify is silent"

sed 's/^ProtectSystem=/ProtectSystm=/' "$work/unit/inkwired.service" >"$work/bad/inkwired.service"
out=$(verify "$work/bad/inkwired.service" || true)
[[ $out == *ProtectSystm* ]] || fail "systemd-analyze verify did not report a misspelt key (output: '$out')"
pass "systemd-analyze verify reports a misspelt key"

# --- what the unit promises ---------------------------------------------------------------------
# shellcheck disable=SC2016 # a literal $MAINPID: systemd expands it
required=(
  'User=inkwire'
  'AmbientCapabilities=CAP_NET_BIND_SERVICE'
  'CapabilityBoundingSet=CAP_NET_BIND_SERVICE'
  'NoNewPrivileges=yes'
  'ProtectSystem=strict'
  'ProtectHome=yes'
  'PrivateTmp=yes'
  'PrivateDevices=yes'
  'ProtectKernelTunables=yes'
  'ProtectKernelModules=yes'
  'ProtectKernelLogs=yes'
  'ProtectControlGroups=yes'
  'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX'
  'RestrictNamespaces=yes'
  'LockPersonality=yes'
  'MemoryDenyWriteExecute=yes'
  'SystemCallFilter=@system-service'
  'ReadWritePaths=/var/lib/inkwire'
  'LimitNOFILE=65536'
  'ExecReload=/bin/kill -HUP $MAINPID'
  'KillSignal=SIGTERM'
  'Restart=on-failure'
)
for line in "${required[@]}"; do
  grep -qFx -- "$line" "$unit" || fail "$unit lacks '$line'"
done
# Exactly one capability, wherever capabilities are named.
[[ $(grep -cE '^(AmbientCapabilities|CapabilityBoundingSet)=' "$unit") == 2 ]] ||
  fail "capabilities are set more than once"
pass "the unit has the ${#required[@]} promised settings"

out=$(cd -- "$work/unit" && systemd-analyze security --offline=true --threshold=20 --no-pager ./inkwired.service 2>&1) ||
  fail "systemd-analyze security scores the unit above 2.0: $(printf '%s\n' "$out" | tail -n 1)"
pass "$(printf '%s\n' "$out" | tail -n 1)"

# --- stop timeout above the drains -------------------------------------------------------------
# toml_int SECTION KEY DEFAULT: an integer key of the production config (flat sections only).
toml_int() {
  local value
  value=$(awk -v section="[$1]" -v key="$2" '
    /^[[:space:]]*\[/ { gsub(/[[:space:]]/, ""); current = $0; next }
    current == section && $1 == key && $2 == "=" { print $3; exit }' "$config")
  printf '%s\n' "${value:-$3}"
}
drain=$(toml_int relay drain_timeout_seconds 30)
edge_grace=$(toml_int edge shutdown_grace_seconds 10)
api_grace=$(toml_int api shutdown_grace_seconds 10)
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)$/\1/p' "$unit")
[[ -n $stop ]] || fail "TimeoutStopSec= is missing or not in plain seconds"
needed=$((drain + 2 + edge_grace + api_grace))
((stop > needed)) || fail "TimeoutStopSec=$stop is not above the drains ($drain + 2 + $edge_grace + $api_grace s)"
pass "TimeoutStopSec=$stop > $needed s of drains"

# --- sysusers and tmpfiles on a scratch root ------------------------------------------------------
if [[ $(id -u) != 0 ]]; then
  echo "deploy_systemd: not root: sysusers/tmpfiles check skipped"
else
  scratch=$work/root
  mkdir -p "$scratch/etc" "$scratch/var/lib"
  systemd-sysusers --root="$scratch" "$sysusers" >/dev/null 2>&1 || fail "systemd-sysusers rejected $sysusers"
  entry=$(grep '^inkwire:' "$scratch/etc/passwd") || fail "systemd-sysusers created no user inkwire"
  IFS=: read -r _ _ uid gid _ home shell <<<"$entry"
  [[ $home == /var/lib/inkwire && $shell == /usr/sbin/nologin ]] || fail "user inkwire: $entry"
  grep -q "^inkwire:x:$gid:" "$scratch/etc/group" || fail "systemd-sysusers created no group inkwire"
  out=$(systemd-tmpfiles --root="$scratch" --create "$tmpfiles" 2>&1) || fail "systemd-tmpfiles: $out"
  check_dir() { # PATH MODE UID GID
    local got
    got=$(stat -c '%a %u %g' "$scratch$1" 2>/dev/null) || fail "systemd-tmpfiles did not create $1"
    [[ $got == "$2 $3 $4" ]] || fail "$1 is '$got' (mode uid gid), expected '$2 $3 $4'"
  }
  check_dir /etc/inkwire 750 0 "$gid"
  check_dir /etc/inkwire/tls 750 0 "$gid"
  check_dir /var/lib/inkwire 700 "$uid" "$gid"
  check_dir /var/lib/inkwire/ca 700 "$uid" "$gid"
  pass "sysusers and tmpfiles create inkwire ($uid:$gid) and its directories"
fi
echo "deploy_systemd: all checks passed"
