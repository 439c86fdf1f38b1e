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

# Two brokers elected through etcd (issue 12): the broker's HA drop-in, and Debian's etcd.service
# (package etcd-server, from tools/setup.sh) with mailroom's drop-in and EnvironmentFile.
# verify loads drop-ins from <unit>.service.d beside the unit it is given.
mkdir -p "$work/mailroom-broker.service.d" "$work/etcd.service.d"
cp "$units_dir/mailroom-broker.service" "$work/"
cp "$units_dir/mailroom-broker.service.d/ha.conf" "$work/mailroom-broker.service.d/" ||
  fail "mailroom-broker.service.d/ha.conf missing"
out="$(cd "$work" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no ./mailroom-broker.service 2>&1 |
  grep -v 'Command /usr/bin/mailroom-broker is not executable' || true)"
[[ -z "$out" ]] || fail "mailroom-broker.service with ha.conf: systemd-analyze verify: $out"
grep -qx "After=etcd.service" "$units_dir/mailroom-broker.service.d/ha.conf" ||
  fail "ha.conf: the broker must start after the node's etcd member"
debian_etcd=/lib/systemd/system/etcd.service
if [[ ! -f "$debian_etcd" ]]; then
  fail "$debian_etcd missing (etcd-server; run tools/setup.sh)"
else
  dropin="$units_dir/etcd.service.d/mailroom.conf"
  cp "$debian_etcd" "$work/etcd.service"
  out="$(cd "$work" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no ./etcd.service 2>&1 || true)"
  [[ -z "$out" ]] || fail "Debian's etcd.service (without the drop-in): systemd-analyze verify: $out"
  exposure() { (cd "$work" && systemd-analyze security --offline=true ./etcd.service 2>/dev/null |
    sed -n 's/.*Overall exposure level for etcd.service: \([0-9.]*\).*/\1/p'); }
  bare="$(exposure)"
  cp "$dropin" "$work/etcd.service.d/" || fail "etcd.service.d/mailroom.conf missing"
  out="$(cd "$work" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no ./etcd.service 2>&1 || true)"
  [[ -z "$out" ]] || fail "etcd.service with mailroom.conf: systemd-analyze verify: $out"
  hardened="$(exposure)"
  broker="$(cd "$work" && systemd-analyze security --offline=true ./mailroom-broker.service 2>/dev/null |
    sed -n 's/.*Overall exposure level for mailroom-broker.service: \([0-9.]*\).*/\1/p')"
  echo "etcd.service exposure: $bare without the drop-in, $hardened with it (the broker's: $broker)"
  # As sandboxed as the mailroom units: no worse an exposure than the broker's.
  awk -v e="$hardened" -v b="$broker" 'BEGIN { exit !(e != "" && b != "" && e <= b) }' ||
    fail "etcd.service with the drop-in is exposed $hardened, the broker $broker"
  for setting in Restart=on-failure NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes \
    PrivateTmp=yes UMask=0077 CapabilityBoundingSet= StateDirectory=etcd; do
    grep -q "^${setting}" "$dropin" || fail "etcd drop-in lacks ${setting}"
  done
  if grep -q '^ReadWritePaths=' "$dropin"; then fail "etcd drop-in opens extra writable paths"; fi
  # The member's settings: TLS for clients and peers, with client certificates required.
  defaults="$units_dir/etcd.default"
  for key in ETCD_NAME ETCD_DATA_DIR ETCD_LISTEN_CLIENT_URLS ETCD_ADVERTISE_CLIENT_URLS \
    ETCD_LISTEN_PEER_URLS ETCD_INITIAL_ADVERTISE_PEER_URLS ETCD_INITIAL_CLUSTER \
    ETCD_INITIAL_CLUSTER_TOKEN ETCD_CERT_FILE ETCD_KEY_FILE ETCD_PEER_CERT_FILE ETCD_PEER_KEY_FILE; do
    grep -q "^$key=\"" "$defaults" || fail "etcd.default lacks $key"
  done
  for key in ETCD_CLIENT_CERT_AUTH ETCD_PEER_CLIENT_CERT_AUTH; do
    grep -qx "$key=\"true\"" "$defaults" || fail "etcd.default: $key must be \"true\""
  done
  if grep -E '^ETCD_[A-Z_]*URLS?=.*http://' "$defaults"; then fail "etcd.default: plain http"; fi
  members="$(sed -n 's/^ETCD_INITIAL_CLUSTER="\(.*\)"/\1/p' "$defaults" | tr ',' '\n' | grep -c '=https://')"
  [[ "$members" == 3 ]] || fail "etcd.default: ETCD_INITIAL_CLUSTER names $members members, not 3"
  echo "checked etcd.service with mailroom's drop-in and etcd.default"
fi

# The layout guide: every private key is installed owned by its role's user, mode 0600, and
# nothing installs a key for group or others to read.
guide="$units_dir/README.md"
keys=0
while IFS= read -r line; do
  keys=$((keys + 1))
  [[ "$line" =~ -m\ 0600 ]] || fail "layout guide installs a key without mode 0600: $line"
  for key in $(grep -o '[a-z0-9-]*\.key' <<<"$line"); do
    case "$key" in
      broker.key | broker2.key | broker-etcd.key | broker2-etcd.key) want=mailroom-broker ;;
      etcd-*.key) want=etcd ;;
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
