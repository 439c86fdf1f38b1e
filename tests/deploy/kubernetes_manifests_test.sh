#!/usr/bin/env bash
# The Kubernetes manifests, offline: the example overlay renders with kustomize (kubectl's
# built-in), sources and output pass yamllint, and the render has what the deployment
# promises: a two-replica broker StatefulSet with its key from a Secret, elected through the
# three etcd members of components/etcd (issue 12), PAN and MnT as single instances naming both
# brokers, PSNs scaled by an HPA, every role's data on a persistent volume, health probes
# everywhere, and NetworkPolicies that let only role pods reach the broker and only brokers
# reach etcd.
set -euo pipefail
root="$TEST_SRCDIR/$TEST_WORKSPACE/deploy/kubernetes"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

command -v kubectl >/dev/null || { echo "kubectl is missing: run tools/setup.sh"; exit 1; }
command -v yamllint >/dev/null || { echo "yamllint is missing: run tools/setup.sh"; exit 1; }

# kustomize refuses symlinked inputs outside the root: render a real copy.
cp -rL "$root" "$work/kubernetes"
kubectl kustomize "$work/kubernetes/overlays/example" >"$work/rendered.yaml"
echo "rendered $(grep -c '^kind:' "$work/rendered.yaml") objects"

yamllint -c "$work/kubernetes/.yamllint" "$work/kubernetes" || fail "yamllint: sources"
yamllint -d "{extends: default, rules: {line-length: disable, indentation: {indent-sequences: whatever}, document-start: disable}}" \
  "$work/rendered.yaml" || fail "yamllint: rendered output"

