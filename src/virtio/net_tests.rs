use super::*;
use crate::devices::bus::MmioDevice;
use crate::net::lan::{Lan, LanPort};
use crate::net::switch::PortSpec;
use crate::net::BROADCAST;
use crate::virtio::mmio::{isr, Sinks, Transport};
use crate::virtio::status;
use crate::virtio::testram::{Driver, Ram, Shared};
use std::sync::Mutex as StdMutex;
use std::vec;
use std::vec::Vec;

const BASE: u64 = 0x4000_0000;
const RX_RINGS: u64 = BASE + 0x1000;
const TX_RINGS: u64 = BASE + 0x4000;
const DATA: u64 = BASE + 0x8_0000;
const SIZE: u16 = 16;

type Dev = Transport<Net<LanPort<Arc<Lan>>>>;

struct Vm {
    t: Dev,
    ram: Arc<StdMutex<Ram>>,
    line: Arc<StdMutex<Vec<bool>>>,
    problems: Arc<StdMutex<Vec<QueueError>>>,
    rx: Driver,
    tx: Driver,
    mac: Mac,
}

fn mac(n: u8) -> Mac {
    [2, 0, 0, 0, 0, n]
}

fn spec(n: u8, lan: u16) -> PortSpec {
    PortSpec {
        mac: mac(n),
        lan,
        bridge: false,
    }
}

fn rd(t: &mut Dev, off: u64) -> u32 {
    t.read(off, 4).unwrap() as u32
}
fn wr(t: &mut Dev, off: u64, v: u32) {
    t.write(off, 4, u64::from(v)).unwrap();
}

const FEATURES: u64 = feature::VERSION_1 | f::MAC | f::STATUS | f::MTU;

/// VM `i` of `lan`, its device set up as Linux's virtio_net probe does
/// (features negotiated, both queues ready, DRIVER_OK).
fn vm(lan: &Arc<Lan>, i: usize, features: u64) -> Vm {
    let ram = Arc::new(StdMutex::new(Ram::new(BASE, 1 << 20)));
    let line = Arc::new(StdMutex::new(Vec::new()));
    let problems = Arc::new(StdMutex::new(Vec::new()));
    let port = lan.port(i).unwrap().clone();
    let p2 = problems.clone();
    port.bind(
        Box::new(Shared(ram.clone())),
        Box::new(move |e| p2.lock().unwrap().push(*e)),
    );
    let mac = port.mac;
    let (l, p) = (line.clone(), problems.clone());
    let mut t = Transport::new(
        Net::new(
            port,
            LanPort {
                lan: lan.clone(),
                index: i,
            },
        ),
        Sinks {
            mem: Box::new(Shared(ram.clone())),
            line: Box::new(move |v| l.lock().unwrap().push(v)),
            problem: Box::new(move |e| p.lock().unwrap().push(*e)),
            more: Box::new(|| {}),
        },
    );
    assert_eq!(rd(&mut t, 0x008), ID);
    wr(&mut t, 0x070, 0);
    wr(&mut t, 0x070, status::ACKNOWLEDGE | status::DRIVER);
    wr(&mut t, 0x024, 1);
    wr(&mut t, 0x020, (features >> 32) as u32);
    wr(&mut t, 0x024, 0);
    wr(&mut t, 0x020, features as u32);
    let s = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
    wr(&mut t, 0x070, s);
    let rx = Driver::new(SIZE, RX_RINGS);
    let tx = Driver::new(SIZE, TX_RINGS);
    for (q, d) in [(0u32, &rx), (1, &tx)] {
        wr(&mut t, 0x030, q);
        wr(&mut t, 0x038, u32::from(SIZE));
        wr(&mut t, 0x080, d.desc as u32);
        wr(&mut t, 0x090, d.avail as u32);
        wr(&mut t, 0x0a0, d.used as u32);
        wr(&mut t, 0x044, 1);
    }
    wr(&mut t, 0x070, s | status::DRIVER_OK);
    assert_eq!(t.status() & status::DRIVER_OK, status::DRIVER_OK);
    Vm {
        t,
        ram,
        line,
        problems,
        rx,
        tx,
        mac,
    }
}

/// A clock that runs a millisecond per reading: storm control never bites.
fn fast_clock() -> u64 {
    static T: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    T.fetch_add(1000, std::sync::atomic::Ordering::Relaxed)
}

