#!/usr/bin/env bash
# Fetch the stock Debian arm64 kernel and a static busybox for the Linux
# guests.
#
#   tools/fetch-linux.sh OUTDIR
#
# OUTDIR/Image: /boot/vmlinuz-* of linux-image-arm64:arm64's current
# dependency (resolved at fetch time; an arm64 Image, decompressed if the
# package ships it gzipped). OUTDIR/busybox: busybox-static:arm64's binary.
# OUTDIR/modules: the kernel modules its initramfs loads for pivisor's
# virtio devices (tools/debian-modules.sh), from the same package.
# Both packages are checked against the package index (tools/debfetch.sh);
# OUTDIR/VERSION names them. Files are written under temporary names and
# renamed, so an interrupted run leaves nothing half-written.
set -euo pipefail
out=${1:?usage: fetch-linux.sh OUTDIR}
say() { printf 'fetch-linux: %s\n' "$*" >&2; }
. "$(dirname "$0")/debfetch.sh"

here=$(dirname "$0")
if [ -s "$out/Image" ] && [ -s "$out/busybox" ] && [ -s "$out/VERSION" ]; then
    [ -s "$out/modules/load-order" ] && [ "$out/modules/load-order" -nt "$here/debian-modules.sh" ] && exit 0
    # Only the module set changed: remade from the package VERSION names.
    read -r _ kfile ksum < <(awk '$1=="kernel"' "$out/VERSION")
    if [ "sha256:$(sha256sum "$cache/$kfile" 2>/dev/null | cut -d' ' -f1)" = "$ksum" ]; then
        "$here/debian-modules.sh" "$cache/$kfile" "$out/modules"
        exit 0
    fi
fi
mkdir -p "$out"
kpkg=$(deb_resolve_kernel)
kdeb=$(deb_fetch "$kpkg")
"$here/debian-modules.sh" "$kdeb" "$out/modules"
bdeb=$(deb_fetch busybox-static:arm64)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dpkg-deb --fsys-tarfile "$kdeb" | tar -x -C "$tmp" --wildcards './boot/vmlinuz-*'
vmlinuz=$(find "$tmp/boot" -name 'vmlinuz-*' | head -n1)
[ -n "$vmlinuz" ] || { say "no /boot/vmlinuz-* in ${kdeb##*/}"; exit 1; }
if [ "$(head -c 2 "$vmlinuz" | od -An -tx1 | tr -d ' ')" = "1f8b" ]; then
    gzip -dc "$vmlinuz" > "$out/Image.tmp"
else
    cp "$vmlinuz" "$out/Image.tmp"
fi
# The arm64 Image header's magic "ARM\x64" at offset 56.
[ "$(dd if="$out/Image.tmp" bs=1 skip=56 count=4 2>/dev/null | od -An -tx1 | tr -d ' ')" = "41524d64" ] \
    || { rm -f "$out/Image.tmp"; say "${vmlinuz##*/} is not an arm64 Image"; exit 1; }
dpkg-deb --fsys-tarfile "$bdeb" | tar -x -C "$tmp" ./bin/busybox
cp "$tmp/bin/busybox" "$out/busybox.tmp"
mv "$out/Image.tmp" "$out/Image"
mv "$out/busybox.tmp" "$out/busybox"
{
    echo "kernel ${kdeb##*/} sha256:$(sha256sum "$kdeb" | cut -d' ' -f1)"
    echo "busybox ${bdeb##*/} sha256:$(sha256sum "$bdeb" | cut -d' ' -f1)"
} > "$out/VERSION"
say "$(head -n1 "$out/VERSION" | cut -d' ' -f2) and busybox in $out"
