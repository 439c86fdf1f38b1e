#!/usr/bin/env bash
# Benchmark of mail delivery, from one run, side by side, on this machine (everything on
# loopback: the testbed's Postfix + Dovecot + oidc-provider, the real mailroom-broker, the
# senders):
#   (a) enqueue latency p50/p99 and enqueues/s into the durable outbox (common/outbox/outbox.h),
#       synchronous=FULL, with realistic rendered guest notifications; also synchronous=NORMAL
#       (sync_every_commit=false) and 4 concurrent producers, for comparison;
#   (b) mailroom: the real sending process (tests/e2e/tools:mail_sender: outbox + delivery
#       worker + broker tokens and permits) draining N queued messages over 3 connections
#       (STARTTLS + AUTH XOAUTH2) into the testbed's Postfix;
#   (c) the peers on the same testbed and message: nodemailer's pooled transport (3
#       connections, one token fetched up front) and one curl process per message;
#   (d) the ceiling: Postfix's smtp-source, 3 sessions, no TLS, no AUTH, into the same Postfix
#       (its plaintext listener);
# with wall time, messages/s, the sender's CPU time (user+sys) per message and how busy the
# whole machine was, then mailroom's ratios against the targets.
#
# The pooled senders and the ceiling run in BENCH_ROUNDS interleaved rounds (mailroom,
# nodemailer raw, nodemailer composing, smtp-source; again ...) and the table shows each one's
# median round with the range: on a 2-core machine that others share, one round of ~3 s
# moves by ±20% from one minute to the next, and interleaving spreads that drift over all.
# Every run must deliver all its messages (counted in the Maildir by Delivered-To, then
# removed, so each run starts from the same Maildir).
#
#   bash bench/delivery.sh           (as root, after tools/setup.sh)
#
# Knobs (environment): BENCH_N (messages per delivery run, default 2000), BENCH_ROUNDS
# (default 3), BENCH_CURL_N (messages for the curl peer, one run, default 200: one process
# per message is ~20x slower), BENCH_ENQUEUE_N (enqueues per outbox run, default 2000).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

N="${BENCH_N:-2000}"
CURL_N="${BENCH_CURL_N:-200}"
ROUNDS="${BENCH_ROUNDS:-3}"
ENQUEUE_N="${BENCH_ENQUEUE_N:-2000}"
CONNECTIONS=3

# Messages go to the stderr the script was started with (fd 3), even from the EXIT trap, which
# may run while a measured command's stderr is redirected into its timing file.
exec 3>&2
log() { printf 'delivery bench: %s\n' "$*" >&3; }

[[ "$(id -u)" == 0 ]] || { log "must run as root (the testbed runs Postfix)"; exit 1; }
for c in bazel node npm curl smtp-source; do
  command -v "$c" >/dev/null || { log "$c is not installed (run tools/setup.sh)"; exit 1; }
done
# The nodemailer peer's package (bench/node/package-lock.json); tools/setup.sh may not have
# installed it yet.
if [[ ! -d bench/node/node_modules/nodemailer ]]; then
  log "installing bench/node's npm packages (npm ci)"
  (cd bench/node && npm ci --no-audit --no-fund --loglevel=error) >&2
fi

# mail_sender is testonly: building it from the command line is fine, and the script runs the
# built binary; nothing depends on it.
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
build_log="$(mktemp)"
if ! bazel build -c opt //pan/broker:mailroom-broker //cli:mailroomctl //bench:outbox_enqueue_load \
  //tests/e2e/tools:mail_sender >"$build_log" 2>&1; then
  cat "$build_log" >&2
  rm -f "$build_log"
  exit 1
fi
rm -f "$build_log"
bin="$(bazel info -c opt bazel-bin 2>/dev/null)"

# Short: Dovecot's unix sockets live under it.
work="$(mktemp -d /tmp/mr.XXXXXX)"
chmod 755 "$work" # Postfix (user postfix) must reach its queue inside
# The outboxes go on a disk, as a node's would: on tmpfs an fsync is free and the durable
# figures would mean nothing. (/tmp is the root file system here; elsewhere it may be tmpfs.)
outboxes="$work/outboxes"
if [[ "$(df --output=fstype /tmp | tail -n 1 | tr -d ' ')" == tmpfs ]]; then
  outboxes="$(mktemp -d /var/tmp/mr-outboxes.XXXXXX)"
