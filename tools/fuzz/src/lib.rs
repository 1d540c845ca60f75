//! pivisor's fuzz targets: every parser and state machine a guest (or a
//! user, through the bundle and the device tree) can feed. Each takes raw
//! bytes, drives the real code with them, and panics only where pivisor
//! itself would have misbehaved (a panic in pivisor's own code, or a
//! broken invariant asserted here).
//!
//! | target        | what it feeds                                          |
//! |---------------|--------------------------------------------------------|
//! | `mmio_decode` | ESR/FAR/HPFAR decode; the MMIO access against a bus of |
//! |               | device models; trapped system registers                |
//! | `vgic`        | distributor reads/writes, device lines, hardware       |
//! |               | firings and list-register flushes with hostile LRs     |
//! | `mailbox`     | a property buffer through the policy, and the mailbox  |
//! |               | registers                                              |
//! | `pl011`       | the emulated UART's registers and input                |
//! | `psci`        | PSCI/SMCCC calls with any function id and arguments    |
//! | `bundle`      | the guest bundle parser (and its configuration)        |
//! | `vm_config`   | the VM configuration parser, then each VM's device     |
//! |               | tree, read back                                        |
//! | `host_dtb`    | the host device-tree checker and reader                |
//!
//! `make fuzz` runs them under libFuzzer (cargo-fuzz, nightly); `make
//! test` replays the seed corpus (corpus/<target>/) and a fixed-seed
//! batch of generated inputs on stable (tests/replay.rs).

use pivisor::devices::bus::{MmioBus, MmioDevice};
use pivisor::devices::mailbox::policy::Policy;
use pivisor::devices::mailbox::property::{self, Firmware, View};
use pivisor::devices::mailbox::Mailbox;
use pivisor::devices::pl011::Pl011;
use pivisor::trap::decode::{decode, Exit};
use pivisor::trap::sysreg::{self, SysRegResult, SysRegState};
use pivisor::vgic::dist::VgicDist;
use pivisor::vm::psci::{self, Outcome, Power};

/// A fuzz target.
pub type Target = fn(&[u8]);

/// Every target, by name (the corpus directories and `make fuzz
/// FUZZ_TARGETS=`).
pub const TARGETS: [(&str, Target); 11] = [
    ("mmio_decode", mmio_decode),
    ("vgic", vgic),
    ("mailbox", mailbox),
    ("pl011", pl011),
    ("psci", psci),
    ("bundle", bundle),
    ("vm_config", vm_config),
    ("host_dtb", host_dtb),
    ("console", console),
    ("virtio_blk", virtio_blk),
    ("virtio_net", virtio_net),
];

/// Reads the input as little-endian fields; past its end, zeroes.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        let n = N.min(self.0.len());
        b[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        b
    }
    fn u8(&mut self) -> u8 {
        self.bytes::<1>()[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.bytes())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.bytes())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.bytes())
    }
    fn done(&self) -> bool {
        self.0.is_empty()
    }
}

/// An MMIO width: 1, 2, 4 or 8.
fn width(b: u8) -> u8 {
    1 << (b & 3)
}

/// What the devices ask of their runner, answered with nothing.
#[derive(Clone)]
struct NullHost;

impl pivisor::vm::attach::Host for NullHost {
    fn set_line(&self, _: u32, _: bool) {}
    fn uart_tx(&self, _: u8) {}
    fn uart_room(&self) -> bool {
        true
    }
    fn firmware(&self, word: u32) -> Option<u32> {
        Some(word)
    }
    fn exit_count(&self, vcpu: Option<usize>, which: u64) -> u64 {
        vcpu.unwrap_or(9) as u64 * 100 + which
    }
    fn watchdog_now(&self) -> u64 {
        0
    }
    fn test_line(&self, _: &str) {}
    fn boots(&self) -> u32 {
        1
    }
    // The fuzzed bus has no fault-injection page and no disk (the
    // virtio_blk target drives the disk's models itself).
    fn inject_fault(&self) {}
    fn ram(&self) -> Box<dyn pivisor::virtio::GuestRam + Send> {
        Box::new(FuzzRam(std::sync::Arc::new(std::sync::Mutex::new(
            Vec::new(),
        ))))
    }
    fn disk(
        &self,
        _: &pivisor::vm::config::DiskConfig,
    ) -> Result<Box<dyn pivisor::virtio::blk::Backend>, String> {
        Err("no disk".into())
    }
    fn virtio_problem(&self, _: &str, _: &pivisor::virtio::queue::QueueError) {}
    fn io_more(&self) {}
    fn net_port(
        &self,
        _: &pivisor::vm::config::NetConfig<'_>,
    ) -> Result<
        (
            std::sync::Arc<pivisor::virtio::net::Port>,
            Box<dyn pivisor::virtio::net::Fabric>,
        ),
        String,
    > {
        Err("no network".into())
    }
}

