use super::*;
use std::sync::{Arc, Mutex};
use std::vec;
use std::vec::Vec;

struct Rig {
    u: Pl011,
    out: Arc<Mutex<Vec<u8>>>,
    line: Arc<Mutex<Vec<bool>>>,
}

fn rig() -> Rig {
    let out = Arc::new(Mutex::new(Vec::new()));
    let line = Arc::new(Mutex::new(Vec::new()));
    let (o, l) = (out.clone(), line.clone());
    Rig {
        u: Pl011::new(
            Box::new(move |b| o.lock().unwrap().push(b)),
            Box::new(move |v| l.lock().unwrap().push(v)),
        ),
        out,
        line,
    }
}

fn rd(u: &mut Pl011, off: u64) -> u32 {
    u.read(off, 4).unwrap() as u32
}

#[test]
fn polled_output_like_earlycon() {
    let mut r = rig();
    // As the firmware leaves it: enabled, TX FIFO empty, nothing received.
    let f = rd(&mut r.u, 0x18);
    assert_eq!(f & (fr::TXFE | fr::RXFE | fr::TXFF), fr::TXFE | fr::RXFE);
    for b in b"hi\n" {
        assert_eq!(rd(&mut r.u, 0x18) & fr::TXFF, 0);
        r.u.write(0x000, 4, u64::from(*b)).unwrap();
    }
    assert_eq!(*r.out.lock().unwrap(), b"hi\n");
    assert!(r.line.lock().unwrap().is_empty(), "interrupts masked");
    // Disabled transmitter: bytes go nowhere.
    r.u.write(0x030, 4, u64::from(cr::UARTEN | cr::RXE))
        .unwrap();
    r.u.write(0x000, 4, u64::from(b'x')).unwrap();
    assert_eq!(r.out.lock().unwrap().len(), 3);
}

#[test]
fn registers_keep_what_linux_writes() {
    let mut r = rig();
    for (off, v, want) in [
        (0x024u64, 0x1_0001u32, 1u32),
        (0x028, 0xff, 0x3f),
        (0x02c, 0x170, 0x70),
        (0x030, 0xffff_ffff, 0xff87),
        (0x034, 0xff, 0x3f),
        (0x038, 0xffff, 0x7ff),
        (0x048, 0xff, 7),
        (0x020, 0x1ff, 0xff),
    ] {
        r.u.write(off, 4, u64::from(v)).unwrap();
        assert_eq!(rd(&mut r.u, off), want, "offset {off:#x}");
    }
    assert_eq!(rd(&mut r.u, 0x004), 0, "no line errors");
    assert_eq!(rd(&mut r.u, 0x100), 0, "reserved reads as zero");
    r.u.write(0x100, 4, 5).unwrap();
}

#[test]
fn primecell_ids_match_linux_amba() {
    let mut r = rig();
    let ids: Vec<u32> = (0..8).map(|i| rd(&mut r.u, 0xfe0 + 4 * i)).collect();
    let periph = ids[0] | ids[1] << 8 | ids[2] << 16 | ids[3] << 24;
    let cell = ids[4] | ids[5] << 8 | ids[6] << 16 | ids[7] << 24;
    // amba-pl011 matches id 0x00041011 under mask 0x000fffff.
    assert_eq!(periph & 0x000f_ffff, 0x0004_1011);
    assert_eq!(cell, 0xb105_f00d);
    let low: Vec<u32> = (0..8).map(|i| rd(&mut r.u, 0x1e0 + 4 * i)).collect();
    assert_eq!(
        low, ids,
        "also at the end of the 0x200 window the tree gives"
    );
}

#[test]
fn receive_interrupt_trigger_levels_and_timeout() {
    let mut r = rig();
    r.u.write(0x038, 4, u64::from(int::RX | int::RT)).unwrap();
    // Default IFLS 0x12: RX at half full (8 of 16).
    assert!(r.u.receive(b'a'));
    assert_eq!(
        rd(&mut r.u, 0x03c) & (int::RX | int::RT),
        int::RT,
        "below trigger: timeout"
    );
    assert_eq!(*r.line.lock().unwrap(), vec![true]);
    for b in b"bcdefgh" {
        r.u.receive(*b);
    }
    assert_eq!(rd(&mut r.u, 0x040) & int::RX, int::RX);
    let mut got = Vec::new();
    while rd(&mut r.u, 0x18) & fr::RXFE == 0 {
        got.push(rd(&mut r.u, 0x000) as u8);
    }
    assert_eq!(got, b"abcdefgh");
    assert_eq!(rd(&mut r.u, 0x03c) & (int::RX | int::RT), 0);
    assert_eq!(*r.line.lock().unwrap(), vec![true, false]);
    // 1/8 full: 2 bytes.
    r.u.write(0x034, 4, 0).unwrap();
    r.u.receive(1);
    r.u.receive(2);
    assert_eq!(rd(&mut r.u, 0x040) & int::RX, int::RX);
}