# Split the render into one file per object for the checks below.
mkdir "$work/objects"
awk -v dir="$work/objects" '/^---$/ {n++; next} {print > (dir "/" n ".yaml")}' "$work/rendered.yaml"
object() {  # object KIND NAME -> path of that object's file (nothing when there is none)
  grep -l -x "kind: $1" "$work"/objects/*.yaml | xargs -r grep -l -x "  name: $2" | head -1 || true
}

for role in broker pan psn mnt; do
  f="$(object StatefulSet "mailroom-$role")"
  [[ -n "$f" ]] || { fail "no StatefulSet mailroom-$role"; continue; }
  grep -q 'volumeClaimTemplates:' "$f" || fail "$role: no persistent volume for its state"
  grep -q 'readinessProbe:' "$f" || fail "$role: no readiness probe"
  grep -q 'livenessProbe:' "$f" || fail "$role: no liveness probe"
  grep -q "probe-$role.textproto" "$f" || fail "$role: probe does not check its own health service"
  grep -q 'image: registry.example.internal/mailroom:0.1.0' "$f" || fail "$role: overlay image not applied"
  grep -q 'urn:mailroom:role:'"$role" "$f" || fail "$role: certificate does not carry its role"
  grep -q 'readOnlyRootFilesystem: true' "$f" || fail "$role: root filesystem writable"
  [[ -n "$(object Service "mailroom-$role")" ]] || fail "$role: no Service"
done
for single in pan mnt; do
  grep -q '^  replicas: 1$' "$(object StatefulSet "mailroom-$single")" || fail "$single must be a single instance"
done
broker="$(object StatefulSet mailroom-broker)"
grep -q '^  replicas: 2$' "$broker" || fail "broker: two replicas (primary and secondary PAN)"
# A standby answers health NOT_SERVING by design: its probes must not restart it or hold a
# rollout back.
[[ "$(grep -c -- '- --live$' "$broker")" == 2 ]] || fail "broker: probes without --live"
grep -q 'name: etcd-tls' "$broker" || fail "broker: no client certificate for etcd"
pdb="$(object PodDisruptionBudget mailroom-broker)"
[[ -n "$pdb" ]] && grep -q 'maxUnavailable: 1' "$pdb" || fail "broker: no PodDisruptionBudget of one"
etcd="$(object StatefulSet mailroom-etcd)"
if [[ -z "$etcd" ]]; then
  fail "no StatefulSet mailroom-etcd (components/etcd)"
else
  grep -q '^  replicas: 3$' "$etcd" || fail "etcd: three members"
  grep -q 'image: registry.example.internal/mailroom-etcd:0.1.0' "$etcd" || fail "etcd: overlay image not applied"
  grep -q 'volumeClaimTemplates:' "$etcd" || fail "etcd: no persistent volume"
  grep -q 'readOnlyRootFilesystem: true' "$etcd" || fail "etcd: root filesystem writable"
  for setting in ETCD_CLIENT_CERT_AUTH ETCD_PEER_CLIENT_CERT_AUTH; do
    grep -A1 "name: $setting" "$etcd" | grep -q 'value: "true"' || fail "etcd: $setting not true"
  done
  grep -q 'http://0.0.0.0' "$etcd" && fail "etcd: plain http beyond loopback"
  for i in 0 1 2; do
    grep -q "mailroom-etcd-$i=https://mailroom-etcd-$i.mailroom-etcd.mailroom.svc:2380" "$etcd" ||
      fail "etcd: initial cluster lacks member $i"
  done
  grep -q 'publishNotReadyAddresses: true' "$(object Service mailroom-etcd)" ||
    fail "etcd: members cannot find one another before they are ready"
  policy="$(object NetworkPolicy mailroom-etcd-ingress)"
  [[ -n "$policy" ]] || fail "no NetworkPolicy for etcd"
  grep -q -- '- portal\|role: psn' "$policy" && fail "etcd reachable by others than brokers"
fi
config="$(object ConfigMap 'mailroom-config-[a-z0-9]*')"
for i in 0 1 2; do
  grep -q "https://mailroom-etcd-$i.mailroom-etcd.mailroom.svc:2379" "$config" ||
    fail "broker.textproto does not name etcd member $i"
done
grep -q 'advertised_address: \"{node_name}.mailroom-broker-pods.mailroom.svc:7100\"' "$config" ||
  fail "broker.textproto: each pod must advertise its own name"
[[ "$(grep -c 'mailroom-broker-1.mailroom-broker-pods.mailroom.svc:7100' "$config")" == 3 ]] ||
  fail "the PAN, PSN and MnT configs must name both brokers"
grep -q 'secretName: mailroom-broker-key' "$broker" || fail "broker key not from a Secret"
grep -q 'secretName: mailroom-broker-key' "$(object StatefulSet mailroom-psn)" && fail "a PSN mounts the broker key"
# The kubelet mounts the key Secret 0440 root:<fsGroup>; the broker accepts group read only for
# its own group, so fsGroup must equal runAsGroup (issue 10, M6), and the mode must be 0400.
fs_group="$(grep -o 'fsGroup: [0-9]*' "$broker" | head -1 | cut -d' ' -f2)"
run_group="$(grep -o 'runAsGroup: [0-9]*' "$broker" | head -1 | cut -d' ' -f2)"
[[ -z "$fs_group" || "$fs_group" == "$run_group" ]] ||
  fail "broker: fsGroup ($fs_group) differs from runAsGroup ($run_group): the key would be refused"
grep -B2 -A2 'secretName: mailroom-broker-key' "$broker" | grep -Eq 'defaultMode: (0400|256)$' ||
  fail "broker key Secret must be mounted with defaultMode 0400"
hpa="$(object HorizontalPodAutoscaler mailroom-psn)"
[[ -n "$hpa" ]] || fail "no HPA for the PSNs"
grep -q 'minReplicas: 4' "$hpa" || fail "overlay patch of the HPA not applied"
grep -A3 'scaleTargetRef:' "$hpa" | grep -q 'name: mailroom-psn' || fail "HPA does not target the PSNs"
policy="$(object NetworkPolicy mailroom-broker-ingress)"
[[ -n "$policy" ]] || fail "no NetworkPolicy for the broker"
grep -q 'mailroom.io/role: broker' "$policy" || fail "broker policy selects the wrong pods"
grep -q -- '- portal' "$policy" && fail "portals may reach the broker"
((failures == 0)) || exit 1
echo "kubernetes manifests passed"
