#!/usr/bin/env bash
# Build the images the tests and examples use, offline: a busybox root
# filesystem from Debian's busybox-static, imported with `docker import`.
# Idempotent: an image whose content label matches is left alone.
set -euo pipefail

IMAGE=${CATALOG_TEST_IMAGE:-catalog-test/busybox:latest}
log() { printf 'build-test-images: %s\n' "$*" >&2; }

if [ ! -x /bin/busybox ]; then
  [ "$(id -u)" = 0 ] || { log "busybox-static is missing and installing it needs root"; exit 1; }
  log "installing busybox-static"
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null 2>&1 \
    || { log "apt-get install busybox-static failed"; exit 1; }
fi

# The content key changes when busybox or this recipe changes.
recipe_version=1
key=$( (sha256sum /bin/busybox | cut -c1-64; echo "$recipe_version") | sha256sum | cut -c1-16)

current=$(docker image inspect --format '{{ index .Config.Labels "io.catalog.test-image" }}' "$IMAGE" 2>/dev/null || true)
if [ "$current" = "$key" ]; then
  log "$IMAGE is up to date"
  exit 0
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,etc,tmp,www,var/www,usr/bin,usr/sbin,root,proc,sys,dev}
chmod 1777 "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
echo '<h1>catalog test image</h1>' >"$root/www/index.html"

tar -C "$root" --numeric-owner --owner=0 --group=0 -c . \
  | docker import \
      --change "LABEL io.catalog.test-image=$key" \
      --change 'ENV PATH=/bin:/sbin:/usr/bin:/usr/sbin' \
      --change 'CMD ["/bin/sh"]' \
      - "$IMAGE" >/dev/null
log "built $IMAGE"
