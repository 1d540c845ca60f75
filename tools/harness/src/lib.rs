//! QEMU raspi4b test harness: boots an image, collects its serial output,
//! stops as soon as a condition holds or a timeout passes, and always kills
//! QEMU (also when a test panics: the guard's Drop does it).
//!
//! Artifacts come from the environment `make test` sets: `PIVISOR_IMAGE`,
//! `PIVISOR_IMAGE_80000`, `PIVISOR_DTB_DIR` (and optionally `PIVISOR_QEMU`).

pub mod disasm;
pub mod report;
pub mod sd;

use regex::Regex;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A path from the environment `make test` provides.
pub fn artifact(var: &str) -> PathBuf {
    let v = std::env::var(var)
        .unwrap_or_else(|_| panic!("{var} is not set: run the QEMU tests through `make test`"));
    let p = PathBuf::from(v);
    assert!(
        p.exists(),
        "{var}={} does not exist: run `make test`",
        p.display()
    );
    p
}

/// A device tree from `PIVISOR_DTB_DIR`.
pub fn dtb(name: &str) -> PathBuf {
    let p = artifact("PIVISOR_DTB_DIR").join(name);
    assert!(p.exists(), "{} is missing: run `make test`", p.display());
    p
}

/// One QEMU boot.
pub struct Boot {
    image: PathBuf,
    dtb: Option<PathBuf>,
    initrd: Option<PathBuf>,
    append: String,
    timeout: Duration,
    icount: bool,
    /// An SD card image (`-drive if=sd`); with `.1`, a scratch copy of it
    /// is attached instead (made for the run, removed after).
    sd: Option<(PathBuf, bool)>,
    /// Typed input: once the output matches `.0` (in order), `.1` is sent.
    script: Vec<(String, Vec<u8>)>,
    timed: Vec<(Duration, Vec<u8>)>,
    /// Typed on the mini UART (the second serial port) once the output
    /// matches.
    aux_script: Vec<(String, Vec<u8>)>,
    /// More QEMU arguments (devices: `-device usb-net ...`).
    extra: Vec<String>,
}

/// The small Linux kernel and its initramfs booted natively (QEMU enters
/// the kernel at EL2, no hypervisor), with the default bundle's command
/// line plus kvm-arm.mode=none: natively its built-in KVM would set
/// itself up, which under pivisor it cannot, so both boots do the same
/// work. The native side of the boot-cost test and of `make bench`. The
/// tree is the Pi 4's without the Arasan's Wi-Fi power sequence, which
/// QEMU (no firmware GPIO expander) cannot give: so Linux sees the card.
pub fn native_linux() -> Boot {
    Boot::new(artifact("PIVISOR_LINUX_IMAGE"))
        .dtb(dtb("native-host.dtb"))
        .initrd(artifact("PIVISOR_LINUX_INITRD"))
        .append(
            "console=ttyAMA0,115200 earlycon=pl011,mmio32,0xfe201000 rdinit=/init panic=1 \
             kvm-arm.mode=none",
        )
}

/// A sparse scratch copy of a card image in the temporary directory,
/// removed when dropped (a run's writes never reach the original).
pub struct ScratchCard(PathBuf);

impl ScratchCard {
    /// Copies `src` to `pivisor-TAG-PID.img`.
    pub fn copy_of(src: &std::path::Path, tag: &str) -> ScratchCard {
        let dst = std::env::temp_dir().join(format!("pivisor-{tag}-{}.img", std::process::id()));
        let st = Command::new("cp")
            .arg("--sparse=always")
            .arg(src)
            .arg(&dst)
            .status()
            .expect("cp");
        assert!(st.success(), "copying the card {}", src.display());
        ScratchCard(dst)
    }

