//! The arm64 Linux boot protocol (Documentation/arch/arm64/booting.rst):
//! the Image header, and where the kernel, initrd and device tree go in a
//! VM's RAM. Pure logic.
//!
//! Layout (IPA): the kernel at a 2 MiB-aligned base (0) plus text_offset;
//! the device tree alone in the last 2 MiB block of RAM (booting.rst: at
//! most 2 MiB, 8-byte aligned, in a 2 MiB region of its own); the initrd
//! page-aligned just below it.

use super::bundle::Bundle;
use super::config::VmConfig;
use alloc::format;
use alloc::string::String;
use core::fmt;

/// "ARM\x64" at offset 56.
pub const MAGIC: u32 = 0x644d_5241;
/// Header bytes.
pub const HEADER_SIZE: usize = 64;
/// Largest device tree booting.rst allows.
pub const DTB_MAX: u64 = 2 << 20;
/// text_offset assumed for kernels with image_size 0 (before 3.17).
pub const LEGACY_TEXT_OFFSET: u64 = 0x80000;

/// The fields of an Image header the loader uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageHeader {
    /// Offset of the image from a 2 MiB-aligned base.
    pub text_offset: u64,
    /// Bytes the kernel occupies once running (BSS included); at least
    /// the file size.
    pub image_size: u64,
    /// Header flags.
    pub flags: u64,
}

/// Why an image or layout was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageError {
    /// Shorter than the header or without the magic.
    NotImage,
    /// A big-endian kernel.
    BigEndian,
    /// A 16 KiB-page kernel (the Cortex-A72 has no 16 KiB granule).
    PageSize16K,
    /// text_offset is not 4 KiB-aligned or not below 2 MiB.
    BadTextOffset(u64),
    /// The kernel does not fit in RAM.
    KernelTooBig {
        /// Bytes the kernel needs from IPA 0.
        need: u64,
        /// RAM bytes.
        ram: u64,
    },
    /// The device tree is larger than 2 MiB.
    DtbTooBig(u64),
    /// The initrd does not fit between the kernel and the device tree.
    InitrdTooBig {
        /// Initrd bytes.
        size: u64,
        /// Bytes free for it.
        free: u64,
    },
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageError::NotImage => {
                f.write_str("not an arm64 Image (no 'ARM\\x64' magic at offset 56)")
            }
            ImageError::BigEndian => {
                f.write_str("a big-endian kernel: only little-endian is supported")
            }
            ImageError::PageSize16K => {
                f.write_str("a 16K-page kernel: the Cortex-A72 supports 4K and 64K pages")
            }
            ImageError::BadTextOffset(t) => {
                write!(f, "text_offset {t:#x} is not page-aligned below 2 MiB")
            }
            ImageError::KernelTooBig { need, ram } => write!(
                f,
                "the kernel needs {} KiB from the start of RAM but the VM has {} KiB",
                need >> 10,
                ram >> 10
            ),
            ImageError::DtbTooBig(s) => write!(f, "device tree of {s} bytes exceeds 2 MiB"),
            ImageError::InitrdTooBig { size, free } => write!(
                f,
                "initrd of {} KiB does not fit: {} KiB free between kernel and device tree",
                size >> 10,
                free >> 10
            ),
        }
    }
}

/// Reads and checks an Image header.
pub fn parse_header(image: &[u8]) -> Result<ImageHeader, ImageError> {
    let h = image.get(..HEADER_SIZE).ok_or(ImageError::NotImage)?;
    let u64_at = |o: usize| u64::from_le_bytes(h[o..o + 8].try_into().unwrap_or([0; 8]));
    if u32::from_le_bytes(h[56..60].try_into().unwrap_or([0; 4])) != MAGIC {
        return Err(ImageError::NotImage);
    }
    let (mut text_offset, mut image_size, flags) = (u64_at(8), u64_at(16), u64_at(24));
    if image_size == 0 {
        // Pre-3.17 kernels: text_offset 0x80000, size unknown.
        text_offset = LEGACY_TEXT_OFFSET;
        image_size = image.len() as u64;
    }
    if flags & 1 != 0 {
        return Err(ImageError::BigEndian);
    }
    if (flags >> 1) & 3 == 2 {
        return Err(ImageError::PageSize16K);
    }
    if !text_offset.is_multiple_of(4096) || text_offset >= (2 << 20) {
        return Err(ImageError::BadTextOffset(text_offset));
    }
    Ok(ImageHeader {
        text_offset,
        image_size: image_size.max(image.len() as u64),
        flags,
    })
}

/// Where everything goes, as IPAs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadPlan {
    /// Kernel load address and entry point.
    pub kernel: u64,
    /// First byte after the kernel's image_size.
    pub kernel_end: u64,
    /// Initrd start (if any) and size.
    pub initrd: Option<(u64, u64)>,
    /// Device tree address.
    pub dtb: u64,
}

