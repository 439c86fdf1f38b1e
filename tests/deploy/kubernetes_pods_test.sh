#!/usr/bin/env bash
# The Kubernetes pod specs of deploy/kubernetes/base run against the real image (issue 14,
# item 3). There is no Kubernetes API server here; podman plays Pods, so each StatefulSet's
# rendered pod template (kubectl kustomize) is played as a Pod with `podman kube play`:
# its commands, arguments, env (the pod name through fieldRef), volume mounts, probes
# (mailroomctl health) and security contexts run as written. tests/deploy/pods_from_statefulsets.py
# replaces only what a cluster provides:
#   - volumes (the ConfigMap, the broker-key Secret, cert-manager's CSI certificates, the
#     persistent volume) by host directories filled as the cluster would: the ConfigMap's files
#     from deploy/kubernetes/base/config, the key 0440 root:10001 (a Secret with fsGroup), a
#     certificate per pod from deploy/gen-certs.sh with the pod's name as CN and the Services'
#     DNS names, a data directory owned by 10001;
#   - the Services' DNS names, resolved to 127.0.0.1 through hostAliases; all pods share one
#     network namespace, as Services would join them: hostNetwork, with podman run inside a
#     network namespace of the test's own (`ip netns exec`), so the manifests' fixed ports do
#     not meet the host's (podman refuses ns: networking for pods);
#   - the image: the one built from this invocation's binaries.
# The broker's StatefulSet has two replicas elected through etcd (components/etcd); only its
# first pod is played, and no etcd: members and brokers listen on fixed ports, which pods of
# one StatefulSet cannot share in one network namespace. So the broker stands by, as a broker
# that cannot reach etcd must, and its probes (mailroomctl --live health) pass all the same.
# What is checked of components/etcd here is its image (deploy/container/build.sh --etcd):
# Debian's etcd runs in it as uid 10001 on a read-only root, writing only /var/lib/etcd.
# Asserts that every pod runs, its readiness probe passes (run as podman exec of the probe's
# own command), podman's health check made from the livenessProbe passes, the process runs as
# 10001 with no capabilities, no new privileges and a read-only root, and the node took the
# pod's name.
#
# Run: bazel test //tests/deploy:kubernetes_pods_test --test_output=streamed
set -Eeuo pipefail

NAME=kubernetes_pods
# The pods are named as the StatefulSets' first pods, their containers <pod>-<container>.
PREFIX='mailroom-(broker|pan|psn|mnt)-0\b'
# shellcheck source=tests/deploy/container_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/container_lib.sh"
PODS_FROM_STATEFULSETS="$ROOT/tests/deploy/pods_from_statefulsets.py"
MANIFESTS="$ROOT/deploy/kubernetes/base"
NETNS=mrkp-net
ETCD_IMAGE=localhost/mailroom-etcd:test
LOCK=/run/lock/mailroom-container-tests.lock

W=""
PODS=()
declare -A CONTAINER # pod -> its container's name, as podman names it (<pod>-<container>)
declare -A PROBE     # pod -> its readiness probe's command

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  ((rc != 0)) && FAILED=1
  if ((FAILED)); then
    local pod
    for pod in "${PODS[@]}"; do
      printf '\n----- podman logs %s (last 30 lines) -----\n' "${CONTAINER[$pod]}"
      podman logs --tail 30 "${CONTAINER[$pod]}" 2>&1
    done
  fi
  cleanup_containers
  ip netns del "$NETNS" 2>/dev/null
  [[ -n "$W" ]] && rm -rf "$W"
  finish
}