fi
mkdir -p "$outboxes"
broker_pid=""
finished=0
# Stop what this script started (by pid), always; keep the files only when something failed.
cleanup() {
  if [[ -n "$broker_pid" ]]; then
    kill "$broker_pid" 2>/dev/null || true
    wait "$broker_pid" 2>/dev/null || true
  fi
  bash tests/e2e/testbed/testbed.sh stop "$work" >/dev/null 2>&1 || true
  if ((finished)); then
    rm -rf "$work" "$outboxes"
  else
    log "failed; logs kept in $work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM # so that the EXIT trap runs on Ctrl-C and kill too

# ------------------------------------------------------------------------------------------------
# measuring helpers

# Busy and total jiffies of the whole machine (all cores), from /proc/stat.
machine_jiffies() {
  awk '/^cpu / { busy = $2 + $3 + $4 + $7 + $8 + $9; print busy, busy + $5 + $6 }' /proc/stat
}

# measure NAME COMMAND...: runs COMMAND (output in $work/NAME.log) and sets RC, WALL (s),
# CPU (user+sys of COMMAND and the children it waited for, s) and BUSY (% of the whole
# machine's CPU in use meanwhile, every process: the senders, Postfix, Dovecot, the broker,
# and whatever else runs on the machine).
TIMEFORMAT='%3R %3U %3S'
measure() {
  local name="$1" b0 t0 b1 t1 real user sys
  shift
  read -r b0 t0 < <(machine_jiffies)
  RC=0
  { time "$@" >"$work/$name.log" 2>&1; } 2>"$work/$name.time" || RC=$?
  read -r b1 t1 < <(machine_jiffies)
  read -r real user sys < <(tail -n 1 "$work/$name.time")
  WALL="$real"
  CPU="$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.3f", u + s }')"
  BUSY="$(awk -v b=$((b1 - b0)) -v t=$((t1 - t0)) 'BEGIN { printf "%.0f", t ? 100 * b / t : 0 }')"
}

# Messages in the testbed's Maildir, all recipients (cheap: a directory listing).
maildir_files() {
  if [[ -d "$MAILDIR/new" ]]; then find "$MAILDIR/new" -maxdepth 1 -type f | wc -l; else echo 0; fi
}

# Messages delivered to RECIPIENT: the virtual agent's Delivered-To header (the testbed's
# catch-all delivers every recipient into the one Maildir).
delivered_files() { grep -rlx -m 1 -F "Delivered-To: $1" "$MAILDIR/new" 2>/dev/null || true; }

# wait_maildir TARGET START: waits (up to 3 minutes) until the Maildir holds TARGET messages;
# sets LANDED to the seconds from START (an $EPOCHREALTIME) until then. Postfix accepts first
# and delivers after, so this is when the last message of a run really arrived — and the
# next run must not start while Postfix is still busy with this one's.
wait_maildir() {
  local target="$1" start="$2" deadline=$((SECONDS + 180))
  while (($(maildir_files) < target)) && ((SECONDS < deadline)); do sleep 0.05; done
  LANDED="$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')"
}

RESULTS="$work/results" # one line per run: KEY N WALL LANDED CPU BUSY
# record KEY MESSAGES RECIPIENT START BASELINE: after a measure, checks that the run delivered
# all MESSAGES to RECIPIENT, removes them from the Maildir, and records the run.
record() {
  local key="$1" n="$2" to="$3" start="$4" baseline="$5" got
  wait_maildir $((baseline + n)) "$start"
  got="$(delivered_files "$to" | wc -l)"
  if ((got != n)); then
    log "$key: $got of $n messages delivered to $to (see $work/$key*.log)"
    exit 1
  fi
  delivered_files "$to" | xargs -r rm -f
  echo "$key $n $WALL $LANDED $CPU $BUSY" >>"$RESULTS"
}

# summary KEY LABEL: the table line of KEY's median run (by messages/s), with the range of
# messages/s over its runs; sets MEDIAN_RATE.
summary() {
  local key="$1" label="$2" runs line
  runs="$(awk -v k="$key" '$1 == k { printf "%.3f %s\n", $2 / $3, $0 }' "$RESULTS" | sort -n)"
  line="$(sed -n "$((($(wc -l <<<"$runs") + 1) / 2))p" <<<"$runs")"
  MEDIAN_RATE="${line%% *}"
  awk -v label="$label" -v runs="$(wc -l <<<"$runs")" -v lo="$(head -n 1 <<<"$runs" | cut -d' ' -f1)" \
    -v hi="$(tail -n 1 <<<"$runs" | cut -d' ' -f1)" -v line="$line" 'BEGIN {
      split(line, f, " ")   # rate key n wall landed cpu busy
      printf "%-38s %5d %4d %7.2f %8.1f %11s %12.1f %10.2f %6d%%\n", label, f[3], runs, f[4], f[1],
        sprintf("%.0f-%.0f", lo, hi), f[3] / f[5], 1000 * f[6] / f[3], f[7] }'
}

