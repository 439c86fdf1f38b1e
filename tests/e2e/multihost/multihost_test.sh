#!/usr/bin/env bash
# Multi-host test with real network partitions (issue 6, item 4).
#
# Each role runs on its own network host: Linux network namespaces joined by veth pairs through a
# bridge in a 'switch' namespace, on one machine. Nothing but the namespaces themselves is created
# in the root namespace; every address (10.77.0.0/24) lives inside them.
#
#   mrtest-sw      the switch: bridge br0, one veth end per host
#   mrtest-peers   10.77.0.1 "peers":  the testbed (Postfix + Dovecot as Exchange Online, the OAuth
#                  server as Entra ID), started with TESTBED_LISTEN_ADDRESS=10.77.0.1
#   mrtest-broker  10.77.0.2 "broker": the real mailroom-broker, configured with mailroomctl
#                  (Test Connection, then save) run on that host
#   mrtest-psn     10.77.0.3 "psn":    the sending role node: tests/e2e/tools:mail_sender (a durable
#                  outbox + the real delivery worker + the real broker client)
#
# Host names come from /etc/netns/<ns>/hosts (`ip netns exec` bind-mounts it over /etc/hosts); the
# certificates name the hosts: DNS:broker (deploy/gen-certs.sh), DNS:peers (the testbed's).
#
# Scenario, printing what was cut, what was queued and what arrived:
#   1. a burst of 300 messages; during it the psn host is cut off from the broker host (blackhole
#      routes on both sides: packets are silently dropped, as in a real partition) for 35 s. The
#      psn keeps sending on its cached token: what it held permits for, then its offline allowance
#      of 10 a minute; the rest waits (see "What 'keeps sending' means").
#   2. the psn host is cut off from the MTA host and its link to the broker heals: it gets permits
#      again, its attempts fail at the network and back off; mail waits in the outbox (queued > 0),
#      nothing arrives.
#   3. heal: everything drains; 0 lost (every acknowledged Message-ID arrives; a duplicate can only
#      be another copy of the same Message-ID). Exact counts come from the outbox's own send times.
#   4. the broker's host restarts (process killed, its link down, a second burst of 150 is queued
#      on the psn meanwhile by a new sender process with no cached token, link up, broker started
#      again on the same data): tokens and permits resume and the second burst drains.
# The psn's uplink is shaped (tbf, 256 kbit/s, in its namespace): over a bare veth a burst of 300
# is sent in about a second, too fast to cut in the middle of it reliably.
#
# What 'keeps sending' means here. A role node caches its access token (BrokerTokenSource), so
# the token is not what stops it, but every message is normally sent under a send permit from the
# broker (DeliveryWorker::Round: Acquire before each batch of up to 10 messages per SMTP
# connection). Cut off from the broker, a node (a) finishes the batches it already holds permits
# for (at most connections x batch = 3 x 10), then (b) once an Acquire fails as unreachable
# (UNAVAILABLE / DEADLINE_EXCEEDED) and no broker has answered for offline_grace (75 s by default,
# 15 s here: OFFLINE_GRACE_S) sends on its offline allowance: up to 10 messages a minute on
# its cached token without permits (DeliveryOptions.offline_messages_per_minute, one connection;
# a third of Exchange's 30/minute so three nodes cut off together stay under it); (c) the rest
# waits in the outbox ("waiting for the token broker") and drains after the heal. Over a silent
# partition (dropped packets, as here) (b) starts only about 20 s in: the Report and then the
# Acquire in flight each run into their 10 s deadline first. The test asserts (a), (b), (c) and
# 0 lost, counting with the outbox's own send times and the worker's log.
#
# Needs root, iproute2, and what the testbed needs (tests/e2e/testbed/README.md). Leftovers of an
# aborted earlier run (namespaces mrtest-*, /etc/netns/mrtest-*, their processes) are removed at
# start; everything this run makes is removed on exit, whatever happens. Runs are serialized with a
# lock file, so a concurrent run is waited for, not torn down.
#
# Run: bazel test //tests/e2e/multihost:multihost_test --test_output=streamed
#  or: bazel build //pan/broker:mailroom-broker //cli:mailroomctl //tests/e2e/tools:mail_sender &&
#      bash tests/e2e/multihost/multihost_test.sh
set -Eeuo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# ------------------------------------------------------------------------------------------------
# where things are

if [[ -n "${TEST_SRCDIR:-}" ]]; then # under bazel test: everything is in the runfiles
  ROOT="$TEST_SRCDIR/${TEST_WORKSPACE:-mailroom}"
  BIN="$ROOT"
