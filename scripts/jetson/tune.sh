#!/usr/bin/env bash
# Jetson power and clocks for a kiosk (run as root; NOT TESTED here, see docs/jetson.md).
#   scripts/jetson/tune.sh show | max | default
set -euo pipefail
case ${1:-show} in
  show) nvpmodel -q; jetson_clocks --show ;;
  # MAXN (mode 0 on Orin) and clocks pinned: lowest latency, most heat: check cooling.
  max) nvpmodel -m 0; jetson_clocks ;;
  default) jetson_clocks --restore 2>/dev/null || true; nvpmodel -m "${NVP_DEFAULT_MODE:-2}" ;;
  *) echo "usage: $0 show|max|default" >&2; exit 2 ;;
esac
