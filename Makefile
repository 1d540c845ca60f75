# pivisor: build, run and test. `make help` lists the targets.
#
# `make run` and `make test` install what they need (tools/setup.sh: the
# rustup target, Debian's device-tree-compiler and QEMU >= 9.0 from
# bookworm-backports), idempotently, with sudo when not root.

TARGET   := aarch64-unknown-none-softfloat
ELF      := target/$(TARGET)/release/pivisor
BUILD    := build
IMAGE    := $(BUILD)/kernel8.img
IMAGE_80 := $(BUILD)/kernel8-80000.img
DTB_DIR  := $(BUILD)/dtb
DTB      := $(DTB_DIR)/bcm2711-rpi-4-b.dtb
QEMU     ?= qemu-system-aarch64
# Hypervisor options for `make run` (see src/bootargs.rs), e.g. BOOTARGS=pivisor.log=debug
BOOTARGS ?=
# More QEMU arguments for `make run`, e.g. a USB device for a VM that owns
# the USB controller: QEMU_EXTRA="-device usb-net,netdev=n0 -netdev user,id=n0,restrict=on"
QEMU_EXTRA ?=
# What a bundle's VMs expect of the board: BUNDLE=debian's router owns
# the USB controller, so `make run` plugs QEMU's USB network device into
# it (its user-mode network, restrict=on: nothing leaves QEMU).
QEMU_BUNDLE_debian := -device usb-net,netdev=n0 -netdev user,id=n0,restrict=on
GUEST_DIR := guests/testguest
GUEST_ELF := $(GUEST_DIR)/target/$(TARGET)/release/testguest
GUEST_IMG := $(BUILD)/guests/testguest.img
# The test guest is linked at its load address, not as a PIE like pivisor.
GUEST_RUSTFLAGS := -C relocation-model=static -C force-frame-pointers=yes
BENCH_DIR := guests/bench
BENCH_ELF := $(BENCH_DIR)/target/$(TARGET)/release/bench
BENCH_IMG := $(BUILD)/guests/bench.img
MKBUNDLE := cargo run --release -q -p pivisor-mkbundle --
BUNDLES  := $(BUILD)/guests-test.img $(BUILD)/guests-two.img $(BUILD)/guests-pt.img $(BUILD)/guests-toobig.img $(BUILD)/guests-bench.img \
            $(BUILD)/guests-hostile.img $(BUILD)/guests-crash.img $(BUILD)/guests-resetloop.img \
            $(BUILD)/guests-panic.img
LINUX_DIR := $(BUILD)/linux
# The bundle `make run` boots: linux (Linux, four vCPUs, the default),
# linux-debian (the same with Debian's own kernel), debian (two Debian
# systems, each on its own partition of the card), linux-two (two Linux
# VMs), test (one test VM), two (two test VMs), pt (a test VM owning the
# PL011).
BUNDLE   ?= linux
TEST_DTBS := $(DTB_DIR)/test-no-cpus.dtb $(DTB_DIR)/test-no-soc-ranges.dtb $(DTB_DIR)/test-all-reserved.dtb \
             $(DTB_DIR)/native-host.dtb $(DTB_DIR)/native-usb.dtb $(DTB_DIR)/native-debian.dtb
# The second serial port is the mini UART: the hypervisor's messages go
# there once a VM owns the PL011 (BUNDLE=pt), kept in build/mini-uart.log;
# it is also a socket, build/mini-uart.sock, for typing into the monitor
# (`socat -,raw,echo=0 UNIX-CONNECT:build/mini-uart.sock`, or
# `nc -U build/mini-uart.sock`).
# `make run` boots the SD card `make sd` writes for the bundle: QEMU
# raspi4b has no VideoCore firmware to read its boot partition, so
# kernel8.img, the device tree and guests.img are taken out of that
# partition (mtools) for -kernel, -dtb and -initrd, and the card itself is
# attached (-drive if=sd): what the firmware would load and the disks the
# VMs see come from the one image, as on a Pi.
RUN_DIR  := $(BUILD)/run
QEMU_RUN  = $(QEMU) -M raspi4b -display none -serial mon:stdio \
            -chardev socket,id=mini,path=$(BUILD)/mini-uart.sock,server=on,wait=off,logfile=$(BUILD)/mini-uart.log \
            -serial chardev:mini \
            -kernel $(RUN_DIR)/kernel8.img -dtb $(RUN_DIR)/bcm2711-rpi-4-b.dtb -initrd $(RUN_DIR)/guests.img \
            -drive if=sd,format=raw,file=$(call CARD,$(BUNDLE)) \
            $(if $(BOOTARGS),-append "$(BOOTARGS)") $(QEMU_BUNDLE_$(BUNDLE)) $(QEMU_EXTRA)
