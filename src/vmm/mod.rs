//! The virtual machine monitor on the target: the glue between the pure
//! models (vm, trap, vgic, devices) and the machine (arch, board).
//!
//! Static partitioning: each VM owns a set of cores (one pinned vCPU per
//! core) and its RAM; nothing is shared between VMs but the hypervisor.
//! docs/architecture.md walks through it file by file.
//!
//! | file | job |
//! |------|-----|
//! | `prepare.rs` | the bundle and configuration read, passthrough checked, each VM's RAM taken |
//! | `build.rs` | VMs from what `prepare` placed: stage 2, device tree, devices, images; the start |
//! | `host.rs` | what a VM's devices ask of the hypervisor (`vm::attach::Host`) |
//! | `vm.rs` | the VM and vCPU types, guest RAM access |
//! | `cores.rs` | which vCPU each core runs, the release of the cores |
//! | `vcpu.rs` | a core's vCPU loop, entering a vCPU from reset |
//! | `exit.rs` | every exit from a guest, one handler per exception class |
//! | `lifecycle.rs` | SYSTEM_OFF, SYSTEM_RESET, crashes: halt or restart |
//! | `irq.rs` | the GIC, physical interrupts, list registers, the GICD trap, waiting |
//! | `watchdog.rs` | the SP805's clock and its check on exit |
//! | `firmware.rs` | the VideoCore firmware for the hypervisor and its guests |
//! | `console.rs` | who drives the console (PL011, then mini UART and log ring) |
//! | `conswitch.rs` | the console switch between VMs (mux layout) |
//! | `fault.rs` | the hypervisor's own faults and panics |
//! | `sd.rs` | the SD card: found at boot, its partitions, the card lock |
//! | `disk.rs` | VMs' disks: card partitions behind virtio-blk, taking turns |
//! | `net.rs` | VMs' LANs: the switch built from the `net` lines, each VM's port |
//! | `passthrough.rs` | devices of the firmware's tree given to VMs: resolved, refused, identity RAM placed |

pub mod build;

pub mod console;

pub mod conswitch;

pub mod cores;

pub mod disk;

pub mod net;

pub mod passthrough;

pub mod prepare;

pub mod exit;

pub mod fault;

pub mod host;

pub mod firmware;

pub mod irq;

pub mod lifecycle;

pub mod monitor;

pub mod sd;

pub mod vcpu;

pub mod vm;

pub mod watchdog;
