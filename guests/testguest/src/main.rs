//! pivisor's bare-metal EL1 test guest. It exercises what a hypervisor
//! owes a guest: PSCI (VERSION, FEATURES, CPU_ON of every vCPU with the
//! error cases, AFFINITY_INFO, CPU_OFF, SYSTEM_RESET, SYSTEM_OFF), SMCCC,
//! MMIO to the emulated test device (widths, sign extension), aborts for
//! unmapped IPAs, the hidden debug/PMU registers, set/way cache ops, and
//! that its RAM holds what it wrote for the whole run (a second VM runs
//! beside it in the two-VM test).
//!
//! Output goes through the test device's PUTC register; each check prints
//! `TEST <name> ok` or `TEST <name> FAIL: ...`, then `RESULT pass N` or
//! `RESULT fail N`. It runs with the MMU off (all data accesses are
//! Device-nGnRnE), so it uses only aligned volatile accesses, no atomics.
#![no_std]
#![no_main]

mod gic;
mod hostile;
mod hw;
mod mbox;
mod uart;
mod virtio;
mod vnet;

use core::arch::global_asm;
use core::fmt::Write;
use hw::*;

global_asm!(include_str!("../../image-header.s"));
global_asm!(include_str!("start.s"));
global_asm!(include_str!("../../el1-vectors.s"));

/// Per-vCPU mailboxes written by secondaries (below the image).
const CPU_FLAGS: u64 = 0x7e000;
/// CPU_ON context bit: run as the SGI ping-pong server.
const SGI_SERVER: u64 = 0x100;

pub struct Tally {
    pass: u32,
    fail: u32,
}

impl Tally {
    pub fn check(&mut self, name: &str, ok: bool, detail: core::fmt::Arguments<'_>) {
        if ok {
            self.pass += 1;
            println!("TEST {name} ok");
        } else {
            self.fail += 1;
            println!("TEST {name} FAIL: {detail}");
        }
    }
}