impl LoadPlan {
    /// The same plan for RAM that starts at `base` (identity RAM) rather
    /// than at IPA 0: the kernel still `text_offset` above a 2 MiB-aligned
    /// base (the arm64 booting protocol), the rest as far above it.
    pub fn at(self, base: u64) -> LoadPlan {
        LoadPlan {
            kernel: self.kernel + base,
            kernel_end: self.kernel_end + base,
            initrd: self.initrd.map(|(a, n)| (a + base, n)),
            dtb: self.dtb + base,
        }
    }
}

/// Plans a VM with `ram` bytes for a kernel with header `h`, an initrd of
/// `initrd` bytes (if any) and a device tree of at most `dtb_max` bytes.
pub fn plan(
    h: &ImageHeader,
    ram: u64,
    initrd: Option<u64>,
    dtb_max: u64,
) -> Result<LoadPlan, ImageError> {
    if dtb_max > DTB_MAX {
        return Err(ImageError::DtbTooBig(dtb_max));
    }
    // Kernel, initrd and tree go below the guest's peripheral window.
    let ram = ram.min(crate::vm::layout::LOW_RAM_END);
    let kernel = h.text_offset;
    let kernel_end = kernel.saturating_add(h.image_size);
    // RAM must hold the kernel and, in its own last 2 MiB block, the DTB.
    let dtb = ram.saturating_sub(DTB_MAX) & !(DTB_MAX - 1);
    if ram < DTB_MAX * 2 || kernel_end > dtb {
        return Err(ImageError::KernelTooBig {
            need: kernel_end.saturating_add(DTB_MAX),
            ram,
        });
    }
    let initrd = match initrd {
        None => None,
        Some(size) => {
            let free = dtb - kernel_end.next_multiple_of(4096);
            if size > free {
                return Err(ImageError::InitrdTooBig { size, free });
            }
            Some(((dtb - size) & !4095, size))
        }
    };
    Ok(LoadPlan {
        kernel,
        kernel_end,
        initrd,
        dtb,
    })
}

/// VM `cfg`'s kernel, initrd and dtb-extra from the bundle, and where
/// they go in its RAM (the hypervisor and pv-vmm both build VMs from
/// this). Errors name the VM and the file.
pub fn vm_files<'a>(bundle: &Bundle<'a>, cfg: &VmConfig<'_>) -> Result<VmFiles<'a>, String> {
    let what = |e: &dyn fmt::Display| format!("VM '{}': {e}", cfg.name);
    let file = |n: &str, kind: &str| {
        bundle
            .file(n)
            .ok_or_else(|| what(&format!("{kind} '{n}' is not in the bundle")))
    };
    let kernel = file(cfg.kernel, "kernel")?;
    let initrd = cfg.initrd.map(|n| file(n, "initrd")).transpose()?;
    let extra = cfg.dtb_extra.map(|n| file(n, "dtb-extra")).transpose()?;
    let header =
        parse_header(kernel).map_err(|e| what(&format!("kernel '{}': {e}", cfg.kernel)))?;
    let plan =
        plan(&header, cfg.memory, initrd.map(|i| i.len() as u64), DTB_MAX).map_err(|e| what(&e))?;
    Ok(VmFiles {
        kernel,
        initrd,
        extra,
        plan,
    })
}