# ------------------------------------------------------------------------------------------------
# (a) enqueue into the durable outbox: no network, just the outbox on this disk

mkdir -p "$outboxes/enqueue"
enqueue() { # enqueue LABEL FLAGS...: one run on a fresh outbox; prints the table line
  local label="$1" out
  shift
  out="$("$bin/bench/outbox_enqueue_load" --outbox="$outboxes/enqueue/$RANDOM$RANDOM.db" \
    --count="$ENQUEUE_N" --sample_message="$outboxes/enqueue/sample.eml" "$@")"
  get() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$out"; }
  [[ "$(get failed)" == 0 && "$(get queued)" == "$ENQUEUE_N" ]] || { log "enqueue: $out"; exit 1; }
  printf '%-44s %7s %9s %9s %9s %10s\n' "$label" "$(get count)" "$(get p50_ms)" "$(get p99_ms)" \
    "$(get max_ms)" "$(get per_s)"
  [[ "$label" == durable* && "$(get threads)" == 1 ]] && ENQUEUE_P99="$(get p99_ms)"
  ENQUEUE_BYTES="$(get msg_bytes)"
  ENQUEUE_RENDER="$(get render_us)"
  return 0
}
ENQUEUE_TABLE="$(
  printf '%-44s %7s %9s %9s %9s %10s\n' "outbox enqueue (1 call at a time per thread)" count p50_ms \
    p99_ms max_ms enqueue/s
  enqueue "durable: synchronous=FULL, 1 thread" --sync_every_commit=true --threads=1
  enqueue "sync_every_commit=false (NORMAL), 1 thread" --sync_every_commit=false --threads=1
  enqueue "durable, 4 threads (group commit)" --sync_every_commit=true --threads=4
  echo "ENQUEUE_P99=$ENQUEUE_P99 ENQUEUE_BYTES=$ENQUEUE_BYTES ENQUEUE_RENDER=$ENQUEUE_RENDER"
)"
eval "$(tail -n 1 <<<"$ENQUEUE_TABLE")" # the figures the summary needs, out of the subshell
ENQUEUE_TABLE="$(head -n -1 <<<"$ENQUEUE_TABLE")"

# ------------------------------------------------------------------------------------------------
# the testbed and the real broker, configured the way an admin does

bash tests/e2e/testbed/testbed.sh start "$work" >/dev/null 2>"$work/testbed-start.log" ||
  { cat "$work/testbed-start.log" >&2; exit 1; }
# shellcheck disable=SC1091
source "$work/testbed.env"
[[ -n "${SMTP_PLAIN_PORT:-}" ]] || { log "the testbed has no plaintext listener"; exit 1; }
# The testbed is not Exchange: lift the per-minute and per-day limits (the connection limit
# stays Exchange's 3), or the broker would hold mailroom to 30 messages a minute.
start_broker 127.0.0.1 "send_limits { messages_per_minute: 1000000 recipients_per_day: 1000000 }"

# ------------------------------------------------------------------------------------------------
# the peers' access token: one, fetched up front, as the recipe says

token_json="$(curl -sS --max-time 10 "$TOKEN_URL" -d grant_type=client_credentials \
  -d "client_id=$CLIENT_ID" --data-urlencode "client_secret=$CLIENT_SECRET" --data-urlencode "scope=$SCOPE")"
TOKEN="$(node -e 'console.log(JSON.parse(process.argv[1]).access_token || "")' "$token_json")"
[[ -n "$TOKEN" ]] || { log "no token from the token endpoint"; exit 1; }
# The token reaches curl through a config file, never a command line (ps shows those).
(umask 077 && printf 'user = "%s:"\noauth2-bearer = "%s"\n' "$MAILBOX" "$TOKEN" >"$work/curl.cfg")

# ------------------------------------------------------------------------------------------------
# the senders; each run: Maildir baseline, measure, record

