//! A VM's devices, built from its configuration in one place for every
//! runner (the hypervisor, `crate::vmm::build`; pv-vmm under KVM): each
//! device model on the VM's bus at its [`super::layout`] address, the SPIs
//! it drives, and the handles the runner keeps (the UART it feeds input,
//! the watchdog it checks). What a device does outside itself (raise a
//! vGIC line, send a console byte, ask the firmware) goes through the
//! runner's [`Host`]. Pure.
//!
//! A new device: a [`Device`] variant (vm/config.rs), its model under
//! `src/devices/`, its address in vm/layout.rs, its node in vm/fdt.rs, and
//! one arm here (docs/architecture.md has the whole checklist).

use super::config::{Device, DiskConfig, NetConfig};
use super::layout::{
    testdev_irq_base, EXITCTR_IPA, FAULTINJ_IPA, MAILBOX_INTID, MAILBOX_IPA, TESTDEV_IPA,
    TESTDEV_SIZE, UART_INTID, UART_IPA, VIRTIO_BLK_INTID, VIRTIO_BLK_IPA, VIRTIO_NET_INTID,
    VIRTIO_NET_IPA, WATCHDOG_IPA,
};
use crate::devices::bus::{MmioBus, RegisterError};
use crate::devices::exitctr::{self, ExitCounters};
use crate::devices::faultinj::{self, FaultInjection};
use crate::devices::mailbox::{self, Mailbox};
use crate::devices::pl011::{self, Pl011};
use crate::devices::sp805::{self, Sp805};
use crate::devices::testdev::{self, TestDev};
use crate::devices::Shared;
use crate::sync::Mutex;
use crate::virtio::blk::{self, Blk};
use crate::virtio::mmio::{self as virtio_mmio, Sinks, Transport};
use crate::virtio::net::{self as vnet, Net, Port};
use crate::virtio::queue::QueueError;
use crate::virtio::GuestRam;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

/// What a VM's devices need from whoever runs the VM. Cheap to clone:
/// every device callback holds its own copy.
pub trait Host: Clone + Send + 'static {
    /// Sets the level of the VM's interrupt line `intid` (an SPI).
    fn set_line(&self, intid: u32, level: bool);
    /// A byte the VM's emulated UART transmits.
    fn uart_tx(&self, byte: u8);
    /// Whether the console has room for another byte of the VM's
    /// emulated UART now (its FR.TXFF).
    fn uart_room(&self) -> bool;
    /// A mailbox request word (MAIL1_WRT): the answer word, if any.
    fn firmware(&self, word: u32) -> Option<u32>;
    /// The exit-counter page's value: vCPU `vcpu`'s (None: all) count
    /// for selector `which`.
    fn exit_count(&self, vcpu: Option<usize>, which: u64) -> u64;
    /// The watchdog's clock now, in [`sp805::CLOCK_HZ`] ticks.
    fn watchdog_now(&self) -> u64;
    /// A line the test device prints.
    fn test_line(&self, line: &str);
    /// How many times the VM has booted (1 at first).
    fn boots(&self) -> u32;
    /// The VM's RAM, for its virtio devices (plain cacheable copies: no
    /// ACCESS_PLATFORM, so the guest's rings are cacheable too).
    fn ram(&self) -> Box<dyn GuestRam + Send>;
    /// The backend of disk `d` (a partition of the card), or why not.
    fn disk(&self, d: &DiskConfig) -> Result<Box<dyn blk::Backend>, String>;
    /// The VM's port on its LAN (`net`) and where its frames go, or why
    /// it cannot have one.
    fn net_port(&self, n: &NetConfig<'_>) -> Result<(Arc<Port>, Box<dyn vnet::Fabric>), String>;
    /// A problem with the VM's virtio queues (for its rate-limited log).
    fn virtio_problem(&self, device: &str, e: &QueueError);
    /// A virtio device has work left: poll it soon (on this VM's cores).
    fn io_more(&self);
    /// The fault-injection page's PANIC: the hypervisor panics on this
    /// core holding the locks other VMs need. Runners that have no such
    /// fault to show (pv-vmm, a process under KVM) refuse the device at
    /// build time instead.
    fn inject_fault(&self);
}

