//! libFuzzer entry for the `vgic` target (see src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pivisor_fuzz::vgic(data));
