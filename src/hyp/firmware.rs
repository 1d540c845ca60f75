//! The VideoCore firmware, for the hypervisor and (behind a policy) its
//! guests.
//!
//! The hypervisor's own mailbox driver: one request at a time through a
//! bounce buffer in hypervisor memory (below 1 GiB, where the VideoCore
//! can see it, at its bus address per the host tree's /soc dma-ranges),
//! cleaned to the point of coherency before the VideoCore reads it and
//! invalidated before the ARM reads the answer. It polls the mailbox
//! status, sleeping between looks (EL2 timer, 10 us steps): the mailbox
//! interrupt stays disabled, so the hypervisor never has to share it.
//!
//! A guest's request ([`guest_request`]): the bus address it wrote is
//! translated through the VM's DMA window to an IPA, the whole buffer must
//! lie in the VM's RAM, it is copied once into hypervisor memory (another
//! vCPU may change the original meanwhile) and only the copy is parsed and
//! answered ([`property::process`]); the answer is copied back. Guest
//! buffers are non-cacheable in the guest (Linux allocates them coherent)
//! while the hypervisor's map is cacheable, so the range is cleaned and
//! invalidated before reading and after writing.

use super::VMS;
use crate::arch::cpu;
use crate::board::mmio::Mmio;
use crate::board::rpi4::mailbox::MailboxRegs;
use crate::devices::mailbox::property::{
    self, check_size, Firmware, View, BCM2711_DMA, CHANNEL, MAX_BUFFER,
};
use crate::devices::mailbox::{EMPTY, FULL};
use crate::dt::host::HostInfo;
use crate::sync::{Mutex, Once};
use alloc::vec::Vec;
use log::{debug, info, warn};
use tock_registers::interfaces::{Readable, Writeable};

/// How long the firmware gets to answer.
const TIMEOUT_MS: u64 = 100;
/// Most stale answers discarded while waiting for ours.
const MAX_STALE: usize = 16;

/// The bounce buffer the VideoCore reads and writes.
#[repr(C, align(64))]
struct Bounce([u8; MAX_BUFFER]);

struct HostMailbox {
    regs: Mmio<MailboxRegs>,
    bounce: &'static mut Bounce,
    /// The bounce buffer's VideoCore bus address.
    bus: u32,
}

// SAFETY: the registers and the buffer are only used under HOST's lock.
unsafe impl Send for HostMailbox {}

static HOST: Once<Mutex<HostMailbox>> = Once::new();
static mut BOUNCE: Bounce = Bounce([0; MAX_BUFFER]);

/// Finds the mailbox in the host tree and takes it (boot core, once).
pub fn init(info: &HostInfo<'_>) {
    let (Some(base), Some(dma)) = (info.mailbox, info.dma) else {
        warn!("firmware: the device tree has no mailbox or no /soc dma-ranges: guests' firmware requests will fail");
        return;
    };
    // SAFETY: taken once, here; from now on only under HOST's lock.
    let bounce = unsafe { &mut *core::ptr::addr_of_mut!(BOUNCE) };
    let pa = bounce.0.as_ptr() as u64; // identity map
    let end = pa + MAX_BUFFER as u64;
    if pa < dma.cpu || end > dma.cpu + dma.size || dma.bus + (end - dma.cpu) > 1 << 32 {
        warn!("firmware: the bounce buffer at {pa:#x} is outside the VideoCore's DMA window {:#x}+{:#x}: guests' firmware requests will fail", dma.cpu, dma.size);
        return;
    }
    // SAFETY: the mailbox from the device tree, inside a /soc window the
    // EL2 map has as Device; only this driver touches it.
    let regs = unsafe { Mmio::<MailboxRegs>::new(base as usize) };
    regs.MAIL0_CNF.set(0);
    // Answers nobody waits for (from before the hypervisor) are dropped.
    for _ in 0..MAX_STALE {
        if regs.MAIL0_STA.get() & EMPTY != 0 {
            break;
        }
        let _ = regs.MAIL0_RD.get();
    }
    let bus = (pa - dma.cpu + dma.bus) as u32;
    HOST.call_once(|| Mutex::new(HostMailbox { regs, bounce, bus }));
    info!("firmware: mailbox at {base:#x}, bounce buffer at {pa:#x} (bus {bus:#x})");
}

/// The real firmware, through the hypervisor's mailbox.
pub struct HostFirmware;

