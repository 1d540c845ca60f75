//! List-register fold and fill against a simulated virtual CPU interface:
//! priority order, overflow and refill, level re-sampling, SGI sources,
//! hardware-linked interrupts, and hostile list-register contents.

use crate::board::gic400::GICH_LR;
use crate::vgic::dist::VgicDist;
use std::vec::Vec;
use tock_registers::{interfaces::Readable, registers::InMemoryRegister};

const ENABLE_ALL: u32 = 0b11;

fn field(v: u32) -> InMemoryRegister<u32, GICH_LR::Register> {
    InMemoryRegister::new(v)
}

/// The state a guest sees through GICV: 4 list registers.
struct Cpu {
    lrs: [u32; 4],
}

impl Cpu {
    fn new() -> Self {
        Self { lrs: [0; 4] }
    }

    /// GICV_IAR: the highest-priority pending entry becomes active.
    fn ack(&mut self) -> Option<u32> {
        let i = (0..4)
            .filter(|&i| field(self.lrs[i]).read(GICH_LR::STATE) == 1)
            .min_by_key(|&i| field(self.lrs[i]).read(GICH_LR::PRIORITY))?;
        self.lrs[i] = (self.lrs[i] & !(3 << 28)) | (2 << 28);
        Some(field(self.lrs[i]).read(GICH_LR::VIRTUAL_ID))
    }

    /// GICV_EOIR with EOImode 0: the active entry for `intid` is done
    /// (Pending+Active goes back to Pending).
    fn eoi(&mut self, intid: u32) {
        for lr in self.lrs.iter_mut() {
            let f = field(*lr);
            if f.read(GICH_LR::VIRTUAL_ID) == intid && f.read(GICH_LR::STATE) & 2 != 0 {
                let pending = f.read(GICH_LR::STATE) & 1;
                *lr = (*lr & !(3 << 28)) | (pending << 28);
                return;
            }
        }
        panic!("EOI of {intid}, which is not active");
    }

    fn take_all(&mut self, d: &mut VgicDist, vcpu: usize) -> Vec<u32> {
        let mut got = Vec::new();
        loop {
            d.flush(vcpu, &mut self.lrs);
            let Some(id) = self.ack() else { break };
            got.push(id);
            self.eoi(id);
        }
        got
    }
}

/// A 2-vCPU VM owning SPIs 32-47 (all targeted at vCPU 0, enabled, with
/// priorities 0x80 + 8*k for SPI 32+k reversed so higher INTIDs win).
fn vm() -> VgicDist {
    let spis: Vec<u32> = (32..48).collect();
    let mut d = VgicDist::new(2, &spis);
    d.write(0, 0x000, 4, ENABLE_ALL);
    for k in 0..16u32 {
        d.write(0, 0x800 + 32 + k as u64, 1, 1);
        d.write(0, 0x400 + 32 + k as u64, 1, (0xf8 - 8 * k) & 0xff);
        d.write(0, 0xc08, 4, 0xaaaa_aaaa); // SPIs 32-47 edge-triggered
    }
    d.write(0, 0x104, 4, 0xffff);
    d
}

fn pend(d: &mut VgicDist, intids: &[u32]) {
    for &i in intids {
        d.write(0, 0x204, 4, 1 << (i - 32));
    }
}

#[test]
fn more_pending_than_list_registers_all_arrive_in_priority_order() {
    let mut d = vm();
    let mut cpu = Cpu::new();
    pend(&mut d, &[32, 33, 34, 35, 36, 37]);
    assert!(d.flush(0, &mut cpu.lrs), "two wait: underflow wanted");
    let held: Vec<u32> = cpu.lrs.iter().map(|&l| l & 0x3ff).collect();
    assert_eq!(held, [37, 36, 35, 34], "the four most urgent");
    // The guest takes three; the refill brings in the last two.
    for _ in 0..3 {
        let id = cpu.ack().unwrap();
        cpu.eoi(id);
    }
    assert!(!d.flush(0, &mut cpu.lrs), "everything fits now");
    let got = cpu.take_all(&mut d, 0);
    assert_eq!(got, [34, 33, 32]);
    assert_eq!(cpu.lrs, [0; 4]);
}

#[test]
fn a_more_urgent_interrupt_displaces_waiting_ones() {
    let mut d = vm();
    let mut cpu = Cpu::new();
    pend(&mut d, &[32, 33, 34, 35]);
    assert!(!d.flush(0, &mut cpu.lrs));
    pend(&mut d, &[47]);
    assert!(d.flush(0, &mut cpu.lrs), "the least urgent waits now");
    assert_eq!(cpu.ack(), Some(47));
    cpu.eoi(47);
    assert_eq!(cpu.take_all(&mut d, 0), [35, 34, 33, 32]);
}