/// A clock that never moves: a port floods its burst and no more.
fn frozen_clock() -> u64 {
    0
}

fn lan(specs: Vec<PortSpec>) -> Arc<Lan> {
    Arc::new(Lan::new(specs, fast_clock))
}

/// An Ethernet frame of `len` bytes from `src` to `dst`, the payload a
/// pattern seeded by `seed`.
fn frame(dst: Mac, src: Mac, len: usize, seed: u8) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut x = seed;
    while f.len() < len {
        x = x.wrapping_mul(31).wrapping_add(7);
        f.push(x);
    }
    f.truncate(len);
    f
}

impl Vm {
    /// Posts `n` receive buffers of `len` bytes each.
    fn post_rx(&mut self, n: usize, len: u32) {
        let mut ram = self.ram.lock().unwrap();
        for _ in 0..n {
            // Slot by ring position: no two posted buffers overlap.
            let at = DATA + 0x4_0000 + 0x800 * (u64::from(self.rx.avail_idx) % 16);
            self.rx.add(&mut ram, &[(at, len, true)]);
        }
    }

    /// Queues `frame` for sending with a 12-byte header `hdr`, split into
    /// buffers of at most `piece` bytes (slot `slot` of the data area).
    fn queue_tx(&mut self, hdr: [u8; HDR], frame: &[u8], piece: usize, slot: u64) {
        let mut bytes = hdr.to_vec();
        bytes.extend_from_slice(frame);
        let at = DATA + 0x1000 * (slot % 32);
        let mut ram = self.ram.lock().unwrap();
        assert!(ram.write(at, &bytes));
        let bufs: Vec<(u64, u32, bool)> = (0..bytes.len())
            .step_by(piece)
            .map(|o| (at + o as u64, piece.min(bytes.len() - o) as u32, false))
            .collect();
        self.tx.add(&mut ram, &bufs);
    }

    fn send(&mut self, frame: &[u8]) {
        self.queue_tx([0; HDR], frame, 4096, u64::from(self.tx.avail_idx));
        wr(&mut self.t, 0x050, 1);
    }

    /// Frames received since last asked: (header, frame).
    fn received(&mut self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut ram = self.ram.lock().unwrap();
        let used = self.rx.take_used(&mut ram);
        used.into_iter()
            .map(|(head, len)| {
                let d = self.rx.desc + 16 * u64::from(head);
                let mut a = [0u8; 8];
                assert!(ram.read(d, &mut a));
                let addr = u64::from_le_bytes(a);
                let b = ram.bytes(addr, len as usize).to_vec();
                let n = HDR.min(b.len());
                (b[..n].to_vec(), b[n..].to_vec())
            })
            .collect()
    }

    fn stats(&self) -> Stats {
        self.t.device().port().counters.stats()
    }
}

#[test]
fn linux_sees_the_mac_the_link_and_the_mtu() {
    let l = lan(vec![spec(1, 0), spec(2, 0)]);
    let mut a = vm(&l, 0, FEATURES);
    wr(&mut a.t, 0x014, 0);
    let lo = rd(&mut a.t, 0x010);
    wr(&mut a.t, 0x014, 1);
    let hi = rd(&mut a.t, 0x010);
    let offered = u64::from(hi) << 32 | u64::from(lo);
    assert_eq!(
        offered,
        OFFLOADS | feature::RING_EVENT_IDX | feature::RING_INDIRECT_DESC
    );
    assert_eq!(offered & feature::ACCESS_PLATFORM, 0);
    let mut cfg = [0u8; 12];
    for (i, b) in cfg.iter_mut().enumerate() {
        *b = a.t.read(0x100 + i as u64, 1).unwrap() as u8;
    }
    assert_eq!(&cfg[..6], &mac(1));
    assert_eq!(u16::from_le_bytes([cfg[6], cfg[7]]), LINK_UP);
    assert_eq!(u16::from_le_bytes([cfg[10], cfg[11]]), 1500);
    // Features the device did not offer do not stick.
    let l2 = lan(vec![spec(1, 0)]);
    let mut b = vm(&l2, 0, FEATURES);
    wr(&mut b.t, 0x070, 0);
    wr(&mut b.t, 0x070, status::ACKNOWLEDGE | status::DRIVER);
    wr(&mut b.t, 0x024, 0);
    wr(&mut b.t, 0x020, (f::MAC | 1 << 2) as u32);
    wr(&mut b.t, 0x024, 1);
    wr(&mut b.t, 0x020, 1);
    wr(
        &mut b.t,
        0x070,
        status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK,
    );
    assert_eq!(rd(&mut b.t, 0x070) & status::FEATURES_OK, 0);
}

