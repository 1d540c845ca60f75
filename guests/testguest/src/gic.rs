//! Interrupt tests: the guest drives the GIC-400 as Linux does (GICD
//! trapped and emulated, GICC mapped to the virtual CPU interface) and
//! checks the virtual timer, SGIs between vCPUs, more pending interrupts
//! than list registers, level re-sampling, and that interrupt numbers it
//! does not own are invisible.
//!
//! State shared between the handler and the tests lives in plain RAM
//! words (the MMU is off: no atomics), indexed by vCPU.

use crate::hw::*;
use crate::println;
use crate::Tally;
use core::arch::asm;
use core::fmt::Write;

const GICD: u64 = 0xff84_1000;
const GICC: u64 = 0xff84_2000;
const GICC_CTLR: u64 = GICC;
const GICC_PMR: u64 = GICC + 0x4;
const GICC_IAR: u64 = GICC + 0xc;
const GICC_EOIR: u64 = GICC + 0x10;

/// SGIs used by the tests.
const SGI_PING: u32 = 3;
const SGI_PONG: u32 = 4;
const SGI_STOP: u32 = 5;
const SGI_OTHERS: u32 = 6;
const SGI_SELF: u32 = 7;
const VTIMER: u32 = 27;
/// The EL1 physical timer: wakes sleep_until's wfi at its deadline.
const PTIMER: u32 = 30;

/// Handler state: 0x7c000.. (below the image, not reloaded at reset).
const STATE: u64 = 0x7c000;
/// Per vCPU (0x200 each): 64 counters by slot.
fn slot(vcpu: u64, i: u64) -> u64 {
    STATE + vcpu * 0x200 + i * 8
}
const S_PINGS: u64 = 0;
const S_PONGS: u64 = 1;
const S_STOP: u64 = 2;
const S_OTHERS: u64 = 3;
const S_SELF: u64 = 4;
const S_TICKS: u64 = 5;
const S_FIRST: u64 = 6;
const S_LAST: u64 = 7;
const S_PERIOD: u64 = 8;
const S_SPURIOUS_SRC: u64 = 9;
const S_ORDER_N: u64 = 10;
/// 11..=26: INTIDs in delivery order (line test).
const S_ORDER: u64 = 11;
const S_LINE_BASE: u64 = 27;
/// Bit k: line k is lowered only on its second delivery.
const S_STICKY: u64 = 28;
const S_LINE_HITS: u64 = 29;
const S_UNEXPECTED: u64 = 30;
const S_LATE: u64 = 31;
const S_MAXGAP: u64 = 32;
/// Mailbox interrupts taken, and the last word read in the handler.
pub const S_MBOX_IRQS: u64 = 33;
pub const S_MBOX_WORD: u64 = 34;
/// UART: bytes received, and whether a line ended.
pub const S_UART_N: u64 = 35;
/// The hostile suite's UART storm: its target count (0: off), and the
/// interrupts taken.
pub const S_STORM: u64 = 37;
pub const S_STORM_N: u64 = 38;
pub const S_UART_DONE: u64 = 36;

pub fn get(vcpu: u64, i: u64) -> u64 {
    read64(slot(vcpu, i))
}
pub fn set(vcpu: u64, i: u64, v: u64) {
    write64(slot(vcpu, i), v)
}
fn inc(vcpu: u64, i: u64) {
    set(vcpu, i, get(vcpu, i) + 1)
}

pub fn r32(a: u64) -> u32 {
    let v: u32;
    // SAFETY: an aligned 32-bit load from the GIC (or RAM).
    unsafe { asm!("ldr {0:w}, [{1}]", out(reg) v, in(reg) a, options(nostack)) };
    v
}
pub fn w32(a: u64, v: u32) {
    // SAFETY: an aligned 32-bit store to the GIC.
    unsafe { asm!("str {0:w}, [{1}]", in(reg) v, in(reg) a, options(nostack)) };
}
pub fn w8(a: u64, v: u8) {
    // SAFETY: a byte store to the GIC (byte-accessible registers only).
    unsafe { asm!("strb {0:w}, [{1}]", in(reg) v as u32, in(reg) a, options(nostack)) };
}
fn r8(a: u64) -> u8 {
    let v: u32;
    // SAFETY: a byte load from the GIC.
    unsafe { asm!("ldrb {0:w}, [{1}]", out(reg) v, in(reg) a, options(nostack)) };
    v as u8
}

