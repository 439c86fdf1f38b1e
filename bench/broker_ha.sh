#!/usr/bin/env bash
# Benchmark of the broker with etcd in the path (issue 12), from one run, side by side on this
# machine (the testbed's oidc-provider as Entra ID, a three-member etcd on loopback, the real
# mailroom-broker):
#   (a) send-permit throughput and latency (AcquireSendPermit + ReleaseSendPermit, timed as one
#       call; every grant of an elected leader is written to etcd before it is answered) for a
#       single broker without etcd and for the leader of two brokers elected through etcd, in
#       BENCH_ROUNDS interleaved rounds, with the ratio HA / single;
#   (b) failovers: the leader is killed with SIGKILL BENCH_KILLS times; for each, how long until
#       the other broker issues a token and a permit, and how many token requests reached the
#       token endpoint (its log) from the kill until 10 s after the takeover.
#
#   bash bench/broker_ha.sh          (as root, after tools/setup.sh)
#
# Knobs (environment): BENCH_CALLS (permit calls per run, default 3000), BENCH_ROUNDS (default
# 3), BENCH_KILLS (default 5), BENCH_TTL (the brokers' lease_ttl in seconds, default 3, the
# broker's default: after a SIGKILL the lease must expire before another broker can lead).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

CALLS="${BENCH_CALLS:-3000}"
ROUNDS="${BENCH_ROUNDS:-3}"
KILLS="${BENCH_KILLS:-5}"
TTL="${BENCH_TTL:-3}"
LIMITS="send_limits { messages_per_minute: 1000000 recipients_per_day: 1000000 max_connections: 64 }"

[[ "$(id -u)" == 0 ]] || { echo "broker_ha bench: must run as root (the testbed runs Postfix)" >&2; exit 1; }
command -v etcd >/dev/null || { echo "broker_ha bench: etcd is not installed (run tools/setup.sh)" >&2; exit 1; }

bazel build -c opt //pan/broker:mailroom-broker //cli:mailroomctl //bench:token_broker_load >/dev/null 2>&1
bin="$(bazel info -c opt bazel-bin 2>/dev/null)"
work="$(mktemp -d /tmp/mr.XXXXXX)"
chmod 755 "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  bash tests/e2e/testbed/testbed.sh stop "$work" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

bash tests/e2e/testbed/testbed.sh start "$work" >/dev/null
# shellcheck disable=SC1091
source "$work/testbed.env"

# Three etcd members on free loopback ports.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cluster="" endpoints=""
declare -a client_urls peer_urls
for i in 0 1 2; do
  client_urls[i]="http://127.0.0.1:$(free_port)"
  peer_urls[i]="http://127.0.0.1:$(free_port)"
  cluster+="${cluster:+,}m$i=${peer_urls[i]}"
  endpoints+="${endpoints:+, }\"${client_urls[i]}\""
done
for i in 0 1 2; do
  etcd --name "m$i" --data-dir "$work/etcd-m$i" --listen-client-urls "${client_urls[i]}" \
    --advertise-client-urls "${client_urls[i]}" --listen-peer-urls "${peer_urls[i]}" \
    --initial-advertise-peer-urls "${peer_urls[i]}" --initial-cluster "$cluster" \
    --initial-cluster-state new --initial-cluster-token mailroom-bench \
    --heartbeat-interval 100 --election-timeout 1000 --log-level warn >"$work/etcd-m$i.log" 2>&1 &
  pids+=($!)
done
for _ in $(seq 100); do
  ETCDCTL_API=3 etcdctl --endpoints="${client_urls[0]}" endpoint health >/dev/null 2>&1 && break
  sleep 0.2
done

load() { # PORT RPC CLIENTS CALLS -> key=value line
  "$bin/bench/token_broker_load" --target="localhost:$1" --certs="$work/certs" --node=psn1 \
    --rpc="$2" --clients="$3" --calls="$4"
}
get() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$2"; }

# The single broker, without etcd.
launch_broker single "$LIMITS"
single_port=$port
pids+=("$broker_pid")
configure_broker "$single_port" localhost || { cat "$work/settings.log" >&2; exit 1; }

