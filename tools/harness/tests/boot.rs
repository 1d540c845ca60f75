//! Whole-system boot tests on QEMU raspi4b.

use pivisor_harness::{artifact, dtb, Boot, Output};

const DONE: &str = r"cores online; boot complete at \d+ ms";

fn image() -> std::path::PathBuf {
    artifact("PIVISOR_IMAGE")
}

fn rpi4() -> std::path::PathBuf {
    dtb("bcm2711-rpi-4-b.dtb")
}

fn boots_cleanly(o: &Output) {
    o.expect(r"pivisor \d+\.\d+\.\d+ - a type-1 hypervisor for the Raspberry Pi 4 - at EL2")
        .expect(r"\[\s+\d+\.\d{6}\] c0 INFO  ")
        .expect(r"4 of 4 cores online")
        .reject(r"ERROR|FAULT|PANIC");
    // The only warning without a bundle is that there is nothing to run.
    assert_eq!(
        o.count("WARN"),
        o.count(r"WARN  no guest bundle: .*; nothing to run"),
        "unexpected warnings:\n{}",
        o.serial
    );
    for c in 1..4 {
        o.expect(&format!(
            r"\] c{c} INFO  core {c} online \(MPIDR 0x{c}, EL2, MMU on\)"
        ));
    }
}

#[test]
fn boots_at_0x200000_with_memory_map_and_four_cores() {
    let o = Boot::new(image()).dtb(rpi4()).run_until_match(DONE);
    boots_cleanly(&o);
    o.expect(r"loaded at 0x200000\n")
        .expect(r"device tree: Raspberry Pi 4 Model B \(\d+ bytes at 0x[0-9a-f]+\)")
        .expect(r"console: PL011 at 0xfe201000, 115200 8N1")
        .expect(r"RAM      0x000000000-0x03bffffff  960 MiB")
        .expect(r"reserved 0x000000000-0x000000fff  /memreserve/")
        .expect(r"reserved 0x000200000-0x[0-9a-f]+  pivisor image")
        .expect(r"reserved 0x[0-9a-f]+-0x[0-9a-f]+  device tree")
        .expect(r"device   0x0fe000000-0x0ff7fffff  bus 0x7e000000")
        .expect(r"device   0x0ff800000-0x0ffffffff  bus 0x40000000")
        .expect(r"usable: \d+(\.\d)? MiB in \d+ ranges of 960 MiB RAM")
        .expect(r"EL2 MMU on: 39-bit identity map")
        .expect(r"heap: 8 MiB at 0x[0-9a-f]+ \(8192 probe bytes ok\)")
        .expect(r"frames: \d+(\.\d)? MiB free for the hypervisor")
        .expect(r"WARN  no guest bundle: the firmware loaded no initramfs .*; nothing to run");
}

#[test]
fn boots_at_0x80000() {
    let o = Boot::new(artifact("PIVISOR_IMAGE_80000"))
        .dtb(rpi4())
        .run_until_match(DONE);
    boots_cleanly(&o);
    o.expect(r"loaded at 0x80000\n");
}

#[test]
fn boots_with_every_debian_pi4_tree() {
    for name in ["bcm2711-rpi-400.dtb", "bcm2711-rpi-cm4-io.dtb"] {
        let o = Boot::new(image()).dtb(dtb(name)).run_until_match(DONE);
        boots_cleanly(&o);
    }
}

#[test]
fn initrd_is_reserved() {
    // QEMU writes linux,initrd-start/end; the bundle stays reserved.
    let o = Boot::new(image())
        .dtb(rpi4())
        .initrd(artifact("PIVISOR_BUNDLE_TEST"))
        .run_until_match(DONE);
    o.expect(r"reserved 0x[0-9a-f]+-0x[0-9a-f]+  initrd")
        .expect(r"4 of 4 cores online")
        .reject(r"no guest bundle|ERROR|FAULT|PANIC");
}

