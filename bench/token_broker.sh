#!/usr/bin/env bash
# Benchmark of the token broker: how many requests reach the token endpoint while the broker
# serves N GetAccessToken calls from M concurrent mutual-TLS clients, and the broker's calls/s
# and p50/p99 latency. Everything runs on this machine: the testbed (oidc-provider, Postfix,
# Dovecot) and the real mailroom-broker.
#
#   bench/token_broker.sh            (as root, after tools/setup.sh)
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

bazel build -c opt //pan/broker:mailroom-broker //cli:mailroomctl //bench:token_broker_load >/dev/null
bin="$(bazel info -c opt bazel-bin 2>/dev/null)"
work="$(mktemp -d /tmp/mr.XXXXXX)"
chmod 755 "$work"
cleanup() {
  [[ -n "${broker_pid:-}" ]] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
  bash tests/e2e/testbed/testbed.sh stop "$work" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

bash tests/e2e/testbed/testbed.sh start "$work" >/dev/null
# shellcheck disable=SC1091
source "$work/testbed.env"
bash deploy/gen-certs.sh "$work/certs" broker:broker psn1:psn admin:admin >/dev/null
mkdir -p "$work/broker"
cat >"$work/broker.textproto" <<CONF
node_name: "broker"
role: ROLE_BROKER
listen_address: "127.0.0.1:0"
tls { ca_file: "$work/certs/ca.pem" cert_file: "$work/certs/broker.pem" key_file: "$work/certs/broker.key" }
data_dir: "$work/broker"
logging { default_level: LOG_LEVEL_WARN }
broker { default_authority_host: "$TOKEN_URL_BASE" }
CONF
cat >"$work/smtp.textproto" <<CONF
smtp_host: "localhost" port: $SMTP_PORT username: "$MAILBOX" tenant_id: "$TENANT"
client_id: "$CLIENT_ID" authority_host: "$TOKEN_URL_BASE" smtp_trust_store { ca_file: "$CA_FILE" }
CONF
printf '%s' "$CLIENT_SECRET" >"$work/secret"
"$bin/pan/broker/mailroom-broker" --config="$work/broker.textproto" --port_file="$work/port" \
  >"$work/broker.log" 2>&1 &
broker_pid=$!
for _ in $(seq 100); do [[ -s "$work/port" ]] && break; sleep 0.1; done
port=$(cat "$work/port")
cat >"$work/admin.textproto" <<CONF
tls { ca_file: "$work/certs/ca.pem" cert_file: "$work/certs/admin.pem" key_file: "$work/certs/admin.key" }
broker_target: "localhost:$port"
CONF
"$bin/cli/mailroomctl" --config="$work/admin.textproto" settings set --file="$work/smtp.textproto" \
  --client_secret_file="$work/secret" --secret_expiry=2099-01-01 >/dev/null

token_requests() { grep -c ' token ' "$OIDC_LOG" || true; }
echo "token broker benchmark ($(nproc) cores; broker, clients and testbed on one machine; token lifetime ${TOKEN_TTL:-3600} s)"
printf '%-8s %-8s %-16s %-10s %-10s %-10s\n' clients calls token_requests calls/s p50_ms p99_ms
for clients in 1 8 32; do
  for calls in 1000 10000 50000; do
    before=$(token_requests)
    out=$("$bin/bench/token_broker_load" --target="localhost:$port" --certs="$work/certs" \
      --node=psn1 --clients="$clients" --calls="$calls")
    after=$(token_requests)
    get() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$out"; }
    printf '%-8s %-8s %-16s %-10s %-10s %-10s\n' "$clients" "$calls" "$((after - before))" \
      "$(get calls_per_s)" "$(get p50_ms)" "$(get p99_ms)"
  done
done
echo "token endpoint requests in total since the broker started (Test Connection + cache): $(token_requests)"
