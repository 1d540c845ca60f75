// EL2 exception vectors (ARM ARM D1.10.2, "Exception vectors"): 16 slots of
// 0x80 bytes. Every slot saves the full register state into a TrapFrame on
// the EL2 stack and calls handle_exception(frame, kind); a return from the
// handler restores the frame (ELR/SPSR included) and erets.
//
// Frame layout (src/exception.rs, Frame): x0..x30, elr, spsr, esr,
// far, hpfar = 36 u64 = 288 bytes (16-byte aligned).

.equ FRAME_SIZE, 288

.macro VECTOR kind
    .balign 0x80
    sub     sp, sp, #FRAME_SIZE
    stp     x0, x1, [sp, #0]
    mov     x1, #\kind
    b       exception_common
.endm

.section .text.vectors, "ax"
.balign 0x800
.global __exception_vectors
__exception_vectors:
    // Current EL with SP_EL0
    VECTOR 0
    VECTOR 1
    VECTOR 2
    VECTOR 3
    // Current EL with SP_EL2
    VECTOR 4
    VECTOR 5
    VECTOR 6
    VECTOR 7
    // Lower EL, AArch64
    VECTOR 8
    VECTOR 9
    VECTOR 10
    VECTOR 11
    // Lower EL, AArch32
    VECTOR 12
    VECTOR 13
    VECTOR 14
    VECTOR 15

exception_common:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x2, elr_el2
    stp     x30, x2, [sp, #240]
    mrs     x2, spsr_el2
    mrs     x3, esr_el2
    stp     x2, x3, [sp, #256]
    mrs     x2, far_el2
    mrs     x3, hpfar_el2
    stp     x2, x3, [sp, #272]
    mov     x0, sp
    bl      handle_exception
// Restores the Frame at sp and erets; also the first entry into a guest
// (guest_enter below copies the entry frame here).
exception_return:
    ldp     x30, x2, [sp, #240]
    msr     elr_el2, x2
    ldr     x2, [sp, #256]
    msr     spsr_el2, x2
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    add     sp, sp, #FRAME_SIZE
    eret

// x0: a Frame (not on the stack), x1: this core's EL2 stack top. Enters
// the guest by putting the frame where an exit would have saved it.
.global guest_enter
guest_enter:
    mov     sp, x1
    sub     sp, sp, #FRAME_SIZE
    mov     x2, sp
    add     x5, x0, #FRAME_SIZE
1:  ldp     x3, x4, [x0], #16
    stp     x3, x4, [x2], #16
    cmp     x0, x5
    b.lo    1b
    b       exception_return
