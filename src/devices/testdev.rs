//! The pivisor test device: a tiny register block for bare-metal test
//! guests (device tree compatible "pivisor,test-device").
//!
//! | offset | width   | register                                          |
//! |--------|---------|---------------------------------------------------|
//! | 0x00   | 4       | ID, read-only: 0x70767464 ("pvtd")                |
//! | 0x04   | 1, 2, 4 | SCRATCH, read-write (naturally aligned lanes)     |
//! | 0x08   | 1-8     | PUTC, write-only: low byte to the VM's console    |
//! | 0x0c   | 4       | INFO, read-only: vCPUs, VM index << 8, first      |
//! |        |         | interrupt line's INTID << 16                      |
//! | 0x10   | 8       | SCRATCH64, read-write                             |
//! | 0x18   | 4       | IRQ_LEVEL, read-write: bit k drives line k        |
//! | 0x1c   | 4       | IRQ_PULSE, write-only: bit k raises and lowers    |
//! |        |         | line k (an edge)                                  |
//! | 0x20   | 4       | BOOTS, read-only: how many times the VM has       |
//! |        |         | started (1 at first boot; restarts add one)       |
//!
//! Console bytes are collected into lines (at most [`LINE_MAX`] bytes,
//! non-printable bytes shown as '?') and handed to the line sink. The
//! [`LINES`] interrupt lines are SPIs from the INTID given at creation;
//! changes go to the interrupt sink (the VM's virtual distributor).

use crate::devices::bus::{MmioDevice, MmioError};
use alloc::boxed::Box;
use alloc::string::String;

/// The ID register's value.
pub const ID: u32 = 0x7076_7464;
/// Longest console line before it is flushed.
pub const LINE_MAX: usize = 160;

/// How many interrupt lines it has.
pub const LINES: u32 = 8;

/// Where finished console lines go.
pub type LineSink = Box<dyn FnMut(&str) + Send>;
/// Where interrupt line changes go: (INTID, level).
pub type IrqSink = Box<dyn FnMut(u32, bool) + Send>;
/// How many times the VM has started.
pub type BootCount = Box<dyn Fn() -> u32 + Send>;

/// The device state.
pub struct TestDev {
    scratch: u32,
    scratch64: u64,
    info: u32,
    line: String,
    sink: LineSink,
    irq_base: u32,
    levels: u32,
    irq: IrqSink,
    boots: BootCount,
}

impl TestDev {
    /// A device reporting `vcpus` and `vm_index`, printing through `sink`,
    /// with interrupt lines `irq_base..irq_base + LINES` driven through
    /// `irq`.
    pub fn new(vcpus: usize, vm_index: usize, sink: LineSink, irq_base: u32, irq: IrqSink) -> Self {
        Self {
            scratch: 0,
            scratch64: 0,
            info: (vcpus as u32 & 0xff)
                | ((vm_index as u32 & 0xff) << 8)
                | ((irq_base & 0x3ff) << 16),
            line: String::new(),
            sink,
            irq_base,
            levels: 0,
            irq,
            boots: Box::new(|| 1),
        }
    }

    /// Reads BOOTS through `boots` (the hypervisor's restart count + 1).
    pub fn with_boots(mut self, boots: BootCount) -> Self {
        self.boots = boots;
        self
    }

    /// Drives the lines to `levels`, telling the sink about changes.
    fn drive(&mut self, levels: u32) {
        let levels = levels & ((1 << LINES) - 1);
        let changed = self.levels ^ levels;
        self.levels = levels;
        for k in 0..LINES {
            if changed & (1 << k) != 0 {
                (self.irq)(self.irq_base + k, levels & (1 << k) != 0);
            }
        }
    }

    fn putc(&mut self, b: u8) {
        match b {
            b'\n' => {
                (self.sink)(&self.line);
                self.line.clear();
            }
            b'\r' => {}
            0x20..=0x7e => self.line.push(b as char),
            _ => self.line.push('?'),
        }
        if self.line.len() >= LINE_MAX {
            (self.sink)(&self.line);
            self.line.clear();
        }
    }
}

