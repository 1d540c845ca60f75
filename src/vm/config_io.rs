//! A VM's I/O devices as configured: its disk (`disk = sd:N`) and its
//! network interface (`net = LAN`, `net-mac`, `net-ip`), parsed and
//! checked alone (the cross-VM checks are in `config::parse`).

use super::{parse_size, valid_name};

/// A VM's disk (`disk = sd:N[, readonly]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskConfig {
    /// The card's partition number (1-4 primary, 5 on logical).
    pub partition: u32,
    /// The guest may not write it.
    pub readonly: bool,
    /// Its size when `make sd` creates it (the hypervisor uses whatever
    /// the card's partition is).
    pub size: Option<u64>,
    /// The line it is on (for build-time errors).
    pub line: usize,
}

/// The highest partition number a configuration may name.
pub const MAX_PARTITION: u32 = 64;

impl DiskConfig {
    /// Parses `sd:N` with optional `, readonly` (or `, ro`) and `, SIZE`
    /// (for `make sd`, e.g. `512M`).
    pub fn parse(s: &str, line: usize) -> Result<Self, &'static str> {
        let mut parts = s.split(',').map(str::trim);
        let target = parts.next().unwrap_or("");
        let n = target
            .strip_prefix("sd:")
            .ok_or("expected sd:N (a partition of the SD card), e.g. sd:2")?;
        let partition: u32 = n
            .parse()
            .map_err(|_| "the partition must be a number, e.g. sd:2")?;
        if partition == 0 || partition > MAX_PARTITION {
            return Err("partitions are numbered 1-4 (primary) and 5 on (logical)");
        }
        let (mut readonly, mut size) = (false, None);
        for p in parts {
            match p {
                "readonly" | "ro" if !readonly => readonly = true,
                _ if size.is_none() && p.bytes().next().is_some_and(|b| b.is_ascii_digit()) => {
                    let b = parse_size(p).ok_or("the size must be a size, e.g. 512M")?;
                    if b < 1 << 20 || b % 512 != 0 {
                        return Err("the size must be at least 1M, in whole sectors");
                    }
                    size = Some(b);
                }
                _ => return Err("expected sd:N, then readonly and/or a size (e.g. sd:2, 512M)"),
            }
        }
        if partition == 1 && !readonly {
            return Err("partition 1 is the firmware's boot partition: only sd:1, readonly");
        }
        Ok(DiskConfig {
            partition,
            readonly,
            size,
            line,
        })
    }
}

/// A VM's network interface (`net = LAN[, bridge]`, `net-mac`, `net-ip`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetConfig<'a> {
    /// The virtual LAN's name (letters, digits, '-' and '_', at most 15).
    pub lan: &'a str,
    /// It may send from MACs not its own (a router or bridge VM).
    pub bridge: bool,
    /// Its MAC, if given (`net-mac`).
    pub mac: Option<[u8; 6]>,
    /// Its address and prefix length, if given (`net-ip`).
    pub ip: Option<([u8; 4], u8)>,
    /// The line it is on (for messages).
    pub line: usize,
}

impl<'a> NetConfig<'a> {
    /// Parses `LAN` with an optional `, bridge`.
    pub fn parse(s: &'a str, line: usize) -> Result<Self, &'static str> {
        let mut parts = s.split(',').map(str::trim);
        let lan = parts.next().unwrap_or("");
        if !valid_name(lan) {
            return Err("the LAN's name: letters, digits, '-' and '_', at most 15 (e.g. lan0)");
        }
        let mut bridge = false;
        for p in parts {
            match p {
                "bridge" if !bridge => bridge = true,
                _ => {
                    return Err(
                        "expected a LAN's name, then optionally 'bridge' (e.g. lan0, bridge)",
                    )
                }
            }
        }
        Ok(Self {
            lan,
            bridge,
            mac: None,
            ip: None,
            line,
        })
    }

    /// Its MAC: `net-mac`, or one derived from the VM's name.
    pub fn mac_for(&self, vm: &str) -> [u8; 6] {
        self.mac.unwrap_or_else(|| crate::net::mac_from_name(vm))
    }

    /// Its address: `net-ip`, or 10.0.0.N/24 for the VM at `index` (N =
    /// index + 1).
    pub fn ip_for(&self, index: usize) -> ([u8; 4], u8) {
        self.ip
            .unwrap_or(([10, 0, 0, (index as u8).wrapping_add(1)], 24))
    }
}

/// Parses `a.b.c.d/n` (n 1-30: room for two hosts at least).
pub fn parse_ip(s: &str) -> Option<([u8; 4], u8)> {
    let (addr, len) = s.trim().split_once('/')?;
    let len: u8 = len.parse().ok()?;
    if !(1..=30).contains(&len) {
        return None;
    }
    let mut out = [0u8; 4];
    let mut it = addr.split('.');
    for b in &mut out {
        let p = it.next()?;
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        *b = p.parse().ok()?;
    }
    it.next().is_none().then_some((out, len))
}

/// Most devices one VM may be given by `passthrough` lines.
pub const MAX_PASSTHROUGH: usize = 8;

/// A device of the firmware's tree given to the VM (`passthrough = NAME[,
/// host]`): resolved against the tree when the hypervisor builds the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Passthrough<'a> {
    /// A node path, an alias or a unique node name.
    pub name: &'a str,
    /// `host`: a dual-role USB controller in host mode (its copy gets
    /// `dr_mode = "host"`).
    pub host: bool,
    /// The line it is on.
    pub line: usize,
}

impl<'a> Passthrough<'a> {
    /// Parses `NAME` with an optional `, host`.
    pub fn parse(s: &'a str, line: usize) -> Result<Self, &'static str> {
        let mut parts = s.split(',').map(str::trim);
        let name = parts.next().unwrap_or("");
        if name.is_empty() || name.contains(char::is_whitespace) || name.len() > 200 {
            return Err(
                "expected a device-tree node path, alias or node name, e.g. /soc/i2c@7e804000",
            );
        }
        let mut host = false;
        for p in parts {
            match p {
                "host" => host = true,
                _ => return Err("the only option is 'host' (a USB controller in host mode)"),
            }
        }
        Ok(Self { name, host, line })
    }
}
