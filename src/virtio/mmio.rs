//! The virtio-mmio transport, version 2 (virtio 1.1 §4.2.2): a 4 KiB
//! register page per device, a `virtio,mmio` node with its SPI in the
//! VM's device tree. The legacy (version 1) layout is not offered; Linux
//! has driven version 2 since 4.0.
//!
//! | offset | register            |                                          |
//! |--------|---------------------|------------------------------------------|
//! | 0x000  | MagicValue          | "virt"                                   |
//! | 0x004  | Version             | 2                                        |
//! | 0x008  | DeviceID            | the model's (2 block, 1 network)         |
//! | 0x00c  | VendorID            | [`VENDOR`]                               |
//! | 0x010  | DeviceFeatures      | 32 bits, selected by DeviceFeaturesSel   |
//! | 0x014  | DeviceFeaturesSel   |                                          |
//! | 0x020  | DriverFeatures      | 32 bits, selected by DriverFeaturesSel   |
//! | 0x024  | DriverFeaturesSel   |                                          |
//! | 0x030  | QueueSel            |                                          |
//! | 0x034  | QueueNumMax         | 0 for a queue that does not exist        |
//! | 0x038  | QueueNum            |                                          |
//! | 0x044  | QueueReady          | 1: the rings are checked, then used      |
//! | 0x050  | QueueNotify         | the queue's index                        |
//! | 0x060  | InterruptStatus     | bit 0 used buffers, bit 1 configuration  |
//! | 0x064  | InterruptACK        | write-one-to-clear                       |
//! | 0x070  | Status              | 0 resets the device                      |
//! | 0x080  | QueueDesc{Low,High} | written only while the queue is not ready|
//! | 0x090  | QueueDriver{..}     | (the available ring)                     |
//! | 0x0a0  | QueueDevice{..}     | (the used ring)                          |
//! | 0x0fc  | ConfigGeneration    | 0: the configuration never changes       |
//! | 0x100- | Config              | the model's, 1, 2, 4 or 8 bytes          |
//!
//! Other registers take 32-bit accesses only. Feature negotiation: the
//! driver may accept only what the device offers, and must accept
//! VERSION_1; otherwise FEATURES_OK does not stick (the driver reads it
//! back and gives up). Queues work only after DRIVER_OK. A malformed
//! queue sets DEVICE_NEEDS_RESET and raises the configuration interrupt;
//! nothing is served until the driver resets the device (Status 0).
//! The interrupt line follows InterruptStatus != 0.

pub use super::irq::{isr, IrqLine};
use super::queue::{Queue, QueueError};
use super::{feature, status, GuestRam};
use crate::devices::bus::{MmioDevice, MmioError};
use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// "virt".
pub const MAGIC: u32 = 0x7472_6976;
/// The vendor ID pivisor's devices report ("PIVI").
pub const VENDOR: u32 = 0x4956_4950;
/// The register page's size.
pub const SIZE: u64 = 0x1000;

/// What one [`Device::serve`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Served {
    /// Chains went back to the driver.
    pub used: bool,
    /// Work is left (the budget ran out): serve again soon.
    pub more: bool,
}

/// A virtio device model behind the transport.
pub trait Device: Send {
    /// The virtio device ID.
    fn id(&self) -> u32;
    /// The features offered (VERSION_1 among them; never
    /// ACCESS_PLATFORM).
    fn features(&self) -> u64;
    /// How many queues.
    fn queues(&self) -> usize;
    /// The largest size of each.
    fn queue_max(&self) -> u16;
    /// Configuration space bytes from `offset` into `out` (zero past its
    /// end).
    fn config(&self, offset: u64, out: &mut [u8]);
    /// The driver accepted `features` and is ready (DRIVER_OK).
    fn activate(&mut self, _features: u64) {}
    /// Serves queue `q`: a bounded amount of work.
    fn serve(
        &mut self,
        q: usize,
        queue: &mut Queue,
        mem: &mut dyn GuestRam,
    ) -> Result<Served, QueueError>;
    /// Back to power-on (the driver wrote Status 0, or the VM restarts).
    fn reset(&mut self) {}
    /// Queue `q` became ready (its rings checked) or stopped
    /// (`queue.ready` false): for a model that serves a queue away from
    /// the transport (virtio-net's receive queue).
    fn queue_changed(&mut self, _q: usize, _queue: &Queue) {}
    /// The transport's interrupt status, for a model that completes
    /// buffers away from the transport (called once, at attach).
    fn attach_irq(&mut self, _irq: Arc<IrqLine>) {}
    /// The device went live (DRIVER_OK, no reset needed) or stopped
    /// being live: a model serving queues away from the transport uses
    /// them only while live.
    fn live_changed(&mut self, _live: bool) {}
}