/// True if `width` is a naturally aligned access at `offset`.
fn aligned(offset: u64, width: u8) -> bool {
    matches!(width, 1 | 2 | 4 | 8) && offset.is_multiple_of(width as u64)
}

impl MmioDevice for TestDev {
    fn reset(&mut self) {
        self.scratch = 0;
        self.scratch64 = 0;
        self.line.clear();
        self.levels = 0;
    }

    fn name(&self) -> &str {
        "pivisor-test"
    }

    fn read(&mut self, offset: u64, width: u8) -> Result<u64, MmioError> {
        if !aligned(offset, width) {
            return Err(MmioError::BadWidth);
        }
        match (offset, width) {
            (0x00, 4) => Ok(ID as u64),
            (0x0c, 4) => Ok(self.info as u64),
            (0x04..=0x07, 1 | 2 | 4) => {
                let v = (self.scratch >> ((offset - 4) * 8)) as u64;
                Ok(v & ((1u64 << (width as u64 * 8)) - 1))
            }
            (0x10, 8) => Ok(self.scratch64),
            (0x18, 4) => Ok(self.levels as u64),
            (0x20, 4) => Ok(u64::from((self.boots)())),
            (0x08 | 0x1c, _) => Err(MmioError::BadDirection),
            (0x00..=0x23, _) => Err(MmioError::BadWidth),
            _ => Err(MmioError::BadOffset),
        }
    }

