//! A VM and its vCPUs as the hypervisor holds them: the built VMs, their
//! RAM accesses (scrub, load, copy for the mailbox), exit counts and
//! rate-limited guest-caused log lines.

use crate::arch::copy::copy_normal;
use crate::arch::cpu;
use crate::devices::bus::MmioBus;
use crate::devices::mailbox::policy::Policy;
use crate::devices::pl011::Pl011;
use crate::devices::sp805::Sp805;
use crate::ratelimit::RateLimit;
use crate::sync::{Mutex, Once};
use crate::trap::stats::{ExitCounts, ExitStats};
use crate::trap::sysreg::SysRegState;
use crate::vgic::dist::VgicDist;
use crate::vm::image::LoadPlan;
use crate::vm::psci::Power;
use crate::vm::ram::GuestRam;
use crate::vm::restart::RestartPolicy;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use log::error;

/// Test-device lines a VM may print per second.
pub const TEST_LINES_PER_SECOND: u32 = 100;

/// One vCPU.
pub struct Vcpu {
    /// The physical core it is pinned to.
    pub core: usize,
    /// Emulated system-register state (debug OS lock, MDSCR).
    pub sysregs: Mutex<SysRegState>,
    /// Its exits since the VM (re)started, by kind.
    pub exits: ExitStats,
    /// Interrupts its core took for the hypervisor or another VM while
    /// it ran (console input, another VM's passed-through line): counted
    /// apart, never among its exits, so the VM cannot time them.
    pub foreign_irqs: AtomicU64,
    /// Virtual interrupts put into its list registers (the monitor's
    /// stats).
    pub injected: AtomicU64,
}

/// One virtual machine.
pub struct Vm {
    /// Index in the configuration.
    pub index: usize,
    /// Name from the configuration.
    pub name: String,
    /// VMID (index + 1).
    pub vmid: u8,
    /// vCPUs, in vCPU order.
    pub vcpus: Vec<Vcpu>,
    /// RAM.
    pub ram: GuestRam,
    /// VTTBR_EL2 (root and VMID).
    pub vttbr: u64,
    pub(super) kernel: &'static [u8],
    pub(super) initrd: Option<&'static [u8]>,
    pub(super) dtb: Vec<u8>,
    pub(super) plan: LoadPlan,
    /// vCPU power states (PSCI).
    pub power: Mutex<Vec<Power>>,
    /// Emulated devices.
    pub bus: Mutex<MmioBus>,
    /// [`state`].
    pub state: AtomicU8,
    /// How many times SYSTEM_RESET restarted it.
    pub resets: AtomicU32,
    /// Guest requests refused (every [`Vm::warn`], logged or not: an
    /// access outside its devices, a refused mailbox buffer, an
    /// unemulated register, an unknown call).
    pub refusals: AtomicU64,
    /// Guest-caused log lines.
    pub log: Mutex<RateLimit>,
    /// Its life-cycle lines (restarts, halts), which a guest causes too.
    pub life_log: Mutex<RateLimit>,
    /// The test device's console lines ([`Vm::test_line`]).
    pub test_log: Mutex<RateLimit>,
    /// Restart-loop detection.
    pub backoff: Mutex<crate::vm::restart::Backoff>,
    /// The virtual distributor (and what each vCPU's list registers hold).
    pub vgic: Mutex<VgicDist>,
    /// The SPIs the VM owns (emulated device lines, passed-through ones).
    pub(super) spis: Vec<u32>,
    /// Of those, the hardware-linked ones (physical SPIs passed through).
    pub hw_spis: Vec<u32>,
    /// CNTVOFF_EL2: the counter value at VM (re)start, so the guest's
    /// virtual counter counts from 0 at its start.
    pub cntvoff: AtomicU64,
    /// Firmware property tags the VM may use.
    pub mailbox: Policy,
    /// What happens when it powers off, resets or crashes.
    pub policy: RestartPolicy,
    /// Board serial the VM sees, if virtual.
    pub serial: Option<u64>,
    /// MAC address the VM sees, if virtual.
    pub mac: Option<[u8; 6]>,
    pub(super) bootargs: String,
    /// The emulated UART, if the VM has one (the console feeds it input).
    pub uart: Option<Arc<Mutex<Pl011>>>,
    /// Whether the VM may read its exit counts (`devices = counters`: the
    /// page and the exit-count call).
    pub counters: bool,
    /// The real PL011's address, if the VM owns it (passed through): a
    /// restart puts it back as the firmware left it.
    pub pl011_pa: Option<u64>,
    /// Devices of the firmware's tree it owns (`passthrough`).
    pub passthrough: Vec<crate::vm::passthru::Resolved>,
    /// Their SPIs (also in `hw_spis`).
    pub pt_spis: Vec<u32>,
    /// The emulated SP805 watchdog, if the VM has one.
    pub watchdog: Option<Arc<Mutex<Sp805>>>,
    /// Its disk (virtio-blk on a partition of the card), if any.
    pub blk: Option<Arc<Mutex<crate::vm::attach::BlkDevice>>>,
    /// Its network interface (virtio-net on a port of the switch), if any.
    pub net: Option<Arc<Mutex<crate::vm::attach::NetDevice>>>,
    /// A virtio device has work left (polled on the VM's next exit).
    pub io_pending: core::sync::atomic::AtomicBool,
    /// Mailbox property tags answered from its own view, forwarded to
    /// the firmware, refused by its policy (the monitor's stats).
    pub mailbox_tags: [AtomicU64; 3],
    /// A state change the monitor asked for (`lifecycle::request`), taken
    /// by one of the VM's own cores.
    pub request: AtomicU8,
    /// Why it last ended (halted or restarted), for the monitor's `list`.
    pub last_end: Mutex<Option<String>>,
}