pub fn me() -> u64 {
    mpidr() & 0xff
}

fn irq_on() {
    // SAFETY: unmasks IRQs at EL1; the isb makes a pending one taken here.
    unsafe { asm!("msr daifclr, #2", "isb", options(nostack)) };
}
fn irq_off() {
    // SAFETY: masks IRQs at EL1.
    unsafe { asm!("msr daifset, #2", options(nostack)) };
}
fn wfi() {
    // SAFETY: waits for an interrupt.
    unsafe { asm!("wfi", options(nomem, nostack)) };
}

pub fn cntvct() -> u64 {
    let v: u64;
    // SAFETY: reads the virtual counter.
    unsafe { asm!("isb", "mrs {}, cntvct_el0", out(reg) v, options(nostack)) };
    v
}
pub fn cntpct() -> u64 {
    let v: u64;
    // SAFETY: reads the physical counter (EL1PCTEN is set).
    unsafe { asm!("isb", "mrs {}, cntpct_el0", out(reg) v, options(nostack)) };
    v
}
pub fn cntfrq() -> u64 {
    let v: u64;
    // SAFETY: reads the counter frequency.
    unsafe { asm!("mrs {}, cntfrq_el0", out(reg) v, options(nostack)) };
    v
}
/// Programs the EL1 virtual timer. Switching off writes the control
/// first: a compare value in the past on an enabled timer would raise
/// the line for an instant.
fn set_vtimer(cval: u64, on: bool) {
    // SAFETY: the EL1 virtual timer.
    unsafe {
        if on {
            asm!("msr cntv_cval_el0, {}", "msr cntv_ctl_el0, {}", "isb",
                 in(reg) cval, in(reg) 1u64, options(nostack));
        } else {
            asm!("msr cntv_ctl_el0, xzr", "isb", "msr cntv_cval_el0, {}",
                 in(reg) cval, options(nostack));
        }
    }
}

/// Programs the EL1 physical timer (EL1PCEN is set), like set_vtimer.
fn set_ptimer(cval: u64, on: bool) {
    // SAFETY: the EL1 physical timer.
    unsafe {
        if on {
            asm!("msr cntp_cval_el0, {}", "msr cntp_ctl_el0, {}", "isb",
                 in(reg) cval, in(reg) 1u64, options(nostack));
        } else {
            asm!("msr cntp_ctl_el0, xzr", "isb", "msr cntp_cval_el0, {}",
                 in(reg) cval, options(nostack));
        }
    }
}

/// Waits in wfi until `f` holds or `ms` pass; the EL1 physical timer
/// ends the last wfi. The check and the wfi happen with interrupts
/// masked (a masked interrupt still ends wfi), then interrupts are taken:
/// an interrupt between the check and the wfi cannot be slept through.
pub fn sleep_until(ms: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = cntpct() + cntfrq() * ms / 1000;
    set_ptimer(end, true);
    let ok = loop {
        irq_off();
        if f() {
            break true;
        }
        if cntpct() > end {
            break false;
        }
        wfi();
        irq_on();
    };
    set_ptimer(0, false);
    ok
}

/// This vCPU's CPU interface as Linux sets it: Group 0 on, mask 0xf0.
pub fn cpu_init() {
    w32(GICC_PMR, 0xf0);
    w32(GICC_CTLR, 1);
    w32(GICD + 0x100, 0xffff | (1 << PTIMER)); // its SGIs, the wake-up timer
    for i in 0..8 {
        w32(GICD + 0x400 + 4 * i, 0xa0a0_a0a0);
    }
}

