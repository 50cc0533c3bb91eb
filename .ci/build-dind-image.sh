#!/bin/sh
# Builds a Docker-in-Docker image from the host's own engine binaries, without any registry:
#   cyberun-test/dind:<engine version>   dockerd, containerd, shim, runc, docker-init, docker-proxy,
#   iptables (nft), their libraries, busybox; dockerd listens on tcp://0.0.0.0:2375 (no TLS: tests
#   only) and on its unix socket. Prints the image reference. Skips an existing image unless --force.
# Run it (no --privileged needed; see ../shared/design/TEST-ENVIRONMENT.md "Docker in Docker"):
#   docker run -d --cap-add=ALL --cap-drop=SYS_RESOURCE --security-opt seccomp=unconfined \
#     --security-opt apparmor=unconfined --security-opt systempaths=unconfined \
#     --device-cgroup-rule='a *:* rwm' -v /sys/fs/cgroup:/sys/fs/cgroup -v <dir>:/var/lib/docker <image>
# Needs: docker CLI + engine (docker.io), ldd, /bin/busybox (busybox-static).
set -eu

VERSION="$(dockerd --version | sed -n 's/^Docker version \([0-9.]*\).*/\1/p')"
IMAGE="${DIND_IMAGE:-cyberun-test/dind:${VERSION:-local}}"
BUSYBOX="${BUSYBOX:-/bin/busybox}"
[ "${1:-}" = "--force" ] || { docker image inspect "$IMAGE" >/dev/null 2>&1 && { echo "$IMAGE"; exit 0; }; }
[ -x "$BUSYBOX" ] || { echo "error: $BUSYBOX missing; install busybox-static" >&2; exit 1; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/rootfs"
mkdir -p "$ROOT/bin" "$ROOT/usr/bin" "$ROOT/usr/sbin" "$ROOT/tmp" "$ROOT/etc" "$ROOT/run" "$ROOT/var/lib/docker" "$ROOT/proc" "$ROOT/sys" "$ROOT/dev"
chmod 1777 "$ROOT/tmp"

copy_with_libs() {
  src="$(command -v "$1")"
  cp -L "$src" "$ROOT/usr/bin/$1"
  for lib in $(ldd "$src" 2>/dev/null | awk '/=> \//{print $3} /^[ \t]*\//{print $1}'); do
    [ -e "$ROOT$lib" ] && continue
    mkdir -p "$ROOT$(dirname "$lib")"
    cp -L "$lib" "$ROOT$lib"
  done
}
for bin in dockerd containerd containerd-shim-runc-v2 runc docker-init docker-proxy xtables-nft-multi; do copy_with_libs "$bin"; done
for lib in $(ls /usr/lib/x86_64-linux-gnu/xtables/*.so); do
  for dep in $(ldd "$lib" 2>/dev/null | awk '/=> \//{print $3}'); do
    [ -e "$ROOT$dep" ] || { mkdir -p "$ROOT$(dirname "$dep")"; cp -L "$dep" "$ROOT$dep"; }
  done
done
mkdir -p "$ROOT/usr/lib/x86_64-linux-gnu"
cp -a /usr/lib/x86_64-linux-gnu/xtables "$ROOT/usr/lib/x86_64-linux-gnu/xtables"
for name in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
  ln -s xtables-nft-multi "$ROOT/usr/bin/$name"
done
cp "$BUSYBOX" "$ROOT/bin/busybox"
for applet in sh mount umount mkdir cat ls rm sleep ps kill ip modprobe; do ln -s busybox "$ROOT/bin/$applet"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$ROOT/etc/passwd"
printf 'root:x:0:\ndocker:x:2375:\n' > "$ROOT/etc/group"
printf 'hosts: files dns\n' > "$ROOT/etc/nsswitch.conf"

cat > "$ROOT/start.sh" <<'SCRIPT'
#!/bin/sh
# Nested engine: fresh /run, then dockerd in the foreground (PID 1's child via exec).
set -e
mount -t tmpfs tmpfs /run
mkdir -p /run/docker /var/lib/docker
rm -f /var/run/docker.pid /var/run/docker.sock
exec dockerd --host=tcp://0.0.0.0:2375 --host=unix:///var/run/docker.sock --tls=false "$@"
SCRIPT
chmod 755 "$ROOT/start.sh"
tar -C "$ROOT" -cf "$WORK/rootfs.tar" .
docker import \
  --change 'ENV PATH=/usr/bin:/usr/sbin:/bin' \
  --change 'ENTRYPOINT ["/start.sh"]' \
  --change 'EXPOSE 2375/tcp' \
  --change 'LABEL cloud.cyberun.test-image=dind' \
  "$WORK/rootfs.tar" "$IMAGE" >/dev/null
echo "$IMAGE"
