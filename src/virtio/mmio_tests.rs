use super::*;
use crate::virtio::testram::{Driver, Ram, Shared};
use std::sync::{Arc, Mutex};
use std::vec;
use std::vec::Vec;

const BASE: u64 = 0x4000_0000;
const RINGS: u64 = BASE + 0x1000;
const DATA: u64 = BASE + 0x8_0000;

/// Returns every chain with its writable length, at most `budget` per
/// serve.
struct Echo {
    budget: usize,
    served: usize,
    activated: Option<u64>,
    resets: usize,
}

impl Device for Echo {
    fn id(&self) -> u32 {
        2
    }
    fn features(&self) -> u64 {
        feature::VERSION_1 | feature::RING_EVENT_IDX | 1 << 9
    }
    fn queues(&self) -> usize {
        1
    }
    fn queue_max(&self) -> u16 {
        16
    }
    fn config(&self, offset: u64, out: &mut [u8]) {
        let cfg = 0x1122_3344_5566_7788u64.to_le_bytes();
        for (i, b) in out.iter_mut().enumerate() {
            *b = cfg.get(offset as usize + i).copied().unwrap_or(0);
        }
    }
    fn activate(&mut self, f: u64) {
        self.activated = Some(f);
    }
    fn serve(
        &mut self,
        _q: usize,
        queue: &mut Queue,
        mem: &mut dyn GuestRam,
    ) -> Result<Served, QueueError> {
        let mut s = Served::default();
        for _ in 0..self.budget {
            let Some(c) = queue.pop(mem)? else {
                return Ok(s);
            };
            queue.push_used(mem, c.head, c.writable_len() as u32)?;
            self.served += 1;
            s.used = true;
        }
        s.more = queue.pending(mem)? > 0;
        Ok(s)
    }
    fn reset(&mut self) {
        self.resets += 1;
    }
}

struct Rig {
    t: Transport<Echo>,
    ram: Arc<Mutex<Ram>>,
    line: Arc<Mutex<Vec<bool>>>,
    problems: Arc<Mutex<Vec<QueueError>>>,
    mores: Arc<Mutex<usize>>,
}

fn rig(budget: usize) -> Rig {
    let ram = Arc::new(Mutex::new(Ram::new(BASE, 1 << 20)));
    let line = Arc::new(Mutex::new(Vec::new()));
    let problems = Arc::new(Mutex::new(Vec::new()));
    let mores = Arc::new(Mutex::new(0));
    let (l, p, m) = (line.clone(), problems.clone(), mores.clone());
    let t = Transport::new(
        Echo {
            budget,
            served: 0,
            activated: None,
            resets: 0,
        },
        Sinks {
            mem: Box::new(Shared(ram.clone())),
            line: Box::new(move |v| l.lock().unwrap().push(v)),
            problem: Box::new(move |e| p.lock().unwrap().push(*e)),
            more: Box::new(move || *m.lock().unwrap() += 1),
        },
    );
    Rig {
        t,
        ram,
        line,
        problems,
        mores,
    }
}

fn rd(t: &mut Transport<Echo>, off: u64) -> u32 {
    t.read(off, 4).unwrap() as u32
}
fn wr(t: &mut Transport<Echo>, off: u64, v: u32) {
    t.write(off, 4, u64::from(v)).unwrap();
}

/// Linux's virtio_mmio probe and virtio_dev_probe, then one queue set up
/// as vm_setup_vq does. Returns the driver side.
fn bring_up(r: &mut Rig, features: u64, size: u16) -> Driver {
    let t = &mut r.t;
    assert_eq!(rd(t, 0x000), MAGIC);
    assert_eq!(rd(t, 0x004), 2);
    assert_eq!(rd(t, 0x008), 2);
    wr(t, 0x070, 0);
    wr(t, 0x070, status::ACKNOWLEDGE);
    wr(t, 0x070, status::ACKNOWLEDGE | status::DRIVER);
    wr(t, 0x014, 1);
    let hi = rd(t, 0x010);
    wr(t, 0x014, 0);
    let lo = rd(t, 0x010);
    assert_eq!(u64::from(hi) << 32 | u64::from(lo), t.device().features());
    wr(t, 0x024, 1);
    wr(t, 0x020, (features >> 32) as u32);
    wr(t, 0x024, 0);
    wr(t, 0x020, features as u32);
    wr(
        t,
        0x070,
        status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK,
    );
    let d = Driver::new(size, RINGS);
    wr(t, 0x030, 0);
    assert_eq!(rd(t, 0x044), 0);
    assert_eq!(rd(t, 0x034), 16);
    wr(t, 0x038, u32::from(size));
    wr(t, 0x080, d.desc as u32);
    wr(t, 0x084, (d.desc >> 32) as u32);
    wr(t, 0x090, d.avail as u32);
    wr(t, 0x094, (d.avail >> 32) as u32);
    wr(t, 0x0a0, d.used as u32);
    wr(t, 0x0a4, (d.used >> 32) as u32);
    wr(t, 0x044, 1);
    wr(
        t,
        0x070,
        status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK,
    );
    d
}

