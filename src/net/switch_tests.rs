use super::*;
use crate::net::BROADCAST;
use std::vec;
use std::vec::Vec;

fn mac(n: u8) -> Mac {
    [2, 0, 0, 0, 0, n]
}

fn port(n: u8, lan: u16) -> PortSpec {
    PortSpec {
        mac: mac(n),
        lan,
        bridge: false,
    }
}

/// Ports 0, 1 on LAN 0, port 2 on LAN 1, port 3 a bridge on LAN 0.
fn switch() -> Switch {
    let mut b = port(4, 0);
    b.bridge = true;
    Switch::new(vec![port(1, 0), port(2, 0), port(3, 1), b])
}

#[test]
fn unicast_goes_to_the_port_with_that_mac_on_the_same_lan() {
    let mut s = switch();
    assert_eq!(s.route(0, &mac(2), &mac(1)), Ok(Dest::One(1)));
    assert_eq!(s.route(1, &mac(1), &mac(2)), Ok(Dest::One(0)));
    assert_eq!(s.route(0, &mac(4), &mac(1)), Ok(Dest::One(3)));
}

#[test]
fn nothing_crosses_to_another_lan() {
    let mut s = switch();
    // Port 2 (LAN 1) is alone: its broadcasts and unicasts go nowhere.
    assert_eq!(
        s.route(2, &BROADCAST, &mac(3)),
        Err(DropReason::NoDestination)
    );
    assert_eq!(s.route(2, &mac(1), &mac(3)), Err(DropReason::NoDestination));
    // And LAN 0's frames never list it.
    assert_eq!(
        s.route(0, &BROADCAST, &mac(1)),
        Ok(Dest::Flood {
            bridges_only: false
        })
    );
    let t: Vec<usize> = s.targets(0, false).collect();
    assert_eq!(t, vec![1, 3]);
    // Unicast to port 2's MAC from LAN 0: not there (only to bridges).
    assert_eq!(
        s.route(0, &mac(3), &mac(1)),
        Ok(Dest::Flood { bridges_only: true })
    );
    assert_eq!(s.targets(0, true).collect::<Vec<_>>(), vec![3]);
}

#[test]
fn multicast_floods_the_lan_but_not_the_sender() {
    let mut s = switch();
    let mc = [0x01, 0x00, 0x5e, 0, 0, 1];
    assert_eq!(
        s.route(1, &mc, &mac(2)),
        Ok(Dest::Flood {
            bridges_only: false
        })
    );
    assert_eq!(s.targets(1, false).collect::<Vec<_>>(), vec![0, 3]);
}

#[test]
fn a_port_sending_from_another_mac_is_dropped_unless_a_bridge() {
    let mut s = switch();
    assert_eq!(s.route(0, &mac(2), &mac(9)), Err(DropReason::Spoofed));
    assert_eq!(s.route(0, &mac(2), &mac(2)), Err(DropReason::Spoofed));
    assert_eq!(s.route(0, &mac(2), &BROADCAST), Err(DropReason::Spoofed));
    // The bridge forwards for an outside host: learned.
    assert_eq!(s.route(3, &mac(1), &mac(9)), Ok(Dest::One(0)));
    assert_eq!(s.route(0, &mac(9), &mac(1)), Ok(Dest::One(3)));
    // But it may not take a VM's configured MAC, a group or a zero one.
    assert_eq!(s.route(3, &mac(1), &mac(2)), Err(DropReason::Spoofed));
    assert_eq!(s.route(3, &mac(1), &BROADCAST), Err(DropReason::Spoofed));
    assert_eq!(s.route(3, &mac(1), &[0; 6]), Err(DropReason::Spoofed));
}

#[test]
fn a_frame_to_oneself_goes_nowhere() {
    let mut s = switch();
    assert_eq!(s.route(0, &mac(1), &mac(1)), Err(DropReason::NoDestination));
    assert_eq!(s.route(7, &mac(1), &mac(1)), Err(DropReason::NoDestination));
}

#[test]
fn learning_is_bounded_and_forgets_the_least_recently_used() {
    let mut s = switch();
    for i in 0..1000u32 {
        let b = i.to_le_bytes();
        let src = [0x06, 0, b[0], b[1], b[2], b[3]];
        assert_eq!(s.route(3, &mac(1), &src), Ok(Dest::One(0)));
        assert!(s.learned() <= LEARNED_MAX);
    }
    assert_eq!(s.learned(), LEARNED_MAX);
    // The last one is known, the first forgotten (flooded to bridges).
    let last = 999u32.to_le_bytes();
    let last = [0x06, 0, last[0], last[1], last[2], last[3]];
    assert_eq!(s.route(0, &last, &mac(1)), Ok(Dest::One(3)));
    assert_eq!(
        s.route(0, &[0x06, 0, 0, 0, 0, 0], &mac(1)),
        Ok(Dest::Flood { bridges_only: true })
    );
}

#[test]
fn learned_addresses_stay_on_their_lan() {
    let mut b2 = port(5, 1);
    b2.bridge = true;
    let mut b = port(4, 0);
    b.bridge = true;
    let mut s = Switch::new(vec![port(1, 0), b, port(3, 1), b2]);
    let outside = [0x06, 1, 2, 3, 4, 5];
    assert!(s.route(1, &mac(1), &outside).is_ok());
    // LAN 1 does not know it: to LAN 1's bridge only.
    assert_eq!(
        s.route(2, &outside, &mac(3)),
        Ok(Dest::Flood { bridges_only: true })
    );
    assert_eq!(s.targets(2, true).collect::<Vec<_>>(), vec![3]);
}

#[test]
fn at_most_max_ports() {
    let ports = (0..40).map(|i| port(i as u8, 0)).collect();
    let s = Switch::new(ports);
    assert_eq!(s.ports().len(), MAX_PORTS);
}

#[test]
fn names_are_stable_and_locally_administered() {
    let a = crate::net::mac_from_name("linux1");
    assert_eq!(a, crate::net::mac_from_name("linux1"));
    assert_ne!(a, crate::net::mac_from_name("linux2"));
    assert_eq!(a[0], 0x02, "locally administered, unicast");
    assert_eq!(
        std::format!("{}", crate::net::MacFmt([2, 0, 0xab, 0, 0, 1])),
        "02:00:ab:00:00:01"
    );
}