/// What the real PL011 (`devices = pl011`) becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RealUart {
    /// The real one, passed through: its page in the VM's stage 2 and its
    /// SPI hardware-linked (the hypervisor).
    PassThrough,
    /// An emulated PL011 in its place (pv-vmm: KVM cannot pass it through).
    Emulate,
}

/// A VM's devices, attached.
pub struct Devices {
    /// The emulated devices by guest-physical range.
    pub bus: MmioBus,
    /// The SPIs the VM owns (its devices' lines, passed-through ones).
    pub spis: Vec<u32>,
    /// Of those, the physical SPIs passed through (hardware-linked).
    pub hw_spis: Vec<u32>,
    /// The emulated UART, if any (the console feeds it input).
    pub uart: Option<Arc<Mutex<Pl011>>>,
    /// The watchdog, if any (the runner checks it for expiry).
    pub watchdog: Option<Arc<Mutex<Sp805>>>,
    /// The real PL011's page goes into the VM's stage 2 at
    /// [`UART_IPA`](super::layout::UART_IPA).
    pub pl011_passthrough: bool,
    /// The disk, if any (the runner polls it when work is left).
    pub blk: Option<Arc<Mutex<BlkDevice>>>,
    /// The network interface, if any (polled the same way).
    pub net: Option<Arc<Mutex<NetDevice>>>,
}

/// A VM's network interface as the runner holds it.
pub type NetDevice = Transport<Net<Box<dyn vnet::Fabric>>>;

/// A VM's disk as the runner holds it.
pub type BlkDevice = Transport<Blk<Box<dyn blk::Backend>>>;

/// Why a VM's devices could not be attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachError {
    /// Two devices' ranges collide.
    Register(RegisterError),
    /// Its disk cannot be had (why).
    Disk(String),
    /// Its network interface cannot be had (why).
    Net(String),
}

impl fmt::Display for AttachError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttachError::Register(e) => write!(f, "{e}"),
            AttachError::Disk(e) | AttachError::Net(e) => f.write_str(e),
        }
    }
}

impl From<RegisterError> for AttachError {
    fn from(e: RegisterError) -> Self {
        AttachError::Register(e)
    }
}