# fill_volume POD VOLUME KIND ROLE: the host directory standing in for a pod's volume.
fill_volume() {
  local pod="$1" volume="$2" kind="$3" role="$4" dir="$W/volumes/$1/$2"
  mkdir -p "$dir"
  case "$kind" in
    configMap) # world-readable files, as the kubelet projects a ConfigMap
      cp "$MANIFESTS"/config/*.textproto "$dir/"
      chmod 0644 "$dir"/*
      ;;
    csi) # cert-manager's csi driver: ca.crt, tls.crt, tls.key (the key for fsGroup only)
      bash "$GEN_CERTS" "$W/certs" "$pod:$role:$SERVICE_NAMES" >/dev/null
      cp "$W/certs/ca.pem" "$dir/ca.crt"
      cp "$W/certs/$pod.pem" "$dir/tls.crt"
      cp "$W/certs/$pod.key" "$dir/tls.key"
      chown "0:$APP_UID" "$dir"/*
      chmod 0644 "$dir/ca.crt" "$dir/tls.crt"
      chmod 0440 "$dir/tls.key"
      ;;
    secret) # the broker's key: defaultMode 0400 with fsGroup becomes 0440 root:<fsGroup>
      head -c 32 /dev/urandom >"$dir/broker.key"
      chown "0:$APP_UID" "$dir/broker.key"
      chmod 0440 "$dir/broker.key"
      ;;
    persistentVolumeClaim)
      chown "$APP_UID:$APP_UID" "$dir"
      chmod 0700 "$dir"
      ;;
    *) die "$pod: volume $volume of kind $kind has no stand-in" ;;
  esac
}

# in_net COMMAND...: in the pods' network namespace, /sys left as it is (podman needs its
# cgroup mounts; `ip netns exec` remounts it). podman exec joins a hostNetwork container's
# network namespace from where it runs).
in_net() { nsenter --net="/run/netns/$NETNS" "$@"; }
# probe POD: its readiness probe's command, run in its container as the kubelet would.
probe() {
  local -a command
  read -r -a command <<<"${PROBE[$1]}"
  in_net podman exec "${CONTAINER[$1]}" "${command[@]}" >"$W/probe-$1.txt" 2>&1
}
running() { [[ "$(podman inspect --format '{{.State.Status}}' "${CONTAINER[$1]}" 2>/dev/null)" == running ]]; }

main() {
  preflight
  command -v kubectl >/dev/null || die "kubectl is not installed (run tools/setup.sh)"
  python3 -c 'import yaml' 2>/dev/null || die "python3-yaml is not installed (run tools/setup.sh)"
  exec 9>"$LOCK"
  flock -w 900 9 || die "another container test holds $LOCK"
  trap cleanup EXIT
  trap 'exit 1' INT TERM
  cleanup_containers # an aborted earlier run's
  ip netns del "$NETNS" 2>/dev/null || true
  W="$(mktemp -d /tmp/mrkp.XXXXXX)"
  chmod 755 "$W"
  mkdir -p "$W/etcd-data"

  build_test_image
  local etcd_started=$SECONDS
  bash "$BUILD_IMAGE" --etcd --tag "$ETCD_IMAGE" >"$W/etcd-image-build.log" 2>&1 ||
    { tail -n 30 "$W/etcd-image-build.log"; die "building the etcd image failed"; }
  say "image $ETCD_IMAGE built in $((SECONDS - etcd_started)) s"
  check "the etcd image runs Debian's etcd as 10001 on a read-only root" \
    bash -c "podman run --rm --network none --user 10001:10001 --read-only --cap-drop ALL \
      '$ETCD_IMAGE' --version | grep -q '^etcd Version: 3\.'"
  check "and writes its data under /var/lib/etcd (a volume in the pods)" \
    podman run --rm --network none --user 10001:10001 --read-only --cap-drop ALL \
      -v "$W/etcd-data:/var/lib/etcd:U" --entrypoint /bin/sh "$ETCD_IMAGE" -c 'touch /var/lib/etcd/x'

  # kustomize refuses symlinked inputs (the runfiles): render a real copy.
  cp -rL "$MANIFESTS" "$W/base"
  kubectl kustomize "$W/base" >"$W/rendered.yaml" || die "kubectl kustomize failed"
  python3 "$PODS_FROM_STATEFULSETS" "$W/rendered.yaml" "$W/pods" "$W/volumes" "$IMAGE" \
    >"$W/pods.txt" || die "turning the StatefulSets into Pods failed"

  # Every Service's cluster DNS name, in each pod's certificate (cert-manager's dns-names name
  # the role's Services; all of them here, as the pods answer for one another's in hostAliases).
  SERVICE_NAMES="$(cat "$W/pods/service-names")"
  local pod container volumes spec role
  while read -r pod container volumes; do
    PODS+=("$pod")
    role="${pod#mailroom-}"
    role="${role%-0}"
    for spec in $volumes; do fill_volume "$pod" "${spec%%=*}" "${spec#*=}" "$role"; done
    CONTAINER[$pod]="$pod-$container"
    mapfile -t probe_args <"$W/pods/$pod.probe"
    PROBE[$pod]="${probe_args[*]}"
  done <"$W/pods.txt"
  check "four StatefulSets played as pods (${PODS[*]})" test "${#PODS[@]}" -eq 4

  # One network namespace for all the pods (loopback only), as a cluster network would join
  # them: the manifests' fixed ports stay off the host's.
  ip netns add "$NETNS"
  ip -n "$NETNS" link set lo up

  for pod in "${PODS[@]}"; do
    START_MS[$pod]="$(now_ms)"
    in_net podman kube play "$W/pods/$pod.yaml" >"$W/play-$pod.log" 2>&1 ||
      { cat "$W/play-$pod.log"; die "podman kube play $pod failed"; }
  done
  ready_all 60 probe "podman kube play -> readiness probe passes" "${PODS[@]}"

  check "the broker pod stands by without etcd (health NOT_SERVING; --live passes it)" \
    grep -q 'localhost:7100: NOT_SERVING' "$W/probe-mailroom-broker-0.txt"
  local c pid port
  for port in 7100 7101 7102 7104; do # the manifests' containerPorts: broker, PAN, PSN, MnT
    check "port $port listens in the pods' network namespace" \
      bash -c "nsenter --net=/run/netns/$NETNS ss -Hltn 'sport = :$port' | grep -q ."
  done
  for pod in "${PODS[@]}"; do
    c="${CONTAINER[$pod]}"
    check "$pod: running" running "$pod"
    check "$pod: readiness probe passes: $(head -n 1 "$W/probe-$pod.txt")" probe "$pod"
    check "$pod: podman's health check from the livenessProbe is set and passes" \
      in_net podman healthcheck run "$c"
    check "$pod: runs as uid 10001 (runAsUser)" test "$(podman exec "$c" id -u)" = "$APP_UID"
    check "$pod: runs as gid 10001 (runAsGroup)" test "$(podman exec "$c" id -g)" = "$APP_UID"
    check "$pod: read-only root filesystem (readOnlyRootFilesystem)" \
      bash -c "! podman exec '$c' touch /usr/bin/x 2>/dev/null"
    check "$pod: the data volume is writable" podman exec "$c" touch /var/lib/mailroom/.probe
    pid="$(podman inspect --format '{{.State.Pid}}' "$c")"
    check "$pod: no capabilities (drop ALL)" grep -q -E '^CapEff:\s+0+$' "/proc/$pid/status"
    check "$pod: no new privileges (allowPrivilegeEscalation: false)" \
      grep -q -E '^NoNewPrivs:\s+1$' "/proc/$pid/status"
    check "$pod: the node took the pod's name (MAILROOM_NODE_NAME from fieldRef)" \
      bash -c "tr '\\0' '\\n' </proc/$pid/environ | grep -q -x 'MAILROOM_NODE_NAME=$pod'"
  done
}

main "$@"
