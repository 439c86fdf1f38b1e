#!/usr/bin/env bash
# Creates a cluster CA and one certificate per node, the node's role carried in a URI SAN
# (urn:mailroom:role:<role>) that every mailroom server checks. Keys are ECDSA P-256.
#
#   deploy/gen-certs.sh OUT_DIR [NODE:ROLE[:DNS,...] ...]
#
# DNS names after a second colon are added to the node's subjectAltName (e.g. the names a
# container or a Kubernetes Service gives it: mailroom-broker-0:broker:mailroom-broker.mailroom.svc).
# Without NODE:ROLE arguments it makes the local cluster's set: broker, pan1, psn1, psn2,
# mnt1, admin and portal. An existing CA in OUT_DIR is reused, so nodes can be added later.
# Role etcd is for the brokers' etcd cluster, made in a directory (a CA) of its own: the
# members' certificates and the brokers' client certificates for etcd (no mailroom server
# takes it for any of its roles).
# Writes OUT_DIR/ca.pem, OUT_DIR/ca.key (keep it off the nodes), OUT_DIR/NODE.pem and
# OUT_DIR/NODE.key (mode 0600). Set CA_NAME to name the CA (e.g. for a second, foreign CA).
set -euo pipefail

if [[ $# -lt 1 || "$1" == -* ]]; then
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
out="$1"
shift
nodes=("$@")
if [[ ${#nodes[@]} -eq 0 ]]; then
  nodes=(broker:broker pan1:pan psn1:psn psn2:psn mnt1:mnt admin:admin portal:portal)
fi
ca_name="${CA_NAME:-mailroom cluster CA}"
days="${CERT_DAYS:-825}"

mkdir -p "$out"
umask 077

if [[ ! -f "$out/ca.pem" ]]; then
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -keyout "$out/ca.key" -out "$out/ca.pem" -days 3650 -subj "/O=mailroom/CN=${ca_name}" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
fi

for spec in "${nodes[@]}"; do
  node="${spec%%:*}"
  role="${spec#*:}"
  extra_dns=""
  if [[ "$role" == *:* ]]; then
    extra_dns="${role#*:}"
    role="${role%%:*}"
  fi
  dns_sans=""
  for name in ${extra_dns//,/ }; do
    [[ "$name" =~ ^[A-Za-z0-9.-]+$ ]] || { echo "gen-certs: bad DNS name '$name' in '$spec'" >&2; exit 2; }
    dns_sans+="DNS:${name},"
  done
  case "$role" in
    broker | pan | psn | mnt | admin | portal | etcd) ;;
    *) echo "gen-certs: unknown role '$role' in '$spec' (broker, pan, psn, mnt, admin, portal, etcd)" >&2; exit 2 ;;
  esac
  [[ "$node" =~ ^[A-Za-z0-9._-]+$ ]] || { echo "gen-certs: bad node name '$node'" >&2; exit 2; }
  ext="$(mktemp)"
  cat >"$ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:localhost,DNS:${node},${dns_sans}IP:127.0.0.1,URI:urn:mailroom:role:${role}
EXT
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -keyout "$out/$node.key" -out "$out/$node.csr" -subj "/O=mailroom/OU=${role}/CN=${node}" 2>/dev/null
  openssl x509 -req -in "$out/$node.csr" -CA "$out/ca.pem" -CAkey "$out/ca.key" -CAcreateserial \
    -out "$out/$node.pem" -days "$days" -extfile "$ext" 2>/dev/null
  rm -f "$out/$node.csr" "$ext"
  chmod 0600 "$out/$node.key"
  chmod 0644 "$out/$node.pem"
done
chmod 0644 "$out/ca.pem"
echo "gen-certs: wrote CA and ${#nodes[@]} node certificate(s) to $out"