#[test]
fn nothing_is_delivered_while_disabled_untargeted_or_group_off() {
    let mut d = vm();
    let mut cpu = Cpu::new();
    d.write(0, 0x000, 4, 0);
    pend(&mut d, &[40]);
    assert!(!d.flush(0, &mut cpu.lrs));
    assert_eq!(cpu.lrs, [0; 4], "distributor off");
    d.write(0, 0x000, 4, 0b10);
    d.flush(0, &mut cpu.lrs);
    assert_eq!(cpu.lrs, [0; 4], "Group 0 off");
    d.write(0, 0x000, 4, ENABLE_ALL);
    d.flush(1, &mut cpu.lrs);
    assert_eq!(cpu.lrs, [0; 4], "targeted at vCPU 0 only");
    d.flush(0, &mut cpu.lrs);
    assert_eq!(cpu.lrs[0] & 0x3ff, 40);
    // Disabled while waiting in a list register: taken back out.
    d.write(0, 0x184, 4, 1 << 8);
    d.flush(0, &mut cpu.lrs);
    assert_eq!(cpu.lrs, [0; 4]);
    assert!(d.irq(0, 40).unwrap().is_pending(), "still pending");
    d.write(0, 0x104, 4, 1 << 8);
    assert_eq!(cpu.take_all(&mut d, 0), [40]);
    // Cleared while waiting: gone for good.
    pend(&mut d, &[41]);
    d.flush(0, &mut cpu.lrs);
    d.write(0, 0x284, 4, 1 << 9);
    d.flush(0, &mut cpu.lrs);
    assert_eq!(cpu.lrs, [0; 4]);
    assert!(!d.irq(0, 41).unwrap().is_pending());
}

#[test]
fn group1_entries_carry_the_group_bit() {
    let mut d = vm();
    let mut cpu = Cpu::new();
    d.write(0, 0x084, 4, 1 << 8);
    pend(&mut d, &[40]);
    d.flush(0, &mut cpu.lrs);
    assert_eq!(field(cpu.lrs[0]).read(GICH_LR::GRP1), 1);
}

#[test]
fn level_lines_are_resampled_after_eoi() {
    let mut d = vm();
    let mut cpu = Cpu::new();
    d.write(0, 0xc08, 4, 0); // SPIs 32-47 level-sensitive
    assert_eq!(d.set_line(0, 44, true), 1);
    d.flush(0, &mut cpu.lrs);
    assert_eq!(cpu.lrs[0] & (1 << 19), 1 << 19, "EOI maintenance asked");
    // The guest EOIs without quietening the device: delivered again.
    assert_eq!(cpu.ack(), Some(44));
    cpu.eoi(44);
    d.flush(0, &mut cpu.lrs);
    assert_eq!(cpu.ack(), Some(44), "line still high");
    // This time the handler lowers the line before EOI: no more.
    d.set_line(0, 44, false);
    cpu.eoi(44);
    assert!(cpu.take_all(&mut d, 0).is_empty());
    // A level line that drops before the guest acknowledges vanishes.
    d.set_line(0, 45, true);
    d.flush(0, &mut cpu.lrs);
    d.set_line(0, 45, false);
    d.flush(0, &mut cpu.lrs);
    assert_eq!(cpu.lrs, [0; 4]);
}

