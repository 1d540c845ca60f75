//! Tests of devices/mailbox/property.rs: tags answered, forwarded or
//! refused, and hostile buffers.

use super::*;
use std::vec;
use std::vec::Vec;

/// Builds a buffer: (id, value buffer size, request length, value words).
pub(crate) fn buffer(tags: &[(u32, u32, u32, &[u32])]) -> Vec<u8> {
    let mut w: Vec<u32> = vec![0, CODE_REQUEST];
    for &(id, size, req, val) in tags {
        w.extend_from_slice(&[id, size, req]);
        let words = (size as usize).div_ceil(4);
        for i in 0..words {
            w.push(val.get(i).copied().unwrap_or(0));
        }
    }
    w.push(0);
    w[0] = (w.len() * 4) as u32;
    w.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub(crate) fn word(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(b[i * 4..i * 4 + 4].try_into().unwrap())
}

/// A firmware that answers like QEMU's: every tag gets a 4-byte
/// answer (its id + 1) and the response bit, and records what it saw.
#[derive(Default)]
pub(crate) struct FakeFw {
    seen: Vec<Vec<u8>>,
    fail: bool,
    no_response_bit: bool,
}

impl Firmware for FakeFw {
    fn call(&mut self, buf: &mut [u8]) -> Result<(), &'static str> {
        self.seen.push(buf.to_vec());
        if self.fail {
            return Err("timeout");
        }
        // The firmware sees a well-formed buffer.
        let tags = parse(buf).expect("forwarded buffer must be well formed");
        assert_eq!(word(buf, 0) as usize, buf.len());
        for t in tags {
            let v = t.value();
            if t.size >= 4 {
                buf[v.start..v.start + 4].copy_from_slice(&(t.id + 1).to_le_bytes());
            }
            let code = if self.no_response_bit {
                0
            } else {
                RESPONSE | 4
            };
            buf[t.at + 8..t.at + 12].copy_from_slice(&code.to_le_bytes());
        }
        buf[4..8].copy_from_slice(&CODE_SUCCESS.to_le_bytes());
        Ok(())
    }
}

pub(crate) const VIEW: View<'static> = View {
    ram_base: 0,
    ram: 768 << 20,
    serial: None,
    mac: None,
    cmdline: "console=ttyAMA0",
};

#[test]
fn firmware_revision_is_forwarded_and_answered() {
    let mut b = buffer(&[(tag::FIRMWARE_REVISION, 4, 0, &[0])]);
    let mut fw = FakeFw::default();
    let o = process(&mut b, &Policy::default(), &VIEW, &mut fw).unwrap();
    assert_eq!(o.code, CODE_SUCCESS);
    assert_eq!(o.forwarded, 1);
    assert_eq!(word(&b, 1), CODE_SUCCESS);
    assert_eq!(word(&b, 4), RESPONSE | 4);
    assert_eq!(word(&b, 5), tag::FIRMWARE_REVISION + 1);
    assert_eq!(fw.seen.len(), 1);
}

#[test]
fn arm_memory_is_the_vms_own() {
    let mut b = buffer(&[(tag::ARM_MEMORY, 8, 0, &[])]);
    let mut fw = FakeFw::default();
    let o = process(&mut b, &Policy::default(), &VIEW, &mut fw).unwrap();
    assert_eq!((o.code, o.local, o.forwarded), (CODE_SUCCESS, 1, 0));
    assert_eq!(word(&b, 4), RESPONSE | 8);
    assert_eq!((word(&b, 5), word(&b, 6)), (0, 768 << 20));
    assert!(fw.seen.is_empty(), "nothing reaches the firmware");
    // A VM larger than 4 GiB cannot be described in 32 bits: capped.
    let mut b = buffer(&[(tag::ARM_MEMORY, 8, 0, &[])]);
    let big = View {
        ram_base: 0,
        ram: 8 << 30,
        ..VIEW
    };
    process(&mut b, &Policy::default(), &big, &mut fw).unwrap();
    assert_eq!(word(&b, 6), 0xffff_f000);
}

