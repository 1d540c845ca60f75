#!/usr/bin/env bash
# Fetch the Raspberry Pi 4 device trees from Debian's arm64 kernel package.
#
#   tools/fetch-dtbs.sh OUTDIR
#
# Resolves linux-image-arm64:arm64's current dependency at fetch time (no
# version hard-coded), downloads that package into the cache with apt, checks
# its SHA256 against the package index (tools/debfetch.sh), and extracts
# bcm2711-rpi-4-b.dtb, bcm2711-rpi-400.dtb and bcm2711-rpi-cm4-io.dtb into
# OUTDIR (with VERSION).
set -euo pipefail
out=${1:?usage: fetch-dtbs.sh OUTDIR}
dtbs=(bcm2711-rpi-4-b.dtb bcm2711-rpi-400.dtb bcm2711-rpi-cm4-io.dtb)
say() { printf 'fetch-dtbs: %s\n' "$*" >&2; }
. "$(dirname "$0")/debfetch.sh"

have_all=1
for d in "${dtbs[@]}"; do [ -s "$out/$d" ] || have_all=0; done
[ "$have_all" = 1 ] && [ -s "$out/VERSION" ] && exit 0

pkg=$(deb_resolve_kernel)
deb=$(deb_fetch "$pkg")
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards '*/broadcom/bcm2711-*.dtb'
for d in "${dtbs[@]}"; do
    src=$(find "$tmp" -name "$d" | head -n1)
    [ -n "$src" ] || { say "$d not in ${deb##*/}"; exit 1; }
    cp "$src" "$out/$d"
done
echo "${deb##*/} sha256:$(sha256sum "$deb" | cut -d' ' -f1)" > "$out/VERSION"
say "device trees from ${deb##*/} in $out"