#[test]
fn data_abort_on_core0_is_reported_and_parks() {
    let o = Boot::new(image())
        .dtb(rpi4())
        .append("pivisor.fault=data")
        .run_until_match(r"core 0 parked");
    o.expect(r"c0 ERROR FAULT on core 0: synchronous exception from current EL, SP_EL2: Data Abort from the current EL \(EC 0x25\)")
        .expect(r"read: translation fault \(level 1\)")
        .expect(r"ESR 0x0000000096000005  ELR 0x0000000000[0-9a-f]{6}  SPSR 0x[0-9a-f]{16}")
        .expect(r"FAR 0x0000004000000000")
        .expect(r"x0  0x[0-9a-f]{16}  x1  0x")
        .expect(r"x28 0x[0-9a-f]{16}  x29 0x[0-9a-f]{16}  lr  0x[0-9a-f]{16}")
        .reject(r"returned from the deliberate fault");
}

#[test]
fn undefined_instruction_on_core2_parks_only_core2() {
    let o = Boot::new(image())
        .dtb(rpi4())
        .append("pivisor.fault=undef@2")
        .run_until(|s| s.contains("core 2 parked") && s.contains("cores online"));
    assert!(!o.timed_out, "{}", o.serial);
    o.expect(r"c2 ERROR FAULT on core 2: synchronous exception from current EL, SP_EL2: Unknown reason \(EC 0x00\)")
        .expect(r"4 of 4 cores online")
        .reject(r"FAULT on core [013]");
}

#[test]
fn breakpoint_on_core3() {
    let o = Boot::new(image())
        .dtb(rpi4())
        .append("pivisor.fault=brk@3")
        .run_until_match(r"core 3 parked");
    o.expect(r"FAULT on core 3: .*BRK \(AArch64\) \(EC 0x3c\)");
}

#[test]
fn bad_bootargs_are_reported_and_ignored() {
    let o = Boot::new(image())
        .dtb(rpi4())
        .append("console=ttyAMA0 pivisor.bogus=1 pivisor.log=loud")
        .run_until_match(DONE);
    o.expect(r"WARN  bootargs: ignoring 'pivisor.bogus=1': unknown option")
        .expect(r"WARN  bootargs: ignoring 'pivisor.log=loud': log level must be")
        .expect(r"4 of 4 cores online");
}

#[test]
fn log_level_from_bootargs() {
    // The banner prints before bootargs are read; at warn level nothing
    // after it at INFO shows, but the deliberate-fault warning does.
    let o = Boot::new(image())
        .dtb(rpi4())
        .append("pivisor.log=warn pivisor.fault=brk")
        .run_until_match(r"core 0 parked");
    assert_eq!(o.count("INFO"), 1, "only the banner:\n{}", o.serial);
    o.expect(r"INFO  pivisor \d")
        .expect(r"WARN  pivisor.fault: core 0 takes a deliberate breakpoint");
}

#[test]
fn no_device_tree_is_reported_and_parks() {
    let o = Boot::new(image()).run_until_match(r"parking");
    o.expect(r"ERROR device tree at 0x100: no device tree \(found 0x[0-9a-f]{8}, not the FDT magic 0xd00dfeed\)")
        .expect(r"cannot continue without a usable device tree")
        .reject(r"FAULT|PANIC");
}

#[test]
fn tree_without_cpus_is_refused() {
    let o = Boot::new(image())
        .dtb(dtb("test-no-cpus.dtb"))
        .run_until_match(r"parking");
    o.expect(r"device tree has no /cpus node")
        .reject(r"FAULT|PANIC");
}

#[test]
fn tree_without_soc_ranges_is_refused() {
    let o = Boot::new(image())
        .dtb(dtb("test-no-soc-ranges.dtb"))
        .run_until_match(r"parking");
    o.expect(r"/soc has no ranges").reject(r"FAULT|PANIC");
}

#[test]
fn tree_with_no_usable_memory_is_refused() {
    let o = Boot::new(image())
        .dtb(dtb("test-all-reserved.dtb"))
        .run_until_match(r"parking");
    o.expect(r"memory: no usable memory: every RAM page is reserved")
        .reject(r"FAULT|PANIC");
}
