# shellcheck shell=bash
# The sourcing script sets $work and $bin and reads broker_pid and port:
# shellcheck disable=SC2154,SC2034
# Sourced by the benchmarks beside it: the steps they share to run the real mailroom-broker on
# the testbed, configured the way an admin does, so that every benchmark measures the same
# broker setup. Expects $work (the run's directory), $bin (bazel-bin of the -c opt build, with
# //pan/broker:mailroom-broker and //cli:mailroomctl) and the testbed's variables
# (source "$work/testbed.env").

# launch_broker NAME [BROKER_EXTRA]: makes the certificates (broker, psn1, admin) if missing,
# writes broker NAME's config in $work/NAME.textproto (BROKER_EXTRA goes inside its broker { }
# section; "$PORT" in it stands for the port the broker listens on), starts it with its data in
# $work/NAME (sets broker_pid and port). Exits the script, printing the log, if it fails.
launch_broker() {
  local name="$1" broker_extra="${2:-}"
  [[ -f "$work/certs/ca.pem" ]] ||
    bash deploy/gen-certs.sh "$work/certs" broker:broker psn1:psn admin:admin >/dev/null 2>&1
  mkdir -p "$work/$name"
  rm -f "$work/$name.port"
  cat >"$work/$name.textproto" <<CONF
node_name: "broker"
role: ROLE_BROKER
listen_address: "127.0.0.1:${BROKER_PORT:-0}"
tls { ca_file: "$work/certs/ca.pem" cert_file: "$work/certs/broker.pem" key_file: "$work/certs/broker.key" }
data_dir: "$work/$name"
logging { default_level: LOG_LEVEL_WARN }
broker {
  default_authority_host: "$TOKEN_URL_BASE"
  $broker_extra
}
CONF
  "$bin/pan/broker/mailroom-broker" --config="$work/$name.textproto" --port_file="$work/$name.port" \
    >>"$work/$name.log" 2>&1 &
  broker_pid=$!
  for _ in $(seq 100); do [[ -s "$work/$name.port" ]] && break; sleep 0.1; done
  if [[ ! -s "$work/$name.port" ]]; then
    echo "broker $name did not start" >&2
    cat "$work/$name.log" >&2
    exit 1
  fi
  port="$(cat "$work/$name.port")"
}

# configure_broker PORT SMTP_HOST: saves the SMTP settings for SMTP_HOST with the testbed's
# client secret through mailroomctl, as an admin does (Test Connection, then save), on the
# broker at PORT. Fails (status 1, mailroomctl's output in $work/settings.log) if it could not.
configure_broker() {
  local target_port="$1" smtp_host="$2"
  cat >"$work/smtp.textproto" <<CONF
smtp_host: "$smtp_host" port: $SMTP_PORT username: "$MAILBOX" tenant_id: "$TENANT"
client_id: "$CLIENT_ID" authority_host: "$TOKEN_URL_BASE" smtp_trust_store { ca_file: "$CA_FILE" }
CONF
  (umask 077 && printf '%s' "$CLIENT_SECRET" >"$work/secret")
  cat >"$work/admin.textproto" <<CONF
tls { ca_file: "$work/certs/ca.pem" cert_file: "$work/certs/admin.pem" key_file: "$work/certs/admin.key" }
broker_target: "localhost:$target_port"
CONF
  "$bin/cli/mailroomctl" --config="$work/admin.textproto" settings set --file="$work/smtp.textproto" \
    --client_secret_file="$work/secret" --secret_expiry=2099-01-01 >"$work/settings.log" 2>&1
}

# start_broker SMTP_HOST [BROKER_EXTRA]: one broker ("broker"), launched and configured.
start_broker() {
  launch_broker broker "${2:-}"
  configure_broker "$port" "$1" || { cat "$work/settings.log" >&2; exit 1; }
}
