#!/usr/bin/env bash
# Issue 12's partition of the leading broker from etcd, with real network partitions: Linux
# network namespaces joined by veth pairs through a bridge in a 'switch' namespace, as
# tests/e2e/multihost does, on one machine (10.78.0.0/24, namespaces mrha-*):
#
#   mrha-sw     the switch: bridge br0, one veth end per host
#   mrha-peers  10.78.0.1 "peers":    the test itself (broker_partition_e2e_bin, run here through
#               `ip netns exec`), the testbed (TESTBED_LISTEN_ADDRESS: its token endpoint and
#               submission listeners also on 10.78.0.1, named "peers"), the MtaMeter and the two
#               real mailroom-psn processes
#   mrha-a      10.78.0.2 "broker-a": mailroom-broker a
#   mrha-b      10.78.0.3 "broker-b": mailroom-broker b
#   mrha-etcd   10.78.0.4 "etcd":     the three etcd members
#
# The binary cuts the leader's host off from etcd's (blackhole routes on both sides: packets are
# silently dropped) and checks what the MTA and the brokers' gauges saw (see its header). Host
# names come from /etc/netns/<ns>/hosts. Leftovers of an aborted run are removed at start, and
# everything made here on exit. Needs root and iproute2.
set -Eeuo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

if [[ -n "${TEST_SRCDIR:-}" ]]; then
  BIN="$TEST_SRCDIR/${TEST_WORKSPACE:-mailroom}/tests/e2e/broker_partition_e2e_bin"
else
  BIN="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)/bazel-bin/tests/e2e/broker_partition_e2e_bin"
fi
PREFIX=mrha-
HOSTS=(peers:10.78.0.1 a:10.78.0.2 b:10.78.0.3 etcd:10.78.0.4)
LOCK=/run/lock/mrha-partition.lock

cleanup() {
  local ns pid
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^${PREFIX}" || true); do
    for pid in $(ip netns pids "$ns" 2>/dev/null || true); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns delete "$ns" 2>/dev/null || true
    rm -rf "/etc/netns/$ns"
  done
}

[[ "$(id -u)" == 0 ]] || { echo "needs root (network namespaces)" >&2; exit 1; }
exec 9>"$LOCK"
flock 9
cleanup
trap cleanup EXIT

ip netns add "${PREFIX}sw"
ip -n "${PREFIX}sw" link add br0 type bridge
ip -n "${PREFIX}sw" link set br0 up
ip -n "${PREFIX}sw" link set lo up
hosts_file="127.0.0.1 localhost
10.78.0.1 peers
10.78.0.2 broker-a
10.78.0.3 broker-b
10.78.0.4 etcd"
for entry in "${HOSTS[@]}"; do
  name="${entry%%:*}"
  ip_address="${entry#*:}"
  ns="${PREFIX}${name}"
  ip netns add "$ns"
  # Both ends made where they live: one in the switch, the other in the host's namespace.
  ip -n "${PREFIX}sw" link add "v-$name" type veth peer name eth0 netns "$ns"
  ip -n "${PREFIX}sw" link set "v-$name" master br0
  ip -n "${PREFIX}sw" link set "v-$name" up
  ip -n "$ns" addr add "$ip_address/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  mkdir -p "/etc/netns/$ns"
  printf '%s\n' "$hosts_file" >"/etc/netns/$ns/hosts"
done

# The testbed listens on the peers' address too, named "peers" in its certificates.
TESTBED_LISTEN_ADDRESS=10.78.0.1 TESTBED_LISTEN_NAME=peers TESTBED_LISTEN_NETWORK=10.78.0.0/24 \
  MRHA_PREFIX="$PREFIX" ip netns exec "${PREFIX}peers" "$BIN" "$@"
