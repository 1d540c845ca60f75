//! pv-vmm's network interface: pivisor's virtio-net model (the same
//! device and port the hypervisor uses) with a tap device of the host as
//! its far side, joined to a bridge in the host (`pvbr0`, made by the
//! first pv-vmm that needs it), so two pv-vmm VMs on one host are on one
//! Ethernet: the closest honest equivalent of pivisor's switch under
//! Linux/KVM. A frame the guest sends is gathered from its RAM and
//! written to the tap (a copy into the host kernel, which the bridge
//! copies on to the other tap); a thread reads the tap and delivers into
//! the guest's receive buffers through the port.
//!
//! Offloads as Linux's own backends (QEMU, vhost-net) do them: the tap is
//! opened with IFF_VNET_HDR, so every frame crosses with a
//! `virtio_net_hdr`, and TUNSETOFFLOAD lets the host hand partial
//! checksums and TCP segments of up to 64 KiB to it; a guest's offload
//! request (checked by the same [`Meta::parse`] the switch uses) goes to
//! the tap as it is, and the host's is checked the same way before it
//! reaches the guest.

use pivisor::net::DropReason;
use pivisor::virtio::net::{Fabric, Frame, Port, HDR, MTU};
use pivisor::virtio::offload::{Meta, Offer, HEAD, MAX_GSO_FRAME};
use pivisor::virtio::queue::Buf;
use pivisor::virtio::rxfill::Bytes;
use pivisor::virtio::GuestRam;
use std::ffi::CStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::Arc;

/// The bridge joining every pv-vmm's tap.
const BRIDGE: &CStr = c"pvbr0";

const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
const TUNSETVNETHDRSZ: libc::c_ulong = 0x4004_54d8;
const TUN_F_CSUM: libc::c_uint = 0x01;
const TUN_F_TSO4: libc::c_uint = 0x02;
const TUN_F_TSO6: libc::c_uint = 0x04;
/// Every offload both ways.
const ALL: Offer = Offer {
    csum: true,
    tso4: true,
    tso6: true,
};
const SIOCBRADDBR: libc::c_ulong = 0x89a0;
const SIOCBRADDIF: libc::c_ulong = 0x89a2;

#[repr(C)]
struct IfReq {
    name: [u8; 16],
    /// ifr_flags or ifr_ifindex (the union's first member we use).
    data: libc::c_int,
    _pad: [u8; 20],
}

fn ifreq(name: &[u8]) -> IfReq {
    let mut r = IfReq {
        name: [0; 16],
        data: 0,
        _pad: [0; 20],
    };
    let n = name.len().min(15);
    r.name[..n].copy_from_slice(&name[..n]);
    r
}