    /// Where the copy is.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for ScratchCard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The KVM yardstick: the same small kernel booted natively (entered at
/// EL2, KVM built in and on), its initramfs holding pv-vmm (tools/vmm)
/// and the bundles pivisor boots; pv-vmm runs bundle `vm` ("linux" or
/// "bench", guests/linux/kvm-host-init) on the host's console. `quiet`
/// keeps the host's own boot messages out of the guest's.
pub fn kvm_host(vm: &str) -> Boot {
    Boot::new(artifact("PIVISOR_LINUX_IMAGE"))
        .dtb(dtb("native-host.dtb"))
        .initrd(artifact("PIVISOR_KVM_HOST_INITRD"))
        .append(&format!(
            "console=ttyAMA0,115200 earlycon=pl011,mmio32,0xfe201000 rdinit=/init panic=1 \
             quiet pv.vm={vm}"
        ))
}

/// The guests' console text in the mux layout, as one stream: the
/// hypervisor's log lines and the console switch's own notices left out,
/// and line breaks removed. The switch starts a log line on a line of its
/// own even when the focused guest is in the middle of one, so a guest's
/// line can arrive in pieces around log lines; its text is still whole
/// and in order here.
pub fn console_stream(text: &str) -> String {
    let log =
        Regex::new(r"^\[\s*\d+\.\d{6}\] c\d (TRACE|DEBUG|INFO|WARN|ERROR) ").expect("valid regex");
    text.lines()
        .filter(|l| !log.is_match(l) && !l.starts_with("[pivisor: "))
        .collect()
}

/// The console switch's terminal re-assertions (src/conmux.rs:
/// `FOCUS_RESET`, `REASSERT`), which land at line starts.
pub const SWITCH_SEQUENCES: [&str; 2] = ["\x18\x1b[!p\x1b[0m\x1b(B\x0f", "\x18\x1b[0m\x1b(B\x0f"];

/// What a boot printed.
#[derive(Debug)]
pub struct Output {
    /// What the first serial port (the PL011) showed as text: carriage
    /// returns and the console switch's terminal re-assertions
    /// ([`SWITCH_SEQUENCES`], invisible on a terminal) taken out.
    pub serial: String,
    /// Everything read from the first serial port, as it came.
    pub raw: String,
    /// Everything written to the second serial port (the mini UART).
    pub aux: String,
    /// QEMU's own stderr.
    pub stderr: String,
    /// True if the timeout ended the run.
    pub timed_out: bool,
}

impl Output {
    /// Asserts the serial output matches `re`.
    pub fn expect(&self, re: &str) -> &Self {
        let r = Regex::new(re).expect("valid regex");
        assert!(
            r.is_match(&self.serial),
            "serial output does not match /{re}/:\n{}",
            self.serial
        );
        self
    }

    /// Asserts the serial output does not match `re`.
    pub fn reject(&self, re: &str) -> &Self {
        let r = Regex::new(re).expect("valid regex");
        assert!(
            !r.is_match(&self.serial),
            "serial output matches /{re}/ but must not:\n{}",
            self.serial
        );
        self
    }

    /// Asserts the mini UART's output matches `re`.
    pub fn expect_aux(&self, re: &str) -> &Self {
        let r = Regex::new(re).expect("valid regex");
        assert!(
            r.is_match(&self.aux),
            "mini UART output does not match /{re}/:\n{}\n(PL011:\n{})",
            self.aux,
            self.serial
        );
        self
    }

    /// Asserts the mini UART's output does not match `re`.
    pub fn reject_aux(&self, re: &str) -> &Self {
        let r = Regex::new(re).expect("valid regex");
        assert!(
            !r.is_match(&self.aux),
            "mini UART output matches /{re}/ but must not:\n{}",
            self.aux
        );
        self
    }

    /// Asserts the console stream ([`console_stream`]) contains `text`.
    pub fn expect_stream(&self, text: &str) -> &Self {
        assert!(
            console_stream(&self.serial).contains(text),
            "the console stream does not contain {text:?}:\n{}",
            self.serial
        );
        self
    }

    /// Number of matches of `re`.
    pub fn count(&self, re: &str) -> usize {
        Regex::new(re)
            .expect("valid regex")
            .find_iter(&self.serial)
            .count()
    }
}

/// Kills QEMU when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Boot {
    /// A boot of `image` with no device tree, no bootargs, 30 s timeout.
    pub fn new(image: PathBuf) -> Self {
        Boot {
            image,
            dtb: None,
            initrd: None,
            append: String::new(),
            timeout: Duration::from_secs(30),
            icount: false,
            sd: None,
            script: Vec::new(),
            timed: Vec::new(),
            aux_script: Vec::new(),
            extra: Vec::new(),
        }
    }

