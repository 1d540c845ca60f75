//! What can go wrong talking to a card.

use core::fmt;

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdError {
    /// A wait ran out (what was awaited).
    Timeout(&'static str),
    /// CMD`index` failed on the command line (ERROR_INTERRUPT_STATUS).
    Command {
        /// The command.
        index: u8,
        /// The error bits (31:16 of INTERRUPT_STATUS).
        errors: u32,
    },
    /// The card reported an error in its status (R1).
    Status {
        /// The command.
        index: u8,
        /// Its card status.
        status: u32,
    },
    /// A data transfer failed (the error bits).
    Data(u32),
    /// No SD memory card answers (none, or an SDIO device).
    NoMemoryCard,
    /// A card this driver cannot use (why).
    Unusable(&'static str),
    /// Blocks outside the card, or a buffer not of whole blocks.
    Range,
}

impl fmt::Display for SdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SdError::Timeout(w) => write!(f, "timed out waiting for {w}"),
            SdError::Command { index, errors } => {
                write!(f, "CMD{index} failed (error status {errors:#06x})")
            }
            SdError::Status { index, status } => {
                write!(f, "CMD{index}: the card reports status {status:#010x}")
            }
            SdError::Data(e) => write!(f, "data transfer failed (error status {e:#06x})"),
            SdError::NoMemoryCard => f.write_str("no SD memory card answers"),
            SdError::Unusable(why) => write!(f, "unusable card: {why}"),
            SdError::Range => f.write_str("blocks outside the card"),
        }
    }
}