else
  ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../../.." && pwd)"
  BIN="$ROOT/bazel-bin"
fi
BROKER_BIN="$BIN/pan/broker/mailroom-broker"
CTL_BIN="$BIN/cli/mailroomctl"
SENDER_BIN="$BIN/tests/e2e/tools/mail_sender"
TESTBED="$ROOT/tests/e2e/testbed/testbed.sh"
NAME=multihost
# shellcheck source=tests/testing/check_lib.sh
source "$ROOT/tests/testing/check_lib.sh"
GEN_CERTS="$ROOT/deploy/gen-certs.sh"

PREFIX=mrtest-
NS_SW=${PREFIX}sw
NS_PEERS=${PREFIX}peers
NS_BROKER=${PREFIX}broker
NS_PSN=${PREFIX}psn
PEERS_IP=10.77.0.1
BROKER_IP=10.77.0.2
PSN_IP=10.77.0.3
BROKER_PORT=7100
BURST1="${MULTIHOST_BURST1:-300}"
BURST2="${MULTIHOST_BURST2:-150}"
TO1=burst1@example.test
TO2=burst2@example.test
CONNECTIONS=3 # the sender's SMTP connections (mail_sender's default)
BATCH=10      # DeliveryOptions.batch: messages permitted per round on one connection
LOCK=/run/lock/mrtest-multihost.lock
PSN_UPLINK="${MULTIHOST_PSN_UPLINK:-256kbit}"
# The broker cut. Over a silent partition each connection's Report (10 s deadline) and then its
# Acquire (10 s) time out before the offline allowance starts (about 20 s in); 35 s also shows a
# second Acquire failing with the allowance used up.
CUT1_SECONDS=35
# What the delivery worker logs when it sends without a permit while the broker is unreachable
# (DeliveryOptions.offline_messages_per_minute: 10, on one connection).
OFFLINE_LOG="on the cached token without a permit"
OFFLINE_PER_MINUTE=10
# DeliveryOptions.offline_grace, shortened from its 75 s so that the 35 s cut shows the allowance.
OFFLINE_GRACE_S=15

STARTED=$SECONDS
W=""
BROKER_PID=""
SENDER_PIDS=()
FAILED=0

in_ns() { # in_ns NS COMMAND...
  local ns="$1"
  shift
  ip netns exec "$ns" "$@"
}

# ------------------------------------------------------------------------------------------------
# cleanup: whatever happens, and leftovers of an aborted run

