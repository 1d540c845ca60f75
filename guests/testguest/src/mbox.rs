//! Mailbox tests: the VideoCore mailbox as the VM's device tree describes
//! it (trap-and-emulated by pivisor), driven as Linux's bcm2835-mailbox
//! and raspberrypi-firmware drivers do: a property buffer in RAM, its bus
//! address (the /soc dma-ranges window) | channel 8 written to MAIL1, the
//! answer word read from MAIL0, polled or on the mailbox interrupt.
//!
//! Prints `MBOX firmware_revision X board_revision Y board_model Z` for
//! the harness to compare with what QEMU's firmware model answers.

use crate::gic;
use crate::println;
use crate::Tally;
use core::fmt::Write;

/// The mailbox registers at their IPA (bus 0x7e00b880 through /soc ranges).
const MBOX: u64 = 0xfe00_b880;
const MAIL0_RD: u64 = MBOX;
const MAIL0_STA: u64 = MBOX + 0x18;
const MAIL0_CNF: u64 = MBOX + 0x1c;
const MAIL1_WRT: u64 = MBOX + 0x20;
const EMPTY: u32 = 1 << 30;
/// GIC_SPI 0x21.
pub const INTID: u32 = 65;
/// The property buffer (below the image; not part of the RAM pattern).
const BUF: u64 = 0x7d000;
/// The VideoCore's view of RAM (dma-ranges = <0xc0000000 0x0 0x0 ...>).
const BUS: u32 = 0xc000_0000;

const OK: u32 = 0x8000_0000;
const ERR: u32 = 0x8000_0001;

fn r32(a: u64) -> u32 {
    gic::r32(a)
}
fn w32(a: u64, v: u32) {
    // SAFETY: an aligned MMIO/RAM word of the guest's own.
    unsafe { core::ptr::write_volatile(a as *mut u32, v) }
}

/// Pops one answer (the interrupt handler's read).
pub fn pop() -> u32 {
    r32(MAIL0_RD)
}

/// Writes `words` as the property buffer.
fn put(words: &[u32]) {
    for (i, &w) in words.iter().enumerate() {
        w32(BUF + 4 * i as u64, w);
    }
}

fn word(i: u64) -> u32 {
    r32(BUF + 4 * i)
}

/// Sends `msg` and waits (polling MAIL0's status) for the answer word.
fn call_polled(msg: u32) -> Option<u32> {
    w32(MAIL1_WRT, msg);
    for _ in 0..1_000_000 {
        if r32(MAIL0_STA) & EMPTY == 0 {
            return Some(r32(MAIL0_RD));
        }
    }
    None
}

fn call(words: &[u32]) -> Option<u32> {
    put(words);
    call_polled(BUS | BUF as u32 | 8)
}

