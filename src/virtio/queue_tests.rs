use super::*;
use crate::virtio::testram::{Driver, Ram};
use std::vec;

const BASE: u64 = 0x4000_0000;
const RAM: usize = 1 << 20;
/// Where the test puts its rings, and its data.
const RINGS: u64 = BASE + 0x1000;
const DATA: u64 = BASE + 0x8_0000;

fn setup(size: u16, event_idx: bool) -> (Ram, Driver, Queue) {
    let mut ram = Ram::new(BASE, RAM);
    let d = Driver::new(size, RINGS);
    let mut q = Queue {
        size,
        desc: d.desc,
        avail: d.avail,
        used: d.used,
        event_idx,
        ..Default::default()
    };
    q.activate(256, &ram).unwrap();
    ram.fences = 0;
    (ram, d, q)
}

#[test]
fn chains_come_out_in_order_and_go_back_through_the_used_ring() {
    let (mut ram, mut d, mut q) = setup(8, false);
    let a = d.add(
        &mut ram,
        &[
            (DATA, 16, false),
            (DATA + 0x100, 512, true),
            (DATA + 0x400, 1, true),
        ],
    );
    let b = d.add(&mut ram, &[(DATA + 0x1000, 4096, false)]);
    assert_eq!(q.pending(&mut ram), Ok(2));
    let c = q.pop(&mut ram).unwrap().unwrap();
    assert_eq!(c.head, a);
    assert_eq!(
        c.bufs,
        vec![
            Buf {
                addr: DATA,
                len: 16,
                writable: false
            },
            Buf {
                addr: DATA + 0x100,
                len: 512,
                writable: true
            },
            Buf {
                addr: DATA + 0x400,
                len: 1,
                writable: true
            },
        ]
    );
    assert_eq!(c.writable_len(), 513);
    assert!(ram.fences >= 1, "a fence between the index and the ring");
    let c2 = q.pop(&mut ram).unwrap().unwrap();
    assert_eq!((c2.head, c2.bufs.len()), (b, 1));
    assert_eq!(q.pop(&mut ram), Ok(None));
    q.push_used(&mut ram, c.head, 513).unwrap();
    q.push_used(&mut ram, c2.head, 0).unwrap();
    assert_eq!(d.take_used(&mut ram), vec![(a as u32, 513), (b as u32, 0)]);
    assert!(q.should_interrupt(&mut ram));
    assert!(!q.should_interrupt(&mut ram), "nothing new since");
}

/// A [`Ram`] that counts copies of exactly two bytes: every 16-bit ring
/// field must go through `read_u16`/`write_u16` (one access on the
/// target), never a copy the target may split into bytes.
struct WholeFields {
    ram: Ram,
    split: Vec<u64>,
}

impl GuestRam for WholeFields {
    fn contains(&self, ipa: u64, len: u64) -> bool {
        self.ram.contains(ipa, len)
    }
    fn read(&mut self, ipa: u64, out: &mut [u8]) -> bool {
        if out.len() == 2 {
            self.split.push(ipa);
        }
        self.ram.read(ipa, out)
    }
    fn write(&mut self, ipa: u64, data: &[u8]) -> bool {
        if data.len() == 2 {
            self.split.push(ipa);
        }
        self.ram.write(ipa, data)
    }
    fn read_u16(&mut self, ipa: u64) -> Option<u16> {
        let mut b = [0u8; 2];
        self.ram.read(ipa, &mut b).then(|| u16::from_le_bytes(b))
    }
    fn write_u16(&mut self, ipa: u64, v: u16) -> bool {
        self.ram.write(ipa, &v.to_le_bytes())
    }
}

/// The rare receive-ring corruption under the hostile flood: the used
/// index written as two bytes let the driver read it half updated
/// (0x08ff -> 0x0900 seen as 0x0800) and take stale used elements
/// ("id 219 is not a head!"). Every index, ring entry and event field is
/// one 16-bit access.
#[test]
fn ring_fields_are_read_and_written_whole() {
    for event_idx in [false, true] {
        let (ram, mut d, mut q) = setup(8, event_idx);
        let mut m = WholeFields {
            ram,
            split: Vec::new(),
        };
        for k in 0..20u64 {
            let h = d.add(&mut m.ram, &[(DATA + k * 64, 64, true)]);
            assert_eq!(q.pending(&mut m), Ok(1));
            let c = q.pop(&mut m).unwrap().unwrap();
            assert_eq!(c.head, h);
            q.stage_used(&mut m, c.head, 64).unwrap();
            q.publish_used(&mut m).unwrap();
            q.should_interrupt(&mut m);
            q.ask_notify(&mut m);
        }
        assert_eq!(
            m.split,
            Vec::<u64>::new(),
            "16-bit ring fields copied bytewise"
        );
    }
}

