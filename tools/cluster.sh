#!/usr/bin/env bash
# Installs what is missing, builds mailroom and runs the local cluster on loopback until
# Ctrl-C. State, configs and logs go to run/local/.
#
#   tools/cluster.sh               the cluster plus a local Exchange-like testbed (an OAuth
#                                  server, Postfix and Dovecot on loopback), already configured
#   tools/cluster.sh --no-testbed  the cluster alone, to point at a real tenant (see README)
#   tools/cluster.sh --ha          two brokers elected through three etcd members (issue 12)
#   --binaries DIR                 binaries already built (DIR laid out as bazel-bin): no setup,
#                                  no build (the tests use it)
#   --state DIR                    state, configs and logs in DIR instead of run/local
#
# Ports: broker 7100, PAN 7101, PSN 7102 and 7103, MnT 7104; metrics on 9100-9104. With --ha
# also the second broker on 7110 (metrics 9110) and etcd members on 12379, 22379 and 32379
# (peers one port up); the role nodes and mailroomctl name both brokers (broker_targets).
# Each process's pid is in STATE/pids/NAME.pid.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
root="$PWD"

with_testbed=1
ha=0
bin=""
state="$root/run/local"
while (($#)); do
  case "$1" in
    --no-testbed) with_testbed=0 ;;
    --ha) ha=1 ;;
    --binaries) bin="$(readlink -f "${2:?--binaries needs a directory}")"; shift ;;
    --state) state="$(readlink -m "${2:?--state needs a directory}")"; shift ;;
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "cluster: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

if [[ -z "$bin" ]]; then
  bash tools/setup.sh
  bazel build //pan/broker:mailroom-broker //pan:mailroom-pan //psn:mailroom-psn \
    //mnt:mailroom-mnt //cli:mailroomctl
  bin="$(bazel info bazel-bin)"
fi

config="$state/config"
mkdir -p "$config" "$state/broker" "$state/pan1" "$state/psn1" "$state/psn2" "$state/mnt1" \
  "$state/logs" "$state/pids"
[[ -f "$state/certs/ca.pem" ]] || bash deploy/gen-certs.sh "$state/certs"
broker_targets='broker_target: "localhost:7100"'
mailbox="noreply@example.test"  # the testbed's; replaced by your mailbox for a real tenant

declare -A pid_of # process name -> pid
testbed_dir=""
stop_all() {
  trap - EXIT INT TERM
  echo
  echo "cluster: stopping"
  for pid in "${pid_of[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pid_of[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ -n "$testbed_dir" ]]; then
    bash tests/e2e/testbed/testbed.sh stop "$testbed_dir" >/dev/null 2>&1 || true
  fi
}
trap stop_all EXIT INT TERM

authority="https://login.microsoftonline.com"
if ((with_testbed)); then
  testbed_dir="$(mktemp -d /tmp/mr.XXXXXX)"
  chmod 755 "$testbed_dir"
  bash tests/e2e/testbed/testbed.sh start "$testbed_dir"
  # shellcheck disable=SC1091
  source "$testbed_dir/testbed.env"
  authority="$TOKEN_URL_BASE"
  mailbox="$MAILBOX"
fi

# start NAME COMMAND...: runs a process of the cluster, its stderr to its log.
start() {
  local name="$1"
  shift
  "$@" 2>>"$state/logs/$name.log" &
  pid_of[$name]=$!
  echo "$!" >"$state/pids/$name.pid"
}

# broker_config NAME PORT METRICS_PORT HA_SECTION: a broker's config.
broker_config() {
  local name="$1" port="$2" metrics="$3" ha_section="$4"
  cat >"$config/$name.textproto" <<CONF
# A token broker (the primary PAN node's; with --ha, broker2 is the secondary's): the only
# holder of the OAuth credential.
node_name: "$name"
role: ROLE_BROKER
listen_address: "127.0.0.1:$port"
tls { ca_file: "../certs/ca.pem" cert_file: "../certs/$name.pem" key_file: "../certs/$name.key" }
data_dir: "../$name"
logging { default_level: LOG_LEVEL_INFO file: "../logs/$name.log" }
metrics_listen_address: "127.0.0.1:$metrics"
broker { default_authority_host: "$authority" $ha_section }
mnt_target: "localhost:7104"
CONF
}

