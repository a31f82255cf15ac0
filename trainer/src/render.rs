//! Pictures for people: sample grids of generated images and the loss curve of a run.
//!
//! The loss curve is drawn with `embedded-graphics` (already the project's renderer)
//! because its built-in bitmap fonts label axes without a system font or a bundled
//! TTF, which plotting crates need for any text.

use std::path::Path;

use embedded_graphics::mono_font::MonoTextStyle;
use embedded_graphics::mono_font::ascii::FONT_6X10;
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Line, Polyline, PrimitiveStyle, Rectangle};
use embedded_graphics::text::Text;
use image::{ImageBuffer, Rgb, RgbImage};

use crate::checkpoint::{CheckpointError, write_atomic};
use crate::data::ImageShape;

/// Pixels between grid cells.
const GAP: u32 = 2;

/// Maps a value in [-1, 1] to a byte.
fn to_byte(v: f32) -> u8 {
    ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8
}

/// Lays out `images` (planar, `[n, C, H, W]` in [-1, 1]) in `rows × cols`, each
/// pixel drawn as a `scale × scale` block.
pub fn grid(images: &[f32], shape: ImageShape, rows: usize, cols: usize, scale: u32) -> RgbImage {
    let (h, w) = (shape.height as u32 * scale, shape.width as u32 * scale);
    let mut out: RgbImage = ImageBuffer::from_pixel(
        cols as u32 * (w + GAP) + GAP,
        rows as u32 * (h + GAP) + GAP,
        Rgb([40, 40, 40]),
    );
    let plane = shape.height * shape.width;
    for (n, image) in images
        .chunks_exact(shape.numel())
        .take(rows * cols)
        .enumerate()
    {
        let (r, c) = ((n / cols) as u32, (n % cols) as u32);
        let (x0, y0) = (GAP + c * (w + GAP), GAP + r * (h + GAP));
        for y in 0..shape.height {
            for x in 0..shape.width {
                let i = y * shape.width + x;
                let px = if shape.channels >= 3 {
                    Rgb([
                        to_byte(image[i]),
                        to_byte(image[plane + i]),
                        to_byte(image[2 * plane + i]),
                    ])
                } else {
                    let v = to_byte(image[i]);
                    Rgb([v, v, v])
                };
                for dy in 0..scale {
                    for dx in 0..scale {
                        out.put_pixel(x0 + x as u32 * scale + dx, y0 + y as u32 * scale + dy, px);
                    }
                }
            }
        }
    }
    out
}

/// Encodes `picture` as PNG and writes it atomically.
pub fn save_png(picture: &RgbImage, path: &Path) -> Result<(), CheckpointError> {
    let mut bytes = Vec::new();
    picture
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|e| CheckpointError::Invalid {
            path: path.to_path_buf(),
            problem: format!("cannot encode PNG: {e}"),
        })?;
    write_atomic(path, &bytes)
}

/// An `RgbImage` as an embedded-graphics draw target; pixels outside are dropped.
struct Canvas(RgbImage);

impl OriginDimensions for Canvas {
    fn size(&self) -> Size {
        Size::new(self.0.width(), self.0.height())
    }
}

impl DrawTarget for Canvas {
    type Color = Rgb888;
    type Error = core::convert::Infallible;

    fn draw_iter<I: IntoIterator<Item = Pixel<Rgb888>>>(
        &mut self,
        pixels: I,
    ) -> Result<(), Self::Error> {
        for Pixel(p, color) in pixels {
            if p.x >= 0
                && p.y >= 0
                && (p.x as u32) < self.0.width()
                && (p.y as u32) < self.0.height()
            {
                self.0.put_pixel(
                    p.x as u32,
                    p.y as u32,
                    Rgb([color.r(), color.g(), color.b()]),
                );
            }
        }
        Ok(())
    }
}

/// Round tick values (multiples of 1, 2 or 5 × 10ⁿ) inside `[min, max]`, at most six.
pub fn nice_ticks(min: f32, max: f32) -> Vec<f32> {
    let range = max - min;
    if !(range.is_finite() && range > 0.0) {
        return vec![min];
    }
    let rough = range / 5.0;
    let magnitude = 10f32.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|&s| range / s <= 5.0)
        .unwrap_or(10.0 * magnitude);
    let first = (min / step).ceil() as i64;
    let last = (max / step).floor() as i64;
    (first..=last).map(|i| i as f32 * step).collect()
}

