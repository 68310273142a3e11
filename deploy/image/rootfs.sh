#!/usr/bin/env bash
# Assembles the root filesystem of the crawlq image from a built binary,
# with no base image: the binary, the shared libraries `ldd` lists, the CA
# certificates, a nonroot user (65532) and an empty /tmp. Used by
# `make image` (deploy/image/Containerfile copies it into a scratch image)
# and by tests/tests/image.rs, which runs it under chroot.
#
#   deploy/image/rootfs.sh BINARY OUT_DIR
set -euo pipefail
bin=${1:?usage: rootfs.sh BINARY OUT_DIR}
out=${2:?usage: rootfs.sh BINARY OUT_DIR}
[ -x "$bin" ] || { echo "no binary at $bin (make build)" >&2; exit 1; }
rm -rf "$out"
mkdir -p "$out/etc/ssl/certs" "$out/tmp" "$out/data"
install -m 0755 "$bin" "$out/crawlq"
# Every library the dynamic loader will want, the loader included.
ldd "$bin" | awk '/=> \// { print $3 } /^[[:space:]]*\// { print $1 }' | sort -u | while read -r lib; do
  mkdir -p "$out$(dirname "$lib")"
  cp -L "$lib" "$out$lib"
done
cp -L /etc/ssl/certs/ca-certificates.crt "$out/etc/ssl/certs/ca-certificates.crt"
echo "nonroot:x:65532:65532:nonroot:/:/sbin/nologin" > "$out/etc/passwd"
echo "nonroot:x:65532:" > "$out/etc/group"
chmod 1777 "$out/tmp"
chown 65532:65532 "$out/data" 2>/dev/null || true
echo "rootfs in $out: $(du -sh "$out" | cut -f1)"
