#!/usr/bin/env bash
# Installs what is missing, builds everything and runs every test: unit tests, and the
# integration and end-to-end tests that start real peers (an OAuth server, Postfix, Dovecot).
# Ends with "N passed, N failed" (", N skipped" when a case was skipped) counted from
# Bazel's own per-target results and XML; see tools/count_tests.py.
#
#   tools/test.sh [extra bazel test arguments]
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

bash tools/setup.sh

bep="$(mktemp --tmpdir mailroom-bep.XXXXXX.json)"
trap 'rm -f "$bep"' EXIT

set +e
bazel test //... --build_event_json_file="$bep" "$@"
bazel_rc=$?
set -e

# Count test cases from this invocation's own results (Bazel's per-target status and the
# test.xml each run wrote), so the figure is cases, not targets, and a crashed, timed-out,
# unbuilt or skipped target cannot pass for a success. Rules: tools/count_tests.py.
python3 tools/count_tests.py "$bep" "$bazel_rc"