etcd_endpoints=""
if ((ha)); then
  # Three etcd members on loopback, as issue 12 asks (one member down keeps the quorum).
  command -v etcd >/dev/null || { echo "cluster: no etcd (Debian's etcd-server; tools/setup.sh installs it)" >&2; exit 1; }
  initial_cluster=""
  for n in 1 2 3; do
    initial_cluster+="${initial_cluster:+,}etcd$n=http://127.0.0.1:${n}2380"
    etcd_endpoints+="${etcd_endpoints:+, }\"http://127.0.0.1:${n}2379\""
  done
  for n in 1 2 3; do
    mkdir -p "$state/etcd"
    start "etcd$n" etcd --name "etcd$n" --data-dir "$state/etcd/etcd$n" \
      --listen-client-urls "http://127.0.0.1:${n}2379" \
      --advertise-client-urls "http://127.0.0.1:${n}2379" \
      --listen-peer-urls "http://127.0.0.1:${n}2380" \
      --initial-advertise-peer-urls "http://127.0.0.1:${n}2380" \
      --initial-cluster "$initial_cluster" --initial-cluster-token mailroom-local \
      --initial-cluster-state new --log-level warn
  done
  # /health is true once the members have elected a leader.
  etcd_up() { curl -fsS http://127.0.0.1:12379/health 2>/dev/null | grep -q '"health":"true"'; }
  for _ in $(seq 150); do etcd_up && break; sleep 0.2; done
  etcd_up || { echo "cluster: etcd did not start; see $state/logs/etcd*.log" >&2; exit 1; }
  echo "cluster: etcd members on 12379, 22379, 32379"

  # Both brokers hold the same broker.key, provisioned by the admin on each broker node: the
  # settings record the leader seals into etcd is then readable by whichever leads (the
  # standby takes it up every lease TTL); made here once.
  mkdir -p "$state/broker2"
  [[ -f "$state/certs/broker2.pem" ]] || bash deploy/gen-certs.sh "$state/certs" broker2:broker
  if [[ ! -f "$state/broker/broker.key" ]]; then
    (umask 077 && head -c 32 /dev/urandom >"$state/broker/broker.key")
  fi
  cmp -s "$state/broker/broker.key" "$state/broker2/broker.key" 2>/dev/null ||
    cp -p "$state/broker/broker.key" "$state/broker2/broker.key"
  for name in broker broker2; do
    port=7100 metrics=9100
    [[ "$name" == broker2 ]] && port=7110 metrics=9110
    broker_config "$name" "$port" "$metrics" \
      "ha { etcd_endpoints: [$etcd_endpoints] advertised_address: \"localhost:$port\" }"
  done
  broker_targets='broker_targets: ["localhost:7100", "localhost:7110"]'
else
  broker_config broker 7100 9100 ""
fi
# role_config NODE ROLE PORT METRICS_PORT SECTION: a role node's config.
role_config() {
  local node="$1" role="$2" port="$3" metrics="$4" section="$5"
  local mnt_line='mnt_target: "localhost:7104"'
  [[ "$role" == ROLE_MNT ]] && mnt_line=""
  cat >"$config/$node.textproto" <<CONF
node_name: "$node"
role: $role
listen_address: "127.0.0.1:$port"
tls { ca_file: "../certs/ca.pem" cert_file: "../certs/$node.pem" key_file: "../certs/$node.key" }
$broker_targets
$mnt_line
data_dir: "../$node"
logging { default_level: LOG_LEVEL_INFO file: "../logs/$node.log" }
metrics_listen_address: "127.0.0.1:$metrics"
delivery { backoff_initial { seconds: 5 } }
$section
CONF
}
role_config pan1 ROLE_PAN 7101 9101 "pan { scan_interval { seconds: 10 } reminder_settings { from { address: \"$mailbox\" } } }"
for n in 1 2; do
  role_config "psn$n" ROLE_PSN "710$((n + 1))" "910$((n + 1))" \
    "psn { guest_email_settings { notifications_enabled: true default_from { address: \"$mailbox\" display_name: \"Guest Access\" } } }"
done
role_config mnt1 ROLE_MNT 7104 9104 "mnt { alarm_settings { include_system_alarms_in_emails: true sender { address: \"$mailbox\" } admin_recipients { address: \"admin@example.test\" } suppression_window { seconds: 300 } } }"

cat >"$config/admin.textproto" <<CONF
# mailroomctl's identity and the cluster's addresses.
tls { ca_file: "../certs/ca.pem" cert_file: "../certs/admin.pem" key_file: "../certs/admin.key" }
$broker_targets
pan_target: "localhost:7101"
psn_targets: "localhost:7102"
psn_targets: "localhost:7103"
mnt_target: "localhost:7104"
CONF

brokers=(broker)
((ha)) && brokers+=(broker2)
for name in "${brokers[@]}"; do
  start "$name" "$bin/pan/broker/mailroom-broker" --config="$config/$name.textproto"
done
start mnt1 "$bin/mnt/mailroom-mnt" --config="$config/mnt1.textproto"
start pan1 "$bin/pan/mailroom-pan" --config="$config/pan1.textproto"
for n in 1 2; do
  start "psn$n" "$bin/psn/mailroom-psn" --config="$config/psn$n.textproto"
done
ctl=("$bin/cli/mailroomctl" --config="$config/admin.textproto")
for _ in $(seq 100); do "${ctl[@]}" health >/dev/null 2>&1 && break; sleep 0.2; done
"${ctl[@]}" health

if ((with_testbed)); then
  cat >"$config/smtp-testbed.textproto" <<CONF
# SMTP / OAuth settings for the local testbed (a stand-in for Exchange Online and Entra ID).
smtp_host: "localhost"
port: $SMTP_PORT
username: "$MAILBOX"
tenant_id: "$TENANT"
client_id: "$CLIENT_ID"
authority_host: "$TOKEN_URL_BASE"
smtp_trust_store { ca_file: "$CA_FILE" }
CONF
  umask 077
  printf '%s' "$CLIENT_SECRET" >"$state/testbed-client-secret"
  umask 022
  echo
  echo "cluster: configuring the broker against the local testbed (Test Connection, then save)"
  "${ctl[@]}" settings set --file="$config/smtp-testbed.textproto" \
    --client_secret_file="$state/testbed-client-secret" \
    --secret_expiry="$(date -u -d '+180 days' +%Y-%m-%d)" --to=admin@example.test
  echo "cluster: the testbed delivers mail for example.test into $MAILDIR"
fi

cat <<MSG

mailroom local cluster is running (logs in $state/logs). In another terminal try:
  tools/mailroomctl status
  tools/mailroomctl settings show
  tools/mailroomctl settings test --to=someone@example.test
  tools/mailroomctl secret status
  tools/mailroomctl quota
  tools/mailroomctl outbox list psn1
  tools/mailroomctl metrics --url=http://127.0.0.1:9102/metrics
Running: broker :7100, PAN :7101, PSNs :7102 and :7103, MnT :7104 (metrics on 9100-9104).
MSG
if ((ha)); then
  cat <<MSG
HA: brokers on :7100 and :7110 (metrics 9110), elected through etcd on :12379, :22379 and
:32379; \`tools/mailroomctl status\` shows which leads. To watch a failover:
  kill -9 \$(cat $state/pids/broker.pid)   # (or broker2.pid, whichever leads)
MSG
fi
echo "Press Ctrl-C to stop."
# A broker or etcd member may be killed to watch a failover (--ha); the role nodes may not.
watched=("${pid_of[@]}")
((ha)) && watched=("${pid_of[pan1]}" "${pid_of[psn1]}" "${pid_of[psn2]}" "${pid_of[mnt1]}")
wait -n "${watched[@]}"
echo "cluster: a service stopped; see $state/logs"