pub fn enable(intid: u32) {
    w32(GICD + 0x100 + 4 * (intid / 32) as u64, 1 << (intid % 32));
}
pub fn disable(intid: u32) {
    w32(GICD + 0x180 + 4 * (intid / 32) as u64, 1 << (intid % 32));
}
fn sgi(filter: u32, targets: u32, id: u32) {
    w32(GICD + 0xf00, (filter << 24) | (targets << 16) | id);
}

/// The IRQ vector.
pub fn irq() {
    let me = me();
    loop {
        let iar = r32(GICC_IAR);
        let id = iar & 0x3ff;
        if id >= 1020 {
            break;
        }
        let src = ((iar >> 10) & 7) as u64;
        let base = get(me, S_LINE_BASE) as u32;
        match id {
            SGI_PING => {
                inc(me, S_PINGS);
                sgi(0, 1 << src, SGI_PONG);
            }
            SGI_PONG => {
                inc(me, S_PONGS);
                if src != 1 {
                    set(me, S_SPURIOUS_SRC, src + 1);
                }
            }
            SGI_STOP => set(me, S_STOP, 1),
            PTIMER => {
                // Only a deadline that has passed (ISTATUS) ends the
                // sleep: a late interrupt of an earlier sleep must not
                // cancel the current one.
                let ctl: u64;
                // SAFETY: reads the EL1 physical timer's control.
                unsafe { asm!("mrs {}, cntp_ctl_el0", out(reg) ctl, options(nostack)) };
                if ctl & 4 != 0 {
                    set_ptimer(0, false);
                }
            }
            SGI_OTHERS => inc(me, S_OTHERS),
            SGI_SELF => inc(me, S_SELF),
            VTIMER => {
                let now = cntvct();
                let n = get(me, S_TICKS) + 1;
                set(me, S_TICKS, n);
                if n == 1 {
                    set(me, S_FIRST, now);
                } else {
                    let gap = now - get(me, S_LAST);
                    if gap > get(me, S_MAXGAP) {
                        set(me, S_MAXGAP, gap);
                    }
                }
                set(me, S_LAST, now);
                let period = get(me, S_PERIOD);
                let cval: u64;
                // SAFETY: reads the timer's compare value.
                unsafe { asm!("mrs {}, cntv_cval_el0", out(reg) cval, options(nostack)) };
                // An absolute schedule: a late tick is followed at once by
                // the ones it delayed, so the mean spacing stays exact.
                let next = cval + period;
                if next <= now {
                    inc(me, S_LATE);
                }
                set_vtimer(next, n < 1000);
            }
            crate::uart::INTID => crate::uart::irq(),
            crate::mbox::INTID => {
                // Reading the answer lowers the (level) line.
                set(me, S_MBOX_WORD, u64::from(crate::mbox::pop()));
                inc(me, S_MBOX_IRQS);
            }
            _ if base != 0 && (base..base + 8).contains(&id) => {
                let k = id - base;
                let n = get(me, S_ORDER_N);
                if n < 16 {
                    set(me, S_ORDER + n, id as u64);
                }
                set(me, S_ORDER_N, n + 1);
                inc(me, S_LINE_HITS);
                let sticky = get(me, S_STICKY);
                if sticky & (1 << k) != 0 {
                    // EOI with the line still high: it must come back.
                    set(me, S_STICKY, sticky & !(1 << k));
                } else {
                    let lv = testdev_read32(0x18);
                    testdev_write32(0x18, lv & !(1 << k));
                }
            }
            _ => inc(me, S_UNEXPECTED),
        }
        w32(GICC_EOIR, iar);
    }
}

/// vCPUs started in SGI-server mode: answer pings until told to stop.
pub fn sgi_server() -> ! {
    let me = me();
    for i in 0..64 {
        set(me, i, 0);
    }
    cpu_init();
    write64(crate::CPU_FLAGS + me * 8, 0x5e5e);
    sleep_until(3_600_000, || get(me, S_STOP) != 0);
    psci(CPU_OFF, 0, 0, 0);
    halt()
}

