//! Drawing generated samples onto any `embedded-graphics` display.
//!
//! This exists so that one sample, or a grid of them, lands on whatever panel a user
//! has: 8-bit gray, a 1-bit SSD1306 (with 4×4 ordered dithering so gray levels survive),
//! or an RGB565 ST7789. Images are scaled by whole numbers; whatever falls outside the
//! target is dropped before it is drawn, so no position or scale can panic.

use embedded_graphics_core::draw_target::DrawTarget;
use embedded_graphics_core::geometry::{Point, Size};
use embedded_graphics_core::pixelcolor::{BinaryColor, Gray8, PixelColor, Rgb565, Rgb888};
use embedded_graphics_core::primitives::Rectangle;
use thiserror::Error;

/// The 4×4 Bayer threshold matrix (values 0..16), indexed `[y % 4][x % 4]`.
pub const BAYER_4X4: [[u8; 4]; 4] = [[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]];

/// Ordered dithering of a gray level at a screen position: on iff
/// `level >= 16 * BAYER_4X4[y % 4][x % 4] + 8`. Level 0 is always off, 255 always on,
/// 128 lights half the pixels.
pub fn dither(level: u8, at: Point) -> bool {
    let t = BAYER_4X4[(at.y & 3) as usize][(at.x & 3) as usize];
    u16::from(level) >= 16 * u16::from(t) + 8
}

/// Colors a gray level can be drawn in. `at` is the pixel's screen position, which
/// 1-bit targets use for ordered dithering.
pub trait FromGray: PixelColor {
    /// The color for gray `level` (0 black .. 255 white) at screen position `at`.
    fn from_gray(level: u8, at: Point) -> Self;
}

impl FromGray for Gray8 {
    fn from_gray(level: u8, _at: Point) -> Self {
        Gray8::new(level)
    }
}

impl FromGray for Rgb565 {
    fn from_gray(level: u8, _at: Point) -> Self {
        Rgb565::new(level >> 3, level >> 2, level >> 3)
    }
}

impl FromGray for Rgb888 {
    fn from_gray(level: u8, _at: Point) -> Self {
        Rgb888::new(level, level, level)
    }
}

impl FromGray for BinaryColor {
    fn from_gray(level: u8, at: Point) -> Self {
        BinaryColor::from(dither(level, at))
    }
}

/// Why an image view could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RenderError {
    /// The pixel count is not `width * height`.
    #[error("{len} pixels cannot form a {width}×{height} image")]
    Shape {
        /// Pixels given.
        len: usize,
        /// Requested width.
        width: u32,
        /// Requested height.
        height: u32,
    },
}

/// A borrowed 8-bit grayscale image, row-major, 0 = black (what
/// [`crate::Model::generate`] writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrayImage<'a> {
    pixels: &'a [u8],
    width: u32,
    height: u32,
}

impl<'a> GrayImage<'a> {
    /// Views `pixels` as a `width × height` image.
    pub fn new(pixels: &'a [u8], width: u32, height: u32) -> Result<Self, RenderError> {
        let len_ok =
            usize::try_from(u64::from(width) * u64::from(height)).is_ok_and(|n| n == pixels.len());
        if !len_ok {
            return Err(RenderError::Shape {
                len: pixels.len(),
                width,
                height,
            });
        }
        Ok(Self {
            pixels,
            width,
            height,
        })
    }

    /// The image size in pixels (unscaled).
    pub const fn size(&self) -> Size {
        Size::new(self.width, self.height)
    }

    /// The gray level at `(x, y)`, 0 outside the image.
    pub fn pixel(&self, x: u32, y: u32) -> u8 {
        if x >= self.width || y >= self.height {
            return 0;
        }
        let i = u64::from(y) * u64::from(self.width) + u64::from(x);
        usize::try_from(i)
            .ok()
            .and_then(|i| self.pixels.get(i))
            .copied()
            .unwrap_or(0)
    }
}

/// The part of `[start, start + len)` inside `[lo, lo + extent)`, as `(start, end)`.
fn clip(start: i64, len: i64, lo: i64, extent: i64) -> Option<(i64, i64)> {
    let a = start.max(lo);
    let b = (start + len).min(lo + extent);
    (a < b).then_some((a, b))
}

