//! Gantry's trainer: fits a GAN — a generator G(z) → x* against a discriminator
//! D(x) → P(real) — by alternating D and G steps, on burn's CPU backend (or a GPU
//! through wgpu), with checkpoints, metrics and sample grids in a run folder.

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod ema;
pub mod export;
pub mod fsutil;
pub mod fuzzing;
pub mod kernels;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod noise;
pub mod quality;
pub mod render;
pub mod report;
pub mod run;
pub mod training;

/// The environment variable that stops the process at a named point, for crash tests:
/// `GANTRY_PAUSE_AT=checkpoint-files@30` makes the run print a line to stderr and sleep
/// when it reaches that point at step 30, so a test can `kill -9` it exactly there.
pub const PAUSE_AT_ENV: &str = "GANTRY_PAUSE_AT";

/// Where the crash tests can stop a run (see [`PAUSE_AT_ENV`]). Does nothing unless the
/// variable names this point and step.
///
/// Points: `step` (between the D step and the G step), `checkpoint-files` (a checkpoint's
/// first file written, the rest not), `checkpoint-latest` (the checkpoint folder in
/// place, `latest` not yet updated).
pub fn pause_point(point: &str, step: usize) {
    static TARGET: std::sync::OnceLock<Option<(String, usize)>> = std::sync::OnceLock::new();
    let target = TARGET.get_or_init(|| {
        let value = std::env::var(PAUSE_AT_ENV).ok()?;
        let (name, at) = value.split_once('@')?;
        Some((name.to_string(), at.parse().ok()?))
    });
    if target
        .as_ref()
        .is_some_and(|(name, at)| name == point && *at == step)
    {
        eprintln!("gantry: paused at {point}@{step} ({PAUSE_AT_ENV})");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}
