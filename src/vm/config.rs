//! The human-editable VM configuration (`guests/*.conf`), parsed and
//! checked the same way by the bundle tool at build time and by the
//! hypervisor at boot.
//!
//! ```text
//! # one section per VM
//! [vm linux]
//! cores    = 0-3            # physical cores, one pinned vCPU each
//! memory   = 768M           # RAM from IPA 0 (a multiple of 2 MiB; past
//!                           # 0xfc000000 it continues at 4 GiB)
//! kernel   = Image          # a file in the bundle (arm64 Image format)
//! initrd   = rootfs.cpio.gz # optional
//! bootargs = console=ttyAMA0 earlycon
//! devices  = testdev        # devices the VM owns or sees emulated:
//!                           # testdev, mailbox, uart (emulated PL011),
//!                           # pl011 (the real one, passed through),
//!                           # counters (the exit-counter page),
//!                           # watchdog (an emulated SP805)
//! dtb-extra = extra.dtb     # optional: nodes added to the VM's tree
//! mailbox  = info clocks    # firmware property tag groups (default:
//!                           # info clocks sensors gpio; see
//!                           # devices::mailbox::policy::GROUPS)
//! serial   = 0x1234abcd     # board serial the VM sees (default: the real one)
//! mac      = 02:00:00:00:00:01  # MAC address the VM sees (default: the real one)
//! gpio-pins = 128 130       # expander pins `gpio-set` may drive (default:
//!                           # none; 131, 132 and 134 never)
//! policy   = restart 3      # on power-off, reset or crash: halt, restart,
//!                           # or restart up to N times (default: a reset
//!                           # restarts, power-off and crashes halt; see
//!                           # vm::restart)
//! disk     = sd:2, 512M     # a partition of the SD card as its virtio
//!                           # disk (/dev/vda), the size `make sd` gives
//!                           # it (default 256M); `sd:5, readonly` for a
//!                           # read-only one. Two VMs never share a
//!                           # writable partition; partition 1 (the
//!                           # firmware's boot partition) only read-only.
//! net      = lan0           # a virtio-net interface (eth0) on virtual LAN
//!                           # lan0 of the hypervisor's switch; `lan0,
//!                           # bridge` lets it send from MACs not its own
//!                           # (a router or bridge VM)
//! net-mac  = 02:00:00:00:00:05  # its MAC (default: 02:.. derived from the
//!                           # VM's name, the same on every boot)
//! net-ip   = 10.0.0.5/24    # the address its /init gives eth0, passed as
//!                           # `pivisor.ip=` on its command line (default
//!                           # 10.0.0.N/24, N the VM's place in the file)
//! passthrough = /soc/i2c@7e804000  # a device of the firmware's tree
//!                           # the VM owns (path, alias or unique node
//!                           # name; one line each, at most 8): its
//!                           # pages mapped at the same addresses, its
//!                           # SPIs hardware-linked, its node copied into
//!                           # the VM's tree. `, host`: a USB controller
//!                           # in host mode. A DMA master (SD hosts, USB,
//!                           # Ethernet, PCIe) also needs the next two:
//! trust    = dma            # the VM may own a DMA master: with no IOMMU
//!                           # it can then read and write all of RAM
//! (memory  = 256M, identity)  # RAM at guest-physical == host-physical,
//!                           # where its DMA masters reach (memory-at
//!                           # pins it)
//! backoff  = 100ms 10s      # a VM restarting within a second of its start
//!                           # more than 3 times in a row waits, from the
//!                           # first wait doubling to the longest (default
//!                           # 100ms 10s; `off`: never waits)
//! ```
//!
//! `dtb-extra` names a compiled device tree in the bundle whose root's
//! child nodes are appended to the tree the hypervisor generates (root
//! properties are ignored; nodes the hypervisor writes itself and the
//! GIC's phandle are refused).
//!
//! Optional: `memory-at = 0x20000000` pins the VM's RAM at that host
//! physical address (2 MiB-aligned) instead of letting the hypervisor
//! place it.

use super::restart::{BackoffConfig, RestartPolicy};
use crate::devices::mailbox::policy::Policy;
use alloc::vec::Vec;
use core::fmt;

/// Most VMs in one configuration.
pub const MAX_VMS: usize = 4;
use crate::platform::MAX_CORES;
/// RAM granularity: whole 2 MiB stage-2 blocks.
pub const MEMORY_ALIGN: u64 = 2 << 20;

/// Devices a VM can be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// The pivisor test device (ID, scratch and console registers).
    TestDev,
    /// The VideoCore mailbox, trap-and-emulated behind the VM's policy.
    Mailbox,
    /// An emulated PL011 at the real UART0's address (the console switch).
    Uart,
    /// The real PL011, passed through (mapped in stage-2, its interrupt
    /// hardware-linked). One VM at most; UART2-5 share its page and
    /// interrupt and go with it.
    Pl011,
    /// The exit-counter page (read-only; for benchmarks).
    Counters,
    /// An emulated SP805 watchdog: if the guest stops feeding it, the VM
    /// is handled as crashed (its restart policy decides).
    Watchdog,
    /// The fault-injection page (test bundles only: the VM can make the
    /// hypervisor panic on its core).
    FaultInjection,
}

