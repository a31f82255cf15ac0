//! `runtime info`: show a model's metadata, inputs, outputs, parameter count and MACs per
//! sample, as text or JSON.
//!
//! The read-only look at a model before generating with it; its own file because the text
//! layout is long and only this subcommand prints it.

use std::path::{Path, PathBuf};

use clap::Args;
use runtime::engine::tract::Precision;

use runtime::onnx::adopt::Foreign;

use super::args::{ForeignArgs, PrecisionOpt};
use super::common::load_precision;

/// Options of `runtime info`.
#[derive(Args, Debug)]
pub struct InfoArgs {
    /// The ONNX generator.
    #[arg(long, short = 'm')]
    pub model: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// `--precision`: the arithmetic to load the model in (shown under "precision").
    #[command(flatten)]
    pub precision: PrecisionOpt,
    /// What to assume about a generator from another framework.
    #[command(flatten)]
    pub foreign: ForeignArgs,
}

/// Runs `runtime info`.
pub fn run(args: InfoArgs) -> anyhow::Result<()> {
    info(
        &args.model,
        &args.foreign.get()?,
        args.json,
        args.precision.get(),
    )
}

/// Prints what is known about `model` loaded in `precision`.
fn info(
    model: &Path,
    foreign: &Foreign,
    json: bool,
    precision: Option<Precision>,
) -> anyhow::Result<()> {
    let generator = load_precision(model, foreign, precision, false)?;
    let info = generator.info();
    let summary = generator.summary();
    let size = std::fs::metadata(model).map(|m| m.len()).unwrap_or(0);
    if json {
        let value = serde_json::json!({
            "model": model.display().to_string(),
            "file_bytes": size,
            "metadata": info,
            "graph": summary,
            "parameters": summary.parameters,
            "macs_per_sample": generator.macs_per_sample(),
            "default_batch": generator.batch_size(),
            "peak_tensor_bytes_per_sample": generator.peak_tensor_bytes(),
            "precision": generator.precision(),
            "auto_choice": generator.auto_choice(),
            "quantization": generator.quantization(),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    println!(
        "model:        {} ({size} bytes, {})",
        model.display(),
        summary.producer
    );
    println!(
        "format:       ONNX IR {}, opset {}, gantry metadata v{}",
        summary.ir_version, summary.opset, info.format_version
    );
    let precision = match (generator.quantization(), generator.auto_choice()) {
        (_, Some(c)) => format!(
            "{} (auto: {:.2} us/sample int8 vs {:.2} us/sample f32 at batch {})",
            c.chosen, c.int8_us_per_sample, c.f32_us_per_sample, c.batch
        ),
        (Some(q), None) if q.is_int8_compute() => format!("int8 ({} form)", q.form),
        (Some(_), None) => "f32 compute, int8-stored weights (weight-only)".to_string(),
        (None, None) => "f32".to_string(),
    };
    println!("precision:    {precision}");
    println!("z_dim:        {}", info.z_dim);
    println!(
        "image:        {} (C x H x W), pixels in [{}, {}]",
        info.image, info.pixel_range[0], info.pixel_range[1]
    );
    if info.classes.is_empty() {
        println!("classes:      none (unconditional)");
    } else {
        let list: Vec<String> = info
            .classes
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{i}={c}"))
            .collect();
        println!("classes:      {} ({})", info.classes.len(), list.join(", "));
    }
    for i in &summary.inputs {
        println!("input:        {i}");
    }
    for o in &summary.outputs {
        println!("output:       {o}");
    }
    println!("parameters:   {}", summary.parameters);
    println!("MACs/sample:  {}", generator.macs_per_sample());
    println!(
        "batch:        {} per tract run by default (largest intermediate tensor {:.1} KiB per sample)",
        generator.batch_size(),
        generator.peak_tensor_bytes() as f64 / 1024.0
    );
    let ops: Vec<String> = summary
        .operators
        .iter()
        .map(|(k, v)| format!("{k} x{v}"))
        .collect();
    println!("operators:    {}", ops.join(", "));
    for (k, v) in &info.metadata {
        let shown = if v.len() > 200 {
            format!(
                "{}... ({} bytes)",
                &v[..v.floor_char_boundary(200)],
                v.len()
            )
        } else {
            v.clone()
        };
        println!("metadata:     {k} = {shown}");
    }
    Ok(())
}