#[test]
fn a_frame_crosses_once_intact_with_its_header_and_an_interrupt() {
    let l = lan(vec![spec(1, 0), spec(2, 0)]);
    let (mut a, mut b) = (vm(&l, 0, FEATURES), vm(&l, 1, FEATURES));
    b.post_rx(4, 1526);
    let fr = frame(b.mac, a.mac, 1514, 3);
    a.send(&fr);
    let got = b.received();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].0,
        vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0],
        "num_buffers 1"
    );
    assert_eq!(got[0].1, fr);
    assert_eq!(*b.line.lock().unwrap(), vec![true]);
    assert_eq!(rd(&mut b.t, 0x060), isr::USED);
    // The sender's chain comes back, nothing written.
    let used = a.tx.take_used(&mut a.ram.lock().unwrap());
    assert_eq!(used, vec![(0, 0)]);
    assert_eq!(a.stats().tx_frames, 1);
    assert_eq!(a.stats().tx_bytes, 1514);
    assert_eq!(b.stats().rx_frames, 1);
    assert_eq!(b.stats().rx_bytes, 1514);
    assert!(a.problems.lock().unwrap().is_empty());
}

#[test]
fn any_framing_of_the_chains_carries_the_same_bytes() {
    let l = lan(vec![spec(1, 0), spec(2, 0)]);
    let (mut a, mut b) = (vm(&l, 0, FEATURES), vm(&l, 1, FEATURES));
    // Receive buffers in three pieces: 5 bytes, 100 bytes, the rest.
    {
        let mut ram = b.ram.lock().unwrap();
        let at = DATA + 0x4_0000;
        b.rx.add(
            &mut ram,
            &[
                (at, 5, true),
                (at + 0x100, 100, true),
                (at + 0x400, 1500, true),
            ],
        );
    }
    let fr = frame(b.mac, a.mac, 700, 9);
    // The header and the frame in 97-byte pieces (the header split from
    // nothing: 12 bytes and 85 of the frame in the first).
    a.queue_tx([0; HDR], &fr, 97, 0);
    wr(&mut a.t, 0x050, 1);
    let mut ram = b.ram.lock().unwrap();
    let used = b.rx.take_used(&mut ram);
    assert_eq!(used, vec![(0, 712)]);
    let at = DATA + 0x4_0000;
    let mut all = ram.bytes(at, 5).to_vec();
    all.extend_from_slice(ram.bytes(at + 0x100, 100));
    all.extend_from_slice(ram.bytes(at + 0x400, 607));
    assert_eq!(&all[HDR..], &fr[..]);
}

#[test]
fn a_receiver_without_buffers_loses_frames_and_never_stalls_the_sender() {
    let l = lan(vec![spec(1, 0), spec(2, 0)]);
    let (mut a, mut b) = (vm(&l, 0, FEATURES), vm(&l, 1, FEATURES));
    for k in 0..40u8 {
        let fr = frame(b.mac, a.mac, 60, k);
        a.send(&fr);
    }
    assert_eq!(a.tx.take_used(&mut a.ram.lock().unwrap()).len(), 40);
    assert_eq!(a.stats().tx_frames, 40);
    assert_eq!(b.stats().dropped(DropReason::NoRxBuffer), 40);
    assert!(b.received().is_empty());
    // Buffers posted: frames arrive again.
    b.post_rx(2, 1526);
    a.send(&frame(b.mac, a.mac, 60, 1));
    assert_eq!(b.received().len(), 1);
}

#[test]
fn too_small_a_receive_buffer_drops_the_frame_and_returns_the_buffer() {
    let l = lan(vec![spec(1, 0), spec(2, 0)]);
    let (mut a, mut b) = (vm(&l, 0, FEATURES), vm(&l, 1, FEATURES));
    b.post_rx(1, 64);
    a.send(&frame(b.mac, a.mac, 200, 1));
    let used = b.rx.take_used(&mut b.ram.lock().unwrap());
    assert_eq!(used, vec![(0, 0)]);
    assert_eq!(b.stats().dropped(DropReason::RxTooSmall), 1);
    assert_eq!(b.stats().rx_frames, 0);
}