/// A device bus as a VM with every device has it, wired by the
/// hypervisor's own attach path (addresses as in the VM's device tree).
fn bus() -> MmioBus {
    use pivisor::vm::attach::{attach, RealUart};
    use pivisor::vm::config::Device;
    let all = [
        Device::Uart,
        Device::Mailbox,
        Device::Counters,
        Device::Watchdog,
        Device::TestDev,
    ];
    attach(&all, None, None, 0, 4, RealUart::Emulate, NullHost)
        .expect("every device attaches")
        .bus
}

/// Exit decode: each 24 bytes are an ESR, a FAR and an HPFAR. An MMIO
/// access is dispatched to the bus and completed into a register file; a
/// system register access is emulated.
pub fn mmio_decode(data: &[u8]) {
    let mut input = Input(data);
    let mut b = bus();
    let mut regs = [0u64; 31];
    let mut st = SysRegState::reset();
    while !input.done() {
        let (esr, far, hpfar) = (input.u64(), input.u64(), input.u64());
        match decode(esr, far, hpfar) {
            Exit::Mmio(a) => {
                assert!(matches!(a.width, 1 | 2 | 4 | 8), "width {}", a.width);
                assert!(a.reg <= 31);
                let store = a.write.then(|| a.store_value(&regs));
                if let Ok(raw) = b.dispatch(a.ipa, a.width, store) {
                    if !a.write {
                        a.complete_load(&mut regs, raw);
                    }
                }
            }
            Exit::SysReg(s) => {
                let value = regs[(far % 31) as usize];
                match sysreg::emulate(&s, value, &mut st) {
                    SysRegResult::Read(v) => regs[(far % 31) as usize] = v,
                    SysRegResult::Written | SysRegResult::SetWay(_) | SysRegResult::Undefined => {}
                }
            }
            _ => {}
        }
    }
}

/// The virtual distributor. First byte: vCPUs (1-8); then owned SPIs;
/// then operations of 8 bytes: kind, vCPU, offset (2), width, value (3,
/// sign-extended as the low bytes of a u32). Flushes run against four
/// list registers that the "guest" rewrites with input bytes, as a
/// hostile guest could only through GICV (list registers are not guest
/// writable, but their state bits change under the guest's ack and EOI).
pub fn vgic(data: &[u8]) {
    let mut input = Input(data);
    let vcpus = (input.u8() % 8) as usize + 1;
    let owned: Vec<u32> = (0..(input.u8() % 8))
        .map(|_| u32::from(input.u16()) % 1100)
        .collect();
    let mut d = VgicDist::new(vcpus, &owned);
    // Hardware-linked as in a VM: the timers, and a passed-through SPI.
    d.set_hw(27);
    d.set_hw(30);
    if let Some(&spi) = owned.first() {
        d.set_hw(spi);
    }
    // What the hypervisor may hold for this VM, whatever the guest does.
    let bound = vcpus * 32 + owned.len();
    let mut lrs = vec![[0u32; 4]; vcpus];
    while !input.done() {
        assert!(
            d.released_len() <= bound,
            "{} queued deactivations",
            d.released_len()
        );
        let kind = input.u8();
        let v = (input.u8() as usize) % (vcpus + 1); // one past: a bad vCPU
        let off = u64::from(input.u16() & 0xfff);
        let w = width(input.u8());
        let value = input.u32();
        match kind % 6 {
            0 => {
                d.write(v, off, w, value);
            }
            1 => {
                d.read(v, off, w);
            }
            2 => {
                d.set_line(v, value % 1100, value & (1 << 31) != 0);
            }
            3 => {
                d.hw_fired(v, value % 1100);
            }
            4 => {
                if let Some(l) = lrs.get_mut(v) {
                    d.flush(v, l);
                    for lr in l.iter() {
                        let state = (lr >> 28) & 3;
                        if state != 0 {
                            assert!(lr & 0x3ff < 1020, "LR with INTID {:#x}", lr & 0x3ff);
                        }
                    }
                }
            }
            _ => {
                // The guest acks/EOIs: list-register state bits move.
                if let Some(l) = lrs.get_mut(v) {
                    let i = (value as usize) % 4;
                    l[i] = (l[i] & !(3 << 28)) | ((value >> 4) & 3) << 28;
                }
            }
        }
    }
}

