#!/usr/bin/env bash
# The systemd units: systemd-analyze verify finds nothing wrong with them (but the binaries,
# which are not installed on a build machine), and each carries the hardening and readiness
# settings operators expect.
set -euo pipefail
units_dir="$TEST_SRCDIR/$TEST_WORKSPACE/deploy/systemd"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

for unit in mailroom-broker.service mailroom-pan.service mailroom-psn@.service mailroom-mnt.service; do
  src="$units_dir/$unit"
  [[ -f "$src" ]] || { fail "$unit missing"; continue; }
  # A template is verified through an instance.
  name="${unit/@./@1.}"
  cp "$src" "$work/$name"
  out="$(cd "$work" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "./$name" 2>&1 |
    grep -v 'Command /usr/bin/mailroom-[a-z]* is not executable' || true)"
  [[ -z "$out" ]] || fail "$unit: systemd-analyze verify: $out"
  for setting in Type=notify User=mailroom Restart=on-failure NoNewPrivileges=yes \
    ProtectSystem=strict ProtectHome=yes PrivateTmp=yes UMask=0077 CapabilityBoundingSet= \
    StateDirectory=mailroom/; do
    grep -q "^${setting}" "$src" || fail "$unit lacks ${setting}"
  done
  grep -q '^ExecStart=/usr/bin/mailroom-[a-z]* --config=/etc/mailroom/' "$src" ||
    fail "$unit: ExecStart must run a mailroom binary with its config from /etc/mailroom"
  # Nothing writable but the state directory: no ReadWritePaths.
  if grep -q '^ReadWritePaths=' "$src"; then fail "$unit opens extra writable paths"; fi
  echo "checked $unit"
done
((failures == 0)) || exit 1
echo "all systemd units passed"
