#!/usr/bin/env bash
# Installs what is missing, builds mailroom and runs the local cluster on loopback until
# Ctrl-C. State, configs and logs go to run/local/.
#
#   tools/cluster.sh               the cluster plus a local Exchange-like testbed (an OAuth
#                                  server, Postfix and Dovecot on loopback), already configured
#   tools/cluster.sh --no-testbed  the cluster alone, to point at a real tenant (see README)
#
# Ports: broker 7100, PAN 7101, PSN 7102 and 7103, MnT 7104; metrics on 9100-9104.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
root="$PWD"

with_testbed=1
for arg in "$@"; do
  case "$arg" in
    --no-testbed) with_testbed=0 ;;
    -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "cluster: unknown argument $arg" >&2; exit 2 ;;
  esac
done

bash tools/setup.sh
bazel build //pan/broker:mailroom-broker //pan:mailroom-pan //psn:mailroom-psn \
  //mnt:mailroom-mnt //cli:mailroomctl
bin="$(bazel info bazel-bin)"

state="$root/run/local"
config="$state/config"
mkdir -p "$config" "$state/broker" "$state/pan1" "$state/psn1" "$state/psn2" "$state/mnt1" \
  "$state/logs"
[[ -f "$state/certs/ca.pem" ]] || bash deploy/gen-certs.sh "$state/certs"
broker_port=7100
mailbox="noreply@example.test"  # the testbed's; replaced by your mailbox for a real tenant

pids=()
testbed_dir=""
stop_all() {
  trap - EXIT INT TERM
  echo
  echo "cluster: stopping"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
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

cat >"$config/broker.textproto" <<CONF
# The token broker (primary PAN node): the only holder of the OAuth credential.
node_name: "broker"
role: ROLE_BROKER
listen_address: "127.0.0.1:$broker_port"
tls { ca_file: "../certs/ca.pem" cert_file: "../certs/broker.pem" key_file: "../certs/broker.key" }
data_dir: "../broker"
logging { default_level: LOG_LEVEL_INFO file: "../logs/broker.log" }
metrics_listen_address: "127.0.0.1:9100"
broker { default_authority_host: "$authority" }
mnt_target: "localhost:7104"
CONF
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
broker_target: "localhost:$broker_port"
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
broker_target: "localhost:$broker_port"
pan_target: "localhost:7101"
psn_targets: "localhost:7102"
psn_targets: "localhost:7103"
mnt_target: "localhost:7104"
CONF

"$bin/pan/broker/mailroom-broker" --config="$config/broker.textproto" 2>>"$state/logs/broker.log" &
pids+=($!)
"$bin/mnt/mailroom-mnt" --config="$config/mnt1.textproto" 2>>"$state/logs/mnt1.log" &
pids+=($!)
"$bin/pan/mailroom-pan" --config="$config/pan1.textproto" 2>>"$state/logs/pan1.log" &
pids+=($!)
for n in 1 2; do
  "$bin/psn/mailroom-psn" --config="$config/psn$n.textproto" 2>>"$state/logs/psn$n.log" &
  pids+=($!)
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
Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}"
echo "cluster: a service stopped; see $state/logs"
