//! What a VM's devices ask of the hypervisor: the [`Host`] that
//! `vm::attach` wires every device model to (interrupt lines, the
//! console, the firmware, exit counters, the watchdog's clock, RAM for
//! virtio, the disk's partition, the network's port).

use super::vm::vm;
use super::{conswitch, firmware, irq, watchdog};
use crate::vm::attach::Host;
use alloc::string::String;
use core::sync::atomic::Ordering;

/// What VM `index`'s devices ask of the hypervisor ([`Host`]).
#[derive(Clone, Copy)]
pub struct VmHost {
    /// The VM's index.
    pub index: usize,
}

impl Host for VmHost {
    fn set_line(&self, intid: u32, level: bool) {
        if let Some(vm) = vm(self.index) {
            let d = vm.vgic.lock().set_line(0, intid, level);
            irq::mark(vm, d);
        }
    }
    fn uart_tx(&self, byte: u8) {
        conswitch::guest_byte(self.index, byte);
    }
    fn uart_room(&self) -> bool {
        conswitch::room(self.index)
    }
    fn firmware(&self, word: u32) -> Option<u32> {
        firmware::guest_request(self.index, word)
    }
    fn exit_count(&self, vcpu: Option<usize>, which: u64) -> u64 {
        vm(self.index)
            .and_then(|vm| vm.exit_counts(vcpu).select(which))
            .unwrap_or(0)
    }
    fn watchdog_now(&self) -> u64 {
        watchdog::ticks()
    }
    fn test_line(&self, line: &str) {
        if let Some(vm) = vm(self.index) {
            vm.test_line(line);
        }
    }
    fn boots(&self) -> u32 {
        vm(self.index).map_or(1, |vm| vm.resets.load(Ordering::Relaxed) + 1)
    }
    fn inject_fault(&self) {
        let name = vm(self.index).map_or("?", |vm| vm.name.as_str());
        super::fault::inject(name)
    }
    fn ram(&self) -> alloc::boxed::Box<dyn crate::virtio::GuestRam + Send> {
        alloc::boxed::Box::new(super::disk::VmRam(self.index))
    }
    fn disk(
        &self,
        d: &crate::vm::config::DiskConfig,
    ) -> Result<alloc::boxed::Box<dyn crate::virtio::blk::Backend>, String> {
        super::disk::partition(self.index, d)
    }
    fn virtio_problem(&self, device: &str, e: &crate::virtio::queue::QueueError) {
        if let Some(vm) = vm(self.index) {
            vm.warn(format_args!(
                "{device}: {e}; the device needs a reset (DEVICE_NEEDS_RESET)"
            ));
        }
    }
    fn io_more(&self) {
        super::disk::more(self.index);
    }
    fn net_port(
        &self,
        n: &crate::vm::config::NetConfig<'_>,
    ) -> Result<
        (
            alloc::sync::Arc<crate::virtio::net::Port>,
            alloc::boxed::Box<dyn crate::virtio::net::Fabric>,
        ),
        String,
    > {
        super::net::port(self.index, n)
    }
}
