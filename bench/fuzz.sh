#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers of outside input with clang's libFuzzer, ASan and
# UBSan: builds //tests/fuzz:NAME_fuzzer (the same NAME_fuzzer.cc the suite runs under gcc,
# see tests/fuzz/BUILD.bazel) in an output base of its own, runs it for SECONDS over a copy
# of its checked-in corpus (tests/fuzz/corpus/NAME/), and reports each target's executions,
# coverage and crashes. A crash input is kept under the work directory printed at the end:
# fix the bug, then add the input to the corpus (regress-*) and a regression test.
#
#   bench/fuzz.sh [TARGET|all] [SECONDS]     e.g. bench/fuzz.sh smtp_reply 600
#
# Needs clang and its sanitizer runtimes (tools/setup.sh installs them). Exits 1 if any
# target crashed.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

target="${1:-all}"
seconds="${2:-60}"
all_targets=(smtp_reply token_response email_address mime_message template text_config
  page_token ca_bundle)
if [[ "$target" == all ]]; then
  targets=("${all_targets[@]}")
else
  targets=("$target")
fi
output_base="${MAILROOM_FUZZ_OUTPUT_BASE:-${HOME}/.cache/mailroom-libfuzzer}"
bazel_fuzz() { bazel --output_base="$output_base" "$@"; }

labels=()
for name in "${targets[@]}"; do labels+=("//tests/fuzz:${name}_fuzzer"); done
work="$(mktemp -d /tmp/mailroom-fuzz.XXXXXX)"
echo "fuzz: building ${labels[*]} with clang (log: $work/build.log)"
# No convenience symlinks: they would point the workspace's bazel-* at this output base, and
# the ordinary build would then walk into it.
if ! bazel_fuzz build --config=libfuzzer --symlink_prefix=/ "${labels[@]}" >"$work/build.log" 2>&1; then
  grep -v 'Cannot export local symbol' "$work/build.log" | tail -30
  exit 2
fi
bin="$(bazel_fuzz info --config=libfuzzer bazel-bin 2>/dev/null)"

failed=0
printf '%-16s %-8s %-12s %-8s %-8s %s\n' target seconds executions cov corpus result
for name in "${targets[@]}"; do
  mkdir -p "$work/$name/corpus" "$work/$name/crashes"
  cp tests/fuzz/corpus/"$name"/* "$work/$name/corpus/"
  log="$work/$name/fuzz.log"
  set +e
  (cd "$work/$name/crashes" && "$bin/tests/fuzz/${name}_fuzzer" -max_total_time="$seconds" \
    -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/$name/crashes/" "$work/$name/corpus") >"$log" 2>&1
  rc=$?
  set -e
  executions="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  coverage="$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)"
  corpus="$(find "$work/$name/corpus" -type f | wc -l)"
  crashes="$(find "$work/$name/crashes" -type f | wc -l)"
  result=ok
  if ((rc != 0 || crashes > 0)); then
    result="CRASH (exit $rc): $(find "$work/$name/crashes" -type f | head -3 | tr '\n' ' ')"
    failed=1
  fi
  printf '%-16s %-8s %-12s %-8s %-8s %s\n' "$name" "$seconds" "${executions:-?}" \
    "${coverage:-?}" "$corpus" "$result"
done
echo "logs, grown corpora and crash inputs: $work"
# The second Bazel server holds memory; stop it (the next run starts it again).
bazel_fuzz shutdown
exit "$failed"
