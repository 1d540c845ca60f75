// Entry for vCPU 0 and for vCPUs started with PSCI CPU_ON (the EL1
// vectors: ../../el1-vectors.s). booting.rst: entered at EL1h, MMU off,
// x0 = device tree (vCPU 0) or the CPU_ON context id (= vCPU index).

// (The Image header comes first: ../../image-header.s.)
.section .text.head, "ax"
primary:
    msr     daifset, #0xf
    mov     x19, x0
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
    bl      guest_main
3:  wfi
    b       3b

.global secondary_entry
secondary_entry:
    msr     daifset, #0xf
    and     x1, x0, #3
    ldr     x2, =_stacks
    add     x1, x1, #1
    lsl     x1, x1, #14
    add     sp, x2, x1
    ldr     x1, =vectors
    msr     vbar_el1, x1
    isb
    bl      secondary_main
4:  wfi
    b       4b
