#!/usr/bin/env bash
# Build the Raspberry Pi 4 SD card: a folder to copy onto a FAT32 card, and
# a raw disk image for dd or Raspberry Pi Imager. No root and no loop
# mounts: pivisor-mkbundle --card writes the partition table into the
# image file, mkfs.fat and mke2fs format the partitions inside it at their
# offsets, mtools copies the files in.
#
#   tools/mksd.sh DIR IMAGE FIRMWARE-DIR DTB-DIR CONFIG KERNEL GUESTS
#
# DIR gets: the firmware (start4*.elf, fixup4*.dat, LICENCE.broadcom), the
# three Pi 4 device trees, config.txt, kernel8.img, guests.img. The image:
# partition 1 FAT32 with DIR's files (at least 256 MiB, room for bigger
# bundles), then one ext4 partition per VM disk of the bundle's
# configuration (`disk = sd:N, SIZE`), under the number it names; a VM's
# disk starts with guests/disks/<VM name>/ if that exists, else a README;
# with MKSD_DISK_IMAGE=FILE every VM's disk is a copy of that ext4 file
# system instead, grown to its partition (the Debian card).
# The image's size is a power of two (QEMU raspi4b insists).
set -euo pipefail
[ $# -eq 7 ] || { echo "usage: mksd.sh DIR IMAGE FIRMWARE-DIR DTB-DIR CONFIG KERNEL GUESTS" >&2; exit 2; }
dir=$1 img=$2 fw=$3 dtbs=$4 config=$5 kernel=$6 guests=$7
here=$(cd "$(dirname "$0")" && pwd)
say() { printf 'mksd: %s\n' "$*" >&2; }

# The card's files.
rm -rf "$dir"
mkdir -p "$dir"
cp "$fw"/start4*.elf "$fw"/fixup4*.dat "$fw"/LICENCE.broadcom "$dir/"
cp "$dtbs"/bcm2711-rpi-4-b.dtb "$dtbs"/bcm2711-rpi-400.dtb "$dtbs"/bcm2711-rpi-cm4-io.dtb "$dir/"
cp "$config" "$dir/config.txt"
cp "$kernel" "$dir/kernel8.img"
cp "$guests" "$dir/guests.img"
# Fixed timestamps: the same inputs give the same image.
touch -d "2020-01-01 00:00:00 UTC" "$dir"/*

# The disk: the partition table for the bundle's VMs (partition 1 the
# FAT32 boot partition, sized for the files plus room for bigger guest
# bundles, at least 256 MiB).
used_kib=$(du -sk "$dir" | cut -f1)
part_mib=$(( (used_kib / 1024 + 64) > 256 ? (used_kib / 1024 + 64) : 256 ))
rm -f "$img.tmp"
guests_abs=$(cd "$(dirname "$guests")" && pwd)/${guests##*/}
img_abs=$(cd "$(dirname "$img")" && pwd)/${img##*/}
layout=$(cd "$here/.." && cargo run --release -q -p pivisor-mkbundle -- --card "$guests_abs" "$img_abs.tmp" "$part_mib")
# Partition 1 at 1 MiB: FAT32 with the card's files.
read -r _ p1_start p1_sectors _ <<< "$(echo "$layout" | head -n1)"
[ "$p1_start" = 2048 ] || { say "partition 1 must start at 1 MiB"; exit 1; }
# (Made in a file of its own and copied in: mkfs.fat --offset misplaces
# the root directory when the image is larger than the file system.)
rm -f "$img.fat"
truncate -s $(( p1_sectors * 512 )) "$img.fat"
mkfs.fat -F 32 -n PIVISOR --invariant -h 2048 "$img.fat" >/dev/null
export MTOOLS_SKIP_CHECK=1
for f in "$dir"/*; do
    mcopy -m -i "$img.fat" "$f" "::/${f##*/}"