/// Builds VM `index`'s devices (`vcpus` vCPUs) from its configured
/// `devices`, in their configured order, its `disk` and its `net`
/// interface; `pl011` says what the real PL011 becomes.
#[allow(clippy::too_many_arguments)]
pub fn attach<H: Host>(
    devices: &[Device],
    disk: Option<&DiskConfig>,
    net: Option<&NetConfig<'_>>,
    index: usize,
    vcpus: usize,
    pl011: RealUart,
    host: H,
) -> Result<Devices, AttachError> {
    let mut d = Devices {
        bus: MmioBus::new(),
        spis: Vec::new(),
        hw_spis: Vec::new(),
        uart: None,
        watchdog: None,
        pl011_passthrough: false,
        blk: None,
        net: None,
    };

    for dev in devices {
        match dev {
            Device::TestDev => {
                let base = testdev_irq_base(index);
                d.spis.extend(base..base + testdev::LINES);
                let (h1, h2, h3) = (host.clone(), host.clone(), host.clone());
                let t = TestDev::new(
                    vcpus,
                    index,
                    Box::new(move |l| h1.test_line(l)),
                    base,
                    Box::new(move |intid, level| h2.set_line(intid, level)),
                )
                .with_boots(Box::new(move || h3.boots()));
                d.bus.register(TESTDEV_IPA, TESTDEV_SIZE, Box::new(t))?;
            }
            Device::Watchdog => {
                let h = host.clone();
                let w = Arc::new(Mutex::new(Sp805::new(Box::new(move || h.watchdog_now()))));
                d.bus.register(
                    WATCHDOG_IPA,
                    sp805::SIZE,
                    Box::new(Shared(w.clone(), "sp805")),
                )?;
                d.watchdog = Some(w);
            }
            Device::FaultInjection => {
                let h = host.clone();
                let f = FaultInjection::new(Box::new(move || h.inject_fault()));
                d.bus.register(FAULTINJ_IPA, faultinj::SIZE, Box::new(f))?;
            }
            Device::Counters => {
                let h = host.clone();
                let c = ExitCounters::new(
                    vcpus,
                    Box::new(move |vcpu, which| h.exit_count(vcpu, which)),
                );
                d.bus.register(EXITCTR_IPA, exitctr::SIZE, Box::new(c))?;
            }
            Device::Mailbox => {
                d.spis.push(MAILBOX_INTID);
                let (h1, h2) = (host.clone(), host.clone());
                let m = Mailbox::new(
                    Box::new(move |word| h1.firmware(word)),
                    Box::new(move |level| h2.set_line(MAILBOX_INTID, level)),
                );
                d.bus.register(MAILBOX_IPA, mailbox::SIZE, Box::new(m))?;
            }
            Device::Pl011 if pl011 == RealUart::PassThrough => {
                d.spis.push(UART_INTID);
                d.hw_spis.push(UART_INTID);
                d.pl011_passthrough = true;
            }
            Device::Uart | Device::Pl011 => {
                d.spis.push(UART_INTID);
                let (h1, h2, h3) = (host.clone(), host.clone(), host.clone());
                let u = Arc::new(Mutex::new(
                    Pl011::new(
                        Box::new(move |b| h1.uart_tx(b)),
                        Box::new(move |level| h2.set_line(UART_INTID, level)),
                    )
                    .with_room(Box::new(move || h3.uart_room())),
                ));
                d.bus
                    .register(UART_IPA, pl011::SIZE, Box::new(Shared(u.clone(), "pl011")))?;
                d.uart = Some(u);
            }
        }
    }
    if let Some(cfg) = disk {
        let backend = host.disk(cfg).map_err(AttachError::Disk)?;
        let (h1, h2, h3) = (host.clone(), host.clone(), host.clone());
        let t = Transport::new(
            Blk::new(backend, cfg.readonly),
            Sinks {
                mem: host.ram(),
                line: Box::new(move |level| h1.set_line(VIRTIO_BLK_INTID, level)),
                problem: Box::new(move |e| h2.virtio_problem("virtio-blk", e)),
                more: Box::new(move || h3.io_more()),
            },
        );
        let t = Arc::new(Mutex::new(t));
        d.spis.push(VIRTIO_BLK_INTID);
        d.bus.register(
            VIRTIO_BLK_IPA,
            virtio_mmio::SIZE,
            Box::new(Shared(t.clone(), "virtio-blk")),
        )?;
        d.blk = Some(t);
    }
    if let Some(n) = net {
        let (port, fabric) = host.net_port(n).map_err(AttachError::Net)?;
        let h0 = host.clone();
        port.bind(
            host.ram(),
            Box::new(move |e| h0.virtio_problem("virtio-net", e)),
        );
        let (h1, h2, h3) = (host.clone(), host.clone(), host.clone());
        let t = Transport::new(
            Net::new(port, fabric),
            Sinks {
                mem: host.ram(),
                line: Box::new(move |level| h1.set_line(VIRTIO_NET_INTID, level)),
                problem: Box::new(move |e| h2.virtio_problem("virtio-net", e)),
                more: Box::new(move || h3.io_more()),
            },
        );
        let t = Arc::new(Mutex::new(t));
        d.spis.push(VIRTIO_NET_INTID);
        d.bus.register(
            VIRTIO_NET_IPA,
            virtio_mmio::SIZE,
            Box::new(Shared(t.clone(), "virtio-net")),
        )?;
        d.net = Some(t);
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;
    use std::sync::Mutex as StdMutex;
    use std::vec;

    /// Records what the devices ask of their runner.
    #[derive(Clone, Default)]
    struct Rec(Arc<StdMutex<Vec<String>>>);

    impl Host for Rec {
        fn set_line(&self, intid: u32, level: bool) {
            self.0.lock().unwrap().push(format!("line {intid} {level}"));
        }
        fn uart_tx(&self, byte: u8) {
            self.0.lock().unwrap().push(format!("tx {byte}"));
        }
        fn uart_room(&self) -> bool {
            true
        }
        fn firmware(&self, word: u32) -> Option<u32> {
            self.0.lock().unwrap().push(format!("fw {word:#x}"));
            Some(word)
        }
        fn exit_count(&self, vcpu: Option<usize>, which: u64) -> u64 {
            vcpu.map_or(100, |v| v as u64) + which
        }
        fn watchdog_now(&self) -> u64 {
            0
        }
        fn test_line(&self, line: &str) {
            self.0.lock().unwrap().push(format!("test {line}"));
        }
        fn boots(&self) -> u32 {
            1
        }
        fn inject_fault(&self) {
            self.0.lock().unwrap().push("fault".into());
        }
        fn ram(&self) -> Box<dyn GuestRam + Send> {
            Box::new(NoRam)
        }
        fn disk(&self, d: &DiskConfig) -> Result<Box<dyn blk::Backend>, String> {
            if d.partition == 9 {
                return Err("the card has no partition 9".into());
            }
            Ok(Box::new(Zeros))
        }
        fn virtio_problem(&self, device: &str, e: &QueueError) {
            self.0.lock().unwrap().push(format!("{device}: {e}"));
        }
        fn net_port(
            &self,
            n: &NetConfig<'_>,
        ) -> Result<(Arc<Port>, Box<dyn vnet::Fabric>), String> {
            if n.lan != "lan0" {
                return Err(format!("no LAN {}", n.lan));
            }
            let lan = Arc::new(crate::net::lan::Lan::new(
                vec![crate::net::switch::PortSpec {
                    mac: n.mac_for("x"),
                    lan: 0,
                    bridge: false,
                }],
                || 0,
            ));
            let port = lan.port(0).unwrap().clone();
            Ok((port, Box::new(crate::net::lan::LanPort { lan, index: 0 })))
        }
        fn io_more(&self) {
            self.0.lock().unwrap().push("more".into());
        }
    }

    struct NoRam;
    impl GuestRam for NoRam {
        fn contains(&self, _: u64, _: u64) -> bool {
            false
        }
        fn read(&mut self, _: u64, _: &mut [u8]) -> bool {
            false
        }
        fn write(&mut self, _: u64, _: &[u8]) -> bool {
            false
        }
    }

    struct Zeros;
    impl blk::Backend for Zeros {
        fn sectors(&self) -> u64 {
            8
        }
        fn read(&mut self, _: u64, b: &mut [u8]) -> Result<(), blk::IoError> {
            b.fill(0);
            Ok(())
        }
        fn write(&mut self, _: u64, _: &[u8]) -> Result<(), blk::IoError> {
            Ok(())
        }
        fn flush(&mut self) -> Result<(), blk::IoError> {
            Ok(())
        }
        fn serial(&self) -> [u8; 20] {
            [0; 20]
        }
    }

    #[test]
    fn every_device_lands_at_its_address_with_its_lines() {
        let all = [
            Device::TestDev,
            Device::Watchdog,
            Device::Counters,
            Device::Mailbox,
            Device::Uart,
            Device::FaultInjection,
        ];
        let h = Rec::default();
        let mut d = attach(&all, None, None, 1, 2, RealUart::PassThrough, h.clone()).unwrap();
        for (ipa, name) in [
            (TESTDEV_IPA, "pivisor-test"),
            (WATCHDOG_IPA, "sp805"),
            (EXITCTR_IPA, "exit counters"),
            (MAILBOX_IPA, "mailbox"),
            (UART_IPA, "pl011"),
            (FAULTINJ_IPA, "fault injection"),
        ] {
            assert_eq!(d.bus.device_name(ipa), Some(name), "{ipa:#x}");
        }
        let base = testdev_irq_base(1);
        let mut want: Vec<u32> = (base..base + testdev::LINES).collect();
        want.extend([MAILBOX_INTID, UART_INTID]);
        assert_eq!(d.spis, want);
        assert!(d.hw_spis.is_empty() && !d.pl011_passthrough);
        assert!(d.uart.is_some() && d.watchdog.is_some());
        // The counter page asks the host.
        assert_eq!(d.bus.dispatch(EXITCTR_IPA + 0x108, 8, None), Ok(101));
        assert_eq!(d.bus.dispatch(EXITCTR_IPA + 0x280 + 0x10, 8, None), Ok(3));
        // The fault page asks the host only with its key.
        assert!(d.bus.dispatch(FAULTINJ_IPA + 4, 4, Some(1)).is_err());
        assert!(!h.0.lock().unwrap().iter().any(|l| l == "fault"));
        d.bus
            .dispatch(FAULTINJ_IPA + 4, 4, Some(faultinj::PANIC_KEY.into()))
            .unwrap();
        assert!(h.0.lock().unwrap().iter().any(|l| l == "fault"));
    }

    #[test]
    fn the_real_pl011_is_passed_through_or_emulated() {
        let h = Rec::default();
        let d = attach(
            &[Device::Pl011],
            None,
            None,
            0,
            1,
            RealUart::PassThrough,
            h.clone(),
        )
        .unwrap();
        assert_eq!(
            (d.spis.clone(), d.hw_spis.clone()),
            (vec![UART_INTID], vec![UART_INTID])
        );
        assert!(d.pl011_passthrough && d.uart.is_none());
        assert_eq!(d.bus.device_name(UART_IPA), None, "mapped, not emulated");
        let mut e = attach(
            &[Device::Pl011],
            None,
            None,
            0,
            1,
            RealUart::Emulate,
            h.clone(),
        )
        .unwrap();
        assert!(!e.pl011_passthrough && e.uart.is_some() && e.hw_spis.is_empty());
        // A byte written to the emulated UART reaches the host.
        e.bus.dispatch(UART_IPA, 4, Some(u64::from(b'x'))).unwrap();
        assert!(h.0.lock().unwrap().iter().any(|l| l == "tx 120"));
    }

    #[test]
    fn a_disk_is_a_virtio_mmio_device_on_its_line() {
        let h = Rec::default();
        let cfg = DiskConfig {
            partition: 2,
            readonly: true,
            size: None,
            line: 3,
        };
        let mut d = attach(
            &[Device::TestDev],
            Some(&cfg),
            None,
            0,
            1,
            RealUart::Emulate,
            h.clone(),
        )
        .unwrap();
        assert_eq!(d.bus.device_name(VIRTIO_BLK_IPA), Some("virtio-blk"));
        assert_eq!(d.spis.last(), Some(&VIRTIO_BLK_INTID));
        assert!(d.blk.is_some());
        // Magic "virt", version 2, device 2 (block).
        assert_eq!(d.bus.dispatch(VIRTIO_BLK_IPA, 4, None), Ok(0x7472_6976));
        assert_eq!(d.bus.dispatch(VIRTIO_BLK_IPA + 8, 4, None), Ok(2));
        // Read-only: the RO feature is offered.
        assert_eq!(
            d.bus.dispatch(VIRTIO_BLK_IPA + 0x10, 4, None).unwrap() & (1 << 5),
            1 << 5
        );
        let bad = DiskConfig {
            partition: 9,
            ..cfg
        };
        assert_eq!(
            attach(&[], Some(&bad), None, 0, 1, RealUart::Emulate, h).err(),
            Some(AttachError::Disk("the card has no partition 9".into()))
        );
    }

    #[test]
    fn a_network_interface_is_a_virtio_mmio_device_on_its_line() {
        let h = Rec::default();
        let n = NetConfig {
            lan: "lan0",
            bridge: false,
            mac: Some([2, 0, 0, 0, 0, 7]),
            ip: None,
            line: 4,
        };
        let mut d = attach(&[], None, Some(&n), 0, 1, RealUart::Emulate, h.clone()).unwrap();
        assert_eq!(d.bus.device_name(VIRTIO_NET_IPA), Some("virtio-net"));
        assert_eq!(d.spis, vec![VIRTIO_NET_INTID]);
        assert!(d.net.is_some());
        // Device 1 (network), its MAC in the configuration space.
        assert_eq!(d.bus.dispatch(VIRTIO_NET_IPA + 8, 4, None), Ok(1));
        assert_eq!(d.bus.dispatch(VIRTIO_NET_IPA + 0x105, 1, None), Ok(7));
        let other = NetConfig { lan: "lan9", ..n };
        assert_eq!(
            attach(&[], None, Some(&other), 0, 1, RealUart::Emulate, h).err(),
            Some(AttachError::Net("no LAN lan9".into()))
        );
    }

    #[test]
    fn a_device_twice_is_refused() {
        let r = attach(
            &[Device::Mailbox, Device::Mailbox],
            None,
            None,
            0,
            1,
            RealUart::Emulate,
            Rec::default(),
        );
        assert!(matches!(
            r,
            Err(AttachError::Register(RegisterError::Overlaps { .. }))
        ));
    }
}