pub fn run(t: &mut Tally, vcpus: usize, info: u32, mailbox: bool, uart: bool) {
    for v in 0..4 {
        for i in 0..64 {
            set(v, i, 0);
        }
    }
    let base = info >> 16;
    set(0, S_LINE_BASE, base as u64);
    w32(GICD, 1); // distributor: Group 0 on
    cpu_init();
    test_ids(t, vcpus, base, uart);
    test_foreign(t, base, mailbox, uart);
    test_vtimer(t);
    test_lines(t, base);
    if vcpus >= 2 {
        test_sgis(t);
    }
}

fn test_ids(t: &mut Tally, vcpus: usize, base: u32, uart: bool) {
    let typer = r32(GICD + 4);
    // Lines up to the highest it owns: its test device's, the UART's.
    let top = if uart {
        (base + 8).max(crate::uart::INTID + 1)
    } else {
        base + 8
    };
    let lines = top.next_multiple_of(32);
    let want = (lines / 32 - 1) | ((vcpus as u32 - 1) << 5);
    let iidr = r32(GICD + 8);
    let tgt = r32(GICD + 0x800);
    t.check(
        "gic-ids",
        typer == want && iidr == 0x0200_143b && tgt == 0x0101_0101,
        format_args!("TYPER {typer:#x} (want {want:#x}) IIDR {iidr:#x} ITARGETSR0 {tgt:#x}"),
    );
}

/// Every SPI number outside its own lines (the test device's, the
/// mailbox's when it has one) reads as zero and ignores
/// enable, pending, target and priority writes (in the two-VM test these
/// include the other VM's lines).
fn test_foreign(t: &mut Tally, base: u32, mailbox: bool, uart: bool) {
    let own = |i: u32| {
        (base..base + 8).contains(&i)
            || (mailbox && i == crate::mbox::INTID)
            || (uart && i == crate::uart::INTID)
    };
    let mut leaked = 0u32;
    for bank in 1..32u64 {
        w32(GICD + 0x100 + 4 * bank, u32::MAX);
        w32(GICD + 0x200 + 4 * bank, u32::MAX);
    }
    for intid in 32..1020u32 {
        if own(intid) {
            continue;
        }
        w8(GICD + 0x800 + intid as u64, 0xff);
        w8(GICD + 0x400 + intid as u64, 0x10);
        if r8(GICD + 0x800 + intid as u64) != 0 || r8(GICD + 0x400 + intid as u64) != 0 {
            leaked += 1;
        }
    }
    for bank in 1..32u64 {
        let mask = (0..32).fold(0u32, |m, b| {
            if own(bank as u32 * 32 + b) {
                m | (1 << b)
            } else {
                m
            }
        });
        let en = r32(GICD + 0x100 + 4 * bank) & !mask;
        let pend = r32(GICD + 0x200 + 4 * bank) & !mask;
        if en | pend != 0 {
            leaked += 1;
        }
        // Undo on its own lines.
        w32(GICD + 0x180 + 4 * bank, u32::MAX);
        w32(GICD + 0x280 + 4 * bank, u32::MAX);
    }
    let before = get(0, S_UNEXPECTED);
    sleep_until(5, || false);
    let stray = get(0, S_UNEXPECTED) - before;
    t.check(
        "gic-foreign-lines",
        leaked == 0 && stray == 0,
        format_args!("{leaked} foreign registers took a write, {stray} stray interrupts"),
    );
}

