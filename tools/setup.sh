#!/usr/bin/env bash
# Installs what mailroom needs on a fresh Debian 12 machine (root): the build toolchain and
# libraries from Debian's archive, and the test peers' npm packages. Idempotent: packages
# already present are not fetched again.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

debian_packages=(
  # build
  bazel-bootstrap g++ protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libgrpc++-dev
  libabsl-dev libssl-dev libcurl4-openssl-dev libsqlite3-dev libgtest-dev libgmock-dev libidn2-dev
  libcpp-httplib-dev
  # tools the scripts and tests use
  openssl curl sqlite3 ca-certificates iproute2 python3
  # the testbed's XOAUTH2 check reads the token server's introspection answers (JSON)
  jq
  # the Exchange-like test peers: an MTA and token validation (tests/e2e/testbed)
  postfix dovecot-core
  # an HTTP proxy doing CONNECT, between mailroom and the test peers (proxy tests), and TLS in
  # front of it for an https:// proxy
  tinyproxy stunnel4
  # the distributed engine of the highly available broker (issue 12): tests start their own
  # etcd members on loopback; a system etcd service the package may start is not used
  etcd-server etcd-client
  # offline checks of the deployment files (tests/deploy)
  yamllint systemd
  # the container image and the tests that run it (tests/deploy): podman with runc (crun refuses
  # this host's hybrid cgroups), catatonit as the pods' init, mmdebstrap to make the Debian base
  # image locally (no image registry is reachable), python3-yaml to turn the Kubernetes
  # manifests into pods
  podman runc catatonit mmdebstrap python3-yaml
  # coverage-guided fuzzing (bench/fuzz.sh): clang, and its libFuzzer and sanitizer runtimes,
  # which clang only recommends (and recommends are not installed here)
  clang libclang-rt-14-dev
)
# kubectl renders the Kustomize manifests; Debian's comes with kubernetes-client.
command -v kubectl >/dev/null || debian_packages+=(kubernetes-client)
# The OAuth server test peer (oidc-provider) runs on Node.js; the machine image ships one
# with npm bundled, so Debian's are only needed where there is none.
command -v node >/dev/null || debian_packages+=(nodejs)
command -v npm >/dev/null || debian_packages+=(npm)

missing=()
for package in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Postfix's package would otherwise ask how to configure the system MTA; the tests run
  # private instances and leave the system one alone.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# podman's system-wide settings for this kind of host (tests/deploy, deploy/container/build.sh):
# runc, no default ulimits (they cannot be set here). Containers use host networking, given per
# command. Written once; an admin's own file of this name is left alone.
podman_conf=/etc/containers/containers.conf.d/50-mailroom.conf
if [[ ! -f "$podman_conf" ]]; then
  echo "setup: writing $podman_conf (runtime runc, no default ulimits)"
  mkdir -p "$(dirname "$podman_conf")"
  cat >"$podman_conf" <<'CONF'
# Written by mailroom's tools/setup.sh: crun refuses this host's hybrid cgroups, and the
# default ulimits cannot be set here.
[engine]
runtime = "runc"

[containers]
default_ulimits = []
CONF
fi

if [[ -f tests/e2e/testbed/package-lock.json && ! -d tests/e2e/testbed/node_modules ]]; then
  echo "setup: installing the OAuth test server's npm packages"
  (cd tests/e2e/testbed && npm ci --no-audit --no-fund --loglevel=error)
fi
if [[ -f bench/node/package-lock.json && ! -d bench/node/node_modules ]]; then
  echo "setup: installing the benchmark peers' npm packages (nodemailer)"
  (cd bench/node && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "setup: ready"