#[test]
fn malformed_frames_are_dropped_and_counted_by_reason() {
    let l = lan(vec![spec(1, 0), spec(2, 0)]);
    let (mut a, mut b) = (vm(&l, 0, FEATURES), vm(&l, 1, FEATURES));
    b.post_rx(8, 1526);
    let good = frame(b.mac, a.mac, 100, 1);
    // Offloads nobody offered: NEEDS_CSUM, then GSO TCPv4.
    let mut csum = [0u8; HDR];
    csum[0] = 1;
    a.queue_tx(csum, &good, 4096, 0);
    let mut gso = [0u8; HDR];
    gso[1] = 1;
    a.queue_tx(gso, &good, 4096, 1);
    // Runt (zero-length and 13-byte), oversized (1519 bytes).
    a.queue_tx([0; HDR], &[], 4096, 2);
    a.queue_tx([0; HDR], &good[..13], 4096, 3);
    a.queue_tx([0; HDR], &frame(b.mac, a.mac, 1519, 2), 4096, 4);
    // Spoofed source.
    a.queue_tx([0; HDR], &frame(b.mac, mac(9), 100, 3), 4096, 5);
    // A chain shorter than the header.
    {
        let mut ram = a.ram.lock().unwrap();
        a.tx.add(&mut ram, &[(DATA, 5, false)]);
    }
    wr(&mut a.t, 0x050, 1);
    let s = a.stats();
    assert_eq!(s.dropped(DropReason::BadHeader), 3);
    assert_eq!(s.dropped(DropReason::Runt), 2);
    assert_eq!(s.dropped(DropReason::Oversized), 1);
    assert_eq!(s.dropped(DropReason::Spoofed), 1);
    assert_eq!(s.tx_frames, 0);
    assert!(b.received().is_empty());
    // Every chain went back; the device is fine.
    assert_eq!(a.tx.take_used(&mut a.ram.lock().unwrap()).len(), 7);
    assert_eq!(a.t.status() & status::DEVICE_NEEDS_RESET, 0);
    // The largest legal frame passes.
    a.send(&frame(b.mac, a.mac, MAX_FRAME as usize, 4));
    assert_eq!(b.received().len(), 1);
    assert!(std::format!("{s}").contains("bad-header 3"));
}

#[test]
fn a_flood_is_served_in_bounded_batches() {
    let l = lan(vec![spec(1, 0), spec(2, 0)]);
    let (mut a, mut b) = (vm(&l, 0, FEATURES), vm(&l, 1, FEATURES));
    b.post_rx(16, 1526);
    // 16 chains (the ring's size) each time, four times over.
    for round in 0..4u64 {
        for k in 0..u64::from(SIZE) {
            a.queue_tx(
                [0; HDR],
                &frame(BROADCAST, a.mac, 60, k as u8),
                4096,
                k + round,
            );
        }
        wr(&mut a.t, 0x050, 1);
        a.tx.take_used(&mut a.ram.lock().unwrap());
    }
    assert_eq!(a.stats().tx_frames, 64);
    // b had 16 buffers: 16 frames, 48 dropped.
    assert_eq!(b.stats().rx_frames, 16);
    assert_eq!(b.stats().dropped(DropReason::NoRxBuffer), 48);
}

#[test]
fn serve_stops_at_the_budget_and_says_so() {
    use crate::virtio::testram::Ram as R;
    let l = lan(vec![spec(1, 0), spec(2, 0)]);
    let port = l.port(0).unwrap().clone();
    let mut dev = Net::new(
        port,
        LanPort {
            lan: l.clone(),
            index: 0,
        },
    );
    let mut ram = R::new(BASE, 1 << 20);
    let mut d = Driver::new(128, TX_RINGS);
    let mut q = Queue::with_rings(128, d.desc, d.avail, d.used);
    q.activate(QUEUE_MAX, &ram).unwrap();
    let fr = frame(mac(2), mac(1), 60, 0);
    let mut bytes = vec![0u8; HDR];
    bytes.extend_from_slice(&fr);
    assert!(ram.write(DATA, &bytes));
    for _ in 0..100 {
        d.add(&mut ram, &[(DATA, bytes.len() as u32, false)]);
    }
    let s = dev.serve(TXQ, &mut q, &mut ram).unwrap();
    assert!(s.used && s.more);
    assert_eq!(d.take_used(&mut ram).len(), TX_BUDGET);
    let s = dev.serve(TXQ, &mut q, &mut ram).unwrap();
    assert!(s.used && !s.more);
    assert_eq!(d.take_used(&mut ram).len(), 100 - TX_BUDGET);
}

