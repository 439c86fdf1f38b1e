#!/usr/bin/env bash
# The whole cluster from the container image (issue 14, item 2).
#
# Builds localhost/mailroom:test from this invocation's binaries (deploy/container/build.sh
# --binaries: the Containerfile's prebuilt stage), starts the testbed on the host (oidc-provider
# as Entra ID, Postfix + Dovecot as Exchange Online), then runs the broker, the PAN, one PSN and
# the MnT as podman containers from the image, each as the manifests declare it: uid/gid 10001,
# read-only root filesystem (no tmpfs either), only its state directory writable, its TLS
# material and config mounted read-only, no capabilities, no privilege escalation, host network.
# mailroomctl runs from the image too. Asserts:
#   - every node answers gRPC health SERVING (mailroomctl health from the image), and how long
#     each container took from `podman run` to SERVING;
#   - Test Connection passes and saves (settings set), its message arrives in the Maildir;
#   - a guest registration on the PSN is delivered into the Maildir;
#   - the root filesystem is read-only and the state directory is writable, inside a container;
#   - the client secret is in no container's environment or command line (podman inspect, and
#     /proc of the running processes) and in no container's log;
#   - the broker's key file mounted as a Kubernetes Secret is (0440 root:10001) is accepted, and
#     the broker refuses to start when the key file is readable by another group.
#
# Run: bazel test //tests/deploy:container_cluster_test --test_output=streamed
#  or: bazel build //pan/broker:mailroom-broker //pan:mailroom-pan //psn:mailroom-psn \
#        //mnt:mailroom-mnt //cli:mailroomctl && bash tests/deploy/container_cluster_test.sh
set -Eeuo pipefail

NAME=container_cluster
PREFIX=mrct-
# shellcheck source=tests/deploy/container_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/container_lib.sh"

W=""
LOCK=/run/lock/mailroom-container-tests.lock
NODES=(broker pan1 psn1 mnt1)

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  ((rc != 0)) && FAILED=1
  if ((FAILED)) && [[ -n "$W" ]]; then
    local node
    for node in "${NODES[@]}" broker-badkey; do
      printf '\n----- podman logs %s%s (last 30 lines) -----\n' "$PREFIX" "$node"
      podman logs --tail 30 "$PREFIX$node" 2>&1
    done
  fi
  cleanup_containers
  [[ -n "$W" && -f "$W/tb/.testbed.conf" ]] && bash "$TESTBED" stop "$W/tb" >/dev/null 2>&1
  [[ -n "$W" ]] && rm -rf "$W"
  finish
}

# run_node NODE ROLE_BINARY [EXTRA_PODMAN_ARGS...]: a node's container, as the manifests run it.
run_node() {
  local node="$1" program="$2"
  shift 2
  podman run -d --name "$PREFIX$node" --network host \
    --user "$APP_UID:$APP_UID" --read-only --read-only-tmpfs=false \
    --cap-drop ALL --security-opt no-new-privileges \
    -v "$W/$node/data:/var/lib/mailroom" \
    -v "$W/$node/etc:/etc/mailroom:ro" \
    -v "$W/certs/$node:/var/run/mailroom/tls:ro" \
    "$@" "$IMAGE" "/usr/bin/$program" --config="/etc/mailroom/$node.textproto" >/dev/null
}

# ctl ARGS...: mailroomctl from the image, as the admin (its certificate mounted read-only).
ctl() {
  podman run --rm -i --network host --user "$APP_UID:$APP_UID" --read-only --cap-drop ALL \
    -v "$W/certs/admin:/var/run/mailroom/tls:ro" -v "$W/admin:/etc/mailroom:ro" \
    "${CTL_MOUNTS[@]}" "$IMAGE" /usr/bin/mailroomctl --config=/etc/mailroom/admin.textproto "$@"
}
CTL_MOUNTS=()

# serving PORT: this node answers gRPC health SERVING (the host's mailroomctl, to time starts).
serving() {
  "$CTL_BIN" --config="$W/probe-$1.textproto" health >/dev/null 2>&1
}