/// A tick value with as many decimals as the axis' span needs (10k steps print as "10k").
fn tick_label(value: f32, span: f32) -> String {
    if span >= 5.0 {
        if value.abs() >= 10_000.0 && value % 1000.0 == 0.0 {
            return format!("{}k", value / 1000.0);
        }
        return format!("{value:.0}");
    }
    let decimals = (-(span / 5.0).log10().floor()).clamp(1.0, 4.0) as usize;
    format!("{value:.decimals$}")
}

/// One named line of a chart.
pub struct Series<'a> {
    /// Legend text.
    pub name: &'a str,
    /// Line colour.
    pub color: Rgb888,
    /// `(step, value)` points in step order.
    pub points: &'a [(f32, f32)],
}

/// Draws `series` against the training step, with labelled axes.
pub fn line_chart(title: &str, series: &[Series<'_>]) -> RgbImage {
    const WIDTH: u32 = 640;
    const HEIGHT: u32 = 360;
    const LEFT: i32 = 56;
    const RIGHT: i32 = 16;
    const TOP: i32 = 28;
    const BOTTOM: i32 = 36;
    let mut canvas = Canvas(ImageBuffer::from_pixel(WIDTH, HEIGHT, Rgb([255, 255, 255])));
    let text = MonoTextStyle::new(&FONT_6X10, Rgb888::BLACK);
    let axis = PrimitiveStyle::with_stroke(Rgb888::new(90, 90, 90), 1);

    let finite = series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(|(x, y)| x.is_finite() && y.is_finite());
    let (mut x_min, mut x_max, mut y_min, mut y_max) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
    for &(x, y) in finite {
        (x_min, x_max, y_min, y_max) = (x_min.min(x), x_max.max(x), y_min.min(y), y_max.max(y));
    }
    if x_min > x_max {
        (x_min, x_max, y_min, y_max) = (0.0, 1.0, 0.0, 1.0);
    }
    if (x_max - x_min).abs() < f32::EPSILON {
        x_max = x_min + 1.0;
    }
    if (y_max - y_min).abs() < f32::EPSILON {
        y_max = y_min + 1.0;
    }
    let (plot_w, plot_h) = (WIDTH as i32 - LEFT - RIGHT, HEIGHT as i32 - TOP - BOTTOM);
    let to_px = |x: f32, y: f32| {
        Point::new(
            LEFT + ((x - x_min) / (x_max - x_min) * plot_w as f32) as i32,
            TOP + plot_h - ((y - y_min) / (y_max - y_min) * plot_h as f32) as i32,
        )
    };

    let _ = Rectangle::new(
        Point::new(LEFT, TOP),
        Size::new(plot_w as u32, plot_h as u32),
    )
    .into_styled(axis)
    .draw(&mut canvas);
    let _ = Text::new(title, Point::new(LEFT, 16), text).draw(&mut canvas);
    for y_value in nice_ticks(y_min, y_max) {
        let p = to_px(x_min, y_value);
        let _ = Line::new(p, p + Point::new(-4, 0))
            .into_styled(axis)
            .draw(&mut canvas);
        let label = tick_label(y_value, y_max - y_min);
        let _ = Text::new(&label, Point::new(4, p.y + 3), text).draw(&mut canvas);
    }
    for x_value in nice_ticks(x_min, x_max) {
        let p = to_px(x_value, y_min);
        let _ = Line::new(p, p + Point::new(0, 4))
            .into_styled(axis)
            .draw(&mut canvas);
        let label = tick_label(x_value, x_max - x_min);
        let half_width = 3 * label.len() as i32;
        let _ = Text::new(&label, Point::new(p.x - half_width, p.y + 14), text).draw(&mut canvas);
    }
    let _ = Text::new(
        "step",
        Point::new(LEFT + plot_w / 2 - 12, HEIGHT as i32 - 6),
        text,
    )
    .draw(&mut canvas);

    for (k, s) in series.iter().enumerate() {
        let points: Vec<Point> = s
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| to_px(x, y))
            .collect();
        let _ = Polyline::new(&points)
            .into_styled(PrimitiveStyle::with_stroke(s.color, 1))
            .draw(&mut canvas);
        let legend = Point::new(WIDTH as i32 - 150, TOP + 12 + 12 * k as i32);
        let _ = Line::new(legend + Point::new(0, -3), legend + Point::new(16, -3))
            .into_styled(PrimitiveStyle::with_stroke(s.color, 2))
            .draw(&mut canvas);
        let _ = Text::new(s.name, legend + Point::new(22, 0), text).draw(&mut canvas);
    }
    canvas.0
}