#[test]
fn broadcast_reaches_the_lan_and_never_another_lan() {
    let l = lan(vec![spec(1, 0), spec(2, 0), spec(3, 1), spec(4, 0)]);
    let mut v: Vec<Vm> = (0..4).map(|i| vm(&l, i, FEATURES)).collect();
    for x in v.iter_mut() {
        x.post_rx(4, 1526);
    }
    let fr = frame(BROADCAST, v[0].mac, 42, 5);
    v[0].send(&fr);
    assert_eq!(v[1].received().len(), 1);
    assert_eq!(v[3].received().len(), 1);
    assert!(v[2].received().is_empty());
    assert!(v[0].received().is_empty(), "not back to the sender");
    // The VM on LAN 1 reaches nobody, whatever it sends.
    let m2 = v[2].mac;
    let m0 = v[0].mac;
    v[2].send(&frame(BROADCAST, m2, 42, 6));
    v[2].send(&frame(m0, m2, 42, 7));
    assert_eq!(v[2].stats().dropped(DropReason::NoDestination), 2);
    for i in [0, 1, 3] {
        assert!(v[i].received().is_empty());
    }
}

#[test]
fn hostile_buffers_reset_only_the_guilty_device() {
    let l = lan(vec![spec(1, 0), spec(2, 0)]);
    let (mut a, mut b) = (vm(&l, 0, FEATURES), vm(&l, 1, FEATURES));
    // A transmit descriptor outside a's RAM: a needs a reset.
    {
        let mut ram = a.ram.lock().unwrap();
        a.tx.add(&mut ram, &[(BASE + (2 << 20), 100, false)]);
    }
    wr(&mut a.t, 0x050, 1);
    assert_ne!(a.t.status() & status::DEVICE_NEEDS_RESET, 0);
    assert_eq!(a.problems.lock().unwrap().len(), 1);
    // b posts a receive buffer outside its RAM, then an available index
    // running ahead: a's frames to b are dropped, b needs a reset, a is fine.
    let mut c = vm(&l, 0, FEATURES);
    {
        let mut ram = b.ram.lock().unwrap();
        b.rx.add(&mut ram, &[(BASE + (1 << 30), 1526, true)]);
    }
    c.send(&frame(b.mac, c.mac, 60, 1));
    assert_eq!(b.stats().dropped(DropReason::RxFault), 1);
    assert_eq!(b.problems.lock().unwrap().len(), 1);
    assert_ne!(rd(&mut b.t, 0x070) & status::DEVICE_NEEDS_RESET, 0);
    assert_ne!(rd(&mut b.t, 0x060) & isr::CONFIG, 0);
    assert_eq!(c.t.status() & status::DEVICE_NEEDS_RESET, 0);
    // Broken: later frames are dropped without looking at the queue.
    c.send(&frame(b.mac, c.mac, 60, 2));
    assert_eq!(b.stats().dropped(DropReason::NoRxBuffer), 1);
    // b resets and comes back: frames arrive.
    let mut b2 = vm(&l, 1, FEATURES);
    b2.post_rx(1, 1526);
    c.send(&frame(b2.mac, c.mac, 60, 3));
    assert_eq!(b2.received().len(), 1);
}

#[test]
fn nothing_is_delivered_before_driver_ok_or_after_a_reset() {
    let l = lan(vec![spec(1, 0), spec(2, 0)]);
    let (mut a, mut b) = (vm(&l, 0, FEATURES), vm(&l, 1, FEATURES));
    b.post_rx(4, 1526);
    wr(&mut b.t, 0x070, 0);
    a.send(&frame(b.mac, a.mac, 60, 1));
    assert!(b.received().is_empty());
    assert_eq!(b.stats().dropped(DropReason::NoRxBuffer), 1);
    // Queues ready but no DRIVER_OK yet.
    let s = status::ACKNOWLEDGE | status::DRIVER;
    wr(&mut b.t, 0x070, s);
    wr(&mut b.t, 0x020, f::MAC as u32);
    wr(&mut b.t, 0x024, 1);
    wr(&mut b.t, 0x020, 1);
    wr(&mut b.t, 0x024, 0);
    wr(&mut b.t, 0x070, s | status::FEATURES_OK);
    wr(&mut b.t, 0x030, 0);
    wr(&mut b.t, 0x038, u32::from(SIZE));
    wr(&mut b.t, 0x080, b.rx.desc as u32);
    wr(&mut b.t, 0x090, b.rx.avail as u32);
    wr(&mut b.t, 0x0a0, b.rx.used as u32);
    wr(&mut b.t, 0x044, 1);
    assert!(!b.t.device().port().rx_ready());
    a.send(&frame(b.mac, a.mac, 60, 2));
    assert_eq!(b.stats().dropped(DropReason::NoRxBuffer), 2);
}

