//! Device models: pure state machines behind [`bus::MmioDevice`], on
//! the VM's [`bus::MmioBus`].

pub mod bus;
pub mod exitctr;
pub mod faultinj;
pub mod mailbox;
pub mod pl011;
pub mod sp805;
pub mod testdev;

use crate::sync::Mutex;
use alloc::sync::Arc;
use bus::{MmioDevice, MmioError};

/// A device model the bus and the hypervisor both hold (the bus for the
/// guest's accesses, the hypervisor to feed it input), with its name.
pub struct Shared<T>(pub Arc<Mutex<T>>, pub &'static str);

impl<T: MmioDevice> MmioDevice for Shared<T> {
    fn name(&self) -> &str {
        self.1
    }
    fn read(&mut self, offset: u64, width: u8) -> Result<u64, MmioError> {
        self.0.lock().read(offset, width)
    }
    fn write(&mut self, offset: u64, width: u8, value: u64) -> Result<(), MmioError> {
        self.0.lock().write(offset, width, value)
    }
    fn reset(&mut self) {
        self.0.lock().reset()
    }
}
