//! The guest-physical address map every VM sees, in one place: RAM
//! banks, the emulated and passed-through devices' IPAs, and their
//! interrupts. It follows a Pi 4 in the low-peripheral layout, so a
//! guest's drivers find what a Pi's device tree would tell them. Pure.
//!
//! | range | what |
//! |-------|------|
//! | 0 .. min(RAM, 0xfc000000) | RAM, low bank (kernel, initrd, device tree) |
//! | 0xfc000000 | pivisor test device, exit counters, SP805 watchdog, fault injection, virtio-blk, virtio-net |
//! | 0xfe000000 .. 0xff800000 | /soc: mailbox, PL011 (emulated or passed through) |
//! | 0xff841000, 0xff842000 | GIC-400 distributor (emulated), CPU interface (GICV) |
//! | 0x1_0000_0000 .. | RAM beyond 0xfc000000, high bank |

/// Where guest RAM stops below 4 GiB: the guest's peripheral window
/// `[0xfc00_0000, 0x1_0000_0000)` (as on a Pi 4 in the low-peripheral
/// layout) holds the emulated devices, the GIC and passed-through pages,
/// which must trap or map there, never be covered by RAM.
pub const LOW_RAM_END: u64 = 0xfc00_0000;
/// Where guest RAM continues above the peripheral window (a Pi 4 with
/// more than 4 GiB has its RAM continue at 4 GiB too).
pub const HIGH_RAM_BASE: u64 = 0x1_0000_0000;
/// The largest RAM a VM can have: the high bank ends inside the 39-bit IPA
/// space, which the VTCR's 40-bit output size covers.
pub const MAX_RAM: u64 = LOW_RAM_END + ((1 << crate::mm::stage2::IPA_BITS) - HIGH_RAM_BASE);

/// The guest-physical RAM ranges `(ipa, size)` of a VM with `size` bytes
/// of RAM, for its stage 2 and its /memory: one from IPA 0 below the
/// peripheral window, and one from [`HIGH_RAM_BASE`] when it has more.
pub fn ram_banks(size: u64) -> impl Iterator<Item = (u64, u64)> {
    let low = size.min(LOW_RAM_END);
    [(0, low), (HIGH_RAM_BASE, size - low)]
        .into_iter()
        .filter(|b| b.1 > 0)
}

/// The /soc bus window: VideoCore bus 0x7e000000 is IPA 0xfe000000, as on
/// a Pi 4 in low-peripheral mode.
pub const SOC_BUS: u32 = 0x7e00_0000;
/// The IPA of the /soc bus window.
pub const SOC_IPA: u64 = 0xfe00_0000;
/// The /soc bus window's size.
pub const SOC_SIZE: u32 = 0x0180_0000;
/// The mailbox registers' IPA (bus 0x7e00b880).
pub const MAILBOX_IPA: u64 = 0xfe00_b880;
/// The mailbox's INTID (GIC_SPI 0x21 in the bcm2711 tree).
pub const MAILBOX_INTID: u32 = 65;
/// The PL011 UART0's IPA (bus 0x7e201000).
pub const UART_IPA: u64 = 0xfe20_1000;
/// The PL011's INTID (GIC_SPI 0x79 in the bcm2711 tree; UART2-5 share it).
pub const UART_INTID: u32 = 153;

/// GIC-400 distributor IPA (BCM2711).
pub const GICD_IPA: u64 = 0xff84_1000;
/// GIC-400 CPU interface IPA (BCM2711); 0x2000 long.
pub const GICC_IPA: u64 = 0xff84_2000;
/// The guest's GICD page size (every access traps and is emulated).
pub const GICD_SIZE: u64 = 0x1000;
/// The guest's GICC size: the GICV frame's two pages (GICV_DIR is in
/// the second).
pub const GICC_SIZE: u64 = 0x2000;
/// The pivisor test device's IPA and size.
pub const TESTDEV_IPA: u64 = 0xfc00_0000;
/// The pivisor test device's size.
pub const TESTDEV_SIZE: u64 = 0x1000;
/// The exit-counter page's IPA (its size: devices::exitctr::SIZE).
pub const EXITCTR_IPA: u64 = 0xfc00_1000;
/// The SP805 watchdog's IPA (its size: devices::sp805::SIZE).
pub const WATCHDOG_IPA: u64 = 0xfc00_2000;
/// The fault-injection page's IPA (its size: devices::faultinj::SIZE).
pub const FAULTINJ_IPA: u64 = 0xfc00_3000;
/// The virtio-blk device's virtio-mmio page.
pub const VIRTIO_BLK_IPA: u64 = 0xfc00_4000;
/// Its INTID: SPI 208, above every interrupt a BCM2711 device uses (the
/// highest is GENET's SPI 158) and the test devices' lines, so it never
/// meets a passed-through device's.
pub const VIRTIO_BLK_INTID: u32 = 240;
/// The virtio-net device's virtio-mmio page.
pub const VIRTIO_NET_IPA: u64 = 0xfc00_5000;
/// Its INTID (SPI 209), beside the disk's.
pub const VIRTIO_NET_INTID: u32 = 241;
/// The virtio-mmio registers' extent in the device tree.
pub const VIRTIO_MMIO_REG: u64 = 0x200;

/// The first INTID of VM `index`'s test device lines: SPI 64 onwards,
/// [`crate::devices::testdev::LINES`] per VM, so that no two VMs use
/// the same numbers (a VM touching another's numbers must see nothing).
pub fn testdev_irq_base(index: usize) -> u32 {
    96 + crate::devices::testdev::LINES * (index as u32 % 16)
}