#[test]
fn two_senders_and_a_busy_driver_keep_the_receive_ring_consistent() {
    // Two cores deliver into b while b's driver takes frames and posts
    // the buffers again: no queue error, every frame counted once.
    let l = lan(vec![spec(1, 0), spec(2, 0), spec(3, 0)]);
    let (mut a, b, mut c) = (
        vm(&l, 0, FEATURES),
        vm(&l, 1, FEATURES),
        vm(&l, 2, FEATURES),
    );
    let ram = b.ram.clone();
    let mut rx = Driver::new(SIZE, RX_RINGS);
    rx.desc = b.rx.desc;
    rx.avail = b.rx.avail;
    rx.used = b.rx.used;
    {
        let mut r = ram.lock().unwrap();
        for k in 0..SIZE {
            rx.set_desc(
                &mut r,
                k,
                DATA + 0x4_0000 + 0x800 * u64::from(k),
                1526,
                2,
                0,
            );
            rx.publish(&mut r, k);
        }
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    let driver = std::thread::spawn(move || {
        let mut taken = 0u64;
        loop {
            // One last pass after the senders are done.
            let last = s2.load(std::sync::atomic::Ordering::Acquire);
            let used = {
                let mut r = ram.lock().unwrap();
                rx.take_used(&mut r)
            };
            for (id, _) in used {
                let mut r = ram.lock().unwrap();
                rx.publish(&mut r, id as u16);
                taken += 1;
            }
            if last {
                break;
            }
        }
        taken
    });
    let bm = b.mac;
    let (am, cm) = (a.mac, c.mac);
    let t1 = std::thread::spawn(move || {
        crate::sync::set_test_core(50);
        for k in 0..3000u32 {
            a.send(&frame(bm, am, 60 + (k % 1400) as usize, k as u8));
            a.tx.take_used(&mut a.ram.lock().unwrap());
        }
    });
    crate::sync::set_test_core(51);
    for k in 0..3000u32 {
        c.send(&frame(BROADCAST, cm, 60 + (k % 900) as usize, k as u8));
        c.tx.take_used(&mut c.ram.lock().unwrap());
    }
    t1.join().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Release);
    let taken = driver.join().unwrap();
    let s = b.t.device().port().counters.stats();
    assert!(
        b.problems.lock().unwrap().is_empty(),
        "{:?}",
        b.problems.lock().unwrap()
    );
    // Every frame arrived or was dropped for want of a buffer (or of a
    // share of the last ones: the two senders compete).
    assert_eq!(
        s.rx_frames + s.dropped(DropReason::NoRxBuffer) + s.dropped(DropReason::Share),
        6000,
        "{s}"
    );
    assert_eq!(s.rx_frames, taken);
}

#[test]
fn storm_control_limits_flooding_not_unicast() {
    use crate::net::lan::STORM_BURST;
    let l = Arc::new(Lan::new(vec![spec(1, 0), spec(2, 0)], frozen_clock));
    let (mut a, mut b) = (vm(&l, 0, FEATURES), vm(&l, 1, FEATURES));
    let n = STORM_BURST + 50;
    b.post_rx(8, 1526);
    for k in 0..n {
        a.send(&frame(BROADCAST, a.mac, 60, k as u8));
        a.tx.take_used(&mut a.ram.lock().unwrap());
    }
    assert_eq!(b.received().len(), 8);
    let s = a.stats();
    assert_eq!(s.tx_frames, STORM_BURST, "{s}");
    assert_eq!(s.dropped(DropReason::Storm), 50, "{s}");
    // Unicast is not a storm.
    b.post_rx(4, 1526);
    b.received();
    a.send(&frame(b.mac, a.mac, 60, 1));
    assert_eq!(b.received().len(), 1);
    assert!(std::format!("{s}").contains("storm 50"));
}

