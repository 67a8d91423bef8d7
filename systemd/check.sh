#!/usr/bin/env bash
# Checks systemd/haier-sync.service: `systemd-analyze verify` must print nothing, and
# `systemd-analyze security --offline=yes` must score it 2.0 or lower.
# Usage: systemd/check.sh [BINARY]   (default: target/debug/haier-sync; build it first)
# verify wants the ExecStart binary to exist, so a copy of the unit points at BINARY.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=$(realpath "${1:-target/debug/haier-sync}")
if [ ! -x "$binary" ]; then
    echo "error: $binary is not an executable; build it first (cargo build)" >&2
    exit 1
fi
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "error: systemd-analyze is missing (Debian: apt-get install systemd)" >&2
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
unit="$work/haier-sync.service"
sed "s#^ExecStart=/usr/local/bin/haier-sync#ExecStart=$binary#" systemd/haier-sync.service >"$unit"
grep -q "^ExecStart=$binary " "$unit" || { echo "error: ExecStart not found in the unit" >&2; exit 1; }

echo "systemd-analyze verify"
if ! output=$(systemd-analyze verify "$unit" 2>&1) || [ -n "$output" ]; then
    printf '%s\n' "$output" >&2
    echo "error: systemd-analyze verify is not clean" >&2
    exit 1
fi

echo "systemd-analyze security --offline=yes --threshold=20"
if ! output=$(systemd-analyze security --offline=yes --threshold=20 "$unit" 2>&1); then
    printf '%s\n' "$output" >&2
    echo "error: the unit's exposure is above 2.0" >&2
    exit 1
fi
printf '%s\n' "$output" | grep "Overall exposure level"
echo "systemd unit OK"
