//! Two Debian systems on one card (issue 23, guests/debian.conf): each VM
//! boots Debian's kernel with its own partition as / (virtio-blk, the
//! root file system tools/mkdebian.sh built), logs in on its console,
//! reaches the other by SSH over lan0; alpha owns the USB controller
//! (QEMU's usb-net behind it) and NATs lan0 for beta.

use pivisor_harness::{artifact, dtb, Boot, ScratchCard};
use std::time::Duration;

/// Both QEMU runs boot the same scratch copy of the Debian card (the
/// second finds what the first wrote).
fn debian(card: &ScratchCard, timeout: u64) -> Boot {
    Boot::new(artifact("PIVISOR_IMAGE"))
        .dtb(dtb("bcm2711-rpi-4-b.dtb"))
        .initrd(artifact("PIVISOR_BUNDLE_DEBIAN"))
        .sd(card.path().to_path_buf())
        .qemu_args(&[
            "-device",
            "usb-net,netdev=n0",
            "-netdev",
            "user,id=n0,restrict=on",
        ])
        .timeout(Duration::from_secs(timeout))
}

/// Typing a root login into beta's console.
trait BetaLogin {
    /// Logs in as root once `after` has been printed and beta's login
    /// prompt after it.
    fn beta_login(self, after: &str) -> Self;
}

impl BetaLogin for Boot {
    fn beta_login(self, after: &str) -> Self {
        self.type_after(&format!(r"(?s){after}.*beta login:"), b"root\r")
            .type_after(
                &format!(r"(?s){after}.*beta login:.*Password:"),
                b"pivisor\r",
            )
    }
}

/// Markers are computed by the shell ($((1+1)) prints 2), never typed,
/// so the echo of a typed line never matches them.
#[test]
fn two_debian_vms_log_in_reach_each_other_and_keep_their_files() {
    let card = ScratchCard::copy_of(&artifact("PIVISOR_DEBIAN_CARD"), "debian");
    let o = debian(&card, 900)
        // alpha (focused): a root login, the gateway through its USB
        // network device, beta's host name over SSH with the card's key.
        .type_after(r"(?m)^alpha login:", b"root\r")
        .type_after(r"(?s)alpha login:.*Password:", b"pivisor\r")
        // The router sets up the outside in the background (no login
        // waits for it): the gateway once it says so, either way.
        .type_after(
            r"(?s)root@alpha:~#.*pivisor-router: (\S+ external|no )|pivisor-router: (\S+ external|no ).*root@alpha:~#",
            b"ping -c 2 10.0.2.2 >/dev/null && echo A-GW-$((1+1)); ssh root@10.0.0.2 hostname; echo A-SSH-$((2+1))\r",
        )
        // beta: a root login, the gateway through alpha's NAT, a file and
        // a user that must survive its reboot (SYSTEM_RESET: its policy
        // restarts it) while alpha runs on.
        .type_after(r"(?m)^A-SSH-3", b"\x1d1")
        .type_after(r"console -> VM 1 'beta'", b"\r")
        .beta_login(r"console -> VM 1 'beta'")
        .type_after(
            r"root@beta:~#",
            b"ping -c 2 10.0.2.2 >/dev/null && echo B-GW-$((1+1)); useradd -m carol; echo persisted-4711 > /root/mark; sync; systemctl reboot\r",
        )
        // Its second life: only after the hypervisor restarted it (a
        // prompt of the first life must not be taken for one).
        .beta_login(r"VM 'beta': SYSTEM_RESET")
        .type_after(
            r"(?s)VM 'beta': SYSTEM_RESET.*beta login:.*root@beta:~#",
            b"cat /root/mark; id -un carol; echo B-MARK-$((3+1))\r",
        )
        // alpha has neither.
        .type_after(r"(?m)^B-MARK-4", b"\x1d0")
        .type_after(
            r"console -> VM 0 'alpha'",
            b"ls /root/mark; id carol; echo A-MARK-$((4+1))\r",
        )
        .run_until_match(r"(?m)^A-MARK-5|Kernel panic");
    // (Bash's prompt mode escapes may precede a line: no ^ anchors.)
    o.expect(r"A-GW-2")
        .expect(r"(?s)A-GW-2.*\nbeta\r?\n.*A-SSH-3")
        .expect(r"B-GW-2")
        .expect(r"VM 'beta': SYSTEM_RESET")
        .expect(r"(?s)B-GW-2.*persisted-4711\r?\ncarol\r?\n.*B-MARK-4")
        .expect(r"(?s)B-MARK-4.*No such file or directory.*no such user.*A-MARK-5")
        .reject(r"FAULT|PANIC|Kernel panic|EXT4-fs error");
    assert_eq!(
        o.count(r"Debian GNU/Linux 12 alpha ttyAMA0"),
        1,
        "alpha booted once, beta's reboot did not touch it:\n{}",
        o.serial
    );
    // A fresh QEMU boot of the same card: beta's file and user are still
    // there.
    let o = debian(&card, 600)
        .type_after(r"(?m)^alpha login:", b"\x1d1")
        .type_after(r"console -> VM 1 'beta'", b"\r")
        .beta_login(r"console -> VM 1 'beta'")
        .type_after(
            r"root@beta:~#",
            b"cat /root/mark; id -un carol; echo B-AGAIN-$((5+1))\r",
        )
        .run_until_match(r"(?m)B-AGAIN-6|Kernel panic");
    o.expect(r"(?s)persisted-4711\r?\ncarol\r?\n.*B-AGAIN-6")
        .reject(r"FAULT|PANIC|Kernel panic|EXT4-fs error");
}