/// Every offload offered, as Linux takes them.
const OFFLOADS: u64 = FEATURES
    | f::CSUM
    | f::GUEST_CSUM
    | f::HOST_TSO4
    | f::HOST_TSO6
    | f::GUEST_TSO4
    | f::GUEST_TSO6
    | f::MRG_RXBUF;

impl Vm {
    /// Sends a large frame with header `hdr` (16 KiB buffers in a data
    /// area of its own).
    fn send_big(&mut self, hdr: [u8; HDR], frame: &[u8]) {
        let mut bytes = hdr.to_vec();
        bytes.extend_from_slice(frame);
        let at = DATA + 0x5_0000;
        let mut ram = self.ram.lock().unwrap();
        assert!(ram.write(at, &bytes));
        let bufs: Vec<(u64, u32, bool)> = (0..bytes.len())
            .step_by(0x4000)
            .map(|o| (at + o as u64, 0x4000.min(bytes.len() - o) as u32, false))
            .collect();
        self.tx.add(&mut ram, &bufs);
        drop(ram);
        wr(&mut self.t, 0x050, 1);
    }

    /// The used receive buffers' bytes since last asked, one per buffer.
    fn received_raw(&mut self) -> Vec<Vec<u8>> {
        let mut ram = self.ram.lock().unwrap();
        let used = self.rx.take_used(&mut ram);
        used.into_iter()
            .map(|(head, len)| {
                let d = self.rx.desc + 16 * u64::from(head);
                let mut a = [0u8; 8];
                assert!(ram.read(d, &mut a));
                ram.bytes(u64::from_le_bytes(a), len as usize).to_vec()
            })
            .collect()
    }
}

use crate::virtio::offload::tests::{hdr as oh, tcp, valid};

#[test]
fn linux_takes_checksum_and_segmentation_offloads_and_merged_buffers() {
    let l = lan(vec![spec(1, 0)]);
    let mut a = vm(&l, 0, OFFLOADS);
    wr(&mut a.t, 0x014, 0);
    let lo = rd(&mut a.t, 0x010);
    wr(&mut a.t, 0x014, 1);
    let hi = rd(&mut a.t, 0x010);
    let offered = u64::from(hi) << 32 | u64::from(lo);
    assert_eq!(offered & OFFLOADS, OFFLOADS);
    assert_eq!(
        rd(&mut a.t, 0x070) & status::FEATURES_OK,
        status::FEATURES_OK
    );
}

#[test]
fn a_tso_frame_crosses_whole_into_merged_buffers_of_a_receiver_that_takes_it() {
    let l = lan(vec![spec(1, 0), spec(2, 0)]);
    let (mut a, mut b) = (vm(&l, 0, OFFLOADS), vm(&l, 1, OFFLOADS));
    let fr = tcp(false, 20_000, 12);
    // Too few buffers: nothing taken, the frame dropped.
    b.post_rx(3, 2048);
    a.send_big(oh(1, 1, 1448, 34, 16), &fr);
    assert!(b.received_raw().is_empty());
    assert_eq!(b.stats().dropped(DropReason::NoRxBuffer), 1);
    // Enough: the same three and more, one frame over eleven buffers.
    b.post_rx(13, 2048);
    a.send_big(oh(1, 1, 1448, 34, 16), &fr);
    let bufs = b.received_raw();
    let n = (HDR + fr.len()).div_ceil(2048);
    assert_eq!(bufs.len(), n);
    let h = &bufs[0][..HDR];
    assert_eq!(h[0], 1, "NEEDS_CSUM");
    assert_eq!(h[1], 1, "GSO TCPv4");
    assert_eq!(u16::from_le_bytes([h[2], h[3]]), 66, "hdr_len");
    assert_eq!(u16::from_le_bytes([h[4], h[5]]), 1448, "gso_size");
    assert_eq!(u16::from_le_bytes([h[10], h[11]]), n as u16, "num_buffers");
    let joined: Vec<u8> = bufs.concat()[HDR..].to_vec();
    assert_eq!(joined, fr);
    assert_eq!(b.stats().rx_frames, 1);
    // Both times the switch took it (the first time the receiver
    // dropped it).
    assert_eq!(a.stats().tx_bytes, 2 * fr.len() as u64);
}

