//! Running a [`Machine`] under KVM (aarch64 Linux only).
//!
//! - RAM: anonymous memory, one memory slot at IPA 0 (KVM maps it into
//!   stage 2 on first touch, as it does for every VMM).
//! - GIC: KVM's in-kernel GICv2 (KVM_DEV_TYPE_ARM_VGIC_V2), distributor
//!   and CPU interface at the IPAs pivisor uses (GICD 0xff841000, GICC
//!   0xff842000), 256 interrupt lines.
//! - vCPUs: KVM's preferred target with in-kernel PSCI 0.2+; vCPU 0 enters
//!   the kernel with x0 = the device tree, the others start powered off
//!   (CPU_ON is handled by KVM).
//! - Devices, as configured in the bundle: the PL011 (`uart` or `pl011`:
//!   KVM cannot pass the real one through, so both are pivisor's PL011
//!   model here, on this process's stdin and stdout), the mailbox
//!   (pivisor's model and checks, with no firmware behind it) and the
//!   exit-counter page (KVM's own per-vCPU statistics). Every access is a
//!   KVM_EXIT_MMIO to this process; one that hits no device, or that the
//!   device refuses, gets an external data abort, as under pivisor.
//! - PSCI SYSTEM_OFF or SYSTEM_RESET ends the process after printing the
//!   exit counts (pv-vmm does not reboot guests).

use kvm_bindings::*;
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd};
use pivisor::devices::bus::MmioBus;
use pivisor::devices::pl011::Pl011;
use pivisor::devices::sp805;
use pivisor::sync::Mutex;
use pivisor::trap::stats::ExitCounts;
use pivisor::vm::attach::{attach, Host, RealUart};
use pivisor::vm::layout::{GICC_IPA, GICD_IPA};
use pivisor_vmm::machine::{mailbox_request, Machine};
use pivisor_vmm::stats::{self, Layout};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;

/// Interrupt lines of the in-kernel GIC (SGIs, PPIs and SPIs up to 255;
/// the UART is 153).
const NR_IRQS: u32 = 256;
/// KVM_GET_STATS_FD: _IO(KVMIO, 0xce).
const KVM_GET_STATS_FD: libc::c_ulong = 0xaece;

/// The VM's RAM as the devices see it (a raw pointer: KVM writes it
/// concurrently, as the guest's own memory).
#[derive(Clone, Copy)]
struct Ram(*mut u8, usize);
// SAFETY: the mapping lives for the whole process; accesses are the
// guest's memory model, as with any VMM.
unsafe impl Send for Ram {}

impl Ram {
    /// The whole RAM as a slice (for loading and mailbox buffers).
    #[allow(clippy::mut_from_ref)]
    fn slice(&self) -> &mut [u8] {
        // SAFETY: see above: mapped for the process's lifetime.
        unsafe { std::slice::from_raw_parts_mut(self.0, self.1) }
    }
}

/// The guest's RAM (one slot from IPA 0) for virtio devices.
struct KvmRam(*mut u8, usize);
// SAFETY: as Ram's.
unsafe impl Send for KvmRam {}

impl KvmRam {
    fn at(&self, ipa: u64, len: usize) -> Option<usize> {
        let o = usize::try_from(ipa).ok()?;
        (o.checked_add(len)? <= self.1).then_some(o)
    }
}

impl pivisor::virtio::GuestRam for KvmRam {
    fn contains(&self, ipa: u64, len: u64) -> bool {
        usize::try_from(len).is_ok_and(|l| self.at(ipa, l).is_some())
    }
    fn read(&mut self, ipa: u64, out: &mut [u8]) -> bool {
        let Some(o) = self.at(ipa, out.len()) else {
            return false;
        };
        // SAFETY: inside the mapping (checked); the guest's memory model.
        unsafe { std::ptr::copy_nonoverlapping(self.0.add(o), out.as_mut_ptr(), out.len()) };
        true
    }
    fn write(&mut self, ipa: u64, data: &[u8]) -> bool {
        let Some(o) = self.at(ipa, data.len()) else {
            return false;
        };
        // SAFETY: as above.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.0.add(o), data.len()) };
        true
    }
    fn fence(&mut self) {
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    }
}

