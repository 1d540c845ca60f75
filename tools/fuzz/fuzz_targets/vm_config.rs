//! libFuzzer entry for the `vm_config` target (see src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pivisor_fuzz::vm_config(data));