#[test]
fn the_switch_segments_and_checksums_for_a_receiver_without_offloads() {
    let l = lan(vec![spec(1, 0), spec(2, 0)]);
    let (mut a, mut b) = (vm(&l, 0, OFFLOADS), vm(&l, 1, FEATURES));
    b.post_rx(16, 1526);
    for v6 in [false, true] {
        let fr = tcp(v6, 10_000, 0);
        let (ty, l4) = if v6 { (4, 54) } else { (1, 34) };
        a.send_big(oh(1, ty, 1400, l4, 16), &fr);
        let got = b.received();
        assert_eq!(
            got.len(),
            10_000usize.div_ceil(1400),
            "{} / {}",
            a.stats(),
            b.stats()
        );
        let mut payload = Vec::new();
        for (h, f) in &got {
            assert_eq!(h, &vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
            assert!(valid(f, v6));
            payload.extend_from_slice(&f[usize::from(l4) + 20..]);
        }
        assert_eq!(payload, fr[usize::from(l4) + 20..]);
        b.post_rx(got.len(), 1526);
    }
    // A partial checksum alone is finished too.
    let fr = tcp(false, 500, 0);
    a.send_big(oh(1, 0, 0, 34, 16), &fr);
    let got = b.received();
    assert_eq!(got.len(), 1);
    assert!(valid(&got[0].1, false));
    assert!(!valid(&fr, false));
    // More segments than the fallback makes: dropped, counted.
    let fr = tcp(false, 60_000, 0);
    a.send_big(oh(1, 1, 400, 34, 16), &fr);
    assert!(b.received().is_empty());
    assert_eq!(b.stats().dropped(DropReason::Segments), 1);
}

#[test]
fn offloads_a_driver_did_not_take_are_refused_and_reset_forgets_them() {
    let l = lan(vec![spec(1, 0), spec(2, 0)]);
    let (mut a, mut b) = (vm(&l, 0, OFFLOADS), vm(&l, 1, OFFLOADS));
    b.post_rx(16, 2048);
    let fr = tcp(false, 3000, 0);
    // A reset, then only the basic features: TSO refused.
    wr(&mut a.t, 0x070, 0);
    a = vm(&l, 0, FEATURES);
    a.send_big(oh(1, 1, 1448, 34, 16), &fr);
    assert_eq!(a.stats().dropped(DropReason::BadHeader), 1);
    assert!(b.received_raw().is_empty());
}

#[test]
fn a_flooding_sender_leaves_the_last_quarter_of_a_ring_to_the_others() {
    let l = lan(vec![spec(1, 0), spec(2, 0), spec(3, 0)]);
    let (mut a, mut b, mut c) = (
        vm(&l, 0, FEATURES),
        vm(&l, 1, FEATURES),
        vm(&l, 2, FEATURES),
    );
    // b's ring: 16 buffers, never refilled while this runs.
    b.post_rx(16, 1526);
    // a alone may fill it down to the last quarter and past it.
    for k in 0..13u8 {
        a.send(&frame(b.mac, a.mac, 60, k));
    }
    assert_eq!(b.stats().rx_frames, 13);
    assert_eq!(
        b.stats().dropped(DropReason::Share),
        0,
        "alone: no share limit"
    );
    // c sends: it gets a buffer, and from then on a has had more than
    // its share of the last quarter.
    c.send(&frame(b.mac, c.mac, 60, 100));
    a.send(&frame(b.mac, a.mac, 60, 50));
    a.send(&frame(b.mac, a.mac, 60, 51));
    c.send(&frame(b.mac, c.mac, 60, 101));
    c.send(&frame(b.mac, c.mac, 60, 102));
    let s = b.stats();
    assert_eq!(s.dropped(DropReason::Share), 2, "{s}");
    assert_eq!(s.rx_frames, 16, "{s}");
    let got = b.received();
    let from_c = got.iter().filter(|(_, f)| f[6..12] == c.mac).count();
    assert_eq!(from_c, 3, "c got the last buffers");
    // Refilled past half, the count starts over: a is welcome again.
    b.post_rx(10, 1526);
    a.send(&frame(b.mac, a.mac, 60, 60));
    assert_eq!(b.stats().rx_frames, 17);
}