#[test]
fn indices_wrap_around_the_ring_and_the_u16() {
    let (mut ram, mut d, mut q) = setup(4, false);
    for k in 0..70_000u32 {
        let h = d.add(&mut ram, &[(DATA + u64::from(k % 64) * 8, 8, true)]);
        let c = q.pop(&mut ram).unwrap().expect("a chain");
        assert_eq!(c.head, h);
        q.push_used(&mut ram, c.head, 8).unwrap();
        assert_eq!(d.take_used(&mut ram), vec![(h as u32, 8)]);
    }
}

#[test]
fn the_driver_can_ask_for_no_interrupts() {
    let (mut ram, mut d, mut q) = setup(8, false);
    ram.w16(d.avail, AVAIL_F_NO_INTERRUPT);
    d.add(&mut ram, &[(DATA, 8, true)]);
    let c = q.pop(&mut ram).unwrap().unwrap();
    q.push_used(&mut ram, c.head, 8).unwrap();
    assert!(!q.should_interrupt(&mut ram));
    ram.w16(d.avail, 0);
    d.add(&mut ram, &[(DATA, 8, true)]);
    let c = q.pop(&mut ram).unwrap().unwrap();
    q.push_used(&mut ram, c.head, 8).unwrap();
    assert!(q.should_interrupt(&mut ram));
}

#[test]
fn event_idx_interrupts_only_past_used_event_and_asks_for_notifies() {
    let (mut ram, mut d, mut q) = setup(8, true);
    // The driver wants an interrupt once the used index passes 2.
    d.set_used_event(&mut ram, 2);
    for k in 0..4 {
        d.add(&mut ram, &[(DATA, 8, true)]);
        let c = q.pop(&mut ram).unwrap().unwrap();
        q.push_used(&mut ram, c.head, 8).unwrap();
        // Used index 1, 2: no; 3 (passes used_event 2): yes; 4: no.
        assert_eq!(q.should_interrupt(&mut ram), k == 2, "used index {}", k + 1);
    }
    // Batched: one interrupt for several, if used_event is among them.
    d.set_used_event(&mut ram, 5);
    for _ in 0..3 {
        d.add(&mut ram, &[(DATA, 8, true)]);
        let c = q.pop(&mut ram).unwrap().unwrap();
        q.push_used(&mut ram, c.head, 8).unwrap();
    }
    assert!(q.should_interrupt(&mut ram));
    // avail_event tells the driver where the device is.
    q.ask_notify(&mut ram);
    assert_eq!(d.avail_event(&mut ram), 7);
}

#[test]
fn indirect_tables_are_followed_once() {
    let (mut ram, mut d, mut q) = setup(8, false);
    let table = DATA + 0x2000;
    // A three-entry table: header, data, status.
    let t = Driver {
        desc: table,
        ..Driver::new(3, table)
    };
    t.set_desc(&mut ram, 0, DATA, 16, flags::NEXT, 1);
    t.set_desc(
        &mut ram,
        1,
        DATA + 0x100,
        4096,
        flags::NEXT | flags::WRITE,
        2,
    );
    t.set_desc(&mut ram, 2, DATA + 0x40, 1, flags::WRITE, 0);
    d.set_desc(&mut ram, 0, table, 48, flags::INDIRECT, 0);
    d.publish(&mut ram, 0);
    let c = q.pop(&mut ram).unwrap().unwrap();
    assert_eq!(c.bufs.len(), 3);
    assert_eq!(c.writable_len(), 4097);
}

