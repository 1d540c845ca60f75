//! A virtio-mmio device's InterruptStatus and its interrupt line, shared
//! between the transport (the driver's reads and acknowledgements) and a
//! device model that completes buffers on other cores (virtio-net's
//! receive queue, filled by the switch on the sender's core).

use crate::sync::Mutex;
use alloc::boxed::Box;

/// InterruptStatus bits.
pub mod isr {
    /// Used buffers were returned.
    pub const USED: u32 = 1;
    /// The configuration changed (or the device needs a reset).
    pub const CONFIG: u32 = 2;
}

/// A transport's InterruptStatus and its interrupt line, shared with the
/// device model when other cores complete its buffers (virtio-net's
/// receive queue: the switch delivers a frame on the sender's core). The
/// line follows InterruptStatus != 0; both change under one lock, so a
/// raise and an acknowledgement on two cores never leave the line wrong.
pub struct IrqLine(Mutex<IrqState>);

struct IrqState {
    isr: u32,
    level: bool,
    /// Another core found the device's queues malformed: the transport
    /// sets DEVICE_NEEDS_RESET when it next looks.
    fault: bool,
    line: Box<dyn FnMut(bool) + Send>,
}

impl IrqState {
    fn update(&mut self) {
        let level = self.isr != 0;
        if level != self.level {
            self.level = level;
            (self.line)(level);
        }
    }
}

impl IrqLine {
    /// A quiet line driving `line`.
    pub fn new(line: Box<dyn FnMut(bool) + Send>) -> Self {
        Self(Mutex::new(IrqState {
            isr: 0,
            level: false,
            fault: false,
            line,
        }))
    }

    /// Sets InterruptStatus bits (the line rises if it was low).
    pub fn raise(&self, bits: u32) {
        let mut s = self.0.lock();
        s.isr |= bits;
        s.update();
    }

    /// Clears InterruptStatus bits (the driver's InterruptACK).
    pub fn ack(&self, bits: u32) {
        let mut s = self.0.lock();
        s.isr &= !bits;
        s.update();
    }

    /// InterruptStatus now.
    pub fn isr(&self) -> u32 {
        self.0.lock().isr
    }

    /// A queue fault found away from the transport: the configuration
    /// interrupt now, DEVICE_NEEDS_RESET when the transport next looks.
    pub fn fault(&self) {
        let mut s = self.0.lock();
        s.fault = true;
        s.isr |= isr::CONFIG;
        s.update();
    }

    pub(super) fn take_fault(&self) -> bool {
        core::mem::take(&mut self.0.lock().fault)
    }

    /// Back to quiet (device reset).
    pub(super) fn clear(&self) {
        let mut s = self.0.lock();
        s.isr = 0;
        s.fault = false;
        s.update();
    }
}