RUN_FILES = mkdir -p $(RUN_DIR) && MTOOLS_SKIP_CHECK=1 mcopy -o -n -i $(call CARD,$(BUNDLE))@@1M \
            ::/kernel8.img ::/bcm2711-rpi-4-b.dtb ::/guests.img $(RUN_DIR)/

.PHONY: all setup run test unit-test qemu-test debian-test debian-root bench sd fuzz soak gdb clippy fmt clean help bundles FORCE

all: $(IMAGE) bundles

bundles: $(BUNDLES)

help:
	@echo "make            build $(IMAGE)"
	@echo "make run        boot the SD card of a guest bundle on QEMU raspi4b (BUNDLE=linux|debian|linux-debian|linux-two|linux-disks|test|two|pt; Ctrl-A x quits)"
	@echo "make test       host unit tests + QEMU integration tests"
	@echo "make bench      native vs pivisor vs KVM benchmarks: build/bench/report.md, results.json/.csv, ratios.png"
	@echo "make soak       two Linux VMs under load, one crashing and restarted (SOAK_MINUTES=30)"
	@echo "make fuzz       long fuzzing runs of every guest-facing parser (FUZZ_SECONDS per target)"
	@echo "make sd         the Pi 4 SD card of a bundle: build/card-BUNDLE/ (its boot files) and build/card-BUNDLE.img (dd it)"
	@echo "make gdb        QEMU waiting for a debugger on :1234"
	@echo "make clippy     lints for the image and the host code"

setup:
	@tools/setup.sh

$(ELF): FORCE setup
	cargo build --release --target $(TARGET)

$(IMAGE): $(ELF)
	@mkdir -p $(BUILD)
	cargo run --release -q -p pivisor-mkimage -- $(ELF) $@

$(IMAGE_80): $(ELF)
	@mkdir -p $(BUILD)
	cargo run --release -q -p pivisor-mkimage -- $(ELF) $@ --text-offset 0x80000

$(GUEST_ELF): FORCE setup
	cd $(GUEST_DIR) && RUSTFLAGS="$(GUEST_RUSTFLAGS)" cargo build --release --target $(TARGET)

$(GUEST_IMG): $(GUEST_ELF)
	@mkdir -p $(dir $@)
	cargo run --release -q -p pivisor-mkimage -- $(GUEST_ELF) $@ --base 0x80000

# The micro-benchmark guest, linked at 0x80000 like the test guest.
$(BENCH_ELF): FORCE setup
	cd $(BENCH_DIR) && RUSTFLAGS="$(GUEST_RUSTFLAGS)" cargo build --release --target $(TARGET)

$(BENCH_IMG): $(BENCH_ELF)
	@mkdir -p $(dir $@)
	cargo run --release -q -p pivisor-mkimage -- $(BENCH_ELF) $@ --base 0x80000

$(BUILD)/guests-bench.img: guests/bench.conf $(BENCH_IMG)
	$(MKBUNDLE) $< $@ -L $(BUILD)/guests

$(BUILD)/guests-test.img: guests/testguest.conf $(GUEST_IMG)
	$(MKBUNDLE) $< $@ -L $(BUILD)/guests
$(BUILD)/guests/testguest-extra.dtb: guests/testguest-extra.dts | setup
	@mkdir -p $(dir $@)
	dtc -I dts -O dtb -o $@ $<
$(BUILD)/guests-two.img: guests/testguest-two.conf $(GUEST_IMG) $(BUILD)/guests/testguest-extra.dtb
	$(MKBUNDLE) $< $@ -L $(BUILD)/guests
