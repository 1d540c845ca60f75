//! The VideoCore firmware, for the hypervisor and (behind a policy) its
//! guests.
//!
//! The hypervisor's own mailbox is [`HostMailbox`] (board/rpi4/mailbox.rs)
//! under a lock, waiting in the EL2 timer's 10 us steps without handling
//! interrupts (no VM's lock under the mailbox's). A guest's request
//! ([`guest_request`]) is served by the pure [`request::serve`] over the
//! VM's RAM: guest buffers are non-cacheable in the guest (Linux allocates
//! them coherent) while the hypervisor's map is cacheable, so every copy
//! cleans and invalidates ([`Vm::read_ram`], [`Vm::write_ram`]).
//!
//! Also the firmware below EL2: what Trusted Firmware at EL3 offers guests
//! ([`probe_el3`]).

use super::irq::wait_ticks_quiet;
use super::vm::{vm, Vm};
use crate::arch::cpu;
use crate::board::rpi4::mailbox::{HostMailbox, Platform};
use crate::devices::mailbox::property::{Firmware, View, MAX_BUFFER};
use crate::devices::mailbox::request::{self, GuestMemory};
use crate::dt::host::HostInfo;
use crate::sync::{Mutex, Once};
use crate::vm::psci;
use core::sync::atomic::{AtomicBool, Ordering};
use log::{debug, info, warn};

/// How long the firmware gets to answer.
const TIMEOUT_MS: u64 = 100;

/// The bounce buffer the VideoCore reads and writes.
#[repr(C, align(64))]
struct Bounce([u8; MAX_BUFFER]);

static HOST: Once<Mutex<HostMailbox>> = Once::new();

/// EL3 implements SMCCC_ARCH_WORKAROUND_1 (see [`probe_el3`]).
static EL3_WA1: AtomicBool = AtomicBool::new(false);

/// What EL3 offers guests through the hypervisor.
#[inline(always)]
pub fn el3_services() -> psci::Services {
    psci::Services {
        workaround_1: EL3_WA1.load(Ordering::Relaxed),
    }
}

/// Asks EL3, if the firmware's tree says PSCI is reached by SMC (Trusted
/// Firmware as the armstub), whether it implements
/// SMCCC_ARCH_WORKAROUND_1; guests then get it through the hypervisor.
/// The stock Pi 4 armstub and QEMU have no /psci (spin tables) and no SMC
/// service: nothing is asked (an SMC would be UNDEFINED without EL3).
/// Boot core, before the VMs start.
pub fn probe_el3(psci_method: Option<&str>) {
    if psci_method != Some("smc") {
        info!("firmware: no PSCI over SMC in the device tree: no EL3 service to pass on (SMCCC_ARCH_WORKAROUND_1: guests are told NOT_SUPPORTED)");
        return;
    }
    let version = cpu::psci_call(false, u64::from(psci::fid::SMCCC_VERSION), 0, 0, 0);
    let features = (version >= psci::SMCCC_VERSION_1_1 as i64).then(|| {
        cpu::psci_call(
            false,
            u64::from(psci::fid::SMCCC_ARCH_FEATURES),
            u64::from(psci::fid::ARCH_WORKAROUND_1),
            0,
            0,
        )
    });
    let s = psci::Services::from_firmware(version, features);
    EL3_WA1.store(s.workaround_1, Ordering::Relaxed);
    info!(
        "firmware: EL3 SMCCC version {version:#x}; SMCCC_ARCH_WORKAROUND_1 {}",
        if s.workaround_1 {
            "implemented: guests' calls are passed on"
        } else {
            "not implemented: guests are told NOT_SUPPORTED"
        }
    );
}
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
    let bus = (pa - dma.cpu + dma.bus) as u32;
    // SAFETY: the mailbox from the device tree, inside a /soc window the
    // EL2 map has as Device; only this driver touches it. The bounce
    // buffer is the VideoCore-visible RAM just checked.
    let mb = unsafe { HostMailbox::new(base as usize, &mut bounce.0, bus) };
    HOST.call_once(|| Mutex::new(mb));
    info!("firmware: mailbox at {base:#x}, bounce buffer at {pa:#x} (bus {bus:#x})");
}

