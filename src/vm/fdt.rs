//! The device tree each VM boots with, generated to describe exactly that
//! VM: its RAM at IPA 0, its vCPUs (enable-method psci), PSCI over HVC, the
//! GIC-400 at the BCM2711 addresses (CPU interface 0x2000 long: GICC_DIR is
//! in its second page), the architected timer, /chosen, and only the
//! devices the VM owns or sees emulated.

use super::config::Device;
use crate::dt::blob::{self, Event};
use crate::dt::writer::{FdtWriter, WriteError};
use crate::dt::DtError;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Why a VM's tree could not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeError {
    /// The writer refused (a bug, or a hostile name in the extra nodes).
    Write(WriteError),
    /// The extra-nodes blob is not a valid device tree.
    Extra(DtError),
    /// The extra nodes clash with what the hypervisor generates.
    Clash(String),
}

impl From<WriteError> for TreeError {
    fn from(e: WriteError) -> Self {
        TreeError::Write(e)
    }
}

impl From<DtError> for TreeError {
    fn from(e: DtError) -> Self {
        TreeError::Extra(e)
    }
}

impl fmt::Display for TreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TreeError::Write(e) => write!(f, "device tree writer: {e}"),
            TreeError::Extra(e) => write!(f, "dtb-extra is not a valid device tree: {e}"),
            TreeError::Clash(m) => write!(f, "dtb-extra: {m}"),
        }
    }
}

/// Root children the hypervisor writes itself (by name before '@').
const GENERATED: [&str; 13] = [
    "soc",
    "aliases",
    "clk-uart",
    "clk-watchdog",
    "watchdog",
    "pivisor-exit-counters",
    "chosen",
    "memory",
    "cpus",
    "psci",
    "interrupt-controller",
    "timer",
    "pivisor-test",
];

/// The GIC's phandle.
const GIC_PHANDLE: u32 = 1;
/// The mailbox's phandle.
const MBOX_PHANDLE: u32 = 2;
/// The firmware clocks' phandle.
const FW_CLOCKS_PHANDLE: u32 = 3;
/// The UART clock's phandle.
const UART_CLK_PHANDLE: u32 = 4;
/// The watchdog clock's phandle.
const WDOG_CLK_PHANDLE: u32 = 5;
/// Phandles below this are the hypervisor's (extra nodes may not use them).
const RESERVED_PHANDLES: u32 = 16;
/// The /soc bus window: VideoCore bus 0x7e000000 is IPA 0xfe000000, as on
/// a Pi 4 in low-peripheral mode.
const SOC_BUS: u32 = 0x7e00_0000;
/// The IPA of the /soc bus window.
pub const SOC_IPA: u64 = 0xfe00_0000;
/// The /soc bus window's size.
const SOC_SIZE: u32 = 0x0180_0000;
/// The mailbox registers' IPA (bus 0x7e00b880).
pub const MAILBOX_IPA: u64 = 0xfe00_b880;
/// The mailbox's INTID (GIC_SPI 0x21 in the bcm2711 tree).
pub const MAILBOX_INTID: u32 = 65;
/// The PL011 UART0's IPA (bus 0x7e201000).
pub const UART_IPA: u64 = 0xfe20_1000;
/// The PL011's INTID (GIC_SPI 0x79 in the bcm2711 tree; UART2-5 share it).
pub const UART_INTID: u32 = 153;
/// The UART clock the VM's tree gives (uartclk and apb_pclk).
pub const UART_CLOCK_HZ: u32 = 48_000_000;
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
/// The exit-counter page's IPA (its size: devices::exitctr::SIZE).
pub const EXITCTR_IPA: u64 = 0xfc00_1000;
/// The SP805 watchdog's IPA (its size: devices::sp805::SIZE).
pub const WATCHDOG_IPA: u64 = 0xfc00_2000;
/// GIC interrupt specifier: SPI.
const GIC_SPI: u32 = 0;
/// IRQ_TYPE_LEVEL_HIGH.
const LEVEL_HIGH: u32 = 4;

/// The first INTID of VM `index`'s test device lines: SPI 64 onwards,
/// [`crate::devices::testdev::LINES`] per VM, so that no two VMs use
/// the same numbers (a VM touching another's numbers must see nothing).
pub fn testdev_irq_base(index: usize) -> u32 {
    96 + crate::devices::testdev::LINES * (index as u32 % 16)
}

/// What the tree describes.
#[derive(Debug, Clone, Copy)]
pub struct VmTree<'a> {
    /// VM name (in `model`).
    pub name: &'a str,
    /// The VM's index in the configuration (picks its test device's
    /// interrupt lines).
    pub index: usize,
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
    /// A device tree whose root's child nodes are appended (`dtb-extra`).
    pub extra: Option<&'a [u8]>,
}