impl Device {
    /// Every device, with its configuration name.
    pub const ALL: [(&'static str, Device); 7] = [
        ("testdev", Device::TestDev),
        ("mailbox", Device::Mailbox),
        ("uart", Device::Uart),
        ("pl011", Device::Pl011),
        ("counters", Device::Counters),
        ("watchdog", Device::Watchdog),
        ("fault-injection", Device::FaultInjection),
    ];

    /// The configuration name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, d)| *d == self)
            .map_or("?", |(n, _)| n)
    }
}

/// One VM as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmConfig<'a> {
    /// Name (letters, digits, '-' and '_', at most 15).
    pub name: &'a str,
    /// Physical cores, in vCPU order.
    pub cores: Vec<usize>,
    /// RAM bytes.
    pub memory: u64,
    /// Fixed host placement of the RAM, if given.
    pub memory_at: Option<u64>,
    /// Kernel file name in the bundle.
    pub kernel: &'a str,
    /// Initrd file name in the bundle.
    pub initrd: Option<&'a str>,
    /// Extra device tree nodes (a .dtb file name in the bundle).
    pub dtb_extra: Option<&'a str>,
    /// Kernel command line.
    pub bootargs: &'a str,
    /// Devices.
    pub devices: Vec<Device>,
    /// Which firmware property tags the VM may use (with `mailbox`).
    pub mailbox: Policy,
    /// The board serial number the VM sees (None: the real one).
    pub serial: Option<u64>,
    /// The MAC address the VM sees (None: the real one).
    pub mac: Option<[u8; 6]>,
    /// What happens when it powers off, resets or crashes.
    pub policy: RestartPolicy,
    /// How a restart loop is slowed down.
    pub backoff: BackoffConfig,
    /// Its disk: a partition of the SD card, as a virtio-blk device.
    pub disk: Option<DiskConfig>,
    /// Its network interface: a port of the hypervisor's switch.
    pub net: Option<NetConfig<'a>>,
    /// Devices of the firmware's tree it owns (`passthrough`).
    pub passthrough: Vec<Passthrough<'a>>,
    /// Its RAM is at guest-physical == host-physical (`memory = SIZE,
    /// identity`): what a DMA master it owns needs.
    pub identity: bool,
    /// `trust = dma`: it may own a DMA master, and so reach all of RAM.
    pub trust_dma: bool,
    /// Line of the `[vm ...]` header (for messages).
    pub line: usize,
}

impl VmConfig<'_> {
    /// The kernel command line VM `index` of its configuration gets: its
    /// `bootargs`, and `pivisor.ip=ADDR/LEN` for its /init when it has a
    /// network interface (there is no DHCP server on a pivisor LAN).
    pub fn command_line(&self, index: usize) -> alloc::string::String {
        let mut s = alloc::string::String::from(self.bootargs);
        if let Some(n) = &self.net {
            let (ip, len) = n.ip_for(index);
            if !s.is_empty() {
                s.push(' ');
            }
            s.push_str(&alloc::format!(
                "pivisor.ip={}.{}.{}.{}/{len}",
                ip[0],
                ip[1],
                ip[2],
                ip[3]
            ));
        }
        s
    }
}

/// A configuration problem, with the line it is on (0: whole file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line number, 0 if not about one line.
    pub line: usize,
    /// What is wrong.
    pub msg: alloc::string::String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: {}", self.line, self.msg)
        } else {
            f.write_str(&self.msg)
        }
    }
}

fn err(line: usize, msg: impl fmt::Display) -> ConfigError {
    ConfigError {
        line,
        msg: alloc::format!("{msg}"),
    }
}

/// Parses a size: decimal or 0x hex, with an optional K, M or G suffix.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mul) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 1u64 << 10),
        b'M' | b'm' => (&s[..s.len() - 1], 1 << 20),
        b'G' | b'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    parse_u64(num)?.checked_mul(mul)
}

/// Parses a decimal or 0x-prefixed hexadecimal number.
pub fn parse_u64(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) if !h.is_empty() => u64::from_str_radix(h, 16).ok(),
        Some(_) => None,
        None if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        None => None,
    }
}

/// Parses a MAC address `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut m = [0u8; 6];
    let mut parts = s.split(':');
    for b in m.iter_mut() {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(m)
}