    /// Passes more arguments to QEMU (e.g. a USB device and its backend).
    pub fn qemu_args(mut self, args: &[&str]) -> Self {
        self.extra.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Types `bytes` on the mini UART (the hypervisor's console when a
    /// VM owns the PL011) once the output of both ports matches `re`
    /// (after the earlier such steps).
    pub fn type_aux_after(mut self, re: &str, bytes: &[u8]) -> Self {
        self.aux_script.push((re.to_string(), bytes.to_vec()));
        self
    }

    /// Types `bytes` on the console once `after` has passed since QEMU
    /// started (for long runs: the soak test).
    pub fn type_at(mut self, after: Duration, bytes: &[u8]) -> Self {
        self.timed.push((after, bytes.to_vec()));
        self
    }

    /// Types `bytes` on the console once the output matches `re` (after
    /// the earlier steps; each step's regex is searched in everything
    /// printed so far).
    pub fn type_after(mut self, re: &str, bytes: &[u8]) -> Self {
        self.script.push((re.to_string(), bytes.to_vec()));
        self
    }

    /// Runs with `-icount shift=0,align=off,sleep=off`: guest time is one
    /// nanosecond per instruction, so timings are exact and repeatable.
    pub fn icount(mut self) -> Self {
        self.icount = true;
        self
    }

    /// Passes `-dtb`.
    pub fn dtb(mut self, p: PathBuf) -> Self {
        self.dtb = Some(p);
        self
    }

    /// Passes `-initrd`.
    pub fn initrd(mut self, p: PathBuf) -> Self {
        self.initrd = Some(p);
        self
    }

    /// Attaches a raw SD card image (`-drive if=sd,format=raw`; QEMU
    /// wants a power-of-two size). QEMU raspi4b puts it on the Arasan.
    pub fn sd(mut self, p: PathBuf) -> Self {
        self.sd = Some((p, false));
        self
    }

    /// Attaches a scratch copy of the card image `p` (sparse; made when
    /// the run starts, removed when it ends), so the run's writes never
    /// reach `p`.
    pub fn sd_copy_of(mut self, p: PathBuf) -> Self {
        self.sd = Some((p, true));
        self
    }

    /// Passes `-append` (the hypervisor's bootargs).
    pub fn append(mut self, a: &str) -> Self {
        self.append = a.to_string();
        self
    }

    /// Sets the timeout.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Boots and reads serial output until `done` holds for it, or the
    /// timeout passes (then `timed_out` is set; callers usually assert on
    /// that). QEMU is killed either way.
    pub fn run_until(&self, done: impl Fn(&str) -> bool) -> Output {
        let qemu = std::env::var("PIVISOR_QEMU").unwrap_or_else(|_| "qemu-system-aarch64".into());
        let mut cmd = Command::new(&qemu);
        static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        // The mini UART: a pair of FIFOs (QEMU's pipe chardev reads
        // PATH.in and writes PATH.out), read by a thread into `aux_bytes`.
        let aux_base = std::env::temp_dir().join(format!(
            "pivisor-aux-{}-{}",
            std::process::id(),
            RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let aux_in = aux_base.with_extension("in");
        let aux_out = aux_base.with_extension("out");
        for f in [&aux_in, &aux_out] {
            let _ = std::fs::remove_file(f);
            let st = Command::new("mkfifo").arg(f).status().expect("mkfifo");
            assert!(st.success(), "mkfifo {}", f.display());
        }
        cmd.args([
            "-M", "raspi4b", "-display", "none", "-monitor", "none", "-serial", "stdio", "-chardev",
        ])
        .arg(format!("pipe,id=aux,path={}", aux_base.display()))
        .args(["-serial", "chardev:aux"])
        .arg("-kernel")
        .arg(&self.image);
        if let Some(d) = &self.dtb {
            cmd.arg("-dtb").arg(d);
        }
        if let Some(i) = &self.initrd {
            cmd.arg("-initrd").arg(i);
        }
        if !self.append.is_empty() {
            cmd.args(["-append", &self.append]);
        }
        if self.icount {
            cmd.args(["-icount", "shift=0,align=off,sleep=off"]);
        }
        cmd.args(&self.extra);
        let mut scratch = None;
        if let Some((sd, copy)) = &self.sd {
            let card = if *copy {
                let c = ScratchCard::copy_of(
                    sd,
                    &format!("card-{}", RUNS.load(std::sync::atomic::Ordering::Relaxed)),
                );
                let p = c.path().to_path_buf();
                scratch = Some(c);
                p
            } else {
                sd.clone()
            };
            cmd.arg("-drive")
                .arg(format!("if=sd,format=raw,file={}", card.display()));
        }
        cmd.stdin(if self.script.is_empty() && self.timed.is_empty() {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {qemu}: {e} (run `make test`)"));
        let mut guard = Guard(child);
        let mut stdin = guard.0.stdin.take();
        let mut step = 0;
        let mut timed_step = 0;
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let mut out = guard.0.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let aux_bytes = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        {
            let (path, into) = (aux_out.clone(), aux_bytes.clone());
            std::thread::spawn(move || {
                // Opens once QEMU has (it holds both ends read-write).
                let Ok(mut f) = std::fs::File::open(&path) else {
                    return;
                };
                let mut buf = [0u8; 4096];
                while let Ok(n) = f.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    into.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
        let mut aux_writer: Option<std::fs::File> = None;
        let mut aux_step = 0;
        let mut err = guard.0.stderr.take().expect("piped stderr");
        let err_thread = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let deadline = Instant::now() + self.timeout;
        let mut bytes = Vec::new();
        let mut timed_out = false;
        loop {
            let now = Instant::now();
            if now >= deadline {
                timed_out = true;
                break;
            }
            // Wake at least every 200 ms to look at the mini UART's bytes.
            let wait = (deadline - now).min(Duration::from_millis(200));
            let got = match rx.recv_timeout(wait) {
                Ok(chunk) => {
                    bytes.extend_from_slice(&chunk);
                    Ok(())
                }
                Err(mpsc::RecvTimeoutError::Timeout) => Ok(()),
                Err(e) => Err(e),
            };
            match got {
                Ok(()) => {
                    let mut text = String::from_utf8_lossy(&bytes).into_owned();
                    // `done` sees both ports (the hypervisor's lines move
                    // to the mini UART when the PL011 is passed through).
                    {
                        let aux = aux_bytes.lock().unwrap();
                        text.push('\n');
                        text.push_str(&String::from_utf8_lossy(&aux));
                    }
                    while let Some((re, input)) = self.aux_script.get(aux_step) {
                        if !Regex::new(re).expect("valid regex").is_match(&text) {
                            break;
                        }
                        if aux_writer.is_none() {
                            // Non-blocking: QEMU holds the FIFO open (a
                            // QEMU that is gone never blocks the test).
                            use std::os::unix::fs::OpenOptionsExt;
                            aux_writer = std::fs::OpenOptions::new()
                                .write(true)
                                .custom_flags(0o4000) // O_NONBLOCK
                                .open(&aux_in)
                                .ok();
                        }
                        if let Some(w) = aux_writer.as_mut() {
                            let _ = w.write_all(input);
                            let _ = w.flush();
                        }
                        aux_step += 1;
                    }
                    let started = deadline - self.timeout;
                    while let Some((at, input)) = self.timed.get(timed_step) {
                        if started.elapsed() < *at {
                            break;
                        }
                        if let Some(s) = stdin.as_mut() {
                            let _ = s.write_all(input);
                            let _ = s.flush();
                        }
                        timed_step += 1;
                    }
                    while let Some((re, input)) = self.script.get(step) {
                        if !Regex::new(re).expect("valid regex").is_match(&text) {
                            break;
                        }
                        if let Some(s) = stdin.as_mut() {
                            let _ = s.write_all(input);
                            let _ = s.flush();
                        }
                        step += 1;
                    }
                    if done(&text) {
                        break;
                    }
                }
                // QEMU exited.
                Err(_) => break,
            }
        }
        // Let a line in flight finish before killing QEMU.
        std::thread::sleep(Duration::from_millis(100));
        while let Ok(chunk) = rx.try_recv() {
            bytes.extend_from_slice(&chunk);
        }
        drop(guard);
        let stderr = err_thread.join().unwrap_or_default();
        drop(scratch);
        drop(aux_writer);
        let aux = aux_bytes.lock().unwrap().clone();
        for f in [&aux_in, &aux_out] {
            let _ = std::fs::remove_file(f);
        }
        let raw = String::from_utf8_lossy(&bytes).into_owned();
        let mut serial = raw.replace('\r', "");
        for seq in SWITCH_SEQUENCES {
            serial = serial.replace(seq, "");
        }
        Output {
            serial,
            raw,
            aux: String::from_utf8_lossy(&aux).replace('\r', ""),
            stderr,
            timed_out,
        }
    }

    /// Boots until the serial output matches `re`; panics on timeout.
    pub fn run_until_match(&self, re: &str) -> Output {
        let r = Regex::new(re).expect("valid regex");
        let o = self.run_until(|s| r.is_match(s));
        assert!(
            !o.timed_out,
            "timed out after {:?} waiting for /{re}/; serial:\n{}\nstderr:\n{}",
            self.timeout, o.serial, o.stderr
        );
        o
    }
}

#[cfg(test)]
mod tests {
    use super::console_stream;

    #[test]
    fn console_stream_rejoins_lines_broken_by_log_lines() {
        let raw = "U\n[    7.727647] c2 WARN  VM 'beta': mailbox: refused\nART hel\n\
                   [pivisor: console -> VM 1 'beta'; Ctrl-] l lists the VMs]\n\
                   lo\n[beta] UART ready\n";
        let s = console_stream(raw);
        assert!(s.contains("UART hello"), "{s}");
        assert!(!s.contains("WARN") && !s.contains("pivisor:"), "{s}");
        // A guest line that merely looks like a log line's start stays.
        assert!(console_stream("[ 1.0] not a log line\n").contains("not a log line"));
    }
}
