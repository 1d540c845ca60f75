#!/bin/sh
# Run once inside the new root file system, in a pivisor VM, after
# debootstrap's second stage (tools/mkdebian.sh): what the host cannot do
# for an arm64 system without running its programs.
set -e
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ver=$(ls /lib/modules | head -n1)
depmod -a "$ver"
# A login for the console and SSH: root, password "pivisor" (README).
echo 'root:pivisor' | chpasswd
# No shared SSH host keys in the image: `make sd` writes each partition
# its own (tools/mksd.sh), and pivisor-boot.service makes them on a
# first boot that finds none.
rm -f /etc/ssh/ssh_host_*
# Root logs in over SSH with the key the card carries (tools/mkdebian.sh
# generated it) or the password.
sed -i 's/^#\?PermitRootLogin.*/PermitRootLogin yes/' /etc/ssh/sshd_config
systemctl enable pivisor-boot.service
systemctl enable pivisor-router.service
systemctl enable ssh.service
# No network configuration from ifupdown: pivisor-boot does it from the
# kernel command line.
systemctl mask networking.service 2>/dev/null || true
apt-get clean
rm -rf /debootstrap /var/log/bootstrap.log
# / is mounted by the initramfs (guests/linux/init: root=/dev/vda in a
# VM, root=sd:N when the same kernel boots natively from the card), so
# fstab names no device that exists only one way.
echo "# / is mounted by the initramfs (root= on the kernel command line)" > /etc/fstab
