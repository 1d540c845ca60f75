//! Links with ../baremetal.ld, shared by the bare-metal guests (the image
//! is linked at its load address, 0x80000).
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rustc-link-arg=-T{dir}/../baremetal.ld");
    println!("cargo:rerun-if-changed=../baremetal.ld");
    println!("cargo:rerun-if-changed=src/start.s");
    println!("cargo:rerun-if-changed=../el1-vectors.s");
}
