//! `gantry-pi-ssd1306`: generate samples with Gantry's int8 firmware generator on a
//! Raspberry Pi and draw them on a 128×64 SSD1306 OLED over I2C.
//!
//! Wiring (Raspberry Pi 40-pin header, I2C bus 1): SSD1306 VCC → pin 1 (3.3 V),
//! GND → pin 6, SDA → pin 3 (GPIO2), SCL → pin 5 (GPIO3). Enable I2C with
//! `sudo raspi-config nonint do_i2c 0`; `i2cdetect -y 1` should show the display at 0x3c.
//!
//! Exit codes: 0 done (after `--screens`), 1 any error (I2C device, display, blob),
//! 2 bad arguments.

use std::path::PathBuf;
use std::process::ExitCode;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use embedded_graphics::mono_font::MonoTextStyle;
use embedded_graphics::mono_font::ascii::FONT_6X10;
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::*;
use embedded_graphics::text::{Baseline, Text};
use firmware::render::{GrayImage, GridLayout, draw_grid, draw_image};
use firmware::{Model, Noise};
use linux_embedded_hal::I2cdev;
use ssd1306::prelude::*;
use ssd1306::{I2CDisplayInterface, Ssd1306};

/// Draw samples of a Gantry firmware blob on an SSD1306 128×64 OLED over Linux I2C.
///
/// Alternates a 4×2 grid of eight samples with one sample at 2× captioned with its seed,
/// label and generation time. Sample i of a screen uses seed SEED + i.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Args {
    /// I2C bus device the display is on.
    #[arg(long, default_value = "/dev/i2c-1")]
    bus: PathBuf,
    /// 7-bit I2C address of the display, decimal or 0x-prefixed hex (0x3c or 0x3d).
    #[arg(long, default_value = "0x3c", value_parser = parse_address)]
    address: u8,
    /// Blob written by `runtime export-firmware` (default: the built-in
    /// `models/mnist-mlp-cond.gtfw`, the shipped conditional MNIST generator).
    #[arg(long)]
    blob: Option<PathBuf>,
    /// Seed of the first sample.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Label for every sample of a conditional generator (default: sample i gets
    /// label i % classes).
    #[arg(long)]
    label: Option<usize>,
    /// Milliseconds each screen stays up.
    #[arg(long, default_value_t = 3000)]
    interval_ms: u64,
    /// Stop after this many screens (default: run until interrupted).
    #[arg(long)]
    screens: Option<u64>,
}

/// The shipped trained generator (`runtime export-firmware` of `models/mnist-mlp-cond.onnx`).
static SHIPPED_BLOB: &[u8] = include_bytes!("../../../../models/mnist-mlp-cond.gtfw");

fn parse_address(s: &str) -> Result<u8, String> {
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u8::from_str_radix(hex, 16),
        None => s.parse(),
    };
    match parsed {
        Ok(a) if a < 0x80 => Ok(a),
        _ => Err(format!("{s:?} is not a 7-bit I2C address (try 0x3c)")),
    }
}

fn main() -> ExitCode {
    match try_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gantry-pi-ssd1306: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn try_main() -> Result<()> {
    let args = Args::parse();
    let bytes = match &args.blob {
        Some(p) => std::fs::read(p).with_context(|| format!("reading blob {}", p.display()))?,
        None => SHIPPED_BLOB.to_vec(),
    };
    let model = Model::parse(&bytes).context("parsing the blob")?;
    let classes = model.dims().classes;
    if let Some(l) = args.label {
        if classes == 0 {
            bail!("--label {l}: this generator is unconditional");
        }
        if l >= classes {
            bail!("--label {l}: the generator knows labels 0..{classes}");
        }
    }
    let label_for = |i: usize| (classes > 0).then(|| args.label.unwrap_or(i % classes.max(1)));
    let (w, h) = (model.dims().width as u32, model.dims().height as u32);

    let i2c = I2cdev::new(&args.bus).with_context(|| {
        format!(
            "opening {} (is I2C enabled? `sudo raspi-config nonint do_i2c 0`)",
            args.bus.display()
        )
    })?;
    let interface = I2CDisplayInterface::new_custom_address(i2c, args.address);
    let mut display = Ssd1306::new(interface, DisplaySize128x64, DisplayRotation::Rotate0)
        .into_buffered_graphics_mode();
    display.init().map_err(|e| {
        anyhow!(
            "initialising the SSD1306 at {:#04x}: {e:?} (check wiring and --address)",
            args.address
        )
    })?;
    let grid = GridLayout::fit(display.bounding_box().size, Size::new(w, h), 8, 4)
        .context("eight samples do not fit on a 128×64 display")?;
    let text = MonoTextStyle::new(&FONT_6X10, BinaryColor::On);

    let mut samples = vec![vec![0u8; model.output_len()]; 8];
    let mut seed = args.seed;
    for screen in 0.. {
        if args.screens.is_some_and(|n| screen >= n) {
            break;
        }
        display.clear_buffer();
        if screen % 2 == 0 {
            for (i, pixels) in samples.iter_mut().enumerate() {
                model.generate(
                    Noise::Seed(seed.wrapping_add(i as u64)),
                    label_for(i),
                    pixels,
                )?;
            }
            let images = samples
                .iter()
                .map(|p| GrayImage::new(p, w, h))
                .collect::<Result<Vec<_>, _>>()?;
            draw_grid(&mut display, &grid, images).map_err(|e| anyhow!("drawing: {e:?}"))?;
        } else {
            let start = Instant::now();
            model.generate(Noise::Seed(seed), label_for(0), &mut samples[0])?;
            let micros = start.elapsed().as_micros();
            let image = GrayImage::new(&samples[0], w, h)?;
            draw_image(&mut display, &image, Point::new(0, 4), 2)
                .map_err(|e| anyhow!("drawing: {e:?}"))?;
            let mut caption = format!("seed {seed}\n");
            if let Some(l) = label_for(0) {
                caption.push_str(&format!("label {l}\n"));
            }
            caption.push_str(&format!("{micros} us"));
            Text::with_baseline(&caption, Point::new(62, 8), text, Baseline::Top)
                .draw(&mut display)
                .map_err(|e| anyhow!("drawing: {e:?}"))?;
            seed = seed.wrapping_add(8);
        }
        display
            .flush()
            .map_err(|e| anyhow!("sending the frame to the display: {e:?}"))?;
        sleep(Duration::from_millis(args.interval_ms));
    }
    Ok(())
}
