# shellcheck shell=bash
# The sourcing script sets $work and $bin and reads broker_pid and port:
# shellcheck disable=SC2154,SC2034
# Sourced by the benchmarks beside it: the steps they share to run the real mailroom-broker on
# the testbed, configured the way an admin does, so that every benchmark measures the same
# broker setup. Expects $work (the run's directory), $bin (bazel-bin of the -c opt build, with
# //pan/broker:mailroom-broker and //cli:mailroomctl) and the testbed's variables
# (source "$work/testbed.env").

# start_broker SMTP_HOST [BROKER_EXTRA]: makes the certificates (broker, psn1, admin), writes
# the broker's config (BROKER_EXTRA goes inside its broker { } section), starts the broker
# (sets broker_pid and port), and saves the SMTP settings for SMTP_HOST with the testbed's
# client secret through mailroomctl. Exits the script, printing the log, if a step fails.
start_broker() {
  local smtp_host="$1" broker_extra="${2:-}"
  bash deploy/gen-certs.sh "$work/certs" broker:broker psn1:psn admin:admin >/dev/null 2>&1
  mkdir -p "$work/broker"
  cat >"$work/broker.textproto" <<CONF
node_name: "broker"
role: ROLE_BROKER
listen_address: "127.0.0.1:0"
tls { ca_file: "$work/certs/ca.pem" cert_file: "$work/certs/broker.pem" key_file: "$work/certs/broker.key" }
data_dir: "$work/broker"
logging { default_level: LOG_LEVEL_WARN }
broker {
  default_authority_host: "$TOKEN_URL_BASE"
  $broker_extra
}
CONF
  cat >"$work/smtp.textproto" <<CONF
smtp_host: "$smtp_host" port: $SMTP_PORT username: "$MAILBOX" tenant_id: "$TENANT"
client_id: "$CLIENT_ID" authority_host: "$TOKEN_URL_BASE" smtp_trust_store { ca_file: "$CA_FILE" }
CONF
  (umask 077 && printf '%s' "$CLIENT_SECRET" >"$work/secret")
  "$bin/pan/broker/mailroom-broker" --config="$work/broker.textproto" --port_file="$work/port" \
    >"$work/broker.log" 2>&1 &
  broker_pid=$!
  for _ in $(seq 100); do [[ -s "$work/port" ]] && break; sleep 0.1; done
  if [[ ! -s "$work/port" ]]; then
    echo "the broker did not start" >&2
    cat "$work/broker.log" >&2
    exit 1
  fi
  port="$(cat "$work/port")"
  cat >"$work/admin.textproto" <<CONF
tls { ca_file: "$work/certs/ca.pem" cert_file: "$work/certs/admin.pem" key_file: "$work/certs/admin.key" }
broker_target: "localhost:$port"
CONF
  "$bin/cli/mailroomctl" --config="$work/admin.textproto" settings set --file="$work/smtp.textproto" \
    --client_secret_file="$work/secret" --secret_expiry=2099-01-01 >"$work/settings.log" 2>&1 ||
    { cat "$work/settings.log" >&2; exit 1; }
}
