#!/usr/bin/env bash
# Build the Raspberry Pi 4 SD card: a folder to copy onto a FAT32 card, and
# a raw disk image (MBR, one bootable FAT32 partition) for dd or Raspberry
# Pi Imager. No root and no loop mounts: sfdisk writes the partition table
# into the image file, mkfs.fat formats the partition inside it, mtools
# copies the files in.
#
#   tools/mksd.sh DIR IMAGE FIRMWARE-DIR DTB-DIR CONFIG KERNEL GUESTS
#
# DIR gets: the firmware (start4*.elf, fixup4*.dat, LICENCE.broadcom), the
# three Pi 4 device trees, config.txt, kernel8.img, guests.img.
set -euo pipefail
[ $# -eq 7 ] || { echo "usage: mksd.sh DIR IMAGE FIRMWARE-DIR DTB-DIR CONFIG KERNEL GUESTS" >&2; exit 2; }
dir=$1 img=$2 fw=$3 dtbs=$4 config=$5 kernel=$6 guests=$7
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

# The disk: 1 MiB for the MBR and alignment, then the FAT32 partition,
# sized for the files plus room for bigger guest bundles (at least 256 MiB).
used_kib=$(du -sk "$dir" | cut -f1)
part_mib=$(( (used_kib / 1024 + 64) > 256 ? (used_kib / 1024 + 64) : 256 ))
part_sectors=$(( part_mib * 2048 ))
rm -f "$img.tmp"
truncate -s $(( (1 + part_mib) * 1024 * 1024 )) "$img.tmp"
printf 'label: dos\nlabel-id: 0x50766973\nstart=2048, size=%d, type=c, bootable\n' "$part_sectors" \
    | sfdisk --quiet "$img.tmp"
mkfs.fat -F 32 -n PIVISOR --invariant --offset 2048 "$img.tmp" $(( part_mib * 1024 )) >/dev/null
export MTOOLS_SKIP_CHECK=1
for f in "$dir"/*; do
    mcopy -m -i "$img.tmp@@1M" "$f" "::/${f##*/}"
done
mv "$img.tmp" "$img"
say "$dir/ ($(ls "$dir" | wc -l) files, $(( used_kib / 1024 )) MiB) and $img ($(( 1 + part_mib )) MiB: MBR, FAT32 partition of $part_mib MiB)"
