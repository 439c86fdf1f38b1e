#!/usr/bin/env bash
# Benchmark of the token broker: how many requests reach the token endpoint while the broker
# serves N GetAccessToken calls from M concurrent mutual-TLS clients, and the broker's calls/s
# and p50/p99 latency. Everything runs on this machine: the testbed (oidc-provider, Postfix,
# Dovecot) and the real mailroom-broker.
#
#   bench/token_broker.sh            (as root, after tools/setup.sh)
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

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
start_broker localhost

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
