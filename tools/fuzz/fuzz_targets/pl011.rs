//! libFuzzer entry for the `pl011` target (see src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pivisor_fuzz::pl011(data));
