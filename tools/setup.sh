#!/usr/bin/env bash
# Install what building and testing pivisor needs, idempotently.
#
#   - the rustup target aarch64-unknown-none-softfloat (the hypervisor never
#     touches FP/SIMD, so guest FP state survives every exit untouched) and
#     aarch64-unknown-linux-musl (the Linux guests' programs);
#   - Debian packages: device-tree-compiler (fdtput, for the test device
#     trees), cpio (the Linux guests' initramfs), gcc-aarch64-linux-gnu,
#     flex, bison, bc, make, xz-utils (the small guest kernel), and
#     qemu-system-arm >= 9.0 (raspi4b). Debian bookworm's own QEMU is 7.2 and
#     has no raspi4b, so the bookworm-backports suite is added to apt's sources,
#     derived from the machine's existing Debian entry (same URI), and QEMU is
#     installed from it;
#   - with the argument `bench` (`make bench`), python3-matplotlib for the
#     report's plot;
#   - with the argument `sd` (`make sd`), mtools, dosfstools, e2fsprogs
#     (the VMs' ext4 disks) and fdisk (the
#     SD-card image, built without root) and the non-free-firmware
#     component of the machine's Debian entry (the Pi boot firmware).
#
# Runs as root, or with sudo when not root. Says what it installs.
set -euo pipefail

say() { printf 'setup: %s\n' "$*" >&2; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        say "not root and no sudo: install the packages listed in tools/setup.sh by hand"; exit 1
    fi
fi

# ---- Rust target -----------------------------------------------------------
# The hypervisor and bare-metal guests; the Linux guests' programs (static,
# linked with rust-lld).
for TARGET in aarch64-unknown-none-softfloat aarch64-unknown-linux-musl; do
    if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
        say "installing rustup target $TARGET"
        rustup target add "$TARGET"
    fi
done

# ---- QEMU version check ----------------------------------------------------
qemu_ok() {
    command -v qemu-system-aarch64 >/dev/null 2>&1 || return 1
    local v major
    v=$(qemu-system-aarch64 --version | head -n1 | sed -E 's/.*version ([0-9]+)\..*/\1/')
    major=${v:-0}
    [ "$major" -ge 9 ] 2>/dev/null || return 1
    qemu-system-aarch64 -M help | grep -q '^raspi4b'
}

need_pkgs=()

command -v dtc >/dev/null 2>&1 || need_pkgs+=(device-tree-compiler)
command -v cpio >/dev/null 2>&1 || need_pkgs+=(cpio)    # the Linux guests' initramfs
# The small guest kernel (tools/build-linux.sh): a cross compiler and what
# the kernel's build needs on the host.
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need_pkgs+=(gcc-aarch64-linux-gnu)
# The disassembly checks of make test (tools/harness/tests/artifacts.rs).
command -v aarch64-linux-gnu-objdump >/dev/null 2>&1 || need_pkgs+=(binutils-aarch64-linux-gnu)
# The guests' SSH keys, generated at build time (tools/fetch-dropbear.sh).
command -v dropbearkey >/dev/null 2>&1 || need_pkgs+=(dropbear-bin)
command -v gcc >/dev/null 2>&1 || need_pkgs+=(gcc libc6-dev)
command -v make >/dev/null 2>&1 || need_pkgs+=(make)
command -v flex >/dev/null 2>&1 || need_pkgs+=(flex)
command -v bison >/dev/null 2>&1 || need_pkgs+=(bison)
command -v bc >/dev/null 2>&1 || need_pkgs+=(bc)
command -v xz >/dev/null 2>&1 || need_pkgs+=(xz-utils)
# `make bench` only (tools/setup.sh bench): the report's plot.
if [ "${1:-}" = bench ]; then
    # Debian's python3 (the one python3-matplotlib installs into), not
    # whichever python3 comes first on PATH.
    /usr/bin/python3 -c 'import matplotlib' >/dev/null 2>&1 || need_pkgs+=(python3 python3-matplotlib)
fi

# `make sd` only (tools/setup.sh sd): the FAT32 image tools, and Debian's
# non-free-firmware component, where the Raspberry Pi boot firmware
# (raspi-firmware) lives.
SD_FIRMWARE=0
if [ "${1:-}" = sd ]; then
    command -v mcopy >/dev/null 2>&1 || need_pkgs+=(mtools)
    command -v mkfs.fat >/dev/null 2>&1 || need_pkgs+=(dosfstools)
    command -v sfdisk >/dev/null 2>&1 || need_pkgs+=(fdisk)
    command -v mke2fs >/dev/null 2>&1 || need_pkgs+=(e2fsprogs)
    SD_FIRMWARE=1
fi

APT_UPDATED=0
apt_update() {
    if [ "$APT_UPDATED" -eq 0 ]; then
        say "apt-get update"
        $SUDO apt-get update -qq
        APT_UPDATED=1
    fi
}

# Adds an apt entry for SUITE with COMPONENT (as FILE under
# sources.list.d), derived from the machine's own Debian entry for its
# release: the same archive URI and keyring. Nothing when apt already has
# that suite and component.
add_apt_entry() {
    local suite=$1 component=$2 file=$3 codename
    codename=$( . /etc/os-release && echo "${VERSION_CODENAME:-}")
    [ -n "$codename" ] || { say "cannot tell the Debian release (/etc/os-release)"; exit 1; }
    suite=${suite//@/$codename}
    if [ -f "/etc/apt/sources.list.d/$file" ] || apt_has "$suite" "$component"; then
        return 0
    fi
    local uri="" signed=""
    # deb822 entries first (.sources files), then one-line entries.
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # Find the stanza whose Suites include the plain release name.
        uri=$(awk -v rel="$codename" '
            BEGIN { RS=""; FS="\n" }
            {
                u=""; s=""
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^URIs:/)   { u = $i; sub(/^URIs:[ \t]*/, "", u) }
                    if ($i ~ /^Suites:/) { s = $i; sub(/^Suites:[ \t]*/, "", s) }
                }
                n = split(s, parts, /[ \t]+/)
                for (j = 1; j <= n; j++) if (parts[j] == rel) { split(u, us, /[ \t]+/); print us[1]; exit }
            }' "$f")
        if [ -n "$uri" ]; then
            signed=$(awk -v rel="$codename" 'BEGIN{RS="";FS="\n"} $0 ~ ("Suites:.*[ \t]" rel "([ \t]|$)") || $0 ~ ("Suites:[ \t]*" rel "([ \t]|$)") { for(i=1;i<=NF;i++) if ($i ~ /^Signed-By:/) { sub(/^Signed-By:[ \t]*/, "", $i); print $i; exit } }' "$f")
            break
        fi
    done
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri=$(awk -v rel="$codename" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } if ($(i+1) == rel) { print $i; exit } }' /etc/apt/sources.list)
    fi
    [ -n "$uri" ] || { say "no Debian '$codename' entry found in apt's sources to derive $suite $component from"; exit 1; }
    say "adding apt suite $suite, component $component (same archive as the existing '$codename' entry)"
    {
        echo "Types: deb"
        echo "URIs: $uri"
        echo "Suites: $suite"
        echo "Components: $component"
        [ -n "$signed" ] && echo "Signed-By: $signed"
    } | $SUDO tee "/etc/apt/sources.list.d/$file" >/dev/null
    APT_UPDATED=0
}

