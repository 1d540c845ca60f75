// The micro-benchmark guest's entry: core 0 and the secondaries, the drop
// from EL2 to EL1 when booted natively, the identity map, and the EL2
// stub vectors (the EL1 ones: ../../el1-vectors.s).
//
// Entered at EL1 (under a hypervisor: booting.rst, x0 = device tree on
// vCPU 0, the CPU_ON context on others) or at EL2 (natively, by QEMU or
// the firmware: x0 = device tree on core 0; cores 1-3 come from the spin
// table with x0 = 0). bench_main(dtb, native) and secondary_main(native)
// get native = 1 when the guest was entered at EL2.

// (The Image header comes first: ../../image-header.s.)
.section .text.head, "ax"
primary:
    msr     daifset, #0xf
    mov     x19, x0
    bl      to_el1                  // x20 = 1 if entered at EL2
    bl      mmu_on
    ldr     x1, =_bss_start
    ldr     x2, =_bss_end
1:  cmp     x1, x2
    b.hs    2f
    str     xzr, [x1], #8
    b       1b
2:  ldr     x1, =_stacks
    add     sp, x1, #0x4000
    ldr     x1, =vectors
    msr     vbar_el1, x1
    isb
    mov     x0, x19
    mov     x1, x20
    bl      bench_main
3:  wfi
    b       3b

// Secondaries: natively from the spin table, otherwise from PSCI CPU_ON.
.global secondary_entry
secondary_entry:
    msr     daifset, #0xf
    bl      to_el1
    bl      mmu_on
    mrs     x1, mpidr_el1
    and     x1, x1, #3
    ldr     x2, =_stacks
    add     x1, x1, #1
    lsl     x1, x1, #14
    add     sp, x2, x1
    ldr     x1, =vectors
    msr     vbar_el1, x1
    isb
    mov     x0, x20
    bl      secondary_main
4:  wfi
    b       4b

// At EL1: x20 = 0. At EL2 (native): a minimal hypervisor configuration
// (EL1 is AArch64, no stage 2, EL1 owns the physical counter and timer,
// CNTVOFF 0, no FP/SIMD traps), the stub vectors below, then an eret to
// EL1h with interrupts masked; x20 = 1. Preserves x0-x19.
to_el1:
    mov     x20, #0
    mrs     x21, CurrentEL
    cmp     x21, #(2 << 2)
    b.ne    1f
    mov     x20, #1
    ldr     x21, =el2_vectors
    msr     vbar_el2, x21
    mov     x21, #(1 << 31)         // HCR_EL2.RW
    msr     hcr_el2, x21
    mov     x21, #3                 // CNTHCTL_EL2.EL1PCTEN | EL1PCEN
    msr     cnthctl_el2, x21
    msr     cntvoff_el2, xzr
    mov     x21, #0x33ff            // CPTR_EL2: RES1 bits, TFP clear
    msr     cptr_el2, x21
    msr     vttbr_el2, xzr
    mrs     x21, midr_el1
    msr     vpidr_el2, x21
    mrs     x21, mpidr_el1
    msr     vmpidr_el2, x21
    ldr     x21, =0x30d00800        // SCTLR_EL1: RES1 bits, MMU off
    msr     sctlr_el1, x21
    mov     x21, #0x3c5             // EL1h, DAIF masked
    msr     spsr_el2, x21
    msr     elr_el2, x30
    isb
    eret
1:  ret

// The identity map (table below): MAIR attr0 normal write-back, attr1
// Device-nGnRE; 4 GiB of VA from TTBR0 (T0SZ 32, 4 KiB granule, walks
// inner-shareable write-back), TTBR1 walks disabled; then M, C and I.
// The table is part of the loaded image, which the loader cleaned to the
// point of coherency. Clobbers x21.
mmu_on:
    ldr     x21, =0x04ff
    msr     mair_el1, x21
    ldr     x21, =(32 | (1 << 8) | (1 << 10) | (3 << 12) | (1 << 23))
    msr     tcr_el1, x21
    ldr     x21, =idmap
    msr     ttbr0_el1, x21
    isb
    tlbi    vmalle1
    ic      iallu
    dsb     nsh
    isb
    mrs     x21, sctlr_el1
    orr     x21, x21, #1            // M
    orr     x21, x21, #(1 << 2)     // C
    orr     x21, x21, #(1 << 12)    // I
    msr     sctlr_el1, x21
    isb
    ret

// Level-1 table, 1 GiB blocks: 0-3 GiB RAM (normal, inner-shareable,
// accessed), 3-4 GiB the peripherals and the GIC (device, never executed).
.section .data.idmap, "aw"
.balign 4096
idmap:
    .quad   0x00000000 | 0x701
    .quad   0x40000000 | 0x701
    .quad   0x80000000 | 0x701
    .quad   0xc0000000 | 0x405 | (3 << 53)
    .fill   508, 8, 0

.section .text
// EL2 stub vectors (native only): every exception from EL1 returns at
// once. An HVC is the null hypercall of benchmark B1: ELR already points
// after it, x0 comes back unchanged.
.balign 0x800
el2_vectors:
    .rept 16
    .balign 0x80
    eret
    .endr
