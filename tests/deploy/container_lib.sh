#!/usr/bin/env bash
# Shared by the tests that run the mailroom image with podman (container_cluster_test.sh,
# kubernetes_pods_test.sh); sourced, not run. Provides: where the runfiles are,
# tests/testing/check_lib.sh's say / die / check / wait_for, free_port, ready_all (start-to-ready
# times), the test image built from the binaries this Bazel invocation built
# (build_test_image), and removal of the containers and pods a run made (by name prefix: each
# test uses its own). Needs root and what tools/setup.sh installs.
#
# The caller sets PREFIX (its containers' and pods' name prefix, an extended regular
# expression) and NAME (for messages) before sourcing, and calls cleanup_containers from its
# EXIT trap.

# Variables here are for the tests that source this file; NAME and PREFIX are theirs.
# shellcheck disable=SC2034
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

if [[ -n "${TEST_SRCDIR:-}" ]]; then # under bazel test: everything is in the runfiles
  ROOT="$TEST_SRCDIR/${TEST_WORKSPACE:-mailroom}"
  BIN="$ROOT"
else
  ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)"
  BIN="$ROOT/bazel-bin"
fi
CTL_BIN="$BIN/cli/mailroomctl"
TESTBED="$ROOT/tests/e2e/testbed/testbed.sh"
GEN_CERTS="$ROOT/deploy/gen-certs.sh"
BUILD_IMAGE="$ROOT/deploy/container/build.sh"
# The image under test: this invocation's binaries on the Containerfile's prebuilt stage.
IMAGE=localhost/mailroom:test
# The unprivileged uid/gid of the image and the manifests.
APP_UID=10001

STARTED=$SECONDS
FAILED=0

# shellcheck source=tests/testing/check_lib.sh
source "$ROOT/tests/testing/check_lib.sh"
# A TCP port nobody listens on now (the kernel's choice).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# now_ms: wall-clock milliseconds.
now_ms() { date +%s%3N; }
# When each container or pod was started (now_ms), by name; ready_all measures from it.
declare -A START_MS
# ready_all SECONDS CHECK WHAT NAME...: polls `CHECK NAME` for every NAME until each passes and
# says how long each took from START_MS[NAME] ("NAME: WHAT in 1.234 s"); a failure for each
# that did not pass within SECONDS.
ready_all() {
  local seconds="$1" check_fn="$2" what="$3" name t_ms deadline=$((SECONDS + $1))
  shift 3
  local -a waiting=("$@") still
  while ((${#waiting[@]})) && ((SECONDS < deadline)); do
    still=()
    for name in "${waiting[@]}"; do
      if "$check_fn" "$name"; then
        t_ms=$(($(now_ms) - START_MS[$name]))
        say "$name: $what in $((t_ms / 1000)).$(printf '%03d' $((t_ms % 1000))) s"
      else
        still+=("$name")
      fi
    done
    waiting=("${still[@]}")
    ((${#waiting[@]})) && sleep 0.1
  done
  for name in "${waiting[@]}"; do check "$name: $what within $seconds s" false; done
  return 0
}

# Builds $IMAGE from the binaries in the runfiles (or bazel-bin): the Containerfile's prebuilt
# stage, so the image holds exactly the code under test. The first run on a machine also makes
# the Debian base and the runtime-library layer (minutes); later runs reuse podman's layer cache.
build_test_image() {
  local bins="$W/image-bin" started=$SECONDS
  mkdir -p "$bins"
  cp "$BIN/pan/broker/mailroom-broker" "$BIN/pan/mailroom-pan" "$BIN/psn/mailroom-psn" \
    "$BIN/mnt/mailroom-mnt" "$BIN/cli/mailroomctl" "$bins/" || die "the binaries are missing"
  bash "$BUILD_IMAGE" --binaries "$bins" --tag "$IMAGE" >"$W/image-build.log" 2>&1 ||
    { tail -n 30 "$W/image-build.log"; die "building the image failed"; }
  say "image $IMAGE built in $((SECONDS - started)) s ($(podman image inspect --format '{{.Size}}' "$IMAGE") bytes)"
}

# finish: the test's verdict, as its EXIT trap's last word.
finish() {
  if ((FAILED)); then
    say "FAILED"
    exit 1
  fi
  say "PASSED in $((SECONDS - STARTED))s"
  exit 0
}

# Removes every container and pod whose name starts with a match of $PREFIX (an extended
# regular expression; only this test makes such names).
cleanup_containers() {
  local pods containers
  mapfile -t pods < <(podman pod ps --format '{{.Name}}' 2>/dev/null | grep -E "^$PREFIX" || true)
  ((${#pods[@]})) && podman pod rm --force --time 5 "${pods[@]}" >/dev/null 2>&1
  mapfile -t containers < <(podman ps -a --format '{{.Names}}' 2>/dev/null | grep -E "^$PREFIX" || true)
  ((${#containers[@]})) && podman rm --force --time 5 "${containers[@]}" >/dev/null 2>&1
  return 0
}

# preflight: root, podman configured as tools/setup.sh does, the binaries present.
preflight() {
  [[ "$(id -u)" == 0 ]] || die "must run as root (podman, Postfix)"
  command -v podman >/dev/null || die "podman is not installed (run tools/setup.sh)"
  [[ "$(podman info --format '{{.Host.OCIRuntime.Name}}' 2>/dev/null)" == runc ]] ||
    die "podman does not use runc (run tools/setup.sh: it writes /etc/containers/containers.conf.d/50-mailroom.conf)"
  [[ -x "$CTL_BIN" ]] || die "$CTL_BIN is missing"
}