    fn write(&mut self, offset: u64, width: u8, value: u64) -> Result<(), MmioError> {
        if !aligned(offset, width) {
            return Err(MmioError::BadWidth);
        }
        match (offset, width) {
            (0x04..=0x07, 1 | 2 | 4) => {
                let shift = (offset - 4) * 8;
                let mask = (((1u64 << (width as u64 * 8)) - 1) << shift) as u32;
                self.scratch = (self.scratch & !mask) | (((value << shift) as u32) & mask);
                Ok(())
            }
            (0x08, _) => {
                self.putc(value as u8);
                Ok(())
            }
            (0x10, 8) => {
                self.scratch64 = value;
                Ok(())
            }
            (0x18, 4) => {
                self.drive(value as u32);
                Ok(())
            }
            (0x1c, 4) => {
                let keep = self.levels;
                let up = value as u32 & !keep;
                self.drive(keep | up);
                self.drive(keep);
                Ok(())
            }
            (0x00 | 0x0c | 0x20, _) => Err(MmioError::BadDirection),
            (0x00..=0x23, _) => Err(MmioError::BadWidth),
            _ => Err(MmioError::BadOffset),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::vec::Vec;

    type Irqs = Arc<Mutex<Vec<(u32, bool)>>>;

    fn dev_irqs() -> (TestDev, Arc<Mutex<Vec<String>>>, Irqs) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l2 = lines.clone();
        let irqs: Irqs = Arc::new(Mutex::new(Vec::new()));
        let i2 = irqs.clone();
        let d = TestDev::new(
            2,
            1,
            Box::new(move |s| l2.lock().unwrap().push(s.into())),
            104,
            Box::new(move |i, l| i2.lock().unwrap().push((i, l))),
        );
        (d, lines, irqs)
    }

    fn dev() -> (TestDev, Arc<Mutex<Vec<String>>>) {
        let (d, l, _) = dev_irqs();
        (d, l)
    }

    #[test]
    fn interrupt_lines() {
        let (mut d, _, irqs) = dev_irqs();
        assert_eq!(d.read(0xc, 4), Ok(0x102 | (104 << 16)));
        d.write(0x18, 4, 0b101).unwrap();
        assert_eq!(d.read(0x18, 4), Ok(0b101));
        d.write(0x18, 4, 0xffff_ff01).unwrap(); // line 2 drops; no line 8+
        assert_eq!(
            *irqs.lock().unwrap(),
            [(104, true), (106, true), (106, false)]
        );
        irqs.lock().unwrap().clear();
        d.write(0x1c, 4, 0b11).unwrap(); // line 0 is already high
        assert_eq!(*irqs.lock().unwrap(), [(105, true), (105, false)]);
        assert_eq!(d.read(0x18, 4), Ok(0b1), "a pulse leaves the level");
        assert_eq!(d.read(0x1c, 4), Err(MmioError::BadDirection));
        assert_eq!(d.write(0x18, 2, 1), Err(MmioError::BadWidth));
    }

    #[test]
    fn id_info_and_scratch() {
        let (mut d, _) = dev();
        assert_eq!(d.read(0, 4), Ok(ID as u64));
        assert_eq!(d.read(0xc, 4).map(|v| v & 0xffff), Ok(0x102));
        d.write(4, 4, 0x1122_3344).unwrap();
        assert_eq!(d.read(4, 4), Ok(0x1122_3344));
        assert_eq!(d.read(5, 1), Ok(0x33));
        assert_eq!(d.read(6, 2), Ok(0x1122));
        d.write(7, 1, 0xff_aa).unwrap();
        assert_eq!(d.read(4, 4), Ok(0xaa22_3344), "byte lane only");
        d.write(4, 2, 0xbeef).unwrap();
        assert_eq!(d.read(4, 4), Ok(0xaa22_beef));
        d.write(0x10, 8, u64::MAX - 1).unwrap();
        assert_eq!(d.read(0x10, 8), Ok(u64::MAX - 1));
    }

    #[test]
    fn console_lines() {
        let (mut d, lines) = dev();
        for b in b"hello\r\n\x01x\n" {
            d.write(8, 1, *b as u64).unwrap();
        }
        assert_eq!(*lines.lock().unwrap(), ["hello", "?x"]);
        for _ in 0..LINE_MAX + 5 {
            d.write(8, 4, b'a' as u64).unwrap();
        }
        assert_eq!(lines.lock().unwrap().len(), 3, "a long line is flushed");
    }

    #[test]
    fn hostile_accesses_are_refused() {
        let (mut d, _) = dev();
        assert_eq!(d.write(0, 4, 1), Err(MmioError::BadDirection));
        assert_eq!(d.read(8, 1), Err(MmioError::BadDirection));
        assert_eq!(d.read(0, 8), Err(MmioError::BadWidth));
        assert_eq!(d.read(0x10, 4), Err(MmioError::BadWidth));
        assert_eq!(d.read(5, 2), Err(MmioError::BadWidth), "misaligned");
        assert_eq!(d.read(3, 4), Err(MmioError::BadWidth));
        assert_eq!(d.read(0x24, 4), Err(MmioError::BadOffset));
        assert_eq!(d.read(0x20, 4), Ok(1), "BOOTS: 1 unless told");
        assert_eq!(d.write(0x20, 4, 5), Err(MmioError::BadDirection));
        let mut d = d.with_boots(Box::new(|| 3));
        assert_eq!(d.read(0x20, 4), Ok(3));
        assert_eq!(d.write(0xffc, 4, 0), Err(MmioError::BadOffset));
        assert_eq!(d.read(0, 3), Err(MmioError::BadWidth));
        assert_eq!(d.read(0x4, 4), Ok(0), "state unchanged by refusals");
    }

    #[test]
    fn reset_clears_scratch_lines_and_a_half_written_line() {
        let (mut d, lines, irqs) = dev_irqs();
        d.write(0x04, 4, 0xdead_beef).unwrap();
        d.write(0x10, 8, 0x1234).unwrap();
        d.write(0x18, 4, 0b101).unwrap();
        d.write(0x08, 1, u64::from(b'x')).unwrap(); // a line not yet ended
        MmioDevice::reset(&mut d);
        assert_eq!((d.read(0x04, 4), d.read(0x10, 8)), (Ok(0), Ok(0)));
        assert_eq!(d.read(0x18, 4), Ok(0));
        irqs.lock().unwrap().clear();
        d.write(0x18, 4, 0b1).unwrap();
        assert_eq!(
            *irqs.lock().unwrap(),
            [(104, true)],
            "a rise after reset is seen"
        );
        d.write(0x08, 1, u64::from(b'\n')).unwrap();
        assert!(
            lines.lock().unwrap().iter().all(|l| !l.contains('x')),
            "the old half line is gone"
        );
    }
}