fn test_vtimer(t: &mut Tally) {
    let f = cntfrq();
    let (v, p) = (cntvct(), cntpct());
    t.check(
        "vcounter",
        v < p && v < 60 * f,
        format_args!("CNTVCT {v} CNTPCT {p}: the virtual counter starts at VM start"),
    );
    let period = f / 1000;
    set(0, S_PERIOD, period);
    w8(GICD + 0x400 + VTIMER as u64, 0x80);
    enable(VTIMER);
    set_vtimer(cntvct() + period, true);
    let done = sleep_until(5000, || get(0, S_TICKS) >= 1000);
    set_vtimer(0, false);
    disable(VTIMER);
    let n = get(0, S_TICKS);
    let span = get(0, S_LAST) - get(0, S_FIRST);
    let mean_ns = if n > 1 {
        span * 1_000_000_000 / f / (n - 1)
    } else {
        0
    };
    let late = get(0, S_LATE);
    let max_ns = get(0, S_MAXGAP) * 1_000_000_000 / f;
    println!("TIMER ticks {n} mean_spacing_ns {mean_ns} max_spacing_ns {max_ns} period_ns 1000000 late {late}");
    t.check(
        "vtimer-1khz",
        done && n == 1000 && (950_000..=1_050_000).contains(&mean_ns),
        format_args!("{n} ticks, mean spacing {mean_ns} ns"),
    );
}

fn test_lines(t: &mut Tally, base: u32) {
    // Eight level lines at distinct priorities (line k: 0x80 - 8k, so
    // higher lines are more urgent), plus four SGIs to itself: twelve
    // pending at once against four list registers.
    for k in 0..8u32 {
        w8(GICD + 0x400 + (base + k) as u64, (0x80 - 8 * k) as u8);
        w8(GICD + 0x800 + (base + k) as u64, 1);
        enable(base + k);
    }
    set(0, S_ORDER_N, 0);
    set(0, S_SELF, 0);
    testdev_write32(0x18, 0xff);
    for _ in 0..4 {
        sgi(2, 0, SGI_SELF);
    }
    sgi(2, 0, SGI_SELF + 1); // unexpected id: counted, not lost
    let before = get(0, S_UNEXPECTED);
    let all = sleep_until(1000, || get(0, S_ORDER_N) >= 8 && get(0, S_SELF) >= 1);
    let n = get(0, S_ORDER_N);
    let mut order = [0u64; 8];
    for (i, o) in order.iter_mut().enumerate() {
        *o = get(0, S_ORDER + i as u64);
    }
    let want: [u64; 8] = core::array::from_fn(|i| (base + 7 - i as u32) as u64);
    let selfs = get(0, S_SELF);
    let extra = get(0, S_UNEXPECTED) - before;
    t.check(
        "more-pending-than-lrs",
        all && n == 8 && order == want && selfs == 1 && extra == 1,
        format_args!(
            "{n} lines in order {order:?} (want {want:?}), self SGI x{selfs}, other {extra}"
        ),
    );
    // Level re-sampling: an EOI with the line still high brings it back.
    set(0, S_LINE_HITS, 0);
    set(0, S_STICKY, 1);
    testdev_write32(0x18, 1);
    let ok = sleep_until(1000, || {
        get(0, S_LINE_HITS) >= 2 && testdev_read32(0x18) == 0
    });
    sleep_until(5, || false);
    let hits = get(0, S_LINE_HITS);
    t.check(
        "level-resample",
        ok && hits == 2,
        format_args!("line delivered {hits} times (want 2)"),
    );
    // An edge: two pulses while masked latch once.
    w32(GICD + 0xc00 + 4 * (base / 16) as u64, 0xaaaa_aaaa);
    set(0, S_LINE_HITS, 0);
    testdev_write32(0x1c, 1 << 1);
    testdev_write32(0x1c, 1 << 1);
    let ok = sleep_until(1000, || get(0, S_LINE_HITS) >= 1);
    sleep_until(5, || false);
    let hits = get(0, S_LINE_HITS);
    t.check(
        "edge-latch",
        ok && hits == 1,
        format_args!("edge line delivered {hits} times (want 1)"),
    );
    w32(GICD + 0xc00 + 4 * (base / 16) as u64, 0);
    for k in 0..8 {
        disable(base + k);
    }
}