#[test]
fn linux_brings_it_up_and_a_request_round_trips_with_an_interrupt() {
    let mut r = rig(16);
    let f = feature::VERSION_1 | 1 << 9;
    let mut d = bring_up(&mut r, f, 8);
    assert_eq!(rd(&mut r.t, 0x044), 1, "queue ready");
    assert_eq!(r.t.status() & status::FEATURES_OK, status::FEATURES_OK);
    assert_eq!(r.t.device().activated, Some(f));
    {
        let mut ram = r.ram.lock().unwrap();
        d.add(&mut ram, &[(DATA, 16, false), (DATA + 0x100, 512, true)]);
    }
    wr(&mut r.t, 0x050, 0);
    assert_eq!(r.t.device().served, 1);
    assert_eq!(rd(&mut r.t, 0x060), isr::USED);
    assert_eq!(*r.line.lock().unwrap(), vec![true]);
    wr(&mut r.t, 0x064, isr::USED);
    assert_eq!(*r.line.lock().unwrap(), vec![true, false]);
    let used = d.take_used(&mut r.ram.lock().unwrap());
    assert_eq!(used, vec![(0, 512)]);
    // Configuration space: any natural width.
    assert_eq!(r.t.read(0x100, 8), Ok(0x1122_3344_5566_7788));
    assert_eq!(r.t.read(0x104, 4), Ok(0x1122_3344));
    assert_eq!(r.t.read(0x101, 1), Ok(0x77));
    assert_eq!(r.t.read(0x200, 4), Ok(0), "past the configuration");
    assert_eq!(r.t.read(0x102, 4), Err(MmioError::BadWidth));
}

#[test]
fn features_outside_the_offer_or_without_version_1_do_not_stick() {
    for bad in [
        1u64 << 9,
        feature::VERSION_1 | feature::ACCESS_PLATFORM,
        feature::VERSION_1 | 1 << 40,
    ] {
        let mut r = rig(16);
        let t = &mut r.t;
        wr(t, 0x070, status::ACKNOWLEDGE | status::DRIVER);
        wr(t, 0x024, 1);
        wr(t, 0x020, (bad >> 32) as u32);
        wr(t, 0x024, 0);
        wr(t, 0x020, bad as u32);
        wr(
            t,
            0x070,
            status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK,
        );
        assert_eq!(rd(t, 0x070) & status::FEATURES_OK, 0, "{bad:#x}");
        // DRIVER_OK without FEATURES_OK does not stick either, and no
        // queue can be made ready.
        wr(
            t,
            0x070,
            status::ACKNOWLEDGE | status::DRIVER | status::DRIVER_OK,
        );
        assert_eq!(rd(t, 0x070) & status::DRIVER_OK, 0);
        assert_eq!(t.device().activated, None);
    }
    // The device never offers ACCESS_PLATFORM.
    let mut r = rig(1);
    wr(&mut r.t, 0x014, 1);
    assert_eq!(
        u64::from(rd(&mut r.t, 0x010)) << 32 & feature::ACCESS_PLATFORM,
        0
    );
}

#[test]
fn a_bounded_serve_asks_to_be_polled_and_finishes_later() {
    let mut r = rig(2);
    let mut d = bring_up(&mut r, feature::VERSION_1, 8);
    {
        let mut ram = r.ram.lock().unwrap();
        for k in 0..5 {
            d.add(&mut ram, &[(DATA + k * 0x100, 8, true)]);
        }
    }
    wr(&mut r.t, 0x050, 0);
    assert_eq!(r.t.device().served, 2);
    assert!(r.t.has_more());
    assert_eq!(*r.mores.lock().unwrap(), 1);
    r.t.poll();
    r.t.poll();
    assert_eq!(r.t.device().served, 5);
    assert!(!r.t.has_more());
    r.t.poll();
    assert_eq!(r.t.device().served, 5);
}

#[test]
fn event_idx_is_negotiated_into_the_queue() {
    let mut r = rig(16);
    let mut d = bring_up(&mut r, feature::VERSION_1 | feature::RING_EVENT_IDX, 8);
    let mut ram = r.ram.lock().unwrap();
    // used_event far ahead: no interrupt for this one.
    d.set_used_event(&mut ram, 5);
    d.add(&mut ram, &[(DATA, 8, true)]);
    drop(ram);
    wr(&mut r.t, 0x050, 0);
    assert_eq!(r.t.device().served, 1);
    assert_eq!(rd(&mut r.t, 0x060), 0);
}