/// All VMs, once built.
static VMS: Once<Vec<Vm>> = Once::new();

/// Every VM (none until they are built).
pub fn vms() -> &'static [Vm] {
    VMS.get().map_or(&[], |v| v.as_slice())
}

/// VM `index`, if built.
pub fn vm(index: usize) -> Option<&'static Vm> {
    VMS.get()?.get(index)
}

/// Publishes the built VMs (once) and the VTCR_EL2 they share.
pub(super) fn publish(all: Vec<Vm>, vtcr: u64) -> &'static [Vm] {
    VTCR.call_once(|| vtcr);
    VMS.call_once(|| all)
}

/// VTCR_EL2, the same for every VM (0 before they are built).
pub fn vtcr() -> u64 {
    *VTCR.get().unwrap_or(&0)
}

/// VTCR_EL2, the same for every VM.
static VTCR: Once<u64> = Once::new();

impl Vm {
    /// Its exits since it (re)started: one vCPU's, or (None) all of them.
    pub fn exit_counts(&self, vcpu: Option<usize>) -> ExitCounts {
        let mut sum = ExitCounts::default();
        for (i, c) in self.vcpus.iter().enumerate() {
            if vcpu.is_none_or(|v| v == i) {
                sum += c.exits.snapshot();
            }
        }
        sum
    }

    /// Its exits since it (re)started, summed over its vCPUs, and per vCPU.
    pub fn exit_report(&self) -> String {
        let per: Vec<String> = (0..self.vcpus.len())
            .map(|v| self.exit_counts(Some(v)).total().to_string())
            .collect();
        let foreign: u64 = self
            .vcpus
            .iter()
            .map(|c| c.foreign_irqs.load(Ordering::Relaxed))
            .sum();
        alloc::format!(
            "{}; per vCPU {}; refused {} guest requests; {foreign} interrupts for others",
            self.exit_counts(None),
            per.join(", "),
            self.refusals.load(Ordering::Relaxed)
        )
    }

    /// Its network port's counters, if it has one.
    pub fn net_report(&self) -> Option<String> {
        let n = self.net.as_ref()?;
        let stats = n.lock().device().port().counters.stats();
        Some(alloc::format!("{stats}"))
    }

    /// Stops its network interface (a reset, as the driver's Status 0):
    /// frames to it are dropped from now on and nothing more is written
    /// to its RAM (before the RAM is scrubbed or given up).
    pub(super) fn stop_net(&self) {
        if let Some(n) = &self.net {
            crate::devices::bus::MmioDevice::reset(&mut *n.lock());
        }
    }

