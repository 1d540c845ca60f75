//! Free physical memory in 4 KiB frames, for guest memory and page
//! tables: filled once at boot with what the heap and the VMs' RAM left.

use crate::sync::Mutex;
use buddy_system_allocator::FrameAllocator;

/// The frame allocator (frame numbers: physical address / 4 KiB).
pub static FRAMES: Mutex<FrameAllocator<32>> = Mutex::new(FrameAllocator::new());