$(BUILD)/guests-pt.img: guests/testguest-pt.conf $(GUEST_IMG)
	$(MKBUNDLE) $< $@ -L $(BUILD)/guests
$(BUILD)/guests-hostile.img: guests/hostile.conf $(GUEST_IMG)
	$(MKBUNDLE) $< $@ -L $(BUILD)/guests
$(BUILD)/guests-crash.img: guests/crash.conf $(GUEST_IMG)
	$(MKBUNDLE) $< $@ -L $(BUILD)/guests
$(BUILD)/guests-resetloop.img: guests/resetloop.conf $(GUEST_IMG)
	$(MKBUNDLE) $< $@ -L $(BUILD)/guests
$(BUILD)/guests-panic.img: guests/panic.conf $(GUEST_IMG)
	$(MKBUNDLE) $< $@ -L $(BUILD)/guests
# Linux guests: Debian's kernel and busybox (fetched, checksummed, cached),
# a busybox initramfs.
$(LINUX_DIR)/VERSION: tools/fetch-linux.sh tools/debian-modules.sh tools/debfetch.sh | setup
	tools/fetch-linux.sh $(LINUX_DIR)
	@touch $@
# The guests' own programs: static aarch64-linux-musl, linked with rust-lld.
PROGS_DIR := guests/progs
PROGS     := $(addprefix $(PROGS_DIR)/target/aarch64-unknown-linux-musl/release/,pv-selfcheck pv-bench)
MUSL_RUSTFLAGS := -C linker=rust-lld -C target-feature=+crt-static
$(PROGS) &: FORCE setup
	cd $(PROGS_DIR) && RUSTFLAGS="$(MUSL_RUSTFLAGS)" cargo build --release --target aarch64-unknown-linux-musl
# pv-vmm, the KVM yardstick's VMM (tools/vmm): static aarch64-linux-musl too.
VMM_DIR := tools/vmm
VMM     := $(VMM_DIR)/target/aarch64-unknown-linux-musl/release/pv-vmm
$(VMM): FORCE setup
	cd $(VMM_DIR) && RUSTFLAGS="$(MUSL_RUSTFLAGS)" cargo build --release --target aarch64-unknown-linux-musl
# The SSH server and client of every Linux guest (Debian's dropbear-bin,
# its libraries, keys made at build time): tools/fetch-dropbear.sh.
DROPBEAR := $(LINUX_DIR)/dropbear/files
$(DROPBEAR): tools/fetch-dropbear.sh tools/debfetch.sh | setup
	tools/fetch-dropbear.sh $(LINUX_DIR)/dropbear
$(LINUX_DIR)/rootfs.cpio.gz: guests/linux/init guests/linux/udhcpc.script tools/mkinitramfs.sh $(LINUX_DIR)/VERSION $(PROGS) $(DROPBEAR)
	tools/mkinitramfs.sh $@ $(LINUX_DIR)/busybox guests/linux/init $(PROGS) $$(cat $(DROPBEAR)) \
	  etc/udhcpc/default.script=guests/linux/udhcpc.script
# Debian's kernel's initramfs: the same, plus the modules it needs for the
# virtio devices (its /init loads them when their kernel runs).
$(LINUX_DIR)/rootfs-debian.cpio.gz: guests/linux/init tools/mkinitramfs.sh $(LINUX_DIR)/VERSION $(PROGS) $(DROPBEAR)
	tools/mkinitramfs.sh $@ $(LINUX_DIR)/busybox guests/linux/init $(PROGS) $$(cat $(DROPBEAR)) \
	    $$(cd $(LINUX_DIR)/modules && for f in *; do printf 'lib/modules/%s=$(LINUX_DIR)/modules/%s ' "$$f" "$$f"; done)
# The small kernel: Debian's linux-source with guests/linux/small.config,
# built once per machine (cached by a hash of its inputs).
$(LINUX_DIR)/Image-small: tools/build-linux.sh tools/debfetch.sh guests/linux/small.config | setup
	tools/build-linux.sh $@
