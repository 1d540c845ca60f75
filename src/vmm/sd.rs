//! The SD card, the hypervisor's (issue 20: disks for VMs): found at boot
//! on the first controller where an SD memory card answers, EMMC2 (a Pi
//! 4's slot) before the Arasan (QEMU raspi4b's card; the Wi-Fi's SDIO on
//! a Pi 4, which answers no memory-card command and is left alone), its
//! partition table read. Every transfer takes the card's lock for one
//! bounded call of the driver (at most [`sdhci::MAX_BLOCKS`] blocks).

use super::firmware;
use crate::arch::cpu;
use crate::board::sdhci::{self, Card, Clock, Mmio32, SdError, Sdhci};
use crate::disk::mbr::{self, Partition};
use crate::dt::{bus, host::HostInfo};
use crate::region::Size;
use crate::sync::{Mutex, Once};
use alloc::string::String;
use alloc::vec::Vec;
use fdt::Fdt;
use log::{info, warn};

/// The generic counter, in microseconds.
pub struct CounterClock;

impl Clock for CounterClock {
    fn now_us(&mut self) -> u64 {
        let f = cpu::counter_freq().max(1);
        (u128::from(cpu::counter()) * 1_000_000 / u128::from(f)) as u64
    }
}

/// The card and where it is.
pub struct SdCard {
    host: Sdhci<Mmio32, CounterClock>,
    /// The controller's node.
    pub path: String,
    /// The card.
    pub card: Card,
    /// Its partitions (empty when the table could not be read).
    pub partitions: Vec<Partition>,
}

impl SdCard {
    /// Reads whole blocks at `lba` (see [`Sdhci::read`]).
    pub fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), SdError> {
        self.host.read(lba, buf)
    }
    /// Writes whole blocks at `lba` (see [`Sdhci::write`]).
    pub fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), SdError> {
        self.host.write(lba, buf)
    }
    /// Waits until the card has finished programming.
    pub fn flush(&mut self) -> Result<(), SdError> {
        self.host.wait_ready()
    }
}

static CARD: Once<Mutex<SdCard>> = Once::new();

/// The card, if one was found.
pub fn card() -> Option<&'static Mutex<SdCard>> {
    CARD.get()
}

/// The controllers, in the order they are tried: compatible, firmware
/// clock id, name.
pub(super) const CONTROLLERS: [(&str, u32, &str); 2] = [
    ("brcm,bcm2711-emmc2", 12, "EMMC2"),
    ("brcm,bcm2835-sdhci", 1, "Arasan SDHCI"),
];

/// Finds the card (boot core, after the firmware's mailbox, before the
/// VMs are built).
/// Controllers a VM owns (`owned`: their tree paths) are left alone.
pub fn probe(info: &HostInfo<'_>, owned: &[alloc::string::String]) {
    let Ok(fdt) = Fdt::new(info.tree) else {
        return;
    };
    for (compat, clock_id, name) in CONTROLLERS {
        for f in bus::find(&fdt, &|n| bus::is_compatible(n, compat)) {
            let Some((base, size)) = f.reg.filter(|_| f.enabled) else {
                continue;
            };
            if owned.contains(&f.path) {
                info!(
                    "sd: {} ({name}) belongs to a VM (passthrough); not probed",
                    f.path
                );
                continue;
            }
            if size < 0x100 {
                warn!(
                    "sd: {} ({name}): register block of {size:#x} bytes, too small",
                    f.path
                );
                continue;
            }
            let Some(hz) = firmware::clock_rate(clock_id) else {
                warn!(
                    "sd: {} ({name}): the firmware gives no clock rate (id {clock_id}); skipped",
                    f.path
                );
                continue;
            };
            // SAFETY: the controller's registers from the firmware's tree,
            // inside a peripheral window the EL2 map has as Device;
            // nothing else drives this controller.
            let regs = unsafe { Mmio32::new(base as usize) };
            let mut host = Sdhci::new(regs, CounterClock, hz);
            match host.init() {
                Ok(card) => {
                    let kind = if card.high_capacity {
                        "SDHC/SDXC"
                    } else {
                        "SDSC"
                    };
                    info!(
                        "sd: {kind} card of {} ({} sectors) on the {name} at {base:#x} ({}, base clock {} MHz)",
                        Size(card.sectors * 512),
                        card.sectors,
                        f.path,
                        hz / 1_000_000
                    );
                    let mut sd = SdCard {
                        host,
                        path: f.path,
                        card,
                        partitions: Vec::new(),
                    };
                    read_table(&mut sd);
                    CARD.call_once(|| Mutex::new(sd));
                    return;
                }
                Err(e) => info!("sd: {} ({name}): {e}", f.path),
            }
        }
    }
    info!("sd: no SD memory card found: VMs get no disks");
}

fn read_table(sd: &mut SdCard) {
    let sectors = sd.card.sectors;
    let host = &mut sd.host;
    let r = mbr::parse(sectors, &mut |lba, buf| host.read(lba, buf).is_ok());
    match r {
        Ok(parts) => {
            for p in &parts {
                info!(
                    "sd: partition {}: {} ({:#04x}), {} at sector {}{}",
                    p.number,
                    p.kind_name(),
                    p.kind,
                    Size(p.sectors * 512),
                    p.start,
                    if p.bootable { ", boot" } else { "" }
                );
            }
            sd.partitions = parts;
        }
        Err(e) => warn!("sd: the card's partition table: {e}; VMs get no disks"),
    }
}

/// The driver's own limit, for callers sizing transfers.
pub const MAX_BYTES: usize = sdhci::MAX_BLOCKS * sdhci::BLOCK;
