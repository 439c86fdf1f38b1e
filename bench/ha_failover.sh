#!/usr/bin/env bash
# Benchmark of broker failover (issue 12), counted at the MTA, on this machine (everything on
# loopback and real: a three-member etcd, two elected mailroom-broker processes with a 3 s lease
# TTL, two mailroom-psn processes naming both, the testbed's Postfix with the MtaMeter policy
# service; Exchange's limits of the issue's measurement, 120 messages a minute, 3 connections):
#   (a) BENCH_KILLS (default 20) kill -9s of the leading broker, each once the other stood by
#       again, while BENCH_REQUESTS (default 300) registrations go through the PSNs: the
#       distribution of takeover times (min/p50/p90/max), then what the MTA counted;
#   (b) the issue's measurement, BENCH_PSN_RUNS (default 10) times: 200 registrations through
#       two PSNs, one PSN killed with kill -9 three seconds after the burst was acknowledged
#       (started again 10 s later): the most the MTA saw in a rolling 60 s, each run.
# Both run //tests/e2e:broker_ha_bench_test (tagged manual), which also fails on a lost message
# or a violation at the MTA. (a) takes about 5 minutes, each run of (b) about 3.
#
#   bash bench/ha_failover.sh [a|b]     (as root, after tools/setup.sh; both when not named)
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

KILLS="${BENCH_KILLS:-20}"
REQUESTS="${BENCH_REQUESTS:-300}"
PSN_RUNS="${BENCH_PSN_RUNS:-10}"
WHAT="${1:-ab}"
log() { printf 'ha_failover bench: %s\n' "$*" >&2; }
[[ "$(id -u)" == 0 ]] || { log "must run as root (the testbed runs Postfix)"; exit 1; }

out="$(mktemp -d /tmp/ha_failover.XXXXXX)"  # bazel's output of each part, kept
run() { # run FILTER RUNS LOG [bazel args...]
  local filter="$1" runs="$2" logfile="$3"
  shift 3
  bazel test //tests/e2e:broker_ha_bench_test --test_filter="$filter" \
    --runs_per_test="$runs" --test_output=all --nocache_test_results \
    --test_env=BENCH_KILLS="$KILLS" --test_env=BENCH_REQUESTS="$REQUESTS" "$@" \
    >"$logfile" 2>&1 || log "a run failed (figures below; bazel's output: $logfile)"
}

if [[ "$WHAT" == *a* ]]; then
  log "(a) $KILLS kill -9s of the leading broker during $REQUESTS registrations"
  run 'BrokerHaBench.TakeoverTimes' 1 "$out/a.log"
  grep -E '^kill [0-9]+:' "$out/a.log" || true
  echo "(a) $(grep -E '^takeover after kill -9' "$out/a.log" || echo 'no figures: see above')"
  grep -E '^\[  (FAILED|PASSED)' "$out/a.log" | head -2 || true
fi
if [[ "$WHAT" == *b* ]]; then
  log "(b) the issue's PSN kill, $PSN_RUNS runs"
  run 'BrokerHaBench.PsnKill' "$PSN_RUNS" "$out/b.log"
  n=0
  while IFS= read -r line; do
    n=$((n + 1))
    most="$(sed -E 's/.*most in any rolling 60 s = ([0-9]+).*/\1/' <<<"$line")"
    sessions="$(sed -E 's/.*most sessions at once = ([0-9]+).*/\1/' <<<"$line")"
    lost="$(sed -E 's/.* ([0-9]+) lost,.*/\1/' <<<"$line")"
    echo "(b) run $n: most in a rolling 60 s at the MTA = $most (limit 120), sessions at once = $sessions (limit 3), lost = $lost"
  done < <(grep -E '^200 registrations via psn1 and psn2' "$out/b.log")
  [[ "$n" == "$PSN_RUNS" ]] || log "(b) $n of $PSN_RUNS runs printed figures (bazel's output: $out/b.log)"
fi
log "bazel's output: $out"