# (b) mailroom: N queued first into a fresh outbox (durably; not timed), then the drain timed.
sender=("$bin/tests/e2e/tools/mail_sender" --broker="localhost:$port" --certs="$work/certs"
  --node=psn1 --from="$MAILBOX" --to=bench-mailroom@example.test)
run_mailroom() {
  local r="$1" baseline start dump=()
  mkdir -p "$outboxes/r$r/dump"
  # Round 1 keeps the bytes of every message: the peers send the very same bytes.
  ((r == 1)) && dump=(--dump_dir="$outboxes/r$r/dump")
  "${sender[@]}" --outbox="$outboxes/r$r/outbox.db" --enqueue="$N" --deliver=false "${dump[@]}" \
    >"$work/queue-r$r.log" 2>&1 || { cat "$work/queue-r$r.log" >&2; exit 1; }
  baseline="$(maildir_files)"
  start="$EPOCHREALTIME"
  measure "mailroom-r$r" "${sender[@]}" --outbox="$outboxes/r$r/outbox.db" --enqueue=0 \
    --exit_when_drained --connections="$CONNECTIONS"
  grep -q "^mail_sender: drained: sent=$N failed=0" "$work/mailroom-r$r.log" ||
    { log "mailroom did not send all $N"; tail -n 20 "$work/mailroom-r$r.log" >&2; exit 1; }
  record mailroom "$N" bench-mailroom@example.test "$start" "$baseline"
}

# (c) nodemailer's pool; COMPOSE 0: the bytes mailroom sent, handed over raw (like for like:
# mailroom renders at enqueue time, so its delivery does no MIME work either); 1: the same
# content composed by nodemailer for each message, as an application usually uses it.
run_nodemailer() {
  local r="$1" compose="$2" key=nodemailer baseline start
  ((compose)) && key=nodemailer-compose
  baseline="$(maildir_files)"
  start="$EPOCHREALTIME"
  measure "$key-r$r" env SMTP_HOST=127.0.0.1 SMTP_PORT="$SMTP_PORT" CA_FILE="$CA_FILE" \
    MAILBOX="$MAILBOX" BENCH_TOKEN="$TOKEN" BENCH_TO="bench-$key@example.test" BENCH_COUNT="$N" \
    BENCH_MESSAGE="$work/message.eml" BENCH_CONNECTIONS="$CONNECTIONS" BENCH_COMPOSE="$compose" \
    node bench/node/nodemailer_send.mjs
  ((RC == 0)) || { log "nodemailer failed"; tail -n 20 "$work/$key-r$r.log" >&2; exit 1; }
  record "$key" "$N" "bench-$key@example.test" "$start" "$baseline"
}

# (c) one curl process per message, one after another: connect, STARTTLS, AUTH, send, quit.
curl_each() {
  local i failed=0
  for ((i = 0; i < CURL_N; i++)); do
    curl -sS --max-time 30 --url "smtp://127.0.0.1:$SMTP_PORT" --ssl-reqd --cacert "$CA_FILE" \
      -K "$work/curl.cfg" --login-options AUTH=XOAUTH2 --sasl-ir \
      --mail-from "$MAILBOX" --mail-rcpt bench-curl@example.test -T "$work/message.eml" ||
      failed=$((failed + 1))
  done
  echo "failed=$failed"
  ((failed == 0))
}
run_curl() {
  local baseline start
  baseline="$(maildir_files)"
  start="$EPOCHREALTIME"
  measure curl curl_each
  ((RC == 0)) || { log "curl failed"; tail -n 20 "$work/curl.log" >&2; exit 1; }
  record curl "$CURL_N" bench-curl@example.test "$start" "$baseline"
}

# (d) the ceiling: the MTA alone, no TLS, no AUTH, the same message bytes.
run_ceiling() {
  local r="$1" baseline start
  baseline="$(maildir_files)"
  start="$EPOCHREALTIME"
  measure "ceiling-r$r" smtp-source -d -s "$CONNECTIONS" -m "$N" -F "$work/message.lf" \
    -f "$MAILBOX" -t bench-ceiling@example.test -M bench.localhost "127.0.0.1:$SMTP_PLAIN_PORT"
  ((RC == 0)) || { log "smtp-source failed"; tail -n 20 "$work/ceiling-r$r.log" >&2; exit 1; }
  record ceiling "$N" bench-ceiling@example.test "$start" "$baseline"
}

