//! The SD command layer (SD Physical Layer Simplified Specification,
//! version 9.10: chapter 4 for the commands, 5 for OCR and CSD): the
//! commands the driver sends, how an SDHCI controller encodes them, and
//! what their responses mean. Pure.

/// How a command's response comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resp {
    /// No response (CMD0).
    None,
    /// 48 bits, CRC and index checked (R1, R6, R7).
    R1,
    /// R1 with busy signalling on DAT0 (CMD7, CMD12).
    R1b,
    /// 136 bits (R2: CID, CSD), CRC checked, no index.
    R2,
    /// 48 bits, no CRC or index (R3: OCR).
    R3,
}

/// Whether a command moves data, and which way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Data {
    /// No data.
    None,
    /// Card to host, `blocks` of 512 bytes.
    Read(u32),
    /// Host to card, `blocks` of 512 bytes.
    Write(u32),
}

/// A command to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cmd {
    /// Its index (0-63).
    pub index: u8,
    /// Its argument.
    pub arg: u32,
    /// Its response type.
    pub resp: Resp,
    /// Its data phase.
    pub data: Data,
}

/// The commands the driver uses.
impl Cmd {
    const fn new(index: u8, arg: u32, resp: Resp) -> Self {
        Cmd {
            index,
            arg,
            resp,
            data: Data::None,
        }
    }
    /// CMD0 GO_IDLE_STATE.
    pub const fn go_idle() -> Self {
        Self::new(0, 0, Resp::None)
    }
    /// CMD8 SEND_IF_COND: 2.7-3.6 V, check pattern 0xaa.
    pub const fn send_if_cond() -> Self {
        Self::new(8, IF_COND_ARG, Resp::R1)
    }
    /// CMD55 APP_CMD (the next command is an application command).
    pub const fn app_cmd(rca: u16) -> Self {
        Self::new(55, (rca as u32) << 16, Resp::R1)
    }
    /// ACMD41 SD_SEND_OP_COND: the voltage window, HCS when the card
    /// answered CMD8.
    pub const fn send_op_cond(hcs: bool) -> Self {
        let hcs = if hcs { OCR_CCS } else { 0 };
        Self::new(41, hcs | OCR_VOLTAGES, Resp::R3)
    }
    /// CMD2 ALL_SEND_CID.
    pub const fn all_send_cid() -> Self {
        Self::new(2, 0, Resp::R2)
    }
    /// CMD3 SEND_RELATIVE_ADDR.
    pub const fn send_relative_addr() -> Self {
        Self::new(3, 0, Resp::R1)
    }
    /// CMD9 SEND_CSD.
    pub const fn send_csd(rca: u16) -> Self {
        Self::new(9, (rca as u32) << 16, Resp::R2)
    }
    /// CMD7 SELECT_CARD.
    pub const fn select(rca: u16) -> Self {
        Self::new(7, (rca as u32) << 16, Resp::R1b)
    }
    /// ACMD6 SET_BUS_WIDTH to 4 bits.
    pub const fn bus_width_4() -> Self {
        Self::new(6, 2, Resp::R1)
    }
    /// CMD16 SET_BLOCKLEN 512 (standard-capacity cards).
    pub const fn block_len() -> Self {
        Self::new(16, 512, Resp::R1)
    }
    /// CMD13 SEND_STATUS.
    pub const fn send_status(rca: u16) -> Self {
        Self::new(13, (rca as u32) << 16, Resp::R1)
    }
    /// CMD12 STOP_TRANSMISSION.
    pub const fn stop() -> Self {
        Self::new(12, 0, Resp::R1b)
    }
    /// CMD17/CMD18: read `blocks` from `addr` (a block number on a
    /// high-capacity card, a byte offset on a standard one).
    pub const fn read(addr: u32, blocks: u32) -> Self {
        let index = if blocks > 1 { 18 } else { 17 };
        Cmd {
            index,
            arg: addr,
            resp: Resp::R1,
            data: Data::Read(blocks),
        }
    }
    /// CMD24/CMD25: write `blocks` at `addr`.
    pub const fn write(addr: u32, blocks: u32) -> Self {
        let index = if blocks > 1 { 25 } else { 24 };
        Cmd {
            index,
            arg: addr,
            resp: Resp::R1,
            data: Data::Write(blocks),
        }
    }

    /// The SDHCI COMMAND register (16 bits): response type, CRC and
    /// index checks, data present, the index.
    pub fn command_reg(&self) -> u16 {
        let (rtype, crc, idx) = match self.resp {
            Resp::None => (0b00, false, false),
            Resp::R2 => (0b01, true, false),
            Resp::R3 => (0b10, false, false),
            Resp::R1 => (0b10, true, true),
            Resp::R1b => (0b11, true, true),
        };
        let data = !matches!(self.data, Data::None);
        let abort = if self.index == 12 { 0b11 << 6 } else { 0 };
        rtype
            | u16::from(crc) << 3
            | u16::from(idx) << 4
            | u16::from(data) << 5
            | abort
            | (u16::from(self.index) & 0x3f) << 8
    }

