//! mkimage: pivisor ELF -> kernel8.img.
//!
//! Lays out every PT_LOAD segment's file bytes at its virtual address (the
//! image is linked at 0), sets the header's text_offset, and checks the
//! arm64 Image header (Linux Documentation/arch/arm64/booting.rst): code0 a
//! branch, magic "ARM\x64", image_size covering the file, BSS and stacks,
//! and flags (little-endian, 4 KiB pages).
//!
//! Usage: pivisor-mkimage <elf> <out.img> [--text-offset N] [--base N]
//!
//! `--base N` is for images linked at N rather than 0 (the bare-metal test
//! guests): segments are laid out relative to N and the header's own
//! text_offset is kept unless `--text-offset` is given.

use object::{Object, ObjectSegment};
use std::process::ExitCode;

/// Offsets of the header fields.
const TEXT_OFFSET: usize = 8;
const IMAGE_SIZE: usize = 16;
const FLAGS: usize = 24;
const MAGIC: usize = 56;

fn parse_num(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("not a number: {s}"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Builds the flat image from ELF bytes; returns it.
fn flatten(elf: &[u8], base: u64) -> Result<Vec<u8>, String> {
    let obj = object::File::parse(elf).map_err(|e| format!("not an ELF file: {e}"))?;
    let mut out = Vec::new();
    for seg in obj.segments() {
        let data = seg.data().map_err(|e| format!("segment data: {e}"))?;
        if data.is_empty() {
            continue;
        }
        let rel = seg.address().checked_sub(base).ok_or_else(|| {
            format!(
                "segment at {:#x} is below the base {base:#x}",
                seg.address()
            )
        })?;
        let at = usize::try_from(rel).map_err(|_| "segment address too large")?;
        if at > 64 << 20 {
            return Err(format!(
                "segment at {at:#x}: the image must be linked at the base ({base:#x})"
            ));
        }
        if out.len() < at + data.len() {
            out.resize(at + data.len(), 0);
        }
        out[at..at + data.len()].copy_from_slice(data);
    }
    Ok(out)
}

/// Checks the header of a flat image.
fn check_header(img: &[u8]) -> Result<(), String> {
    if img.len() < 64 {
        return Err("image shorter than the 64-byte header".into());
    }
    let code0 = u32::from_le_bytes(img[0..4].try_into().expect("4 bytes"));
    if code0 >> 26 != 0b000101 {
        return Err(format!("code0 {code0:#010x} is not a branch"));
    }
    if &img[MAGIC..MAGIC + 4] != b"ARM\x64" {
        return Err("magic is not ARM\\x64".into());
    }
    let size = u64_at(img, IMAGE_SIZE);
    if size < img.len() as u64 || !size.is_multiple_of(4096) {
        return Err(format!(
            "image_size {size:#x} does not cover the {:#x}-byte file or is not page-aligned",
            img.len()
        ));
    }
    let flags = u64_at(img, FLAGS);
    if flags & 1 != 0 || (flags >> 1) & 3 != 1 {
        return Err(format!("flags {flags:#x}: want little-endian, 4 KiB pages"));
    }
    Ok(())
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut input, mut output, mut text_offset, mut base) = (None, None, None, 0u64);
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--text-offset" => {
                i += 1;
                text_offset = Some(parse_num(
                    args.get(i).ok_or("--text-offset needs a value")?,
                )?);
            }
            "--base" => {
                i += 1;
                base = parse_num(args.get(i).ok_or("--base needs a value")?)?;
            }
            a if input.is_none() => input = Some(a.to_string()),
            a if output.is_none() => output = Some(a.to_string()),
            a => return Err(format!("unexpected argument {a}")),
        }
        i += 1;
    }
    let (input, output) = match (input, output) {
        (Some(i), Some(o)) => (i, o),
        _ => {
            return Err(
                "usage: pivisor-mkimage <elf> <out.img> [--text-offset N] [--base N]".into(),
            )
        }
    };
    let elf = std::fs::read(&input).map_err(|e| format!("{input}: {e}"))?;
    let mut img = flatten(&elf, base)?;
    check_header(&img)?;
    let text_offset = match text_offset {
        Some(t) => t,
        None if base != 0 => u64_at(&img, TEXT_OFFSET),
        None => 0,
    };
    if !text_offset.is_multiple_of(4096) {
        return Err(format!(
            "text_offset {text_offset:#x} must be 4 KiB aligned (adrp addressing)"
        ));
    }
    img[TEXT_OFFSET..TEXT_OFFSET + 8].copy_from_slice(&text_offset.to_le_bytes());
    std::fs::write(&output, &img).map_err(|e| format!("{output}: {e}"))?;
    println!(
        "mkimage: {output}: {} bytes, image_size {:#x} (with BSS and stacks), text_offset {text_offset:#x}",
        img.len(),
        u64_at(&img, IMAGE_SIZE)
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mkimage: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[0..4].copy_from_slice(&0x1400_0010u32.to_le_bytes());
        h[IMAGE_SIZE..IMAGE_SIZE + 8].copy_from_slice(&0x1000u64.to_le_bytes());
        h[FLAGS..FLAGS + 8].copy_from_slice(&0xau64.to_le_bytes());
        h[MAGIC..MAGIC + 4].copy_from_slice(b"ARM\x64");
        h
    }

    #[test]
    fn good_header_passes() {
        assert_eq!(check_header(&header()), Ok(()));
    }

    #[test]
    fn bad_headers_fail() {
        let mut h = header();
        h[MAGIC] = b'X';
        assert!(check_header(&h).is_err());
        let mut h = header();
        h[0..4].copy_from_slice(&0xd503_201fu32.to_le_bytes()); // nop
        assert!(check_header(&h).is_err());
        let mut h = header();
        h[IMAGE_SIZE..IMAGE_SIZE + 8].copy_from_slice(&0x20u64.to_le_bytes());
        assert!(check_header(&h).is_err());
        assert!(check_header(&[0; 10]).is_err());
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_num("0x80000"), Ok(0x80000));
        assert_eq!(parse_num("4096"), Ok(4096));
        assert!(parse_num("zz").is_err());
    }
}
