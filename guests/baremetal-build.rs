//! The build script of pivisor's bare-metal guests (testguest, bench;
//! `build = "../baremetal-build.rs"` in their Cargo.toml): links with
//! ../baremetal.ld (the image is linked at its load address, 0x80000).
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rustc-link-arg=-T{dir}/../baremetal.ld");
    for f in [
        "../baremetal.ld",
        "../image-header.s",
        "../el1-vectors.s",
        "src/start.s",
    ] {
        println!("cargo:rerun-if-changed={f}");
    }
}