/// Where the transport's effects go.
pub struct Sinks {
    /// The VM's RAM.
    pub mem: Box<dyn GuestRam + Send>,
    /// The interrupt line's level.
    pub line: Box<dyn FnMut(bool) + Send>,
    /// A problem with the guest's queues (for the VM's rate-limited log).
    pub problem: Box<dyn FnMut(&QueueError) + Send>,
    /// Work is left after a serve: call [`Transport::poll`] soon.
    pub more: Box<dyn FnMut() + Send>,
}

/// The transport around one device.
pub struct Transport<D: Device> {
    dev: D,
    sinks: Sinks,
    status: u32,
    device_sel: u32,
    driver_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    queues: Vec<Queue>,
    irq: Arc<IrqLine>,
    /// Queues with work left (bit per queue).
    more: u32,
    /// What the model was last told by [`Device::live_changed`].
    was_live: bool,
}

impl<D: Device> Transport<D> {
    /// `dev` behind a fresh transport.
    pub fn new(mut dev: D, mut sinks: Sinks) -> Self {
        let n = dev.queues().min(32);
        let line = core::mem::replace(&mut sinks.line, Box::new(|_| {}));
        let irq = Arc::new(IrqLine::new(line));
        dev.attach_irq(irq.clone());
        Self {
            dev,
            sinks,
            status: 0,
            device_sel: 0,
            driver_sel: 0,
            driver_features: 0,
            queue_sel: 0,
            queues: (0..n).map(|_| Queue::default()).collect(),
            irq,
            more: 0,
            was_live: false,
        }
    }

    /// The device model.
    pub fn device(&self) -> &D {
        &self.dev
    }

    /// The driver's status register.
    pub fn status(&self) -> u32 {
        self.status
    }

    /// Takes in a queue fault another core found (see [`IrqLine::fault`]).
    fn collect_fault(&mut self) {
        if self.irq.take_fault() {
            self.status |= status::DEVICE_NEEDS_RESET;
            self.more = 0;
            self.sync_live();
        }
    }

    /// Tells the model when it goes live or stops.
    fn sync_live(&mut self) {
        let live = self.live();
        if live != self.was_live {
            self.was_live = live;
            self.dev.live_changed(live);
        }
    }

    fn queue(&mut self) -> Option<&mut Queue> {
        self.queues.get_mut(self.queue_sel as usize)
    }

    fn live(&self) -> bool {
        self.status & status::DRIVER_OK != 0 && self.status & status::DEVICE_NEEDS_RESET == 0
    }

    fn needs_reset(&mut self, e: &QueueError) {
        (self.sinks.problem)(e);
        self.status |= status::DEVICE_NEEDS_RESET;
        self.irq.raise(isr::CONFIG);
        self.more = 0;
        self.sync_live();
    }

    /// Serves queue `q` once (bounded work) and raises the interrupt if
    /// the driver wants one.
    fn run(&mut self, q: usize) {
        self.collect_fault();
        if !self.live() {
            return;
        }
        let Some(queue) = self.queues.get_mut(q) else {
            return;
        };
        if !queue.ready {
            return;
        }
        let mem = &mut *self.sinks.mem;
        let r = self.dev.serve(q, queue, mem);
        match r {
            Ok(s) => {
                if s.used && queue.should_interrupt(mem) {
                    self.irq.raise(isr::USED);
                }
                if s.more {
                    self.more |= 1 << q;
                    (self.sinks.more)();
                } else {
                    self.more &= !(1 << q);
                }
            }
            Err(e) => self.needs_reset(&e),
        }
    }

    /// Serves the queues that had work left.
    pub fn poll(&mut self) {
        let m = self.more;
        for q in 0..self.queues.len() {
            if m & (1 << q) != 0 {
                self.run(q);
            }
        }
    }

    /// Whether some queue has work left.
    pub fn has_more(&self) -> bool {
        self.more != 0
    }

    fn reset_device(&mut self) {
        self.dev.reset();
        self.status = 0;
        self.device_sel = 0;
        self.driver_sel = 0;
        self.driver_features = 0;
        self.queue_sel = 0;
        for (i, q) in self.queues.iter_mut().enumerate() {
            q.reset();
            self.dev.queue_changed(i, q);
        }
        self.more = 0;
        self.irq.clear();
        self.sync_live();
    }

    fn set_status(&mut self, v: u32) {
        if v == 0 {
            self.reset_device();
            return;
        }
        let mut v = v & 0xff & !status::DEVICE_NEEDS_RESET;
        // FEATURES_OK only for a subset of the offer with VERSION_1.
        let newly = v & !self.status;
        if newly & status::FEATURES_OK != 0 {
            let offered = self.dev.features();
            let ok = self.driver_features & !offered == 0
                && self.driver_features & feature::VERSION_1 != 0;
            if !ok {
                v &= !status::FEATURES_OK;
            }
        }
        if v & status::DRIVER_OK != 0 && v & status::FEATURES_OK == 0 {
            v &= !status::DRIVER_OK;
        }
        let keep = self.status & status::DEVICE_NEEDS_RESET;
        if newly & status::DRIVER_OK != 0 && v & status::DRIVER_OK != 0 {
            self.dev.activate(self.driver_features);
        }
        self.status = v | keep;
        self.sync_live();
    }