fn reg(addr: u64, size: u64) -> [u32; 4] {
    [
        (addr >> 32) as u32,
        addr as u32,
        (size >> 32) as u32,
        size as u32,
    ]
}

/// Copies the root's children of `extra` into `w` (root properties are
/// ignored), refusing nodes the hypervisor generates and the GIC's phandle.
fn graft(w: &mut FdtWriter, extra: &[u8]) -> Result<(), TreeError> {
    blob::walk(extra, &mut |e| -> Result<(), TreeError> {
        match e {
            Event::Begin(_, 0) | Event::End(0) => Ok(()),
            Event::Prop(..) if w.depth() == 1 => Ok(()),
            Event::Begin(name, depth) => {
                let base = name.split('@').next().unwrap_or(name);
                if depth == 1 && GENERATED.contains(&base) {
                    return Err(TreeError::Clash(format!(
                        "node /{name} is generated by pivisor"
                    )));
                }
                Ok(w.begin_node(name)?)
            }
            Event::Prop(name, value) => {
                if name == "phandle" {
                    let p = value.try_into().map(u32::from_be_bytes).unwrap_or(0);
                    if p < RESERVED_PHANDLES {
                        return Err(TreeError::Clash(format!(
                            "phandle {p} is pivisor's (1-{} are reserved; the GIC's is {GIC_PHANDLE})",
                            RESERVED_PHANDLES - 1
                        )));
                    }
                }
                Ok(w.property(name, value)?)
            }
            Event::End(_) => Ok(w.end_node()?),
        }
    })
}

/// The /soc bus as on a Pi 4 (same bus addresses, same `dma-ranges`: the
/// VideoCore sees the VM's low 1 GiB at bus 0xc0000000), holding the
/// devices Linux expects there: the mailbox and the firmware node with
/// its clock and GPIO-expander children.
fn soc(w: &mut FdtWriter, t: &VmTree<'_>) -> Result<(), TreeError> {
    use crate::devices::mailbox::property::BCM2711_DMA as DMA;
    w.begin_node("soc")?;
    w.property_string("compatible", "simple-bus")?;
    w.property_u32("#address-cells", 1)?;
    w.property_u32("#size-cells", 1)?;
    w.property_cells("ranges", &[SOC_BUS, 0, SOC_IPA as u32, SOC_SIZE])?;
    w.property_cells(
        "dma-ranges",
        &[
            DMA.bus as u32,
            (DMA.ipa >> 32) as u32,
            DMA.ipa as u32,
            DMA.size as u32,
        ],
    )?;
    if t.devices.contains(&Device::Mailbox) {
        let bus = (MAILBOX_IPA - SOC_IPA) as u32 + SOC_BUS;
        w.begin_node(&format!("mailbox@{bus:x}"))?;
        w.property_string("compatible", "brcm,bcm2835-mbox")?;
        w.property_cells("reg", &[bus, crate::devices::mailbox::SIZE as u32])?;
        w.property_cells("interrupts", &[GIC_SPI, MAILBOX_INTID - 32, LEVEL_HIGH])?;
        w.property_u32("#mbox-cells", 0)?;
        w.property_u32("phandle", MBOX_PHANDLE)?;
        w.end_node()?;

        w.begin_node("firmware")?;
        w.property_strings(
            "compatible",
            &["raspberrypi,bcm2835-firmware", "simple-mfd"],
        )?;
        w.property_u32("#address-cells", 1)?;
        w.property_u32("#size-cells", 1)?;
        w.property_u32("mboxes", MBOX_PHANDLE)?;
        w.property_empty("dma-ranges")?;
        w.begin_node("clocks")?;
        w.property_string("compatible", "raspberrypi,firmware-clocks")?;
        w.property_u32("#clock-cells", 1)?;
        w.property_u32("phandle", FW_CLOCKS_PHANDLE)?;
        w.end_node()?;
        w.begin_node("gpio")?;
        w.property_string("compatible", "raspberrypi,firmware-gpio")?;
        w.property_empty("gpio-controller")?;
        w.property_u32("#gpio-cells", 2)?;
        w.end_node()?;
        w.end_node()?;
    }
    if has_uart(t) {
        let bus = uart_bus();
        w.begin_node(&format!("serial@{bus:x}"))?;
        w.property_strings("compatible", &["arm,pl011", "arm,primecell"])?;
        w.property_cells("reg", &[bus, 0x200])?;
        w.property_cells("interrupts", &[GIC_SPI, UART_INTID - 32, LEVEL_HIGH])?;
        w.property_cells("clocks", &[UART_CLK_PHANDLE, UART_CLK_PHANDLE])?;
        w.property_strings("clock-names", &["uartclk", "apb_pclk"])?;
        w.property_u32("arm,primecell-periphid", 0x0024_1011)?;
        w.end_node()?;
    }
    w.end_node()?;
    Ok(())
}