#[test]
fn serial_and_mac_virtual_when_configured_else_forwarded() {
    let view = View {
        ram_base: 0,
        serial: Some(0x1122_3344_5566_7788),
        mac: Some([2, 0, 0, 0xaa, 0xbb, 0xcc]),
        ..VIEW
    };
    let mut b = buffer(&[(tag::BOARD_SERIAL, 8, 0, &[]), (tag::BOARD_MAC, 8, 0, &[])]);
    let mut fw = FakeFw::default();
    let o = process(&mut b, &Policy::default(), &view, &mut fw).unwrap();
    assert_eq!((o.local, o.forwarded), (2, 0));
    assert_eq!((word(&b, 5), word(&b, 6)), (0x5566_7788, 0x1122_3344));
    assert_eq!(word(&b, 9), RESPONSE | 6);
    assert_eq!(&b[40..46], &[2, 0, 0, 0xaa, 0xbb, 0xcc]);
    let mut b = buffer(&[(tag::BOARD_SERIAL, 8, 0, &[])]);
    let o = process(&mut b, &Policy::default(), &VIEW, &mut fw).unwrap();
    assert_eq!((o.local, o.forwarded), (0, 1));
}

#[test]
fn command_line_is_cut_to_the_buffer_and_says_its_length() {
    let mut b = buffer(&[(tag::COMMAND_LINE, 8, 0, &[])]);
    let mut fw = FakeFw::default();
    process(&mut b, &Policy::default(), &VIEW, &mut fw).unwrap();
    assert_eq!(word(&b, 4), RESPONSE | 16, "full length incl. NUL");
    assert_eq!(&b[20..28], b"console=");
    assert_eq!(word(&b, 7), 0, "the end tag is untouched");
}

#[test]
fn notify_reboot_is_local_even_with_no_policy() {
    let mut b = buffer(&[(tag::NOTIFY_REBOOT, 0, 0, &[])]);
    let mut fw = FakeFw::default();
    let none = Policy::parse("none").unwrap();
    let o = process(&mut b, &none, &VIEW, &mut fw).unwrap();
    assert_eq!((o.code, o.local), (CODE_SUCCESS, 1));
    assert_eq!(word(&b, 4), RESPONSE);
    assert!(
        fw.seen.is_empty(),
        "NOTIFY_REBOOT never reaches the firmware"
    );
}

#[test]
fn refused_tags_keep_the_response_bit_clear_and_fail_the_buffer() {
    for id in [
        tag::SET_CLOCK_RATE,
        tag::SET_VOLTAGE,
        tag::ALLOCATE_MEMORY,
        tag::LOCK_MEMORY,
        tag::EXECUTE_CODE,
        tag::FRAMEBUFFER_ALLOCATE,
        tag::SET_POWER_STATE,
        tag::VC_MEMORY,
        tag::SET_GPIO_STATE,
        0x1234_5678,
    ] {
        let mut b = buffer(&[(id, 8, 8, &[7, 9]), (tag::FIRMWARE_REVISION, 4, 0, &[])]);
        let mut fw = FakeFw::default();
        let o = process(&mut b, &Policy::default(), &VIEW, &mut fw).unwrap();
        assert_eq!(o.code, CODE_ERROR, "{id:#x}");
        assert_eq!(o.refused, vec![id]);
        assert_eq!(word(&b, 1), CODE_ERROR);
        assert_eq!(word(&b, 4), 8, "request code untouched, bit 31 clear");
        assert_eq!((word(&b, 5), word(&b, 6)), (7, 9), "value untouched");
        // The allowed tag beside it is still answered...
        assert_eq!(word(&b, 9), RESPONSE | 4);
        // ...and the refused one never reached the firmware.
        assert!(fw
            .seen
            .iter()
            .all(|s| parse(s).unwrap().iter().all(|t| t.id != id)));
    }
}