/// Parses a configuration and checks it on its own (names, cores given to
/// two VMs, overlapping fixed placements). See [`check_fits`] for the
/// machine-dependent checks.
pub fn parse(text: &str) -> Result<Vec<VmConfig<'_>>, ConfigError> {
    let mut vms: Vec<VmConfig<'_>> = Vec::new();
    let mut cur: Option<Partial<'_>> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = match raw.find('#') {
            // A '#' inside a quoted bootargs value is kept.
            Some(p) if !raw[..p].contains('"') => &raw[..p],
            _ => raw,
        }
        .trim();
        if l.is_empty() {
            continue;
        }
        if let Some(h) = l.strip_prefix('[') {
            let h = h
                .strip_suffix(']')
                .ok_or_else(|| err(line, "section header without ']'"))?;
            let name = h.strip_prefix("vm ").map(str::trim).ok_or_else(|| {
                err(
                    line,
                    alloc::format!("unknown section '[{h}]' (expected [vm NAME])"),
                )
            })?;
            if !valid_name(name) {
                return Err(err(
                    line,
                    alloc::format!("VM name '{name}': use 1-15 letters, digits, '-' or '_'"),
                ));
            }
            if vms.iter().any(|v| v.name == name) || cur.as_ref().is_some_and(|c| c.name == name) {
                return Err(err(line, alloc::format!("VM name '{name}' is used twice")));
            }
            if let Some(c) = cur.take() {
                vms.push(c.finish()?);
            }
            if vms.len() == MAX_VMS {
                return Err(err(line, alloc::format!("more than {MAX_VMS} VMs")));
            }
            cur = Some(Partial::new(name, line));
            continue;
        }
        let (k, v) = l
            .split_once('=')
            .ok_or_else(|| err(line, alloc::format!("expected 'key = value', found '{l}'")))?;
        let c = cur
            .as_mut()
            .ok_or_else(|| err(line, "a setting before any [vm NAME] section"))?;
        c.set(k.trim(), v.trim(), line)?;
    }
    if let Some(c) = cur.take() {
        vms.push(c.finish()?);
    }
    if vms.is_empty() {
        return Err(err(
            0,
            "no [vm NAME] section: the configuration defines no VM",
        ));
    }
    for (i, a) in vms.iter().enumerate() {
        for b in &vms[..i] {
            if let Some(c) = a.cores.iter().find(|c| b.cores.contains(c)) {
                return Err(err(
                    a.line,
                    alloc::format!("core {c} is given to both '{}' and '{}'", b.name, a.name),
                ));
            }
            if a.devices.contains(&Device::Pl011) && b.devices.contains(&Device::Pl011) {
                return Err(err(
                    a.line,
                    alloc::format!(
                        "the PL011 is passed through to both '{}' and '{}' (one owner at most)",
                        b.name,
                        a.name
                    ),
                ));
            }
            if let (Some(x), Some(y)) = (a.disk, b.disk) {
                if x.partition == y.partition && !(x.readonly && y.readonly) {
                    return Err(err(
                        x.line,
                        alloc::format!(
                            "partition sd:{} is the disk of both '{}' and '{}' and one of them may write it (share it only read-only)",
                            x.partition, b.name, a.name
                        ),
                    ));
                }
            }
            if let (Some(x), Some(y)) = (a.net, b.net) {
                let j = vms.iter().position(|v| v.name == b.name).unwrap_or(0);
                if x.lan == y.lan && x.mac_for(a.name) == y.mac_for(b.name) {
                    return Err(err(
                        x.line,
                        alloc::format!(
                            "'{}' and '{}' have the same MAC {} on {}",
                            b.name,
                            a.name,
                            crate::net::MacFmt(x.mac_for(a.name)),
                            x.lan
                        ),
                    ));
                }
                if x.lan == y.lan && x.ip_for(i).0 == y.ip_for(j).0 {
                    let ip = x.ip_for(i).0;
                    return Err(err(
                        x.line,
                        alloc::format!(
                            "'{}' and '{}' have the same address {}.{}.{}.{} on {} (net-ip)",
                            b.name,
                            a.name,
                            ip[0],
                            ip[1],
                            ip[2],
                            ip[3],
                            x.lan
                        ),
                    ));
                }
            }
            if let (Some(x), Some(y)) = (a.memory_at, b.memory_at) {
                if x < y.saturating_add(b.memory) && y < x.saturating_add(a.memory) {
                    return Err(err(
                        a.line,
                        alloc::format!("the memory of '{}' and '{}' overlaps", b.name, a.name),
                    ));
                }
            }
        }
    }
    Ok(vms)
}

/// Checks a configuration against a machine with `cores` cores and
/// `ram` bytes available for guests.
pub fn check_fits(vms: &[VmConfig<'_>], cores: usize, ram: u64) -> Result<(), ConfigError> {
    for v in vms {
        if let Some(c) = v.cores.iter().find(|&&c| c >= cores) {
            return Err(err(
                v.line,
                alloc::format!(
                    "VM '{}': core {c} does not exist (this machine has {cores})",
                    v.name
                ),
            ));
        }
    }
    let total: u64 = vms.iter().map(|v| v.memory).fold(0, u64::saturating_add);
    if total > ram {
        return Err(err(
            0,
            alloc::format!(
                "the VMs need {} MiB of RAM, but only {} MiB is free for guests",
                total >> 20,
                ram >> 20
            ),
        ));
    }
    Ok(())
}

#[path = "config_keys.rs"]
mod keys;
use keys::{valid_name, Partial};
#[path = "config_io.rs"]
mod io;
pub use io::{parse_ip, DiskConfig, NetConfig, Passthrough, MAX_PARTITION, MAX_PASSTHROUGH};

#[cfg(test)]
#[path = "config_tests.rs"]
pub(crate) mod tests;