/// One vCPU's statistics file.
struct VcpuStats {
    file: std::fs::File,
    /// Offsets of [`stats::NAMES`] (None: this kernel lacks it).
    at: [Option<usize>; 7],
}

impl VcpuStats {
    fn open(vcpu: &VcpuFd) -> Result<Self, String> {
        // SAFETY: an ioctl without argument on a valid vCPU fd.
        let fd = unsafe { libc::ioctl(vcpu.as_raw_fd(), KVM_GET_STATS_FD as _, 0) };
        if fd < 0 {
            return Err(format!(
                "KVM_GET_STATS_FD: {} (Linux 5.14 or later needed)",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: a fresh fd the kernel just gave us.
        let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let mut head = vec![0u8; 1 << 16];
        let n = pread(&file, &mut head, 0);
        let layout = Layout::parse(&head[..n]).map_err(|e| e.to_string())?;
        let at = stats::NAMES.map(|n| layout.find(n));
        if at[0].is_none() {
            return Err("KVM's statistics have no 'exits' counter".into());
        }
        Ok(Self { file, at })
    }

    fn counts(&self) -> ExitCounts {
        let mut v = [0u64; 7];
        for (i, at) in self.at.iter().enumerate() {
            if let Some(at) = *at {
                let mut b = [0u8; 8];
                if pread(&self.file, &mut b, at as u64) == 8 {
                    v[i] = u64::from_le_bytes(b);
                }
            }
        }
        stats::exit_counts(&v)
    }
}

fn pread(f: &std::fs::File, buf: &mut [u8], at: u64) -> usize {
    use std::os::unix::fs::FileExt;
    f.read_at(buf, at).unwrap_or(0)
}

/// A KVM_SET_DEVICE_ATTR on the GIC.
fn gic_attr(gic: &kvm_ioctls::DeviceFd, group: u32, attr: u32, value: u64) -> Result<(), String> {
    let a = kvm_device_attr {
        flags: 0,
        group,
        attr: u64::from(attr),
        addr: if group == KVM_DEV_ARM_VGIC_GRP_CTRL {
            0
        } else {
            &value as *const u64 as u64
        },
    };
    gic.set_device_attr(&a)
        .map_err(|e| format!("GIC attribute group {group} attr {attr}: {e}"))
}

/// A core register's id for KVM_{GET,SET}_ONE_REG (offset in `struct
/// kvm_regs` in 32-bit words).
fn core_reg(word: u64) -> u64 {
    KVM_REG_ARM64 | KVM_REG_SIZE_U64 | u64::from(KVM_REG_ARM_CORE) | word
}

/// The terminal's attributes before [`raw_terminal`], restored at exit.
static SAVED: std::sync::Mutex<Option<libc::termios>> = std::sync::Mutex::new(None);

/// Puts the terminal on stdin in raw mode while the VM runs (the guest's
/// shell does its own echo and line editing); [`finish`] restores it.
fn raw_terminal() {
    // SAFETY: plain termios calls on fd 0; a zeroed termios is valid for
    // tcgetattr to fill.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::isatty(0) == 0 || libc::tcgetattr(0, &mut t) != 0 {
            return;
        }
        let saved = t;
        libc::cfmakeraw(&mut t);
        t.c_oflag |= libc::OPOST | libc::ONLCR;
        libc::tcsetattr(0, libc::TCSANOW, &t);
        *SAVED.lock().unwrap_or_else(|e| e.into_inner()) = Some(saved);
    }
}

/// Restores the terminal and ends the process.
fn finish(code: i32) -> ! {
    let _ = std::io::stdout().flush();
    if let Some(t) = *SAVED.lock().unwrap_or_else(|e| e.into_inner()) {
        // SAFETY: restoring the attributes read at start.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &t) };
    }
    std::process::exit(code)
}

/// Runs `m`; returns only on a setup error (the guest's end ends the
/// process).
pub fn run(m: Machine) -> Result<(), String> {
    let kvm = Kvm::new().map_err(|e| {
        format!("cannot open /dev/kvm: {e} (is the host kernel entered at EL2 with KVM built in?)")
    })?;
    let vm = Arc::new(kvm.create_vm().map_err(|e| format!("KVM_CREATE_VM: {e}"))?);

    // RAM.
    let size = m.ram as usize;
    // SAFETY: a fresh anonymous mapping.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(format!(
            "cannot map {} MiB of guest RAM: {}",
            m.ram >> 20,
            std::io::Error::last_os_error()
        ));
    }
    let ram = Ram(p.cast(), size);
    m.load(ram.slice());
    let region = kvm_userspace_memory_region {
        slot: 0,
        flags: 0,
        guest_phys_addr: 0,
        memory_size: m.ram,
        userspace_addr: p as u64,
    };
    // SAFETY: the region is our mapping, alive until the process ends.
    unsafe { vm.set_user_memory_region(region) }.map_err(|e| format!("memory slot: {e}"))?;

    // The GIC, then the vCPUs, then the GIC's initialisation.
    let mut dev = kvm_create_device {
        type_: kvm_device_type_KVM_DEV_TYPE_ARM_VGIC_V2,
        fd: 0,
        flags: 0,
    };
    let gic = vm.create_device(&mut dev).map_err(|e| {
        format!("in-kernel GICv2: {e} (the host's GIC must have its virtualization extensions in the device tree)")
    })?;
    gic_attr(
        &gic,
        KVM_DEV_ARM_VGIC_GRP_ADDR,
        KVM_VGIC_V2_ADDR_TYPE_DIST,
        GICD_IPA,
    )?;
    gic_attr(
        &gic,
        KVM_DEV_ARM_VGIC_GRP_ADDR,
        KVM_VGIC_V2_ADDR_TYPE_CPU,
        GICC_IPA,
    )?;
    let mut vcpus = Vec::new();
    for i in 0..m.vcpus {
        let v = vm
            .create_vcpu(i as u64)
            .map_err(|e| format!("vCPU {i}: {e}"))?;
        let mut kvi = kvm_vcpu_init::default();
        vm.get_preferred_target(&mut kvi)
            .map_err(|e| format!("KVM_ARM_PREFERRED_TARGET: {e}"))?;
        kvi.features[0] |= 1 << KVM_ARM_VCPU_PSCI_0_2;
        if i > 0 {
            kvi.features[0] |= 1 << KVM_ARM_VCPU_POWER_OFF;
        }
        v.vcpu_init(&kvi)
            .map_err(|e| format!("vCPU {i}: KVM_ARM_VCPU_INIT: {e}"))?;
        vcpus.push(v);
    }
    {
        let nr = NR_IRQS;
        let a = kvm_device_attr {
            flags: 0,
            group: KVM_DEV_ARM_VGIC_GRP_NR_IRQS,
            attr: 0,
            addr: &nr as *const u32 as u64,
        };
        gic.set_device_attr(&a)
            .map_err(|e| format!("GIC interrupt count: {e}"))?;
    }
    gic_attr(
        &gic,
        KVM_DEV_ARM_VGIC_GRP_CTRL,
        KVM_DEV_ARM_VGIC_CTRL_INIT,
        0,
    )?;
    // x0..x3 (words 0, 2, 4, 6) and pc (word 64) of vCPU 0; PSTATE is
    // KVM's reset value, EL1h with DAIF masked, as the boot protocol asks.
    let v0 = &vcpus[0];
    v0.set_one_reg(core_reg(64), &m.plan.kernel.to_le_bytes())
        .map_err(|e| format!("set pc: {e}"))?;
    v0.set_one_reg(core_reg(0), &m.plan.dtb.to_le_bytes())
        .map_err(|e| format!("set x0: {e}"))?;
    for w in [2u64, 4, 6] {
        v0.set_one_reg(core_reg(w), &0u64.to_le_bytes())
            .map_err(|e| format!("set x{}: {e}", w / 2))?;
    }

    let stats: Arc<Vec<VcpuStats>> = Arc::new(
        vcpus
            .iter()
            .map(VcpuStats::open)
            .collect::<Result<_, _>>()?,
    );
    let m = Arc::new(m);
    let host = KvmHost {
        vm: vm.clone(),
        m: m.clone(),
        ram,
        stats: stats.clone(),
        said: Arc::new(Mutex::new(std::collections::HashSet::new())),
        t0: std::time::Instant::now(),
        io: Arc::new(std::sync::atomic::AtomicBool::new(false)),
    };
    // pivisor's own device wiring (vm::attach); the real PL011 cannot be
    // passed through under KVM, so it becomes an emulated one.
    let io = host.io.clone();
    // Its network interface: a tap on the host's bridge (tap.rs).
    let net = m.net.map(|mac| pivisor::vm::config::NetConfig {
        lan: "pvbr0",
        bridge: true,
        mac: Some(mac),
        ip: None,
        line: 0,
    });
    let attached = attach(
        &m.devices,
        m.disk.as_ref(),
        net.as_ref(),
        0,
        m.vcpus,
        RealUart::Emulate,
        host,
    )
    .map_err(|e| format!("VM '{}': {e}", m.name))?;
    let (bus, uart, blk, vnet) = (attached.bus, attached.uart, attached.blk, attached.net);
    if let Some(dev) = attached.watchdog {
        // pivisor's SP805 model on the host's clock; a thread looks every
        // 10 ms (a guest hung at EL1 makes no exits), and an expiry ends
        // pv-vmm (it does not restart guests).
        let st = stats.clone();
        let name = m.name.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(std::time::Duration::from_millis(10));
            if dev.lock().expired() {
                eprintln!("\r\npv-vmm: VM '{name}' crashed: its watchdog expired\r");
                report(&st);
                finish(1);
            }
        });
    }
    let bus = Arc::new(Mutex::new(bus));

    eprintln!(
        "pv-vmm: VM '{}': {} vCPUs, {} MiB, kernel at {:#x}, device tree at {:#x}, devices: {}",
        m.name,
        m.vcpus,
        m.ram >> 20,
        m.plan.kernel,
        m.plan.dtb,
        m.devices
            .iter()
            .map(|d| d.name())
            .collect::<Vec<_>>()
            .join(", ")
    );
    raw_terminal();
    if let Some(u) = uart {
        std::thread::spawn(move || console_input(&u));
    }
    let mut threads = Vec::new();
    for (i, v) in vcpus.into_iter().enumerate() {
        let bus = bus.clone();
        let st = stats.clone();
        let name = m.name.clone();
        let disk =
            (blk.is_some() || vnet.is_some()).then(|| (blk.clone(), vnet.clone(), io.clone()));
        threads.push(std::thread::spawn(move || {
            vcpu_loop(i, v, &bus, &st, &name, disk)
        }));
    }
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

