//! libFuzzer entry for the `virtio_net` target (see src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pivisor_fuzz::virtio_net(data));
