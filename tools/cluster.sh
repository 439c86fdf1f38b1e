#!/usr/bin/env bash
# Installs what is missing, builds mailroom and starts the local cluster on loopback from
# the config directory deploy/local/ (state in run/local/). Ctrl-C stops it.
#
# Status: the role services do not exist yet. This script builds everything and creates
# the cluster CA and node certificates; it starts no service, and says so.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

bash tools/setup.sh
bazel build //...

state="run/local"
if [[ ! -f "$state/certs/ca.pem" ]]; then
  bash deploy/gen-certs.sh "$state/certs"
fi

echo
echo "mailroom: built; cluster certificates are in $state/certs."
echo "mailroom: no service is started: the token broker and the PAN, PSN and MnT role"
echo "          services are not implemented yet (see the open issues)."
