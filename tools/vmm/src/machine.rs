//! The VM pv-vmm builds, planned from a pivisor guest bundle exactly as
//! pivisor plans it: the same configuration parser, the same kernel load
//! plan (kernel at its text offset, initrd below the device tree in RAM's
//! last 2 MiB block) and the same device tree (pivisor's own writer), so
//! a guest sees one machine whichever of the two runs it. Pure: no KVM
//! here, host-tested.

use pivisor::devices::mailbox::policy::Policy;
use pivisor::devices::mailbox::property::{Firmware, View};
use pivisor::devices::mailbox::request;
use pivisor::vm::bundle::Bundle;
use pivisor::vm::config::{self, Device};
use pivisor::vm::fdt::{self, VmTree};
use pivisor::vm::image::{self, LoadPlan};

/// Everything needed to start the VM.
#[derive(Debug, Clone)]
pub struct Machine {
    /// The VM's name.
    pub name: String,
    /// vCPUs (the configuration's core count).
    pub vcpus: usize,
    /// RAM bytes at IPA 0.
    pub ram: u64,
    /// Where the kernel, initrd and device tree go.
    pub plan: LoadPlan,
    /// The kernel image.
    pub kernel: Vec<u8>,
    /// The initrd, if any.
    pub initrd: Option<Vec<u8>>,
    /// The device tree.
    pub dtb: Vec<u8>,
    /// The configured devices.
    pub devices: Vec<Device>,
    /// The mailbox policy.
    pub mailbox: Policy,
    /// The serial number and MAC the VM sees (None: the board's, which
    /// this VMM cannot ask the firmware for).
    pub serial: Option<u64>,
    /// See `serial`.
    pub mac: Option<[u8; 6]>,
    /// The kernel command line.
    pub bootargs: String,
    /// Its disk: a partition of the host's SD card.
    pub disk: Option<pivisor::vm::config::DiskConfig>,
    /// Its network interface: its MAC (a tap on the host's bridge).
    pub net: Option<[u8; 6]>,
}

/// Plans VM `name` (None: the bundle's first) of the bundle `blob`.
pub fn plan(blob: &[u8], name: Option<&str>) -> Result<Machine, String> {
    let bundle = Bundle::parse(blob).map_err(|e| format!("guest bundle: {e}"))?;
    let text = bundle.config().map_err(|e| format!("guest bundle: {e}"))?;
    let vms = config::parse(text).map_err(|e| format!("vms.conf: {e}"))?;
    let (index, cfg) = match name {
        None => vms.iter().enumerate().next(),
        Some(n) => vms.iter().enumerate().find(|(_, v)| v.name == n),
    }
    .ok_or_else(|| match name {
        Some(n) => format!(
            "the bundle has no VM '{n}' (it has: {})",
            vms.iter().map(|v| v.name).collect::<Vec<_>>().join(", ")
        ),
        None => "the bundle configures no VM".into(),
    })?;
    let what = |e: &dyn std::fmt::Display| format!("VM '{}': {e}", cfg.name);
    if cfg.devices.contains(&Device::TestDev) {
        return Err(what(
            &"devices = testdev is pivisor's own test device; pv-vmm has no model of it",
        ));
    }
    if cfg.devices.contains(&Device::FaultInjection) {
        return Err(what(
            &"devices = fault-injection panics pivisor's own core; pv-vmm has no such fault",
        ));
    }
    if !cfg.passthrough.is_empty() || cfg.identity {
        return Err(what(
            &"passthrough and identity RAM give a VM the board's own devices; pv-vmm runs under KVM with none to give",
        ));
    }
    if cfg.memory > pivisor::vm::layout::LOW_RAM_END {
        // pivisor puts RAM past the peripheral window at 4 GiB; this VMM's
        // RAM is one flat slot from IPA 0, so it cannot give the same map.
        return Err(what(&format!(
            "memory = {} MiB: pv-vmm gives a VM at most {} MiB (RAM below the peripheral window)",
            cfg.memory >> 20,
            pivisor::vm::layout::LOW_RAM_END >> 20
        )));
    }
    let f = pivisor::vm::image::vm_files(&bundle, cfg)?;
    let (kernel, initrd, extra, plan) = (f.kernel, f.initrd, f.extra, f.plan);
    let bootargs = cfg.command_line(index);
    let dtb = fdt::build(&VmTree {
        index,
        name: cfg.name,
        vcpus: cfg.cores.len(),
        ram: cfg.memory,
        ram_base: 0,
        host: &[],
        pt: &[],
        bootargs: &bootargs,
        initrd: plan.initrd,
        devices: &cfg.devices,
        extra,
        disk: cfg.disk.is_some(),
        net: cfg.net.is_some(),
    })
    .map_err(|e| what(&e))?;
    if dtb.len() as u64 > image::DTB_MAX {
        return Err(what(&"its device tree exceeds 2 MiB"));
    }
    Ok(Machine {
        name: cfg.name.to_string(),
        vcpus: cfg.cores.len(),
        ram: cfg.memory,
        plan,
        kernel: kernel.to_vec(),
        initrd: initrd.map(<[u8]>::to_vec),
        dtb,
        devices: cfg.devices.clone(),
        mailbox: cfg.mailbox,
        serial: cfg.serial,
        mac: cfg.mac,
        bootargs,
        disk: cfg.disk,
        net: cfg.net.map(|n| n.mac_for(cfg.name)),
    })
}