/// Answers every forwarded tag with a response bit and some bytes.
struct EchoFirmware;

impl Firmware for EchoFirmware {
    fn call(&mut self, buf: &mut [u8]) -> Result<(), &'static str> {
        if buf.len() >= 8 {
            buf[4..8].copy_from_slice(&property::CODE_SUCCESS.to_le_bytes());
        }
        Ok(())
    }
}

/// A property buffer (the input, cut to the largest size allowed) through
/// the policy from the first byte; then the rest as mailbox register
/// operations.
pub fn mailbox(data: &[u8]) {
    let groups = u32::from(data.first().copied().unwrap_or(0));
    let policy = Policy {
        groups,
        gpio_pins: groups as u8,
    };
    let view = View {
        ram_base: 0,
        ram: 64 << 20,
        serial: Some(0x1234),
        mac: None,
        cmdline: "console=ttyAMA0",
    };
    let mut buf = data.get(1..).unwrap_or(&[]).to_vec();
    buf.truncate(property::MAX_BUFFER);
    let len = buf.len();
    match property::process(&mut buf, &policy, &view, &mut EchoFirmware) {
        Ok(o) => assert!(o.code == property::CODE_SUCCESS || o.code == property::CODE_ERROR),
        Err(_) if len >= 8 => {
            assert_eq!(&buf[4..8], &property::CODE_ERROR.to_le_bytes());
        }
        Err(_) => {}
    }
    assert_eq!(buf.len(), len, "the buffer never changes size");
    let mut m = Mailbox::new(Box::new(|w| (w & 1 == 0).then_some(w)), Box::new(|_| {}));
    let mut input = Input(data);
    while !input.done() {
        let op = input.u8();
        let off = u64::from(input.u8());
        let w = width(input.u8());
        let value = u64::from(input.u32());
        if op & 1 == 0 {
            let _ = m.read(off, w);
        } else {
            let _ = m.write(off, w, value);
        }
        assert!(
            m.waiting() <= pivisor::devices::mailbox::DEPTH,
            "bounded FIFO"
        );
    }
}

/// The emulated PL011: register reads and writes, received bytes, and
/// the console's room coming and going.
pub fn pl011(data: &[u8]) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let room = Arc::new(AtomicBool::new(true));
    let r = room.clone();
    let mut u = Pl011::new(Box::new(|_| {}), Box::new(|_| {}))
        .with_room(Box::new(move || r.load(Ordering::Relaxed)));
    let mut input = Input(data);
    while !input.done() {
        let op = input.u8();
        let off = u64::from(input.u16() & 0xfff);
        let w = width(input.u8());
        let value = u64::from(input.u32());
        match op & 3 {
            0 => {
                let _ = u.read(off, w);
            }
            1 => {
                let _ = u.write(off, w, value);
            }
            2 => {
                for _ in 0..(op >> 2) {
                    u.receive(value as u8);
                }
            }
            _ => {
                let had = room.swap(value & 1 != 0, Ordering::Relaxed);
                if !had && value & 1 != 0 {
                    u.tx_room_returned();
                }
                let fr = u.read(0x18, 4).unwrap_or(0) as u32;
                assert_eq!(fr & (1 << 5) != 0, value & 1 == 0, "TXFF follows the room");
            }
        }
        let (fifo, backlog) = u.held();
        assert!(
            fifo <= pivisor::devices::pl011::FIFO && backlog <= pivisor::devices::pl011::BACKLOG,
            "bounded input: {fifo} + {backlog}"
        );
        // The line follows the registers: RIS & IMSC (MIS) non-zero.
        let mis = u.read(0x40, 4).unwrap_or(0);
        assert_eq!(u.level(), mis != 0, "interrupt line against MIS {mis:#x}");
    }
}

