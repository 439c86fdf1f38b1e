#!/usr/bin/env bash
# Builds the mailroom container image with podman (tools/setup.sh installs podman and configures
# it for this kind of host). Makes the Debian base images first if they are missing: no image
# registry is reachable, so debian:bookworm is made locally with mmdebstrap, without
# documentation as Debian's -slim images, and tagged debian:bookworm-slim too: one base for
# both stages. Making the base is serialized with a lock (tests build the image too).
#
#   deploy/container/build.sh [--tag NAME:TAG] [--binaries DIR | --from-source]
#
#   (default)       bazel build -c opt of the five binaries, copied into the Containerfile's
#                   `prebuilt` stage (the CI route: reuses Bazel's cache; minutes at most)
#   --binaries DIR  the same stage with the binaries already in DIR (mailroom-broker,
#                   mailroom-pan, mailroom-psn, mailroom-mnt, mailroomctl)
#   --from-source   the multi-stage build as written: the toolchain installed and everything
#                   compiled inside the image build, without Bazel's cache (tens of minutes)
#   --etcd          the etcd members' image instead (the Containerfile's `etcd` stage: Debian's
#                   etcd-server), default tag mailroom-etcd:latest as components/etcd uses
#   --tag           the image name (default mailroom:latest, as the Kubernetes manifests use)
#
# Prints the image's name, id and size at the end.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/../.."

tag=""
binaries=""
from_source=0
etcd=0
while (($#)); do
  case "$1" in
    --tag) tag="$2"; shift 2 ;;
    --tag=*) tag="${1#*=}"; shift ;;
    --binaries) binaries="$2"; shift 2 ;;
    --binaries=*) binaries="${1#*=}"; shift ;;
    --from-source) from_source=1; shift ;;
    --etcd) etcd=1; shift ;;
    -h | --help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
if ((etcd)); then
  tag="${tag:-mailroom-etcd:latest}"
else
  tag="${tag:-mailroom:latest}"
fi
if ((from_source)) && [[ -n "$binaries" ]]; then
  echo "build.sh: --binaries and --from-source exclude each other" >&2
  exit 2
fi

programs=(mailroom-broker mailroom-pan mailroom-psn mailroom-mnt mailroomctl)
containerfile="$PWD/deploy/container/Containerfile"

work="$(mktemp -d /tmp/mailroom-image.XXXXXX)"
trap 'rm -rf "$work"' EXIT
# The Debian base, made locally once (mmdebstrap from Debian's archive, then podman import),
# under a lock: two builds must not both make it.
exec 8>/run/lock/mailroom-base-image.lock
flock -w 900 8 || { echo "build.sh: another build has been making the base image for 15 minutes" >&2; exit 1; }
if ! podman image exists debian:bookworm; then
  echo "build.sh: making the debian:bookworm base image (mmdebstrap --variant=minbase)"
  # Without documentation, manual pages and translations, as Debian's own -slim images.
  mmdebstrap --quiet --variant=minbase \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' bookworm "$work/rootfs.tar"
  podman import --quiet "$work/rootfs.tar" debian:bookworm >/dev/null
  rm -f "$work/rootfs.tar"
fi
podman image exists debian:bookworm-slim || podman tag debian:bookworm debian:bookworm-slim
exec 8>&-

started=$SECONDS
if ((etcd)); then
  # Only the Containerfile is needed: the stage installs Debian's package.
  mkdir -p "$work/etcd-context"
  podman build --network host --target etcd -f "$containerfile" -t "$tag" "$work/etcd-context"
elif ((from_source)); then
  podman build --network host --target runtime -f "$containerfile" -t "$tag" .
else
  if [[ -z "$binaries" ]]; then
    bazel build -c opt //pan/broker:mailroom-broker //pan:mailroom-pan //psn:mailroom-psn \
      //mnt:mailroom-mnt //cli:mailroomctl
    opt_bin="$(bazel info -c opt bazel-bin)"
    binaries="$work/opt"
    mkdir -p "$binaries"
    cp "$opt_bin/pan/broker/mailroom-broker" "$opt_bin/pan/mailroom-pan" \
      "$opt_bin/psn/mailroom-psn" "$opt_bin/mnt/mailroom-mnt" "$opt_bin/cli/mailroomctl" "$binaries/"
  fi
  # The build context: only bin/ (the Containerfile's prebuilt stage copies it to /usr/bin).
  mkdir -p "$work/context/bin"
  for program in "${programs[@]}"; do
    [[ -x "$binaries/$program" ]] || { echo "build.sh: $binaries/$program is missing" >&2; exit 1; }
    install -m 0755 "$binaries/$program" "$work/context/bin/$program"
  done
  podman build --network host --target prebuilt -f "$containerfile" -t "$tag" "$work/context"
fi
echo "build.sh: built $tag in $((SECONDS - started)) s:" \
  "$(podman image inspect --format '{{.Id}} {{.Size}} bytes' "$tag")"