    fn set_addr(&mut self, which: u8, high: bool, v: u32) {
        let Some(q) = self.queue() else { return };
        if q.ready {
            return;
        }
        let a = match which {
            0 => &mut q.desc,
            1 => &mut q.avail,
            _ => &mut q.used,
        };
        *a = if high {
            (*a & 0xffff_ffff) | (u64::from(v) << 32)
        } else {
            (*a & !0xffff_ffff) | u64::from(v)
        };
    }
}

impl<D: Device> MmioDevice for Transport<D> {
    fn name(&self) -> &str {
        "virtio-mmio"
    }

    fn read(&mut self, offset: u64, width: u8) -> Result<u64, MmioError> {
        if offset >= 0x100 {
            if !matches!(width, 1 | 2 | 4 | 8) || !offset.is_multiple_of(u64::from(width)) {
                return Err(MmioError::BadWidth);
            }
            let mut b = [0u8; 8];
            self.dev.config(offset - 0x100, &mut b[..width as usize]);
            return Ok(u64::from_le_bytes(b));
        }
        if width != 4 || !offset.is_multiple_of(4) {
            return Err(MmioError::BadWidth);
        }
        let max = self.dev.queue_max();
        let v = match offset {
            0x000 => MAGIC,
            0x004 => 2,
            0x008 => self.dev.id(),
            0x00c => VENDOR,
            0x010 => match self.device_sel {
                0 => self.dev.features() as u32,
                1 => (self.dev.features() >> 32) as u32,
                _ => 0,
            },
            0x034 => self.queue().map_or(0, |_| u32::from(max)),
            0x044 => self.queue().map_or(0, |q| u32::from(q.ready)),
            0x060 => self.irq.isr(),
            0x070 => {
                self.collect_fault();
                self.status
            }
            0x0fc => 0,
            0x014 | 0x020 | 0x024 | 0x030 | 0x038 | 0x050 | 0x064 => {
                return Err(MmioError::BadDirection)
            }
            _ => 0,
        };
        Ok(u64::from(v))
    }

    fn write(&mut self, offset: u64, width: u8, value: u64) -> Result<(), MmioError> {
        if offset >= 0x100 {
            // The configuration spaces here are read-only.
            if !matches!(width, 1 | 2 | 4 | 8) || !offset.is_multiple_of(u64::from(width)) {
                return Err(MmioError::BadWidth);
            }
            return Ok(());
        }
        if width != 4 || !offset.is_multiple_of(4) {
            return Err(MmioError::BadWidth);
        }
        let v = value as u32;
        let max = self.dev.queue_max();
        match offset {
            0x014 => self.device_sel = v,
            0x020
                // Only while negotiating.
                if self.status & status::FEATURES_OK == 0 => {
                    match self.driver_sel {
                        0 => {
                            self.driver_features =
                                (self.driver_features & !0xffff_ffff) | u64::from(v)
                        }
                        1 => {
                            self.driver_features =
                                (self.driver_features & 0xffff_ffff) | (u64::from(v) << 32)
                        }
                        _ => {}
                    }
                }
            0x024 => self.driver_sel = v,
            0x030 => self.queue_sel = v,
            0x038 => {
                if let Some(q) = self.queue() {
                    if !q.ready {
                        q.size = v.min(u32::from(u16::MAX)) as u16;
                    }
                }
            }
            0x044 => {
                let event_idx = self.driver_features & feature::RING_EVENT_IDX != 0;
                let features_ok = self.status & status::FEATURES_OK != 0;
                let sel = self.queue_sel as usize;
                if let Some(q) = self.queues.get_mut(sel) {
                    if v & 1 == 0 {
                        if q.ready {
                            q.ready = false;
                            self.dev.queue_changed(sel, q);
                        }
                    } else if !q.ready && features_ok {
                        q.event_idx = event_idx;
                        match q.activate(max, &*self.sinks.mem) {
                            Ok(()) => self.dev.queue_changed(sel, q),
                            Err(e) => self.needs_reset(&e),
                        }
                    }
                }
            }
            0x050 => {
                if let Ok(q) = usize::try_from(v) {
                    self.run(q);
                }
            }
            0x064 => self.irq.ack(v),
            0x070 => self.set_status(v),
            0x080 => self.set_addr(0, false, v),
            0x084 => self.set_addr(0, true, v),
            0x090 => self.set_addr(1, false, v),
            0x094 => self.set_addr(1, true, v),
            0x0a0 => self.set_addr(2, false, v),
            0x0a4 => self.set_addr(2, true, v),
            0x000..=0x00c | 0x010 | 0x034 | 0x060 | 0x0fc => return Err(MmioError::BadDirection),
            _ => {}
        }
        Ok(())
    }

    fn reset(&mut self) {
        self.reset_device();
    }
}

#[cfg(test)]
#[path = "mmio_tests.rs"]
mod tests;
