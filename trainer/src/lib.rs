//! Gantry's trainer: fits a GAN — a generator G(z) → x* against a discriminator
//! D(x) → P(real) — by alternating D and G steps, on burn's CPU backend (or a GPU
//! through wgpu), with checkpoints, metrics and sample grids in a run folder.

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod ema;
pub mod export;
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
