//! Running guests at EL1: the EL2 trap configuration (HCR_EL2, MDCR_EL2,
//! VTCR/VTTBR, VPIDR/VMPIDR, ACTLR_EL2), the defined EL1 state a vCPU
//! starts from (booting.rst), the first entry, delivering injected
//! exceptions, and stage-2 TLB and cache maintenance.
//!
//! vCPUs are pinned one per core and never migrate, so a vCPU's EL1 system
//! registers and FP/SIMD state live in the hardware between exits (the
//! hypervisor itself is soft-float and touches neither); they are loaded
//! from defined values at every start (VM start, CPU_ON, SYSTEM_RESET).

use crate::exception::Frame;
use crate::trap::inject::Injection;
use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{HCR_EL2, MDCR_EL2};
use core::arch::asm;

extern "C" {
    /// vectors.s: loads a Frame onto the stack and erets through the
    /// exit path's restore code.
    fn guest_enter(frame: *const Frame, stack_top: u64) -> !;
}

/// HCR_EL2 for a guest: AArch64 EL1 (RW), stage 2 on (VM), physical IRQ,
/// FIQ and SError to EL2 (IMO, FMO, AMO), SMC trapped (TSC), set/way
/// cache maintenance trapped (TSW), ACTLR_EL1 and IMPLEMENTATION DEFINED
/// registers trapped (TACR, TIDCP). WFI/WFE are not trapped: a pinned
/// vCPU owns its core, so letting it sleep in hardware is cheapest, and a
/// physical interrupt still wakes it and exits to EL2. TID2 stays clear
/// (it would trap every EL0 read of CTR_EL0); FB/BSU are not needed
/// because vCPUs never migrate.
pub fn hcr_guest() -> u64 {
    (HCR_EL2::RW::EL1IsAarch64
        + HCR_EL2::TSW::SET
        + HCR_EL2::TACR::SET
        + HCR_EL2::TIDCP::SET
        + HCR_EL2::TSC::EnableTrapEl1SmcToEl2
        + HCR_EL2::AMO::SET
        + HCR_EL2::IMO::EnableVirtualIRQ
        + HCR_EL2::FMO::EnableVirtualFIQ
        + HCR_EL2::VM::Enable)
        .value
}

/// Configures this core's EL2 to run a vCPU of the VM with stage-2 root
/// `vttbr` (VMID included), guest MPIDR `vmpidr` and virtual counter
/// offset `cntvoff`, and discards any TLB entries and instruction cache
/// lines a previous run could have left.
pub fn configure_vcpu(vtcr: u64, vttbr: u64, vmpidr: u64, cntvoff: u64) {
    let pmcr_n: u64;
    let midr: u64;
    // SAFETY: reads of identification registers.
    unsafe {
        asm!("mrs {}, pmcr_el0", out(reg) pmcr_n, options(nomem, nostack));
        asm!("mrs {}, midr_el1", out(reg) midr, options(nomem, nostack));
    }
    // MDCR_EL2: debug (TDA, TDOSA, TDRA) and PMU (TPM, TPMCR) accesses
    // trap and are emulated as hidden (trap::sysreg); HPMN = PMCR_EL0.N
    // (0 is CONSTRAINED UNPREDICTABLE on ARMv8.0); TDE clear.
    let mdcr = (MDCR_EL2::TDRA::SET
        + MDCR_EL2::TDOSA::SET
        + MDCR_EL2::TDA::SET
        + MDCR_EL2::TPM::SET
        + MDCR_EL2::TPMCR::SET
        + MDCR_EL2::HPMN.val((pmcr_n >> 11) & 0x1f))
    .value;
    // SAFETY: EL2 configuration registers; they only affect EL1/EL0,
    // which is not running on this core now.
    unsafe {
        asm!(
            "msr hcr_el2, {hcr}",
            "msr mdcr_el2, {mdcr}",
            "msr vtcr_el2, {vtcr}",
            "msr vttbr_el2, {vttbr}",
            "msr vpidr_el2, {midr}",
            "msr vmpidr_el2, {vmpidr}",
            "msr actlr_el2, xzr",
            "msr cntvoff_el2, {cntvoff}",
            "isb",
            "tlbi vmalls12e1",
            "dsb nsh",
            "ic iallu",
            "dsb nsh",
            "isb",
            hcr = in(reg) hcr_guest(),
            mdcr = in(reg) mdcr,
            vtcr = in(reg) vtcr,
            vttbr = in(reg) vttbr,
            midr = in(reg) midr,
            vmpidr = in(reg) vmpidr,
            cntvoff = in(reg) cntvoff,
            options(nostack)
        );
    }
}

