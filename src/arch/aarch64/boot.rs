//! Entry points: the arm64 Image header and primary entry (boot.s), the
//! secondary-core entry and its hand-off block, and the linker's layout.

use crate::mm::ImageLayout;
use core::arch::global_asm;
use core::sync::atomic::{AtomicU64, Ordering};

/// Per-core stack size (linker.ld reserves MAX_CPUS of them).
pub const STACK_SIZE: u64 = 0x10000;
/// Stacks in the image (linker.ld MAX_CPUS).
pub const MAX_STACKS: usize = crate::platform::MAX_CORES;
/// Image header flags: little-endian (bit 0 = 0), 4 KiB pages (bits 1-2 =
/// 1), may be placed anywhere in RAM (bit 3).
const IMAGE_FLAGS: u64 = (1 << 1) | (1 << 3);

global_asm!(
    include_str!("boot.s"),
    STACK_SIZE = const STACK_SIZE,
    IMAGE_FLAGS = const IMAGE_FLAGS,
);

/// What a secondary core needs before it can run Rust with the MMU on.
/// Written by the primary and cleaned to the point of coherency; read by
/// boot.s on the secondary with its MMU and caches still off (the field
/// order is boot.s's: offsets 0, 8, 16, 24, 32, 40).
#[repr(C)]
pub struct SecondaryBoot {
    /// Top of this core's stack (read by boot.s).
    pub stack_top: AtomicU64,
    /// Logical core index (read by boot.s into TPIDR_EL2).
    pub core: AtomicU64,
    /// TTBR0_EL2.
    pub ttbr: AtomicU64,
    /// TCR_EL2.
    pub tcr: AtomicU64,
    /// MAIR_EL2.
    pub mair: AtomicU64,
    /// SCTLR_EL2.
    pub sctlr: AtomicU64,
}

// boot.s reads the block with ldp at these offsets.
const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(SecondaryBoot, stack_top) == 0 && offset_of!(SecondaryBoot, core) == 8);
    assert!(offset_of!(SecondaryBoot, ttbr) == 16 && offset_of!(SecondaryBoot, tcr) == 24);
    assert!(offset_of!(SecondaryBoot, mair) == 32 && offset_of!(SecondaryBoot, sctlr) == 40);
};

/// The hand-off block (boot.s finds it by name).
#[no_mangle]
pub static SECONDARY_BOOT: SecondaryBoot = SecondaryBoot {
    stack_top: AtomicU64::new(0),
    core: AtomicU64::new(0),
    ttbr: AtomicU64::new(0),
    tcr: AtomicU64::new(0),
    mair: AtomicU64::new(0),
    sctlr: AtomicU64::new(0),
};

extern "C" {
    static __image_start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
    static __image_end: u8;
    static __stacks_start: u8;
    fn secondary_entry();
}

/// The image's physical layout (identity: addresses are physical).
pub fn image_layout() -> ImageLayout {
    ImageLayout {
        start: (&raw const __image_start) as u64,
        text_end: (&raw const __text_end) as u64,
        rodata_end: (&raw const __rodata_end) as u64,
        end: (&raw const __image_end) as u64,
    }
}

/// Top of stack `slot`.
pub fn stack_top(slot: usize) -> u64 {
    (&raw const __stacks_start) as u64 + (slot as u64 + 1) * STACK_SIZE
}

/// Each core's EL2 stack top, by core index (0 until the core is up).
static CORE_STACK: [AtomicU64; MAX_STACKS] = [const { AtomicU64::new(0) }; MAX_STACKS];

/// Records that core `core` runs on the stack ending at `top`.
pub fn set_core_stack(core: usize, top: u64) {
    if let Some(s) = CORE_STACK.get(core) {
        s.store(top, Ordering::Relaxed);
    }
}

/// The EL2 stack top of core `core` (0 if unknown).
pub fn core_stack_top(core: usize) -> u64 {
    CORE_STACK
        .get(core)
        .map_or(0, |s| s.load(Ordering::Relaxed))
}

/// Physical address secondaries enter at.
pub fn secondary_entry_pa() -> u64 {
    secondary_entry as *const () as u64
}
