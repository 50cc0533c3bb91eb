#!/bin/sh
# Builds a Debian bookworm image with systemd as PID 1, from Debian packages only (no registry):
#   cyberun-test/systemd:12   mmdebstrap --variant=minbase + systemd, dbus, …; the host's `node`
#                             binary and npm copied in (the libraries node links are in minbase).
# It is the host an operator installs the agent on in test/e2e/systemd-service.test.ts
# (recipe: ../shared/design/TEST-ENVIRONMENT.md, "systemd as PID 1 in a container").
# Prints the image reference on stdout. Skips an image that exists unless --force is given.
# Needs: root, docker CLI + engine, node + npm on the host, mmdebstrap (installed with apt if missing)
# and a Debian mirror.
set -eu

IMAGE="${SYSTEMD_TEST_IMAGE:-cyberun-test/systemd:12}"
[ "${1:-}" = "--force" ] || { docker image inspect "$IMAGE" >/dev/null 2>&1 && { echo "$IMAGE"; exit 0; }; }

if ! command -v mmdebstrap >/dev/null 2>&1; then
  echo "installing mmdebstrap" >&2
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mmdebstrap >&2
fi

NODE_BIN="$(readlink -f "$(command -v node)")"
NPM_DIR="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"   # …/node_modules/npm
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# What the customize hook copies in: node, npm, and links as a distribution package would make.
mkdir -p "$WORK/add/usr/bin" "$WORK/add/usr/lib/node_modules"
cp "$NODE_BIN" "$WORK/add/usr/bin/node"
cp -a "$NPM_DIR" "$WORK/add/usr/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$WORK/add/usr/bin/npm"

mmdebstrap --quiet --variant=minbase \
  --include=systemd,systemd-sysv,dbus,ca-certificates,iproute2,procps \
  --customize-hook="tar -C '$WORK/add' -cf - . | tar -C \"\$1\" -xf -" \
  --customize-hook='rm -f "$1/etc/machine-id"; : > "$1/etc/machine-id"' \
  bookworm "$WORK/rootfs.tar" >&2

docker import \
  --change 'CMD ["/lib/systemd/systemd"]' \
  --change 'ENV container=docker' \
  --change 'LABEL cloud.cyberun.test-image=systemd' \
  "$WORK/rootfs.tar" "$IMAGE" >/dev/null
echo "$IMAGE"