/// Draws `image` with its top-left corner at `top_left`, each pixel a `scale × scale`
/// block. Pixels outside the target are dropped; `scale == 0` draws nothing.
pub fn draw_image<D>(
    target: &mut D,
    image: &GrayImage<'_>,
    top_left: Point,
    scale: u32,
) -> Result<(), D::Error>
where
    D: DrawTarget,
    D::Color: FromGray,
{
    if scale == 0 {
        return Ok(());
    }
    let bounds = target.bounding_box();
    let (x0, y0, s) = (
        i64::from(top_left.x),
        i64::from(top_left.y),
        i64::from(scale),
    );
    let w = i64::from(image.width) * s;
    let h = i64::from(image.height) * s;
    let bx = i64::from(bounds.top_left.x);
    let by = i64::from(bounds.top_left.y);
    let Some((vx0, vx1)) = clip(x0, w, bx, i64::from(bounds.size.width)) else {
        return Ok(());
    };
    let Some((vy0, vy1)) = clip(y0, h, by, i64::from(bounds.size.height)) else {
        return Ok(());
    };
    // All four lie within the target's bounds, which are i32 points and u32 sizes.
    let visible = Rectangle::new(
        Point::new(vx0 as i32, vy0 as i32),
        Size::new((vx1 - vx0) as u32, (vy1 - vy0) as u32),
    );
    let colors = (vy0..vy1).flat_map(move |y| {
        (vx0..vx1).map(move |x| {
            // 0 <= x - x0 < width * scale, so the quotient is a column of the image.
            let level = image.pixel(((x - x0) / s) as u32, ((y - y0) / s) as u32);
            D::Color::from_gray(level, Point::new(x as i32, y as i32))
        })
    });
    target.fill_contiguous(&visible, colors)
}

/// Where the cells of a grid of equally sized images go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridLayout {
    /// Top-left corner of the first cell.
    pub top_left: Point,
    /// Cells per row (at least 1 is used).
    pub columns: u32,
    /// Integer scale of every image.
    pub scale: u32,
    /// Blank pixels between cells, horizontally and vertically.
    pub gap: u32,
    /// Unscaled image size.
    pub cell: Size,
}

impl GridLayout {
    /// The largest-scale grid of `count` images of size `cell` that fits in an `area`
    /// with `gap` pixels between cells, centred in it. `None` if not even scale 1 fits.
    pub fn fit(area: Size, cell: Size, count: u32, gap: u32) -> Option<Self> {
        if count == 0 || cell.width == 0 || cell.height == 0 {
            return None;
        }
        let mut best: Option<(u32, u32)> = None; // (scale, columns)
        for columns in 1..=count {
            let rows = count.div_ceil(columns);
            let free_w = i64::from(area.width) - i64::from(gap) * i64::from(columns - 1);
            let free_h = i64::from(area.height) - i64::from(gap) * i64::from(rows - 1);
            if free_w <= 0 || free_h <= 0 {
                continue;
            }
            let sx = free_w / (i64::from(cell.width) * i64::from(columns));
            let sy = free_h / (i64::from(cell.height) * i64::from(rows));
            let scale = u32::try_from(sx.min(sy)).unwrap_or(u32::MAX);
            if scale > 0 && best.is_none_or(|(b, _)| scale > b) {
                best = Some((scale, columns));
            }
        }
        let (scale, columns) = best?;
        let mut layout = Self {
            top_left: Point::zero(),
            columns,
            scale,
            gap,
            cell,
        };
        let used = layout.size(count);
        let offset = |total: u32, used: u32| i32::try_from((total - used) / 2).unwrap_or(0);
        layout.top_left = Point::new(
            offset(area.width, used.width),
            offset(area.height, used.height),
        );
        Some(layout)
    }

    /// The scaled cell pitch (cell plus gap) as `(dx, dy)`.
    fn pitch(&self) -> (i64, i64) {
        let s = i64::from(self.scale);
        (
            i64::from(self.cell.width) * s + i64::from(self.gap),
            i64::from(self.cell.height) * s + i64::from(self.gap),
        )
    }

    /// Top-left corner of cell `index` (row-major), saturating far off-screen.
    pub fn cell_origin(&self, index: u32) -> Point {
        let columns = self.columns.max(1);
        let (dx, dy) = self.pitch();
        let x = i64::from(self.top_left.x) + i64::from(index % columns) * dx;
        let y = i64::from(self.top_left.y) + i64::from(index / columns) * dy;
        let sat = |v: i64| v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        Point::new(sat(x), sat(y))
    }

    /// The pixel size of a grid holding `count` cells.
    pub fn size(&self, count: u32) -> Size {
        if count == 0 {
            return Size::zero();
        }
        let columns = self.columns.max(1).min(count);
        let rows = count.div_ceil(self.columns.max(1));
        let (dx, dy) = self.pitch();
        let g = i64::from(self.gap);
        let sat = |v: i64| v.clamp(0, i64::from(u32::MAX)) as u32;
        Size::new(
            sat(dx * i64::from(columns) - g),
            sat(dy * i64::from(rows) - g),
        )
    }
}

