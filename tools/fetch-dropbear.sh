#!/usr/bin/env bash
# An SSH server and client for the Linux guests' initramfs: Debian's
# dropbear-bin (arm64) with the shared libraries it needs, taken from
# Debian's own arm64 packages (fetched, checksummed, cached:
# tools/debfetch.sh), and keys generated at build time on this machine.
#
#   tools/fetch-dropbear.sh OUTDIR
#
# OUTDIR/files lists `PATH=FILE` arguments for tools/mkinitramfs.sh:
# /bin/dropbear and /bin/dbclient, the dynamic loader and every library
# they need (found by following the ELF NEEDED entries), the host key
# (/etc/dropbear/dropbear_ed25519_host_key) and root's client key
# (/root/.ssh/id_dropbear) with its public half in
# /root/.ssh/authorized_keys: every VM booting this initramfs accepts the
# others' `ssh root@ADDR` without a password. The keys are this build's,
# for a LAN inside one board; a user exposing a VM gives it its own.
set -euo pipefail
out=${1:?usage: fetch-dropbear.sh OUTDIR}
out=$(realpath -m "$out")
here=$(cd "$(dirname "$0")" && pwd)
say() { printf 'fetch-dropbear: %s\n' "$*" >&2; }
. "$here/debfetch.sh"
command -v dropbearkey >/dev/null || { say "dropbearkey missing (tools/setup.sh installs dropbear-bin)"; exit 1; }
objdump=aarch64-linux-gnu-objdump
command -v "$objdump" >/dev/null || { say "$objdump missing (tools/setup.sh installs binutils-aarch64-linux-gnu)"; exit 1; }

rm -rf "$out.tmp"
mkdir -p "$out.tmp/stage" "$out.tmp/root"
for p in dropbear-bin libc6 libcrypt1 libtomcrypt1 libtommath1 libgmp10 zlib1g; do
    deb=$(deb_fetch "$p:arm64")
    dpkg-deb -x "$deb" "$out.tmp/stage"
done
stage=$out.tmp/stage
r=$out.tmp/root
mkdir -p "$r/bin" "$r/lib/aarch64-linux-gnu" "$r/etc/dropbear" "$r/root/.ssh"
cp "$stage/usr/sbin/dropbear" "$r/bin/dropbear"
cp "$stage/usr/bin/dbclient" "$r/bin/dbclient"
# The loader at the path the binaries name, the libraries where Debian's
# loader looks by default.
interp=$(aarch64-linux-gnu-readelf -l "$r/bin/dropbear" | sed -n 's/.*program interpreter: \(.*\)]/\1/p')
[ "$interp" = /lib/ld-linux-aarch64.so.1 ] || { say "unexpected interpreter '$interp'"; exit 1; }
find_lib() {
    local f
    for d in lib/aarch64-linux-gnu usr/lib/aarch64-linux-gnu lib usr/lib; do
        f="$stage/$d/$1"
        [ -e "$f" ] && { readlink -f "$f"; return; }
    done
    say "library $1 is in none of the fetched packages"; return 1
}
cp "$(find_lib ld-linux-aarch64.so.1)" "$r/lib/ld-linux-aarch64.so.1"
todo=("$r/bin/dropbear" "$r/bin/dbclient")
while [ ${#todo[@]} -gt 0 ]; do
    f=${todo[0]}; todo=("${todo[@]:1}")
    for lib in $("$objdump" -p "$f" | awk '/NEEDED/ { print $2 }'); do
        [ "$lib" = ld-linux-aarch64.so.1 ] && continue
        dst="$r/lib/aarch64-linux-gnu/$lib"
        [ -e "$dst" ] && continue
        cp "$(find_lib "$lib")" "$dst"
        todo+=("$dst")
    done
done
dropbearkey -t ed25519 -f "$r/etc/dropbear/dropbear_ed25519_host_key" >/dev/null
dropbearkey -t ed25519 -f "$r/root/.ssh/id_dropbear" >/dev/null
dropbearkey -y -f "$r/root/.ssh/id_dropbear" | grep '^ssh-ed25519 ' > "$r/root/.ssh/authorized_keys"
chmod 0755 "$r/bin/"* "$r/lib/ld-linux-aarch64.so.1"
(cd "$r" && find . -type f | LC_ALL=C sort | sed "s|^\./\(.*\)|\1=$out/root/\1|") > "$out.tmp/files"
rm -rf "$out.tmp/stage" "$out"
mv "$out.tmp" "$out"
sed -i "s|=$out.tmp/root/|=$out/root/|" "$out/files"
say "dropbear $(dpkg-deb -f "$(deb_fetch dropbear-bin:arm64)" Version) and $(ls "$out/root/lib/aarch64-linux-gnu" | wc -l) libraries -> $out"