LINUX_FILES := $(LINUX_DIR)/VERSION $(LINUX_DIR)/Image-small $(LINUX_DIR)/rootfs.cpio.gz \
               $(LINUX_DIR)/rootfs-debian.cpio.gz
# The KVM host's initramfs: pv-vmm and the very bundles pivisor boots
# (guests/linux/kvm-host-init picks one from the command line).
KVM_HOST_RD := $(LINUX_DIR)/kvm-host.cpio.gz
$(KVM_HOST_RD): guests/linux/kvm-host-init tools/mkinitramfs.sh $(LINUX_DIR)/VERSION $(VMM) \
                $(BUILD)/guests-linux.img $(BUILD)/guests-bench.img $(BUILD)/guests-linux-bench-disk.img \
                $(BUILD)/guests-linux-bench-net.img
	tools/mkinitramfs.sh $@ $(LINUX_DIR)/busybox guests/linux/kvm-host-init $(VMM) \
	  guests/linux.img=$(BUILD)/guests-linux.img guests/bench.img=$(BUILD)/guests-bench.img \
	  guests/linux-bench-disk.img=$(BUILD)/guests-linux-bench-disk.img \
	  guests/linux-bench-net.img=$(BUILD)/guests-linux-bench-net.img
# The same host for the Debian boot benchmark (make bench, DBOOT): only
# the Debian bundle (Debian's kernel is large; the tests' host stays small).
KVM_HOST_DEBIAN_RD := $(LINUX_DIR)/kvm-host-debian.cpio.gz
$(KVM_HOST_DEBIAN_RD): guests/linux/kvm-host-init tools/mkinitramfs.sh $(LINUX_DIR)/VERSION $(VMM) $(BUILD)/guests-debian-bench.img
	tools/mkinitramfs.sh $@ $(LINUX_DIR)/busybox guests/linux/kvm-host-init $(VMM) \
	  guests/debian-bench.img=$(BUILD)/guests-debian-bench.img
# The Linux guests' bundles: a configuration and the files it names.
LINUX_CONF_BUNDLES := $(foreach b,linux linux-two linux-debian linux-pt-sd linux-pt-usb linux-disk linux-disks linux-share linux-bench-net debian debian-bench debian-setup linux-debian-disk linux-bench-disk soak,$(BUILD)/guests-$(b).img)
$(LINUX_CONF_BUNDLES): $(BUILD)/guests-%.img: guests/%.conf $(LINUX_FILES)
	$(MKBUNDLE) $< $@ -L $(LINUX_DIR)
$(BUILD)/guests-linux-lans.img: guests/linux-lans.conf $(LINUX_FILES) $(GUEST_IMG)
	$(MKBUNDLE) $< $@ -L $(LINUX_DIR) -L $(BUILD)/guests
# The Debian VMs' root file system (tools/mkdebian.sh: debootstrap's
# first stage on the host, its second in a pivisor VM; cached per
# machine).
DEBIAN_ROOT := $(LINUX_DIR)/debian-root.ext4
$(DEBIAN_ROOT): tools/mkdebian.sh tools/debfetch.sh guests/debian/packages guests/debian/setup.sh $(shell find guests/debian/rootfs -type f) \
                $(IMAGE) $(DTB) $(BUILD)/guests-debian-setup.img $(LINUX_DIR)/VERSION
	@tools/setup.sh sd
	@# (A build stopped half-way leaves its work directory: gone after 2 h.)
	@find "$${PIVISOR_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/pivisor}" -maxdepth 1 -name 'debian-build.*' -mmin +120 \
	    -exec rm -rf {} + 2>/dev/null || true
	tools/mkdebian.sh $@ $(IMAGE) $(DTB_DIR)/bcm2711-rpi-4-b.dtb $(BUILD)/guests-debian-setup.img $(LINUX_DIR)/VERSION
debian-root: $(DEBIAN_ROOT)
# A fixture the hypervisor must refuse at boot (mkbundle is told of a
# larger board so that it lets it through).
$(BUILD)/guests-toobig.img: guests/test-configs/toobig.conf $(GUEST_IMG)
	$(MKBUNDLE) $< $@ -L $(BUILD)/guests --ram 2G