#[test]
fn a_level_line_lowered_while_active_needs_no_eoi_maintenance() {
    const EOI: u32 = 1 << 19;
    let mut d = vm();
    let mut cpu = Cpu::new();
    d.write(0, 0xc08, 4, 0); // level
    d.set_line(0, 44, true);
    d.flush(0, &mut cpu.lrs);
    assert_eq!(cpu.ack(), Some(44));
    // The handler acknowledges the device (an MMIO exit that flushes):
    // the line is low, so the EOI needs no maintenance interrupt.
    d.set_line(0, 44, false);
    d.flush(0, &mut cpu.lrs);
    assert_eq!(cpu.lrs[0] & EOI, 0, "EOI maintenance dropped");
    assert_eq!(field(cpu.lrs[0]).read(GICH_LR::STATE), 2, "still active");
    // The line rises again before the EOI: the EOI must be heard again.
    d.set_line(0, 44, true);
    d.flush(0, &mut cpu.lrs);
    assert_eq!(cpu.lrs[0] & EOI, EOI, "EOI maintenance back");
    cpu.eoi(44);
    d.flush(0, &mut cpu.lrs);
    assert_eq!(cpu.ack(), Some(44), "delivered again: the line is high");
    d.set_line(0, 44, false);
    d.flush(0, &mut cpu.lrs);
    // Silently EOIed (no maintenance): the next flush folds the entry
    // and a new rise is delivered.
    cpu.eoi(44);
    d.flush(0, &mut cpu.lrs);
    assert_eq!(cpu.lrs, [0; 4]);
    d.set_line(0, 44, true);
    d.flush(0, &mut cpu.lrs);
    assert_eq!(cpu.ack(), Some(44));
    d.set_line(0, 44, false);
    cpu.eoi(44);
    // A latch (ISPENDR) on a level interrupt also keeps EOI maintenance.
    d.set_line(0, 44, false);
    d.flush(0, &mut cpu.lrs);
    d.write(0, 0x204, 4, 1 << 13); // ISPENDR SPI 45
    d.flush(0, &mut cpu.lrs);
    assert_eq!(cpu.ack(), Some(45));
    d.write(0, 0x204, 4, 1 << 13); // pending again while active
    d.flush(0, &mut cpu.lrs);
    let lr45 = cpu
        .lrs
        .iter()
        .find(|&&l| field(l).read(GICH_LR::VIRTUAL_ID) == 45);
    assert_eq!(lr45.map(|l| l & EOI), Some(EOI));
}

#[test]
fn edge_interrupts_retrigger_while_active() {
    let mut d = vm();
    let mut cpu = Cpu::new();
    assert_eq!(d.set_line(0, 40, true), 1);
    d.flush(0, &mut cpu.lrs);
    assert_eq!(cpu.ack(), Some(40));
    d.set_line(0, 40, false);
    d.set_line(0, 40, true);
    d.flush(0, &mut cpu.lrs);
    assert_eq!(
        field(cpu.lrs[0]).read(GICH_LR::STATE),
        3,
        "pending and active"
    );
    cpu.eoi(40);
    assert_eq!(cpu.take_all(&mut d, 0), [40], "delivered once more");
}

#[test]
fn sgis_from_several_sources_each_arrive_with_their_source() {
    let mut d = VgicDist::new(3, &[]);
    let mut cpu = Cpu::new();
    d.write(0, 0x000, 4, ENABLE_ALL);
    d.write(2, 0x100, 4, 0xffff);
    d.write(0, 0xf00, 4, (1 << 18) | 5); // vCPU 0 -> vCPU 2, SGI 5
    d.write(1, 0xf00, 4, (1 << 18) | 5); // vCPU 1 -> vCPU 2, SGI 5
    d.flush(2, &mut cpu.lrs);
    let src = field(cpu.lrs[0]).read(GICH_LR::PHYSICAL_ID) & 7;
    assert_eq!(src, 0);
    assert_eq!(
        field(cpu.lrs[0]).read(GICH_LR::PHYSICAL_ID) & (1 << 9),
        1 << 9,
        "another source waits: EOI maintenance brings it in"
    );
    assert_eq!(cpu.ack(), Some(5));
    d.flush(2, &mut cpu.lrs);
    assert_eq!(field(cpu.lrs[0]).read(GICH_LR::STATE), 2, "one at a time");
    cpu.eoi(5);
    d.flush(2, &mut cpu.lrs);
    assert_eq!(field(cpu.lrs[0]).read(GICH_LR::PHYSICAL_ID) & 7, 1);
    // The same source again while active: pending and active in place.
    d.write(1, 0xf00, 4, (1 << 18) | 5);
    assert_eq!(cpu.ack(), Some(5));
    d.flush(2, &mut cpu.lrs);
    assert_eq!(field(cpu.lrs[0]).read(GICH_LR::STATE), 3);
    cpu.eoi(5);
    assert_eq!(cpu.take_all(&mut d, 2), [5]);
    assert_eq!(d.sgi_sources(2, 5), 0);
    // Sixteen SGIs to itself: four at a time, all arrive.
    for sgi in 0..16 {
        d.write(2, 0xf00, 4, (2 << 24) | sgi);
    }
    assert!(d.flush(2, &mut cpu.lrs));
    let mut got = cpu.take_all(&mut d, 2);
    got.sort();
    assert_eq!(got, (0..16).collect::<Vec<u32>>());
}