fn test_sgis(t: &mut Tally) {
    let entry = secondary_entry_addr();
    write64(crate::CPU_FLAGS + 8, 0);
    let r = psci(CPU_ON, 1, entry, 1 | crate::SGI_SERVER);
    let up = wait_for(|| read64(crate::CPU_FLAGS + 8) == 0x5e5e);
    const ROUNDS: u64 = 200;
    let start = cntvct();
    let mut done = 0;
    let mut slow = 0;
    let mut worst = 0;
    for i in 0..ROUNDS {
        let t0 = cntvct();
        sgi(0, 1 << 1, SGI_PING);
        if !sleep_until(1000, || get(0, S_PONGS) > i) {
            break;
        }
        let took = cntvct() - t0;
        worst = worst.max(took);
        if took > cntfrq() / 10 {
            slow += 1;
        }
        done += 1;
    }

    let ns = (cntvct() - start) * 1_000_000_000 / cntfrq();
    println!(
        "SGI ping-pong round_trips {done} total_ns {ns} per_round_trip_ns {} worst_ns {} over_100ms {slow}",
        ns / done.max(1),
        worst * 1_000_000_000 / cntfrq()
    );
    let src = get(0, S_SPURIOUS_SRC);
    t.check(
        "sgi-ping-pong",
        r == 0 && up && done == ROUNDS && get(1, S_PINGS) == ROUNDS && src == 0 && slow == 0,
        format_args!(
            "CPU_ON {r}, up {up}, {done} round trips ({slow} over 100 ms), pings {}, bad source {src}",
            get(1, S_PINGS)
        ),
    );
    // Target filters: "all but me" reaches vCPU 1 only; "me" only me.
    sgi(1, 0, SGI_OTHERS);
    sgi(2, 0, SGI_SELF);
    // vCPU 1's counter changes without an interrupt here: poll.
    irq_on();
    let ok = wait_for(|| get(1, S_OTHERS) == 1 && get(0, S_SELF) == 2);
    irq_off();
    sleep_until(5, || false);
    t.check(
        "sgi-filters",
        ok && get(0, S_OTHERS) == 0 && get(1, S_SELF) == 0,
        format_args!(
            "others: vCPU0 {} vCPU1 {}; self: vCPU0 {} vCPU1 {}",
            get(0, S_OTHERS),
            get(1, S_OTHERS),
            get(0, S_SELF),
            get(1, S_SELF)
        ),
    );
    // A target list naming vCPUs the VM does not have reaches no one.
    sgi(0, 0xf0, SGI_PING);
    sgi(0, 1 << 1, SGI_STOP);
    let off = wait_for(|| psci(AFFINITY_INFO, 1, 0, 0) == 1);
    t.check(
        "sgi-server-off",
        off && get(1, S_UNEXPECTED) == 0,
        format_args!("vCPU 1 off {off}, unexpected {}", get(1, S_UNEXPECTED)),
    );
}

/// The hostile suite's interrupt storm: the passed-through PL011's TX
/// interrupt unmasked and never cleared (the handler only counts and
/// EOIs), until `count` interrupts or `ms` pass. Returns how many came.
pub fn uart_storm(me: u64, count: u64, ms: u64) -> u64 {
    const UART: u64 = 0xfe20_1000;
    let intid = crate::uart::INTID;
    set(me, S_STORM_N, 0);
    set(me, S_STORM, count);
    w8(GICD + 0x800 + u64::from(intid), 1 << me);
    w8(GICD + 0x400 + u64::from(intid), 0xa0);
    enable(intid);
    w32(UART + 0x38, 1 << 5); // IMSC: TX
    w32(UART, u32::from(b'!')); // a byte out: the TX interrupt asserts
    sleep_until(ms, || get(me, S_STORM_N) >= count);
    w32(UART + 0x38, 0);
    w32(UART + 0x44, 0x7ff);
    disable(intid);
    set(me, S_STORM, 0);
    get(me, S_STORM_N)
}