/// One VM's images in a bundle and its load plan ([`vm_files`]).
#[derive(Debug, Clone, Copy)]
pub struct VmFiles<'a> {
    /// The kernel image.
    pub kernel: &'a [u8],
    /// The initrd, if configured.
    pub initrd: Option<&'a [u8]>,
    /// The extra device-tree nodes, if configured.
    pub extra: Option<&'a [u8]>,
    /// Where kernel, initrd and device tree go.
    pub plan: LoadPlan,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    fn header(text_offset: u64, image_size: u64, flags: u64) -> std::vec::Vec<u8> {
        let mut h = vec![0u8; 4096];
        h[8..16].copy_from_slice(&text_offset.to_le_bytes());
        h[16..24].copy_from_slice(&image_size.to_le_bytes());
        h[24..32].copy_from_slice(&flags.to_le_bytes());
        h[56..60].copy_from_slice(&MAGIC.to_le_bytes());
        h
    }

    #[test]
    fn parses_modern_and_legacy_headers() {
        let h = parse_header(&header(0, 0x1_0000, 0xa)).unwrap();
        assert_eq!((h.text_offset, h.image_size), (0, 0x1_0000));
        let legacy = parse_header(&header(0, 0, 0)).unwrap();
        assert_eq!((legacy.text_offset, legacy.image_size), (0x80000, 4096));
        // image_size smaller than the file: the file size wins.
        assert_eq!(parse_header(&header(0, 16, 0)).unwrap().image_size, 4096);
    }

    #[test]
    fn refuses_what_cannot_boot() {
        assert_eq!(parse_header(&[0; 63]), Err(ImageError::NotImage));
        assert_eq!(parse_header(&[0; 4096]), Err(ImageError::NotImage));
        assert_eq!(parse_header(&header(0, 1, 1)), Err(ImageError::BigEndian));
        assert_eq!(
            parse_header(&header(0, 1, 0b100)),
            Err(ImageError::PageSize16K)
        );
        assert!(parse_header(&header(0, 1, 0b110)).is_ok(), "64K pages");
        assert_eq!(
            parse_header(&header(0x123, 1, 0)),
            Err(ImageError::BadTextOffset(0x123))
        );
        assert_eq!(
            parse_header(&header(2 << 20, 1, 0)),
            Err(ImageError::BadTextOffset(2 << 20))
        );
    }

    #[test]
    fn plans_kernel_initrd_and_dtb() {
        let h = ImageHeader {
            text_offset: 0,
            image_size: 30 << 20,
            flags: 0xa,
        };
        let p = plan(&h, 768 << 20, Some(10 << 20 | 123), 64 << 10).unwrap();
        assert_eq!(p.kernel, 0);
        assert_eq!(p.dtb, (768 - 2) << 20);
        let (i, s) = p.initrd.unwrap();
        assert_eq!(i % 4096, 0);
        assert!(i >= p.kernel_end && i + s <= p.dtb);
        assert_eq!(plan(&h, 768 << 20, None, 0).unwrap().initrd, None);
        // A VM with RAM past the peripheral window: everything below it.
        let big = plan(&h, 6 << 30, Some(1 << 20), 64 << 10).unwrap();
        assert_eq!(big.dtb, crate::vm::layout::LOW_RAM_END - DTB_MAX);
        assert!(big.initrd.unwrap().0 < big.dtb);
    }

    #[test]
    fn refuses_layouts_that_do_not_fit() {
        let h = ImageHeader {
            text_offset: 0x80000,
            image_size: 8 << 20,
            flags: 0,
        };
        assert!(matches!(
            plan(&h, 8 << 20, None, 0),
            Err(ImageError::KernelTooBig { .. })
        ));
        assert!(plan(&h, 12 << 20, None, 0).is_ok());
        assert!(matches!(
            plan(&h, 2 << 20, None, 0),
            Err(ImageError::KernelTooBig { .. })
        ));
        assert!(matches!(
            plan(&h, 0, None, 0),
            Err(ImageError::KernelTooBig { .. })
        ));
        assert!(matches!(
            plan(&h, 12 << 20, Some(4 << 20), 0),
            Err(ImageError::InitrdTooBig { .. })
        ));
        assert!(matches!(
            plan(&h, 12 << 20, Some(u64::MAX), 0),
            Err(ImageError::InitrdTooBig { .. })
        ));
        assert_eq!(
            plan(&h, 12 << 20, None, 3 << 20),
            Err(ImageError::DtbTooBig(3 << 20))
        );
        let huge = ImageHeader {
            text_offset: 0,
            image_size: u64::MAX,
            flags: 0,
        };
        assert!(plan(&huge, 1 << 30, None, 0).is_err());
    }

    #[test]
    fn vm_files_finds_and_plans_or_names_what_is_missing() {
        let mut k = std::vec![0u8; 4096];
        k[8..16].copy_from_slice(&0x8_0000u64.to_le_bytes());
        k[56..60].copy_from_slice(&MAGIC.to_le_bytes());
        let conf = "[vm a]\ncores = 0\nmemory = 16M\nkernel = k\ninitrd = rd\n\
                    [vm b]\ncores = 1\nmemory = 16M\nkernel = k\ninitrd = nope\n\
                    [vm c]\ncores = 2\nmemory = 16M\nkernel = rd\n";
        let blob =
            crate::vm::bundle::write(&[("vms.conf", conf.as_bytes()), ("k", &k), ("rd", b"xyz")])
                .unwrap();
        let b = Bundle::parse(&blob).unwrap();
        let vms = crate::vm::config::parse(b.config().unwrap()).unwrap();
        let f = vm_files(&b, &vms[0]).unwrap();
        assert_eq!(
            (f.kernel.len(), f.initrd, f.extra),
            (4096, Some(&b"xyz"[..]), None)
        );
        assert_eq!(f.plan.kernel, 0x8_0000);
        let e = vm_files(&b, &vms[1]).unwrap_err();
        assert!(
            e.contains("VM 'b': initrd 'nope' is not in the bundle"),
            "{e}"
        );
        let e = vm_files(&b, &vms[2]).unwrap_err();
        assert!(e.starts_with("VM 'c': kernel 'rd': "), "{e}");
    }
}