# Passthrough fixtures the hypervisor must refuse, each for its reason
# (names are resolved against the firmware's tree at boot).
PT_FIXTURES := $(patsubst guests/test-configs/%.conf,$(BUILD)/guests-%.img,$(wildcard guests/test-configs/pt-*.conf))
$(BUILD)/guests-pt-%.img: guests/test-configs/pt-%.conf $(GUEST_IMG)
	$(MKBUNDLE) $< $@ -L $(BUILD)/guests

$(DTB): | setup
	tools/fetch-dtbs.sh $(DTB_DIR)

# The SD card (tools/mksd.sh): the Pi 4 firmware from Debian's
# raspi-firmware (non-free-firmware; fetched and checksummed, never
# committed), the device trees, config.txt, kernel8.img and the default
# bundle as guests.img; a folder to copy onto a FAT32 card and a raw disk
# image for dd / Raspberry Pi Imager.
# The card holds the chosen bundle (BUNDLE) and an ext4 partition for each
# of its VMs' disks (`disk = sd:N, SIZE`); `make run` boots that very card.
FW_DIR := $(BUILD)/firmware
CARD     = $(BUILD)/card-$(1).img
CARD_DIR = $(BUILD)/card-$(1)
SD_IMG := $(call CARD,linux)
SD_DIR := $(call CARD_DIR,linux)
$(FW_DIR)/VERSION: tools/fetch-firmware.sh tools/debfetch.sh | setup
	@tools/setup.sh sd
	tools/fetch-firmware.sh $(FW_DIR)
# The Debian card: both VMs' partitions copies of the Debian root file
# system.
$(BUILD)/card-debian.img: tools/mksd.sh firmware/config.txt $(IMAGE) $(DTB) $(BUILD)/guests-debian.img $(FW_DIR)/VERSION $(DEBIAN_ROOT)
	@tools/setup.sh sd
	MKSD_DISK_IMAGE=$(DEBIAN_ROOT) tools/mksd.sh $(call CARD_DIR,debian) $@ $(FW_DIR) $(DTB_DIR) firmware/config.txt $(IMAGE) $(BUILD)/guests-debian.img
$(BUILD)/card-%.img: tools/mksd.sh firmware/config.txt $(IMAGE) $(DTB) $(BUILD)/guests-%.img $(FW_DIR)/VERSION
	@tools/setup.sh sd
	tools/mksd.sh $(call CARD_DIR,$*) $@ $(FW_DIR) $(DTB_DIR) firmware/config.txt $(IMAGE) $(BUILD)/guests-$*.img
sd: $(call CARD,$(BUNDLE))

# Well-formed trees the hypervisor must refuse (QEMU always rewrites
# /memory, so "no memory" is a tree whose RAM is all reserved).
# Linux booted natively on QEMU (the native benchmarks, the KVM host):
# QEMU has no firmware GPIO expander, so the Arasan's Wi-Fi power
# sequence (reset on expander pin 1) cannot probe and the Arasan, where
# QEMU puts the SD card, would wait for it for ever. A Pi's firmware has
# the expander; this tree is for QEMU only.
$(DTB_DIR)/native-host.dtb: $(DTB)
	cp $< $@.tmp && fdtput -d $@.tmp /soc/mmc@7e300000 mmc-pwrseq && mv $@.tmp $@
# Debian's kernel natively (the Debian boot benchmark's yardstick): its
# built-in drivers for the HDMI block's clock, interrupt controller and
# DDC I2C, which QEMU does not model, take an external abort, and the
# Bluetooth node makes the console's UART a serdev (no /dev/ttyAMA0 for
# the login prompt). A Pi has them all; this tree is for QEMU only.
$(DTB_DIR)/native-debian.dtb: $(DTB_DIR)/native-host.dtb
	cp $< $@.tmp && for n in clock@7ef00000 interrupt-controller@7ef00100 hdmi@7ef00700 i2c@7ef04500 \
	    hdmi@7ef05700 i2c@7ef09500 serial@7e201000/bluetooth; do \
	  fdtput -t s $@.tmp /soc/$$n status disabled || exit 1; done && mv $@.tmp $@