fn sock() -> Result<File, String> {
    // SAFETY: a plain socket(2) call.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) };
    if fd < 0 {
        return Err(format!("socket: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { File::from_raw_fd(fd) })
}

fn ioctl(fd: &File, req: libc::c_ulong, r: &mut IfReq, what: &str) -> Result<(), String> {
    // SAFETY: `r` is a valid ifreq for these requests.
    if unsafe { libc::ioctl(fd.as_raw_fd(), req as _, r as *mut IfReq) } < 0 {
        return Err(format!("{what}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Brings interface `name` up.
fn up(s: &File, name: &[u8]) -> Result<(), String> {
    let mut r = ifreq(name);
    ioctl(s, libc::SIOCGIFFLAGS as _, &mut r, "SIOCGIFFLAGS")?;
    r.data |= libc::IFF_UP as libc::c_int;
    ioctl(s, libc::SIOCSIFFLAGS as _, &mut r, "SIOCSIFFLAGS")
}

/// A new tap device on the bridge, up; its file and name.
pub fn open(vm: &str) -> Result<(File, String), String> {
    let tun = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map_err(|e| format!("/dev/net/tun: {e} (the host kernel needs TUN)"))?;
    let mut r = ifreq(b"pvtap%d");
    r.data = libc::c_int::from(IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
    ioctl(&tun, TUNSETIFF, &mut r, "TUNSETIFF")?;
    let hdr_sz: libc::c_int = HDR as libc::c_int;
    // SAFETY: TUNSETVNETHDRSZ reads an int.
    if unsafe { libc::ioctl(tun.as_raw_fd(), TUNSETVNETHDRSZ as _, &hdr_sz) } < 0 {
        return Err(format!(
            "TUNSETVNETHDRSZ: {}",
            std::io::Error::last_os_error()
        ));
    }
    let off = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
    // SAFETY: TUNSETOFFLOAD takes the flags as its argument.
    if unsafe { libc::ioctl(tun.as_raw_fd(), TUNSETOFFLOAD as _, off as libc::c_ulong) } < 0 {
        return Err(format!(
            "TUNSETOFFLOAD: {}",
            std::io::Error::last_os_error()
        ));
    }
    let name_len = r.name.iter().position(|&b| b == 0).unwrap_or(16);
    let name = r.name[..name_len].to_vec();
    let s = sock()?;
    // The bridge: the first pv-vmm makes it (EEXIST for the others).
    let mut br = ifreq(BRIDGE.to_bytes());
    // SAFETY: SIOCBRADDBR takes the bridge's name as a C string.
    let made = unsafe { libc::ioctl(s.as_raw_fd(), SIOCBRADDBR as _, BRIDGE.as_ptr()) };
    if made < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST) {
        return Err(format!(
            "making bridge pvbr0: {} (the host kernel needs BRIDGE)",
            std::io::Error::last_os_error()
        ));
    }
    let mut ix = ifreq(&name);
    ioctl(&s, libc::SIOCGIFINDEX as _, &mut ix, "SIOCGIFINDEX")?;
    br.data = ix.data;
    ioctl(&s, SIOCBRADDIF, &mut br, "adding the tap to pvbr0")?;
    up(&s, &name)?;
    up(&s, BRIDGE.to_bytes())?;
    let name = String::from_utf8_lossy(&name).into_owned();
    eprintln!("pv-vmm: VM '{vm}': network interface on tap {name}, bridge pvbr0");
    Ok((tun, name))
}

/// The guest's frames into the tap.
pub struct TapFabric {
    tap: File,
    buf: Vec<u8>,
}

impl TapFabric {
    /// Over `tap`.
    pub fn new(tap: File) -> Self {
        Self {
            tap,
            buf: Vec::with_capacity(HDR + MAX_GSO_FRAME as usize),
        }
    }
}

impl Fabric for TapFabric {
    fn send(&mut self, mem: &mut dyn GuestRam, frame: &Frame<'_>) -> Result<(), DropReason> {
        self.buf.clear();
        let hdr = frame.meta.rx_header(ALL).ok_or(DropReason::BadHeader)?;
        self.buf.extend_from_slice(&hdr);
        for b in frame.bufs {
            let ok = mem.read_with(b.addr, u64::from(b.len), &mut |s| {
                self.buf.extend_from_slice(s);
                true
            });
            if !ok {
                return Err(DropReason::BadHeader);
            }
        }
        self.tap
            .write_all(&self.buf)
            .map_err(|_| DropReason::NoDestination)
    }
}

/// Reads frames from the tap for ever, delivering each to `port` (a
/// frame the guest has no buffer for is dropped and counted there).
pub fn receive(mut tap: File, port: Arc<Port>) {
    let mut b = vec![0u8; HDR + MAX_GSO_FRAME as usize];
    while let Ok(n) = tap.read(&mut b) {
        if n == 0 {
            break;
        }
        if n < HDR + 14 {
            continue;
        }
        let (hdr, frame) = b[..n].split_at_mut(HDR);
        // DATA_VALID (the host checked the checksum): the guest checks
        // again rather than trust a flag the switch never sends.
        hdr[0] &= !2;
        let len = frame.len() as u32;
        let head = &frame[..frame.len().min(HEAD)];
        let Ok(meta) = Meta::parse(hdr, head, len, ALL, MTU) else {
            continue;
        };
        if meta.gso.is_none() && len > pivisor::virtio::net::MAX_FRAME {
            continue;
        }
        let f = Buf {
            addr: 0,
            len,
            writable: false,
        };
        let _ = port.deliver(&mut Bytes(frame), &[f], len, &meta, 0);
    }
}
