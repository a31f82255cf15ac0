//! `runtime generate` as a process: killed with `kill -9` at any moment it leaves no half data
//! set under `--out`, and its memory does not grow with `--count`.
#![cfg(target_os = "linux")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use runtime::dataset::{MANIFEST, Manifest};
use runtime::spec::{GeneratorSpec, ImageShape, Layer};

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_runtime"))
        .args(args)
        .arg("--quiet")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Files under `dir`, recursively, relative (a folder that vanishes meanwhile reads as empty).
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// The data set at `out` is complete: its manifest reads, and it holds exactly the images the
/// manifest counts, each a readable PNG. Returns the manifest.
fn complete(out: &Path) -> Manifest {
    let m = Manifest::read(&out.join(MANIFEST)).unwrap();
    let files = tree(out);
    let pngs: Vec<&String> = files.iter().filter(|f| f.ends_with(".png")).collect();
    assert_eq!(
        pngs.len(),
        m.count,
        "{} holds {} of {} images",
        out.display(),
        pngs.len(),
        m.count
    );
    assert_eq!(files.len(), m.count + 1, "stray files in {}", out.display());
    for p in [pngs[0], pngs[pngs.len() - 1]] {
        image::open(out.join(p)).unwrap();
    }
    m
}

/// Temporary folders a run left beside `out`.
fn leftovers(parent: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(parent)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".out.")
        })
        .collect()
}

/// Issue 12: `kill -9` of `runtime generate --force` at several moments (before, while and
/// after images are written) leaves `--out` holding the complete previous data set, or the
/// complete new one; never a part. The next run removes the dead run's temporary folder and
/// succeeds.
#[test]
fn a_killed_generate_leaves_no_half_data_set() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write(&common::mlp(3, true), dir.path(), "m");
    let out = dir.path().join("out");
    let args = |n: &'static str, seed: &'static str| {
        vec![
            "generate".to_string(),
            "-m".into(),
            model.display().to_string(),
            "-n".into(),
            n.into(),
            "-s".into(),
            seed.into(),
            "-o".into(),
            out.display().to_string(),
            "--force".into(),
        ]
    };
    let run = |a: &[String]| spawn(&a.iter().map(String::as_str).collect::<Vec<_>>());

    // Killed before any output exists: nothing appears.
    let mut child = run(&args("40000", "2"));
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!out.exists(), "a killed first run left {}", out.display());

    // A complete previous data set.
    let status = run(&args("30", "1")).wait().unwrap();
    assert!(status.success());
    assert_eq!(complete(&out).count, 30);
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );

    let mut kills = 0;
    for delay_ms in [0u64, 50, 150, 400, 800, 1500, 2500] {
        let mut child = run(&args("40000", "2"));
        // Half of the kills wait until the unfinished folder holds images.
        let started = Instant::now();
        if delay_ms % 100 == 0 {
            while started.elapsed() < Duration::from_secs(20) {
                let busy = leftovers(dir.path())
                    .iter()
                    .any(|p| p.is_dir() && tree(p).len() > (delay_ms as usize) * 4);
                if busy {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        let finished = child.try_wait().unwrap().is_some();
        child.kill().unwrap();
        child.wait().unwrap();
        if !finished {
            kills += 1;
        }
        if out.exists() {
            let m = complete(&out);
            assert!(
                (m.count == 30 && m.seed == 1) || (m.count == 40000 && m.seed == 2),
                "after a kill at {delay_ms} ms: a data set of {} images, seed {}",
                m.count,
                m.seed
            );
        }
    }
    assert!(
        kills >= 4,
        "only {kills} runs were killed before they finished"
    );

    // The rerun succeeds, and nothing of the killed runs is left beside the output.
    let mut child = run(&args("40000", "2"));
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{err}");
    let m = complete(&out);
    assert_eq!((m.count, m.seed), (40000, 2));
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
}

/// Peak resident memory (VmHWM) of a finished `runtime` run, polled from /proc.
fn peak_rss_kib(args: &[&str]) -> u64 {
    let mut child = spawn(args);
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(s) = std::fs::read_to_string(&status_path)
            && let Some(line) = s.lines().find(|l| l.starts_with("VmHWM:"))
        {
            let kib: u64 = line
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{args:?} failed");
            return peak;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Issue 12: `generate`'s memory does not grow with `--count`. A generator with a wide noise
/// vector (z_dim 1024: 4 KiB of noise per image) writes 200 and 20,000 images as IDX; the peak
/// resident memory of the two runs differs by less than 16 MiB, where holding every z (as the
/// noise fingerprint did) costs 78 MiB more.
#[test]
fn generate_memory_does_not_grow_with_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = common::Weights::new(5);
    let spec = GeneratorSpec {
        z_dim: 1024,
        image: ImageShape {
            channels: 1,
            height: 4,
            width: 4,
        },
        classes: common::digits(),
        label_embedding: Some(runtime::spec::Matrix {
            rows: 10,
            cols: 4,
            data: w.normal(40, 1.0),
        }),
        layers: vec![
            w.dense(1028, 16, true),
            Layer::Tanh,
            Layer::Reshape {
                channels: 1,
                height: 4,
                width: 4,
            },
        ],
        metadata: Default::default(),
    };
    let model = common::write(&spec, dir.path(), "wide");
    let peak = |n: &str| {
        let out = dir.path().join(format!("idx-{n}"));
        peak_rss_kib(&[
            "generate",
            "-m",
            common::s(&model),
            "-n",
            n,
            "-o",
            common::s(&out),
            "-f",
            "idx",
            "--gzip",
        ])
    };
    let small = peak("200");
    let large = peak("20000");
    assert!(
        large < small + 16 * 1024,
        "peak RSS {small} KiB for 200 images, {large} KiB for 20000"
    );
}