# The positive control of USB passthrough: native Linux with the tree
# change a VM's copy of the DWC2 node gets (host mode, no PHY, no power
# domain: pivisor switches the USB domain on through the firmware).
$(DTB_DIR)/native-usb.dtb: $(DTB_DIR)/native-host.dtb
	cp $< $@.tmp && fdtput -t s $@.tmp /soc/usb@7e980000 dr_mode host \
	  && fdtput -d $@.tmp /soc/usb@7e980000 phys && fdtput -d $@.tmp /soc/usb@7e980000 power-domains \
	  && mv $@.tmp $@
$(DTB_DIR)/test-no-cpus.dtb: $(DTB)
	cp $< $@.tmp && fdtput -r $@.tmp /cpus && mv $@.tmp $@
$(DTB_DIR)/test-no-soc-ranges.dtb: $(DTB)
	cp $< $@.tmp && fdtput -d $@.tmp /soc ranges && mv $@.tmp $@
$(DTB_DIR)/test-all-reserved.dtb: $(DTB)
	cp $< $@.tmp && fdtput -c $@.tmp /reserved-memory/all@0 \
	  && fdtput -t x $@.tmp /reserved-memory/all@0 reg 0 0 3c000000 \
	  && fdtput -t s $@.tmp /reserved-memory/all@0 no-map "" && mv $@.tmp $@

run: $(call CARD,$(BUNDLE))
	@$(RUN_FILES)
	@echo "pivisor on QEMU raspi4b, booting $< (BUNDLE=$(BUNDLE)): Ctrl-A x quits, Ctrl-A c for the QEMU monitor; Ctrl-] then a VM number switches the console"
	@echo "(hypervisor messages after a PL011 handover, BUNDLE=pt: tail -f $(BUILD)/mini-uart.log)"
	$(QEMU_RUN)

gdb: $(call CARD,$(BUNDLE))
	@$(RUN_FILES)
	@echo "QEMU is waiting: gdb-multiarch $(ELF) -ex 'target remote :1234'"
	$(QEMU_RUN) -S -s

unit-test: setup
	cargo test --workspace --exclude pivisor-harness
	cd $(PROGS_DIR) && cargo test
	cd $(VMM_DIR) && cargo test
	cd tools/fuzz && cargo test

LINUX_BUNDLES := $(BUILD)/guests-linux.img $(BUILD)/guests-linux-two.img $(BUILD)/guests-linux-lans.img $(BUILD)/guests-linux-bench-net.img $(BUILD)/guests-linux-debian.img \
                 $(BUILD)/guests-linux-disk.img $(BUILD)/guests-linux-disks.img $(BUILD)/guests-linux-pt-sd.img $(BUILD)/guests-linux-pt-usb.img $(BUILD)/guests-linux-debian-disk.img \
                 $(BUILD)/guests-linux-bench-disk.img $(BUILD)/guests-linux-share.img