/// Every way a hostile driver can break a queue: an error, never a hang,
/// a panic or an access outside the VM's RAM.
#[test]
fn hostile_queues_are_errors() {
    let end = BASE + RAM as u64;
    type Build = fn(&mut Ram, &mut Driver);
    let cases: [(&str, Build, QueueError); 11] = [
        (
            "available index far ahead",
            |ram, d| ram.w16(d.avail + 2, 9),
            QueueError::AvailIndex { idx: 9, next: 0 },
        ),
        (
            "head past the table",
            |ram, d| {
                ram.w16(d.avail + 4, 8);
                ram.w16(d.avail + 2, 1);
            },
            QueueError::IndexOutOfRange(8),
        ),
        (
            "next past the table",
            |ram, d| {
                d.set_desc(ram, 0, DATA, 8, flags::NEXT, 200);
                d.publish(ram, 0);
            },
            QueueError::IndexOutOfRange(200),
        ),
        (
            "a loop of next pointers",
            |ram, d| {
                d.set_desc(ram, 0, DATA, 8, flags::NEXT, 1);
                d.set_desc(ram, 1, DATA, 8, flags::NEXT, 0);
                d.publish(ram, 0);
            },
            QueueError::ChainTooLong,
        ),
        (
            "a buffer outside RAM",
            |ram, d| {
                d.set_desc(ram, 0, 0x1000, 8, 0, 0);
                d.publish(ram, 0);
            },
            QueueError::BufferNotRam {
                addr: 0x1000,
                len: 8,
            },
        ),
        (
            "a buffer straddling RAM's end",
            |ram, d| {
                d.set_desc(ram, 0, BASE + RAM as u64 - 4, 8, flags::WRITE, 0);
                d.publish(ram, 0);
            },
            QueueError::BufferNotRam {
                addr: BASE + RAM as u64 - 4,
                len: 8,
            },
        ),
        (
            "an address that wraps",
            |ram, d| {
                d.set_desc(ram, 0, u64::MAX - 3, 8, 0, 0);
                d.publish(ram, 0);
            },
            QueueError::BufferNotRam {
                addr: u64::MAX - 3,
                len: 8,
            },
        ),
        (
            "a huge length",
            |ram, d| {
                d.set_desc(ram, 0, DATA, u32::MAX, flags::WRITE, 0);
                d.publish(ram, 0);
            },
            QueueError::BufferNotRam {
                addr: DATA,
                len: u32::MAX,
            },
        ),
        (
            "INDIRECT with NEXT",
            |ram, d| {
                d.set_desc(ram, 0, DATA, 32, flags::INDIRECT | flags::NEXT, 1);
                d.publish(ram, 0);
            },
            QueueError::IndirectWithNext,
        ),
        (
            "a nested indirect table",
            |ram, d| {
                let t = Driver::new(2, DATA + 0x3000);
                t.set_desc(ram, 0, DATA, 32, flags::INDIRECT, 0);
                d.set_desc(ram, 0, DATA + 0x3000, 32, flags::INDIRECT, 0);
                d.publish(ram, 0);
            },
            QueueError::BadIndirect(32),
        ),
        (
            "an indirect table of a bad length",
            |ram, d| {
                d.set_desc(ram, 0, DATA, 24, flags::INDIRECT, 0);
                d.publish(ram, 0);
            },
            QueueError::BadIndirect(24),
        ),
    ];
    for (what, build, want) in cases {
        let (mut ram, mut d, mut q) = setup(8, false);
        build(&mut ram, &mut d);
        assert_eq!(q.pop(&mut ram), Err(want), "{what}");
        let _ = end;
    }
}

