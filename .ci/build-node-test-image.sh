#!/bin/sh
# Builds cyberun-test/node-http:1 without any registry: the host's node binary, the libraries
# `ldd` lists and the dynamic loader, plus test/fixtures/node-http/server.js (SSE, large
# downloads/uploads, echo), imported with `docker import`. Used by the proxy e2e tests and
# `npm run bench -- proxy`. Skips when the image exists and was built from the same server.js
# (label cloud.cyberun.test-fixture-sha256), unless --force is given.
# Usage: .ci/build-node-test-image.sh [--force]
set -eu

IMAGE="${TEST_IMAGE_NODE:-cyberun-test/node-http:1}"
NODE="${NODE_BIN:-$(command -v node)}"
HERE="$(cd "$(dirname "$0")/.." && pwd)"
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

SUM="$(sha256sum "$HERE/test/fixtures/node-http/server.js" | cut -c1-16)"
if [ "$FORCE" = 0 ] && [ "$(docker image inspect -f '{{index .Config.Labels "cloud.cyberun.test-fixture-sha256"}}' "$IMAGE" 2>/dev/null)" = "$SUM" ]; then
  echo "test image $IMAGE present"
  exit 0
fi
[ -x "$NODE" ] || { echo "error: no node binary found (set NODE_BIN)" >&2; exit 1; }
NODE="$(readlink -f "$NODE")"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/rootfs"
mkdir -p "$ROOT/usr/bin" "$ROOT/app" "$ROOT/tmp" "$ROOT/etc"
chmod 1777 "$ROOT/tmp"
cp "$NODE" "$ROOT/usr/bin/node"
# Every shared library node links against, and the loader, at their original paths.
for lib in $(ldd "$NODE" | awk '/=> \// { print $3 } /^\t\// { print $1 }'); do
  mkdir -p "$ROOT$(dirname "$lib")"
  cp -L "$lib" "$ROOT$lib"
done
echo 'root:x:0:0:root:/:/usr/bin/node' > "$ROOT/etc/passwd"
cp "$HERE/test/fixtures/node-http/server.js" "$ROOT/app/server.js"

tar -C "$ROOT" -cf "$WORK/rootfs.tar" .
docker import \
  --change 'CMD ["/usr/bin/node", "/app/server.js"]' \
  --change 'ENV PATH=/usr/bin' \
  --change 'EXPOSE 8080/tcp' \
  --change 'LABEL cloud.cyberun.test-image=node-http' \
  --change "LABEL cloud.cyberun.test-fixture-sha256=$SUM" \
  "$WORK/rootfs.tar" "$IMAGE" >/dev/null
echo "built test image $IMAGE"