#[test]
fn policy_groups() {
    let p = Policy::parse("info, gpio gpio-set").unwrap();
    assert!(p.allows(tag::SET_GPIO_STATE) && p.allows(tag::GPIO_STATE));
    assert!(!p.allows(tag::CLOCK_RATE) && !p.allows(tag::TEMPERATURE));
    assert_eq!(Policy::parse("info clocks frobnicate"), Err("frobnicate"));
    assert_eq!(Policy::parse("").unwrap().groups, 0);
    let all = Policy::parse("info clocks sensors gpio gpio-set clocks-set").unwrap();
    for never in [
        tag::ALLOCATE_MEMORY,
        tag::LOCK_MEMORY,
        tag::UNLOCK_MEMORY,
        tag::RELEASE_MEMORY,
        tag::EXECUTE_CODE,
        tag::FRAMEBUFFER_ALLOCATE,
        tag::SET_VOLTAGE,
        tag::SET_TURBO,
        tag::SET_POWER_STATE,
        tag::SET_DOMAIN_STATE,
        tag::DMA_CHANNELS,
        tag::VC_MEMORY,
        tag::NOTIFY_REBOOT,
    ] {
        assert!(!all.allows(never), "{never:#x} is never forwarded");
    }
    let d = Policy::default();
    assert!(d.allows(tag::CLOCK_RATE) && d.allows(tag::THROTTLED) && d.allows(tag::GPIO_CONFIG));
    assert!(!d.allows(tag::SET_CLOCK_RATE) && !d.allows(tag::SET_GPIO_CONFIG));
}

#[test]
fn only_forwarded_tags_reach_the_firmware_in_a_buffer_of_their_own() {
    let mut b = buffer(&[
        (tag::ARM_MEMORY, 8, 0, &[]),
        (tag::CLOCK_RATE, 8, 4, &[3, 0]),
        (tag::SET_CLOCK_RATE, 12, 12, &[3, 1, 0]),
        (tag::TEMPERATURE, 8, 4, &[0, 0]),
    ]);
    let mut fw = FakeFw::default();
    let o = process(&mut b, &Policy::default(), &VIEW, &mut fw).unwrap();
    assert_eq!((o.local, o.forwarded), (1, 2));
    assert_eq!(o.refused, vec![tag::SET_CLOCK_RATE]);
    let sent = &fw.seen[0];
    let ids: Vec<u32> = parse(sent).unwrap().iter().map(|t| t.id).collect();
    assert_eq!(ids, vec![tag::CLOCK_RATE, tag::TEMPERATURE]);
    assert_eq!(word(sent, 5), 3, "the guest's request values are passed on");
}

#[test]
fn a_failed_forward_fails_the_tags() {
    let mut fw = FakeFw {
        fail: true,
        ..Default::default()
    };
    let mut b = buffer(&[(tag::BOARD_REVISION, 4, 0, &[])]);
    let o = process(&mut b, &Policy::default(), &VIEW, &mut fw).unwrap();
    assert_eq!(o.code, CODE_ERROR);
    assert_eq!(o.failed, vec![tag::BOARD_REVISION]);
    assert_eq!(word(&b, 4), 0, "no response bit");
    let mut fw = FakeFw {
        no_response_bit: true,
        ..Default::default()
    };
    let mut b = buffer(&[(tag::BOARD_REVISION, 4, 0, &[])]);
    let o = process(&mut b, &Policy::default(), &VIEW, &mut fw).unwrap();
    assert_eq!(o.code, CODE_ERROR);
}

#[test]
fn hostile_sizes() {
    for s in [0u32, 4, 8, 13, 4100, u32::MAX, 0x8000_0000] {
        assert_eq!(check_size(s), Err(Malformed::BadSize(s)));
    }
    assert_eq!(check_size(12), Ok(12));
    assert_eq!(check_size(MAX_BUFFER as u32), Ok(MAX_BUFFER));
}