    /// Logs a guest-caused event, rate-limited per VM (a flood cannot
    /// drown the console).
    pub fn warn(&self, msg: core::fmt::Arguments<'_>) {
        self.refusals.fetch_add(1, Ordering::Relaxed);
        self.limited(&self.log, log::Level::Warn, msg);
    }

    /// Logs a life-cycle line (a restart, a halt, its exit counts),
    /// rate-limited per VM apart from the refusals: a VM restarting in a
    /// loop must not overwrite the log ring with them.
    pub fn note(&self, msg: core::fmt::Arguments<'_>) {
        self.limited(&self.life_log, log::Level::Info, msg);
    }

    /// A line the VM's test device prints, `[name] line`, rate-limited
    /// per VM ([`TEST_LINES_PER_SECOND`]: a test guest reports in bursts;
    /// a flood past that is counted and reported as suppressed).
    pub fn test_line(&self, line: &str) {
        let allowed = self
            .test_log
            .lock()
            .allow(cpu::counter(), cpu::counter_freq());
        if let Some(n) = allowed {
            if n > 0 {
                log::info!("VM '{}': {n} test-device lines suppressed", self.name);
            }
            log::info!("[{}] {line}", self.name);
        }
    }

    /// A line through `limiter`: logged at `level` with the VM's name, or
    /// counted and later reported as suppressed.
    fn limited(
        &self,
        limiter: &Mutex<RateLimit>,
        level: log::Level,
        msg: core::fmt::Arguments<'_>,
    ) {
        let allowed = limiter.lock().allow(cpu::counter(), cpu::counter_freq());
        if let Some(n) = allowed {
            if n > 0 {
                log::log!(
                    level,
                    "VM '{}': {} similar messages suppressed",
                    self.name,
                    n
                );
            }
            log::log!(level, "VM '{}': {}", self.name, msg);
        }
    }

    /// The VM's kernel command line.
    pub fn bootargs(&self) -> &str {
        &self.bootargs
    }

    /// vCPU 0's state at (re)start: pending at the kernel entry, x0 = DTB.
    pub(super) fn boot_power(&self) -> Power {
        Power::OnPending {
            entry: self.plan.kernel,
            context: self.plan.dtb,
        }
    }

    /// Scrubs the VM's RAM (nothing of a previous owner may leak) and
    /// leaves it clean to the point of coherency.
    pub(super) fn zero_ram(&self) {
        for c in self.ram.chunks() {
            cpu::zero_to_poc(c.pa, c.size);
        }
    }

    /// Copies `data` into the VM's RAM at `ipa` through the hypervisor's
    /// cacheable map, no cache maintenance: for memory the guest also
    /// maps cacheable (virtio rings and buffers; Inner Shareable, so
    /// coherent with its cores). False if the range is not all RAM.
    pub(super) fn write_ram_cached(&self, ipa: u64, data: &[u8]) -> bool {
        let Some(pieces) = self.ram.host_pieces(ipa, data.len() as u64) else {
            return false;
        };
        let mut at = 0usize;
        for (pa, n) in pieces {
            // SAFETY: VM RAM, identity-mapped, inside the VM (checked).
            // The hypervisor's side is Normal memory too (heap, stack).
            unsafe { copy_normal(pa as *mut u8, data[at..].as_ptr(), n as usize) };
            at += n as usize;
        }
        true
    }

    /// Copies the VM's RAM at `ipa` into `out` through the cacheable map
    /// (see [`Vm::write_ram_cached`]). False if the range is not all RAM.
    pub(super) fn read_ram_cached(&self, ipa: u64, out: &mut [u8]) -> bool {
        let Some(pieces) = self.ram.host_pieces(ipa, out.len() as u64) else {
            return false;
        };
        let mut at = 0usize;
        for (pa, n) in pieces {
            // SAFETY: VM RAM, identity-mapped, inside the VM (checked).
            unsafe { copy_normal(out[at..].as_mut_ptr(), pa as *const u8, n as usize) };
            at += n as usize;
        }
        true
    }