/// Whether the VM has a PL011 (emulated or the real one: the guest sees
/// the same node either way).
fn has_uart(t: &VmTree<'_>) -> bool {
    t.devices
        .iter()
        .any(|d| matches!(d, Device::Uart | Device::Pl011))
}

/// The UART's address on the /soc bus.
fn uart_bus() -> u32 {
    (UART_IPA - SOC_IPA) as u32 + SOC_BUS
}

/// Writes the tree.
pub fn build(t: &VmTree<'_>) -> Result<Vec<u8>, TreeError> {
    let mut w = FdtWriter::new();
    w.begin_node("")?;
    w.property_string("model", &format!("pivisor VM {} (Raspberry Pi 4)", t.name))?;
    w.property_strings("compatible", &["raspberrypi,4-model-b", "brcm,bcm2711"])?;
    w.property_u32("#address-cells", 2)?;
    w.property_u32("#size-cells", 2)?;
    w.property_u32("interrupt-parent", GIC_PHANDLE)?;

    w.begin_node("chosen")?;
    w.property_string("bootargs", t.bootargs)?;
    if has_uart(t) {
        w.property_string("stdout-path", "serial0:115200n8")?;
    }
    if let Some((start, size)) = t.initrd {
        w.property_u64("linux,initrd-start", start)?;
        w.property_u64("linux,initrd-end", start + size)?;
    }
    w.end_node()?;

    w.begin_node("memory@0")?;
    w.property_string("device_type", "memory")?;
    // A Pi 4's layout: below the peripheral window, the rest from 4 GiB.
    let cells: Vec<u32> = crate::stage2::ram_banks(t.ram)
        .flat_map(|(a, n)| reg(a, n))
        .collect();
    w.property_cells("reg", &cells)?;
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

    if has_uart(t) {
        w.begin_node("clk-uart")?;
        w.property_string("compatible", "fixed-clock")?;
        w.property_u32("#clock-cells", 0)?;
        w.property_u32("clock-frequency", UART_CLOCK_HZ)?;
        w.property_string("clock-output-names", "uart")?;
        w.property_u32("phandle", UART_CLK_PHANDLE)?;
        w.end_node()?;
        w.begin_node("aliases")?;
        w.property_string("serial0", &format!("/soc/serial@{:x}", uart_bus()))?;
        w.end_node()?;
    }
    if t.devices.contains(&Device::Mailbox) || has_uart(t) {
        soc(&mut w, t)?;
    }
    for d in t.devices {
        match d {
            Device::Mailbox | Device::Uart | Device::Pl011 => {}
            Device::Watchdog => {
                use crate::devices::sp805;
                w.begin_node("clk-watchdog")?;
                w.property_string("compatible", "fixed-clock")?;
                w.property_u32("#clock-cells", 0)?;
                w.property_u32("clock-frequency", sp805::CLOCK_HZ as u32)?;
                w.property_string("clock-output-names", "wdog")?;
                w.property_u32("phandle", WDOG_CLK_PHANDLE)?;
                w.end_node()?;
                w.begin_node(&format!("watchdog@{WATCHDOG_IPA:x}"))?;
                w.property_strings("compatible", &["arm,sp805", "arm,primecell"])?;
                w.property_cells("reg", &reg(WATCHDOG_IPA, sp805::SIZE))?;
                w.property_cells("clocks", &[WDOG_CLK_PHANDLE, WDOG_CLK_PHANDLE])?;
                w.property_strings("clock-names", &["wdog_clk", "apb_pclk"])?;
                w.property_u32("arm,primecell-periphid", 0x0014_1805)?;
                w.end_node()?;
            }
            Device::Counters => {
                w.begin_node(&format!("pivisor-exit-counters@{EXITCTR_IPA:x}"))?;
                w.property_string("compatible", "pivisor,exit-counters")?;
                w.property_cells("reg", &reg(EXITCTR_IPA, crate::devices::exitctr::SIZE))?;
                w.end_node()?;
            }
            Device::TestDev => {
                w.begin_node(&format!("pivisor-test@{TESTDEV_IPA:x}"))?;
                w.property_string("compatible", "pivisor,test-device")?;
                w.property_cells("reg", &reg(TESTDEV_IPA, TESTDEV_SIZE))?;
                let base = testdev_irq_base(t.index);
                let irqs: Vec<u32> = (0..crate::devices::testdev::LINES)
                    .flat_map(|k| [GIC_SPI, base + k - 32, LEVEL_HIGH])
                    .collect();
                w.property_cells("interrupts", &irqs)?;
                w.end_node()?;
            }
        }
    }
    if let Some(extra) = t.extra {
        graft(&mut w, extra)?;
    }
    w.end_node()?;
    Ok(w.finish()?)
}