# Where the QEMU tests and the benchmarks find what they boot.
QEMU_TEST_ENV := PIVISOR_IMAGE=$(abspath $(IMAGE)) \
  PIVISOR_ELF=$(abspath $(ELF)) \
  PIVISOR_IMAGE_80000=$(abspath $(IMAGE_80)) \
  PIVISOR_BUNDLE_TEST=$(abspath $(BUILD)/guests-test.img) \
  PIVISOR_BUNDLE_TWO=$(abspath $(BUILD)/guests-two.img) \
  PIVISOR_BUNDLE_PT=$(abspath $(BUILD)/guests-pt.img) \
  PIVISOR_BUNDLE_HOSTILE=$(abspath $(BUILD)/guests-hostile.img) \
  PIVISOR_BUNDLE_CRASH=$(abspath $(BUILD)/guests-crash.img) \
  PIVISOR_BUNDLE_RESETLOOP=$(abspath $(BUILD)/guests-resetloop.img) \
  PIVISOR_BUNDLE_PANIC=$(abspath $(BUILD)/guests-panic.img) \
  PIVISOR_BUNDLE_BENCH=$(abspath $(BUILD)/guests-bench.img) \
  PIVISOR_BENCH_IMAGE=$(abspath $(BENCH_IMG)) \
  PIVISOR_BUNDLE_LINUX=$(abspath $(BUILD)/guests-linux.img) \
  PIVISOR_BUNDLE_LINUX_TWO=$(abspath $(BUILD)/guests-linux-two.img) \
  PIVISOR_BUNDLE_LINUX_DEBIAN=$(abspath $(BUILD)/guests-linux-debian.img) \
  PIVISOR_BUNDLE_LINUX_DISK=$(abspath $(BUILD)/guests-linux-disk.img) \
  PIVISOR_BUNDLE_LINUX_PT_SD=$(abspath $(BUILD)/guests-linux-pt-sd.img) \
  PIVISOR_BUNDLE_LINUX_PT_USB=$(abspath $(BUILD)/guests-linux-pt-usb.img) \
  PIVISOR_BUNDLE_DEBIAN=$(abspath $(BUILD)/guests-debian.img) \
  PIVISOR_DEBIAN_CARD=$(abspath $(call CARD,debian)) \
  PIVISOR_BUNDLE_DEBIAN_BENCH=$(abspath $(BUILD)/guests-debian-bench.img) \
  PIVISOR_DEBIAN_IMAGE=$(abspath $(LINUX_DIR)/Image) \
  PIVISOR_DEBIAN_INITRD=$(abspath $(LINUX_DIR)/rootfs-debian.cpio.gz) \
  PIVISOR_BUNDLE_LINUX_DISKS=$(abspath $(BUILD)/guests-linux-disks.img) \
  PIVISOR_BUNDLE_LINUX_SHARE=$(abspath $(BUILD)/guests-linux-share.img) \
  PIVISOR_BUNDLE_LINUX_LANS=$(abspath $(BUILD)/guests-linux-lans.img) \
  PIVISOR_BUNDLE_LINUX_BENCH_NET=$(abspath $(BUILD)/guests-linux-bench-net.img) \
  PIVISOR_BUNDLE_LINUX_DEBIAN_DISK=$(abspath $(BUILD)/guests-linux-debian-disk.img) \
  PIVISOR_BUNDLE_LINUX_BENCH_DISK=$(abspath $(BUILD)/guests-linux-bench-disk.img) \
  PIVISOR_LINUX_IMAGE=$(abspath $(LINUX_DIR)/Image-small) \
  PIVISOR_LINUX_INITRD=$(abspath $(LINUX_DIR)/rootfs.cpio.gz) \
  PIVISOR_KVM_HOST_INITRD=$(abspath $(KVM_HOST_RD)) \
  PIVISOR_KVM_HOST_DEBIAN_INITRD=$(abspath $(KVM_HOST_DEBIAN_RD)) \
  PIVISOR_BUNDLE_TOOBIG=$(abspath $(BUILD)/guests-toobig.img) \
  PIVISOR_BUNDLE_DIR=$(abspath $(BUILD)) \
  PIVISOR_DTB_DIR=$(abspath $(DTB_DIR)) \
  PIVISOR_SD_IMAGE=$(abspath $(SD_IMG)) \
  PIVISOR_SD_DIR=$(abspath $(SD_DIR)) \
  PIVISOR_FIRMWARE_DIR=$(abspath $(FW_DIR)) \
  PIVISOR_QEMU=$(QEMU)

# `make qemu-test T=boot_cost` runs only the QEMU tests whose names contain T.
# The Debian card is among what it needs: its root file system takes
# about 11 minutes once per machine (tools/mkdebian.sh), then is cached.
qemu-test: $(IMAGE) $(IMAGE_80) $(DTB) $(TEST_DTBS) $(BUNDLES) $(PT_FIXTURES) $(LINUX_BUNDLES) $(KVM_HOST_RD) $(SD_IMG) \
           $(BUILD)/guests-debian.img $(call CARD,debian)
	$(QEMU_TEST_ENV) cargo test -p pivisor-harness -- --test-threads=1 --nocapture $(T)

test: unit-test qemu-test