#[test]
fn hardware_linked_timer_goes_in_with_its_physical_id() {
    let mut d = VgicDist::new(2, &[]);
    let mut cpu = Cpu::new();
    d.set_hw(27);
    d.write(1, 0x000, 4, ENABLE_ALL);
    d.write(1, 0x100, 4, 1 << 27);
    assert_eq!(d.set_line(1, 27, true), 0, "devices cannot drive it");
    assert_eq!(d.hw_fired(1, 27), 0b10);
    d.flush(1, &mut cpu.lrs);
    let f = field(cpu.lrs[0]);
    assert_eq!(f.read(GICH_LR::HW), 1);
    assert_eq!(f.read(GICH_LR::PHYSICAL_ID), 27);
    assert_eq!(cpu.ack(), Some(27));
    cpu.eoi(27);
    assert!(cpu.take_all(&mut d, 1).is_empty());
    assert!(d.take_released(1).is_empty(), "the guest deactivated it");
    // The guest clears it while it waits in a list register: the
    // physical interrupt is handed back for deactivation.
    d.hw_fired(1, 27);
    d.flush(1, &mut cpu.lrs);
    d.write(1, 0x280, 4, 1 << 27);
    d.flush(1, &mut cpu.lrs);
    assert_eq!(cpu.lrs, [0; 4]);
    assert_eq!(d.take_released(0), Vec::<u32>::new(), "vCPU 1's PPI");
    assert_eq!(d.take_released(1), [27]);
    // Cleared while not in a list register (disabled): released at once.
    d.write(1, 0x180, 4, 1 << 27);
    d.hw_fired(1, 27);
    d.flush(1, &mut cpu.lrs);
    d.write(1, 0x280, 4, 1 << 27);
    assert_eq!(d.take_released(1), [27]);
    // The guest cannot make it edge-triggered.
    d.write(1, 0xc04, 4, u32::MAX);
    assert!(!d.irq(1, 27).unwrap().edge);
}

#[test]
fn vcpu_reset_forgets_list_registers_and_hardware_state() {
    let mut d = vm();
    let mut cpu = Cpu::new();
    d.set_hw(27);
    d.write(0, 0x100, 4, 1 << 27);
    d.hw_fired(0, 27);
    pend(&mut d, &[40]);
    d.flush(0, &mut cpu.lrs);
    assert_eq!(cpu.ack(), Some(27));
    d.reset_vcpu(0, &cpu.lrs);
    let mut fresh = Cpu::new();
    assert_eq!(fresh.take_all(&mut d, 0), [40], "40 was only pending");
    assert!(!d.irq(0, 27).unwrap().active);
}

#[test]
fn hostile_list_register_contents_and_arguments() {
    let mut d = vm();
    // Values the hypervisor never wrote are wiped, not trusted.
    let mut lrs = [0xffff_ffffu32; 4];
    assert!(!d.flush(0, &mut lrs));
    assert_eq!(lrs, [0; 4]);
    // No such vCPU; more list registers than GICv2 has.
    assert!(!d.flush(9, &mut lrs));
    let mut many = [0u32; 100];
    pend(&mut d, &(32..48).collect::<Vec<u32>>());
    // One flush fills at most CHOOSE_MAX (8) list registers and asks for
    // an underflow refill for the rest (which come in as the guest
    // acknowledges these); never beyond the 64 GICv2 has.
    assert!(d.flush(0, &mut many), "16 pending, 8 placed per refill");
    assert_eq!(many[64..], [0; 36]);
    assert_eq!(many.iter().filter(|&&l| l != 0).count(), 8);
    assert!(!d.flush(0, &mut []), "no list registers: nothing to do");
}

#[test]
fn hardware_interrupts_via_eoi_maintenance() {
    let mut d = VgicDist::new(1, &[]);
    let mut cpu = Cpu::new();
    d.set_hw(27);
    d.set_hw_via_eoi(true);
    d.write(0, 0x000, 4, ENABLE_ALL);
    d.write(0, 0x100, 4, 1 << 27);
    d.hw_fired(0, 27);
    d.flush(0, &mut cpu.lrs);
    let f = field(cpu.lrs[0]);
    assert_eq!(f.read(GICH_LR::HW), 0);
    assert_eq!(f.read(GICH_LR::PHYSICAL_ID), 1 << 9, "EOI maintenance");
    assert_eq!(cpu.ack(), Some(27));
    d.flush(0, &mut cpu.lrs);
    assert!(d.take_released(0).is_empty(), "still active in the guest");
    cpu.eoi(27);
    d.flush(0, &mut cpu.lrs);
    assert_eq!(
        d.take_released(0),
        [27],
        "done: deactivate the physical one"
    );
    assert_eq!(cpu.lrs, [0; 4]);
}