#[test]
fn every_lying_size_field_is_malformed_and_only_the_code_changes() {
    let good = buffer(&[
        (tag::FIRMWARE_REVISION, 8, 0, &[]),
        (tag::CLOCK_RATE, 8, 4, &[3]),
    ]);
    assert!(parse(&good).is_ok());
    let mut fw = FakeFw::default();
    // Tag value-buffer sizes too large, up to past the end, and huge. (A
    // lie can also happen to describe another consistent buffer, e.g. the
    // first tag's size 12 here; that one is answered as what it says, all
    // inside the copy.)
    let lies_first: [u32; 5] = [16, 20, 32, 0x7fff_ffff, u32::MAX];
    let lies_second: [u32; 5] = [13, 100, 0x1000, 0x8000_0000, u32::MAX];
    for (at, lies) in [(12usize, lies_first), (32, lies_second)] {
        for &lie in &lies {
            let mut b = good.clone();
            b[at..at + 4].copy_from_slice(&lie.to_le_bytes());
            let before = b.clone();
            let r = process(&mut b, &Policy::default(), &VIEW, &mut fw);
            assert!(r.is_err(), "value size {lie} at {at} must be refused");
            assert_eq!(word(&b, 1), CODE_ERROR);
            assert_eq!(&b[8..], &before[8..], "nothing but the code changes");
        }
    }
    // Request length larger than the value buffer, or with bit 31 set.
    for lie in [9u32, 12, RESPONSE, RESPONSE | 4] {
        let mut b = good.clone();
        b[16..20].copy_from_slice(&lie.to_le_bytes());
        assert!(
            matches!(parse(&b), Err(Malformed::BadRequestLength { at: 8 })),
            "{lie:#x}"
        );
    }
    // Not a request.
    let mut b = good.clone();
    b[4..8].copy_from_slice(&CODE_SUCCESS.to_le_bytes());
    assert_eq!(parse(&b), Err(Malformed::NotARequest(CODE_SUCCESS)));
    assert!(
        fw.seen.is_empty(),
        "no malformed buffer reaches the firmware"
    );
}

#[test]
fn truncated_buffers_and_missing_end_tags() {
    let good = buffer(&[
        (tag::FIRMWARE_REVISION, 8, 0, &[]),
        (tag::CLOCK_RATE, 8, 4, &[3]),
    ]);
    // Every truncation to a multiple of 4 (shorter than the real buffer).
    for len in (12..good.len()).step_by(4) {
        let b = &good[..len];
        assert!(parse(b).is_err(), "truncated to {len}");
    }
    // 0-length tag list with an end tag: fine, nothing to do.
    let mut empty = buffer(&[]);
    assert_eq!(empty.len(), 12);
    let mut fw = FakeFw::default();
    let o = process(&mut empty, &Policy::default(), &VIEW, &mut fw).unwrap();
    assert_eq!(o.code, CODE_SUCCESS);
    assert!(fw.seen.is_empty());
    // A buffer of only tags and no end tag.
    let mut b = good.clone();
    let n = b.len();
    b[n - 4..].copy_from_slice(&0xdead_beefu32.to_le_bytes());
    assert!(parse(&b).is_err());
    // Zero-size values (NOTIFY_REBOOT-like) and unaligned value sizes are
    // padded: a 5-byte value occupies 8.
    let b = buffer(&[
        (tag::BOARD_MAC, 6, 0, &[]),
        (tag::FIRMWARE_REVISION, 4, 0, &[]),
    ]);
    let t = parse(&b).unwrap();
    assert_eq!((t[0].at, t[1].at), (8, 8 + 12 + 8));
    // Anything up to the largest buffer, filled with junk: never panics.
    let mut seed = 0x1234_5678u32;
    for _ in 0..20_000 {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let len = 12 + (seed as usize % 64) * 4;
        let mut junk: Vec<u8> = (0..len)
            .map(|i| (seed >> (i % 24)) as u8 ^ i as u8)
            .collect();
        junk[4..8].copy_from_slice(&0u32.to_le_bytes());
        let _ = process(&mut junk, &Policy::default(), &VIEW, &mut fw);
    }
}