/// Cache maintenance and the EL2-timer wait, for the driver.
struct El2;

impl Platform for El2 {
    fn clean_inval(&self, pa: u64, len: u64) {
        cpu::clean_inval_dcache(pa, len);
    }
    fn wait(&self, done: &mut dyn FnMut() -> bool) -> bool {
        let f = cpu::counter_freq();
        // Under HOST's lock: no interrupt handling (no VM's lock) while
        // the firmware answers.
        wait_ticks_quiet(f * TIMEOUT_MS / 1000, (f / 100_000).max(1), done)
    }
}

/// The firmware's rate for clock `id` (GET_CLOCK_RATE), in Hz.
pub fn clock_rate(id: u32) -> Option<u32> {
    let mut b = [0u8; 32];
    let words = [32u32, 0, 0x0003_0002, 8, 0, id, 0, 0];
    for (i, w) in words.iter().enumerate() {
        b[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
    }
    HostFirmware.call(&mut b).ok()?;
    let word = |i: usize| u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
    let ok = word(1) == 0x8000_0000 && word(4) & 0x8000_0000 != 0 && word(5) == id;
    ok.then(|| word(6)).filter(|&hz| hz != 0)
}

/// Powers firmware device `id` on (SET_POWER_STATE, waiting for it):
/// true if the firmware says it is on.
pub fn power_on(id: u32) -> bool {
    let mut b = [0u8; 32];
    let words = [32u32, 0, 0x0002_8001, 8, 0, id, 0b11, 0];
    for (i, w) in words.iter().enumerate() {
        b[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
    }
    if HostFirmware.call(&mut b).is_err() {
        return false;
    }
    let word = |i: usize| u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
    // State bit 0: on; bit 1 in the answer: no such device.
    word(1) == 0x8000_0000 && word(4) & 0x8000_0000 != 0 && word(5) == id && word(6) & 0b11 == 1
}

/// Runs `f` holding the host mailbox's lock (the fault-injection page:
/// a panic inside must not keep other VMs from the firmware).
pub fn holding_lock<R>(f: impl FnOnce() -> R) -> R {
    let _g = HOST.get().map(|h| h.lock());
    f()
}

/// The real firmware, through the hypervisor's mailbox.
pub struct HostFirmware;

impl Firmware for HostFirmware {
    fn call(&mut self, buf: &mut [u8]) -> Result<(), &'static str> {
        let host = HOST.get().ok_or("no mailbox")?;
        host.lock().call(buf, &El2)
    }
}

/// A VM's RAM for a mailbox request.
impl GuestMemory for &Vm {
    fn contains(&self, ipa: u64, len: u64) -> bool {
        self.ram.contains(ipa, len)
    }
    fn low_size(&self) -> u64 {
        self.ram.base() + self.ram.low_size()
    }
    fn read(&mut self, ipa: u64, out: &mut [u8]) -> bool {
        self.read_ram(ipa, out)
    }
    fn write(&mut self, ipa: u64, data: &[u8]) -> bool {
        self.write_ram(ipa, data)
    }
}

/// A guest's write to its mailbox's MAIL1_WRT: answers a property request
/// and returns the word for its MAIL0 (None: no answer, for channels that
/// are not emulated).
pub fn guest_request(index: usize, word: u32) -> Option<u32> {
    let vm = vm(index)?;
    let view = View {
        ram_base: vm.ram.base(),
        ram: vm.ram.low_size(),
        serial: vm.serial,
        mac: vm.mac,
        cmdline: vm.bootargs(),
    };
    let mut mem = vm;
    let s = request::serve(word, &mut mem, &vm.mailbox, &view, &mut HostFirmware);
    if let Some(p) = &s.problem {
        vm.warn(format_args!("{p}"));
    }
    if let Some(o) = &s.outcome {
        for (c, n) in vm
            .mailbox_tags
            .iter()
            .zip([o.local, o.forwarded, o.refused.len()])
        {
            c.fetch_add(n as u64, Ordering::Relaxed);
        }
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
    s.answer
}