arrived() { # arrived RECIPIENT: number of messages delivered to it
  grep -l -s -F -x "Delivered-To: $1" "$MAILDIR"/new/* 2>/dev/null | wc -l
}
arrived_at_least() { (($(arrived "$1") >= $2)); }

# node_config NODE ROLE PORT SECTION: a node's config as the ConfigMap's, with host ports.
node_config() {
  local node="$1" role="$2" port="$3" section="$4"
  mkdir -p "$W/$node/etc" "$W/$node/data"
  chown "$APP_UID:$APP_UID" "$W/$node/data"
  chmod 0700 "$W/$node/data"
  {
    echo "node_name: \"$node\""
    echo "role: $role"
    echo "listen_address: \"127.0.0.1:$port\""
    echo 'tls { ca_file: "/var/run/mailroom/tls/ca.pem" cert_file: "/var/run/mailroom/tls/node.pem" key_file: "/var/run/mailroom/tls/node.key" }'
    echo 'data_dir: "/var/lib/mailroom"'
    echo 'logging { default_level: LOG_LEVEL_INFO }'
    [[ "$role" != ROLE_BROKER ]] && echo "broker_target: \"localhost:${PORTS[broker]}\""
    [[ "$role" != ROLE_MNT ]] && echo "mnt_target: \"localhost:${PORTS[mnt1]}\""
    echo "$section"
  } >"$W/$node/etc/$node.textproto"
  # The host's probe of this node (timing only; the assertions use the image's mailroomctl).
  local target=broker_target
  case "$role" in
    ROLE_PAN) target=pan_target ;;
    ROLE_PSN) target=psn_targets ;;
    ROLE_MNT) target=mnt_target ;;
  esac
  cat >"$W/probe-$node.textproto" <<EOF
tls { ca_file: "$W/certs/ca.pem" cert_file: "$W/certs/admin.pem" key_file: "$W/certs/admin.key" }
$target: "localhost:$port"
rpc_timeout { seconds: 2 }
EOF
}

# certs_for NODE: the node's TLS directory as a kubelet would mount it: its certificate, its key
# readable by the service user only, and the CA.
certs_for() {
  local node="$1"
  mkdir -p "$W/certs/$node"
  cp "$W/certs/ca.pem" "$W/certs/$node/ca.pem"
  cp "$W/certs/$node.pem" "$W/certs/$node/node.pem"
  cp "$W/certs/$node.key" "$W/certs/$node/node.key"
  cp "$W/certs/$node.pem" "$W/certs/$node/$node.pem" # mailroomctl's admin config names these
  cp "$W/certs/$node.key" "$W/certs/$node/$node.key"
  chown -R "$APP_UID:$APP_UID" "$W/certs/$node"
  chmod 0600 "$W/certs/$node/"*.key
}

main() {
  preflight
  exec 9>"$LOCK"
  flock -w 900 9 || die "another container test holds $LOCK"
  trap cleanup EXIT
  trap 'exit 1' INT TERM
  cleanup_containers # an aborted earlier run's
  W="$(mktemp -d /tmp/mrct.XXXXXX)" # short: the testbed's Dovecot sockets live under it
  chmod 755 "$W"

  build_test_image

  bash "$TESTBED" start "$W/tb" 2>"$W/testbed-start.log" 9>&- ||
    { cat "$W/testbed-start.log"; die "the testbed did not start"; }
  # shellcheck disable=SC1091
  source "$W/tb/testbed.env"
  say "testbed up: SMTP 127.0.0.1:$SMTP_PORT, token endpoint $TOKEN_URL_BASE"

  declare -gA PORTS
  local node
  for node in "${NODES[@]}"; do PORTS[$node]="$(free_port)"; done
  bash "$GEN_CERTS" "$W/certs" broker:broker pan1:pan psn1:psn mnt1:mnt admin:admin >/dev/null
  for node in "${NODES[@]}" admin; do certs_for "$node"; done

  node_config broker ROLE_BROKER "${PORTS[broker]}" \
    "broker { default_authority_host: \"$TOKEN_URL_BASE\" key_file: \"/var/run/mailroom/broker-key/broker.key\" }"
  node_config pan1 ROLE_PAN "${PORTS[pan1]}" \
    "pan { reminder_settings { from { address: \"$MAILBOX\" } } }"
  node_config psn1 ROLE_PSN "${PORTS[psn1]}" \
    "psn { guest_email_settings { notifications_enabled: true default_from { address: \"$MAILBOX\" display_name: \"Guest Access\" } } }"
  node_config mnt1 ROLE_MNT "${PORTS[mnt1]}" \
    "mnt { alarm_settings { sender { address: \"$MAILBOX\" } admin_recipients { address: \"admin@example.test\" } } }"
  mkdir -p "$W/admin"
  cat >"$W/admin/admin.textproto" <<EOF
tls { ca_file: "/var/run/mailroom/tls/ca.pem" cert_file: "/var/run/mailroom/tls/admin.pem" key_file: "/var/run/mailroom/tls/admin.key" }
broker_target: "localhost:${PORTS[broker]}"
pan_target: "localhost:${PORTS[pan1]}"
psn_targets: "localhost:${PORTS[psn1]}"
mnt_target: "localhost:${PORTS[mnt1]}"
EOF

  # The broker's key as a Kubernetes Secret with fsGroup mounts it: 0440 root:10001.
  mkdir -p "$W/broker-key" "$W/bad-key"
  head -c 32 /dev/urandom >"$W/broker-key/broker.key"
  chown "0:$APP_UID" "$W/broker-key/broker.key"
  chmod 0440 "$W/broker-key/broker.key"
  # ... and one the broker's user owns and can read, but so can another group (root's).
  cp "$W/broker-key/broker.key" "$W/bad-key/broker.key"
  chown "$APP_UID:0" "$W/bad-key/broker.key"
  chmod 0640 "$W/bad-key/broker.key"

  # ---------------------------------------------------------------- the key file check
  mkdir -p "$W/broker-badkey/data"
  chown "$APP_UID:$APP_UID" "$W/broker-badkey/data"
  podman run --name "${PREFIX}broker-badkey" --network host --user "$APP_UID:$APP_UID" \
    --read-only --read-only-tmpfs=false --cap-drop ALL \
    -v "$W/broker-badkey/data:/var/lib/mailroom" -v "$W/broker/etc:/etc/mailroom:ro" \
    -v "$W/certs/broker:/var/run/mailroom/tls:ro" -v "$W/bad-key:/var/run/mailroom/broker-key:ro" \
    "$IMAGE" /usr/bin/mailroom-broker --config=/etc/mailroom/broker.textproto \
    >"$W/badkey.log" 2>&1 && badkey_rc=0 || badkey_rc=$?
  say "broker with its key file readable by group root too: exit $badkey_rc: $(grep -m1 -o 'key file .*refusing to use it' "$W/badkey.log" || tail -n 1 "$W/badkey.log")"
  check "the broker refuses to start when its key file is readable by another group (exit != 0)" test "$badkey_rc" -ne 0
  check "... and says why (mode 0640, refusing)" grep -q "has mode 0640.*refusing to use it" "$W/badkey.log"

  # ---------------------------------------------------------------- the cluster
  local t0
  START_MS[broker]="$(now_ms)"
  # The testbed CA the SMTP settings name (the broker reads it at Test Connection), at its path.
  run_node broker mailroom-broker -v "$W/broker-key:/var/run/mailroom/broker-key:ro" \
    -v "$CA_FILE:$CA_FILE:ro"
  START_MS[mnt1]="$(now_ms)"
  run_node mnt1 mailroom-mnt
  START_MS[pan1]="$(now_ms)"
  run_node pan1 mailroom-pan
  START_MS[psn1]="$(now_ms)"
  run_node psn1 mailroom-psn
  ready_all 60 serving "podman run -> health SERVING" "${NODES[@]}"

  # mailroomctl health, from the image: every node SERVING.
  ctl health >"$W/health.txt" 2>&1 && health_rc=0 || health_rc=$?
  sed 's/^/    /' "$W/health.txt"
  check "mailroomctl health (from the image) exits 0" test "$health_rc" -eq 0
  for node in "${NODES[@]}"; do
    check "mailroomctl health reports $node SERVING" grep -q "localhost:${PORTS[$node]}.*SERVING" "$W/health.txt"
  done
  check "no node reports anything but SERVING" bash -c "! grep -q NOT_SERVING '$W/health.txt'"

  # ---------------------------------------------------------------- inside a container
  check "the root filesystem is read-only (touch /usr/bin/x fails in the broker's container)" \
    bash -c "! podman exec ${PREFIX}broker touch /usr/bin/x 2>/dev/null"
  check "/tmp is not writable either (no tmpfs)" bash -c "! podman exec ${PREFIX}broker touch /tmp/x 2>/dev/null"
  check "the state directory is writable" podman exec "${PREFIX}broker" touch /var/lib/mailroom/.probe
  check "the broker runs as uid 10001" test "$(podman exec "${PREFIX}broker" id -u)" = "$APP_UID"

  # ---------------------------------------------------------------- Test Connection, save
  cat >"$W/admin/smtp.textproto" <<EOF
smtp_host: "localhost"
port: $SMTP_PORT
username: "$MAILBOX"
tenant_id: "$TENANT"
client_id: "$CLIENT_ID"
authority_host: "$TOKEN_URL_BASE"
smtp_trust_store { ca_file: "$CA_FILE" }
EOF
  mkdir -p "$W/secret"
  (umask 077 && printf '%s' "$CLIENT_SECRET" >"$W/secret/client-secret")
  chown -R "$APP_UID:$APP_UID" "$W/secret"
  CTL_MOUNTS=(-v "$W/secret:/run/secret:ro")
  if ctl settings set --file=/etc/mailroom/smtp.textproto --client_secret_file=/run/secret/client-secret \
    --secret_expiry="$(date -u -d '+180 days' +%Y-%m-%d)" --to=admin@example.test >"$W/settings.txt" 2>&1; then
    check "Test Connection passed and the settings were saved (mailroomctl settings set)" true
  else
    sed 's/^/    /' "$W/settings.txt"
    check "Test Connection passed and the settings were saved (mailroomctl settings set)" false
  fi
  CTL_MOUNTS=()
  check "Test Connection's message arrived in the Maildir" wait_for 30 arrived_at_least admin@example.test 1

  # ---------------------------------------------------------------- a guest registration
  t0=$SECONDS
  if ctl guest register portal=lobby username=wang first_name=Xiaoming last_name=Wang \
    email=guest@example.test password_file=- <<<'Pa55word!' >"$W/register.txt" 2>&1; then
    check "the PSN accepted a guest registration (mailroomctl guest register)" true
  else
    sed 's/^/    /' "$W/register.txt"
    check "the PSN accepted a guest registration (mailroomctl guest register)" false
  fi
  check "the guest's credentials mail was delivered into the Maildir" wait_for 60 arrived_at_least guest@example.test 1
  say "guest mail delivered $((SECONDS - t0)) s after the registration"

  # ---------------------------------------------------------------- the secret stays put
  local c pid leaked=""
  for node in "${NODES[@]}"; do
    c="$PREFIX$node"
    podman inspect --format '{{json .Config.Env}} {{json .Config.Cmd}} {{json .Args}} {{json .Config.Entrypoint}}' "$c" \
      >"$W/inspect-$node.txt"
    grep -q -F -- "$CLIENT_SECRET" "$W/inspect-$node.txt" && leaked+=" $node:inspect"
    podman logs "$c" >"$W/log-$node.txt" 2>&1
    grep -q -F -- "$CLIENT_SECRET" "$W/log-$node.txt" && leaked+=" $node:log"
    pid="$(podman inspect --format '{{.State.Pid}}' "$c")"
    if [[ -r "/proc/$pid/environ" ]]; then
      tr '\0' '\n' <"/proc/$pid/environ" | grep -q -F -- "$CLIENT_SECRET" && leaked+=" $node:environ"
      tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -F -- "$CLIENT_SECRET" && leaked+=" $node:cmdline"
    else
      check "$node's process is visible from the host (pid $pid)" false
    fi
    grep -r -q -F -- "$CLIENT_SECRET" "$W/$node/data" 2>/dev/null && leaked+=" $node:state-in-clear"
  done
  check "the client secret is in no container's environment, command line, log or state in clear${leaked:+ (found in:$leaked)}" test -z "$leaked"
  check "the broker's log is not empty (the check above read something)" test -s "$W/log-broker.txt"
  # The broker logs a token's SHA-256 fingerprint when it caches one, never the token.
  check "the broker logged caching a token by its 64-hex fingerprint" \
    grep -q -E "Putting value in OAuth cache \(token [0-9a-f]{64}," "$W/log-broker.txt"
}

main "$@"
