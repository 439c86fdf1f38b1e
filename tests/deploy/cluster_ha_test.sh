#!/usr/bin/env bash
# `tools/cluster.sh --ha` as an operator runs it (issue 12, item 4): three etcd members and two
# brokers elected through them, the PAN, two PSNs and the MnT naming both brokers, the testbed
# standing in for Exchange Online and Entra ID. With this invocation's binaries (--binaries:
# no setup, no build) and a state directory of its own, in a network namespace of its own so
# that the script's fixed ports stay off the host's. Asserts that one broker leads and the
# other stands by (mailroomctl health and status), that a guest registration is delivered into
# the testbed's Maildir, that kill -9 of the leading broker makes the other lead, and that mail
# still goes through afterwards.
#
# Run: bazel test //tests/deploy:cluster_ha_test --test_output=streamed
set -Eeuo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

NAME=cluster_ha
STARTED=$SECONDS
FAILED=0
if [[ -n "${TEST_SRCDIR:-}" ]]; then
  ROOT="$TEST_SRCDIR/${TEST_WORKSPACE:-mailroom}"
  BIN="$ROOT"
else
  ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)"
  BIN="$ROOT/bazel-bin"
fi
# shellcheck source=tests/testing/check_lib.sh
source "$ROOT/tests/testing/check_lib.sh"
NETNS=mrch-net
W=""
CLUSTER=""

in_net() { nsenter --net="/run/netns/$NETNS" "$@"; }
ctl() { in_net "$BIN/cli/mailroomctl" --config="$W/state/config/admin.textproto" "$@"; }
ctl_quiet() { ctl "$@" >"$W/ctl-last.txt" 2>&1; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  ((rc != 0)) && FAILED=1
  if [[ -n "$CLUSTER" ]]; then
    kill "$CLUSTER" 2>/dev/null # its trap stops the nodes, etcd and the testbed
    for _ in $(seq 100); do kill -0 "$CLUSTER" 2>/dev/null || break; sleep 0.2; done
  fi
  if ((FAILED)) && [[ -n "$W" ]]; then
    printf '\n----- tools/cluster.sh output -----\n'
    cat "$W/cluster.log"
    for log in "$W"/state/logs/broker*.log; do
      printf '\n----- %s (last 20 lines) -----\n' "$log"
      tail -n 20 "$log"
    done
  fi
  # Whatever still runs in the namespace is this test's.
  ip netns pids "$NETNS" 2>/dev/null | xargs -r kill -9
  ip netns del "$NETNS" 2>/dev/null
  [[ -n "$W" ]] && rm -rf "$W"
  if ((FAILED)); then
    say "FAILED"
    exit 1
  fi
  say "PASSED"
}

# The name (broker or broker2) of the broker `mailroomctl health` shows SERVING, if any.
leader() {
  local line
  line="$(ctl health 2>/dev/null | grep -E '^broker[12] localhost:71[01]0: SERVING' || true)"
  case "$line" in
    *localhost:7100:*) echo broker ;;
    *localhost:7110:*) echo broker2 ;;
  esac
}

# leads NAME: NAME is the broker health shows SERVING.
leads() { [[ "$(leader)" == "$1" ]]; }

# register NAME: a guest registration through psn1, as a portal would, to NAME@example.test.
register() {
  ctl guest register "username=$1" first_name=Ha last_name=Test "email=$1@example.test" \
    password_file=- portal=lobby <<<'Pa55word!' >"$W/register-$1.txt" 2>&1
}
# delivered NAME: a message to NAME@example.test is in the testbed's Maildir.
delivered() { grep -rqs -- "^To: .*$1@example.test" "$MAILDIR/new" "$MAILDIR/cur"; }

main() {
  [[ $EUID -eq 0 ]] || die "needs root (network namespaces)"
  command -v etcd >/dev/null || die "no etcd (run tools/setup.sh)"
  # One run at a time on the machine (another worktree's too): the namespace has one name.
  exec 9>/run/lock/mailroom-cluster-ha-test.lock
  flock -w 900 9 || die "another cluster_ha_test has held the lock for 15 minutes"
  trap cleanup EXIT
  trap 'exit 1' INT TERM
  trap 'say "FATAL: line $LINENO: $BASH_COMMAND"' ERR
  { ip netns pids "$NETNS" 2>/dev/null || true; } | xargs -r kill -9 # an aborted earlier run's
  ip netns del "$NETNS" 2>/dev/null || true
  ip netns add "$NETNS"
  ip -n "$NETNS" link set lo up
  W="$(mktemp -d /tmp/mrch.XXXXXX)"

  local begin=$SECONDS
  in_net bash "$ROOT/tools/cluster.sh" --ha --binaries "$BIN" --state "$W/state" \
    >"$W/cluster.log" 2>&1 &
  CLUSTER=$!
  wait_for 240 grep -q "Press Ctrl-C to stop" "$W/cluster.log" ||
    die "tools/cluster.sh --ha did not come up (see its output above)"
  say "tools/cluster.sh --ha up after $((SECONDS - begin)) s"
  MAILDIR="$(sed -n 's/^cluster: the testbed delivers mail for example.test into //p' "$W/cluster.log")"
  [[ -d "$MAILDIR" ]] || die "no Maildir named in the script's output"

  local health
  health="$(ctl health 2>&1 || true)"
  printf '%s\n' "$health"
  check "three etcd members answer (health)" grep -q 'etcd as broker[12] sees it: healthy, 3/3 members answer' <<<"$health"
  check "one broker SERVING" test "$(grep -cE '^broker[12] .*: SERVING, leads since' <<<"$health")" -eq 1
  check "the other STANDBY, naming the leader" \
    test "$(grep -cE '^broker[12] .*: STANDBY, stands by; the leader is localhost:71[01]0' <<<"$health")" -eq 1
  check "every node SERVING or STANDBY (health exits 0)" ctl health
  local first
  first="$(leader)"
  [[ -n "$first" ]] || die "no broker leads"
  say "the leader is $first"
  local status
  status="$(ctl status 2>&1 || true)"
  printf '%s\n' "$status"
  check "status shows one LEADER and one STANDBY" \
    test "$(grep -cE '^  broker[12] +(LEADER|STANDBY) ' <<<"$status")" -eq 2

  check "a guest registration is accepted" register ha-before-failover
  check "and delivered into the Maildir" wait_for 60 delivered ha-before-failover
  # The role nodes raise TOKEN_ACQUISITION_FAILED while the settings are not saved yet, and
  # clear it with their next token.
  check "status: nothing needs an admin (exit 0)" wait_for 90 ctl_quiet status

  local other=broker2
  [[ "$first" == broker2 ]] && other=broker
  begin=$SECONDS
  local killed_ms
  killed_ms="$(date +%s%3N)"
  kill -9 "$(cat "$W/state/pids/$first.pid")"
  wait_for 30 leads "$other" || die "$other did not lead after kill -9 of $first"
  say "kill -9 of $first: $other SERVING after $(($(date +%s%3N) - killed_ms)) ms (lease TTL 5 s)"
  status="$(ctl status 2>&1 || true)"
  printf '%s\n' "$status"
  check "status names $other the LEADER" grep -qE "^  broker[12] +LEADER  localhost:$([[ $other == broker ]] && echo 7100 || echo 7110)  leads since" <<<"$status"
  check "status shows $first DOWN" grep -qE "^broker[12] +DOWN " <<<"$status"
  check "a guest registration after the failover is accepted" register ha-after-failover
  check "and delivered (the new leader grants)" wait_for 90 delivered ha-after-failover
}

main "$@"