#[test]
fn bus_addresses_translate_through_the_dma_window() {
    let w = BCM2711_DMA;
    assert_eq!(w.to_ipa(0xc000_0000, 16), Some(0));
    assert_eq!(w.to_ipa(0xc123_4560, 64), Some(0x0123_4560));
    assert_eq!(w.to_ipa(0xffff_fff0, 16), Some(0x3fff_fff0));
    assert_eq!(w.to_ipa(0xffff_fff0, 32), None, "crosses the window's end");
    assert_eq!(
        w.to_ipa(0x0123_4560, 16),
        None,
        "below the window (an ARM physical address)"
    );
    assert_eq!(w.to_ipa(0x8000_0000, 16), None);
    assert_eq!(w.to_ipa(u64::MAX - 4, 16), None);
}

#[test]
fn buffers_must_lie_in_the_vms_ram() {
    let w = BCM2711_DMA;
    let ram = 64 << 20;
    assert_eq!(w.buffer_ipa(0xc000_1000, 64, ram), Some(0x1000));
    assert_eq!(
        w.buffer_ipa(0xc000_0000 + ram - 64, 64, ram),
        Some(ram - 64),
        "ends at the end"
    );
    assert_eq!(
        w.buffer_ipa(0xc000_0000 + ram - 16, 64, ram),
        None,
        "crosses the RAM end"
    );
    assert_eq!(
        w.buffer_ipa(0xc000_0000 + ram, 4, ram),
        None,
        "past the RAM end"
    );
    assert_eq!(w.buffer_ipa(0xc000_1000, 0, ram), None, "0 bytes");
    assert_eq!(w.buffer_ipa(0xc000_1000, u64::MAX, ram), None, "huge");
    assert_eq!(
        w.buffer_ipa(0xc000_1000, MAX_BUFFER as u64, 0),
        None,
        "a VM with no RAM"
    );
    // A VM larger than the window: the window's end is the limit.
    assert_eq!(w.buffer_ipa(0xffff_fff0, 16, 2 << 30), Some(0x3fff_fff0));
    assert_eq!(w.buffer_ipa(0xffff_fff0, 32, 2 << 30), None);
}

#[test]
fn get_throttled_never_clears_the_boards_sticky_bits() {
    // Linux's hwmon asks with 0xffff: clear every sticky bit.
    let mut b = buffer(&[(tag::THROTTLED, 4, 4, &[0xffff])]);
    let mut fw = FakeFw::default();
    let o = process(&mut b, &Policy::default(), &VIEW, &mut fw).unwrap();
    assert_eq!(o.forwarded, 1, "still answered by the firmware");
    assert_eq!(
        word(&fw.seen[0], 5),
        0,
        "forwarded with the value 0: read only"
    );
    assert_eq!(
        word(&b, 5),
        tag::THROTTLED + 1,
        "the answer reaches the guest"
    );
}

#[test]
fn gpio_set_drives_only_the_pins_a_vm_lists_and_never_the_boards_supply() {
    let groups = Policy::parse("gpio-set").unwrap().groups;
    // Pins 130 listed, and (by hand, past the configuration's check) 134.
    let p = Policy {
        groups,
        gpio_pins: 1 << 2 | 1 << 6,
    };
    for (pin, ok) in [
        (130u32, true),
        (129, false),
        (134, false),
        (131, false),
        (0, false),
    ] {
        let mut b = buffer(&[(tag::SET_GPIO_STATE, 8, 8, &[pin, 1])]);
        let mut fw = FakeFw::default();
        let o = process(&mut b, &p, &VIEW, &mut fw).unwrap();
        assert_eq!(o.forwarded == 1, ok, "pin {pin}");
        assert_eq!(o.refused.is_empty(), ok, "pin {pin}");
        assert_eq!(fw.seen.is_empty(), !ok, "pin {pin} reached the firmware");
    }
    // Without gpio-set no pin at all.
    let none = Policy {
        gpio_pins: 0xff,
        ..Policy::default()
    };
    let mut b = buffer(&[(tag::SET_GPIO_CONFIG, 8, 8, &[130, 1])]);
    assert!(!process(&mut b, &none, &VIEW, &mut FakeFw::default())
        .unwrap()
        .refused
        .is_empty());
}
