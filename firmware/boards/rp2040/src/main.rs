//! Gantry on a Raspberry Pi Pico (RP2040): generates samples with the int8 generator in
//! `firmware` and draws them on a 128×64 SSD1306 OLED over I2C, forever.
//!
//! It alternates two screens every few seconds:
//! - a 4×2 grid of eight samples (seeds `s..s+8`, labels `0..8` for a conditional blob),
//!   generated two at a time with `Model::generate_pair` and drawn into the display's
//!   frame buffer at once, so two 784-byte sample buffers serve them all;
//! - one sample at 2× with its seed, label and the measured generation time.
//!
//! Wiring (I2C0 at 400 kHz): SSD1306 SDA → GP4 (pin 6), SCL → GP5 (pin 7),
//! VCC → 3V3(OUT) (pin 36), GND → GND (pin 38). Display address 0x3C.
//!
//! The blob is `models/mnist-mlp-cond.gtfw`, the shipped conditional MNIST generator
//! (`runtime export-firmware` of `models/mnist-mlp-cond.onnx`); to run another one,
//! point the paths below at its blob and rebuild.
#![no_std]
#![no_main]
#![deny(missing_docs, trivial_numeric_casts, unused_qualifications)]

use core::fmt::Write as _;

use embedded_graphics::mono_font::MonoTextStyle;
use embedded_graphics::mono_font::ascii::FONT_6X10;
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::*;
use embedded_graphics::text::{Baseline, Text};
use embedded_hal::delay::DelayNs;
use firmware::render::{GrayImage, GridLayout, draw_image};
use firmware::{MNIST_PIXELS, Model, Noise};
use hal::fugit::RateExtU32;
use hal::pac;
use panic_halt as _;
use rp2040_hal as hal;
use ssd1306::mode::DisplayConfig;
use ssd1306::prelude::*;
use ssd1306::{I2CDisplayInterface, Ssd1306};

/// Second-stage bootloader for the Pico's W25Q080 flash: the first 256 bytes of flash.
#[unsafe(link_section = ".boot2")]
#[used]
pub static BOOT2_FIRMWARE: [u8; 256] = rp2040_boot2::BOOT_LOADER_W25Q080;

/// The Pico's crystal.
const XTAL_FREQ_HZ: u32 = 12_000_000;

/// Samples on the grid screen.
const GRID: usize = 8;

/// Bytes at a 4-byte boundary: the weight rows then start on word boundaries, which
/// `firmware::dense` reads whole (any other placement works, with a few byte loads
/// per row).
#[repr(C, align(4))]
struct Aligned<const N: usize>([u8; N]);

/// Length of the blob.
const BLOB_LEN: usize = include_bytes!("../../../../models/mnist-mlp-cond.gtfw").len();

/// The weight blob, read in place from flash.
#[cfg(not(feature = "weights-in-ram"))]
static BLOB_STORAGE: Aligned<BLOB_LEN> =
    Aligned(*include_bytes!("../../../../models/mnist-mlp-cond.gtfw"));

/// The weight blob in SRAM: `.data` is copied from flash by cortex-m-rt before `main`.
#[cfg(feature = "weights-in-ram")]
#[unsafe(link_section = ".data")]
static BLOB_STORAGE: Aligned<BLOB_LEN> =
    Aligned(*include_bytes!("../../../../models/mnist-mlp-cond.gtfw"));

static BLOB: &[u8] = &BLOB_STORAGE.0;