/// PSCI and SMCCC: calls of 32 bytes (x0-x3) from a vCPU of a VM whose
/// power states come from the input; function ids are biased towards
/// the ranges pivisor implements.
pub fn psci(data: &[u8]) {
    let mut input = Input(data);
    let n = (input.u8() % 8) as usize + 1;
    let mut power: Vec<Power> = (0..n)
        .map(|_| match input.u8() % 3 {
            0 => Power::Off,
            1 => Power::On,
            _ => Power::OnPending {
                entry: 0x8_0000,
                context: 0,
            },
        })
        .collect();
    while !input.done() {
        let me = (input.u8() as usize) % n;
        let bias = input.u8();
        let mut x0 = input.u64();
        if bias & 1 == 0 {
            // Within the standard service ranges, 32- and 64-bit.
            x0 = [0x8000_0000, 0x8400_0000, 0xc400_0000, 0xc600_0000][(bias >> 1) as usize % 4]
                | (x0 & 0x1f);
        }
        let regs = [x0, input.u64(), input.u64(), input.u64()];
        // The caller is running: the hypervisor only calls with its own
        // state On (found by the psci fuzz target, whose first version
        // let the caller be Off and so "start" itself).
        power[me] = Power::On;
        let before = power.clone();
        match psci::call(regs, me, &mut power, 64 << 20) {
            Outcome::Started(v) => {
                assert!(v < n && v != me, "started vCPU {v} of {n} (caller {me})");
                assert!(matches!(before[v], Power::Off), "CPU_ON of a vCPU not off");
            }
            Outcome::Return(_)
            | Outcome::Off
            | Outcome::Suspend
            | Outcome::SystemOff
            | Outcome::SystemReset
            | Outcome::Unknown
            | Outcome::ExitCount(_)
            | Outcome::Absent => {}
        }
        assert_eq!(power.len(), n);
    }
}

/// The guest bundle: checked completely; if accepted, its configuration
/// is parsed too.
pub fn bundle(data: &[u8]) {
    if let Ok(b) = pivisor::vm::bundle::Bundle::parse(data) {
        for (name, bytes) in b.files() {
            assert_eq!(b.file(name).map(<[u8]>::len), Some(bytes.len()));
        }
        if let Ok(text) = b.config() {
            vm_config(text.as_bytes());
        }
    }
}

/// The VM configuration (as text, invalid UTF-8 replaced); each accepted
/// VM's device tree is built and must read back as a valid tree.
pub fn vm_config(data: &[u8]) {
    use pivisor::vm::config;
    use pivisor::vm::fdt::{build, VmTree};
    let text = String::from_utf8_lossy(data);
    let Ok(vms) = config::parse(&text) else {
        return;
    };
    let _ = config::check_fits(&vms, 4, 2 << 30);
    for (index, v) in vms.iter().enumerate() {
        assert!(!v.cores.is_empty() && v.memory > 0);
        let t = VmTree {
            name: v.name,
            index,
            vcpus: v.cores.len(),
            ram: v.memory,
            ram_base: 0,
            host: &[],
            pt: &[],
            bootargs: v.bootargs,
            initrd: None,
            devices: &v.devices,
            extra: None,
            disk: v.disk.is_some(),
            net: v.net.is_some(),
        };
        if let Ok(dtb) = build(&t) {
            let mut out = vec![0u8; dtb.len() + 64];
            pivisor::dt::blob::sanitize(&dtb, &mut out)
                .unwrap_or_else(|e| panic!("VM '{}': its own device tree is invalid: {e}", v.name));
        }
    }
}