#[test]
fn a_full_fifo_holds_input_back_then_overruns() {
    let mut r = rig();
    for i in 0..FIFO as u8 {
        assert!(r.u.receive(i));
    }
    assert_eq!(rd(&mut r.u, 0x18) & fr::RXFF, fr::RXFF);
    // A paste longer than the FIFO: held back, nothing lost, in order.
    for i in 0..40u8 {
        assert!(r.u.receive(100 + i));
    }
    let mut got = Vec::new();
    while rd(&mut r.u, 0x18) & fr::RXFE == 0 {
        got.push(rd(&mut r.u, 0x000) as u8);
    }
    let want: Vec<u8> = (0..FIFO as u8).chain(100..140).collect();
    assert_eq!(got, want);
    assert_eq!(r.u.overruns, 0);
    // Past FIFO + backlog: overrun, counted, OE raised.
    for i in 0..(FIFO + BACKLOG) {
        assert!(r.u.receive(i as u8));
    }
    assert!(!r.u.can_receive());
    assert!(!r.u.receive(99));
    assert_eq!(r.u.overruns, 1);
    assert_ne!(rd(&mut r.u, 0x03c) & int::OE, 0);
    r.u.write(0x044, 4, u64::from(int::OE)).unwrap();
    assert_eq!(rd(&mut r.u, 0x03c) & int::OE, 0);
}

#[test]
fn fifo_off_holds_one_and_a_disabled_receiver_refuses() {
    let mut r = rig();
    // Bytes queued, then FIFOs off: one in the holding register, none lost.
    r.u.receive(5);
    r.u.receive(6);
    r.u.write(0x02c, 4, 0x60).unwrap();
    assert_eq!(rd(&mut r.u, 0x000), 5);
    assert_eq!(rd(&mut r.u, 0x000), 6);
    // FIFOs off: one byte deep, the rest waits.
    assert!(r.u.receive(7));
    assert!(r.u.receive(8));
    assert_eq!(rd(&mut r.u, 0x18) & fr::RXFF, fr::RXFF);
    assert_eq!(rd(&mut r.u, 0x03c) & int::RX, int::RX, "trigger is 1 byte");
    assert_eq!(rd(&mut r.u, 0x000), 7);
    assert_eq!(rd(&mut r.u, 0x000), 8);
    assert_eq!(rd(&mut r.u, 0x18) & fr::RXFE, fr::RXFE);
    // Receiver disabled: input is refused without an overrun.
    r.u.write(0x030, 4, u64::from(cr::UARTEN | cr::TXE))
        .unwrap();
    assert!(!r.u.can_receive() && !r.u.receive(1));
    assert_eq!(r.u.overruns, 0);
}

#[test]
fn transmit_interrupt_like_linux_start_tx() {
    let mut r = rig();
    // Linux writes what fits, then unmasks TX and waits for the interrupt.
    r.u.write(0x000, 4, u64::from(b'$')).unwrap();
    assert_eq!(
        rd(&mut r.u, 0x03c) & int::TX,
        int::TX,
        "written byte gone: TX raw"
    );
    assert!(r.line.lock().unwrap().is_empty());
    r.u.write(0x038, 4, u64::from(int::TX)).unwrap();
    assert_eq!(*r.line.lock().unwrap(), vec![true]);
    // The handler has nothing more to send: masks TX (line drops).
    r.u.write(0x038, 4, 0).unwrap();
    assert_eq!(*r.line.lock().unwrap(), vec![true, false]);
    // ICR clears it.
    r.u.write(0x044, 4, u64::from(int::TX)).unwrap();
    assert_eq!(rd(&mut r.u, 0x03c) & int::TX, 0);
}