for ((round = 1; round <= ROUNDS; round++)); do
  run_mailroom "$round"
  if ((round == 1)); then
    # A message from the middle of mailroom's run: what the peers send.
    cp "$outboxes/r1/dump/$((N / 2)).eml" "$work/message.eml"
    tr -d '\r' <"$work/message.eml" >"$work/message.lf" # smtp-source -F adds the CRs itself
    MSG_BYTES="$(wc -c <"$work/message.eml")"
  fi
  run_nodemailer "$round" 0
  run_nodemailer "$round" 1
  run_ceiling "$round"
done
run_curl

# ------------------------------------------------------------------------------------------------
# the table

COMPOSED_BYTES="$(sed -n 's/.* bytes=\([0-9]*\).*/\1/p' "$work/nodemailer-compose-r1.log")"
DELIVERY_TABLE="$(
  summary mailroom "mailroom (mail_sender, 3 conns)"
  echo "MAILROOM_RATE=$MEDIAN_RATE" >"$work/rates"
  summary nodemailer "nodemailer pool (3 conns, raw)"
  echo "NODEMAILER_RATE=$MEDIAN_RATE" >>"$work/rates"
  summary nodemailer-compose "nodemailer pool (3, composing ${COMPOSED_BYTES}B)"
  echo "COMPOSE_RATE=$MEDIAN_RATE" >>"$work/rates"
  summary curl "curl, 1 process per message"
  summary ceiling "smtp-source (3 sess, no TLS/AUTH)"
  echo "CEILING_RATE=$MEDIAN_RATE" >>"$work/rates"
)"
# shellcheck disable=SC1091
source "$work/rates"
verdict() { if awk "BEGIN { exit !($1) }"; then echo met; else echo MISSED; fi; }
ratio="$(awk -v a="$MAILROOM_RATE" -v b="$NODEMAILER_RATE" 'BEGIN { printf "%.2f", a / b }')"
ratio_composed="$(awk -v a="$MAILROOM_RATE" -v b="$COMPOSE_RATE" 'BEGIN { printf "%.2f", a / b }')"
share="$(awk -v a="$MAILROOM_RATE" -v b="$CEILING_RATE" 'BEGIN { printf "%.0f", 100 * a / b }')"

cpu_model="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
fstype() { df --output=fstype "$1" | tail -n 1 | tr -d ' '; }
echo "mail delivery benchmark: $(nproc) cores ($cpu_model), everything on loopback"
echo "Postfix $(postconf -d -h mail_version 2>/dev/null) delivering to a Maildir on $(fstype "$work"), outboxes on $(fstype "$outboxes");"
echo "node $(node --version), nodemailer $(node -p 'require("./bench/node/node_modules/nodemailer/package.json").version'), $(curl --version | head -n 1 | cut -d' ' -f1-2), smtp-source"
echo "load average before the run (1/5/15 min): $LOAD_BEFORE"
echo
echo "(a) enqueue: $ENQUEUE_N rendered guest notifications (${ENQUEUE_BYTES} bytes each, rendering ${ENQUEUE_RENDER} us each, not included)"
echo "$ENQUEUE_TABLE"
echo
echo "(b)-(d) delivery into the testbed's Postfix of a $MSG_BYTES-byte message (mailroom's own: Chinese subject"
echo "and names, text+HTML); mailroom's N are queued first, then timed from the sender's start to its exit."
echo "msgs/s: accepted (250) per second of the sender's wall time, median of the runs, and its range;"
echo "in-Maildir/s: until the last one was in the Maildir; cpu: the sender process's user+sys per message;"
echo "machine: all cores' busy share meanwhile (everything: sender, Postfix, Dovecot, broker, others)."
echo "Every run delivered all its messages (Maildir, Delivered-To)."
printf '%-38s %5s %4s %7s %8s %11s %12s %10s %7s\n' sender N runs wall_s msgs/s range in-Maildir/s \
  cpu_ms/msg machine
echo "$DELIVERY_TABLE"
echo
echo "mailroom vs nodemailer pooled (raw): ${ratio}x    (target >= 3x)   $(verdict "$ratio >= 3")"
echo "  (vs nodemailer composing each message: ${ratio_composed}x)"
echo "mailroom vs ceiling (smtp-source):   ${share}%     (target >= 70%)  $(verdict "$share >= 70")"
echo "enqueue p99, durable, 1 thread:      ${ENQUEUE_P99} ms  (target < 5 ms)  $(verdict "$ENQUEUE_P99 < 5")"
finished=1
