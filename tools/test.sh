#!/usr/bin/env bash
# Installs what is missing, builds everything and runs every test: unit tests, and the
# integration and end-to-end tests that start real peers (an OAuth server, Postfix, Dovecot).
# Ends with "N passed, N failed" counted from Bazel's per-test XML results.
#
#   tools/test.sh [extra bazel test arguments]
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

bash tools/setup.sh

set +e
bazel test //... "$@"
bazel_rc=$?
set -e

# Count test cases from each test target's XML, so the figure is cases, not targets. A
# target without XML (it failed to build) counts as one failure.
passed=0
failed=0
testlogs="$(bazel info bazel-testlogs 2>/dev/null)"
while read -r target; do
  [[ -z "$target" ]] && continue
  xml="$testlogs/$(echo "${target#//}" | tr ':' '/')/test.xml"
  if [[ ! -f "$xml" ]]; then
    failed=$((failed + 1))
    continue
  fi
  read -r tests failures errors < <(
    grep -o -m1 '<testsuites[^>]*>\|<testsuite [^>]*>' "$xml" | head -1 |
      awk '{ t = f = e = 0
             if (match($0, /tests="[0-9]+"/)) t = substr($0, RSTART + 7, RLENGTH - 8)
             if (match($0, /failures="[0-9]+"/)) f = substr($0, RSTART + 10, RLENGTH - 11)
             if (match($0, /errors="[0-9]+"/)) e = substr($0, RSTART + 8, RLENGTH - 9)
             print t, f, e }')
  bad=$((failures + errors))
  ((bad > tests)) && bad=$tests
  passed=$((passed + tests - bad))
  failed=$((failed + bad))
done < <(bazel query 'tests(//...)' 2>/dev/null)

if ((bazel_rc != 0 && failed == 0)); then
  failed=1  # bazel failed for a reason no XML shows (build or analysis error)
fi
echo "${passed} passed, ${failed} failed"
exit $((bazel_rc != 0 ? bazel_rc : (failed > 0)))