#[test]
fn a_full_console_shows_as_txff_and_its_return_as_the_tx_interrupt() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let mut r = rig();
    let room = Arc::new(AtomicBool::new(true));
    let r2 = room.clone();
    let (o, l, full) = (r.out.clone(), r.line.clone(), room.clone());
    r.u = Pl011::new(
        Box::new(move |b| {
            let mut o = o.lock().unwrap();
            o.push(b);
            // The console fills up with the tenth byte.
            if o.len() == 10 {
                full.store(false, Ordering::Relaxed);
            }
        }),
        Box::new(move |v| l.lock().unwrap().push(v)),
    )
    .with_room(Box::new(move || r2.load(Ordering::Relaxed)));
    // Linux's pl011_tx_chars: write while TXFF is clear, then unmask TX.
    r.u.write(0x038, 4, u64::from(int::TX)).unwrap();
    r.u.write(0x044, 4, u64::from(int::TX)).unwrap();
    let mut sent = 0;
    for i in 0..100u8 {
        if rd(&mut r.u, 0x18) & fr::TXFF != 0 {
            break;
        }
        r.u.write(0x000, 4, u64::from(i)).unwrap();
        sent += 1;
    }
    assert_eq!(sent, 10);
    let f = rd(&mut r.u, 0x18);
    assert_eq!(f & (fr::TXFF | fr::TXFE), fr::TXFF);
    // The last byte left no room: no TX interrupt yet.
    assert_eq!(rd(&mut r.u, 0x03c) & int::TX, 0);
    assert!(!r.u.level());
    // The console drained: the interrupt asserts, FR shows room.
    room.store(true, Ordering::Relaxed);
    r.u.tx_room_returned();
    assert!(r.u.level());
    assert_eq!(r.line.lock().unwrap().last(), Some(&true));
    assert_eq!(rd(&mut r.u, 0x18) & (fr::TXFF | fr::TXFE), fr::TXFE);
    assert_eq!(r.out.lock().unwrap().len(), 10);
    // A reset keeps asking the same console.
    r.u.reset();
    room.store(false, Ordering::Relaxed);
    assert_eq!(rd(&mut r.u, 0x18) & fr::TXFF, fr::TXFF);
}

#[test]
fn hostile_accesses() {
    let mut r = rig();
    for w in [1u8, 8] {
        assert_eq!(r.u.read(0x18, w), Err(MmioError::BadWidth));
        assert_eq!(r.u.write(0x0, w, 0), Err(MmioError::BadWidth));
    }
    assert_eq!(r.u.read(0x19, 2), Err(MmioError::BadWidth));
    assert_eq!(r.u.read(0x1a, 2), Ok(0), "upper half reads zero");
    assert_eq!(
        r.u.read(0x18, 2).unwrap() as u32 & fr::TXFE,
        fr::TXFE,
        "16-bit access"
    );
    assert_eq!(r.u.read(0x1000, 4), Err(MmioError::BadOffset));
    assert_eq!(r.u.write(0x2000, 4, 0), Err(MmioError::BadOffset));
    // RIS and MIS are read-only; writes are ignored.
    r.u.write(0x03c, 4, 0x7ff).unwrap();
    assert_eq!(rd(&mut r.u, 0x03c), 0);
}

#[test]
fn reset_forgets_input_registers_and_the_line() {
    let mut r = rig();
    r.u.write(0x038, 4, u64::from(int::RX)).unwrap(); // IMSC: RX
    for b in b"old shell input" {
        r.u.receive(*b);
    }
    assert!(*r.line.lock().unwrap().last().unwrap(), "line high");
    r.u.write(0x02c, 4, 0x60).unwrap(); // LCR_H: FIFOs off
    MmioDevice::reset(&mut r.u);
    assert_eq!(rd(&mut r.u, 0x038), 0, "IMSC back to 0");
    assert_eq!(rd(&mut r.u, 0x02c), 0x70, "LCR_H as the firmware leaves it");
    assert_ne!(rd(&mut r.u, 0x18) & fr::RXFE, 0, "nothing left to read");
    // The line is low again inside the model: the next rise is signalled.
    r.line.lock().unwrap().clear();
    r.u.write(0x038, 4, u64::from(int::RX)).unwrap();
    for b in b"12345678" {
        r.u.receive(*b); // to the RX trigger level
    }
    assert_eq!(*r.line.lock().unwrap(), vec![true]);
    // Output still goes where it went.
    r.u.write(0x000, 4, u64::from(b'!')).unwrap();
    assert_eq!(r.out.lock().unwrap().last(), Some(&b'!'));
}
