//! A VM before it is built: the bundle and configuration read, every
//! passed-through device resolved and refused or accepted
//! ([`super::passthrough::resolve`]), and each VM's RAM taken out of free
//! memory (identity RAM where its DMA masters reach) before the frame
//! allocator gets the rest. [`super::build`] builds from this.

use super::passthrough::{self, Owned};
use crate::dt::host::HostInfo;
use crate::mm::stage2;
use crate::region::{Range, RangeSet, Size};
use crate::vm::bundle::Bundle;
use crate::vm::config::{self, VmConfig};
use crate::vm::image::{self, LoadPlan};
use crate::vm::ram::{GuestRam, MAX_CHUNKS};
use alloc::string::String;
use alloc::vec::Vec;

/// A configured VM before its stage-2 tables exist.
pub struct Prepared {
    pub(super) cfg: VmConfig<'static>,
    pub(super) ram: GuestRam,
    pub(super) kernel: &'static [u8],
    pub(super) initrd: Option<&'static [u8]>,
    pub(super) extra: Option<&'static [u8]>,
    pub(super) plan: LoadPlan,
    pub(super) owned: Vec<Owned>,
}

/// The firmware-tree paths of the devices prepared VMs own (the SD probe
/// leaves those controllers alone).
pub fn owned_paths(p: &[Prepared]) -> Vec<String> {
    p.iter()
        .flat_map(|v| v.owned.iter().map(|o| o.dev.path.clone()))
        .collect()
}

/// Reads the bundle and configuration and takes each VM's RAM out of
/// `usable`. Runs before the frame allocator gets the rest.
pub fn prepare(
    info: &HostInfo<'static>,
    usable: &mut RangeSet<48>,
) -> Result<Vec<Prepared>, String> {
    let Some(rd) = info.initrd else {
        return Err("no guest bundle: the firmware loaded no initramfs (config.txt: `initramfs guests.img followkernel`; QEMU: -initrd guests.img)".into());
    };
    // SAFETY: the initrd range is reserved RAM, identity-mapped, never
    // written by anyone after the firmware loaded it.
    let blob: &'static [u8] =
        unsafe { core::slice::from_raw_parts(rd.start as *const u8, rd.size() as usize) };
    let bundle = Bundle::parse(blob).map_err(|e| alloc::format!("guest bundle at {rd}: {e}"))?;
    let text = bundle
        .config()
        .map_err(|e| alloc::format!("guest bundle: {e}"))?;
    let vms = config::parse(text).map_err(|e| alloc::format!("vms.conf: {e}"))?;
    let mut aligned = *usable;
    aligned.shrink_to(stage2::BLOCK);
    config::check_fits(&vms, info.cpus.len().min(4), aligned.total())
        .map_err(|e| alloc::format!("vms.conf: {e}"))?;
    let owned = passthrough::resolve(info, &vms).map_err(|e| alloc::format!("vms.conf: {e}"))?;
    let mut out = Vec::new();
    for (cfg, owned) in vms.into_iter().zip(owned) {
        let what = |e: &dyn core::fmt::Display| alloc::format!("VM '{}': {e}", cfg.name);
        let f = image::vm_files(&bundle, &cfg)?;
        let (kernel, initrd, extra, mut plan) = (f.kernel, f.initrd, f.extra, f.plan);
        let mut ram = GuestRam::new();
        let identity = cfg
            .identity
            .then(|| passthrough::identity_range(&cfg, &owned, &aligned, stage2::BLOCK))
            .transpose()
            .map_err(|e| what(&e))?;
        match cfg.memory_at {
            _ if identity.is_some() => {
                let r = identity.unwrap_or_default();
                let _ = usable.remove(r);
                let _ = aligned.remove(r);
                ram = GuestRam::identity(r.start, r.size())
                    .ok_or_else(|| what(&"identity RAM must lie below 0xfc000000"))?;
                plan = plan.at(r.start);
            }
            Some(at) => {
                let r =
                    Range::from_size(at, cfg.memory).ok_or_else(|| what(&"memory-at overflows"))?;
                if !aligned.ranges().iter().any(|u| u.contains_range(&r)) {
                    return Err(what(&alloc::format!("memory-at: {r} is not free RAM")));
                }
                let _ = usable.remove(r);
                let _ = aligned.remove(r);
                if !ram.push(r.start, r.size()) {
                    return Err(what(
                        &"memory: does not fit the guest-physical address space",
                    ));
                }
            }
            None => {
                let pieces = aligned
                    .take_pieces(cfg.memory, stage2::BLOCK, MAX_CHUNKS)
                    .ok_or_else(|| {
                        what(&alloc::format!("no room for {} of RAM", Size(cfg.memory)))
                    })?;
                for p in pieces.iter() {
                    let _ = usable.remove(*p);
                    if !ram.push(p.start, p.size()) {
                        return Err(what(&alloc::format!(
                            "memory: {} does not fit the guest-physical layout ({} host pieces at most)",
                            Size(cfg.memory),
                            MAX_CHUNKS
                        )));
                    }
                }
            }
        }
        out.push(Prepared {
            cfg,
            ram,
            kernel,
            initrd,
            extra,
            plan,
            owned,
        });
    }
    Ok(out)
}