/// Loads the EL1 state booting.rst asks for at kernel entry: MMU and
/// caches off (SCTLR_EL1 RES1 bits only, little-endian), no translation,
/// vectors at 0, FP traps as at reset, timers off, EL0 counter access
/// off; every other register zeroed so nothing leaks from a previous run,
/// FP/SIMD included.
pub fn reset_el1() {
    const SCTLR_EL1_RES1: u64 =
        (1 << 29) | (1 << 28) | (1 << 23) | (1 << 22) | (1 << 20) | (1 << 11);
    // SAFETY: writes the guest's EL1 registers while no guest runs here.
    unsafe {
        asm!(
            "msr sctlr_el1, {sctlr}",
            "msr tcr_el1, xzr",
            "msr ttbr0_el1, xzr",
            "msr ttbr1_el1, xzr",
            "msr mair_el1, xzr",
            "msr amair_el1, xzr",
            "msr vbar_el1, xzr",
            "msr cpacr_el1, xzr",
            "msr contextidr_el1, xzr",
            "msr tpidr_el0, xzr",
            "msr tpidr_el1, xzr",
            "msr tpidrro_el0, xzr",
            "msr sp_el0, xzr",
            "msr sp_el1, xzr",
            "msr elr_el1, xzr",
            "msr spsr_el1, xzr",
            "msr esr_el1, xzr",
            "msr far_el1, xzr",
            "msr afsr0_el1, xzr",
            "msr afsr1_el1, xzr",
            "msr par_el1, xzr",
            "msr csselr_el1, xzr",
            "msr cntkctl_el1, xzr",
            "msr cntv_ctl_el0, xzr",
            "msr cntp_ctl_el0, xzr",
            "msr cntv_cval_el0, xzr",
            "msr cntp_cval_el0, xzr",
            "msr mdscr_el1, xzr",
            "isb",
            sctlr = in(reg) SCTLR_EL1_RES1,
            options(nostack)
        );
    }
    reset_fp_simd();
}

/// Zeroes the FP/SIMD registers, FPCR and FPSR: the hypervisor never
/// touches them (soft-float), so without this a restarted VM would start
/// with its previous life's vector registers. CPTR_EL2.TFP is clear, so
/// EL2 may.
fn reset_fp_simd() {
    // SAFETY: only the guest's FP/SIMD state changes, while no guest runs
    // on this core.
    unsafe {
        asm!(
            ".arch_extension fp",
            ".arch_extension simd",
            "movi v0.2d, #0",
            "movi v1.2d, #0",
            "movi v2.2d, #0",
            "movi v3.2d, #0",
            "movi v4.2d, #0",
            "movi v5.2d, #0",
            "movi v6.2d, #0",
            "movi v7.2d, #0",
            "movi v8.2d, #0",
            "movi v9.2d, #0",
            "movi v10.2d, #0",
            "movi v11.2d, #0",
            "movi v12.2d, #0",
            "movi v13.2d, #0",
            "movi v14.2d, #0",
            "movi v15.2d, #0",
            "movi v16.2d, #0",
            "movi v17.2d, #0",
            "movi v18.2d, #0",
            "movi v19.2d, #0",
            "movi v20.2d, #0",
            "movi v21.2d, #0",
            "movi v22.2d, #0",
            "movi v23.2d, #0",
            "movi v24.2d, #0",
            "movi v25.2d, #0",
            "movi v26.2d, #0",
            "movi v27.2d, #0",
            "movi v28.2d, #0",
            "movi v29.2d, #0",
            "movi v30.2d, #0",
            "movi v31.2d, #0",
            "msr fpcr, xzr",
            "msr fpsr, xzr",
            options(nomem, nostack)
        );
    }
}

