#!/usr/bin/env bash
# Fetch the Raspberry Pi 4 device trees from Debian's arm64 kernel package.
#
#   tools/fetch-dtbs.sh OUTDIR
#
# Resolves linux-image-arm64:arm64's current dependency at fetch time (no
# version hard-coded), downloads that package into the cache with apt, checks
# its SHA256 against the package index, and extracts bcm2711-rpi-4-b.dtb,
# bcm2711-rpi-400.dtb and bcm2711-rpi-cm4-io.dtb into OUTDIR (with VERSION).
# A cached package whose checksum does not match is deleted and fetched again.
set -euo pipefail
out=${1:?usage: fetch-dtbs.sh OUTDIR}
cache=${PIVISOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pivisor}/debian
dtbs=(bcm2711-rpi-4-b.dtb bcm2711-rpi-400.dtb bcm2711-rpi-cm4-io.dtb)
say() { printf 'fetch-dtbs: %s\n' "$*" >&2; }

have_all=1
for d in "${dtbs[@]}"; do [ -s "$out/$d" ] || have_all=0; done
[ "$have_all" = 1 ] && [ -s "$out/VERSION" ] && exit 0

SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    say "adding dpkg architecture arm64 (for Debian's arm64 kernel package)"
    $SUDO dpkg --add-architecture arm64
    $SUDO apt-get update -qq
fi
pkg=$(apt-cache depends linux-image-arm64:arm64 2>/dev/null | awk '/Depends: linux-image-/ { print $2; exit }')
if [ -z "$pkg" ]; then
    $SUDO apt-get update -qq
    pkg=$(apt-cache depends linux-image-arm64:arm64 | awk '/Depends: linux-image-/ { print $2; exit }')
fi
[ -n "$pkg" ] || { say "cannot resolve linux-image-arm64:arm64"; exit 1; }
pkg=${pkg%:arm64}:arm64

# 'URI' file size SHA256:hash, for the candidate version.
read -r _ file _ sum < <(apt-get download --print-uris "$pkg" | head -n1)
want=${sum#SHA256:}
mkdir -p "$cache" "$out"
deb="$cache/$file"
if [ -f "$deb" ] && [ "$(sha256sum "$deb" | cut -d' ' -f1)" != "$want" ]; then
    say "cached $file fails its checksum: fetching it again"
    rm -f "$deb"
fi
if [ ! -f "$deb" ]; then
    say "downloading $pkg"
    tmp=$(mktemp -d "$cache/dl.XXXXXX")
    chmod 755 "$tmp"
    (cd "$tmp" && apt-get download -q "$pkg" 2>/dev/null) || (cd "$tmp" && apt-get download "$pkg")
    got=$(sha256sum "$tmp"/*.deb | cut -d' ' -f1)
    [ "$got" = "$want" ] || { rm -rf "$tmp"; say "checksum mismatch for $file"; exit 1; }
    mv "$tmp"/*.deb "$deb"
    rm -rf "$tmp"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards '*/broadcom/bcm2711-*.dtb'
for d in "${dtbs[@]}"; do
    src=$(find "$tmp" -name "$d" | head -n1)
    [ -n "$src" ] || { say "$d not in $file"; exit 1; }
    cp "$src" "$out/$d"
done
echo "$file sha256:$want" > "$out/VERSION"
say "device trees from $file in $out"
