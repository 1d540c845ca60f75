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
TEST_DTBS := $(DTB_DIR)/test-no-cpus.dtb $(DTB_DIR)/test-no-soc-ranges.dtb $(DTB_DIR)/test-all-reserved.dtb
QEMU_RUN := $(QEMU) -M raspi4b -display none -serial mon:stdio -serial null \
            -kernel $(IMAGE) -dtb $(DTB) $(if $(BOOTARGS),-append "$(BOOTARGS)")

.PHONY: all setup run test unit-test qemu-test gdb clippy fmt clean help FORCE

all: $(IMAGE)

help:
	@echo "make            build $(IMAGE)"
	@echo "make run        boot it on QEMU raspi4b (Ctrl-A x quits QEMU)"
	@echo "make test       host unit tests + QEMU integration tests"
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

$(DTB): | setup
	tools/fetch-dtbs.sh $(DTB_DIR)

# Well-formed trees the hypervisor must refuse (QEMU always rewrites
# /memory, so "no memory" is a tree whose RAM is all reserved).
$(DTB_DIR)/test-no-cpus.dtb: $(DTB)
	cp $< $@.tmp && fdtput -r $@.tmp /cpus && mv $@.tmp $@
$(DTB_DIR)/test-no-soc-ranges.dtb: $(DTB)
	cp $< $@.tmp && fdtput -d $@.tmp /soc ranges && mv $@.tmp $@
$(DTB_DIR)/test-all-reserved.dtb: $(DTB)
	cp $< $@.tmp && fdtput -c $@.tmp /reserved-memory/all@0 \
	  && fdtput -t x $@.tmp /reserved-memory/all@0 reg 0 0 3c000000 \
	  && fdtput -t s $@.tmp /reserved-memory/all@0 no-map "" && mv $@.tmp $@

run: $(IMAGE) $(DTB)
	@echo "pivisor on QEMU raspi4b: Ctrl-A x quits, Ctrl-A c for the QEMU monitor"
	$(QEMU_RUN)

gdb: $(IMAGE) $(DTB)
	@echo "QEMU is waiting: gdb-multiarch $(ELF) -ex 'target remote :1234'"
	$(QEMU_RUN) -S -s

unit-test: setup
	cargo test --workspace --exclude pivisor-harness

qemu-test: $(IMAGE) $(IMAGE_80) $(DTB) $(TEST_DTBS)
	PIVISOR_IMAGE=$(abspath $(IMAGE)) PIVISOR_IMAGE_80000=$(abspath $(IMAGE_80)) \
	PIVISOR_DTB_DIR=$(abspath $(DTB_DIR)) PIVISOR_QEMU=$(QEMU) \
	  cargo test -p pivisor-harness

test: unit-test qemu-test

clippy: setup
	cargo clippy --release --target $(TARGET) -- -D warnings
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

clean:
	cargo clean
	rm -rf $(BUILD)

FORCE:
