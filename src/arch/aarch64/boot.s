// pivisor entry points: the arm64 Image header, the primary core's entry
// (self-relocation, BSS, stack) and the secondary cores' entry.
//
// Image header layout: Linux Documentation/arch/arm64/booting.rst, "Call the
// kernel image". The loader (Pi 4 firmware or QEMU) enters at _start at EL2,
// MMU and D-cache off, x0 = physical address of the device tree.

.section .text.head, "ax"
.global _start
_start:
    b       primary_entry           // code0: branch past the header
    .long   0                       // code1
    .quad   0                       // text_offset (tools/mkimage sets it)
    .quad   __image_size            // image_size: file + BSS + stacks
    .quad   {IMAGE_FLAGS}           // flags: LE, 4 KiB pages, place anywhere
    .quad   0                       // res2
    .quad   0                       // res3
    .quad   0                       // res4
    .ascii  "ARM\x64"               // magic
    .long   0                       // res5

.section .text.boot, "ax"
primary_entry:
    msr     daifset, #0xf
    mov     x19, x0                 // device tree address
    adr     x20, _start             // load address (linked at 0)

    // adrp-based addressing needs a 4 KiB aligned load address.
    tst     x20, #0xfff
    b.ne    park_early

    // Apply R_AARCH64_RELATIVE relocations: *(base + offset) = base + addend.
    adrp    x1, __rela_start
    add     x1, x1, :lo12:__rela_start
    adrp    x2, __rela_end
    add     x2, x2, :lo12:__rela_end
1:  cmp     x1, x2
    b.hs    2f
    ldp     x3, x4, [x1], #16       // r_offset, r_info
    ldr     x5, [x1], #8            // r_addend
    cmp     w4, #1027               // R_AARCH64_RELATIVE
    b.ne    park_early              // no other kind can be handled here
    add     x5, x5, x20
    str     x5, [x20, x3]
    b       1b

    // Zero BSS.
2:  adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
3:  cmp     x1, x2
    b.hs    4f
    stp     xzr, xzr, [x1], #16
    b       3b

    // Core 0's stack is the first per-core stack.
4:  adrp    x1, __stacks_start
    add     x1, x1, :lo12:__stacks_start
    mov     x2, #{STACK_SIZE}
    add     sp, x1, x2
    mov     x29, xzr
    mov     x30, xzr

    // EL2 state the Rust code relies on; skipped at another EL, which the
    // Rust entry then reports.
    mrs     x1, CurrentEL
    ubfx    x1, x1, #2, #2
    cmp     x1, #2
    b.ne    5f
    msr     tpidr_el2, xzr          // logical core index 0
    adrp    x2, __exception_vectors
    add     x2, x2, :lo12:__exception_vectors
    msr     vbar_el2, x2
    isb
5:  mov     x0, x19                 // dtb
    // x1 = current EL
    mov     x2, x20                 // load address
    bl      rust_primary_entry
    b       park_early

// Secondary cores arrive here from the spin table (or PSCI CPU_ON) at EL2,
// MMU off. The primary has written SECONDARY_BOOT (stack top, core index,
// MMU registers) and cleaned it to the point of coherency. The MMU goes on
// before the stack is touched: writes made with caches off are not coherent
// with lines another core may hold for the same memory.
.global secondary_entry
secondary_entry:
    msr     daifset, #0xf
    mrs     x1, CurrentEL
    ubfx    x1, x1, #2, #2
    cmp     x1, #2
    b.ne    park_early
    adrp    x0, SECONDARY_BOOT
    add     x0, x0, :lo12:SECONDARY_BOOT
    mov     x19, x0
    ldp     x20, x2, [x19]          // stack top, logical core index
    msr     tpidr_el2, x2
    ldp     x0, x1, [x19, #16]      // TTBR0_EL2, TCR_EL2
    ldp     x2, x3, [x19, #32]      // MAIR_EL2, SCTLR_EL2
    bl      el2_mmu_enable          // uses no stack
    mov     sp, x20
    mov     x0, x19
    adrp    x2, __exception_vectors
    add     x2, x2, :lo12:__exception_vectors
    msr     vbar_el2, x2
    isb
    mov     x29, xzr
    mov     x30, xzr
    bl      rust_secondary_entry    // x0 = &SECONDARY_BOOT
    b       park_early

// el2_mmu_enable(ttbr, tcr, mair, sctlr): the EL2 MMU enable sequence (ARM
// ARM D8.2): translation registers, ISB, invalidate the EL2 TLB and the
// I-cache, DSB, ISB, then SCTLR_EL2 and ISB. Touches no memory or stack, so
// it serves both the primary (from Rust) and secondaries (before any stack).
.global el2_mmu_enable
el2_mmu_enable:
    msr     mair_el2, x2
    msr     tcr_el2, x1
    msr     ttbr0_el2, x0
    isb
    tlbi    alle2
    dsb     ish
    isb
    ic      iallu
    dsb     ish
    isb
    msr     sctlr_el2, x3
    isb
    ret

// Nothing can be reported this early: sleep forever (wfi: under QEMU a
// wfe loop spins on the host CPU).
.global park_early
park_early:
    msr     daifset, #0xf
6:  wfi
    b       6b