done
dd if="$img.fat" of="$img.tmp" bs=1M seek=1 conv=notrunc,sparse status=none
rm -f "$img.fat"
# The VMs' disks: ext4, from guests/disks/<VM>/ or a README; spares left
# empty.
disks=""
while read -r n start sectors who; do
    [ "$n" = 1 ] && continue
    [ "$who" = spare ] && continue
    if [ -n "${MKSD_DISK_IMAGE:-}" ]; then
        # Every VM's partition a copy of this file system (the Debian
        # card: tools/mkdebian.sh's root file system), grown to fill it.
        part=$(mktemp "$img.part.XXXXXX")
        cp --sparse=always "$MKSD_DISK_IMAGE" "$part"
        e2fsck -fy "$part" >/dev/null 2>&1 || [ $? -le 1 ] || { say "$MKSD_DISK_IMAGE: e2fsck found errors"; exit 1; }
        resize2fs -f "$part" "$(( sectors / 2 ))K" >/dev/null 2>&1 \
            || { say "$MKSD_DISK_IMAGE does not fit partition $n ($(( sectors / 2048 )) MiB)"; exit 1; }
        # root's SSH key, made for this card (the same in every VM of it:
        # root of each logs in to the others without a password).
        if [ -z "${cardkey:-}" ]; then
            cardkey=$(mktemp -d)
            ssh-keygen -q -t ed25519 -N '' -C "root@pivisor-card" -f "$cardkey/id_ed25519"
            printf 'Host 10.0.0.*\n    StrictHostKeyChecking accept-new\n' > "$cardkey/config"
        fi
        debugfs -w -f - "$part" >/dev/null 2>&1 <<DEBUGFS
mkdir /root/.ssh
write $cardkey/id_ed25519 /root/.ssh/id_ed25519
write $cardkey/id_ed25519.pub /root/.ssh/id_ed25519.pub
write $cardkey/id_ed25519.pub /root/.ssh/authorized_keys
write $cardkey/config /root/.ssh/config
set_inode_field /root/.ssh mode 040700
set_inode_field /root/.ssh/id_ed25519 mode 0100600
set_inode_field /root/.ssh/authorized_keys mode 0100600
set_inode_field /root/.ssh/config mode 0100600
DEBUGFS
        # SSH host keys of this VM's own (the image has none): made here,
        # where it is instant, not on the VM's first boot, where RSA key
        # generation takes long under emulation.
        hostkeys=$(mktemp -d)
        cmds=""
        for t in rsa ecdsa ed25519; do
            ssh-keygen -q -t "$t" -N '' -C "root@${who%%,*}" -f "$hostkeys/ssh_host_${t}_key"
            cmds="${cmds}write $hostkeys/ssh_host_${t}_key /etc/ssh/ssh_host_${t}_key
set_inode_field /etc/ssh/ssh_host_${t}_key mode 0100600
write $hostkeys/ssh_host_${t}_key.pub /etc/ssh/ssh_host_${t}_key.pub
set_inode_field /etc/ssh/ssh_host_${t}_key.pub mode 0100644
"
        done
        printf '%s' "$cmds" | debugfs -w -f - "$part" >/dev/null 2>&1
        rm -rf "$hostkeys"
        debugfs -R "stat /etc/ssh/ssh_host_ed25519_key" "$part" 2>/dev/null | grep -q "Mode:  0600" \
            || { say "partition $n: the SSH host keys were not written"; exit 1; }
        dd if="$part" of="$img.tmp" bs=1M seek=$(( start * 512 )) oflag=seek_bytes conv=notrunc,sparse status=none
        rm -f "$part"
        disks="$disks, partition $n ($(( sectors / 2048 )) MiB) for $who from ${MKSD_DISK_IMAGE##*/}"
        continue
    fi
    content=$(mktemp -d)
    first=${who%%,*}
    if [ -d "$here/../guests/disks/$first" ]; then
        cp -a "$here/../guests/disks/$first/." "$content/"
    else
        printf 'The disk of VM %s (SD card partition %s), made by make sd.\n' "$who" "$n" > "$content/README"
    fi
    find "$content" -exec touch -h -d "2020-01-01 00:00:00 UTC" {} +
    E2FSPROGS_FAKE_TIME=1577836800 mke2fs -q -t ext4 -F -L "pivisor-sd$n" -U clear \
        -E "offset=$(( start * 512 )),root_owner=0:0" -d "$content" "$img.tmp" $(( sectors / 2 ))
    rm -rf "$content"
    disks="$disks, ext4 partition $n ($(( sectors / 2048 )) MiB) for $who"
done <<< "$layout"
[ -n "${cardkey:-}" ] && rm -rf "$cardkey"
mv "$img.tmp" "$img"
say "$dir/ ($(ls "$dir" | wc -l) files, $(( used_kib / 1024 )) MiB) and $img ($(( $(stat -c %s "$img") >> 20 )) MiB: MBR, FAT32 partition 1 of $part_mib MiB$disks)"
