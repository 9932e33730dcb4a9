//! CI's smoke test of every fuzz target. The targets' bodies
//! (`fuzz/src/lib.rs`, included below: the very functions libFuzzer drives
//! in `scripts/fuzz.sh`) run on the seed corpus that `scripts/fuzz_seeds.py`
//! writes from the project's real files, on every input that once crashed
//! (`fuzz/regressions/<target>/`), and on deterministic mutations of each
//! (bit flips, boundary values in headers, cuts, splices). No coverage
//! guidance and no sanitizer: seconds on the stable toolchain instead of
//! the nightly instrumented build; the long coverage-guided runs are
//! `scripts/fuzz.sh`. It lives in the trainer's test binary because that is
//! the one that links every decoder (trainer, edge, ood-data, ood-core).

#[path = "../../../fuzz/src/lib.rs"]
mod targets;

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// xorshift64*: the same mutations on every machine and every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n.max(1)
    }
}

/// One to four edits of `seed`, the kinds that break decoders: a flipped
/// bit, a byte or a 32-bit word set to a boundary value (sizes and counts
/// in headers, both byte orders), a cut, a deleted or inserted run.
fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    const BYTES: [u8; 6] = [0, 1, 0x7f, 0x80, 0xfe, 0xff];
    const WORDS: [u32; 6] = [0, 1, 0x7fff_ffff, 0xffff_ffff, 0x0001_0000, 0x8000_0000];
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        let at = rng.below(len);
        match rng.below(6) {
            0 if len > 0 => v[at] ^= 1 << rng.below(8),
            1 if len > 0 => v[at] = BYTES[rng.below(BYTES.len())],
            2 if len >= 4 => {
                let w = WORDS[rng.below(WORDS.len())];
                let b = if rng.below(2) == 0 {
                    w.to_le_bytes()
                } else {
                    w.to_be_bytes()
                };
                let at = at.min(len - 4);
                v[at..at + 4].copy_from_slice(&b);
            }
            3 => v.truncate(rng.below(len + 1)),
            4 if len > 0 => {
                let end = (at + 1 + rng.below(64)).min(len);
                v.drain(at..end);
            }
            _ => {
                let n = 1 + rng.below(16);
                let run: Vec<u8> = (0..n).map(|_| rng.below(256) as u8).collect();
                v.splice(at..at, run);
            }
        }
    }
    v
}

/// Files of `dir`, sorted (none when it does not exist).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn every_fuzz_target_survives_its_seeds_its_regressions_and_their_mutations() {
    let seeds = tempfile::tempdir().expect("tmp");
    let made = std::process::Command::new("python3")
        .arg(root().join("scripts/fuzz_seeds.py"))
        .arg(seeds.path())
        .output();
    let have_seeds = match made {
        Ok(o) if o.status.success() => true,
        Ok(o) => panic!(
            "scripts/fuzz_seeds.py failed: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => {
            eprintln!("fuzz smoke: python3 not available ({e}): only the regressions and the empty input are replayed");
            false
        }
    };
    let crashes = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-smoke");
    let mut failed = Vec::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for (name, body) in targets::TARGETS {
        let mut inputs: Vec<(String, Vec<u8>)> = vec![("empty".into(), Vec::new())];
        let corpus = files(&seeds.path().join(name));
        assert!(
            !have_seeds || !corpus.is_empty(),
            "{name}: fuzz_seeds.py wrote no seed"
        );
        for p in corpus
            .iter()
            .chain(&files(&root().join("fuzz/regressions").join(name)))
        {
            let label = p.file_name().expect("name").to_string_lossy().into_owned();
            inputs.push((label, std::fs::read(p).expect("read seed")));
        }
        // loading an ONNX graph costs milliseconds, the rest microseconds
        let per_seed = if name == "onnx" { 6 } else { 200 };
        let mut runs = 0usize;
        for (label, seed) in &inputs {
            let mutants = (0..per_seed).map(|k| (format!("{label}-m{k}"), mutate(seed, &mut rng)));
            for (id, data) in std::iter::once((label.clone(), seed.clone())).chain(mutants) {
                runs += 1;
                if std::panic::catch_unwind(|| body(&data)).is_err() {
                    let keep = crashes.join(name).join(&id);
                    std::fs::create_dir_all(keep.parent().expect("dir")).expect("mkdir");
                    std::fs::write(&keep, &data).expect("keep the crashing input");
                    failed.push(format!(
                        "{name}: {} (reproduce: cd fuzz && cargo +nightly fuzz run {name} {})",
                        keep.display(),
                        keep.display()
                    ));
                }
            }
        }
        eprintln!(
            "fuzz smoke: {name}: {runs} inputs ({} seeds and regressions)",
            inputs.len() - 1
        );
    }
    assert!(failed.is_empty(), "inputs that panic:\n{}", failed.join("\n"));
}