#[test]
fn hostile_indirect_tables_are_bounded() {
    let (mut ram, mut d, mut q) = setup(8, false);
    // A loop inside an indirect table.
    let t = Driver::new(4, DATA + 0x4000);
    for i in 0..4 {
        t.set_desc(&mut ram, i, DATA, 8, flags::NEXT, (i + 1) % 4);
    }
    d.set_desc(&mut ram, 0, DATA + 0x4000, 64, flags::INDIRECT, 0);
    d.publish(&mut ram, 0);
    assert_eq!(q.pop(&mut ram), Err(QueueError::ChainTooLong));
    // A table past MAX_INDIRECT entries, and one outside RAM.
    for (addr, len, want) in [
        (
            DATA,
            (MAX_INDIRECT + 1) * 16,
            QueueError::BadIndirect((MAX_INDIRECT + 1) * 16),
        ),
        (
            0x10,
            32,
            QueueError::BufferNotRam {
                addr: 0x10,
                len: 32,
            },
        ),
    ] {
        let (mut ram, mut d, mut q) = setup(8, false);
        d.set_desc(&mut ram, 0, addr, len, flags::INDIRECT, 0);
        d.publish(&mut ram, 0);
        assert_eq!(q.pop(&mut ram), Err(want));
    }
    // Direct buffers then an indirect one: refused (the spec allows the
    // indirect descriptor only alone).
    let (mut ram, mut d, mut q) = setup(8, false);
    d.set_desc(&mut ram, 0, DATA, 8, flags::NEXT, 1);
    d.set_desc(&mut ram, 1, DATA + 0x5000, 16, flags::INDIRECT, 0);
    d.publish(&mut ram, 0);
    assert_eq!(q.pop(&mut ram), Err(QueueError::BadIndirect(16)));
}

#[test]
fn a_chain_adding_up_past_4_gib_is_refused() {
    // Sixteen buffers of 256 MiB each cannot be in 1 MiB of RAM, so use
    // a RAM that claims to hold everything.
    struct Everything;
    impl GuestRam for Everything {
        fn contains(&self, _: u64, _: u64) -> bool {
            true
        }
        fn read(&mut self, ipa: u64, out: &mut [u8]) -> bool {
            // Descriptor i: 3 GiB long, NEXT to i + 1.
            out.fill(0);
            if out.len() == 16 {
                let i = (ipa / 16) as u16;
                out[8..12].copy_from_slice(&0xc000_0000u32.to_le_bytes());
                out[12..14].copy_from_slice(&flags::NEXT.to_le_bytes());
                out[14..16].copy_from_slice(&(i + 1).to_le_bytes());
            } else if ipa == 0x10_0002 {
                out.copy_from_slice(&1u16.to_le_bytes());
            }
            true
        }
        fn write(&mut self, _: u64, _: &[u8]) -> bool {
            true
        }
    }
    let mut q = Queue {
        size: 8,
        desc: 0,
        avail: 0x10_0000,
        used: 0x20_0000,
        ..Default::default()
    };
    q.activate(8, &Everything).unwrap();
    assert_eq!(q.pop(&mut Everything), Err(QueueError::ChainTooBig));
}

#[test]
fn rings_are_checked_when_the_queue_is_made_ready() {
    let ram = Ram::new(BASE, RAM);
    let good = Driver::new(8, RINGS);
    let q = |size: u16, desc: u64, avail: u64, used: u64| Queue {
        size,
        desc,
        avail,
        used,
        ..Default::default()
    };
    for (size, want) in [
        (0u16, QueueError::BadSize(0)),
        (6, QueueError::BadSize(6)),
        (512, QueueError::BadSize(512)),
    ] {
        assert_eq!(
            q(size, good.desc, good.avail, good.used).activate(256, &ram),
            Err(want)
        );
    }
    assert_eq!(
        q(8, good.desc + 8, good.avail, good.used).activate(256, &ram),
        Err(QueueError::Misaligned("descriptor", good.desc + 8))
    );
    assert_eq!(
        q(8, good.desc, good.avail, good.used + 2).activate(256, &ram),
        Err(QueueError::Misaligned("used", good.used + 2))
    );
    assert_eq!(
        q(8, 0x1000, good.avail, good.used).activate(256, &ram),
        Err(QueueError::RingNotRam("descriptor", 0x1000))
    );
    let end = BASE + RAM as u64;
    assert_eq!(
        q(8, good.desc, good.avail, end - 16).activate(256, &ram),
        Err(QueueError::RingNotRam("used", end - 16))
    );
    let mut ok = q(8, good.desc, good.avail, good.used);
    assert_eq!(ok.activate(256, &ram), Ok(()));
    assert!(ok.ready);
    ok.reset();
    assert!(!ok.ready && ok.size == 0);
}

#[test]
fn a_queue_that_is_not_ready_has_nothing() {
    let mut ram = Ram::new(BASE, RAM);
    let mut q = Queue::default();
    assert_eq!(q.pending(&mut ram), Ok(0));
    assert_eq!(q.pop(&mut ram), Ok(None));
}