/// vCPU 0.
#[no_mangle]
extern "C" fn guest_main(dtb: u64) -> ! {
    let info = testdev_read32(0x0c);
    let (vcpus, vm) = ((info & 0xff) as usize, (info >> 8) & 0xff);
    // SAFETY: the loader passed a device tree at x0.
    let fdt = unsafe { fdt::Fdt::from_ptr(dtb as *const u8) }.ok();
    let ram = fdt
        .as_ref()
        .and_then(|f| {
            f.find_node("/memory@0")
                .and_then(|n| n.reg())
                .and_then(|mut r| r.next())
        })
        .and_then(|r| r.size)
        .unwrap_or(0) as u64;
    // The isolation suite's roles (guests/hostile.conf).
    let role = fdt
        .as_ref()
        .and_then(|f| f.chosen().bootargs())
        .and_then(|b| {
            b.split_whitespace()
                .find_map(|w| w.strip_prefix("pivisor.role="))
        });
    match role {
        Some("victim") => {
            let mbox = fdt
                .as_ref()
                .and_then(|f| f.chosen().bootargs())
                .is_some_and(|b| b.split_whitespace().any(|w| w == "pivisor.victim-mbox"));
            hostile::victim(ram, dtb, mbox)
        }
        Some("panicker") => hostile::panicker(),
        Some("hostile") => hostile::hostile(ram, vcpus),
        Some("net-hostile") => {
            // Its address (pivisor.ip=A.B.C.D/N): a victim asking for it
            // ends the attack.
            let mut ip = [0u8; 4];
            if let Some(a) = fdt
                .as_ref()
                .and_then(|f| f.chosen().bootargs())
                .and_then(|b| {
                    b.split_whitespace()
                        .find_map(|w| w.strip_prefix("pivisor.ip="))
                })
            {
                for (o, p) in ip.iter_mut().zip(a.split(['.', '/'])) {
                    *o = p.parse().unwrap_or(0);
                }
            }
            vnet::run(ram, ip, 45)
        }
        Some("crasher") => hostile::crasher(ram, dtb),
        Some("resetloop") => {
            // A VM that restarts as soon as it starts, for ever (its
            // policy restarts it): the hypervisor must back off.
            println!("RESETLOOP boot {}", testdev_read32(0x20));
            psci(SYSTEM_RESET, 0, 0, 0);
            halt()
        }
        _ => {}
    }
    let mut t = Tally { pass: 0, fail: 0 };

    // BOOTS (the test device) says which life this is.
    if testdev_read32(0x20) > 1 {
        println!("pivisor-testguest: VM {vm} back after SYSTEM_RESET");
        // The restart scrubbed RAM: the previous life's pattern is gone.
        let left = count_nonzero(ram, dtb);
        t.check(
            "reset-scrubbed",
            left == 0,
            format_args!("{left} pattern words survived the restart"),
        );
        let v = psci(PSCI_VERSION, 0, 0, 0);
        let (ctlr, en) = (gic::r32(0xff84_1000), gic::r32(0xff84_1100));
        t.check(
            "reset-gic",
            ctlr == 0 && en == 0,
            format_args!("GICD_CTLR {ctlr:#x} ISENABLER0 {en:#x} after reset"),
        );
        t.check(
            "reset",
            v == 0x10001 && ram > 0,
            format_args!("PSCI_VERSION {v:#x} after reset"),
        );
        let has = |path: &str| fdt.as_ref().and_then(|f| f.find_node(path)).is_some();
        let scratch = testdev_read32(0x04);
        let (mbox_reset, sta, cnf) = if has("/soc/mailbox@7e00b880") {
            mbox::is_reset()
        } else {
            (true, 0, 0)
        };
        let imsc = if has("/soc/serial@7e201000") {
            uart::imsc()
        } else {
            0
        };
        t.check(
            "reset-devices",
            scratch == 0 && mbox_reset && imsc == 0,
            format_args!(
                "SCRATCH {scratch:#x}, MAIL0_STA {sta:#x} MAIL0_CNF {cnf:#x}, UART IMSC {imsc:#x} after reset"
            ),
        );
        let (d0, hi, fpcr) = hw::fp_state();
        t.check(
            "reset-fp",
            d0 == 0 && hi == 0 && fpcr == 0,
            format_args!("d0 {d0:#x}, v31 high {hi:#x}, FPCR {fpcr:#x} after reset"),
        );
        for i in 1..vcpus {
            let s = psci(AFFINITY_INFO, i as u64, 0, 0);
            t.check(
                "reset-cpus-off",
                s == 1,
                format_args!("vCPU {i} state {s} after reset"),
            );
        }
        finish(&t, "SYSTEM_OFF");
        psci(SYSTEM_OFF, 0, 0, 0);
        println!("TEST system-off FAIL: SYSTEM_OFF returned");
        halt()
    }

    println!(
        "pivisor-testguest: VM {vm}, {vcpus} vCPU(s), {} MiB RAM, device tree at {dtb:#x}",
        ram >> 20
    );
    t.check(
        "testdev-id",
        testdev_read32(0) == 0x7076_7464,
        format_args!("ID {:#x}", testdev_read32(0)),
    );
    let cpus = fdt
        .as_ref()
        .and_then(|f| f.find_node("/cpus"))
        .map_or(0, |n| n.children().count());
    t.check(
        "dt-cpus",
        cpus == vcpus && vcpus > 0,
        format_args!("tree has {cpus} cpus, device says {vcpus}"),
    );
    if fdt
        .as_ref()
        .and_then(|f| f.find_node("/test-extra"))
        .is_some()
    {
        t.check("dtb-extra", true, format_args!(""));
    }
    test_psci_basics(&mut t);
    test_mmio(&mut t);
    let seed = 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(vm as u64 + 1);
    let fill = fill_ram(ram, dtb, seed);
    test_aborts(&mut t, ram);
    test_sysregs(&mut t);
    test_cpu_on(&mut t, vcpus, ram);
    let mailbox = fdt
        .as_ref()
        .and_then(|f| f.find_node("/soc/mailbox@7e00b880"))
        .is_some();
    let uart = fdt
        .as_ref()
        .and_then(|f| f.find_node("/soc/serial@7e201000"))
        .is_some();
    gic::run(&mut t, vcpus, info, mailbox, uart);
    if mailbox {
        mbox::run(&mut t, ram);
    }
    if uart {
        uart::run(&mut t, vm);
    }
    let bad = check_ram(ram, dtb, seed);
    t.check(
        "ram",
        fill > 0 && bad == 0,
        format_args!("{bad} of {fill} words changed"),
    );
    // State a restart must clear: the test device's scratch, a waiting
    // mailbox answer and its interrupt enable, the UART's interrupt mask
    // (its transmit line high), FP/SIMD registers. Interrupts masked so
    // none of it is taken before the reset.
    // SAFETY: masks interrupts at EL1.
    unsafe { core::arch::asm!("msr daifset, #3", options(nomem, nostack)) };
    testdev_write32(0x04, 0xdead_beef);
    if mailbox {
        mbox::leave_state();
    }
    if uart {
        uart::leave_state();
    }
    hw::fp_leave_state();
    finish(&t, "SYSTEM_RESET");
    psci(SYSTEM_RESET, 0, 0, 0);
    println!("TEST system-reset FAIL: SYSTEM_RESET returned");
    halt()
}

