//! The hostile-guest suite (issue: isolation you can show). The same
//! image runs in two roles, picked by `pivisor.role=` on the VM's command
//! line (guests/hostile.conf):
//!
//! - `victim`: fills its RAM with a known pattern, then forever checks it
//!   and says it is alive: `VICTIM alive n=N bad=B` every 100 ms.
//! - `hostile`: runs the attack catalogue below, each a line
//!   `ATTACK <name> probes=N refused=R result=ok|FAIL <detail>`, then
//!   `HOSTILE done attacks=A failed=F`, waits a second and powers its VM
//!   off. "refused" counts the probes the hypervisor answered as it must
//!   (an abort, an error code, an invisible register).
//!
//! - `panicker`: asks the hypervisor, through the fault-injection page,
//!   to panic on its core while holding the console's and the mailbox's
//!   locks (guests/panic.conf); the victim beside it must carry on.
//! - `crasher`: says which boot this is (the test device's BOOTS) and
//!   whether RAM still holds what it wrote in its previous life (a
//!   restart must have scrubbed it), fills its RAM, then crashes: on its
//!   second boot it starts its SP805 watchdog, feeds it ten times and
//!   hangs with interrupts masked (no exit ever again); on the others it
//!   moves its exception vector outside RAM and makes an access that
//!   aborts. Its policy (guests/crash.conf) restarts it.
//!
//! Pass: every attack ok, the victim's pattern unchanged and its heart
//! beating before, during and after, and the hypervisor still running
//! (the QEMU test checks its log: no fault, every refusal counted).

use crate::gic;
use crate::hw::*;
use crate::println;
use core::arch::asm;
use core::fmt::Write;

/// Where the RAM pattern lives: above the image and stacks, below the
/// device tree (its 2 MiB block at the end of RAM).
const PATTERN_START: u64 = 0x20_0000;
/// One pattern word per this many bytes.
const PATTERN_STEP: u64 = 256;
/// Scratch RAM (below the image, clear of the other scratch words).
const MBOX_BUF: u64 = 0x7a000;
const CANARY: u64 = 0x7a800;
/// The stage-2 IPA space (pivisor: 39 bits).
const IPA_TOP: u64 = 1 << 39;

