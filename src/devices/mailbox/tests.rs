//! Tests of devices/mailbox/mod.rs: the emulated registers.

use super::*;
use std::sync::{Arc, Mutex};
use std::vec;
use std::vec::Vec;

// The device model.

struct Rig {
    dev: Mailbox,
    line: Arc<Mutex<Vec<bool>>>,
    reqs: Arc<Mutex<Vec<u32>>>,
}

fn rig() -> Rig {
    let line = Arc::new(Mutex::new(Vec::new()));
    let reqs = Arc::new(Mutex::new(Vec::new()));
    let (l, r) = (line.clone(), reqs.clone());
    let dev = Mailbox::new(
        Box::new(move |w| {
            r.lock().unwrap().push(w);
            (w & 0xf == 8).then_some(w)
        }),
        Box::new(move |lv| l.lock().unwrap().push(lv)),
    );
    Rig { dev, line, reqs }
}

#[test]
fn polled_request_and_response() {
    let mut r = rig();
    assert_eq!(r.dev.read(0x18, 4), Ok(u64::from(EMPTY)));
    assert_eq!(
        r.dev.read(0x38, 4),
        Ok(u64::from(EMPTY)),
        "MAIL1 never full"
    );
    r.dev.write(0x20, 4, 0xc000_1008).unwrap();
    assert_eq!(*r.reqs.lock().unwrap(), vec![0xc000_1008]);
    assert_eq!(r.dev.read(0x18, 4), Ok(1));
    assert_eq!(r.dev.read(0x10, 4), Ok(0xc000_1008), "peek");
    assert_eq!(r.dev.read(0x00, 4), Ok(0xc000_1008));
    assert_eq!(r.dev.read(0x18, 4), Ok(u64::from(EMPTY)));
    assert_eq!(r.dev.read(0x00, 4), Ok(0), "empty reads 0");
    assert!(
        r.line.lock().unwrap().is_empty(),
        "no interrupt unless enabled"
    );
    // Unknown channel: no answer.
    r.dev.write(0x20, 4, 0xc000_1001).unwrap();
    assert_eq!(r.dev.read(0x18, 4), Ok(u64::from(EMPTY)));
}

#[test]
fn interrupt_follows_enable_and_fill_level() {
    let mut r = rig();
    r.dev.write(0x1c, 4, u64::from(CNF_DATA_IRQ)).unwrap();
    assert_eq!(r.dev.read(0x1c, 4), Ok(1));
    r.dev.write(0x20, 4, 0xc000_2008).unwrap();
    r.dev.write(0x20, 4, 0xc000_3008).unwrap();
    assert_eq!(*r.line.lock().unwrap(), vec![true]);
    r.dev.read(0x00, 4).unwrap();
    assert_eq!(*r.line.lock().unwrap(), vec![true], "still one waiting");
    r.dev.read(0x00, 4).unwrap();
    assert_eq!(*r.line.lock().unwrap(), vec![true, false]);
    // Disabling with data waiting lowers the line; enabling raises it.
    r.dev.write(0x20, 4, 0xc000_4008).unwrap();
    r.dev.write(0x1c, 4, 0).unwrap();
    r.dev.write(0x1c, 4, 1).unwrap();
    assert_eq!(
        *r.line.lock().unwrap(),
        vec![true, false, true, false, true]
    );
}

#[test]
fn fifo_depth_and_hostile_accesses() {
    let mut r = rig();
    for i in 0..20u64 {
        r.dev.write(0x20, 4, (i << 4) | 8).unwrap();
    }
    assert_eq!(r.dev.read(0x18, 4), Ok(u64::from(FULL) | DEPTH as u64));
    assert_eq!(r.dev.read(0x00, 4), Ok(8), "the oldest answers stay");
    for w in [1u8, 2, 8] {
        assert_eq!(r.dev.read(0x18, w), Err(MmioError::BadWidth));
        assert_eq!(r.dev.write(0x20, w, 8), Err(MmioError::BadWidth));
    }
    assert_eq!(r.dev.read(0x19, 4), Err(MmioError::BadWidth));
    assert_eq!(r.dev.read(0x40, 4), Err(MmioError::BadOffset));
    assert_eq!(
        r.dev.read(0x24, 4),
        Ok(0),
        "inside the block: reads as zero"
    );
    assert_eq!(r.dev.write(0x30, 4, 5), Ok(()));
}

#[test]
fn reset_drops_waiting_answers_and_the_configuration() {
    let mut r = rig();
    r.dev.write(0x1c, 4, u64::from(CNF_DATA_IRQ)).unwrap(); // MAIL0_CNF
    r.dev.write(0x20, 4, 0xc000_1008).unwrap(); // a request, answered
    assert_eq!(
        r.dev.read(0x18, 4).unwrap() as u32 & EMPTY,
        0,
        "an answer waits"
    );
    MmioDevice::reset(&mut r.dev);
    assert_ne!(
        r.dev.read(0x18, 4).unwrap() as u32 & EMPTY,
        0,
        "no stale answer"
    );
    assert_eq!(r.dev.read(0x1c, 4).unwrap(), 0, "MAIL0_CNF back to 0");
    assert_eq!(r.dev.read(0x00, 4).unwrap(), 0, "nothing to pop");
}