fn finish(t: &Tally, next: &str) {
    if t.fail == 0 {
        println!("RESULT pass {}; {next}", t.pass);
    } else {
        println!("RESULT fail {} of {}; {next}", t.fail, t.pass + t.fail);
    }
}

fn test_psci_basics(t: &mut Tally) {
    let v = psci(PSCI_VERSION, 0, 0, 0);
    t.check("psci-version", v == 0x10001, format_args!("{v:#x}"));
    let s = psci(SMCCC_VERSION, 0, 0, 0);
    t.check("smccc-version", s == 0x10001, format_args!("{s:#x}"));
    let on = psci(PSCI_FEATURES, CPU_ON as u64, 0, 0);
    let bogus = psci(PSCI_FEATURES, 0x8400_00ff, 0, 0);
    t.check(
        "psci-features",
        on == 0 && bogus == NOT_SUPPORTED,
        format_args!("CPU_ON {on}, bogus {bogus}"),
    );
    let wa = [0x8000_8000u64, 0x8000_7fff, 0x8000_3fff].map(|f| psci(SMCCC_ARCH_FEATURES, f, 0, 0));
    t.check(
        "arch-workarounds",
        wa == [NOT_SUPPORTED; 3],
        format_args!("{wa:?}"),
    );
    let m = psci(MIGRATE_INFO_TYPE, 0, 0, 0);
    t.check("migrate-info-type", m == 2, format_args!("{m}"));
    let h = hvc(0x8600_0000, 1, 2, 3);
    t.check("unknown-hvc", h == NOT_SUPPORTED, format_args!("{h}"));
    let sm = smc(0xc200_0001, 1, 2, 3);
    let sv = smc(PSCI_VERSION as u64, 0, 0, 0);
    t.check(
        "smc",
        sm == NOT_SUPPORTED && sv == 0x10001,
        format_args!("unknown {sm}, version {sv:#x}"),
    );
}

fn test_mmio(t: &mut Tally) {
    testdev_write32(0x04, 0x8081_8283);
    let w = testdev_read32(0x04);
    let sb = testdev_ldrsb(0x05);
    let sh = testdev_ldrsh_w(0x06);
    let b = testdev_ldrb(0x07);
    t.check(
        "mmio-widths",
        w == 0x8081_8283 && sb == -126 && sh == 0xffff_8081 && b == 0x80,
        format_args!("word {w:#x} ldrsb {sb} ldrsh(w) {sh:#x} ldrb {b:#x}"),
    );
    testdev_strb(0x04, 0x11);
    let w2 = testdev_read32(0x04);
    write64(TESTDEV + 0x10, 0x0123_4567_89ab_cdef);
    let d = read64(TESTDEV + 0x10);
    t.check(
        "mmio-store",
        w2 == 0x8081_8211 && d == 0x0123_4567_89ab_cdef,
        format_args!("after strb {w2:#x}, 64-bit {d:#x}"),
    );
}

fn test_aborts(t: &mut Tally, ram: u64) {
    for (name, addr, write) in [
        ("abort-past-ram", ram + 0x1000, false),
        ("abort-write-past-ram", ram, true),
        ("abort-gpio-page", 0xfe20_0000, false),
        ("abort-far-ipa", 0x40_0000_0000 - 8, false),
    ] {
        let r = expect_abort(addr, write);
        let ok = matches!(r, Some((esr, far)) if esr >> 26 == 0x25 && esr & 0x3f == 0x10 && far == addr
            && ((esr >> 6) & 1 == 1) == write);
        t.check(name, ok, format_args!("at {addr:#x}: {r:x?}"));
    }
    let r = expect_abort(TESTDEV + 0x100, false);
    t.check(
        "abort-bad-register",
        r.is_some(),
        format_args!("testdev +0x100 read gave no abort"),
    );
}

