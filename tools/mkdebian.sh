#!/usr/bin/env bash
# The Debian bookworm arm64 root file system of the Debian VMs (issue 23):
# an ext4 image, built from Debian's own packages and cached per machine.
#
#   tools/mkdebian.sh OUT.ext4 PIVISOR_IMAGE DTB SETUP_BUNDLE LINUX_VERSION
#
# This machine cannot run arm64 programs (no binfmt_misc), so the build
# runs in two halves:
#   1. on the host: debootstrap --foreign downloads and unpacks minbase
#      plus guests/debian/packages (checked against the archive's signed
#      Release file), the kernel package (the one LINUX_VERSION names,
#      tools/fetch-linux.sh's: the VMs' kernel and its modules) and
#      guests/debian/rootfs are added, and
#      the tree becomes an ext4 image (mke2fs -d, no root or loop device);
#   2. in a pivisor VM on QEMU raspi4b (SETUP_BUNDLE,
#      guests/debian-setup.conf: Debian's kernel, the image as its disk):
#      debootstrap's second stage runs the maintainer scripts, then
#      guests/debian/setup.sh (depmod, the root password, the services);
#      the VM powers off and the image is taken back off the card.
# About 40 s for the first half, 10-11 minutes for the second on 2 cores.
# The result is cached by a hash of every input (the scripts, the package
# list, the overlay, the kernel package), so it is built once per machine
# and copied from the cache afterwards.
set -euo pipefail
out=${1:?usage: mkdebian.sh OUT PIVISOR_IMAGE DTB SETUP_BUNDLE LINUX_VERSION}
image=${2:?pivisor image}
dtb=${3:?device tree}
bundle=${4:?setup bundle}
version=${5:?build/linux/VERSION}
here=$(cd "$(dirname "$0")" && pwd)
deb_dir="$here/../guests/debian"
say() { printf 'mkdebian: %s\n' "$*" >&2; }
. "$here/debfetch.sh"
read -r _ kfile ksum < <(awk '$1=="kernel"' "$version")
kdeb="$cache/$kfile"
[ "sha256:$(sha256sum "$kdeb" 2>/dev/null | cut -d' ' -f1)" = "$ksum" ] \
    || { say "$kdeb is missing or fails its checksum (tools/fetch-linux.sh fetches it)"; exit 1; }

# The root file system's size: both VMs' partitions get a copy.
SIZE_MB=1024
key=$( { cat "$0" "$deb_dir/packages" "$deb_dir/setup.sh" "$here/../guests/linux/init";
         (cd "$deb_dir/rootfs" && find . -type f | LC_ALL=C sort | xargs sha256sum);
         sha256sum "$kdeb" | cut -d' ' -f1; echo "$SIZE_MB"; } | sha256sum | cut -c1-16)
dcache="${cache%/debian}/debian-root/$key"
if [ -s "$dcache/root.ext4" ]; then
    cp --sparse=always "$dcache/root.ext4" "$out.tmp" && mv "$out.tmp" "$out"
    exit 0
fi
command -v debootstrap >/dev/null || { say "installing debootstrap"; $SUDO apt-get install -y -q debootstrap >/dev/null; }
command -v mke2fs >/dev/null || { say "e2fsprogs missing (tools/setup.sh sd installs it)"; exit 1; }
mirror=$(deb_mirror)
work=$(mktemp -d "${cache%/debian}/debian-build.XXXXXX")
trap '[ -n "${qpid:-}" ] && kill "$qpid" 2>/dev/null; rm -rf "$work"' EXIT
root="$work/root"
include=$(grep -v '^#' "$deb_dir/packages" | grep -v '^$' | paste -sd, -)
say "first half: debootstrap --foreign (minbase, $include)"
debootstrap --foreign --arch=arm64 --variant=minbase --include="$include" \
    bookworm "$root" "$mirror" > "$work/stage1.log" 2>&1 \
    || { tail -n 20 "$work/stage1.log" >&2; say "debootstrap's first stage failed"; exit 1; }
say "adding the kernel's modules (${kdeb##*/}) and guests/debian/rootfs"
# (Not dpkg-deb -x into the root: the package's ./lib would replace the
# merged-/usr symlink /lib -> usr/lib, and with it the dynamic loader.)
mkdir -p "$work/kernel"
dpkg-deb -x "$kdeb" "$work/kernel"
cp -a "$work/kernel/lib/modules" "$root/usr/lib/"
cp -a "$work/kernel/boot/." "$root/boot/"
rm -rf "$work/kernel"
cp -a "$deb_dir/rootfs/." "$root/"
install -m 0755 "$deb_dir/setup.sh" "$root/pivisor-setup.sh"
# A card for the second half: partition 2 is the image (QEMU wants a
# power-of-two card).
card="$work/card.img"
start=67584
truncate -s $(( (start * 512) + SIZE_MB * 1024 * 1024 )) "$card"
truncate -s 2G "$card"
printf 'label: dos\nstart=2048, size=65536, type=c\nstart=%d, size=%d, type=83\n' \
    "$start" $(( SIZE_MB * 2048 )) | sfdisk -q "$card"
mke2fs -q -t ext4 -F -L debian -E offset=$((start * 512)) -d "$root" "$card" "$((SIZE_MB * 1024))k"
rm -rf "$root"
say "second half: debootstrap --second-stage in a pivisor VM (about 10 minutes)"
log="$work/stage2.log"
qemu=${PIVISOR_QEMU:-qemu-system-aarch64}
"$qemu" -M raspi4b -display none -monitor none -serial "file:$log" -serial null \
    -kernel "$image" -dtb "$dtb" -initrd "$bundle" \
    -drive "if=sd,format=raw,file=$card" </dev/null >/dev/null 2>&1 &
qpid=$!
deadline=$(( $(date +%s) + 1800 ))
until grep -aq "DEBSETUP done\|DEBSETUP failed\|Kernel panic\|no VM started" "$log" 2>/dev/null \
    && grep -aq "SYSTEM_OFF\|DEBSETUP failed\|Kernel panic\|no VM started" "$log"; do
    if [ "$(date +%s)" -gt "$deadline" ] || ! kill -0 "$qpid" 2>/dev/null; then
        tail -n 30 "$log" >&2; say "the second half did not finish"; exit 1
    fi
    sleep 2
done
sleep 1
kill "$qpid" 2>/dev/null || true
wait "$qpid" 2>/dev/null || true
qpid=
if ! grep -aq "DEBSETUP done" "$log"; then
    tail -n 30 "$log" >&2; say "the second half failed"; exit 1
fi
grep -a "Base system installed" "$log" >&2 || true
dd if="$card" of="$work/root.ext4" bs=1M skip=$((start * 512)) count=$((SIZE_MB)) \
    iflag=skip_bytes conv=sparse status=none
e2fsck -fy "$work/root.ext4" >/dev/null 2>&1 || [ $? -le 1 ] || { say "e2fsck found errors"; exit 1; }
mkdir -p "$dcache.tmp"
mv "$work/root.ext4" "$dcache.tmp/root.ext4"
cp "$log" "$dcache.tmp/stage2.log"
rm -rf "$dcache"
mv "$dcache.tmp" "$dcache"
cp --sparse=always "$dcache/root.ext4" "$out.tmp" && mv "$out.tmp" "$out"
say "$out: Debian bookworm root file system (cached as $key)"
