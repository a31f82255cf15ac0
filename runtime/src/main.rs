//! `runtime`: generate labelled synthetic data sets from a Gantry ONNX generator, inspect a
//! model, and benchmark the inference backends.
//!
//! Exit codes: 0 success; 1 the command failed (bad model, bad argument value, I/O error);
//! 2 the command line could not be parsed.
//!
//! This file holds only the top-level command line, the exit codes and the dispatch; each
//! subcommand lives in `cli/` (see `cli/mod.rs`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

/// Exit code when the command fails.
const EXIT_FAILURE: u8 = 1;

/// The whole command line: global options and one subcommand.
#[derive(Parser, Debug)]
#[command(
    name = "runtime",
    version,
    about = "Run a Gantry GAN generator (ONNX) with tract: generate labelled synthetic data, inspect, benchmark.",
    after_help = "Examples:\n  \
        runtime info --model models/mnist-dcgan-cond.onnx\n  \
        runtime generate --model models/mnist-dcgan-cond.onnx --count 1000 --balanced --seed 7 --out synth --format png\n  \
        runtime generate --model models/mnist-dcgan-cond.onnx --count 100 --class 3 --seed 1 --out threes --format idx --gzip\n  \
        runtime generate --model models/mnist-mlp.onnx --count 64 --seed 0 --out look --format grid\n  \
        runtime bench --model models/mnist-dcgan-cond.onnx\n  \
        runtime quantize --model models/mnist-mlp-cond.onnx --out mnist-mlp-cond-int8.onnx\n  \
        runtime generate --model models/mnist-mlp-cond.onnx --precision auto --count 1000 --out synth\n  \
        runtime export-firmware --model models/mnist-mlp-cond.onnx --out gen.gtfw\n  \
        runtime adopt my-pytorch-generator.onnx --out mine.onnx\n  \
        runtime generate --model keras-generator.onnx --classes 10 --count 100 --out synth\n\n\
        Exit codes: 0 success, 1 failure (bad model, bad value, I/O), 2 invalid command line.\n\
        Set RUST_LOG=debug (or pass -v) to see what the runtime is doing."
)]
struct Cli {
    /// More logging (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// No progress bar.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands; each one's options and code live in `cli/<name>.rs`.
#[derive(Subcommand, Debug)]
enum Command {
    /// Generate a labelled data set: PNG folders per class, IDX files, or one grid picture,
    /// plus manifest.json (model, seed, counts, class names, noise fingerprint).
    ///
    /// The same model, seed and count give the same images on every machine. Conditional models
    /// cycle through all classes (sample i gets class i % classes) unless --class is given.
    /// The output folder is written under a temporary name and moved into place when complete.
    Generate(cli::generate::GenerateArgs),
    /// Show a model's metadata, inputs, outputs, parameter count and MACs per sample.
    Info(cli::info::InfoArgs),
    /// Measure latency at batch 1 and throughput at batch 64 for every available backend, side
    /// by side, and the largest output difference between backends on the same noise.
    ///
    /// Backends: tract with fixed-batch plans (what `generate` uses), tract with one
    /// symbolic-batch plan, tract in int8, and ONNX Runtime (f32 and int8) when built with
    /// `--features ort` and ORT_DYLIB_PATH points at libonnxruntime.so. The int8 rows quantize an
    /// f32 model in memory (--form); their "max |diff|" is the quantization error.
    Bench(cli::bench::BenchArgs),
    /// Quantize a generator to int8 (post-training, static): weights int8 per output channel,
    /// activations int8 calibrated on the generator's own activations for seeded z, biases
    /// int32. Writes a standard ONNX file that tract and ONNX Runtime load, with the scheme and
    /// calibration in its metadata (`runtime info` shows them).
    ///
    /// Forms: integer (MatMulInteger + f32 rescale; the fastest int8 form in tract here),
    /// qlinear (QLinearMatMul), qdq (QuantizeLinear/DequantizeLinear around f32 Gemm: ONNX
    /// Runtime's preferred form). Transposed convolutions keep f32 compute with int8-stored
    /// weights. --weight-only stores every weight in int8 and computes in f32: a 4x smaller
    /// file at f32 speed, for devices short of memory or storage.
    ///
    /// Whether int8 is faster depends on the CPU: measure with `runtime bench`, or let
    /// `--precision auto` decide at load.
    Quantize(cli::quantize::QuantizeArgs),
    /// Write an `mlp` generator as a weight blob for the `firmware` crate (no_std, int8, runs on
    /// a microcontroller or a Pi driving a small display). Only Dense -> LeakyReLU -> Dense ->
    /// Tanh generators with one channel fit; the blob is written atomically. Preview it with
    /// `cargo run -p firmware --features preview --bin preview -- --blob FILE`.
    ExportFirmware(cli::export_firmware::ExportFirmwareArgs),
    /// Rewrite a generator from another framework (PyTorch's torch.onnx.export, TensorFlow via
    /// tf2onnx, ...) as a Gantry generator: inputs `z` and `label`, output `image` NCHW in
    /// [-1, 1], Gantry's metadata. Every other subcommand then takes it like a trainer export.
    ///
    /// Read from the graph: the noise input and its width, an integer label input and its
    /// class count (the rows of the embedding it indexes), the output's shape (tract's shape
    /// inference) and layout (the side of 1 to 4 values is the channels), the pixel range (a
    /// final Tanh: -1,1; Sigmoid: 0,1). What the graph does not tell is asked for by name; the
    /// flags override what it suggests. Adapter nodes are added where conventions differ
    /// (Reshape of z, Cast of the label, rescale, Reshape or Transpose of the output); the rest
    /// of the graph is kept as it is. The other subcommands take the same flags and adopt in
    /// memory, so this step is optional. The report ends with the pixel range the adopted file
    /// really produces on 64 seeded samples.
    Adopt(cli::adopt::AdoptArgs),
}

/// Parses the command line (exit code 2 when it is invalid, as clap reports it), runs the
/// subcommand and maps its result to exit code 0 or [`EXIT_FAILURE`].
fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    match try_main(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Sets up logging from `-v` and RUST_LOG, then runs the subcommand.
fn try_main(cli: Cli) -> anyhow::Result<()> {
    let default_level = match cli.verbose {
        0 => "warn",
        1 => "runtime=debug,info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();

    match cli.command {
        Command::Generate(args) => cli::generate::run(args, cli.quiet),
        Command::Info(args) => cli::info::run(args),
        Command::Bench(args) => cli::bench::run(args),
        Command::Quantize(args) => cli::quantize::run(args),
        Command::ExportFirmware(args) => cli::export_firmware::run(args),
        Command::Adopt(args) => cli::adopt::run(args),
    }
}
