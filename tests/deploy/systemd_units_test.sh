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

declare -A user_of=([mailroom-broker.service]=mailroom-broker [mailroom-pan.service]=mailroom-pan
  [mailroom-psn@.service]=mailroom-psn [mailroom-mnt.service]=mailroom-mnt)
for unit in mailroom-broker.service mailroom-pan.service mailroom-psn@.service mailroom-mnt.service; do
  src="$units_dir/$unit"
  [[ -f "$src" ]] || { fail "$unit missing"; continue; }
  # A template is verified through an instance.
  name="${unit/@./@1.}"
  cp "$src" "$work/$name"
  out="$(cd "$work" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "./$name" 2>&1 |
    grep -v 'Command /usr/bin/mailroom-[a-z]* is not executable' || true)"
  [[ -z "$out" ]] || fail "$unit: systemd-analyze verify: $out"
  # One system user per role (issue 10, M3): the PAN process must not read the broker's key.
  user="${user_of[$unit]}"
  grep -qx "User=$user" "$src" || fail "$unit must run as $user (one user per role)"
  grep -qx "Group=$user" "$src" || fail "$unit must run with group $user"
  grep -qx "SupplementaryGroups=mailroom" "$src" || fail "$unit: SupplementaryGroups=mailroom"
  [[ "$(grep -c '^User=' "$src")" == 1 ]] || fail "$unit: exactly one User="
  grep -Eq "^u +$user " "$units_dir/mailroom.sysusers.conf" ||
    fail "mailroom.sysusers.conf does not create $user"
  for setting in Type=notify Restart=on-failure NoNewPrivileges=yes \
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
# The process holding the secret never dumps core.
grep -qx "LimitCORE=0" "$units_dir/mailroom-broker.service" || fail "broker unit lacks LimitCORE=0"

# The layout guide: every private key is installed owned by its role's user, mode 0600, and
# nothing installs a key for group or others to read.
guide="$units_dir/README.md"
keys=0
while IFS= read -r line; do
  keys=$((keys + 1))
  [[ "$line" =~ -m\ 0600 ]] || fail "layout guide installs a key without mode 0600: $line"
  for key in $(grep -o '[a-z0-9-]*\.key' <<<"$line"); do
    case "$key" in
      broker.key) want=mailroom-broker ;;
      pan*.key) want=mailroom-pan ;;
      psn*.key) want=mailroom-psn ;;
      mnt*.key) want=mailroom-mnt ;;
      *) fail "layout guide installs an unknown key $key"; continue ;;
    esac
    [[ "$line" =~ -o\ $want\  ]] || fail "layout guide: $key must be owned by $want: $line"
  done
done < <(grep -E '^install .*\.key' "$guide")
((keys >= 3)) || fail "layout guide shows no key installation (found $keys)"
if grep -Eq 'useradd .* mailroom$|User=mailroom$' "$guide"; then
  fail "layout guide still uses one shared mailroom user"
fi

((failures == 0)) || exit 1
echo "all systemd units passed"
