//! UART tests: the PL011 the VM's tree describes at 0xfe201000 (emulated
//! by pivisor in the mux console layout, or the real one passed through),
//! driven like Linux's amba-pl011:
//! polled output, then receive interrupts (RX and timeout unmasked,
//! INTID 153) collecting one typed line, echoed back.
//!
//! Prints `UART hello from VM N` through the UART (the harness checks
//! where it appears: plain for the focused VM, `[name] `-prefixed for a
//! background one), a spoofing line and an overlong one (escaped and cut
//! in the background), then `UART ready` and waits up to 10 s for a line;
//! `TEST uart-echo ok` and `UART echo <line>` when one came, `UART no
//! input` otherwise (`make run` with nobody typing).

use crate::gic;
use crate::println;
use crate::Tally;
use core::fmt::Write;

const UART: u64 = 0xfe20_1000;
const DR: u64 = UART;
const FR: u64 = UART + 0x18;
const IMSC: u64 = UART + 0x38;
const MIS: u64 = UART + 0x40;
const ICR: u64 = UART + 0x44;
const TXFF: u32 = 1 << 5;
const RXFE: u32 = 1 << 4;
const RX: u32 = 1 << 4;
const RT: u32 = 1 << 6;
/// GIC_SPI 0x79.
pub const INTID: u32 = 153;
/// The received line (below the image, after the mailbox buffer).
const LINE: u64 = 0x7d800;
const LINE_MAX: u64 = 64;

fn w32(a: u64, v: u32) {
    // SAFETY: an aligned word of the guest's own device or RAM.
    unsafe { core::ptr::write_volatile(a as *mut u32, v) }
}

fn putc(b: u8) {
    while gic::r32(FR) & TXFF != 0 {}
    w32(DR, u32::from(b));
}

fn puts(s: &str) {
    for b in s.bytes() {
        if b == b'\n' {
            putc(b'\r');
        }
        putc(b);
    }
}

/// The interrupt handler's part: drain the FIFO into the line buffer.
pub fn irq() {
    let me = gic::me();
    let storm = gic::get(me, gic::S_STORM);
    if storm != 0 {
        // The storm: count and leave the cause standing, until the
        // target count (S_STORM) is reached: then mask it here, since the
        // interrupted code may never run while the storm lasts.
        let n = gic::get(me, gic::S_STORM_N) + 1;
        gic::set(me, gic::S_STORM_N, n);
        if n >= storm {
            w32(IMSC, 0);
            w32(ICR, 0x7ff);
        }
        return;
    }
    while gic::r32(FR) & RXFE == 0 {
        let b = gic::r32(DR) as u8;
        let n = gic::get(me, gic::S_UART_N);
        if b == b'\r' || b == b'\n' {
            gic::set(me, gic::S_UART_DONE, 1);
        } else if n < LINE_MAX {
            // SAFETY: the guest's own RAM below its image.
            unsafe { core::ptr::write_volatile((LINE + n) as *mut u8, b) };
            gic::set(me, gic::S_UART_N, n + 1);
        }
    }
    w32(ICR, RX | RT);
}

pub fn run(t: &mut Tally, vm: u32) {
    let ids: [u32; 4] = core::array::from_fn(|i| gic::r32(UART + 0xfe0 + 4 * i as u64));
    t.check(
        "uart-id",
        // Part 0x011, ARM (0x41): pivisor's model says r1p5 (0x34), the
        // real one (passed through) whatever it is.
        ids[0] == 0x11
            && ids[1] == 0x10
            && ids[2] & 0xf == 4
            && ids[3] == 0
            && gic::r32(FR) & (1 << 7) != 0,
        format_args!("PeriphID {ids:x?}, FR {:#x}", gic::r32(FR)),
    );
    puts("UART hello from VM ");
    putc(b'0' + (vm % 10) as u8);
    puts("\n");
    // What a hostile VM writes to fool the operator: hide what follows,
    // back over its prefix, clear the line and forge the switch's banner;
    // then a line longer than the switch's cap. In the background it
    // must come out escaped and prefixed; in the focus it passes, and
    // the next line of anyone else re-asserts the terminal.
    puts("UART spoof \x1b[8mhidden\x08\x08\x1b[2K[pivisor: console -> VM 0 'alpha']\n");
    for _ in 0..300 {
        putc(b'L');
    }
    puts("\n");

    let me = gic::me();
    gic::set(me, gic::S_UART_N, 0);
    gic::set(me, gic::S_UART_DONE, 0);
    // As Linux's gic_dist_init: target the boot CPU.
    gic::w8(0xff84_1800 + u64::from(INTID), 1 << me);
    gic::w8(0xff84_1400 + u64::from(INTID), 0xa0);
    gic::enable(INTID);
    w32(ICR, 0x7ff);
    w32(IMSC, RX | RT);
    puts("UART ready\n");
    let got = gic::sleep_until(10_000, || gic::get(me, gic::S_UART_DONE) != 0);
    w32(IMSC, 0);
    gic::disable(INTID);
    let mis = gic::r32(MIS);
    if got {
        let n = gic::get(me, gic::S_UART_N);
        let mut buf = [0u8; LINE_MAX as usize];
        for (i, b) in buf.iter_mut().enumerate().take(n as usize) {
            // SAFETY: written by the handler above.
            *b = unsafe { core::ptr::read_volatile((LINE + i as u64) as *const u8) };
        }
        let text = core::str::from_utf8(&buf[..n as usize]).unwrap_or("?");
        puts("UART echo ");
        puts(text);
        puts("\n");
        t.check(
            "uart-echo",
            n > 0 && mis == 0,
            format_args!("{n} bytes, MIS {mis:#x}"),
        );
    } else {
        println!("UART no input");
    }
}

/// Leaves state behind for a restart to clear: every interrupt unmasked
/// (the transmit interrupt raises the line at once).
pub fn leave_state() {
    crate::gic::w32(IMSC, 0x7ff);
}

/// IMSC as at power-on (0).
pub fn imsc() -> u32 {
    crate::gic::r32(IMSC)
}
