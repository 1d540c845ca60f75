//! The device tree each VM boots with, generated to describe exactly that
//! VM: its RAM at IPA 0, its vCPUs (enable-method psci), PSCI over HVC, the
//! GIC-400 at the BCM2711 addresses (CPU interface 0x2000 long: GICC_DIR is
//! in its second page), the architected timer, /chosen, and only the
//! devices the VM owns or sees emulated.

use super::config::Device;
use crate::dt::writer::{FdtWriter, WriteError};
use alloc::format;
use alloc::vec::Vec;

/// The GIC's phandle.
const GIC_PHANDLE: u32 = 1;
/// GIC interrupt specifier: PPI.
const GIC_PPI: u32 = 1;
/// IRQ_TYPE_LEVEL_LOW, as the bcm2711 tree gives the timer.
const LEVEL_LOW: u32 = 8;

/// GIC-400 distributor IPA (BCM2711).
pub const GICD_IPA: u64 = 0xff84_1000;
/// GIC-400 CPU interface IPA (BCM2711); 0x2000 long.
pub const GICC_IPA: u64 = 0xff84_2000;
/// The pivisor test device's IPA and size.
pub const TESTDEV_IPA: u64 = 0xfc00_0000;
/// The pivisor test device's size.
pub const TESTDEV_SIZE: u64 = 0x1000;

/// What the tree describes.
#[derive(Debug, Clone, Copy)]
pub struct VmTree<'a> {
    /// VM name (in `model`).
    pub name: &'a str,
    /// vCPUs.
    pub vcpus: usize,
    /// RAM bytes at IPA 0.
    pub ram: u64,
    /// Kernel command line.
    pub bootargs: &'a str,
    /// Initrd IPA range.
    pub initrd: Option<(u64, u64)>,
    /// Devices.
    pub devices: &'a [Device],
}

fn reg(addr: u64, size: u64) -> [u32; 4] {
    [
        (addr >> 32) as u32,
        addr as u32,
        (size >> 32) as u32,
        size as u32,
    ]
}

/// Writes the tree.
pub fn build(t: &VmTree<'_>) -> Result<Vec<u8>, WriteError> {
    let mut w = FdtWriter::new();
    w.begin_node("")?;
    w.property_string("model", &format!("pivisor VM {} (Raspberry Pi 4)", t.name))?;
    w.property_strings("compatible", &["raspberrypi,4-model-b", "brcm,bcm2711"])?;
    w.property_u32("#address-cells", 2)?;
    w.property_u32("#size-cells", 2)?;
    w.property_u32("interrupt-parent", GIC_PHANDLE)?;

    w.begin_node("chosen")?;
    w.property_string("bootargs", t.bootargs)?;
    if let Some((start, size)) = t.initrd {
        w.property_u64("linux,initrd-start", start)?;
        w.property_u64("linux,initrd-end", start + size)?;
    }
    w.end_node()?;

    w.begin_node("memory@0")?;
    w.property_string("device_type", "memory")?;
    w.property_cells("reg", &reg(0, t.ram))?;
    w.end_node()?;

    w.begin_node("cpus")?;
    w.property_u32("#address-cells", 1)?;
    w.property_u32("#size-cells", 0)?;
    for i in 0..t.vcpus {
        w.begin_node(&format!("cpu@{i}"))?;
        w.property_string("device_type", "cpu")?;
        w.property_string("compatible", "arm,cortex-a72")?;
        w.property_u32("reg", i as u32)?;
        w.property_string("enable-method", "psci")?;
        w.end_node()?;
    }
    w.end_node()?;

    w.begin_node("psci")?;
    w.property_strings("compatible", &["arm,psci-1.0", "arm,psci-0.2"])?;
    w.property_string("method", "hvc")?;
    w.end_node()?;

    w.begin_node(&format!("interrupt-controller@{GICD_IPA:x}"))?;
    w.property_string("compatible", "arm,gic-400")?;
    w.property_u32("#interrupt-cells", 3)?;
    w.property_u32("#address-cells", 0)?;
    w.property_empty("interrupt-controller")?;
    let mut regs = Vec::new();
    regs.extend_from_slice(&reg(GICD_IPA, 0x1000));
    regs.extend_from_slice(&reg(GICC_IPA, 0x2000));
    w.property_cells("reg", &regs)?;
    w.property_u32("phandle", GIC_PHANDLE)?;
    w.end_node()?;

    // Secure phys, non-secure phys, virtual, hypervisor: PPIs 13, 14, 11,
    // 10 as in the bcm2711 tree, targeted at this VM's vCPUs.
    let flags = ((((1u32 << t.vcpus.min(8)) - 1) & 0xff) << 8) | LEVEL_LOW;
    w.begin_node("timer")?;
    w.property_string("compatible", "arm,armv8-timer")?;
    let mut irqs = Vec::new();
    for ppi in [13, 14, 11, 10] {
        irqs.extend_from_slice(&[GIC_PPI, ppi, flags]);
    }
    w.property_cells("interrupts", &irqs)?;
    w.end_node()?;

    for d in t.devices {
        match d {
            Device::TestDev => {
                w.begin_node(&format!("pivisor-test@{TESTDEV_IPA:x}"))?;
                w.property_string("compatible", "pivisor,test-device")?;
                w.property_cells("reg", &reg(TESTDEV_IPA, TESTDEV_SIZE))?;
                w.end_node()?;
            }
        }
    }
    w.end_node()?;
    w.finish()
}
