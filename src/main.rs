//! The kernel8.img binary: all code lives in the library; this file only
//! makes the bare-metal entry points part of the link.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
#[used]
static KEEP_ENTRY: unsafe extern "C" fn(usize, u64, usize) -> ! = pivisor::boot::rust_primary_entry;

/// On the host this binary does nothing useful: pivisor is a bare-metal image.
#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "pivisor is a bare-metal image for the Raspberry Pi 4: build it with `make` (kernel8.img)"
    );
    std::process::exit(2);
}
