//! Copying between the hypervisor and a VM's RAM through the cacheable
//! map: 64 bytes per step with unaligned pair loads and stores.
//!
//! The target is built `+strict-align` (the hypervisor runs with its MMU
//! off at first, where every access is Device memory and an unaligned one
//! faults), so the compiler's `memcpy` moves a misaligned copy byte by
//! byte: about 22 instructions per 8 bytes, most of a frame's cost
//! between two VMs, whose buffers rarely share an alignment. Normal
//! memory with SCTLR_EL2.A clear takes unaligned accesses (ARM ARM
//! B2.5.2), so for RAM after the MMU is on this copies with `ldp`/`stp`
//! whatever the alignment: 10 instructions per 64 bytes.

use core::arch::asm;

/// Copies `n` bytes from `src` to `dst`.
///
/// # Safety
/// Both ranges are valid, do not overlap, and are Normal memory mapped
/// by the EL2 MMU (never before it is on: see src/console.rs's rule).
pub unsafe fn copy_normal(dst: *mut u8, src: *const u8, n: usize) {
    let blocks = n / 64;
    let words = (n % 64) / 8;
    let (mut d, mut s) = (dst, src);
    if blocks > 0 {
        // SAFETY: in bounds (the caller's ranges); Normal memory takes
        // unaligned pair accesses.
        unsafe {
            asm!(
                "2:",
                "ldp {a}, {b}, [{s}], #64",
                "ldp {c}, {e}, [{s}, #-48]",
                "ldp {g}, {h}, [{s}, #-32]",
                "ldp {i}, {j}, [{s}, #-16]",
                "stp {a}, {b}, [{d}], #64",
                "stp {c}, {e}, [{d}, #-48]",
                "stp {g}, {h}, [{d}, #-32]",
                "stp {i}, {j}, [{d}, #-16]",
                "subs {k}, {k}, #1",
                "b.ne 2b",
                s = inout(reg) s,
                d = inout(reg) d,
                k = inout(reg) blocks => _,
                a = out(reg) _,
                b = out(reg) _,
                c = out(reg) _,
                e = out(reg) _,
                g = out(reg) _,
                h = out(reg) _,
                i = out(reg) _,
                j = out(reg) _,
                options(nostack),
            );
        }
    }
    if words > 0 {
        // SAFETY: as above.
        unsafe {
            asm!(
                "2:",
                "ldr {a}, [{s}], #8",
                "str {a}, [{d}], #8",
                "subs {k}, {k}, #1",
                "b.ne 2b",
                s = inout(reg) s,
                d = inout(reg) d,
                k = inout(reg) words => _,
                a = out(reg) _,
                options(nostack),
            );
        }
    }
    for i in 0..n % 8 {
        // SAFETY: the last bytes of the caller's ranges.
        unsafe { d.add(i).write(s.add(i).read()) };
    }
}
