//! mkbundle refuses at build time what the hypervisor would refuse at boot.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

static RUN: AtomicUsize = AtomicUsize::new(0);

fn mkbundle(conf: &str, extra: &[&str]) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!(
        "pivisor-mkbundle-{}-{}",
        std::process::id(),
        RUN.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("vms.conf"), conf).unwrap();
    // A minimal arm64 Image: branch, text_offset 0, image_size 4 KiB, flags, magic.
    let mut img = vec![0u8; 4096];
    img[0..4].copy_from_slice(&0x1400_0010u32.to_le_bytes());
    img[16..24].copy_from_slice(&4096u64.to_le_bytes());
    img[24] = 0xa;
    img[56..60].copy_from_slice(b"ARM\x64");
    std::fs::write(dir.join("k.img"), &img).unwrap();
    std::fs::write(dir.join("notimage"), b"hello").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pivisor-mkbundle"))
        .arg(dir.join("vms.conf"))
        .arg(dir.join("out.img"))
        .args(extra)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn builds_a_good_bundle() {
    let (ok, text) = mkbundle("[vm a]\ncores = 0-1\nmemory = 64M\nkernel = k.img\n", &[]);
    assert!(ok, "{text}");
    assert!(text.contains("1 VM(s), 2 file(s)"), "{text}");
}

#[test]
fn refuses_with_the_reason() {
    for (conf, extra, want) in [
        ("[vm a]\ncores = 0\nmemory = 1G\nkernel = k.img\n", &[][..], "the VMs need 1024 MiB of RAM"),
        ("[vm a]\ncores = 0\nmemory = 1G\nkernel = k.img\n", &["--ram", "2G"][..], ""),
        ("[vm a]\ncores = 3\nmemory = 8M\nkernel = k.img\n", &["--cores", "2"][..], "core 3 does not exist"),
        ("[vm a]\ncores = 0\nmemory = 8M\nkernel = nothere\n", &[][..], "'nothere' not found"),
        ("[vm a]\ncores = 0\nmemory = 8M\nkernel = notimage\n", &[][..], "not an arm64 Image"),
        ("[vm a]\ncores = 0\nmemory = 2M\nkernel = k.img\n", &[][..], "the kernel needs"),
        ("[vm a]\ncores = 0\nmemory = 8M\nkernel = k.img\ndtb-extra = notimage\n", &[][..], "dtb-extra is not a valid device tree"),
        ("[vm a]\ncores = 0\nmemory = 8M\nkernel = k.img\n[vm b]\ncores = 0\nmemory = 8M\nkernel = k.img\n", &[][..], "core 0 is given to both 'a' and 'b'"),
    ] {
        let (ok, text) = mkbundle(conf, extra);
        if want.is_empty() {
            assert!(ok, "{text}");
        } else {
            assert!(!ok && text.contains(want), "want '{want}', got: {text}");
        }
    }
}