impl Machine {
    /// Copies the kernel, initrd and device tree into `ram` (the VM's
    /// RAM from IPA 0, `self.ram` bytes).
    pub fn load(&self, ram: &mut [u8]) {
        let mut put = |at: u64, data: &[u8]| {
            let at = at as usize;
            ram[at..at + data.len()].copy_from_slice(data);
        };
        put(self.plan.kernel, &self.kernel);
        if let (Some((at, _)), Some(rd)) = (self.plan.initrd, &self.initrd) {
            put(at, rd);
        }
        put(self.plan.dtb, &self.dtb);
    }
}

/// No firmware behind this VMM: user space on the KVM host cannot reach
/// the VideoCore, so tags pivisor would forward fail here (the buffer
/// code says error; tags answered from the VM's own view still work).
pub struct NoFirmware;

impl Firmware for NoFirmware {
    fn call(&mut self, _buf: &mut [u8]) -> Result<(), &'static str> {
        Err("pv-vmm has no firmware to forward to")
    }
}

/// Serves a mailbox request word (channel | bus address) against the
/// VM's RAM with pivisor's own checks ([`request::serve`]). Returns the
/// response word to queue (None: no answer) and a complaint for the log,
/// if any.
pub fn mailbox_request(m: &Machine, ram: &mut [u8], word: u32) -> (Option<u32>, Option<String>) {
    let view = View {
        ram_base: 0,
        ram: m.ram,
        serial: m.serial,
        mac: m.mac,
        cmdline: &m.bootargs,
    };
    let mut mem: &mut [u8] = ram;
    let s = request::serve(word, &mut mem, &m.mailbox, &view, &mut NoFirmware);
    let note = match (s.problem, s.outcome) {
        (Some(p), _) => Some(p.to_string()),
        (None, Some(o)) if !(o.failed.is_empty() && o.refused.is_empty()) => Some(format!(
            "mailbox: tags refused {:x?}, unanswered {:x?} (no firmware behind pv-vmm)",
            o.refused, o.failed
        )),
        _ => None,
    };
    (s.answer, note)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pivisor::devices::mailbox::property;
    use pivisor::vm::bundle;

    fn kernel() -> Vec<u8> {
        let mut k = vec![0u8; 8192];
        k[8..16].copy_from_slice(&0x8_0000u64.to_le_bytes());
        k[16..24].copy_from_slice(&0x1_0000u64.to_le_bytes());
        k[56..60].copy_from_slice(&image::MAGIC.to_le_bytes());
        k
    }

    fn blob(conf: &str) -> Vec<u8> {
        let k = kernel();
        bundle::write(&[
            ("vms.conf", conf.as_bytes()),
            ("k.img", &k),
            ("rd", b"initrd!"),
        ])
        .unwrap()
    }

    const CONF: &str = "[vm a]\ncores = 0-1\nmemory = 16M\nkernel = k.img\n\
                        [vm b]\ncores = 2-3\nmemory = 32M\nkernel = k.img\ninitrd = rd\n\
                        devices = mailbox, uart, counters\nbootargs = hello\n";

    #[test]
    fn plans_as_pivisor_does() {
        let b = blob(CONF);
        let a = plan(&b, None).unwrap();
        assert_eq!((a.name.as_str(), a.vcpus, a.ram), ("a", 2, 16 << 20));
        assert_eq!(a.plan.kernel, 0x8_0000);
        let m = plan(&b, Some("b")).unwrap();
        assert_eq!((m.vcpus, m.ram), (2, 32 << 20));
        let (rd_at, rd_len) = m.plan.initrd.unwrap();
        assert_eq!(rd_len, 7);
        assert!(rd_at + rd_len <= m.plan.dtb);
        // The device tree is pivisor's: the same bytes for the same VM.
        let again = fdt::build(&VmTree {
            index: 1,
            name: "b",
            vcpus: 2,
            ram: 32 << 20,
            ram_base: 0,
            host: &[],
            pt: &[],
            bootargs: "hello",
            initrd: m.plan.initrd,
            devices: &m.devices,
            extra: None,
            disk: false,
            net: false,
        })
        .unwrap();
        assert_eq!(m.dtb, again);
        let mut ram = vec![0u8; m.ram as usize];
        m.load(&mut ram);
        assert_eq!(&ram[rd_at as usize..][..7], b"initrd!");
        assert_eq!(&ram[m.plan.dtb as usize..][..4], &[0xd0, 0x0d, 0xfe, 0xed]);
    }

    #[test]
    fn explains_what_it_cannot_run() {
        let b = blob(CONF);
        let e = plan(&b, Some("zz")).unwrap_err();
        assert!(e.contains("no VM 'zz'") && e.contains("a, b"), "{e}");
        assert!(plan(b"not a bundle", None).is_err());
        let t = blob("[vm t]\ncores = 0\nmemory = 16M\nkernel = k.img\ndevices = testdev\n");
        assert!(plan(&t, None).unwrap_err().contains("testdev"));
        let missing = blob("[vm t]\ncores = 0\nmemory = 16M\nkernel = nope\n");
        assert!(plan(&missing, None).unwrap_err().contains("'nope'"));
    }

    #[test]
    fn mailbox_requests_are_checked() {
        let b = blob(CONF);
        let m = plan(&b, Some("b")).unwrap();
        let mut ram = vec![0u8; m.ram as usize];
        // Wrong channel: no answer.
        assert_eq!(mailbox_request(&m, &mut ram, 0xc000_1009).0, None);
        // Outside RAM: answered, untouched, complained about.
        let (r, note) = mailbox_request(&m, &mut ram, 0xc000_0008 + 0x0400_0000);
        assert_eq!(r, Some(0xc400_0008));
        assert!(note.unwrap().contains("not in the VM's RAM"));
        // A lying size: code word becomes an error.
        ram[0x1000..0x1004].copy_from_slice(&3u32.to_le_bytes());
        let (_, note) = mailbox_request(&m, &mut ram, 0xc000_1008);
        assert!(note.is_some());
        assert_eq!(&ram[0x1004..0x1008], &property::CODE_ERROR.to_le_bytes());
        // GET_ARM_MEMORY (0x10005): answered from the VM's view.
        let words: [u32; 8] = [32, 0, 0x10005, 8, 0, 0, 0, 0];
        for (i, w) in words.iter().enumerate() {
            ram[0x2000 + 4 * i..][..4].copy_from_slice(&w.to_le_bytes());
        }
        let (r, note) = mailbox_request(&m, &mut ram, 0xc000_2008);
        assert_eq!((r, note), (Some(0xc000_2008), None));
        let w = |i: usize| u32::from_le_bytes(ram[0x2000 + 4 * i..][..4].try_into().unwrap());
        assert_eq!((w(1), w(5), w(6)), (0x8000_0000, 0, 32 << 20));
    }
}
