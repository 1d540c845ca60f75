#!/usr/bin/env bash
# The kernel modules Debian's stock kernel needs for pivisor's virtio
# devices, for its initramfs: virtio_mmio, virtio_blk, ext4 (with jbd2,
# mbcache, crc16, and crc32c_generic, which ext4 asks the crypto API for)
# and virtio_net; and sdhci-iproc (with sdhci-pltfm and sdhci), Linux's
# own SD driver, for the same kernel booted natively from the card (the
# BOOT benchmark's yardstick, root=sd:N); from the same linux-image
# package as the kernel, with
# their dependencies (each module's `depends=`), in load order.
#
#   tools/debian-modules.sh KERNEL-DEB OUTDIR
#
# OUTDIR gets the .ko files, `load-order` (one name per line, dependencies
# first) and `version` (the kernel's release, which /init compares with
# uname -r before loading anything).
set -euo pipefail
deb=${1:?usage: debian-modules.sh KERNEL-DEB OUTDIR}
out=${2:?usage: debian-modules.sh KERNEL-DEB OUTDIR}
roots="virtio_mmio virtio_blk crc32c_generic ext4 virtio_net sdhci-iproc"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards './lib/modules/*/kernel/*'
kdir=$(find "$tmp/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n1)
[ -n "$kdir" ] || { echo "debian-modules: no /lib/modules in ${deb##*/}" >&2; exit 1; }
ver=${kdir##*/}
path_of() { find "$kdir/kernel" -name "$1.ko" | head -n1; }
order=()
seen=" "
visit() {
    local m=$1 f deps d
    case "$seen" in *" $m "*) return ;; esac
    seen="$seen$m "
    f=$(path_of "$m")
    [ -n "$f" ] || { echo "debian-modules: $m.ko not in ${deb##*/} (built in?)" >&2; return; }
    deps=$(strings -a "$f" | sed -n 's/^depends=//p' | head -n1 | tr ',' ' ')
    for d in $deps; do visit "$d"; done
    order+=("$m")
}
for m in $roots; do visit "$m"; done
rm -rf "$out.tmp"
mkdir -p "$out.tmp"
for m in "${order[@]}"; do cp "$(path_of "$m")" "$out.tmp/$m.ko"; done
printf '%s\n' "${order[@]}" > "$out.tmp/load-order"
echo "$ver" > "$out.tmp/version"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "debian-modules: $ver: ${order[*]}" >&2