    /// Reads the halfword at `ipa` through the cacheable map with one
    /// access where it is aligned (a virtio ring field the guest may be
    /// writing at the same moment: see `GuestRam::read_u16`). None if it
    /// is not RAM.
    pub(super) fn read_u16_cached(&self, ipa: u64) -> Option<u16> {
        if !ipa.is_multiple_of(2) {
            let mut b = [0u8; 2];
            return self
                .read_ram_cached(ipa, &mut b)
                .then(|| u16::from_le_bytes(b));
        }
        let pa = self.halfword(ipa)?;
        // SAFETY: VM RAM, identity-mapped, inside the VM (checked) and
        // aligned: one LDRH, single-copy atomic.
        Some(u16::from_le(unsafe {
            core::ptr::read_volatile(pa as *const u16)
        }))
    }

    /// The host address of the halfword at `ipa` if both its bytes are
    /// RAM (one chunk lookup: ring indices are read on every exit that
    /// serves a queue).
    fn halfword(&self, ipa: u64) -> Option<u64> {
        self.ram
            .host(ipa)
            .filter(|&(_, left)| left >= 2)
            .map(|(pa, _)| pa)
    }

    /// Writes the halfword at `ipa` through the cacheable map with one
    /// access where it is aligned (see [`Vm::read_u16_cached`]). False if
    /// it is not RAM.
    pub(super) fn write_u16_cached(&self, ipa: u64, v: u16) -> bool {
        if !ipa.is_multiple_of(2) {
            return self.write_ram_cached(ipa, &v.to_le_bytes());
        }
        let Some(pa) = self.halfword(ipa) else {
            return false;
        };
        // SAFETY: as above: one STRH.
        unsafe { core::ptr::write_volatile(pa as *mut u16, v.to_le()) };
        true
    }

    /// Copies `data` into the VM's RAM at `ipa` and cleans it to the point
    /// of coherency (a guest with its caches off, or mapping it
    /// non-cacheable, sees it). False if the range is not all RAM.
    pub(super) fn write_ram(&self, ipa: u64, data: &[u8]) -> bool {
        let Some(pieces) = self.ram.host_pieces(ipa, data.len() as u64) else {
            return false;
        };
        let mut at = 0usize;
        for (pa, n) in pieces {
            // SAFETY: VM RAM, identity-mapped, inside the VM (checked).
            // The hypervisor's side is Normal memory too (heap, stack).
            unsafe { copy_normal(pa as *mut u8, data[at..].as_ptr(), n as usize) };
            cpu::clean_inval_dcache(pa, n);
            at += n as usize;
        }
        true
    }

    /// Copies the VM's RAM at `ipa` into `out`, first dropping any cache
    /// line this core holds for it (the guest may have written through a
    /// non-cacheable mapping). False if the range is not all RAM.
    pub(super) fn read_ram(&self, ipa: u64, out: &mut [u8]) -> bool {
        let Some(pieces) = self.ram.host_pieces(ipa, out.len() as u64) else {
            return false;
        };
        let mut at = 0usize;
        for (pa, n) in pieces {
            cpu::clean_inval_dcache(pa, n);
            // SAFETY: VM RAM, identity-mapped, inside the VM (checked).
            unsafe { copy_normal(out[at..].as_mut_ptr(), pa as *const u8, n as usize) };
            at += n as usize;
        }
        true
    }

    /// Copies `data` to guest IPA `ipa` (inside RAM: checked by the plan).
    pub(super) fn copy_in(&self, ipa: u64, data: &[u8]) {
        if !self.write_ram(ipa, data) {
            error!(
                "VM '{}': image at IPA {ipa:#x} outside RAM (plan bug)",
                self.name
            );
        }
    }

    /// Writes back and drops every cache line of the VM's RAM: what the
    /// guest left dirty must not land on top of a fresh load later.
    pub(super) fn flush_ram(&self) {
        for c in self.ram.chunks() {
            cpu::clean_inval_dcache(c.pa, c.size);
        }
    }

    /// (Re)loads kernel, initrd and device tree, cleaned to the point of
    /// coherency for a guest that starts with its caches off.
    pub(super) fn load(&self) {
        self.copy_in(self.plan.kernel, self.kernel);
        if let (Some(rd), Some((ipa, _))) = (self.initrd, self.plan.initrd) {
            self.copy_in(ipa, rd);
        }
        self.copy_in(self.plan.dtb, &self.dtb);
    }
}
