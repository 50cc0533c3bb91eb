#!/bin/sh
# Builds the test images used by integration and e2e tests, without any registry:
#   cyberun-test/busybox-http:1   busybox-static rootfs imported with `docker import`.
# Skips an image that already exists unless --force is given. Needs: docker CLI + engine,
# /bin/busybox from busybox-static (apt-get install busybox-static).
# Usage: .ci/build-test-images.sh [--force]
set -eu

IMAGE="${TEST_IMAGE_HTTP:-cyberun-test/busybox-http:1}"
BUSYBOX="${BUSYBOX:-/bin/busybox}"
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

if [ "$FORCE" = 0 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "test image $IMAGE present"
  exit 0
fi
[ -x "$BUSYBOX" ] || { echo "error: $BUSYBOX missing; install busybox-static" >&2; exit 1; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/rootfs"
mkdir -p "$ROOT/bin" "$ROOT/www/cgi-bin" "$ROOT/tmp" "$ROOT/etc"
chmod 1777 "$ROOT/tmp"
cp "$BUSYBOX" "$ROOT/bin/busybox"
for applet in sh httpd nc sleep env cat echo rm mkdir ls wget kill date printf seq head yes dd touch hostname; do
  ln -s busybox "$ROOT/bin/$applet"
done

cat > "$ROOT/start.sh" <<'SCRIPT'
#!/bin/sh
# Test service of cyberun-agent. Behaviour by env:
#   MODE=http (default)  serve /www on ${PORT:-8080} with busybox httpd:
#       GET /health               200 "ok" (until the file is removed)
#       /cgi-bin/env             the environment, text/plain
#       /cgi-bin/echo            method, query string and request body
#       /cgi-bin/fail-health     removes /www/health: /health answers 404 from then on
#       /cgi-bin/hostname        the container's hostname
#     STARTUP_DELAY=<s>          sleep that long before serving (slow model servers)
#     FAIL_HEALTH_AFTER=<s>      remove /www/health that many seconds after serving starts
#   MODE=crash   print "booting…" and "fatal: config missing" to stderr, exit ${EXIT_CODE:-3}
#   MODE=sleep   print "sleeping" and sleep forever (a container with no server)
case "${MODE:-http}" in
  crash)
    echo "booting…" >&2
    echo "loading config from /etc/service.yaml" >&2
    echo "fatal: config missing" >&2
    exit "${EXIT_CODE:-3}"
    ;;
  sleep)
    echo "sleeping"
    exec sleep 2147483647
    ;;
esac
if [ -n "${STARTUP_DELAY:-}" ]; then
  echo "starting in ${STARTUP_DELAY}s"
  sleep "$STARTUP_DELAY"
fi
echo ok > /www/health
if [ -n "${FAIL_HEALTH_AFTER:-}" ]; then
  (sleep "$FAIL_HEALTH_AFTER"; rm -f /www/health; echo "health file removed") &
fi
echo "serving on :${PORT:-8080}"
exec httpd -f -v -p "${PORT:-8080}" -h /www
SCRIPT

cat > "$ROOT/www/cgi-bin/env" <<'SCRIPT'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
env
SCRIPT

cat > "$ROOT/www/cgi-bin/echo" <<'SCRIPT'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
echo "method=$REQUEST_METHOD"
echo "query=$QUERY_STRING"
printf 'body='
if [ -n "${CONTENT_LENGTH:-}" ] && [ "$CONTENT_LENGTH" -gt 0 ]; then
  dd bs=1 count="$CONTENT_LENGTH" 2>/dev/null
fi
echo
SCRIPT

cat > "$ROOT/www/cgi-bin/fail-health" <<'SCRIPT'
#!/bin/sh
rm -f /www/health
printf 'Content-Type: text/plain\r\n\r\nhealth removed\n'
SCRIPT

cat > "$ROOT/www/cgi-bin/hostname" <<'SCRIPT'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
hostname
SCRIPT

chmod 755 "$ROOT/start.sh" "$ROOT/www/cgi-bin/"*
tar -C "$ROOT" -cf "$WORK/rootfs.tar" .
docker import \
  --change 'CMD ["/start.sh"]' \
  --change 'ENV PATH=/bin' \
  --change 'EXPOSE 8080/tcp' \
  --change 'LABEL cloud.cyberun.test-image=busybox-http' \
  "$WORK/rootfs.tar" "$IMAGE" >/dev/null
echo "built test image $IMAGE"