# Two brokers elected through etcd: the same key, settings saved on the leader (a).
ha() { echo "$LIMITS ha { etcd_endpoints: [$endpoints] lease_ttl { seconds: $TTL } advertised_address: \"localhost:$1\" }"; }
port_a=$(free_port) port_b=$(free_port)
BROKER_PORT=$port_a launch_broker a "$(ha "$port_a")"
pid_a=$broker_pid
pids+=("$pid_a")
configured=""
for _ in $(seq 50); do # until a has won the election
  configure_broker "$port_a" localhost && { configured=1; break; }
  sleep 0.2
done
[[ -n "$configured" ]] || { cat "$work/settings.log" >&2; exit 1; }
mkdir -p "$work/b"
cp "$work/a/broker.key" "$work/b/"
BROKER_PORT=$port_b launch_broker b "$(ha "$port_b")"
pid_b=$broker_pid
pids+=("$pid_b")

echo "broker HA benchmark ($(nproc) cores; brokers, etcd (3 members), clients and testbed on one machine; lease_ttl ${TTL} s)"
echo "(a) send permits (Acquire + Release), $CALLS calls a run, $ROUNDS interleaved rounds; median round [range]"
printf '%-8s %-8s %-24s %-22s %-22s\n' mode clients calls/s p50_ms p99_ms
declare -A results
for clients in 1 8; do
  for round in $(seq "$ROUNDS"); do
    for mode in single ha; do
      target=$single_port
      [[ $mode == ha ]] && target=$port_a
      out=$(load "$target" permit "$clients" "$CALLS") || { echo "load failed: $out" >&2; exit 1; }
      results[$mode,$clients,rate]+="$(get calls_per_s "$out") "
      results[$mode,$clients,p50]+="$(get p50_ms "$out") "
      results[$mode,$clients,p99]+="$(get p99_ms "$out") "
    done
  done
  for mode in single ha; do
    row=()
    for what in rate p50 p99; do
      row+=("$(tr ' ' '\n' <<<"${results[$mode,$clients,$what]}" | sed '/^$/d' | sort -g |
        awk '{v[NR]=$1} END {printf "%s [%s..%s]", v[int((NR+1)/2)], v[1], v[NR]}')")
    done
    printf '%-8s %-8s %-24s %-22s %-22s\n' "$mode" "$clients" "${row[0]}" "${row[1]}" "${row[2]}"
  done
  median() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
  awk -v h="$(median "${results[ha,$clients,rate]}")" -v s="$(median "${results[single,$clients,rate]}")" \
    -v hp="$(median "${results[ha,$clients,p99]}")" -v sp="$(median "${results[single,$clients,p99]}")" \
    -v c="$clients" 'BEGIN {printf "ratio ha/single, %d clients: throughput %.2f, p99 %.2f\n", c, h/s, hp/sp}'
done

echo "(b) failovers: SIGKILL of the leader, $KILLS times"
printf '%-6s %-12s %-16s %-16s\n' kill killed led_after_s token_requests
token_requests() { grep -c ' token ' "$OIDC_LOG" || true; }
leader=a
for k in $(seq "$KILLS"); do
  if [[ $leader == a ]]; then victim_pid=$pid_a standby_port=$port_b; else victim_pid=$pid_b standby_port=$port_a; fi
  before=$(token_requests)
  t0=$(date +%s.%N)
  kill -9 "$victim_pid"
  led=""
  for _ in $(seq 600); do
    if load "$standby_port" permit 1 1 >/dev/null 2>&1 && load "$standby_port" token 1 1 >/dev/null 2>&1; then
      led=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b-a}')
      break
    fi
    sleep 0.05
  done
  sleep 10
  printf '%-6s %-12s %-16s %-16s\n' "$k" "$leader" "${led:-never}" "$(( $(token_requests) - before ))"
  [[ -n "$led" ]] || exit 1
  # The killed broker comes back as the standby, on its port and data.
  if [[ $leader == a ]]; then
    BROKER_PORT=$port_a launch_broker a "$(ha "$port_a")"; pid_a=$broker_pid; pids+=("$pid_a"); leader=b
  else
    BROKER_PORT=$port_b launch_broker b "$(ha "$port_b")"; pid_b=$broker_pid; pids+=("$pid_b"); leader=a
  fi
  sleep $((TTL + 1)) # a follow round (one TTL) so the standby holds the settings and its token
done
echo "token endpoint requests in total: $(token_requests)"
