#!/usr/bin/env bash
# Build a Linux guest's initramfs: a gzipped newc cpio with busybox, an
# /init script (the applet links are made by /init itself on the target)
# and the project's own programs in /bin; an argument PATH=FILE puts FILE
# at /PATH instead (data files, e.g. guest bundles for the KVM host; an
# executable FILE stays executable).
#
#   tools/mkinitramfs.sh OUT.cpio.gz BUSYBOX INIT [PROGRAM | PATH=FILE ...]
#
# Reproducible: fixed order, owner and timestamps.
set -euo pipefail
out=${1:?usage: mkinitramfs.sh OUT BUSYBOX INIT}
busybox=${2:?busybox binary}
init=${3:?init script}
shift 3
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,tmp,root}
install -m 0755 "$busybox" "$root/bin/busybox"
install -m 0755 "$init" "$root/init"
for p in "$@"; do
  case $p in
    *=*) mode=0644; [ -x "${p#*=}" ] && mode=0755
         install -D -m "$mode" "${p#*=}" "$root/${p%%=*}" ;;
    *) install -m 0755 "$p" "$root/bin/" ;;
  esac
done
find "$root" -exec touch -h -d @0 {} +
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet) | gzip -9n > "$out.tmp"
mv "$out.tmp" "$out"