# Whether some apt entry already offers SUITE with COMPONENT.
apt_has() {
    local suite=$1 component=$2
    # deb822: a stanza listing both.
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk -v s="$suite" -v c="$component" '
            BEGIN { RS=""; FS="\n"; found=0 }
            {
                ss=""; cc=""
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^Suites:/) { ss = " " $i " " }
                    if ($i ~ /^Components:/) { cc = " " $i " " }
                }
                if (index(ss, " " s " ") && index(cc, " " c " ")) found=1
            }
            END { exit !found }' "$f" && return 0
    done
    # One-line entries.
    [ -f /etc/apt/sources.list ] && awk -v s="$suite" -v c="$component" '
        $1 == "deb" { line = " " $0 " "; if (index(line, " " s " ") && index(line, " " c " ")) found=1 }
        END { exit !found }' /etc/apt/sources.list && return 0
    return 1
}

if [ "$SD_FIRMWARE" = 1 ] && ! apt_has "$( . /etc/os-release && echo "$VERSION_CODENAME")" non-free-firmware; then
    add_apt_entry @ non-free-firmware pivisor-non-free-firmware.sources
    apt_update
fi

if [ ${#need_pkgs[@]} -gt 0 ]; then
    apt_update
    say "installing ${need_pkgs[*]}"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

if ! qemu_ok; then
    add_apt_entry @-backports main pivisor-backports.sources
    apt_update
    codename=$( . /etc/os-release && echo "${VERSION_CODENAME}")
    say "installing qemu-system-arm from ${codename}-backports (raspi4b needs QEMU >= 9.0)"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t "${codename}-backports" qemu-system-arm >/dev/null
    qemu_ok || { say "qemu-system-aarch64 still lacks raspi4b after install"; exit 1; }
fi
exit 0
