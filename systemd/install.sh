#!/usr/bin/env bash
# Installs fghv-kiosk as a systemd service: user `fghv-kiosk` (system, no login, in group
# `video`), /etc/fghv-kiosk (config), /var/lib/fghv-kiosk (state), the unit. Idempotent: run
# it again after an update. Prints every action. Run as root from a built checkout
# (`make run` or `npm ci && npm run build` done).
#   systemd/install.sh [--prefix DIR] [--dry-run] [--no-start]
#   --prefix DIR  where the kiosk lives (default: this checkout); the unit's ExecStart points there.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
prefix=$here
dry=0
start=1
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) prefix=$(realpath -m "$2"); shift 2 ;;
    --dry-run) dry=1; shift ;;
    --no-start) start=0; shift ;;
    *) echo "usage: $0 [--prefix DIR] [--dry-run] [--no-start]" >&2; exit 2 ;;
  esac
done
user=fghv-kiosk
unit_src=$here/systemd/fghv-kiosk.service
unit_dst=/etc/systemd/system/fghv-kiosk.service
conf_dir=/etc/fghv-kiosk
state_dir=/var/lib/fghv-kiosk

say() { echo "install: $*"; }
act() { say "$*"; [ $dry = 1 ] || "$@"; }

[ $dry = 1 ] || [ "$(id -u)" -eq 0 ] || { echo "install: run as root (or --dry-run)" >&2; exit 1; }
[ -f "$prefix/dist/daemon/cli/main.js" ] || { echo "install: $prefix/dist is missing: build first (make run or npm run build)" >&2; exit 1; }

if id -u "$user" >/dev/null 2>&1; then
  say "user $user exists"
else
  act useradd --system --home-dir "$state_dir" --no-create-home --shell /usr/sbin/nologin --user-group "$user"
fi
if getent group video >/dev/null; then act usermod -a -G video "$user"; fi

act install -d -m 0750 -o root -g "$user" "$conf_dir"
act install -d -m 0750 -o "$user" -g "$user" "$state_dir"
if [ -e "$conf_dir/config.yaml" ]; then
  say "$conf_dir/config.yaml exists: kept"
else
  say "writing $conf_dir/config.yaml from the defaults (edit it: cameras, mqtt.url, liveness.manifest)"
  if [ $dry = 0 ]; then
    node "$prefix/bin/fghv-kiosk.js" config defaults |
      sed "s#^  state_dir: .*#  state_dir: $state_dir#" >"$conf_dir/config.yaml"
    chown root:"$user" "$conf_dir/config.yaml"
    chmod 0640 "$conf_dir/config.yaml"
  fi
fi

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
sed "s#/opt/fghv-kiosk#$prefix#g" "$unit_src" >"$tmp"
if [ -f "$unit_dst" ] && cmp -s "$tmp" "$unit_dst"; then
  say "$unit_dst is up to date"
else
  act install -m 0644 "$tmp" "$unit_dst"
fi
if command -v systemd-analyze >/dev/null; then act systemd-analyze verify "$unit_dst"; fi
if [ -d /run/systemd/system ]; then
  act systemctl daemon-reload
  act systemctl enable fghv-kiosk.service
  [ $start = 0 ] || act systemctl restart fghv-kiosk.service
  say "status: systemctl status fghv-kiosk; logs: journalctl -u fghv-kiosk -f"
else
  say "systemd is not running here (a container?): unit installed, not enabled or started"
fi