/// What the VM's devices ask of pv-vmm ([`Host`]): lines into KVM's
/// in-kernel GIC, console bytes to stdout, mailbox requests served with
/// pivisor's checks and no firmware, KVM's exit statistics.
#[derive(Clone)]
struct KvmHost {
    vm: Arc<kvm_ioctls::VmFd>,
    m: Arc<Machine>,
    ram: Ram,
    stats: Arc<Vec<VcpuStats>>,
    /// Mailbox complaints already said (Linux asks the same unanswerable
    /// questions many times at boot).
    said: Arc<Mutex<std::collections::HashSet<String>>>,
    t0: std::time::Instant,
    /// The disk has work left (polled on the vCPU's next exit).
    io: Arc<std::sync::atomic::AtomicBool>,
}

impl Host for KvmHost {
    fn set_line(&self, intid: u32, level: bool) {
        let irq = (KVM_ARM_IRQ_TYPE_SPI << KVM_ARM_IRQ_TYPE_SHIFT) | intid;
        if let Err(e) = self.vm.set_irq_line(irq, level) {
            eprintln!("pv-vmm: interrupt {intid}: {e}");
        }
    }
    fn uart_tx(&self, b: u8) {
        let _ = std::io::stdout().write_all(&[b]);
        let _ = std::io::stdout().flush();
    }
    // Standard output takes every byte (it blocks this vCPU's thread).
    fn uart_room(&self) -> bool {
        true
    }
    fn firmware(&self, word: u32) -> Option<u32> {
        let (answer, note) = mailbox_request(&self.m, self.ram.slice(), word);
        if let Some(n) = note {
            let mut said = self.said.lock();
            if said.len() < 64 && said.insert(n.clone()) {
                eprintln!("pv-vmm: {n} (said once)\r");
            }
        }
        answer
    }
    fn exit_count(&self, vcpu: Option<usize>, which: u64) -> u64 {
        let c = match vcpu {
            Some(v) => self.stats.get(v).map(VcpuStats::counts).unwrap_or_default(),
            None => sum(&self.stats),
        };
        c.select(which).unwrap_or(0)
    }
    fn watchdog_now(&self) -> u64 {
        (self.t0.elapsed().as_nanos() * u128::from(sp805::CLOCK_HZ) / 1_000_000_000) as u64
    }
    fn test_line(&self, line: &str) {
        eprintln!("pv-vmm: test device: {line}\r");
    }
    fn boots(&self) -> u32 {
        1
    }
    fn inject_fault(&self) {
        unreachable!("machine::load refuses devices = fault-injection")
    }
    fn ram(&self) -> Box<dyn pivisor::virtio::GuestRam + Send> {
        Box::new(KvmRam(self.ram.0, self.ram.1))
    }
    fn disk(
        &self,
        d: &pivisor::vm::config::DiskConfig,
    ) -> Result<Box<dyn pivisor::virtio::blk::Backend>, String> {
        crate::disk::HostPartition::open(d.partition, d.readonly)
            .map(|p| Box::new(p) as Box<dyn pivisor::virtio::blk::Backend>)
    }
    fn virtio_problem(&self, device: &str, e: &pivisor::virtio::queue::QueueError) {
        eprintln!("pv-vmm: {device}: {e}; the device needs a reset\r");
    }
    fn io_more(&self) {
        self.io.store(true, std::sync::atomic::Ordering::Release);
    }
    fn net_port(
        &self,
        n: &pivisor::vm::config::NetConfig<'_>,
    ) -> Result<
        (
            std::sync::Arc<pivisor::virtio::net::Port>,
            Box<dyn pivisor::virtio::net::Fabric>,
        ),
        String,
    > {
        let (tap, _) = crate::tap::open(&self.m.name)?;
        let rx = tap
            .try_clone()
            .map_err(|e| format!("net = {}: the tap: {e}", n.lan))?;
        let port = std::sync::Arc::new(pivisor::virtio::net::Port::new(
            n.mac
                .unwrap_or_else(|| pivisor::net::mac_from_name(&self.m.name)),
        ));
        let p = port.clone();
        std::thread::spawn(move || crate::tap::receive(rx, p));
        Ok((port, Box::new(crate::tap::TapFabric::new(tap))))
    }
}

