//! libFuzzer entry for the `mmio_decode` target (see src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pivisor_fuzz::mmio_decode(data));
