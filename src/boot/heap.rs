//! The hypervisor's heap (the global allocator) and the frame allocator's
//! share of free memory, set up right after the EL2 MMU.

use crate::arch::cpu;
use crate::mm::frames::FRAMES;
use crate::mm::pagetable::PAGE_SIZE;
use crate::region::{RangeSet, Size};
use crate::sync::Mutex;
use buddy_system_allocator::Heap;
use core::alloc::{GlobalAlloc, Layout};
use log::{error, info};

/// Hypervisor heap.
const HEAP_SIZE: u64 = 8 << 20;

#[global_allocator]
static HEAP: KernelHeap = KernelHeap(Mutex::new(Heap::new()));

/// The buddy heap behind the hypervisor's lock (whose waiters yield;
/// buddy_system_allocator's own LockedHeap spins without yielding).
struct KernelHeap(Mutex<Heap<32>>);
// SAFETY: every access to the heap goes through its lock; a failed
// allocation returns null, as GlobalAlloc requires.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.0
            .lock()
            .alloc(layout)
            .map_or(core::ptr::null_mut(), |p| p.as_ptr())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(p) = core::ptr::NonNull::new(ptr) {
            self.0.lock().dealloc(p, layout);
        }
    }
}

/// The heap, first: the frame allocator's lists and the VM structures live
/// on it.
pub(super) fn setup_heap(usable: &mut RangeSet<48>) {
    let Some(heap) = usable
        .take(HEAP_SIZE, 2 << 20)
        .or_else(|| usable.take(HEAP_SIZE / 8, PAGE_SIZE))
    else {
        error!("memory: no room for the hypervisor heap; parking");
        cpu::park();
    };
    // SAFETY: the range is free RAM, mapped RW, given to the heap alone.
    unsafe {
        HEAP.0
            .lock()
            .init(heap.start as usize, heap.size() as usize)
    };
    let v: alloc::vec::Vec<u64> = (0..1024).collect();
    info!(
        "heap: {} at {:#x} ({} probe bytes ok)",
        Size(heap.size()),
        heap.start,
        v.len() * 8
    );
}

/// Every page still usable (after VM RAM is taken) as frames.
pub(super) fn setup_frames(usable: &RangeSet<48>) {
    let mut frames = FRAMES.lock();
    for r in usable.ranges() {
        frames.add_frame((r.start / PAGE_SIZE) as usize, (r.end / PAGE_SIZE) as usize);
    }
    // Prove it works before anyone relies on it.
    let probe = frames.alloc(1);
    if let Some(f) = probe {
        frames.dealloc(f, 1);
    }
    info!(
        "frames: {} free for the hypervisor{}",
        Size(usable.total()),
        if probe.is_some() {
            ""
        } else {
            " (frame probe FAILED)"
        }
    );
}