fn sum(st: &[VcpuStats]) -> ExitCounts {
    let mut c = ExitCounts::default();
    for s in st {
        c += s.counts();
    }
    c
}

/// Bytes from stdin into the UART (Ctrl-A x quits, as in QEMU).
fn console_input(u: &Mutex<Pl011>) {
    let mut stdin = std::io::stdin().lock();
    let mut b = [0u8; 1];
    let mut ctrl_a = false;
    while stdin.read(&mut b).unwrap_or(0) == 1 {
        if ctrl_a && b[0] == b'x' {
            eprintln!("\r\npv-vmm: quit (Ctrl-A x)\r");
            finish(0);
        }
        ctrl_a = b[0] == 1;
        loop {
            let mut d = u.lock();
            if d.can_receive() {
                d.receive(b[0]);
                break;
            }
            drop(d);
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

/// The VM's disk, its network interface and their "work left" flag.
type Disk = (
    Option<Arc<Mutex<pivisor::vm::attach::BlkDevice>>>,
    Option<Arc<Mutex<pivisor::vm::attach::NetDevice>>>,
    Arc<std::sync::atomic::AtomicBool>,
);

fn vcpu_loop(
    i: usize,
    mut v: VcpuFd,
    bus: &Mutex<MmioBus>,
    st: &[VcpuStats],
    name: &str,
    disk: Option<Disk>,
) {
    let mut complaints = 0u32;
    loop {
        // Disk work the last exit left (its device bounds each serve).
        if let Some((b, n, io)) = &disk {
            while io.swap(false, std::sync::atomic::Ordering::AcqRel) {
                if let Some(b) = b {
                    b.lock().poll();
                }
                if let Some(n) = n {
                    n.lock().poll();
                }
            }
        }
        let mut bad = None;
        match v.run() {
            Ok(VcpuExit::MmioRead(addr, data)) => {
                match bus.lock().dispatch(addr, data.len() as u8, None) {
                    Ok(val) => data.copy_from_slice(&val.to_le_bytes()[..data.len()]),
                    Err(e) => bad = Some((addr, false, e)),
                }
            }
            Ok(VcpuExit::MmioWrite(addr, data)) => {
                let mut b = [0u8; 8];
                b[..data.len()].copy_from_slice(data);
                let store = Some(u64::from_le_bytes(b));
                if let Err(e) = bus.lock().dispatch(addr, data.len() as u8, store) {
                    bad = Some((addr, true, e));
                }
            }
            Ok(VcpuExit::SystemEvent(t, _)) => {
                let what = match t {
                    KVM_SYSTEM_EVENT_SHUTDOWN => "powered off (PSCI SYSTEM_OFF)",
                    KVM_SYSTEM_EVENT_RESET => "asked for a reset; pv-vmm does not reboot guests",
                    _ => "stopped (system event)",
                };
                eprintln!("\r\npv-vmm: VM '{name}' {what} on vCPU {i}\r");
                report(st);
                finish(0);
            }
            Ok(VcpuExit::Intr) => {}
            Ok(other) => {
                eprintln!("\r\npv-vmm: vCPU {i}: unexpected exit {other:?}; stopping\r");
                finish(1);
            }
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {}
            Err(e) => {
                eprintln!("\r\npv-vmm: vCPU {i}: KVM_RUN: {e}; stopping\r");
                finish(1);
            }
        }
        if let Some((addr, write, e)) = bad {
            if complaints < 16 {
                complaints += 1;
                eprintln!(
                    "\r\npv-vmm: vCPU {i}: {} at {addr:#x}: {e}; external abort injected{}\r",
                    if write { "store" } else { "load" },
                    if complaints == 16 {
                        " (further ones not logged)"
                    } else {
                        ""
                    }
                );
            }
            let mut ev = kvm_vcpu_events::default();
            ev.exception.ext_dabt_pending = 1;
            if let Err(e) = v.set_vcpu_events(&ev) {
                eprintln!("pv-vmm: vCPU {i}: cannot inject the abort: {e}");
            }
        }
    }
}

/// The access as pivisor's bus takes it (KVM has done the decoding).
/// The exit counts at the end, per vCPU, in the layout of pivisor's own
/// exit report.
fn report(st: &[VcpuStats]) {
    let all = sum(st);
    eprintln!("pv-vmm: exits: {} in all (KVM's statistics)\r", all.total());
    for (v, s) in st.iter().enumerate() {
        let c = s.counts();
        let kinds: Vec<String> = stats::KIND_NAMES
            .iter()
            .zip(c.0)
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        eprintln!("pv-vmm:   vCPU {v}: {} ({})\r", c.total(), kinds.join(", "));
    }
}