# Only the two Debian VMs end to end (tools/harness/tests/debian.rs; also
# part of `make test`).
debian-test: $(IMAGE) $(DTB) $(BUILD)/guests-debian.img $(call CARD,debian)
	$(QEMU_TEST_ENV) cargo test -p pivisor-harness --test debian -- --nocapture

# The benchmarks (minutes; progress on stderr). BENCH_RUNS: plain-TCG runs
# for the cross-core figures and Debian boots per configuration (medians).
# The plot uses Debian's python3-matplotlib.
BENCH_RUNS ?= 3
# BENCH_ONLY: a comma-separated subset of micro, linux, disk, net, debian, tcg.
BENCH_ONLY ?=
bench: $(IMAGE) $(DTB) $(BUNDLES) $(LINUX_BUNDLES) $(KVM_HOST_RD) $(SD_IMG) $(BUILD)/guests-debian-bench.img $(call CARD,debian) \
       $(KVM_HOST_DEBIAN_RD) $(DTB_DIR)/native-debian.dtb
	@tools/setup.sh bench
	@mkdir -p $(BUILD)/bench
	$(QEMU_TEST_ENV) PIVISOR_BENCH_OUT=$(abspath $(BUILD)/bench) PIVISOR_BENCH_RUNS=$(BENCH_RUNS) PIVISOR_BENCH_ONLY=$(BENCH_ONLY) \
	  cargo run --release -q -p pivisor-harness --bin bench
	/usr/bin/python3 tools/plot-bench.py $(BUILD)/bench/results.json $(BUILD)/bench/ratios.png
	@echo "bench: $(BUILD)/bench/report.md and ratios.png"

# The soak run (not in `make test`): two Linux VMs under load for
# SOAK_MINUTES, one crashing and restarted every 30-90 s; the verdict and
# the log in build/soak/.
SOAK_MINUTES ?= 30
soak: $(IMAGE) $(DTB) $(BUILD)/guests-soak.img
	$(QEMU_TEST_ENV) PIVISOR_BUNDLE_SOAK=$(abspath $(BUILD)/guests-soak.img) \
	  PIVISOR_SOAK_MINUTES=$(SOAK_MINUTES) PIVISOR_SOAK_OUT=$(abspath $(BUILD)/soak) \
	  cargo run --release -q -p pivisor-harness --bin soak

# Long fuzzing runs (tools/fuzz.sh; nightly and cargo-fuzz, installed if
# missing): FUZZ_SECONDS per target, FUZZ_TARGETS to pick (default all).
# `make test` replays the seed corpus on stable instead.
FUZZ_SECONDS ?= 300
FUZZ_TARGETS ?=
fuzz:
	tools/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

clippy: setup
	cargo clippy --release --target $(TARGET) -- -D warnings
	cargo clippy --workspace --all-targets -- -D warnings
	cd $(GUEST_DIR) && RUSTFLAGS="$(GUEST_RUSTFLAGS)" cargo clippy --release --target $(TARGET) -- -D warnings
	cd $(BENCH_DIR) && RUSTFLAGS="$(GUEST_RUSTFLAGS)" cargo clippy --release --target $(TARGET) -- -D warnings
	cd $(PROGS_DIR) && cargo clippy --all-targets -- -D warnings
	cd $(VMM_DIR) && cargo clippy --all-targets -- -D warnings
	cd tools/fuzz && cargo clippy --all-targets -- -D warnings
	cd $(VMM_DIR) && RUSTFLAGS="$(MUSL_RUSTFLAGS)" cargo clippy --release --target aarch64-unknown-linux-musl -- -D warnings

fmt:
	cargo fmt --all
	cd $(GUEST_DIR) && cargo fmt
	cd $(BENCH_DIR) && cargo fmt
	cd $(PROGS_DIR) && cargo fmt
	cd $(VMM_DIR) && cargo fmt
	cd tools/fuzz && cargo fmt

clean:
	cargo clean
	cd $(GUEST_DIR) && cargo clean
	cd $(BENCH_DIR) && cargo clean
	cd $(PROGS_DIR) && cargo clean
	cd $(VMM_DIR) && cargo clean
	cd tools/fuzz && cargo clean
	rm -rf $(BUILD)

FORCE:
