//! libFuzzer entry for the `host_dtb` target (see src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pivisor_fuzz::host_dtb(data));