fn pattern(a: u64, seed: u64) -> u64 {
    (a ^ seed).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// The firmware's revision through the mailbox (a property request in
/// this VM's RAM), if the hypervisor answers.
fn firmware_revision() -> Option<u32> {
    const BUS: u32 = 0xc000_0000;
    for (i, w) in [28u32, 0, 0x1, 4, 0, 0, 0].iter().enumerate() {
        gic::w32(MBOX_BUF + 4 * i as u64, *w);
    }
    mbox_call(BUS + MBOX_BUF as u32, 8)?;
    (gic::r32(MBOX_BUF + 4) == 0x8000_0000).then(|| gic::r32(MBOX_BUF + 20))
}

/// The victim: fill, then check and report forever. With `mbox` (the
/// bundle gives it the mailbox) each report also asks the firmware.
pub fn victim(ram: u64, dtb: u64, mbox: bool) -> ! {
    gic::w32(0xff84_1000, 1);
    gic::cpu_init();
    let end = dtb.min(ram) & !0xfff;
    let seed = 0x7669_6374_696d;
    let mut words = 0;
    let mut a = PATTERN_START;
    while a < end {
        write64(a, pattern(a, seed));
        a += PATTERN_STEP;
        words += 1;
    }
    println!("VICTIM start ram={}MiB words={words}", ram >> 20);
    let mut n = 0u64;
    loop {
        let mut bad = 0;
        let mut a = PATTERN_START;
        while a < end {
            if read64(a) != pattern(a, seed) {
                bad += 1;
            }
            a += PATTERN_STEP;
        }
        // The hypervisor still emulates its device.
        let id_ok = testdev_read32(0) == 0x7076_7464;
        let fw = match (mbox, mbox.then(firmware_revision).flatten()) {
            (false, _) => "",
            (true, Some(_)) => " mbox=ok",
            (true, None) => " mbox=FAIL",
        };
        println!(
            "VICTIM alive n={n} bad={bad} device={}{fw}",
            if id_ok { "ok" } else { "BAD" }
        );
        n += 1;
        gic::sleep_until(100, || false);
    }
}

/// Results of the attack run.
struct Run {
    attacks: u32,
    failed: u32,
}

impl Run {
    fn report(
        &mut self,
        name: &str,
        probes: u64,
        refused: u64,
        ok: bool,
        detail: core::fmt::Arguments<'_>,
    ) {
        self.attacks += 1;
        if ok {
            println!("ATTACK {name} probes={probes} refused={refused} result=ok");
        } else {
            self.failed += 1;
            println!("ATTACK {name} probes={probes} refused={refused} result=FAIL {detail}");
        }
    }
}

/// This VM's own device pages: accesses there are allowed.
fn own_device(a: u64) -> bool {
    let page = a & !0xfff;
    matches!(
        page,
        TESTDEV | 0xfe00_b000 | 0xfe20_1000 | 0xff84_1000 | 0xff84_2000 | 0xff84_3000
    ) && !(page == 0xfe00_b000 && (a & 0xfff) < 0x880)
}

/// An abort for `a` (the data abort syndrome: EC 0x25, external abort
/// FSC 0x10, FAR the address).
fn aborts(a: u64, write: bool) -> bool {
    matches!(expect_abort(a, write), Some((esr, far)) if esr >> 26 == 0x25 && esr & 0x3f == 0x10 && far == a)
}

/// The hostile guest's run.
pub fn hostile(ram: u64, vcpus: usize) -> ! {
    gic::w32(0xff84_1000, 1);
    gic::cpu_init();
    println!("HOSTILE start ram={}MiB vcpus={vcpus}", ram >> 20);
    let mut r = Run {
        attacks: 0,
        failed: 0,
    };
    ipa_sweep(&mut r, ram);
    peripheral_window(&mut r);
    ram_edges(&mut r, ram);
    exec_device(&mut r, ram);
    gicd_foreign(&mut r);
    mailbox(&mut r, ram);
    smccc_sweep(&mut r);
    exit_count_call(&mut r);
    sysregs(&mut r);
    psci_cpu_on(&mut r, ram, vcpus);
    set_way(&mut r);
    wfx_storm(&mut r);
    pend_clear_flood(&mut r);
    uart_storm(&mut r);
    virtio_attacks(&mut r, ram);
    testdev_flood(&mut r);
    println!("HOSTILE done attacks={} failed={}", r.attacks, r.failed);
    gic::sleep_until(1000, || false);
    psci(SYSTEM_OFF, 0, 0, 0);
    halt()
}

/// ISPENDR then ICPENDR on the passed-through SPI (153, hardware-linked)
/// with its ITARGETSR at 0, many times: each pair once queued a physical
/// deactivation that no vCPU drained, until the hypervisor's heap ran out
/// and it panicked holding this VM's distributor lock. The hypervisor
/// must still answer afterwards.
fn pend_clear_flood(r: &mut Run) {
    const D: u64 = 0xff84_1000;
    const SPI: u64 = 153;
    const PAIRS: u64 = 600_000;
    let (word, bit) = (4 * (SPI / 32), 1u32 << (SPI % 32));
    let targets = gic::r32(D + 0x800 + (SPI & !3));
    gic::w8(D + 0x800 + SPI, 0);
    for _ in 0..PAIRS {
        gic::w32(D + 0x200 + word, bit);
        gic::w32(D + 0x280 + word, bit);
    }
    gic::w32(D + 0x800 + (SPI & !3), targets);
    let iidr = gic::r32(D + 0x8);
    let alive = iidr == 0x0200_143b;
    r.report(
        "pend-clear-flood",
        PAIRS,
        if alive { PAIRS } else { 0 },
        alive,
        format_args!("GICD_IIDR reads {iidr:#x} after the flood"),
    );
}

/// Loads (every 2 MiB) and stores (every 16 MiB) over the whole IPA space
/// outside RAM: each must be an external abort.
fn ipa_sweep(r: &mut Run, ram: u64) {
    let (mut probes, mut refused, mut first_bad) = (0u64, 0u64, None);
    let mut a = ram.next_multiple_of(2 << 20);
    while a < IPA_TOP {
        if !own_device(a) {
            for write in [false, true] {
                if write && !a.is_multiple_of(16 << 20) {
                    continue;
                }
                probes += 1;
                if aborts(a, write) {
                    refused += 1;
                } else if first_bad.is_none() {
                    first_bad = Some(a);
                }
            }
        }
        a += 2 << 20;
    }
    r.report(
        "ipa-sweep",
        probes,
        refused,
        probes == refused,
        format_args!("no abort at {first_bad:#x?}"),
    );
}

/// Every 4 KiB page of the peripheral window, loaded and stored (except
/// the VM's own devices): aborts.
fn peripheral_window(r: &mut Run) {
    let (mut probes, mut refused, mut first_bad) = (0u64, 0u64, None);
    let mut a = 0xfc00_0000u64;
    while a < 0x1_0000_0000 {
        if !own_device(a) {
            for write in [false, true] {
                probes += 1;
                if aborts(a, write) {
                    refused += 1;
                } else if first_bad.is_none() {
                    first_bad = Some(a);
                }
            }
        }
        a += 0x1000;
    }
    // The physical GICH and GICV frames, named: never mapped for a guest.
    for a in [0xff84_4000u64, 0xff84_5000, 0xff84_6000, 0xff84_7000] {
        probes += 1;
        if aborts(a, false) {
            refused += 1;
        } else if first_bad.is_none() {
            first_bad = Some(a);
        }
    }
    r.report(
        "peripheral-window",
        probes,
        refused,
        probes == refused,
        format_args!("no abort at {first_bad:#x?}"),
    );
}

/// RAM's last pages work; the pages after its end abort.
fn ram_edges(r: &mut Run, ram: u64) {
    let (mut probes, mut refused, mut ok) = (0u64, 0u64, true);
    for k in 1..=4u64 {
        let inside = ram - k * 0x1000;
        let v = read64(inside);
        write64(inside, v);
        ok &= read64(inside) == v;
        probes += 2;
        refused += u64::from(aborts(ram + (k - 1) * 0x1000, false));
        refused += u64::from(aborts(ram + (k - 1) * 0x1000 + 0xff8, true));
    }
    r.report(
        "ram-edges",
        probes,
        refused,
        ok && refused == 8,
        format_args!("inside ok {ok}, refused {refused} of 8"),
    );
}

/// Executing from device pages and from outside RAM: instruction aborts.
fn exec_device(r: &mut Run, ram: u64) {
    let targets = [
        0xff84_2000u64,
        TESTDEV,
        0xff84_1000,
        ram + 0x1000,
        0x40_0000_0000,
    ];
    let mut refused = 0;
    let mut detail = (0u64, 0u64);
    for &t in &targets {
        match expect_exec_abort(t) {
            Some((esr, far)) if esr >> 26 == 0x21 && far == t => refused += 1,
            other => detail = (t, other.map_or(0, |o| o.0)),
        }
    }
    r.report(
        "exec-device",
        targets.len() as u64,
        refused,
        refused == targets.len() as u64,
        format_args!("at {:#x}: ESR {:#x}", detail.0, detail.1),
    );
}

/// GICD writes to every SPI the VM does not own (enable, pending, active,
/// priority, target) and SGIs to vCPUs it does not have: nothing sticks.
fn gicd_foreign(r: &mut Run) {
    const D: u64 = 0xff84_1000;
    // Its PL011, mailbox, test device lines and disk (virtio-blk, 240).
    let owned = |i: u32| i == 153 || i == 65 || i == 240 || (96..104).contains(&i);
    let (mut probes, mut refused, mut first_bad) = (0u64, 0u64, None);
    for reg in [0x100u64, 0x200, 0x300] {
        for n in 1..32u64 {
            let mask: u32 = (0..32)
                .filter(|b| !owned(n as u32 * 32 + b))
                .fold(0, |m, b| m | 1 << b);
            gic::w32(D + reg + 4 * n, mask);
            probes += 1;
            if gic::r32(D + reg + 4 * n) & mask == 0 {
                refused += 1;
            } else if first_bad.is_none() {
                first_bad = Some(D + reg + 4 * n);
            }
        }
    }
    for i in 32..1020u32 {
        if owned(i) {
            continue;
        }
        gic::w8(D + 0x400 + u64::from(i), 0x00);
        gic::w8(D + 0x800 + u64::from(i), 0xff);
        probes += 1;
        if gic::r32(D + 0x400 + u64::from(i & !3)) >> (8 * (i % 4)) & 0xff == 0
            && gic::r32(D + 0x800 + u64::from(i & !3)) >> (8 * (i % 4)) & 0xff == 0
        {
            refused += 1;
        } else if first_bad.is_none() {
            first_bad = Some(u64::from(i));
        }
    }
    // SGIs to vCPU interfaces 2-7 (this VM has two vCPUs): dropped.
    for sgi in 0..16u32 {
        gic::w32(D + 0xf00, (0xfc << 16) | sgi);
    }
    let pending = gic::r32(D + 0x200);
    probes += 1;
    refused += u64::from(pending & 0xffff == 0);
    r.report(
        "gicd-foreign",
        probes,
        refused,
        probes == refused,
        format_args!("state stuck at {first_bad:#x?}, SGIs pending {pending:#x}"),
    );
}

/// Sends a property-channel request for a buffer at bus address `bus`;
/// the answer word, if any.
fn mbox_call(bus: u32, channel: u32) -> Option<u32> {
    const MBOX: u64 = 0xfe00_b880;
    gic::w32(MBOX + 0x20, bus | channel);
    for _ in 0..100_000 {
        if gic::r32(MBOX + 0x18) & (1 << 30) == 0 {
            return Some(gic::r32(MBOX));
        }
    }
    None
}

/// Property buffers aimed outside the VM (the victim's and the
/// hypervisor's memory lie there), straddling its RAM's end, with lying
/// sizes, on other channels, and a flood: each refused, nothing outside
/// the buffer touched.
fn mailbox(r: &mut Run, ram: u64) {
    const BUS: u64 = 0xc000_0000;
    // Probe k refused as it must: bit k clear in `missed`.
    let (mut probes, mut missed, mut ok) = (0u64, 0u64, true);
    let mut probe = |refused: bool| {
        if !refused {
            missed |= 1 << probes;
        }
        probes += 1;
    };
    write64(CANARY, 0x6361_6e61_7279);
    let get_memory = |at: u64| {
        for (i, w) in [32u32, 0, 0x10005, 8, 0, 0, 0, 0].iter().enumerate() {
            gic::w32(at + 4 * i as u64, *w);
        }
    };
    // Bus addresses past the VM's RAM (the victim's and the hypervisor's
    // memory lie somewhere there), the DMA window's last bytes, and a
    // 32-byte buffer whose second half is past RAM's end (only its head is
    // the VM's to write): answered with the word, nothing written.
    for bus in [BUS + ram, BUS + ram + 0x1000, 0xffff_fff0, BUS + ram - 16] {
        let inside = bus - BUS + 16 <= ram;
        if inside {
            for (i, w) in [32u32, 0, 0x10005, 8].iter().enumerate() {
                gic::w32(bus - BUS + 4 * i as u64, *w);
            }
        }
        probe(mbox_call(bus as u32, 8) == Some(bus as u32 | 8));
        if inside {
            ok &= gic::r32(bus - BUS + 4) == 0; // code word untouched
        }
    }
    // Lying sizes: too small, not a multiple of 4, enormous: the code
    // word says error.
    for size in [4u32, 30, 0xffff_fff0, 0x10_0000] {
        get_memory(MBOX_BUF);
        gic::w32(MBOX_BUF, size);
        let answered = mbox_call(BUS as u32 + MBOX_BUF as u32, 8).is_some();
        probe(answered && gic::r32(MBOX_BUF + 4) == 0x8000_0001);
    }
    // A forbidden tag (allocate VideoCore memory): code error.
    for (i, w) in [28u32, 0, 0x3000c, 12, 12, 4096, 4096].iter().enumerate() {
        gic::w32(MBOX_BUF + 4 * i as u64, *w);
    }
    let answered = mbox_call(BUS as u32 + MBOX_BUF as u32, 8).is_some();
    probe(answered && gic::r32(MBOX_BUF + 4) == 0x8000_0001);
    // Other channels: no answer.
    for ch in [0u32, 1, 9, 15] {
        probe(mbox_call(BUS as u32 + MBOX_BUF as u32, ch).is_none());
    }
    // A flood of 2000 requests for buffers outside RAM, each answered.
    let mut answered = 0;
    for k in 0..2000u64 {
        let bus = (BUS + ram + k * 0x1000) as u32;
        answered += u32::from(mbox_call(bus, 8) == Some(bus | 8));
    }
    probe(answered == 2000);
    ok &= read64(CANARY) == 0x6361_6e61_7279;
    let refused = probes - u64::from(missed.count_ones());
    r.report(
        "mailbox",
        probes,
        refused,
        ok && missed == 0,
        format_args!("probes not refused (bits) {missed:#b}, canary and code words intact {ok}"),
    );
}

/// xorshift64: the sweep's arguments.
fn next(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

/// Function ids whose effect on this VM itself would end the run (they
/// are exercised by the test guest and the PSCI tests instead).
fn self_ending(f: u64) -> bool {
    matches!(
        f as u32 & !(1 << 30),
        0x8400_0001..=0x8400_0003 | 0x8400_0008 | 0x8400_0009 | 0x8400_000e | 0x8400_0012
    )
}

/// Every SMCCC owner's fast calls (32- and 64-bit, ids 0-63 and the top
/// 64 of each) over HVC and SMC, with random arguments: each returns.
fn smccc_sweep(r: &mut Run) {
    let mut s = 0x5eed_1234_5678_9abcu64;
    let (mut probes, mut refused) = (0u64, 0u64);
    for owner in 0..64u64 {
        for conv in [0x8000_0000u64, 0xc000_0000] {
            for low in (0..64u64).chain(0xffc0..0x10000) {
                let f = conv | owner << 24 | low;
                if self_ending(f) {
                    continue;
                }
                let (a, b, c) = (next(&mut s), next(&mut s), next(&mut s));
                let x = if low & 1 == 0 {
                    hvc(f, a, b, c)
                } else {
                    smc(f, a, b, c)
                };
                probes += 1;
                if x < 0 {
                    refused += 1;
                }
            }
        }
    }
    // Returning at all is the test; most answers are NOT_SUPPORTED.
    r.report(
        "smccc-sweep",
        probes,
        refused,
        refused > probes / 2,
        format_args!("only {refused} of {probes} refused"),
    );
}

/// pivisor's exit-count call from a VM without `devices = counters`:
/// refused, so it cannot count how often its core is interrupted (once,
/// that included every key typed into another VM).
fn exit_count_call(r: &mut Run) {
    const PIVISOR_EXIT_COUNT: u64 = 0xc600_0001;
    let mut refused = 0u64;
    for which in 0..10u64 {
        if hvc(PIVISOR_EXIT_COUNT, which, 0, 0) == -1 {
            refused += 1;
        }
    }
    r.report(
        "exit-count-call",
        10,
        refused,
        refused == 10,
        format_args!("{} of 10 calls answered with counts", 10 - refused),
    );
}

/// Writes to the trapped debug, PMU and IMPLEMENTATION DEFINED registers:
/// absorbed (reads stay zero) or UNDEFINED, never reaching the hardware.
fn sysregs(r: &mut Run) {
    let mut undef = 0u64;
    macro_rules! poke {
        ($reg:literal) => {{
            arm_abort_box();
            // SAFETY: a trapped system register write.
            unsafe { asm!(concat!("msr ", $reg, ", {}"), in(reg) u64::MAX, options(nostack)) };
            undef += u64::from(abort_box_taken());
        }};
    }
    poke!("mdscr_el1");
    poke!("dbgbvr0_el1");
    poke!("dbgbcr0_el1");
    poke!("dbgwvr0_el1");
    poke!("dbgwcr0_el1");
    poke!("pmcr_el0");
    poke!("pmcntenset_el0");
    poke!("pmuserenr_el0");
    poke!("actlr_el1");
    poke!("s3_1_c15_c2_0"); // CPUACTLR_EL1
    poke!("s3_1_c15_c2_1"); // CPUECTLR_EL1 (SMPEN)
    poke!("s3_1_c11_c0_2"); // L2CTLR_EL1
    poke!("s3_1_c11_c0_3"); // L2ECTLR_EL1
    let pmcr = sysreg_pmcr();
    let cpuectlr = sysreg_cpuectlr();
    r.report(
        "sysregs",
        13,
        13,
        pmcr == 0 && cpuectlr == 0,
        format_args!("PMCR {pmcr:#x}, CPUECTLR {cpuectlr:#x} after writes ({undef} UNDEFINED)"),
    );
}

/// CPU_ON with targets it does not have and entry points outside RAM or
/// in device memory: errors, and no vCPU starts.
fn psci_cpu_on(r: &mut Run, ram: u64, vcpus: usize) {
    let entry = secondary_entry_addr();
    let tries: [(u64, u64, i64); 9] = [
        (99, entry, -2),
        (0xffff_ffff, entry, -2),
        (1 << 40 | 1, entry, -2),
        (4, entry, -2),
        (0, entry, -4), // itself: ALREADY_ON
        (1, ram + 0x1000, -9),
        (1, 0xff84_2000, -9),
        (1, !3, -9),
        (1, 0x40_0000_0000, -9),
    ];
    let (mut refused, mut bad) = (0u64, None);
    for (target, e, want) in tries {
        if vcpus < 2 && target == 1 {
            continue;
        }
        let got = psci(CPU_ON, target, e, 0);
        if got == want {
            refused += 1;
        } else if bad.is_none() {
            bad = Some((target, e, got));
        }
    }
    let off = vcpus < 2 || psci(AFFINITY_INFO, 1, 0, 0) == 1;
    r.report(
        "psci-cpu-on",
        tries.len() as u64,
        refused,
        bad.is_none() && off,
        format_args!("{bad:x?}, vCPU 1 off {off}"),
    );
}

/// Set/way cache maintenance over every L1 and L2 set and way: trapped,
/// made clean+invalidate (nobody's data lost).
fn set_way(r: &mut Run) {
    let mut n = 0u64;
    for (level, sets, ways, way_shift) in [(0u64, 256u64, 2u64, 31u64), (1, 1024, 16, 28)] {
        for set in (0..sets).step_by(if level == 0 { 1 } else { 8 }) {
            for way in 0..ways {
                let op = way << way_shift | set << 6 | level << 1;
                // SAFETY: trapped by HCR_EL2.TSW.
                unsafe {
                    asm!("dc isw, {0}", "dc csw, {0}", "dc cisw, {0}", in(reg) op, options(nostack))
                };
                n += 3;
            }
        }
    }
    r.report("set-way", n, n, true, format_args!(""));
}

/// 100,000 WFEs (the event stream wakes them on silicon) and 1,000 WFIs
/// woken by the timer: the hypervisor and the victim carry on.
fn wfx_storm(r: &mut Run) {
    // SAFETY: CNTKCTL_EL1: EL0 counter access as reset, event stream on
    // (bit 2), from bit 0 of the counter: an event every two ticks.
    unsafe {
        asm!("mrs {0}, cntkctl_el1", "orr {0}, {0}, #4", "msr cntkctl_el1, {0}", "isb", out(reg) _, options(nostack))
    };
    for _ in 0..100_000 {
        // SAFETY: waits for an event.
        unsafe { asm!("wfe", options(nomem, nostack)) };
    }
    let mut woke = 0;
    for _ in 0..1000 {
        gic::sleep_until(0, || false);
        woke += 1;
    }
    r.report(
        "wfx-storm",
        101_000,
        101_000,
        woke == 1000,
        format_args!("{woke} WFIs woke"),
    );
}

/// The passed-through PL011's interrupt kept high (TX interrupt unmasked,
/// never cleared), acknowledged and EOId 20,000 times: each EOI lets the
/// physical line fire again at once.
fn uart_storm(r: &mut Run) {
    let me = gic::me();
    let n = gic::uart_storm(me, 20_000, 5_000);
    r.report(
        "uart-storm",
        n,
        n,
        n >= 1000,
        format_args!("only {n} interrupts taken"),
    );
}

/// Its disk (guests/hostile.conf: `disk = sd:2, readonly`): malformed
/// queues, requests outside the partition or writing the read-only disk,
/// rings outside RAM, notifications on a reset device
/// (guests/testguest/src/virtio.rs).
fn virtio_attacks(r: &mut Run, ram: u64) {
    let (t, ok) = crate::virtio::queues(ram);
    r.report(
        "virtio-queues",
        t.probes,
        t.refused,
        ok && t.refused == t.probes,
        format_args!(
            "{} of {} malformed queues refused; device sane before and after: {ok}",
            t.refused, t.probes
        ),
    );
    let (t, ok) = crate::virtio::requests();
    r.report(
        "virtio-requests",
        t.probes,
        t.refused,
        ok && t.refused == t.probes,
        format_args!(
            "{} of {} requests answered IOERR; device sane: {ok}",
            t.refused, t.probes
        ),
    );
    let (t, ok) = crate::virtio::setup_and_notify(ram);
    r.report(
        "virtio-setup",
        t.probes,
        t.refused,
        ok && t.refused == t.probes,
        format_args!(
            "{} of {} refused or ignored; device sane after: {ok}",
            t.refused, t.probes
        ),
    );
}

/// 3000 test-device lines as fast as it can print them: the hypervisor
/// logs at most its per-VM budget a second and counts the rest (the
/// harness checks the log). Waits out the second before reporting, so
/// its own report is not among the suppressed.
fn testdev_flood(r: &mut Run) {
    const LINES: u64 = 3000;
    for k in 0..LINES {
        println!("FLOOD {k}");
    }
    gic::sleep_until(1100, || false);
    r.report(
        "testdev-flood",
        LINES,
        0,
        true,
        format_args!("(judged by the harness)"),
    );
}

/// The crasher: report, mark RAM, crash.
pub fn crasher(ram: u64, dtb: u64) -> ! {
    let boots = testdev_read32(0x20);
    let end = dtb.min(ram) & !0xfff;
    let seed = 0x6372_6173_6865;
    // What a previous life left: after a restart the RAM must be zeros
    // (the images are reloaded; the pattern area is above them).
    let mut left = 0u64;
    let mut a = PATTERN_START;
    while a < end {
        if read64(a) != 0 {
            left += 1;
        }
        a += PATTERN_STEP * 16;
    }
    println!(
        "CRASHER boot={boots} scrubbed={}",
        if left == 0 { "yes" } else { "NO" }
    );
    let mut a = PATTERN_START;
    while a < end {
        write64(a, pattern(a, seed));
        a += PATTERN_STEP * 16;
    }
    if boots == 2 {
        hang_under_watchdog();
    }
    println!("CRASHER crashing: vector outside RAM, then an abort");
    // SAFETY: deliberately moves the vector table where nothing is.
    unsafe { asm!("msr vbar_el1, {}", "isb", in(reg) 0x40_0000_0000u64, options(nostack)) };
    let _ = read64(ram + 0x10_0000);
    println!("CRASHER still running: FAIL");
    halt()
}

/// The SP805 (guests/crash.conf gives the crasher `devices = watchdog`).
const WDOG: u64 = 0xfc00_2000;

/// Starts the watchdog with a 20 ms period (40 ms to the reset), feeds it
/// every 10 ms as Linux's driver does (unlock, reload, clear, lock), then
/// hangs without a single exit.
fn hang_under_watchdog() -> ! {
    gic::w32(0xff84_1000, 1);
    gic::cpu_init();
    let id = gic::r32(WDOG + 0xfe0) | gic::r32(WDOG + 0xfe4) << 8 | gic::r32(WDOG + 0xfe8) << 16;
    let feed = || {
        gic::w32(WDOG + 0xc00, 0x1acc_e551);
        gic::w32(WDOG, 19_999);
        gic::w32(WDOG + 0xc, 0);
        gic::w32(WDOG + 0xc00, 0);
    };
    feed();
    gic::w32(WDOG + 0xc00, 0x1acc_e551);
    gic::w32(WDOG + 0x8, 3); // INTEN | RESEN
    gic::w32(WDOG + 0xc00, 0);
    for _ in 0..10 {
        gic::sleep_until(10, || false);
        feed();
    }
    println!("CRASHER watchdog {id:#x} fed 10 times; hanging with interrupts masked");
    // SAFETY: masks everything; nothing here exits to the hypervisor.
    unsafe { asm!("msr daifset, #0xf", options(nomem, nostack)) };
    loop {
        core::hint::spin_loop();
    }
}

/// The fault-injection page (guests/panic.conf: `devices =
/// fault-injection`).
const FAULTS: u64 = 0xfc00_3000;

/// The panicker: say so, then make the hypervisor panic on this core.
pub fn panicker() -> ! {
    let id = gic::r32(FAULTS);
    println!("PANICKER fault page {id:#x}; panicking the hypervisor on this core");
    gic::w32(FAULTS + 4, 0x5041_4e43);
    println!("PANICKER still running: FAIL");
    halt()
}
