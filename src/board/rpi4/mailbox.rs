//! The BCM2711 VideoCore mailbox registers (the ARM's side): mailbox 0
//! carries the VideoCore's answers to the ARM, mailbox 1 the ARM's
//! requests. Each word is a 16-byte-aligned bus address with the channel
//! in its low 4 bits.

use tock_registers::{
    register_structs,
    registers::{ReadOnly, ReadWrite, WriteOnly},
};

register_structs! {
    /// The register block (0x40 bytes, at bus 0x7e00b880).
    #[allow(non_snake_case)]
    pub MailboxRegs {
        /// Mailbox 0 read: pops the oldest answer.
        (0x00 => pub MAIL0_RD: ReadOnly<u32>),
        (0x04 => _reserved0),
        /// Mailbox 0 status: FULL (bit 31), EMPTY (bit 30).
        (0x18 => pub MAIL0_STA: ReadOnly<u32>),
        /// Mailbox 0 configuration: bit 0 interrupts while data waits.
        (0x1c => pub MAIL0_CNF: ReadWrite<u32>),
        /// Mailbox 1 write: a request to the VideoCore.
        (0x20 => pub MAIL1_WRT: WriteOnly<u32>),
        (0x24 => _reserved1),
        /// Mailbox 1 status.
        (0x38 => pub MAIL1_STA: ReadOnly<u32>),
        (0x3c => @END),
    }
}
