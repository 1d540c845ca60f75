#!/usr/bin/env bash
# Build the small guest kernel from Debian's linux-source.
#
#   tools/build-linux.sh OUT_IMAGE
#
# Source: linux-source's current dependency (linux-source-X.Y, resolved at
# fetch time, checksummed, cached: tools/debfetch.sh). Configuration:
# `make allnoconfig` with guests/linux/small.config applied, every line of
# which is then checked in the result. Compiler: gcc-aarch64-linux-gnu.
# The Image is cached by a hash of all inputs (source package, fragment,
# this script, compiler version), so it is built once per machine (about
# 5-10 minutes on 2 cores) and copied from the cache afterwards.
set -euo pipefail
out=${1:?usage: build-linux.sh OUT_IMAGE}
here=$(cd "$(dirname "$0")" && pwd)
frag="$here/../guests/linux/small.config"
say() { printf 'build-linux: %s\n' "$*" >&2; }
. "$here/debfetch.sh"

src=$(apt-cache depends linux-source 2>/dev/null | awk '/Depends: linux-source-/ { print $2; exit }')
if [ -z "$src" ]; then
    $SUDO apt-get update -qq
    src=$(apt-cache depends linux-source | awk '/Depends: linux-source-/ { print $2; exit }')
fi
[ -n "$src" ] || { say "cannot resolve linux-source"; exit 1; }
deb=$(deb_fetch "$src")
cc=aarch64-linux-gnu-gcc
command -v "$cc" >/dev/null || { say "$cc missing (tools/setup.sh installs gcc-aarch64-linux-gnu)"; exit 1; }
key=$( { sha256sum "$deb" "$frag" "$0" | cut -d' ' -f1; "$cc" --version | head -n1; } | sha256sum | cut -c1-16)
kcache="${cache%/debian}/kernel/$key"
if [ ! -s "$kcache/Image" ]; then
    say "building the guest kernel from ${deb##*/} (cached as $key; 5-10 minutes the first time)"
    work=$(mktemp -d "${cache%/debian}/kbuild.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" --wildcards './usr/src/linux-source-*.tar.xz'
    tar -xJf "$work"/usr/src/linux-source-*.tar.xz -C "$work"
    rm -rf "$work/usr"
    ksrc=$(find "$work" -maxdepth 1 -type d -name 'linux-source-*' | head -n1)
    mk() { make -C "$ksrc" -s ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- "$@"; }
    mk KCONFIG_ALLCONFIG="$frag" allnoconfig
    bad=0
    while IFS= read -r line; do
        case "$line" in
            CONFIG_*=*) grep -qx -- "$line" "$ksrc/.config" || { say "not in the result: $line"; bad=1; } ;;
            "# CONFIG_"*" is not set") opt=${line#\# }; opt=${opt%% *}
                ! grep -q "^$opt=" "$ksrc/.config" || { say "set although the fragment says not: $opt"; bad=1; } ;;
        esac
    done < "$frag"
    [ "$bad" = 0 ] || { say "guests/linux/small.config does not hold (dependencies missing?)"; exit 1; }
    mk -j"$(nproc)" Image
    mkdir -p "$kcache.tmp"
    cp "$ksrc/arch/arm64/boot/Image" "$kcache.tmp/Image"
    cp "$ksrc/.config" "$kcache.tmp/config"
    echo "${deb##*/}" > "$kcache.tmp/SOURCE"
    rm -rf "$kcache"
    mv "$kcache.tmp" "$kcache"
fi
mkdir -p "$(dirname "$out")"
cp "$kcache/Image" "$out.tmp"
mv "$out.tmp" "$out"
say "$(cat "$kcache/SOURCE") -> $out ($(du -h "$out" | cut -f1))"