/// Enters the guest with the registers in `frame`, on a fresh EL2 stack.
///
/// # Safety
/// `frame` must not be on this core's EL2 stack, and the core must be
/// configured for the vCPU ([`configure_vcpu`], [`reset_el1`]).
pub unsafe fn enter(frame: &Frame, stack_top: u64) -> ! {
    // SAFETY: the caller's contract; guest_enter never returns.
    unsafe { guest_enter(frame, stack_top) }
}

/// The guest's VBAR_EL1.
pub fn vbar_el1() -> u64 {
    let v: u64;
    // SAFETY: reads a register.
    unsafe { asm!("mrs {}, vbar_el1", out(reg) v, options(nomem, nostack)) };
    v
}

/// Delivers an injected exception: EL1 syndrome registers, then the
/// guest resumes at its vector.
pub fn apply_injection(frame: &mut Frame, inj: &Injection) {
    // SAFETY: writes the current guest's EL1 exception registers.
    unsafe {
        asm!(
            "msr elr_el1, {elr}",
            "msr spsr_el1, {spsr}",
            "msr esr_el1, {esr}",
            elr = in(reg) inj.elr_el1,
            spsr = in(reg) inj.spsr_el1,
            esr = in(reg) inj.esr_el1,
            options(nostack)
        );
        if let Some(far) = inj.far_el1 {
            asm!("msr far_el1, {}", in(reg) far, options(nostack));
        }
    }
    frame.elr = inj.pc;
    frame.spsr = inj.pstate;
}

/// Makes a virtual SError pending for the guest (HCR_EL2.VSE).
pub fn raise_virtual_serror() {
    // SAFETY: sets one HCR_EL2 bit for the running guest.
    unsafe {
        asm!(
            "mrs {t}, hcr_el2",
            "orr {t}, {t}, {vse}",
            "msr hcr_el2, {t}",
            t = out(reg) _,
            vse = in(reg) HCR_EL2::VSE::SET.value,
            options(nostack)
        );
    }
}

/// DC CISW with a guest-supplied set/way operand. Clean-and-invalidate by
/// set/way only ever writes dirty lines back, so any operand is harmless
/// to other VMs; out-of-range set/way values are ignored by the hardware.
pub fn dc_cisw(operand: u64) {
    // SAFETY: cache maintenance without data loss.
    unsafe { asm!("dc cisw, {}", "dsb sy", in(reg) operand, options(nostack)) };
}

/// After changing the stage-2 entry for `ipa` of the VM whose VTTBR is
/// loaded on this core: invalidate it everywhere (inner shareable), then
/// the combined stage-1+2 entries of the VMID.
pub fn flush_ipa(ipa: u64) {
    // SAFETY: TLB maintenance.
    unsafe {
        asm!(
            "dsb ishst",
            "tlbi ipas2e1is, {}",
            "dsb ish",
            "tlbi vmalle1is",
            "dsb ish",
            "isb",
            in(reg) ipa >> 12,
            options(nostack)
        );
    }
}

/// Invalidates every stage-1 and stage-2 TLB entry of the VMID in
/// VTTBR_EL2 on every core (inner shareable): a restarted VM must not
/// find its previous life's translations anywhere.
pub fn flush_vmid_everywhere() {
    // SAFETY: TLB maintenance for the VMID loaded on this core.
    unsafe {
        asm!(
            "dsb ishst",
            "tlbi vmalls12e1is",
            "dsb ish",
            "isb",
            options(nostack)
        )
    };
}

/// Makes stage-2 tables and loaded images visible to table walks and to
/// a guest running with its caches off.
pub fn publish_memory() {
    barrier::dsb(barrier::ISH);
}
