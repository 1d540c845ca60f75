#!/usr/bin/env bash
# Fetch the Raspberry Pi 4 boot firmware from Debian's raspi-firmware
# package (component non-free-firmware; `tools/setup.sh sd` adds it to
# apt's sources).
#
#   tools/fetch-firmware.sh OUTDIR
#
# Resolves the package's current version at fetch time, downloads it into
# the cache with apt, checks its SHA256 against the package index
# (tools/debfetch.sh), and extracts the Pi 4's firmware into OUTDIR:
# start4.elf and fixup4.dat, their cut-down (cd), debug (db) and extended
# (x) variants, and the package's copyright file (the firmware's licence,
# LICENCE.broadcom on the card). OUTDIR/VERSION records the package and its
# checksum, OUTDIR/SHA256SUMS each file's. The firmware is never committed.
set -euo pipefail
out=${1:?usage: fetch-firmware.sh OUTDIR}
files=(start4.elf start4cd.elf start4db.elf start4x.elf
       fixup4.dat fixup4cd.dat fixup4db.dat fixup4x.dat)
say() { printf 'fetch-firmware: %s\n' "$*" >&2; }
. "$(dirname "$0")/debfetch.sh"

if [ -s "$out/VERSION" ] && [ -s "$out/SHA256SUMS" ] && (cd "$out" && sha256sum --quiet -c SHA256SUMS) 2>/dev/null; then
    exit 0
fi
if ! apt-cache show raspi-firmware >/dev/null 2>&1; then
    say "apt does not know raspi-firmware: Debian's non-free-firmware component is missing (tools/setup.sh sd adds it)"
    exit 1
fi
deb=$(deb_fetch raspi-firmware)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" ./usr/lib/raspi-firmware ./usr/share/doc/raspi-firmware/copyright
rm -rf "$out"
mkdir -p "$out"
for f in "${files[@]}"; do
    [ -s "$tmp/usr/lib/raspi-firmware/$f" ] || { say "$f is not in ${deb##*/}"; exit 1; }
    cp "$tmp/usr/lib/raspi-firmware/$f" "$out/$f"
done
cp "$tmp/usr/share/doc/raspi-firmware/copyright" "$out/LICENCE.broadcom"
(cd "$out" && sha256sum "${files[@]}" LICENCE.broadcom > SHA256SUMS)
echo "${deb##*/} sha256:$(sha256sum "$deb" | cut -d' ' -f1)" > "$out/VERSION"
say "Pi 4 firmware from ${deb##*/} in $out"
