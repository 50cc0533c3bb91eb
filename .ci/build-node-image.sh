#!/bin/sh
# Builds a minimal Node.js base image from the host's own node binary, without any registry:
#   cyberun-test/node-base:<node major>   /usr/bin/node + the libraries `ldd` lists + busybox sh,
# imported with `docker import`. It stands in for `node:20-bookworm-slim` as the Dockerfile's BASE
# where no registry is reachable (see ../shared/design/TEST-ENVIRONMENT.md "Node image").
# Prints the image reference on stdout. Skips an image that exists unless --force is given.
# Needs: docker CLI + engine, node, ldd, /bin/busybox (busybox-static).
set -eu

NODE_BIN="$(command -v node)"
MAJOR="$("$NODE_BIN" -p 'process.versions.node.split(".")[0]')"
IMAGE="${NODE_BASE_IMAGE:-cyberun-test/node-base:$MAJOR}"
BUSYBOX="${BUSYBOX:-/bin/busybox}"
[ "${1:-}" = "--force" ] || { docker image inspect "$IMAGE" >/dev/null 2>&1 && { echo "$IMAGE"; exit 0; }; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/rootfs"
mkdir -p "$ROOT/usr/local/bin" "$ROOT/bin" "$ROOT/tmp" "$ROOT/etc"
chmod 1777 "$ROOT/tmp"
cp "$(readlink -f "$NODE_BIN")" "$ROOT/usr/local/bin/node"
# Every library node links, at the same paths, plus the dynamic loader.
for lib in $(ldd "$NODE_BIN" | awk '/=> \//{print $3} /^[ \t]*\//{print $1}'); do
  mkdir -p "$ROOT$(dirname "$lib")"
  cp -L "$lib" "$ROOT$lib"
done
if [ -x "$BUSYBOX" ]; then
  cp "$BUSYBOX" "$ROOT/bin/busybox"
  for applet in sh ls cat env id ps; do ln -s busybox "$ROOT/bin/$applet"; done
fi
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$ROOT/etc/passwd"
printf 'root:x:0:\n' > "$ROOT/etc/group"
tar -C "$ROOT" -cf "$WORK/rootfs.tar" .
docker import \
  --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
  --change 'CMD ["node"]' \
  --change "LABEL cloud.cyberun.test-image=node-base" \
  "$WORK/rootfs.tar" "$IMAGE" >/dev/null
echo "$IMAGE"
