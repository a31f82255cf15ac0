//! Range-checked value parsers for clap, and the limits they enforce.
//!
//! A value out of range is a command-line error: clap reports it with the option's name and
//! exits with code 2, before any model is loaded. Kept apart from the subcommands because
//! several of them share a parser (`--calibration-samples` in `quantize` and `export-firmware`).

/// The most images one `generate` writes (IDX headers store the count in 32 bits).
const MAX_COUNT: u64 = u32::MAX as u64;
/// The largest `--batch`.
const MAX_BATCH: u64 = 4096;
/// The longest `bench --seconds`: an hour per backend and batch size.
const MAX_SECONDS: f64 = 3600.0;
/// The most `--ort-threads`.
const MAX_THREADS: u64 = 1024;
/// The most calibration samples (calibration keeps their activations in memory).
const MAX_SAMPLES: u64 = 100_000;

/// An integer in `min..=max`, for clap (which then reports an argument error, exit code 2).
fn parse_int(s: &str, min: u64, max: u64) -> Result<usize, String> {
    let v: u64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number from {min} to {max}"))?;
    if !(min..=max).contains(&v) {
        return Err(format!("{v} is out of range: use {min} to {max}"));
    }
    usize::try_from(v).map_err(|_| format!("{v} is too large for this machine"))
}

/// `generate --count`: 1 to [`MAX_COUNT`].
pub fn parse_count(s: &str) -> Result<usize, String> {
    parse_int(s, 1, MAX_COUNT)
}

/// `generate --batch`: 1 to [`MAX_BATCH`].
pub fn parse_batch(s: &str) -> Result<usize, String> {
    parse_int(s, 1, MAX_BATCH)
}

/// `generate --threads`: a count, or `auto` (time 1 against all the cores at load).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadsArg {
    /// This many threads.
    Count(usize),
    /// Whichever of 1 and the machine's core count runs faster.
    Auto,
}

/// `generate --threads`: `auto`, or 1 to [`MAX_THREADS`].
pub fn parse_threads_or_auto(s: &str) -> Result<ThreadsArg, String> {
    if s.trim().eq_ignore_ascii_case("auto") {
        return Ok(ThreadsArg::Auto);
    }
    parse_threads(s).map(ThreadsArg::Count)
}

/// `bench --ort-threads`: 1 to [`MAX_THREADS`].
pub fn parse_threads(s: &str) -> Result<usize, String> {
    parse_int(s, 1, MAX_THREADS)
}

/// `--calibration-samples`: 1 to [`MAX_SAMPLES`].
pub fn parse_samples(s: &str) -> Result<usize, String> {
    parse_int(s, 1, MAX_SAMPLES)
}

/// A finite number in `(low, high]`.
fn parse_float(s: &str, low: f64, high: f64) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    if !v.is_finite() || v <= low || v > high {
        return Err(format!(
            "{s} is out of range: use a number more than {low} and at most {high}"
        ));
    }
    Ok(v)
}

/// `bench --seconds`: more than 0, at most [`MAX_SECONDS`].
pub fn parse_seconds(s: &str) -> Result<f64, String> {
    parse_float(s, 0.0, MAX_SECONDS)
}

/// `quantize --percentile`: more than 50, at most 100.
pub fn parse_percentile(s: &str) -> Result<f64, String> {
    parse_float(s, 50.0, 100.0)
}

/// `--z-dim`: 1 to 2^28 (the runtime's limit on values per sample).
pub fn parse_z_dim(s: &str) -> Result<usize, String> {
    parse_int(s, 1, runtime::onnx::spec::MAX_VALUES_PER_SAMPLE as u64)
}

/// `--pixel-range`: `-1,1`, `0,1` or `0,255`.
pub fn parse_pixel_range(s: &str) -> Result<runtime::onnx::adopt::PixelRange, String> {
    s.parse()
}

/// `--image C,H,W`: three whole numbers from 1 to 65536.
pub fn parse_image(s: &str) -> Result<runtime::onnx::spec::ImageShape, String> {
    let sides: Vec<usize> = s
        .split(',')
        .map(|v| parse_int(v, 1, 65_536))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("`{s}` is not C,H,W like 1,28,28: {e}"))?;
    let [channels, height, width] = sides[..] else {
        return Err(format!(
            "`{s}` is not C,H,W like 1,28,28: it needs three numbers"
        ));
    };
    Ok(runtime::onnx::spec::ImageShape {
        channels,
        height,
        width,
    })
}

/// The most classes `--classes N` may name.
const MAX_CLASSES: u64 = 1 << 20;

/// `--classes`: names in label order, or one count N (names `0` to `N-1`). Names must be
/// distinct.
pub fn parse_classes(values: &[String]) -> Result<Vec<String>, String> {
    if let [one] = values
        && one.chars().all(|c| c.is_ascii_digit())
    {
        let n = parse_int(one, 1, MAX_CLASSES)?;
        return Ok((0..n).map(|c| c.to_string()).collect());
    }
    let mut seen = std::collections::HashSet::new();
    for v in values {
        if !seen.insert(v.as_str()) {
            return Err(format!("the class name `{v}` appears twice"));
        }
    }
    Ok(values.to_vec())
}

/// `generate --truncation`: at least [`runtime::noise::MIN_TRUNCATION`], at most 100.
pub fn parse_truncation(s: &str) -> Result<f32, String> {
    let v = parse_float(s, 0.0, 100.0)? as f32;
    if v < runtime::noise::MIN_TRUNCATION {
        return Err(format!(
            "{s} is too small: use at least {} (smaller values keep almost no draws)",
            runtime::noise::MIN_TRUNCATION
        ));
    }
    Ok(v)
}

/// `generate --min-confidence`: a probability, more than 0 and at most 1.
pub fn parse_probability(s: &str) -> Result<f32, String> {
    Ok(parse_float(s, 0.0, 1.0)? as f32)
}

/// `generate --max-draws`: 1 to 100000.
pub fn parse_max_draws(s: &str) -> Result<usize, String> {
    parse_int(s, 1, 100_000)
}