pub fn run(t: &mut Tally, ram: u64) {
    // Three forwarded tags in one buffer, polled.
    let r = call(&[
        4 * 15,
        0,
        0x1,
        4,
        0,
        0,
        0x10002,
        4,
        0,
        0,
        0x10001,
        4,
        0,
        0,
        0,
    ]);
    let (fw, rev, model) = (word(5), word(9), word(13));
    let codes = [word(1), word(4), word(8), word(12)];
    t.check(
        "mbox-firmware",
        r == Some(BUS | BUF as u32 | 8) && codes == [OK, OK | 4, OK | 4, OK | 4] && fw != 0,
        format_args!("answer {r:x?}, codes {codes:x?}"),
    );
    println!("MBOX firmware_revision {fw:#x} board_revision {rev:#x} board_model {model:#x}");

    // ARM memory is the VM's own, answered by the hypervisor.
    call(&[4 * 8, 0, 0x10005, 8, 0, 0, 0, 0]);
    let (code, base, size) = (word(1), word(5), word(6));
    t.check(
        "mbox-arm-memory",
        code == OK && base == 0 && u64::from(size) == ram,
        format_args!("code {code:#x} base {base:#x} size {size:#x} (RAM {ram:#x})"),
    );

    // A forbidden tag (set the ARM clock) next to an allowed one.
    call(&[
        4 * 13,
        0,
        0x38002,
        12,
        12,
        3,
        600_000_000,
        0,
        0x1,
        4,
        0,
        0,
        0,
    ]);
    let (code, set_code, v0, fw_code) = (word(1), word(4), word(5), word(10));
    t.check(
        "mbox-refused",
        code == ERR && set_code == 12 && v0 == 3 && fw_code == OK | 4,
        format_args!("buffer {code:#x}, SET_CLOCK_RATE code {set_code:#x} value {v0}, revision code {fw_code:#x}"),
    );

    // A size that lies: the tag's value buffer runs past the end.
    call(&[4 * 7, 0, 0x1, 0x1000, 0, 0, 0]);
    let (code, tcode) = (word(1), word(4));
    t.check(
        "mbox-malformed",
        code == ERR && tcode == 0,
        format_args!("buffer code {code:#x}, tag code {tcode:#x}"),
    );

    // Buffers outside the VM: past its RAM end, straddling it, below the
    // DMA window (an ARM physical address), in the hypervisor's range.
    // Each gets its answer word (nothing hangs) and nothing is written.
    let end = BUS + ram as u32;
    let mut answered = 0;
    for msg in [end | 8, (end - 16) | 8, 0x0007_d008, 0x8000_0008, BUS | 8] {
        put(&[4 * 7, 0, 0x1, 4, 0, 0, 0]);
        if msg == (end - 16) | 8 {
            // Its size word (the last 4 bytes of RAM would be needed
            // past the end): 64 bytes starting 16 below the end.
            w32(ram - 16, 64);
        }
        if msg == BUS | 8 {
            // At IPA 0: a buffer whose size word is 0.
            w32(0, 0);
        }
        if call_polled(msg) == Some(msg) {
            answered += 1;
        }
    }
    let untouched = word(1) == 0 && word(4) == 0;
    // The hypervisor carries on: a good request still works.
    call(&[4 * 7, 0, 0x1, 4, 0, 0, 0]);
    let after = word(1);
    t.check(
        "mbox-hostile",
        answered == 5 && untouched && after == OK,
        format_args!("{answered} of 5 answered, untouched {untouched}, then {after:#x}"),
    );

    // Interrupt-driven, as Linux's driver runs: enable the data interrupt,
    // send, sleep until the handler has taken the answer.
    let me = gic::me();
    gic::set(me, gic::S_MBOX_IRQS, 0);
    // Linux's gic_dist_init targets every SPI at the boot CPU; an SPI
    // with an empty target list is never delivered.
    gic::w8(0xff84_1800 + u64::from(INTID), 1 << me);
    gic::w8(0xff84_1400 + u64::from(INTID), 0xa0);
    gic::enable(INTID);
    w32(MAIL0_CNF, 1);
    put(&[4 * 7, 0, 0x10002, 4, 0, 0, 0]);
    w32(MAIL1_WRT, BUS | BUF as u32 | 8);
    let got = gic::sleep_until(1000, || gic::get(me, gic::S_MBOX_IRQS) > 0);
    let irqs = gic::get(me, gic::S_MBOX_IRQS);
    let w = gic::get(me, gic::S_MBOX_WORD) as u32;
    let empty = r32(MAIL0_STA) & EMPTY != 0;
    w32(MAIL0_CNF, 0);
    gic::disable(INTID);
    t.check(
        "mbox-irq",
        got && irqs == 1 && w == BUS | BUF as u32 | 8 && word(1) == OK && empty,
        format_args!(
            "irq {got} ({irqs}x), word {w:#x}, code {:#x}, empty {empty}",
            word(1)
        ),
    );
}

/// Leaves state behind for a restart to clear: the data interrupt enabled
/// and an answer waiting unread.
pub fn leave_state() {
    put(&[8 * 4, 0, 0x0000_0001, 4, 0, 0, 0, 0]); // firmware revision
    w32(MAIL0_CNF, 1);
    w32(MAIL1_WRT, BUS | BUF as u32 | 8);
}

/// Whether the mailbox is as at power-on: nothing waiting, CNF 0.
pub fn is_reset() -> (bool, u32, u32) {
    let (sta, cnf) = (r32(MAIL0_STA), r32(MAIL0_CNF));
    (sta & EMPTY != 0 && cnf == 0, sta, cnf)
}