    /// The SDHCI TRANSFER_MODE register (16 bits): PIO, block count, auto
    /// CMD12 and multi-block for more than one block, the direction.
    pub fn transfer_mode(&self) -> u16 {
        let (blocks, read) = match self.data {
            Data::None => return 0,
            Data::Read(n) => (n, true),
            Data::Write(n) => (n, false),
        };
        let multi = blocks > 1;
        let mut m = 0;
        if multi {
            m |= TM_BLOCK_COUNT | TM_AUTO_CMD12 | TM_MULTI;
        }
        if read {
            m |= TM_READ;
        }
        m
    }
}

/// TRANSFER_MODE: block count enable.
pub const TM_BLOCK_COUNT: u16 = 1 << 1;
/// TRANSFER_MODE: auto CMD12 after the last block.
pub const TM_AUTO_CMD12: u16 = 1 << 2;
/// TRANSFER_MODE: card to host.
pub const TM_READ: u16 = 1 << 4;
/// TRANSFER_MODE: more than one block.
pub const TM_MULTI: u16 = 1 << 5;

/// CMD8's argument: VHS 2.7-3.6 V (1), check pattern 0xaa.
pub const IF_COND_ARG: u32 = 0x1aa;
/// OCR: power-up done (not busy).
pub const OCR_READY: u32 = 1 << 31;
/// OCR: card capacity status (high capacity: block addressing); in
/// ACMD41's argument, HCS (the host handles it).
pub const OCR_CCS: u32 = 1 << 30;
/// OCR voltage window 2.7-3.6 V.
pub const OCR_VOLTAGES: u32 = 0x00ff_8000;

/// Card status (R1) bits that say a command failed.
pub const R1_ERRORS: u32 = 0xfdf9_0008;
/// Card status: the current state (bits 12:9).
pub fn r1_state(status: u32) -> u32 {
    (status >> 9) & 0xf
}
/// Card status: ready for data.
pub const R1_READY_FOR_DATA: u32 = 1 << 8;
/// The transfer state.
pub const STATE_TRAN: u32 = 4;

/// The card's capacity from its CSD, in 512-byte sectors. `csd` is the
/// register's bits 127:0 (bits 7:0, the CRC, are unused). None for a CSD
/// structure this driver does not know.
pub fn csd_sectors(csd: u128) -> Option<u64> {
    let bits = |hi: u32, lo: u32| ((csd >> lo) & ((1u128 << (hi - lo + 1)) - 1)) as u64;
    match bits(127, 126) {
        // CSD 1.0 (standard capacity): (C_SIZE + 1) * 2^(C_SIZE_MULT + 2)
        // blocks of 2^READ_BL_LEN bytes.
        0 => {
            let c_size = bits(73, 62);
            let mult = bits(49, 47);
            let bl_len = bits(83, 80);
            if !(9..=11).contains(&bl_len) {
                return None;
            }
            let bytes = (c_size + 1) << (mult + 2 + bl_len);
            Some(bytes / 512)
        }
        // CSD 2.0 (high/extended capacity): (C_SIZE + 1) * 512 KiB.
        1 => Some((bits(69, 48) + 1) * 1024),
        _ => None,
    }
}

/// The 128 CSD/CID bits from SDHCI's four RESPONSE registers, which hold
/// bits 127:8 shifted down by 8 (the controller strips the CRC).
pub fn r2_bits(resp: [u32; 4]) -> u128 {
    let r = u128::from(resp[0])
        | u128::from(resp[1]) << 32
        | u128::from(resp[2]) << 64
        | u128::from(resp[3]) << 96;
    r << 8
}

/// What a CMD8 answer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfCond {
    /// Version 2.00 or later, our voltage: may be high capacity.
    V2,
    /// No answer: a version 1.x card (or no SD memory card at all).
    NoAnswer,
    /// An answer that does not echo the pattern: unusable.
    Mismatch(u32),
}

/// Decodes CMD8's R7.
pub fn if_cond(r7: Option<u32>) -> IfCond {
    match r7 {
        None => IfCond::NoAnswer,
        Some(r) if r & 0xfff == IF_COND_ARG => IfCond::V2,
        Some(r) => IfCond::Mismatch(r),
    }
}

/// The SDCLK divider field of SDHCI 3.0's CLOCK_CONTROL for at most `hz`
/// from a `base` Hz clock: SDCLK = base / (2 * n), n up to 1023 (n = 0:
/// base itself). Returns (the register's bits 15:6, the clock it gives).
pub fn clock_divider(base: u32, hz: u32) -> (u16, u32) {
    if hz == 0 || base == 0 {
        return (clock_bits(1023), base / 2046);
    }
    if base <= hz {
        return (0, base);
    }
    let n = base.div_ceil(2 * hz).min(1023);
    (clock_bits(n), base / (2 * n))
}

