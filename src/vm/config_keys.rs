//! One VM section of the configuration, key by key: each value checked
//! as it is read, and the section checked whole when it ends.

use super::*;
use crate::devices::mailbox::policy::{EXPANDER_BASE, FORBIDDEN_PINS};

fn parse_cores(s: &str, line: usize) -> Result<Vec<usize>, ConfigError> {
    let mut v = Vec::new();
    for part in s.split([',', ' ']).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (Some(a), Some(b)) = (parse_u64(a), parse_u64(b)) else {
            return Err(err(
                line,
                alloc::format!("cores: '{part}' is not a core number or range"),
            ));
        };
        if a > b || b >= MAX_CORES as u64 {
            return Err(err(
                line,
                alloc::format!("cores: '{part}' is not within 0-{}", MAX_CORES - 1),
            ));
        }
        for c in a..=b {
            if v.contains(&(c as usize)) {
                return Err(err(line, alloc::format!("cores: core {c} is listed twice")));
            }
            v.push(c as usize);
        }
    }
    if v.is_empty() {
        return Err(err(line, "cores: at least one core is needed"));
    }
    Ok(v)
}

pub(super) fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 15
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[derive(Default)]
/// A VM section being read.
pub(super) struct Partial<'a> {
    pub(super) name: &'a str,
    line: usize,
    cores: Option<Vec<usize>>,
    memory: Option<u64>,
    memory_at: Option<u64>,
    kernel: Option<&'a str>,
    initrd: Option<&'a str>,
    dtb_extra: Option<&'a str>,
    bootargs: Option<&'a str>,
    devices: Option<Vec<Device>>,
    mailbox: Option<(Policy, usize)>,
    gpio_pins: Option<(u8, usize)>,
    serial: Option<(u64, usize)>,
    mac: Option<([u8; 6], usize)>,
    policy: Option<RestartPolicy>,
    backoff: Option<BackoffConfig>,
    disk: Option<DiskConfig>,
    net: Option<NetConfig<'a>>,
    net_mac: Option<([u8; 6], usize)>,
    net_ip: Option<(([u8; 4], u8), usize)>,
    passthrough: Vec<Passthrough<'a>>,
    identity: bool,
    trust_dma: Option<usize>,
}

impl<'a> Partial<'a> {
    /// A new section `[vm name]` at line `line`.
    pub(super) fn new(name: &'a str, line: usize) -> Self {
        Self {
            name,
            line,
            ..Default::default()
        }
    }

