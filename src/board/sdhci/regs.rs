//! The controller's registers: their names and bits (SDHCI 3.00 §2.2),
//! the two traits the driver runs over ([`Regs`], [`Clock`]), and the one
//! implementation that touches hardware ([`Mmio32`]).

/// 32-bit access to a controller's registers.
pub trait Regs {
    /// Reads the word at byte offset `off`.
    fn read(&mut self, off: usize) -> u32;
    /// Writes the word at byte offset `off`.
    fn write(&mut self, off: usize, v: u32);
}

/// Time, for the bounded waits.
pub trait Clock {
    /// A monotonic time in microseconds.
    fn now_us(&mut self) -> u64;
    /// Waits at least `us` microseconds.
    fn delay_us(&mut self, us: u64) {
        let t = self.now_us();
        while self.now_us().saturating_sub(t) < us {}
    }
    /// Waits at least `ns` nanoseconds (the post-write pause).
    fn delay_ns(&mut self, ns: u64) {
        self.delay_us(ns.div_ceil(1000));
    }
}

/// Register offsets (SDHCI 3.00 §2.2), as 32-bit words.
pub mod reg {
    /// ARGUMENT.
    pub const ARG: usize = 0x08;
    /// BLOCK_SIZE (15:0), BLOCK_COUNT (31:16).
    pub const BLOCK: usize = 0x04;
    /// TRANSFER_MODE (15:0), COMMAND (31:16): writing it sends the command.
    pub const CMD: usize = 0x0c;
    /// RESPONSE 0-3.
    pub const RESP: usize = 0x10;
    /// BUFFER_DATA_PORT.
    pub const DATA: usize = 0x20;
    /// PRESENT_STATE.
    pub const STATE: usize = 0x24;
    /// HOST_CONTROL (7:0), POWER_CONTROL (15:8), BLOCK_GAP, WAKEUP.
    pub const HOST: usize = 0x28;
    /// CLOCK_CONTROL (15:0), TIMEOUT_CONTROL (23:16), SOFTWARE_RESET (31:24).
    pub const CLOCK: usize = 0x2c;
    /// NORMAL (15:0) and ERROR (31:16) INTERRUPT_STATUS, write 1 to clear.
    pub const INT: usize = 0x30;
    /// INTERRUPT_STATUS_ENABLE.
    pub const INT_ENABLE: usize = 0x34;
    /// INTERRUPT_SIGNAL_ENABLE.
    pub const INT_SIGNAL: usize = 0x38;
    /// SLOT_INTERRUPT_STATUS (15:0), HOST_VERSION (31:16).
    pub const VERSION: usize = 0xfc;
}

/// INTERRUPT_STATUS bits.
pub mod int {
    /// Command complete.
    pub const CMD_DONE: u32 = 1 << 0;
    /// Transfer complete.
    pub const XFER_DONE: u32 = 1 << 1;
    /// Buffer write ready.
    pub const WRITE_READY: u32 = 1 << 4;
    /// Buffer read ready.
    pub const READ_READY: u32 = 1 << 5;
    /// Some error (the upper half says which).
    pub const ERROR: u32 = 1 << 15;
    /// Command timeout.
    pub const CMD_TIMEOUT: u32 = 1 << 16;
    /// Errors of the command line: timeout, CRC, end bit, index.
    pub const CMD_ERRORS: u32 = 0xf << 16;
    /// Errors of the data lines: timeout, CRC, end bit; auto CMD12.
    pub const DATA_ERRORS: u32 = 0x7 << 20 | 1 << 24;
    /// The status bits the driver enables.
    pub const ENABLED: u32 = CMD_DONE | XFER_DONE | WRITE_READY | READ_READY | 0x01ff << 16;
}

/// PRESENT_STATE bits.
pub(super) mod state {
    pub const CMD_INHIBIT: u32 = 1 << 0;
    pub const DAT_INHIBIT: u32 = 1 << 1;
}

/// CLOCK_CONTROL / SOFTWARE_RESET bits (in the 0x2c word).
pub(super) mod clk {
    pub const INTERNAL_ON: u32 = 1 << 0;
    pub const INTERNAL_STABLE: u32 = 1 << 1;
    pub const SD_ON: u32 = 1 << 2;
    pub const TIMEOUT_MAX: u32 = 0xe << 16;
    pub const RESET_ALL: u32 = 1 << 24;
    pub const RESET_CMD: u32 = 1 << 25;
    pub const RESET_DAT: u32 = 1 << 26;
}

/// HOST_CONTROL / POWER_CONTROL bits (in the 0x28 word).
pub(super) mod host {
    pub const WIDTH_4: u32 = 1 << 1;
    pub const POWER_33V: u32 = (0b111 << 1 | 1) << 8;
}

/// The hardware: a controller's registers at a device-mapped address.
pub struct Mmio32 {
    base: usize,
}

impl Mmio32 {
    /// The registers at `base`.
    ///
    /// # Safety
    /// `base` must be an SDHCI register block (0x100 bytes), mapped as
    /// device memory, used by no one else.
    pub unsafe fn new(base: usize) -> Self {
        Self { base }
    }
}

impl Regs for Mmio32 {
    fn read(&mut self, off: usize) -> u32 {
        // SAFETY: `new`'s contract; `off` is a register offset below 0x100.
        unsafe { core::ptr::read_volatile((self.base + (off & 0xfc)) as *const u32) }
    }
    fn write(&mut self, off: usize, v: u32) {
        // SAFETY: as above.
        unsafe { core::ptr::write_volatile((self.base + (off & 0xfc)) as *mut u32, v) }
    }
}