/// n's low 8 bits at 15:8, its high 2 bits at 7:6.
fn clock_bits(n: u32) -> u16 {
    (((n & 0xff) << 8) | ((n >> 8) & 3) << 6) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_encode_as_sdhci_expects() {
        // CMD0: no response.
        assert_eq!(Cmd::go_idle().command_reg(), 0x0000);
        // CMD8: R7 (48 bits, CRC, index).
        assert_eq!(Cmd::send_if_cond().command_reg(), 0x081a);
        // ACMD41: R3 (48 bits, no checks).
        assert_eq!(Cmd::send_op_cond(true).command_reg(), 0x2902);
        assert_eq!(Cmd::send_op_cond(true).arg, 0x40ff_8000);
        assert_eq!(Cmd::send_op_cond(false).arg, 0x00ff_8000);
        // CMD2/CMD9: R2 (136 bits, CRC).
        assert_eq!(Cmd::all_send_cid().command_reg(), 0x0209);
        assert_eq!(Cmd::send_csd(0x1234).arg, 0x1234_0000);
        // CMD7: R1b.
        assert_eq!(Cmd::select(1).command_reg(), 0x071b);
        // CMD12: abort type.
        assert_eq!(Cmd::stop().command_reg() & 0xc0, 0xc0);
        // CMD18: data, multi-block read with auto CMD12.
        let r = Cmd::read(100, 8);
        assert_eq!((r.index, r.command_reg()), (18, 0x123a));
        assert_eq!(
            r.transfer_mode(),
            TM_BLOCK_COUNT | TM_AUTO_CMD12 | TM_MULTI | TM_READ
        );
        let r1 = Cmd::read(100, 1);
        assert_eq!((r1.index, r1.transfer_mode()), (17, TM_READ));
        let w = Cmd::write(7, 3);
        assert_eq!(
            (w.index, w.transfer_mode()),
            (25, TM_BLOCK_COUNT | TM_AUTO_CMD12 | TM_MULTI)
        );
        assert_eq!(Cmd::write(7, 1).index, 24);
    }

    #[test]
    fn csd_capacity_both_structures() {
        // CSD 2.0, C_SIZE 0x1d9b (a 3.7 GiB card): (C_SIZE+1) * 1024 sectors.
        let v2 = 1u128 << 126 | 0x1d9bu128 << 48;
        assert_eq!(csd_sectors(v2), Some((0x1d9b + 1) * 1024));
        // CSD 1.0: 1 GiB as C_SIZE 0xf13, C_SIZE_MULT 7, READ_BL_LEN 10.
        let v1 = 0xf13u128 << 62 | 7u128 << 47 | 10u128 << 80;
        assert_eq!(csd_sectors(v1), Some((0xf13 + 1) * 512 * 1024 / 512));
        // Unknown structure, impossible block length.
        assert_eq!(csd_sectors(2u128 << 126), None);
        assert_eq!(csd_sectors(15u128 << 80), None);
        assert_eq!(csd_sectors(0), None, "READ_BL_LEN 0");
        // Extremes do not overflow.
        assert!(csd_sectors(1u128 << 126 | ((1u128 << 22) - 1) << 48).is_some());
        assert!(csd_sectors(u128::MAX >> 2 & !(15u128 << 80) | 11u128 << 80).is_some());
    }

    #[test]
    fn r2_responses_are_realigned() {
        // The controller's RESPONSE registers hold bits 127:8 >> 8.
        let csd = 0x4000_0e00_325b_5900_01d9_b7ff_800a_4000u128;
        let regs = [
            (csd >> 8) as u32,
            (csd >> 40) as u32,
            (csd >> 72) as u32,
            (csd >> 104) as u32,
        ];
        assert_eq!(r2_bits(regs), csd & !0xff);
    }

    #[test]
    fn cmd8_answers() {
        assert_eq!(if_cond(Some(0x1aa)), IfCond::V2);
        assert_eq!(if_cond(None), IfCond::NoAnswer);
        assert_eq!(if_cond(Some(0x1ab)), IfCond::Mismatch(0x1ab));
    }

    #[test]
    fn clock_dividers() {
        // 200 MHz (QEMU's, and EMMC2's firmware rate on some boards)
        // to 400 kHz: n = 250.
        assert_eq!(
            clock_divider(200_000_000, 400_000),
            ((250 << 8) as u16, 400_000)
        );
        // 25 MHz from 250 MHz: n = 5.
        assert_eq!(clock_divider(250_000_000, 25_000_000), (5 << 8, 25_000_000));
        // Never faster than asked: 41.67 MHz base to 25 MHz -> n = 1.
        let (_, f) = clock_divider(41_666_666, 25_000_000);
        assert!(f <= 25_000_000);
        // n above 255 uses the upper bits; n capped at 1023.
        assert_eq!(
            clock_divider(400_000_000, 200_000).0,
            ((1000 & 0xff) << 8 | (1000 >> 8) << 6) as u16
        );
        assert_eq!(clock_divider(u32::MAX, 1).0 & 0xc0, 0xc0);
        assert_eq!(clock_divider(50_000_000, 100_000_000), (0, 50_000_000));
        assert!(clock_divider(0, 400_000).1 == 0 && clock_divider(1, 0).1 == 0);
    }
}