kill_pid() { # TERM, up to 5 s, then KILL; quiet if gone
  local pid="$1" i
  [[ -n "$pid" ]] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" == Z ]] && break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# Ends every process still inside one of our namespaces (by pid: they can only be ours), then
# deletes the namespaces (which deletes their veths and the bridge) and their /etc/netns entries.
remove_namespaces() {
  local ns pid pids=() i
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^${PREFIX}" || true); do
    mapfile -t pids < <(ip netns pids "$ns" 2>/dev/null || true)
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for ((i = 0; i < 30; i++)); do
      [[ -z "$(ip netns pids "$ns" 2>/dev/null)" ]] && break
      sleep 0.1
    done
    mapfile -t pids < <(ip netns pids "$ns" 2>/dev/null || true)
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf /etc/netns/"${PREFIX}"*
}

show_logs() {
  local f
  for f in "$W"/broker/broker.log "$W"/psn/sender*.log "$W"/ctl.log "$W"/tb/postfix/postfix.log; do
    [[ -s "$f" ]] || continue
    printf '\n----- %s (last 30 lines) -----\n' "$f"
    tail -n 30 "$f"
  done
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  ((rc != 0)) && FAILED=1
  for pid in "${SENDER_PIDS[@]}" "$BROKER_PID"; do kill_pid "$pid"; done
  if [[ -n "$W" && -f "$W/tb/.testbed.conf" ]]; then
    if ip netns list | grep -q "^$NS_PEERS\b"; then
      in_ns "$NS_PEERS" bash "$TESTBED" stop "$W/tb" >/dev/null 2>&1
    else
      bash "$TESTBED" stop "$W/tb" >/dev/null 2>&1
    fi
  fi
  remove_namespaces
  local left
  left="$(ip netns list | grep "^${PREFIX}" || true)$(ls -d /etc/netns/"${PREFIX}"* 2>/dev/null || true)"
  [[ -n "$left" ]] && say "cleanup left: $left"
  if [[ -n "$W" ]]; then
    if ((FAILED)); then
      show_logs
      [[ -n "${TEST_UNDECLARED_OUTPUTS_DIR:-}" ]] &&
        cp -r "$W/broker/broker.log" "$W/psn" "$W/tb/postfix/postfix.log" "$TEST_UNDECLARED_OUTPUTS_DIR/" 2>/dev/null
    fi
    if [[ -n "${MULTIHOST_KEEP:-}" ]]; then say "kept $W"; else rm -rf "$W"; fi
  fi
  say "cleaned up: namespaces, veths, bridge, /etc/netns entries, processes"
  if ((FAILED)); then
    say "FAILED"
    exit 1
  fi
  say "PASSED in $((SECONDS - STARTED))s"
  exit 0
}

# ------------------------------------------------------------------------------------------------
# the network

make_network() {
  local host ip ns
  for ns in "$NS_SW" "$NS_PEERS" "$NS_BROKER" "$NS_PSN"; do ip netns add "$ns"; done
  ip -n "$NS_SW" link set lo up
  ip -n "$NS_SW" link add br0 type bridge
  ip -n "$NS_SW" link set br0 up
  for host in peers:$PEERS_IP broker:$BROKER_IP psn:$PSN_IP; do
    ip="${host#*:}"
    host="${host%%:*}"
    # Both ends made where they live: one in the switch, the other in the host's namespace.
    ip -n "$NS_SW" link add "v-$host" type veth peer name eth0 netns "$PREFIX$host"
    ip -n "$NS_SW" link set "v-$host" master br0
    ip -n "$NS_SW" link set "v-$host" up
    ip -n "$PREFIX$host" link set lo up
    ip -n "$PREFIX$host" addr add "$ip/24" dev eth0
    ip -n "$PREFIX$host" link set eth0 up
    mkdir -p "/etc/netns/$PREFIX$host"
    cat >"/etc/netns/$PREFIX$host/hosts" <<EOF
127.0.0.1 localhost
$PEERS_IP peers
$BROKER_IP broker
$PSN_IP psn psn1
EOF
  done
  # The psn's uplink is a slow WAN link (tbf, in its namespace): over the bare veth a burst of
  # 300 is gone in about a second, too fast to cut in the middle of it reliably.
  ip netns exec "$NS_PSN" tc qdisc add dev eth0 root tbf rate "$PSN_UPLINK" burst 32kbit latency 400ms
  # Every host reaches every other (bash's /dev/tcp needs a listener; a connection refused
  # proves the path as well as one accepted).
  local a b
  for a in "$NS_PEERS" "$NS_BROKER" "$NS_PSN"; do
    for b in $PEERS_IP $BROKER_IP $PSN_IP; do
      local out
      out="$(in_ns "$a" timeout 3 bash -c "exec 3<>/dev/tcp/$b/9" 2>&1 || true)"
      [[ -z "$out" || "$out" == *"refused"* ]] || die "$a cannot reach $b: $out"
    done
  done
}

# A partition between two hosts: each drops what it would send to the other (a blackhole route,
# iproute2 only). In-flight TCP connections hang, new ones fail: as behind a dropping firewall.
cut() { # cut NS_A IP_A NS_B IP_B
  ip -n "$1" route add blackhole "$4/32"
  ip -n "$3" route add blackhole "$2/32"
}
heal() {
  ip -n "$1" route del blackhole "$4/32"
  ip -n "$3" route del blackhole "$2/32"
}

# ------------------------------------------------------------------------------------------------
# observations

# status_field FILE NAME: a number from the sender's --status_file first line (0 if none yet).
status_field() {
  local line
  line="$(head -n 1 "$1" 2>/dev/null || true)"
  [[ "$line" =~ (^|\ )$2=([0-9]+) ]] && echo "${BASH_REMATCH[2]}" || echo 0
}
status_waits() { # the "wait N reason" lines, indented
  sed -n 's/^wait /      waiting: /p' "$1" 2>/dev/null || true
}
arrived_files() { # arrived_files RECIPIENT: the Maildir files delivered to it
  grep -l -s -F -x "Delivered-To: $1" "$MAILDIR"/new/* 2>/dev/null || true
}
arrived() { arrived_files "$1" | wc -l; }
arrived_at_least() { (($(arrived "$1") >= $2)); }
acked_at_least() { [[ -f "$1" ]] && (($(wc -l <"$1") >= $2)); }
sent_at_least() { (($(status_field "$1" sent) >= $2)); }
# "count message-id" per distinct Message-ID delivered to RECIPIENT
arrived_ids() {
  arrived_files "$1" | xargs -r grep -m1 -h -i '^Message-ID:' | awk '{print $2}' | tr -d '<>\r' |
    sort | uniq -c
}
# offline_between LOG FROM_MS TO_MS: messages the delivery worker took from its offline allowance
# (sent on the cached token without a permit, while the broker was unreachable) in (FROM, TO],
# from its log lines "<time> WARN [outbox] broker unreachable (...): sending N message(s) on the
# cached token without a permit". 0 when the build has no such allowance.
offline_between() {
  local line ts ms n total=0
  while IFS= read -r line; do
    ts="${line%% *}"
    ms="$(date -u -d "$ts" +%s%3N 2>/dev/null)" || continue
    [[ "$line" =~ sending\ ([0-9]+)\ message ]] || continue
    n="${BASH_REMATCH[1]}"
    ((ms > $2 && ms <= $3)) && total=$((total + n))
  done < <(grep "$OFFLINE_LOG" "$1" || true)
  echo "$total"
}
# sent_between LOG FROM_MS TO_MS: the send times (unix ms) in a sender's final listing in (FROM, TO]
sent_between() {
  sed -n 's/^entry .* NOTIFICATION_STATE_SENT .* send_time_ms=\([0-9]*\).*/\1/p' "$1" |
    awk -v from="$2" -v to="$3" '$1 > from && $1 <= to'
}
acked_ids() { awk '{print $2}' "$1" | sort -u; }
token_requests() { in_ns "$NS_PEERS" bash "$TESTBED" token-count "$W/tb" | tr -d ' '; }
running() { [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null && [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]]; }
not_running() { ! running "$1"; }
# reap PID: its exit code, and forget it (cleanup must not signal a pid that may be reused)
reap() {
  local rc=0 i
  wait "$1" || rc=$?
  for i in "${!SENDER_PIDS[@]}"; do [[ "${SENDER_PIDS[$i]}" == "$1" ]] && unset "SENDER_PIDS[$i]"; done
  return $rc
}

# watch_status FILE SECONDS REASONS [PATTERN]: poll a sender's status for SECONDS; sets WATCH_SENT
# (the last sent count), WATCH_LAST_SEND (when it last grew) and WATCH_FIRST_SEEN (when PATTERN
# first showed in it), and collects every distinct wait reason seen, with the largest count seen
# for it, into REASONS.
watch_status() {
  local file="$1" end=$((SECONDS + $2)) reasons="$3" pattern="${4:-}" sent
  WATCH_SENT="$(status_field "$file" sent)"
  WATCH_LAST_SEND=$SECONDS
  WATCH_FIRST_SEEN=""
  : >"$reasons.all"
  while ((SECONDS < end)); do
    sleep 0.25
    sent="$(status_field "$file" sent)"
    if ((sent != WATCH_SENT)); then
      WATCH_SENT=$sent
      WATCH_LAST_SEND=$SECONDS
    fi
    sed -n 's/^wait //p' "$file" >>"$reasons.all" 2>/dev/null || true
    if [[ -n "$pattern" && -z "$WATCH_FIRST_SEEN" ]] && grep -q -F "$pattern" "$file" 2>/dev/null; then
      WATCH_FIRST_SEEN=$SECONDS
    fi
  done
  # "N reason" lines -> "reason (up to N entries)", one per reason
  awk '{ n = $1; $1 = ""; sub(/^ /, ""); if (n > max[$0]) max[$0] = n }
       END { for (r in max) printf "%s (up to %d entries at once)\n", r, max[r] }' "$reasons.all" |
    sort >"$reasons"
}

ctl() { in_ns "$NS_BROKER" "$CTL_BIN" --config="$W/admin.textproto" "$@"; }

start_broker() {
  rm -f "$W/broker/port"
  # `ip netns exec` execs the program: $! is its pid (not a subshell's).
  ip netns exec "$NS_BROKER" "$BROKER_BIN" --config="$W/broker/broker.textproto" \
    --port_file="$W/broker/port" >>"$W/broker/broker.log" 2>&1 9>&- &
  BROKER_PID=$!
  wait_for 20 test -s "$W/broker/port" || die "mailroom-broker did not start"
}

start_sender() { # start_sender N TO COUNT FIRST: a sending process on the psn host
  local n="$1" to="$2" count="$3" first="$4"
  ip netns exec "$NS_PSN" "$SENDER_BIN" --outbox="$W/psn/outbox$n.db" --broker="broker:$BROKER_PORT" \
    --certs="$W/certs" --node=psn1 --from="$MAILBOX" --to="$to" --enqueue="$count" \
    --first="$first" --ack_file="$W/psn/acks$n" --status_file="$W/psn/status$n" \
    --backoff_ms=500 --offline_grace_s="$OFFLINE_GRACE_S" --exit_when_drained \
    >"$W/psn/sender$n.log" 2>&1 9>&- &
  SENDER_PIDS+=($!)
}

# Every acknowledged Message-ID arrived; only acknowledged ones arrived; duplicates counted.
verify_no_loss() { # verify_no_loss LABEL ACK_FILE RECIPIENT EXPECTED
  local label="$1" acks="$2" to="$3" expected="$4" ids acked lost extra dups distinct copies
  ids="$W/ids.$label"
  arrived_ids "$to" >"$ids"
  acked="$(acked_ids "$acks" | wc -l)"
  distinct="$(wc -l <"$ids")"
  copies="$(awk '{s += $1} END {print s + 0}' "$ids")"
  dups="$(awk '$1 > 1 {s += $1 - 1} END {print s + 0}' "$ids")"
  lost="$(comm -23 <(acked_ids "$acks") <(awk '{print $2}' "$ids" | sort) | wc -l)"
  extra="$(comm -13 <(acked_ids "$acks") <(awk '{print $2}' "$ids" | sort) | wc -l)"
  say "$label: acknowledged $acked, arrived $copies ($distinct distinct Message-IDs, $dups duplicate copies of the same Message-ID), lost $lost, unknown $extra"
  check "$label: every one of the $expected acknowledged messages was acknowledged" test "$acked" -eq "$expected"
  check "$label: 0 lost (every acknowledged Message-ID arrived)" test "$lost" -eq 0
  check "$label: nothing arrived that was not acknowledged" test "$extra" -eq 0
}

# ------------------------------------------------------------------------------------------------
# the test

main() {
  [[ "$(id -u)" == 0 ]] || die "must run as root (network namespaces, Postfix)"
  local f
  for f in "$BROKER_BIN" "$CTL_BIN" "$SENDER_BIN"; do
    [[ -x "$f" ]] || die "$f is missing (bazel build //pan/broker:mailroom-broker //cli:mailroomctl //tests/e2e/tools:mail_sender)"
  done
  command -v ip >/dev/null || die "iproute2 is not installed"

  mkdir -p "$(dirname "$LOCK")"
  # fd 9 holds the lock; every long-lived child is started with 9>&- so that a run killed with
  # SIGKILL does not leave its daemons holding it (the next run removes them).
  exec 9>"$LOCK"
  flock -w 600 9 || die "another multihost test holds $LOCK"
  trap cleanup EXIT
  trap 'exit 1' INT TERM
  if ip netns list | grep -q "^${PREFIX}" || compgen -G "/etc/netns/${PREFIX}*" >/dev/null; then
    say "removing leftovers of an aborted run: $(ip netns list | awk '{print $1}' | grep "^${PREFIX}" | tr '\n' ' ')"
  fi
  remove_namespaces

  rm -rf /tmp/"${PREFIX}"?????? # an aborted run's directory (we hold the lock: none is in use)
  W="$(mktemp -d "/tmp/${PREFIX}XXXXXX")" # short: Dovecot's sockets live under it
  chmod 755 "$W"
  mkdir -p "$W/broker/data" "$W/psn"

  # ---------------------------------------------------------------- hosts
  make_network
  say "hosts: peers $PEERS_IP (MTA + OAuth server), broker $BROKER_IP (mailroom-broker), psn $PSN_IP (mail_sender), joined by veths through bridge br0 in $NS_SW; the psn's uplink is shaped to $PSN_UPLINK/s"

  in_ns "$NS_PEERS" env TESTBED_LISTEN_ADDRESS=$PEERS_IP TESTBED_LISTEN_NAME=peers \
    bash "$TESTBED" start "$W/tb" 2>"$W/testbed-start.log" 9>&- || { cat "$W/testbed-start.log"; die "the testbed did not start"; }
  # shellcheck disable=SC1091
  source "$W/tb/testbed.env"
  say "peers: testbed up: SMTP peers:$SMTP_PORT (STARTTLS + XOAUTH2), token endpoint $LISTEN_TOKEN_URL_BASE"

  bash "$GEN_CERTS" "$W/certs" broker:broker psn1:psn admin:admin >/dev/null
  cat >"$W/broker/broker.textproto" <<EOF
node_name: "broker"
role: ROLE_BROKER
listen_address: "$BROKER_IP:$BROKER_PORT"
tls { ca_file: "$W/certs/ca.pem" cert_file: "$W/certs/broker.pem" key_file: "$W/certs/broker.key" }
data_dir: "$W/broker/data"
logging { default_level: LOG_LEVEL_INFO }
broker {
  default_authority_host: "$LISTEN_TOKEN_URL_BASE"
  # The testbed is not Exchange: lift the per-minute limit so a burst takes seconds.
  send_limits { messages_per_minute: 100000 recipients_per_day: 100000 }
}
EOF
  cat >"$W/admin.textproto" <<EOF
tls { ca_file: "$W/certs/ca.pem" cert_file: "$W/certs/admin.pem" key_file: "$W/certs/admin.key" }
broker_target: "broker:$BROKER_PORT"
EOF
  start_broker
  say "broker: mailroom-broker serving on broker:$BROKER_PORT"

  # Test Connection + save, as an admin would, from the broker's host. The settings name the
  # other host: SMTP at peers, the token endpoint at https://peers (both certificates carry it).
  cat >"$W/smtp.textproto" <<EOF
smtp_host: "peers"
port: $SMTP_PORT
connection_timeout { seconds: 5 }
username: "$MAILBOX"
tenant_id: "$TENANT"
client_id: "$CLIENT_ID"
authority_host: "$LISTEN_TOKEN_URL_BASE"
smtp_trust_store { ca_file: "$CA_FILE" }
authority_trust_store { ca_file: "$CA_FILE" }
EOF
  (umask 077 && printf '%s' "$CLIENT_SECRET" >"$W/client-secret")
  if ! ctl settings set --file="$W/smtp.textproto" --client_secret_file="$W/client-secret" \
    --secret_expiry="$(date -u -d '+180 days' +%Y-%m-%d)" --to=admin@example.test >"$W/ctl.log" 2>&1; then
    cat "$W/ctl.log"
    die "configuring the broker failed"
  fi
  say "broker: configured with mailroomctl on the broker host (Test Connection passed, settings saved)"
  check "Test Connection's message from the broker host arrived at peers" wait_for 20 arrived_at_least admin@example.test 1

  # ---------------------------------------------------------------- burst 1
  local tokens_before_burst
  tokens_before_burst="$(token_requests)"
  say "psn: burst 1: queueing $BURST1 messages to $TO1 and delivering"
  start_sender 1 "$TO1" "$BURST1" 0
  local sender1="${SENDER_PIDS[-1]}" st1="$W/psn/status1"
  wait_for 60 sent_at_least "$st1" 30 || die "burst 1 did not start sending: $(head -1 "$st1" 2>/dev/null)"
  say "psn: acknowledged (durably queued) so far: $(wc -l <"$W/psn/acks1"); sent so far: $(status_field "$st1" sent)"

  # ---------------------------------------------------------------- 1. psn cut off from the broker
  local t_cut quiet queued line
  cut "$NS_PSN" "$PSN_IP" "$NS_BROKER" "$BROKER_IP"
  t_cut=$SECONDS
  CUT1_MS="$(date +%s%3N)"
  say "CUT psn -x- broker (blackhole routes on both hosts) in the middle of burst 1"
  watch_status "$st1" "$CUT1_SECONDS" "$W/reasons1"
  quiet=$((SECONDS - WATCH_LAST_SEND))
  queued="$(status_field "$st1" queued)"
  say "while cut from the broker (${CUT1_SECONDS}s): none sent for the last ${quiet}s (exact counts once drained, below); queued now $queued, arrived so far $(arrived "$TO1")"
  grep "$OFFLINE_LOG" "$W/psn/sender1.log" | while IFS= read -r line; do say "  psn log: $line"; done
  sed 's/^/      seen waiting: /' "$W/reasons1"
  check "mail waits in the outbox ($queued queued)" test "$queued" -gt 0
  check "it waits for a permit, not for a token (wait reason 'waiting for the token broker' seen)" grep -q "waiting for the token broker" "$W/reasons1"
  check "the sender is still running" running "$sender1"

  # ---------------------------------------------------------------- 2. psn cut off from the MTA
  # The broker link heals while the MTA link is cut: the psn gets permits again but cannot reach
  # the MTA, so what waits now waits for the MTA alone.
  local s1 a1 a2 s2 q2 t_cut2
  cut "$NS_PSN" "$PSN_IP" "$NS_PEERS" "$PEERS_IP"
  heal "$NS_PSN" "$PSN_IP" "$NS_BROKER" "$BROKER_IP"
  HEAL1_MS="$(date +%s%3N)"
  t_cut2=$SECONDS
  say "CUT psn -x- peers (the MTA), HEAL psn --- broker"
  # A reply in flight at the cut, and the MTA's own delivery of what it had accepted, settle
  # within a moment: the baseline is taken after that.
  sleep 1.5
  s1="$(status_field "$st1" sent)"
  a1="$(arrived "$TO1")"
  watch_status "$st1" 18 "$W/reasons2" "backoff after"
  if [[ -n "$WATCH_FIRST_SEEN" ]]; then
    say "the psn's first attempt at the cut-off MTA failed $((WATCH_FIRST_SEEN - t_cut2))s after the broker link healed"
  fi
  s2="$(status_field "$st1" sent)"
  a2="$(arrived "$TO1")"
  q2="$(status_field "$st1" queued)"
  say "while cut from the MTA ($((SECONDS - t_cut2))s): sent $s1 -> $s2, arrived $a1 -> $a2, queued $q2"
  sed 's/^/      seen waiting: /' "$W/reasons2"
  check "mail waits in its outbox ($q2 queued)" test "$q2" -gt 0
  check "nothing arrives while cut from the MTA" test "$a2" -eq "$a1"
  check "nothing is recorded as sent while cut from the MTA" test "$s2" -eq "$s1"
  check "its attempts fail at the network and back off ('backoff after' seen)" grep -q "backoff after" "$W/reasons2"

  # ---------------------------------------------------------------- 3. heal: everything drains
  heal "$NS_PSN" "$PSN_IP" "$NS_PEERS" "$PEERS_IP"
  local t_heal2=$SECONDS
  HEAL2_MS="$(date +%s%3N)"
  say "HEAL psn --- peers"
  wait_for 120 not_running "$sender1" || die "burst 1 did not drain within 120 s of the heal: $(head -1 "$st1")"
  reap "$sender1" || die "sender 1 exited with an error"
  say "psn: burst 1 drained $((SECONDS - t_heal2))s after the heal: $(head -1 "$st1")"
  local after_heal
  after_heal="$(sent_between "$W/psn/sender1.log" "$HEAL2_MS" 99999999999999 | wc -l)"
  check "permits resumed with the broker link: $after_heal sent after the heal, more than the offline allowance" \
    test "$after_heal" -gt "$OFFLINE_PER_MINUTE"
  wait_for 30 arrived_at_least "$TO1" "$BURST1" || true
  verify_no_loss "burst 1" "$W/psn/acks1" "$TO1" "$BURST1"
  check "sender 1's final listing gives the send time of all $BURST1" \
    test "$(grep -c '^entry .* NOTIFICATION_STATE_SENT .*send_time_ms=' "$W/psn/sender1.log")" -eq "$BURST1"
  # Exactly what went out while cut from the broker, by the outbox's own send times.
  local in_cut last_ms offline
  in_cut="$(sent_between "$W/psn/sender1.log" "$CUT1_MS" "$HEAL1_MS" | wc -l)"
  last_ms="$(sent_between "$W/psn/sender1.log" "$CUT1_MS" "$HEAL1_MS" | sort -n | tail -1)"
  offline="$(offline_between "$W/psn/sender1.log" "$CUT1_MS" "$HEAL1_MS")"
  say "burst 1: accepted by the MTA before the broker cut: $(sent_between "$W/psn/sender1.log" 0 "$CUT1_MS" | wc -l); while the psn was cut from the broker: $in_cut ($((in_cut - offline)) under the permits it held at the cut, $offline on the offline allowance without a permit), the last ${last_ms:+$((last_ms - CUT1_MS)) ms after the cut}; after: the rest"
  check "the psn kept sending after the cut from the broker, on its cached token ($in_cut sent)" test "$in_cut" -ge 1
  check "what it held permits for at the cut went out: $((in_cut - offline)) <= $CONNECTIONS connections x $BATCH messages per permit" test "$((in_cut - offline))" -le $((CONNECTIONS * BATCH))
  check "then it kept sending without permits, on the offline allowance ($offline sent)" test "$offline" -ge 1
  check "no more than the allowance: $offline <= $OFFLINE_PER_MINUTE a minute over a ${CUT1_SECONDS}s cut; the rest waited" \
    test "$offline" -le $((OFFLINE_PER_MINUTE * ((CUT1_SECONDS + 59) / 60)))
  check "the psn fetched its token from the broker once for the whole burst, partitions included ($(status_field "$st1" token_broker_calls) call)" test "$(status_field "$st1" token_broker_calls)" -eq 1
  check "burst 1: no message ended FAILED" test "$(status_field "$st1" failed)" -eq 0
  local tokens_after_burst
  tokens_after_burst="$(token_requests)"
  say "token endpoint requests during burst 1 and both partitions: $((tokens_after_burst - tokens_before_burst)) (the broker's cached token served them all)"

  # ---------------------------------------------------------------- 4. the broker's host restarts
  local tokens_before_restart
  tokens_before_restart="$(token_requests)"
  kill_pid "$BROKER_PID"
  BROKER_PID=""
  ip -n "$NS_BROKER" link set eth0 down
  local t_down=$SECONDS
  say "BROKER HOST DOWN: mailroom-broker stopped, its link down"
  say "psn: burst 2: a new sending process (no cached token) queues $BURST2 messages to $TO2"
  start_sender 2 "$TO2" "$BURST2" 1000
  local sender2="${SENDER_PIDS[-1]}" st2="$W/psn/status2"
  wait_for 60 acked_at_least "$W/psn/acks2" "$BURST2" || die "sender 2 did not acknowledge $BURST2 messages"
  sleep 4
  local q3 s3 a3
  q3="$(status_field "$st2" queued)"
  s3="$(status_field "$st2" sent)"
  a3="$(arrived "$TO2")"
  say "while the broker host is down: acknowledged $(wc -l <"$W/psn/acks2"), queued $q3, sent $s3, arrived $a3"
  check "burst 2 is acknowledged and waits in the outbox while the broker is down" test "$q3" -eq "$BURST2"
  check "nothing of burst 2 is sent without a token and permits" test "$s3" -eq 0 -a "$a3" -eq 0

  ip -n "$NS_BROKER" link set eth0 up
  start_broker
  local t_up=$SECONDS
  say "BROKER HOST UP after $((t_up - t_down))s: link up, mailroom-broker started again on the same data"
  wait_for 120 not_running "$sender2" || die "burst 2 did not drain within 120 s of the broker's return: $(head -1 "$st2")"
  reap "$sender2" || die "sender 2 exited with an error"
  say "psn: burst 2 drained $((SECONDS - t_up))s after the broker's return: $(head -1 "$st2")"
  wait_for 30 arrived_at_least "$TO2" "$BURST2" || true
  verify_no_loss "burst 2" "$W/psn/acks2" "$TO2" "$BURST2"
  local tokens_after_restart
  tokens_after_restart="$(token_requests)"
  say "token endpoint requests after the broker's restart: $((tokens_after_restart - tokens_before_restart)) (its token cache is in memory: a new token was fetched)"
  check "tokens resumed: the restarted broker fetched a token and handed it out" test "$tokens_after_restart" -gt "$tokens_before_restart"
  local offline2
  offline2="$(offline_between "$W/psn/sender2.log" 0 99999999999999)"
  check "permits resumed: $(($(status_field "$st2" sent) - offline2)) of burst 2 sent under permits from the restarted broker ($offline2 on the offline allowance)" \
    test "$(($(status_field "$st2" sent) - offline2))" -gt "$OFFLINE_PER_MINUTE"
  say "broker quota after the restart (mailroomctl quota on the broker host):"
  ctl quota >"$W/quota.txt" 2>&1 || true
  sed 's/^/      /' "$W/quota.txt"
  local today
  today="$(sed -n 's|.* \([0-9]*\)/[0-9]* recipients today.*|\1|p' "$W/quota.txt" | head -1)"
  if [[ -n "$today" ]] && ((today < BURST1 + BURST2)); then
    say "note: the restarted broker counts $today recipients today for the mailbox, though $((BURST1 + BURST2 + 1)) were sent through it today: its send-quota accounting (per minute, per day) is in memory and starts over on restart"
  fi

  say "arrived in total at peers: $(ls "$MAILDIR"/new | wc -l) messages ($TO1: $(arrived "$TO1"), $TO2: $(arrived "$TO2"), admin@: $(arrived admin@example.test))"
}

main "$@"