    /// The section, checked whole.
    pub(super) fn finish(self) -> Result<VmConfig<'a>, ConfigError> {
        let need = |what: &str| {
            err(
                self.line,
                alloc::format!("VM '{}' has no {what}", self.name),
            )
        };
        let devices = self.devices.unwrap_or_default();
        for (what, line) in [
            ("mailbox", self.mailbox.map(|m| m.1)),
            ("gpio-pins", self.gpio_pins.map(|m| m.1)),
            ("serial", self.serial.map(|m| m.1)),
            ("mac", self.mac.map(|m| m.1)),
        ] {
            if let Some(line) = line {
                if !devices.contains(&Device::Mailbox) {
                    return Err(err(
                        line,
                        alloc::format!(
                            "{what}: VM '{}' has no 'mailbox' device (devices = mailbox)",
                            self.name
                        ),
                    ));
                }
            }
        }
        let net = match (self.net, self.net_mac, self.net_ip) {
            (Some(n), mac, ip) => Some(NetConfig {
                mac: mac.map(|m| m.0),
                ip: ip.map(|i| i.0),
                ..n
            }),
            (None, Some((_, line)), _) | (None, None, Some((_, line))) => {
                return Err(err(
                    line,
                    alloc::format!(
                    "net-mac and net-ip need an interface: VM '{}' has no 'net' line (net = lan0)",
                    self.name
                ),
                ))
            }
            (None, None, None) => None,
        };
        Ok(VmConfig {
            name: self.name,
            cores: self.cores.ok_or_else(|| need("cores"))?,
            memory: self.memory.ok_or_else(|| need("memory"))?,
            memory_at: self.memory_at,
            kernel: self.kernel.ok_or_else(|| need("kernel"))?,
            initrd: self.initrd,
            dtb_extra: self.dtb_extra,
            bootargs: self.bootargs.unwrap_or(""),
            devices,
            mailbox: Policy {
                gpio_pins: self.gpio_pins.map_or(0, |p| p.0),
                ..self.mailbox.map_or_else(Policy::default, |m| m.0)
            },
            serial: self.serial.map(|s| s.0),
            mac: self.mac.map(|m| m.0),
            policy: self.policy.unwrap_or_default(),
            backoff: self.backoff.unwrap_or_default(),
            disk: self.disk,
            net,
            passthrough: self.passthrough,
            identity: self.identity,
            trust_dma: self.trust_dma.is_some(),
            line: self.line,
        })
    }

    /// One `key = value` line.
    pub(super) fn set(&mut self, key: &str, val: &'a str, line: usize) -> Result<(), ConfigError> {
        fn once<T>(slot: &mut Option<T>, v: T, key: &str, line: usize) -> Result<(), ConfigError> {
            if slot.is_some() {
                return Err(err(line, alloc::format!("'{key}' is given twice")));
            }
            *slot = Some(v);
            Ok(())
        }
        match key {
            "cores" => once(&mut self.cores, parse_cores(val, line)?, key, line),
            "memory" => {
                let (size, opt) = match val.split_once(',') {
                    Some((a, b)) => (a.trim(), Some(b.trim())),
                    None => (val, None),
                };
                match opt {
                    None => {}
                    Some("identity") => self.identity = true,
                    Some(o) => {
                        return Err(err(
                            line,
                            alloc::format!(
                                "memory: unknown option '{o}' (the only one is 'identity')"
                            ),
                        ))
                    }
                }
                let val = size;
                let m = parse_size(val)
                    .ok_or_else(|| err(line, alloc::format!("memory: '{val}' is not a size")))?;
                if m == 0 || !m.is_multiple_of(MEMORY_ALIGN) {
                    return Err(err(line, "memory: must be a non-zero multiple of 2M"));
                }
                if m > crate::vm::layout::MAX_RAM {
                    return Err(err(
                        line,
                        alloc::format!(
                            "memory: at most {} GiB (the guest-physical address space)",
                            crate::vm::layout::MAX_RAM >> 30
                        ),
                    ));
                }
                once(&mut self.memory, m, key, line)
            }
            "memory-at" => {
                let a = parse_u64(val).ok_or_else(|| {
                    err(line, alloc::format!("memory-at: '{val}' is not an address"))
                })?;
                if !a.is_multiple_of(MEMORY_ALIGN) {
                    return Err(err(line, "memory-at: must be 2M-aligned"));
                }
                once(&mut self.memory_at, a, key, line)
            }
            "kernel" | "initrd" | "dtb-extra" => {
                if val.is_empty() || val.len() > crate::vm::bundle::NAME_MAX || val.contains(' ') {
                    return Err(err(
                        line,
                        alloc::format!("{key}: '{val}' is not a bundle file name"),
                    ));
                }
                let slot = match key {
                    "kernel" => &mut self.kernel,
                    "initrd" => &mut self.initrd,
                    _ => &mut self.dtb_extra,
                };
                once(slot, val, key, line)
            }
            "bootargs" => {
                let v = val
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(val);
                once(&mut self.bootargs, v, key, line)
            }
            "devices" => {
                let mut ds = Vec::new();
                for w in val.split([',', ' ']).filter(|w| !w.is_empty()) {
                    let d = Device::ALL
                        .iter()
                        .find(|(n, _)| *n == w)
                        .map(|(_, d)| *d)
                        .ok_or_else(|| {
                            err(line, alloc::format!("devices: unknown device '{w}'"))
                        })?;
                    if ds.contains(&d) {
                        return Err(err(line, alloc::format!("devices: '{w}' is listed twice")));
                    }
                    ds.push(d);
                }
                if ds.contains(&Device::Uart) && ds.contains(&Device::Pl011) {
                    return Err(err(
                        line,
                        "devices: 'uart' (emulated) and 'pl011' (the real one) are both UART0; pick one",
                    ));
                }
                once(&mut self.devices, ds, key, line)
            }
            "mailbox" => {
                let p = Policy::parse(val).map_err(|w| {
                    err(
                        line,
                        alloc::format!(
                            "mailbox: unknown tag group '{w}' (groups: info, clocks, sensors, gpio, gpio-set, clocks-set; or none)"
                        ),
                    )
                })?;
                once(&mut self.mailbox, (p, line), key, line)
            }
            "gpio-pins" => {
                let mut pins = 0u8;
                for w in val.split([',', ' ', '\t']).filter(|w| !w.is_empty()) {
                    let k = parse_u64(w)
                        .and_then(|p| p.checked_sub(u64::from(EXPANDER_BASE)))
                        .filter(|&k| k < 8)
                        .ok_or_else(|| {
                            err(
                                line,
                                alloc::format!("gpio-pins: '{w}' is not an expander pin (128-135)"),
                            )
                        })?;
                    if FORBIDDEN_PINS & (1 << k) != 0 {
                        return Err(err(
                            line,
                            alloc::format!(
                                "gpio-pins: {w} drives the board's reset or the SD card's supply (131, 132 and 134 are never a VM's)"
                            ),
                        ));
                    }
                    pins |= 1 << k;
                }
                once(&mut self.gpio_pins, (pins, line), key, line)
            }
            "serial" => {
                let v = parse_u64(val)
                    .ok_or_else(|| err(line, alloc::format!("serial: '{val}' is not a number")))?;
                once(&mut self.serial, (v, line), key, line)
            }
            "mac" => {
                let m = parse_mac(val).ok_or_else(|| {
                    err(
                        line,
                        alloc::format!("mac: '{val}' is not aa:bb:cc:dd:ee:ff"),
                    )
                })?;
                once(&mut self.mac, (m, line), key, line)
            }
            "policy" => {
                let p = RestartPolicy::parse(val)
                    .map_err(|e| err(line, alloc::format!("policy: '{val}': {e}")))?;
                once(&mut self.policy, p, key, line)
            }
            "disk" => {
                let d = DiskConfig::parse(val, line)
                    .map_err(|e| err(line, alloc::format!("disk: '{val}': {e}")))?;
                once(&mut self.disk, d, key, line)
            }
            "net" => {
                let n = NetConfig::parse(val, line)
                    .map_err(|e| err(line, alloc::format!("net: '{val}': {e}")))?;
                once(&mut self.net, n, key, line)
            }
            "net-mac" => {
                let m = parse_mac(val)
                    .filter(|m| m[0] & 1 == 0 && *m != [0; 6])
                    .ok_or_else(|| {
                        err(
                            line,
                            alloc::format!(
                                "net-mac: '{val}' is not a unicast aa:bb:cc:dd:ee:ff (the first byte even, not all zero)"
                            ),
                        )
                    })?;
                once(&mut self.net_mac, (m, line), key, line)
            }
            "net-ip" => {
                let ip = parse_ip(val).ok_or_else(|| {
                    err(
                        line,
                        alloc::format!("net-ip: '{val}' is not an address with its prefix length, e.g. 10.0.0.5/24"),
                    )
                })?;
                once(&mut self.net_ip, (ip, line), key, line)
            }
            "backoff" => {
                let b = BackoffConfig::parse(val)
                    .map_err(|e| err(line, alloc::format!("backoff: '{val}': {e}")))?;
                once(&mut self.backoff, b, key, line)
            }
            "passthrough" => {
                let p = Passthrough::parse(val, line)
                    .map_err(|e| err(line, alloc::format!("passthrough: {e}")))?;
                if self.passthrough.len() == MAX_PASSTHROUGH {
                    return Err(err(
                        line,
                        alloc::format!("passthrough: at most {MAX_PASSTHROUGH} devices per VM"),
                    ));
                }
                if self.passthrough.iter().any(|q| q.name == p.name) {
                    return Err(err(
                        line,
                        alloc::format!("passthrough: '{}' is given twice", p.name),
                    ));
                }
                self.passthrough.push(p);
                Ok(())
            }
            "trust" => match val {
                "dma" => once(&mut self.trust_dma, line, key, line),
                _ => Err(err(
                    line,
                    alloc::format!("trust: '{val}' is not a trust (the only one is 'dma')"),
                )),
            },
            _ => Err(err(line, alloc::format!("unknown key '{key}'"))),
        }
    }
}