/// The host device tree: checked and copied, then read.
pub fn host_dtb(data: &[u8]) {
    let mut out = vec![0u8; data.len().max(64)];
    if let Ok(n) = pivisor::dt::blob::sanitize(data, &mut out) {
        if let Ok(info) = pivisor::dt::host::HostInfo::parse(&out[..n]) {
            let _ = info.high_peripherals();
            for w in info.windows.iter() {
                let _ = info.translate(w.bus);
            }
        }
        passthrough(&out[..n]);
    }
}

/// Passthrough against a hostile firmware tree: every node resolved by
/// its path, its clocks read, its node copied into a VM's tree; never a
/// panic, and what resolves has whole pages.
fn passthrough(tree: &[u8]) {
    use pivisor::vm::{passthru, ptree};
    let Ok(fdt) = fdt::Fdt::new(tree) else {
        return;
    };
    let nodes = passthru::nodes(&fdt);
    for f in nodes.iter().take(64) {
        let Ok(d) = passthru::resolve(&fdt, &nodes, &f.path) else {
            continue;
        };
        for (a, n) in d.pages() {
            assert!(a % passthru::PAGE == 0 && n % passthru::PAGE == 0 && n > 0);
        }
        let clocks = ptree::clock_sources(&fdt, &d.path).unwrap_or_default();
        let node = ptree::PtNode {
            path: d.path.clone(),
            host_mode: true,
            clock_hz: clocks.iter().map(|_| 1).collect(),
        };
        let mut w = pivisor::dt::writer::FdtWriter::new();
        if w.begin_node("").is_ok() {
            let _ = ptree::write_bus(&mut w, tree, node.bus(), core::slice::from_ref(&node));
        }
    }
    let _ = passthru::lookup(&fdt, &nodes, "serial0");
    let _ = passthru::lookup(&fdt, &nodes, "mmc");
}

