//! Host preview: the firmware's own inference and drawing code rendered onto
//! `embedded-graphics-simulator` displays (no SDL window) and turned into images.
//!
//! This exists so that a user sees what a blob will show on a panel before flashing it,
//! and so that the golden-image tests check the exact pixels the preview binary saves.
//! Three scenes, one per supported color type:
//!
//! | scene | display | color | samples |
//! |---|---|---|---|
//! | `gray8-128x128` | generic 8-bit gray | `Gray8` | 16, scale 1 |
//! | `ssd1306-128x64` | SSD1306 OLED | `BinaryColor`, Bayer-dithered | 8, scale 1 |
//! | `st7789-240x240` | ST7789 TFT | `Rgb565` | 4, scale 4 |
//!
//! Sample `i` of a scene uses seed `seed + i` and, for a conditional generator,
//! label `i % classes`.

use std::vec;
use std::vec::Vec;

use embedded_graphics::pixelcolor::{BinaryColor, Gray8, Rgb565, Rgb888};
use embedded_graphics::prelude::*;
use embedded_graphics_simulator::{BinaryColorTheme, OutputSettingsBuilder, SimulatorDisplay};
use image::RgbImage;
use thiserror::Error;

use crate::Model;
use crate::infer::{GenerateError, Noise};
use crate::render::{FromGray, GrayImage, GridLayout, RenderError, draw_grid};

/// Why a preview could not be rendered.
#[derive(Debug, Error)]
pub enum PreviewError {
    /// The generator failed.
    #[error(transparent)]
    Generate(#[from] GenerateError),
    /// The samples do not form images of the model's size.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The samples do not fit on the display even at scale 1.
    #[error("{count} samples of {width}×{height} do not fit on the {scene} display")]
    DoesNotFit {
        /// Scene name.
        scene: &'static str,
        /// Samples requested.
        count: u32,
        /// Sample width.
        width: u32,
        /// Sample height.
        height: u32,
    },
}

/// One rendered scene.
#[derive(Debug, Clone)]
pub struct Scene {
    /// File stem, e.g. `ssd1306-128x64`.
    pub name: &'static str,
    /// The display contents as RGB (after the simulator's color theme).
    pub image: RgbImage,
}

/// `count` samples: sample `i` from seed `seed + i`, label `i % classes` if conditional.
pub fn samples(model: &Model<'_>, seed: u64, count: usize) -> Result<Vec<Vec<u8>>, GenerateError> {
    (0..count)
        .map(|i| {
            let mut pixels = vec![0u8; model.output_len()];
            let label = model.is_conditional().then(|| i % model.dims().classes);
            model.generate(Noise::Seed(seed.wrapping_add(i as u64)), label, &mut pixels)?;
            Ok(pixels)
        })
        .collect()
}

/// What one scene shows.
struct Spec {
    name: &'static str,
    size: Size,
    count: u32,
    gap: u32,
    theme: BinaryColorTheme,
}

fn render<C>(model: &Model<'_>, spec: Spec, seed: u64, zoom: u32) -> Result<Scene, PreviewError>
where
    C: PixelColor + FromGray + Into<Rgb888> + From<BinaryColor>,
{
    let Spec {
        name: scene,
        size,
        count,
        gap,
        theme,
    } = spec;
    let d = model.dims();
    let (w, h) = (d.width as u32, d.height as u32);
    let layout =
        GridLayout::fit(size, Size::new(w, h), count, gap).ok_or(PreviewError::DoesNotFit {
            scene,
            count,
            width: w,
            height: h,
        })?;
    let pixels = samples(model, seed, count as usize)?;
    let images = pixels
        .iter()
        .map(|p| GrayImage::new(p, w, h))
        .collect::<Result<Vec<_>, _>>()?;
    let mut display = SimulatorDisplay::<C>::new(size);
    let Ok(()) = draw_grid(&mut display, &layout, images);
    let settings = OutputSettingsBuilder::new()
        .scale(zoom.max(1))
        .pixel_spacing(0)
        .theme(theme)
        .build();
    let out = display.to_rgb_output_image(&settings);
    let buffer = out.as_image_buffer();
    let image = RgbImage::from_raw(buffer.width(), buffer.height(), buffer.as_raw().to_vec())
        .unwrap_or_default();
    Ok(Scene { name: scene, image })
}

/// Renders the three scenes (see the module docs) from `seed`, each display pixel
/// `zoom × zoom` image pixels (1 for the golden images).
pub fn render_scenes(model: &Model<'_>, seed: u64, zoom: u32) -> Result<Vec<Scene>, PreviewError> {
    Ok(vec![
        render::<Gray8>(
            model,
            Spec {
                name: "gray8-128x128",
                size: Size::new(128, 128),
                count: 16,
                gap: 4,
                theme: BinaryColorTheme::Default,
            },
            seed,
            zoom,
        )?,
        render::<BinaryColor>(
            model,
            Spec {
                name: "ssd1306-128x64",
                size: Size::new(128, 64),
                count: 8,
                gap: 4,
                theme: BinaryColorTheme::OledBlue,
            },
            seed,
            zoom,
        )?,
        render::<Rgb565>(
            model,
            Spec {
                name: "st7789-240x240",
                size: Size::new(240, 240),
                count: 4,
                gap: 8,
                theme: BinaryColorTheme::Default,
            },
            seed,
            zoom,
        )?,
    ])
}
