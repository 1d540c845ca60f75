//! The fuzz targets on stable Rust, fast enough for `make test`: every
//! file of the seed corpus (corpus/<target>/), then a fixed-seed batch of
//! inputs made from them (bytes flipped, cut, spliced, or random), so a
//! change that breaks a parser on hostile input fails here without
//! nightly or libFuzzer. `make fuzz` does the long runs.
//!
//! `PIVISOR_FUZZ_WRITE_SEEDS=1 cargo test --test replay write_seeds --
//! --ignored` regenerates the structured seeds (seeds.rs).

mod seeds;

use pivisor_fuzz::TARGETS;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target)
}

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(corpus_dir(target))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().is_file())
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        std::fs::read(e.path()).expect("corpus file"),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Runs `f` on `data`, naming the input if it panics.
fn run(target: &str, what: &str, f: fn(&[u8]), data: &[u8]) {
    if catch_unwind(AssertUnwindSafe(|| f(data))).is_err() {
        let keep = std::env::temp_dir().join(format!("pivisor-fuzz-{target}-crash"));
        let _ = std::fs::write(&keep, data);
        panic!(
            "target {target} panicked on {what} (input kept in {})",
            keep.display()
        );
    }
}

#[test]
fn seed_corpus_replays() {
    for (name, f) in TARGETS {
        let seeds = corpus(name);
        assert!(
            seeds.len() >= 3,
            "corpus/{name} has {} seeds; regenerate them (see the module doc)",
            seeds.len()
        );
        for (file, data) in &seeds {
            run(name, &format!("corpus/{name}/{file}"), f, data);
        }
    }
}

/// xorshift64*: a fixed sequence, the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, seeds: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut d = if seeds.is_empty() || rng.below(8) == 0 {
        let n = rng.below(600);
        (0..n).map(|_| rng.next() as u8).collect()
    } else {
        seeds[rng.below(seeds.len())].1.clone()
    };
    for _ in 0..=rng.below(8) {
        match rng.below(5) {
            0 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] ^= 1 << rng.below(8);
            }
            1 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] = [0, 0xff, 0x7f, 0x80, 1][rng.below(5)];
            }
            2 => {
                let n = rng.below(d.len() + 1);
                d.truncate(n);
            }
            3 if !seeds.is_empty() => {
                let other = &seeds[rng.below(seeds.len())].1;
                let at = rng.below(d.len() + 1);
                let take = rng.below(other.len() + 1);
                d.splice(at..at, other[..take].iter().copied());
            }
            _ if !d.is_empty() => {
                // A 32-bit field set to a boundary value.
                let i = rng.below(d.len());
                let v: u32 = [0, u32::MAX, 0x8000_0000, 4096, 0xffff_fffc][rng.below(5)];
                for (k, b) in v.to_le_bytes().iter().enumerate() {
                    if let Some(x) = d.get_mut(i + k) {
                        *x = *b;
                    }
                }
            }
            _ => {}
        }
    }
    d
}

/// Inputs per target in `make test` (the long runs are `make fuzz`).
const GENERATED: usize = 3000;

#[test]
fn generated_inputs_do_not_break_the_parsers() {
    for (k, (name, f)) in TARGETS.iter().enumerate() {
        let seeds = corpus(name);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (k as u64 + 1));
        for i in 0..GENERATED {
            let d = mutate(&mut rng, &seeds);
            run(name, &format!("generated input {i}"), *f, &d);
        }
    }
}

#[test]
#[ignore = "writes the seed corpus; run with PIVISOR_FUZZ_WRITE_SEEDS=1"]
fn write_seeds() {
    if std::env::var_os("PIVISOR_FUZZ_WRITE_SEEDS").is_none() {
        return;
    }
    for (target, files) in seeds::all() {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).expect("corpus directory");
        for (file, data) in files {
            std::fs::write(dir.join(file), data).expect("seed file");
        }
    }
}