/// Draws `images` into the cells of `layout`, in row-major order.
pub fn draw_grid<'a, D, I>(target: &mut D, layout: &GridLayout, images: I) -> Result<(), D::Error>
where
    D: DrawTarget,
    D::Color: FromGray,
    I: IntoIterator<Item = GrayImage<'a>>,
{
    for (index, image) in (0u32..).zip(images) {
        draw_image(target, &image, layout.cell_origin(index), layout.scale)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::convert::Infallible;
    use embedded_graphics_core::Pixel;
    use embedded_graphics_core::geometry::Dimensions;
    use embedded_graphics_core::pixelcolor::GrayColor;

    /// A 16×8 Gray8 framebuffer that fails the test on any out-of-bounds pixel.
    struct Strict {
        buf: [[u8; 16]; 8],
        drawn: usize,
    }

    impl Dimensions for Strict {
        fn bounding_box(&self) -> Rectangle {
            Rectangle::new(Point::zero(), Size::new(16, 8))
        }
    }

    impl DrawTarget for Strict {
        type Color = Gray8;
        type Error = Infallible;
        fn draw_iter<I: IntoIterator<Item = Pixel<Gray8>>>(
            &mut self,
            it: I,
        ) -> Result<(), Infallible> {
            for Pixel(p, c) in it {
                assert!(
                    (0..16).contains(&p.x) && (0..8).contains(&p.y),
                    "out of bounds {p:?}"
                );
                self.buf[p.y as usize][p.x as usize] = c.luma();
                self.drawn += 1;
            }
            Ok(())
        }
    }

    fn strict() -> Strict {
        Strict {
            buf: [[0; 16]; 8],
            drawn: 0,
        }
    }

    #[test]
    fn scaled_image_lands_where_expected() {
        let px = [10u8, 20, 30, 40];
        let img = GrayImage::new(&px, 2, 2).unwrap();
        let mut t = strict();
        draw_image(&mut t, &img, Point::new(1, 1), 2).unwrap();
        assert_eq!(t.drawn, 16);
        assert_eq!(t.buf[1][1..5], [10, 10, 20, 20]);
        assert_eq!(t.buf[4][1..5], [30, 30, 40, 40]);
        assert_eq!(t.buf[0][1], 0);
    }

    #[test]
    fn off_screen_and_extreme_positions_never_panic() {
        let px = [255u8; 28 * 28];
        let img = GrayImage::new(&px, 28, 28).unwrap();
        let spots = [
            Point::new(-20, -20),
            Point::new(10, 5),
            Point::new(i32::MAX, i32::MAX),
            Point::new(i32::MIN, i32::MIN),
            Point::new(i32::MIN, 0),
            Point::new(-27, 7),
        ];
        for p in spots {
            for scale in [0, 1, 3, u32::MAX] {
                let mut t = strict();
                draw_image(&mut t, &img, p, scale).unwrap();
                assert!(t.drawn <= 16 * 8);
            }
        }
        let mut t = strict();
        draw_image(&mut t, &img, Point::new(-27, -27), 1).unwrap();
        assert_eq!(t.drawn, 1);
        assert_eq!(t.buf[0][0], 255);
    }

    #[test]
    fn dithering_keeps_the_mean_level() {
        let count = |level| {
            let mut on = 0;
            for y in 0..4 {
                for x in 0..4 {
                    on += u32::from(dither(level, Point::new(x, y)));
                }
            }
            on
        };
        assert_eq!(count(0), 0);
        assert_eq!(count(255), 16);
        assert_eq!(count(128), 8);
        assert_eq!(count(64), 4);
        // Negative coordinates tile the same pattern.
        assert_eq!(
            dither(100, Point::new(-4, -8)),
            dither(100, Point::new(0, 0))
        );
        for level in 0..=255u8 {
            assert!(count(level) <= count(level.saturating_add(1)));
        }
    }

    #[test]
    fn grid_fits_the_target_displays() {
        let cell = Size::new(28, 28);
        // SSD1306: 8 samples at scale 1 in a 4×2 grid.
        let g = GridLayout::fit(Size::new(128, 64), cell, 8, 4).unwrap();
        assert_eq!((g.columns, g.scale), (4, 1));
        assert_eq!(g.size(8), Size::new(124, 60));
        assert_eq!(g.top_left, Point::new(2, 2));
        // ST7789: 4 samples at scale 4 in a 2×2 grid.
        let g = GridLayout::fit(Size::new(240, 240), cell, 4, 8).unwrap();
        assert_eq!((g.columns, g.scale), (2, 4));
        assert_eq!(g.cell_origin(3), Point::new(4 + 120, 4 + 120));
        // One sample on the SSD1306 goes to scale 2.
        assert_eq!(
            GridLayout::fit(Size::new(128, 64), cell, 1, 0)
                .unwrap()
                .scale,
            2
        );
        assert!(GridLayout::fit(Size::new(20, 20), cell, 1, 0).is_none());
        assert!(GridLayout::fit(Size::new(128, 64), cell, 0, 0).is_none());
    }

    #[test]
    fn image_shape_is_checked() {
        assert!(GrayImage::new(&[0; 10], 3, 3).is_err());
        assert!(GrayImage::new(&[0; 9], 3, 3).is_ok());
        assert!(GrayImage::new(&[], u32::MAX, u32::MAX).is_err());
        let img = GrayImage::new(&[1, 2, 3, 4], 2, 2).unwrap();
        assert_eq!(img.pixel(5, 0), 0);
    }
}
