//! The run report: four panels a GAN practitioner reads first — the two losses, D(x) and
//! D(G(z)), D's accuracy (and the classifier's on requested classes), FID — with the
//! final sample grid beside them, in one PNG.

use embedded_graphics::pixelcolor::Rgb888;
use image::{Rgb, RgbImage, imageops};

use crate::metrics::MetricsLine;
use crate::render::{self, Series};

const RED: Rgb888 = Rgb888::new(200, 40, 40);
const BLUE: Rgb888 = Rgb888::new(40, 80, 200);
const GREEN: Rgb888 = Rgb888::new(30, 140, 60);

/// The report of a run's `metrics.jsonl` lines, with `samples` (the final grid) on the
/// right when given.
pub fn report(lines: &[MetricsLine], samples: Option<&RgbImage>) -> RgbImage {
    let series = |f: fn(&MetricsLine) -> f32| -> Vec<(f32, f32)> {
        lines.iter().map(|l| (l.step as f32, f(l))).collect()
    };
    let quality = |f: fn(&MetricsLine) -> Option<f64>| -> Vec<(f32, f32)> {
        lines
            .iter()
            .filter_map(|l| f(l).map(|v| (l.step as f32, v as f32)))
            .collect()
    };
    let (d_loss, g_loss) = (series(|l| l.d_loss), series(|l| l.g_loss));
    let (d_real, d_fake) = (series(|l| l.d_real), series(|l| l.d_fake));
    let (acc_real, acc_fake) = (series(|l| l.acc_real), series(|l| l.acc_fake));
    let fid = quality(|l| l.quality.as_ref().map(|q| q.fid));
    let conditional = quality(|l| l.quality.as_ref().and_then(|q| q.conditional_accuracy));

    let mut accuracy = vec![
        Series {
            name: "D on real",
            color: BLUE,
            points: &acc_real,
        },
        Series {
            name: "D on fake",
            color: RED,
            points: &acc_fake,
        },
    ];
    if !conditional.is_empty() {
        accuracy.push(Series {
            name: "class asked (clf)",
            color: GREEN,
            points: &conditional,
        });
    }
    let fid_title = if fid.is_empty() {
        "FID (not evaluated: no classifier)"
    } else {
        "FID (lower is better)"
    };
    let panels = [
        render::line_chart(
            "losses",
            &[
                Series {
                    name: "D loss",
                    color: RED,
                    points: &d_loss,
                },
                Series {
                    name: "G loss",
                    color: BLUE,
                    points: &g_loss,
                },
            ],
        ),
        render::line_chart(
            "D(x) real, D(G(z)) fake",
            &[
                Series {
                    name: "D(x)",
                    color: BLUE,
                    points: &d_real,
                },
                Series {
                    name: "D(G(z))",
                    color: RED,
                    points: &d_fake,
                },
            ],
        ),
        render::line_chart("accuracy", &accuracy),
        render::line_chart(
            fid_title,
            &[Series {
                name: "FID",
                color: GREEN,
                points: &fid,
            }],
        ),
    ];
    let (panel_w, panel_h) = panels[0].dimensions();
    let (grid_w, grid_h) = samples.map_or((0, 0), |s| s.dimensions());
    let margin = if samples.is_some() { 16 } else { 0 };
    let mut canvas = RgbImage::from_pixel(
        2 * panel_w + margin + grid_w,
        (2 * panel_h).max(grid_h),
        Rgb([255, 255, 255]),
    );
    for (i, panel) in panels.iter().enumerate() {
        let (x, y) = ((i as u32 % 2) * panel_w, (i as u32 / 2) * panel_h);
        imageops::overlay(&mut canvas, panel, i64::from(x), i64::from(y));
    }
    if let Some(samples) = samples {
        imageops::overlay(&mut canvas, samples, i64::from(2 * panel_w + margin), 0);
    }
    canvas
}
