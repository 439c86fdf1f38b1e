#!/usr/bin/env bash
# The layering the build promises, checked with `bazel query` over the real BUILD files:
#   - common/ (and the protos) depend on no role;
#   - no role depends on another role (psn, mnt, cli, the PAN's reminders);
#   - only the broker itself reaches //pan/broker: the client secret's code is linked into
#     the broker binary and nothing else.
# Visibility in the BUILD files enforces the same at build time; this test says which edge
# broke and keeps the rule from being loosened by a visibility change alone.
set -euo pipefail

# The workspace is where the WORKSPACE runfile really lives (the test runs tagged "local").
workspace="$(dirname "$(readlink -f "${TEST_SRCDIR}/mailroom/WORKSPACE")")"
output_base="${TEST_TMPDIR}/bazel_output_base"
query() {
  # Its own output base: the Bazel running this test holds the workspace's server.
  (cd "$workspace" && bazel --output_base="$output_base" --batch query --noshow_progress \
    --keep_going "$1" 2>/dev/null) || true
}

roles=(//pan/broker/... //pan:all //psn/... //mnt/... //cli/...)
union() { local IFS='+'; echo "$*"; }
failures=0
forbid() {
  local description="$1" expression="$2" found
  found="$(query "$expression")"
  if [[ -n "$found" ]]; then
    echo "FORBIDDEN: ${description}:"
    sed 's/^/  /' <<<"$found"
    failures=$((failures + 1))
  else
    echo "ok: ${description}"
  fi
}

# The query itself must work, or every check below would pass on empty output.
if [[ -z "$(query '//common/base:clock')" ]]; then
  echo "bazel query does not run in ${workspace}" >&2
  exit 1
fi

forbid "common/ depends on a role" \
  "deps(//common/... + //proto/...) intersect ($(union "${roles[@]}"))"
for role in "${roles[@]}"; do
  others=()
  for other in "${roles[@]}"; do [[ "$other" != "$role" ]] && others+=("$other"); done
  # The broker may use nothing of the PAN's reminders either; the PAN may not use the broker.
  forbid "${role} depends on another role" \
    "deps(${role}) intersect ($(union "${others[@]}"))"
done

exit $((failures > 0))