#[hal::entry]
fn main() -> ! {
    // Nothing below can be retried on a board without a console: a failure halts
    // (panic-halt) and the screen stays dark, which is the documented symptom.
    let mut pac = pac::Peripherals::take().unwrap();
    let mut watchdog = hal::Watchdog::new(pac.WATCHDOG);
    let clocks = hal::clocks::init_clocks_and_plls(
        XTAL_FREQ_HZ,
        pac.XOSC,
        pac.CLOCKS,
        pac.PLL_SYS,
        pac.PLL_USB,
        &mut pac.RESETS,
        &mut watchdog,
    )
    .ok()
    .unwrap();
    let sio = hal::Sio::new(pac.SIO);
    let pins = hal::gpio::Pins::new(
        pac.IO_BANK0,
        pac.PADS_BANK0,
        sio.gpio_bank0,
        &mut pac.RESETS,
    );
    let sda: hal::gpio::Pin<_, hal::gpio::FunctionI2C, hal::gpio::PullUp> =
        pins.gpio4.reconfigure();
    let scl: hal::gpio::Pin<_, hal::gpio::FunctionI2C, hal::gpio::PullUp> =
        pins.gpio5.reconfigure();
    let i2c = hal::I2C::i2c0(
        pac.I2C0,
        sda,
        scl,
        400.kHz(),
        &mut pac.RESETS,
        &clocks.system_clock,
    );
    let mut timer = hal::Timer::new(pac.TIMER, &mut pac.RESETS, &clocks);

    let interface = I2CDisplayInterface::new(i2c);
    let mut display = Ssd1306::new(interface, DisplaySize128x64, DisplayRotation::Rotate0)
        .into_buffered_graphics_mode();
    display.init().unwrap();

    let text = MonoTextStyle::new(&FONT_6X10, BinaryColor::On);
    let model = match Model::parse(BLOB) {
        Ok(model) => model,
        Err(e) => {
            // Show why the blob was rejected, then stop.
            let mut msg: heapless::String<192> = heapless::String::new();
            let _ = write!(msg, "bad blob:\n{e}");
            let _ =
                Text::with_baseline(&msg, Point::zero(), text, Baseline::Top).draw(&mut display);
            let _ = display.flush();
            loop {
                cortex_m::asm::wfi();
            }
        }
    };
    let classes = model.dims().classes;
    let label_for = |i: usize| (classes > 0).then(|| i % classes);
    let grid = GridLayout::fit(
        display.bounding_box().size,
        Size::new(28, 28),
        GRID as u32,
        4,
    )
    .unwrap();

    // Two samples at a time, in .bss (so `size` counts them): each pair is drawn into the
    // display's frame buffer before the next is generated.
    let samples = cortex_m::singleton!(: [[u8; MNIST_PIXELS]; 2] = [[0; MNIST_PIXELS]; 2]).unwrap();
    let mut seed: u64 = 0;
    loop {
        // Screen 1: a grid of eight samples.
        display.clear_buffer();
        for i in (0..GRID).step_by(2) {
            let noise = |k: usize| (Noise::Seed(seed + k as u64), label_for(k));
            let [a, b] = &mut *samples;
            model
                .generate_pair([noise(i), noise(i + 1)], [a, b])
                .unwrap();
            for (k, pixels) in samples.iter().enumerate() {
                if let Ok(image) = GrayImage::new(pixels, 28, 28) {
                    let origin = grid.cell_origin((i + k) as u32);
                    let _ = draw_image(&mut display, &image, origin, grid.scale);
                }
            }
        }
        let _ = display.flush();
        timer.delay_ms(3000);

        // Screen 2: one sample at 2× with its seed, label and generation time.
        let start = timer.get_counter();
        let label = label_for(0);
        let pixels = &mut samples[0];
        model.generate(Noise::Seed(seed), label, pixels).unwrap();
        let micros = (timer.get_counter() - start).to_micros();
        display.clear_buffer();
        if let Ok(image) = GrayImage::new(pixels, 28, 28) {
            let _ = draw_image(&mut display, &image, Point::new(0, 4), 2);
        }
        let mut caption: heapless::String<64> = heapless::String::new();
        let _ = writeln!(caption, "seed {seed}");
        if let Some(label) = label {
            let _ = writeln!(caption, "label {label}");
        }
        let _ = write!(caption, "{}.{:01} ms", micros / 1000, (micros % 1000) / 100);
        let _ = Text::with_baseline(&caption, Point::new(62, 8), text, Baseline::Top)
            .draw(&mut display);
        let _ = display.flush();
        timer.delay_ms(3000);

        seed = seed.wrapping_add(GRID as u64);
    }
}