/// The console switch and output queue (a guest controls every byte its
/// emulated UART writes): bytes from up to four VMs, typed keys and UART
/// ticks. Background output never carries a control character but its
/// line end and the re-assertion, nothing a byte writes exceeds the
/// switch's worst case, and the queue stays within its shares.
pub fn console(data: &[u8]) {
    use pivisor::conmux::{Mux, REASSERT};
    use pivisor::conout::{OutQueue, HYP, HYP_SHARE, QUEUE, VM_SHARE};
    let mut input = Input(data);
    let n = (input.u8() % 4) as usize + 1;
    let mut m = Mux::new((0..n).map(|i| format!("vm{i}")).collect());
    let mut q = Box::new(OutQueue::new());
    let mut out = Vec::new();
    while !input.done() {
        let op = input.u8();
        let b = input.u8();
        out.clear();
        match op % 8 {
            // A VM writes (most of the time).
            0..=4 => {
                let vm = (op >> 3) as usize % (n + 1); // n: no such VM
                let focused = vm == m.focus();
                let worst = if vm < n { m.worst_next(vm) } else { 0 };
                m.output(vm, b, &mut out);
                assert!(
                    out.len() <= worst,
                    "{} bytes for a worst case of {worst}",
                    out.len()
                );
                if !focused && !out.is_empty() {
                    let mut body = out.clone();
                    while let Some(i) = find(&body, REASSERT) {
                        body.drain(i..i + REASSERT.len());
                    }
                    let text = String::from_utf8_lossy(&body).replace("\r\n", "");
                    assert!(
                        !text.chars().any(|c| c.is_control() && c != '\t'),
                        "a control character from a background VM: {text:?}"
                    );
                }
                if vm < n {
                    q.push(vm, &out);
                }
            }
            5 => {
                m.input(b, &mut out);
                q.push(HYP, &out);
            }
            6 => {
                m.break_line(&mut out);
                out.extend_from_slice(b"[    1.000000] c0 INFO  a log line\r\n");
                m.wrote_line();
                q.push(HYP, &out);
            }
            _ => {
                // The UART sends up to b bytes.
                let mut fifo = b as usize;
                q.drain(&mut |_| {
                    if fifo == 0 {
                        return false;
                    }
                    fifo -= 1;
                    true
                });
            }
        }
        let mut total = 0;
        for src in 0..n {
            assert!(q.used(src) <= VM_SHARE);
            total += q.used(src);
        }
        assert!(q.used(HYP) <= HYP_SHARE);
        assert!(total + q.used(HYP) <= QUEUE);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A VM's RAM for the virtio target: `mem.len()` bytes at [`VIRTIO_RAM`].
struct FuzzRam(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

/// Where the virtio target's RAM starts.
const VIRTIO_RAM: u64 = 0x4000_0000;

impl FuzzRam {
    fn at(&self, ipa: u64, len: usize) -> Option<usize> {
        let n = self.0.lock().unwrap().len();
        let off = usize::try_from(ipa.checked_sub(VIRTIO_RAM)?).ok()?;
        (off.checked_add(len)? <= n).then_some(off)
    }
}

impl pivisor::virtio::GuestRam for FuzzRam {
    fn contains(&self, ipa: u64, len: u64) -> bool {
        usize::try_from(len).is_ok_and(|l| self.at(ipa, l).is_some())
    }
    fn read(&mut self, ipa: u64, out: &mut [u8]) -> bool {
        let Some(o) = self.at(ipa, out.len()) else {
            return false;
        };
        out.copy_from_slice(&self.0.lock().unwrap()[o..o + out.len()]);
        true
    }
    fn write(&mut self, ipa: u64, data: &[u8]) -> bool {
        let Some(o) = self.at(ipa, data.len()) else {
            return false;
        };
        self.0.lock().unwrap()[o..o + data.len()].copy_from_slice(data);
        true
    }
}

/// A disk in memory that checks every access is inside it.
struct FuzzDisk {
    bytes: Vec<u8>,
    read_only: bool,
}

impl pivisor::virtio::blk::Backend for FuzzDisk {
    fn sectors(&self) -> u64 {
        self.bytes.len() as u64 / 512
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), pivisor::virtio::blk::IoError> {
        let o = (sector * 512) as usize;
        assert!(o + buf.len() <= self.bytes.len() && buf.len() <= pivisor::virtio::blk::CHUNK);
        buf.copy_from_slice(&self.bytes[o..o + buf.len()]);
        Ok(())
    }
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), pivisor::virtio::blk::IoError> {
        assert!(!self.read_only, "a write reached a read-only disk");
        let o = (sector * 512) as usize;
        assert!(o + buf.len() <= self.bytes.len() && buf.len() <= pivisor::virtio::blk::CHUNK);
        self.bytes[o..o + buf.len()].copy_from_slice(buf);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), pivisor::virtio::blk::IoError> {
        Ok(())
    }
    fn serial(&self) -> [u8; 20] {
        [b'f'; 20]
    }
}

/// The virtio-blk device behind its virtio-mmio transport: the input is
/// the guest's RAM (a length, then up to 16 KiB of rings, descriptors and
/// headers), then the features, the queue's size and rings, and a
/// sequence of notifications, polls and register writes. Nothing panics, every
/// disk access is inside the disk (and none reaches a read-only one),
/// nothing outside the 64 KiB of RAM is touched (the RAM refuses it),
/// and the transport's work per notification is bounded.
pub fn virtio_blk(data: &[u8]) {
    use pivisor::virtio::blk::Blk;
    use pivisor::virtio::mmio::{Sinks, Transport};
    let mut input = Input(data);
    // The first 16 KiB of RAM: a length, then that many bytes.
    let mut ram = vec![0u8; 64 * 1024];
    let n = (input.u16() as usize).min(16 * 1024).min(input.0.len());
    ram[..n].copy_from_slice(&input.0[..n]);
    input.0 = &input.0[n..];
    let read_only = input.u8() & 1 != 0;
    let ram = std::sync::Arc::new(std::sync::Mutex::new(ram));
    let disk = FuzzDisk {
        bytes: vec![0x33; 64 * 512],
        read_only,
    };
    let mut t = Transport::new(
        Blk::new(disk, read_only),
        Sinks {
            mem: Box::new(FuzzRam(ram)),
            line: Box::new(|_| {}),
            problem: Box::new(|_| {}),
            more: Box::new(|| {}),
        },
    );
    // Bring it up as Linux does, with fuzzed features and rings.
    let f = input.u32();
    for (off, v) in [
        (0x070, 0),
        (0x070, 3),
        (0x024, 1),
        (0x020, 1),
        (0x024, 0),
        (0x020, f),
        (0x070, 11),
        (0x030, 0),
        (0x038, u32::from(input.u8())),
        (0x080, 0x4000_0000 + u32::from(input.u16())),
        (0x090, 0x4000_0000 + u32::from(input.u16())),
        (0x0a0, 0x4000_0000 + u32::from(input.u16())),
        (0x044, 1),
        (0x070, 15),
    ] {
        let _ = t.write(off, 4, u64::from(v));
    }
    let mut steps = 0;
    while !input.done() && steps < 256 {
        steps += 1;
        let op = input.u8();
        match op % 4 {
            0 | 1 => {
                let _ = t.write(0x050, 4, 0);
            }
            2 => t.poll(),
            _ => {
                let off = u64::from(input.u8()) * 4;
                let _ = t.write(off, 4, u64::from(input.u32()));
                let _ = t.read(off, 4);
            }
        }
    }
}

/// The virtio-net device of a hostile VM on a LAN with a well-behaved
/// receiver and a VM on another LAN: the input is the hostile VM's RAM (a
/// length, then up to 16 KiB of rings, descriptors and frames), then the
/// whether the receiver takes offloads (checksum, segmentation, merged
/// buffers: the switch passes them or finishes them in software), the
/// features, both queues' sizes and rings, and a sequence of
/// notifications, polls and register writes. Nothing panics, the work per
/// notification is bounded (at most [`TX_BUDGET`] frames leave per
/// serve), every frame the receiver gets is a legal one (an Ethernet
/// header at least, the MTU at most unless it took segmentation
/// offloads), and nothing ever reaches the VM on the other LAN.
///
/// [`TX_BUDGET`]: pivisor::virtio::net::TX_BUDGET
pub fn virtio_net(data: &[u8]) {
    use pivisor::net::lan::{Lan, LanPort};
    use pivisor::net::switch::PortSpec;
    use pivisor::virtio::mmio::{Sinks, Transport};
    use pivisor::virtio::net::{f as nf, Net, MAX_FRAME, MIN_FRAME, TX_BUDGET};
    use pivisor::virtio::offload::MAX_GSO_FRAME;
    use pivisor::virtio::GuestRam;
    let mut input = Input(data);
    let mut ram = vec![0u8; 64 * 1024];
    let n = (input.u16() as usize).min(16 * 1024).min(input.0.len());
    ram[..n].copy_from_slice(&input.0[..n]);
    input.0 = &input.0[n..];
    let offloads = input.u8() & 1 == 1;
    let rx_features = if offloads {
        nf::MAC
            | nf::MRG_RXBUF
            | nf::CSUM
            | nf::GUEST_CSUM
            | nf::GUEST_TSO4
            | nf::GUEST_TSO6
            | nf::HOST_TSO4
            | nf::HOST_TSO6
    } else {
        nf::MAC
    };
    let spec = |m: u8, lan: u16| PortSpec {
        mac: [2, 0, 0, 0, 0, m],
        lan,
        bridge: false,
    };
    // A clock that never moves: the hostile port floods its burst at most.
    let lan = std::sync::Arc::new(Lan::new(vec![spec(1, 0), spec(2, 0), spec(3, 1)], || 0));
    // The receiver (port 1) and the VM on lan 1 (port 2): RAM with a
    // receive ring of 8 buffers of 1526 bytes, live.
    let mut peers = Vec::new();
    for p in [1usize, 2] {
        let mem = std::sync::Arc::new(std::sync::Mutex::new(vec![0u8; 64 * 1024]));
        let port = lan.port(p).expect("port").clone();
        port.bind(Box::new(FuzzRam(mem.clone())), Box::new(|_| {}));
        let mut t = Transport::new(
            Net::new(
                port,
                LanPort {
                    lan: lan.clone(),
                    index: p,
                },
            ),
            Sinks {
                mem: Box::new(FuzzRam(mem.clone())),
                line: Box::new(|_| {}),
                problem: Box::new(|_| {}),
                more: Box::new(|| {}),
            },
        );
        let mut r = FuzzRam(mem);
        for i in 0..8u64 {
            let d = VIRTIO_RAM + 16 * i;
            let buf = VIRTIO_RAM + 0x2000 + 0x800 * i;
            r.write(d, &buf.to_le_bytes());
            r.write(d + 8, &1526u32.to_le_bytes());
            r.write(d + 12, &2u16.to_le_bytes());
            r.write(VIRTIO_RAM + 0x80 + 4 + 2 * i, &(i as u16).to_le_bytes());
        }
        r.write(VIRTIO_RAM + 0x82, &8u16.to_le_bytes());
        for (off, v) in [
            (0x070, 0u64),
            (0x070, 3),
            (0x024, 1),
            (0x020, 1),
            (0x024, 0),
            (0x020, rx_features),
            (0x070, 11),
            (0x030, 0),
            (0x038, 8),
            (0x080, VIRTIO_RAM),
            (0x090, VIRTIO_RAM + 0x80),
            (0x0a0, VIRTIO_RAM + 0x100),
            (0x044, 1),
            (0x070, 15),
        ] {
            let _ = t.write(off, 4, v);
        }
        peers.push(t);
    }
    let ram = std::sync::Arc::new(std::sync::Mutex::new(ram));
    let port = lan.port(0).expect("port").clone();
    port.bind(Box::new(FuzzRam(ram.clone())), Box::new(|_| {}));
    let mut t = Transport::new(
        Net::new(
            port,
            LanPort {
                lan: lan.clone(),
                index: 0,
            },
        ),
        Sinks {
            mem: Box::new(FuzzRam(ram)),
            line: Box::new(|_| {}),
            problem: Box::new(|_| {}),
            more: Box::new(|| {}),
        },
    );
    let f = input.u32();
    let mut regs = vec![
        (0x070, 0),
        (0x070, 3),
        (0x024, 1),
        (0x020, 1),
        (0x024, 0),
        (0x020, f),
        (0x070, 11),
    ];
    for q in 0..2u32 {
        regs.extend([
            (0x030, q),
            (0x038, u32::from(input.u8())),
            (0x080, 0x4000_0000 + u32::from(input.u16())),
            (0x090, 0x4000_0000 + u32::from(input.u16())),
            (0x0a0, 0x4000_0000 + u32::from(input.u16())),
            (0x044, 1),
        ]);
    }
    regs.push((0x070, 15));
    for (off, v) in regs {
        let _ = t.write(off, 4, u64::from(v));
    }
    let sent = |t: &Transport<Net<LanPort<std::sync::Arc<Lan>>>>| {
        t.device().port().counters.stats().tx_frames
    };
    let mut steps = 0;
    while !input.done() && steps < 256 {
        steps += 1;
        let before = sent(&t);
        match input.u8() % 5 {
            0 | 1 => {
                let _ = t.write(0x050, 4, 1);
            }
            2 => t.poll(),
            3 => {
                let _ = t.write(0x050, 4, 0);
            }
            _ => {
                let off = u64::from(input.u8()) * 4;
                let _ = t.write(off, 4, u64::from(input.u32()));
                let _ = t.read(off, 4);
            }
        }
        assert!(
            sent(&t) - before <= TX_BUDGET as u64,
            "more than a budget per serve"
        );
    }
    let rx = peers[0].device().port().counters.stats();
    assert!(rx.rx_bytes >= rx.rx_frames * u64::from(MIN_FRAME));
    let max = if offloads { MAX_GSO_FRAME } else { MAX_FRAME };
    assert!(rx.rx_bytes <= rx.rx_frames * u64::from(max));
    let other = peers[1].device().port().counters.stats();
    assert_eq!(
        (other.rx_frames, other.rx_bytes),
        (0, 0),
        "a frame crossed to another LAN"
    );
}
