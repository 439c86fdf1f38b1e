#!/usr/bin/env bash
# Assertions and polling for the shell tests; sourced, not run. Provides say (a line prefixed
# with the test's NAME and the seconds since STARTED), die (FATAL, FAILED=1, exit 1), check (an
# assertion: the run goes on and FAILED=1 fails the test at the end) and wait_for (polling).
# The sourcing test sets NAME, STARTED=$SECONDS and FAILED=0, and turns FAILED into its verdict.
# shellcheck disable=SC2034  # FAILED is the sourcing test's

say() { printf '%s: [%3ds] %s\n' "$NAME" "$((SECONDS - STARTED))" "$*"; }
die() {
  say "FATAL: $*"
  FAILED=1
  exit 1
}
# check DESCRIPTION COMMAND...: a test assertion; the run goes on, the test fails at the end.
check() {
  local what="$1"
  shift
  if "$@"; then
    say "  ok   $what"
  else
    say "  FAIL $what"
    FAILED=1
  fi
}
# wait_for SECONDS COMMAND...: poll every 0.2 s until COMMAND succeeds.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  while ((SECONDS < deadline)); do
    "$@" && return 0
    sleep 0.2
  done
  return 1
}