impl Firmware for HostFirmware {
    fn call(&mut self, buf: &mut [u8]) -> Result<(), &'static str> {
        let host = HOST.get().ok_or("no mailbox")?;
        if buf.len() > MAX_BUFFER || !buf.len().is_multiple_of(4) {
            return Err("buffer too large");
        }
        let mut h = host.lock();
        let len = buf.len();
        let pa = h.bounce.0.as_ptr() as u64;
        h.bounce.0[..len].copy_from_slice(buf);
        cpu::clean_inval_dcache(pa, len as u64);
        let f = cpu::counter_freq();
        let (timeout, poll) = (f * TIMEOUT_MS / 1000, (f / 100_000).max(1));
        let regs = &h.regs;
        if !super::irq::wait_ticks(timeout, poll, || regs.MAIL1_STA.get() & FULL == 0) {
            return Err("mailbox full");
        }
        let word = h.bus | CHANNEL;
        regs.MAIL1_WRT.set(word);
        let mut stale = 0;
        let mut got = false;
        super::irq::wait_ticks(timeout, poll, || {
            while regs.MAIL0_STA.get() & EMPTY == 0 {
                if regs.MAIL0_RD.get() == word {
                    got = true;
                    return true;
                }
                stale += 1;
            }
            stale > MAX_STALE
        });
        if !got {
            return Err("no answer from the firmware");
        }
        // Drop whatever the cache fetched meanwhile, then read the answer.
        cpu::clean_inval_dcache(pa, len as u64);
        buf.copy_from_slice(&h.bounce.0[..len]);
        Ok(())
    }
}

/// A guest's write to its mailbox's MAIL1_WRT: answers a property request
/// and returns the word for its MAIL0 (None: no answer, for channels that
/// are not emulated).
pub fn guest_request(index: usize, word: u32) -> Option<u32> {
    let vm = VMS.get()?.get(index)?;
    let v = cpu::core_index();
    let channel = word & 0xf;
    if channel != CHANNEL {
        vm.warn(format_args!(
            "mailbox: channel {channel} is not emulated (only the property channel 8); no answer (core {v})"
        ));
        return None;
    }
    let bus = u64::from(word & !0xf);
    let dma = BCM2711_DMA;
    // The size word first, then the whole buffer once its size is known.
    let inside = |len: u64| {
        dma.buffer_ipa(bus, len, vm.ram.low_size())
            .filter(|&ipa| vm.ram.contains(ipa, len))
    };
    let Some(ipa) = inside(4) else {
        vm.warn(format_args!(
            "mailbox: buffer at bus address {bus:#x} is not in the VM's RAM (DMA window bus {:#x}-{:#x}); refused",
            dma.bus,
            dma.bus + dma.size.min(vm.ram.low_size()) - 1
        ));
        return Some(word);
    };
    let mut head = [0u8; 4];
    vm.read_ram(ipa, &mut head);
    let size = u32::from_le_bytes(head);
    let len = match check_size(size) {
        Ok(l) if inside(l as u64).is_some() => l,
        Ok(_) => {
            vm.warn(format_args!(
                "mailbox: buffer at bus {bus:#x} of {size} bytes runs past the VM's RAM; refused"
            ));
            return Some(word);
        }
        Err(e) => {
            vm.warn(format_args!(
                "mailbox: buffer at bus {bus:#x}: {e}; answered 0x80000001"
            ));
            vm.write_ram(ipa + 4, &property::CODE_ERROR.to_le_bytes());
            return Some(word);
        }
    };
    let mut copy: Vec<u8> = alloc::vec![0; len];
    vm.read_ram(ipa, &mut copy);
    copy[..4].copy_from_slice(&size.to_le_bytes());
    let view = View {
        ram: vm.ram.low_size(),
        serial: vm.serial,
        mac: vm.mac,
        cmdline: vm.bootargs(),
    };
    match property::process(&mut copy, &vm.mailbox, &view, &mut HostFirmware) {
        Ok(o) => {
            vm.write_ram(ipa, &copy);
            debug!(
                "VM '{}': mailbox: {} local, {} forwarded, code {:#x}",
                vm.name, o.local, o.forwarded, o.code
            );
            for id in &o.refused {
                vm.warn(format_args!(
                    "mailbox: property tag {id:#010x} refused by the VM's policy"
                ));
            }
            for id in &o.failed {
                vm.warn(format_args!(
                    "mailbox: property tag {id:#010x}: the firmware did not answer"
                ));
            }
        }
        Err(e) => {
            vm.write_ram(ipa + 4, &copy[4..8]);
            vm.warn(format_args!(
                "mailbox: malformed buffer at bus {bus:#x}: {e}; answered 0x80000001"
            ));
        }
    }
    Some(word)
}