fn test_sysregs(t: &mut Tally) {
    let locked = sysreg_oslsr();
    sysreg_oslar(0);
    let unlocked = sysreg_oslsr();
    let pmcr = sysreg_pmcr();
    sysreg_actlr_write(0xffff);
    let cpuectlr = sysreg_cpuectlr();
    dc_cisw_all();
    t.check(
        "sysregs",
        locked == 0b1010 && unlocked == 0b1000 && pmcr == 0 && cpuectlr == 0,
        format_args!("OSLSR {locked:#x}/{unlocked:#x} PMCR {pmcr:#x} CPUECTLR {cpuectlr:#x}"),
    );
}

fn test_cpu_on(t: &mut Tally, vcpus: usize, ram: u64) {
    let entry = secondary_entry_addr();
    let me = psci(CPU_ON, 0, entry, 0);
    let bad_target = psci(CPU_ON, 99, entry, 0);
    let bad_entry = psci(CPU_ON, 1, ram + 0x1000, 1);
    let errs_ok = me == -4 && bad_target == -2 && (vcpus < 2 || bad_entry == -9);
    t.check(
        "cpu-on-errors",
        errs_ok,
        format_args!("self {me}, bad target {bad_target}, bad entry {bad_entry}"),
    );
    for round in 0..2u64 {
        for i in 1..vcpus as u64 {
            write64(CPU_FLAGS + i * 8, 0);
            let r = psci(CPU_ON, i, entry, i);
            let seen = wait_for(|| read64(CPU_FLAGS + i * 8) != 0);
            let flag = read64(CPU_FLAGS + i * 8);
            let off = wait_for(|| psci(AFFINITY_INFO, i, 0, 0) == 1);
            t.check(
                if round == 0 { "cpu-on" } else { "cpu-on-again" },
                r == 0 && seen && flag == 0x600d_0000 + (0x8000_0000 | i) && off,
                format_args!("vCPU {i}: CPU_ON {r}, flag {flag:#x}, off {off}"),
            );
        }
    }
}

/// vCPUs 1..: report MPIDR and PSCI, then switch off.
#[no_mangle]
extern "C" fn secondary_main(index: u64) -> ! {
    if index & SGI_SERVER != 0 {
        gic::sgi_server();
    }
    let mpidr = mpidr();
    let v = psci(PSCI_VERSION, 0, 0, 0);
    let aff = psci(AFFINITY_INFO, index, 0, 0);
    let flag = if v == 0x10001 && aff == 0 && mpidr & 0xff == index {
        0x600d_0000 + mpidr
    } else {
        0xbad
    };
    write64(CPU_FLAGS + index * 8, flag);
    psci(CPU_OFF, 0, 0, 0);
    write64(CPU_FLAGS + index * 8, 0xdead);
    halt()
}

/// Sparse pattern over free RAM (above the image, below the device tree).
fn fill_ram(ram: u64, dtb: u64, seed: u64) -> u64 {
    let (start, end) = (0x20_0000u64, dtb.min(ram));
    let mut n = 0;
    let mut a = start;
    while a + 8 <= end {
        write64(a, a ^ seed);
        a += 0x1_0000;
        n += 1;
    }
    n
}

/// Pattern words (fill_ram's places) that are not zero.
fn count_nonzero(ram: u64, dtb: u64) -> u64 {
    let (start, end) = (0x20_0000u64, dtb.min(ram));
    let mut n = 0;
    let mut a = start;
    while a + 8 <= end {
        if read64(a) != 0 {
            n += 1;
        }
        a += 0x1_0000;
    }
    n
}

fn check_ram(ram: u64, dtb: u64, seed: u64) -> u64 {
    let (start, end) = (0x20_0000u64, dtb.min(ram));
    let mut bad = 0;
    let mut a = start;
    while a + 8 <= end {
        if read64(a) != a ^ seed {
            bad += 1;
        }
        a += 0x1_0000;
    }
    bad
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("TEST panic FAIL: {info}");
    psci(SYSTEM_OFF, 0, 0, 0);
    halt()
}
