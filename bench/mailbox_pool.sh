#!/usr/bin/env bash
# Benchmark of the mailbox pool (issue 13): k mailboxes give k times one mailbox's rate with no
# violation, k = 1, 2, 4, counted at the MTA, on this machine (everything real and on loopback:
# the testbed, a mailroom-broker, a mailroom-psn and a mailroom-mnt; see
# tests/e2e/mailbox_pool_bench_test.cc for the set-up). A route only fails over to its next
# mailbox after a 5.2.0 pause and never spreads load over its mailboxes, so k mailboxes carry k
# purposes, each on its own mailbox. Each mailbox is limited to BENCH_PER_MINUTE (default 60)
# messages a minute, each run measures BENCH_SECONDS (default 120) of sending with every mailbox
# backlogged; rate = messages a minute at the MTA per mailbox; violation = a rolling 60 s over a
# mailbox's limit. About 9 minutes.
#
#   bash bench/mailbox_pool.sh          (as root, after tools/setup.sh)
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

PER_MINUTE="${BENCH_PER_MINUTE:-60}"
SECONDS_RUN="${BENCH_SECONDS:-120}"
log() { printf 'mailbox_pool bench: %s\n' "$*" >&2; }
[[ "$(id -u)" == 0 ]] || { log "must run as root (the testbed runs Postfix)"; exit 1; }

out="$(mktemp /tmp/mailbox_pool_bench.XXXXXX.log)" # bazel's output, kept
bazel test //tests/e2e:mailbox_pool_bench_test --test_output=all --nocache_test_results \
  --test_env=BENCH_PER_MINUTE="$PER_MINUTE" --test_env=BENCH_SECONDS="$SECONDS_RUN" \
  >"$out" 2>&1 || log "the run failed (figures below; bazel's output: $out)"

echo "mailbox pool benchmark ($(nproc) cores, everything on one machine): ${PER_MINUTE}/min per mailbox, ${SECONDS_RUN} s a run"
printf '%-3s %-14s %-9s %-11s %s\n' k total_per_min ratio violations per_mailbox
base=""
while IFS= read -r line; do
  k="$(sed -E 's/^k=([0-9]+) .*/\1/' <<<"$line")"
  total="$(sed -E 's/.* total_per_minute=([0-9.]+) .*/\1/' <<<"$line")"
  violations="$(sed -E 's/.* violations=([0-9]+) .*/\1/' <<<"$line")"
  mailboxes="$(grep -oE '[a-z0-9]+@example\.test=[^ ]+' <<<"$line" | tr '\n' ' ')"
  [[ -n "$base" ]] || base="$total"
  printf '%-3s %-14s %-9s %-11s %s\n' "$k" "$total" \
    "$(awk -v t="$total" -v b="$base" 'BEGIN { printf "%.2f", t / b }')" "$violations" "$mailboxes"
done < <(grep -E '^k=[0-9]+ total_per_minute=' "$out")
grep -E '^\[  (FAILED|PASSED)' "$out" | head -2 || true
log "bazel's output: $out"