#[test]
fn a_malformed_queue_needs_a_reset_and_is_not_served_until_then() {
    let mut r = rig(16);
    let d = bring_up(&mut r, feature::VERSION_1, 8);
    {
        let mut ram = r.ram.lock().unwrap();
        // A loop of next pointers.
        d.set_desc(&mut ram, 0, DATA, 8, 1, 1);
        d.set_desc(&mut ram, 1, DATA, 8, 1, 0);
        ram.w16(d.avail + 4, 0);
        ram.w16(d.avail + 2, 1);
    }
    wr(&mut r.t, 0x050, 0);
    assert_eq!(
        rd(&mut r.t, 0x070) & status::DEVICE_NEEDS_RESET,
        status::DEVICE_NEEDS_RESET
    );
    assert_eq!(rd(&mut r.t, 0x060), isr::CONFIG);
    assert_eq!(*r.problems.lock().unwrap(), vec![QueueError::ChainTooLong]);
    // Notifications on the broken device do nothing (no second problem).
    for _ in 0..100 {
        wr(&mut r.t, 0x050, 0);
    }
    assert_eq!(r.problems.lock().unwrap().len(), 1);
    // The driver cannot clear NEEDS_RESET by writing the status.
    wr(&mut r.t, 0x070, 0x0f);
    assert_ne!(rd(&mut r.t, 0x070) & status::DEVICE_NEEDS_RESET, 0);
    // A reset clears everything, the line included.
    let resets = r.t.device().resets;
    wr(&mut r.t, 0x070, 0);
    assert_eq!((rd(&mut r.t, 0x070), rd(&mut r.t, 0x060)), (0, 0));
    assert_eq!(r.line.lock().unwrap().last(), Some(&false));
    assert_eq!(rd(&mut r.t, 0x044), 0, "queues forgotten");
    assert_eq!(r.t.device().resets, resets + 1);
}

#[test]
fn rings_outside_ram_are_refused_when_made_ready() {
    let mut r = rig(16);
    let t = &mut r.t;
    wr(t, 0x070, status::ACKNOWLEDGE | status::DRIVER);
    wr(t, 0x020, 0);
    wr(t, 0x024, 1);
    wr(t, 0x020, 1);
    wr(
        t,
        0x070,
        status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK,
    );
    wr(t, 0x038, 8);
    wr(t, 0x080, 0x1000); // the hypervisor's or another VM's memory
    wr(t, 0x090, RINGS as u32);
    wr(t, 0x0a0, (RINGS + 0x1000) as u32);
    wr(t, 0x044, 1);
    assert_eq!(rd(t, 0x044), 0);
    assert_ne!(rd(t, 0x070) & status::DEVICE_NEEDS_RESET, 0);
    assert_eq!(
        *r.problems.lock().unwrap(),
        vec![QueueError::RingNotRam("descriptor", 0x1000)]
    );
}

#[test]
fn hostile_register_accesses() {
    let mut r = rig(16);
    let t = &mut r.t;
    for w in [1u8, 2, 8] {
        assert_eq!(t.read(0x000, w), Err(MmioError::BadWidth));
        assert_eq!(t.write(0x070, w, 0), Err(MmioError::BadWidth));
    }
    assert_eq!(t.read(0x002, 4), Err(MmioError::BadWidth));
    assert_eq!(t.write(0x000, 4, 1), Err(MmioError::BadDirection));
    assert_eq!(t.read(0x050, 4), Err(MmioError::BadDirection));
    // Queues that do not exist: nothing, and nothing breaks.
    wr(t, 0x030, 7);
    assert_eq!(rd(t, 0x034), 0);
    wr(t, 0x038, 8);
    wr(t, 0x044, 1);
    assert_eq!(rd(t, 0x044), 0);
    for q in [1u32, 31, 32, u32::MAX] {
        wr(t, 0x050, q);
    }
    // Notifying before DRIVER_OK serves nothing.
    wr(t, 0x030, 0);
    wr(t, 0x050, 0);
    assert_eq!(t.device().served, 0);
    // Config writes are ignored.
    assert_eq!(t.write(0x100, 4, 0xffff_ffff), Ok(()));
    assert_eq!(t.read(0x100, 4), Ok(0x5566_7788));
}

#[test]
fn a_ready_queues_rings_cannot_be_moved() {
    let mut r = rig(16);
    let d = bring_up(&mut r, feature::VERSION_1, 8);
    wr(&mut r.t, 0x080, 0x1000);
    wr(&mut r.t, 0x038, 2);
    assert_eq!(r.t.queues[0].desc, d.desc);
    assert_eq!(r.t.queues[0].size, 8);
}

#[test]
fn a_vm_restart_resets_the_transport() {
    let mut r = rig(16);
    bring_up(&mut r, feature::VERSION_1, 8);
    MmioDevice::reset(&mut r.t);
    assert_eq!(rd(&mut r.t, 0x070), 0);
    assert_eq!(rd(&mut r.t, 0x044), 0);
}
