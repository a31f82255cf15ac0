//! Inference: the firmware against an independent reference of the documented integer
//! arithmetic, the int8 output against the f32 generator, the committed test blob, and
//! the API's error paths.

use firmware::blob::{ModelParams, write};
use firmware::kernels::{QuantizedMultiplier, code_to_pixel};
use firmware::noise::latent;
use firmware::quantize::{Calibration, quantize};
use firmware::testmodel::{calibration, conditional_blob, float_model, unconditional_blob};
use firmware::{GenerateError, MAX_INPUT, Model, Noise};

/// Requantization straight from the docs, in 128-bit arithmetic.
fn requant(acc: i64, m: QuantizedMultiplier, zp: i8) -> i8 {
    let acc = acc as i32 as i128; // int32 wrapping accumulator
    let p = acc * i128::from(m.multiplier());
    let d = 1i128 << m.shift();
    let mut q = p / d;
    if 2 * (p % d).abs() >= d {
        q += p.signum();
    }
    (q + i128::from(zp)).clamp(-128, 127) as i8
}

/// The whole forward pass from the parameters (not the blob), unfused and unoptimised.
fn reference(p: &ModelParams, z: &[f32], label: Option<usize>) -> Vec<u8> {
    let d = p.dims;
    let mut x: Vec<i8> = z
        .iter()
        .map(|&v| {
            ((v / p.input.scale).round() as i32 + i32::from(p.input.zero_point)).clamp(-128, 127)
                as i8
        })
        .collect();
    if let Some(l) = label {
        x.extend_from_slice(&p.embedding[l * d.embed_dim..(l + 1) * d.embed_dim]);
    }
    let dense = |input: &[i8], zp: i8, w: &[i8], b: i32| -> i64 {
        input
            .iter()
            .zip(w)
            .map(|(&a, &w)| (i64::from(a) - i64::from(zp)) * i64::from(w))
            .sum::<i64>()
            + i64::from(b)
    };
    let h: Vec<i8> = (0..d.hidden)
        .map(|c| {
            let acc = dense(
                &x,
                p.input.zero_point,
                &p.hidden.weights[c * x.len()..(c + 1) * x.len()],
                p.hidden.bias[c],
            );
            let m = if acc >= 0 {
                p.hidden.multipliers[c]
            } else {
                p.hidden_negative[c]
            };
            requant(acc, m, p.hidden_quant.zero_point)
        })
        .collect();
    (0..d.output())
        .map(|c| {
            let acc = dense(
                &h,
                p.hidden_quant.zero_point,
                &p.output.weights[c * d.hidden..(c + 1) * d.hidden],
                p.output.bias[c],
            );
            let t = requant(acc, p.output.multipliers[c], p.pretanh_quant.zero_point);
            code_to_pixel(p.tanh_lut[(i32::from(t) + 128) as usize])
        })
        .collect()
}

#[test]
fn firmware_equals_the_documented_arithmetic() {
    for conditional in [false, true] {
        let m = float_model(conditional);
        let p = quantize(&m, &calibration(&m)).unwrap();
        let blob = write(&p).unwrap();
        let model = Model::parse(&blob).unwrap();
        let mut z = vec![0f32; m.z_dim];
        let mut pixels = vec![0u8; model.output_len()];
        for seed in 0..20u64 {
            latent(seed, &mut z);
            let label = conditional.then_some(seed as usize % 10);
            model
                .generate(Noise::Seed(seed), label, &mut pixels)
                .unwrap();
            assert_eq!(
                pixels,
                reference(&p, &z, label),
                "seed {seed} conditional {conditional}"
            );
        }
    }
}

#[test]
fn pairs_equal_two_single_samples() {
    for conditional in [false, true] {
        let m = float_model(conditional);
        let blob = write(&quantize(&m, &calibration(&m)).unwrap()).unwrap();
        let model = Model::parse(&blob).unwrap();
        let label = |seed: u64| conditional.then_some(seed as usize % 10);
        let mut z = vec![0f32; m.z_dim];
        latent(99, &mut z);
        for seed in 0..12u64 {
            // Pair a seeded sample with a float one, both orders.
            let samples = [
                (Noise::Seed(seed), label(seed)),
                (Noise::Float(&z), label(seed + 3)),
            ];
            for [first, second] in [samples, [samples[1], samples[0]]] {
                let (mut a, mut b) = (vec![0u8; 784], vec![0u8; 784]);
                model
                    .generate_pair([first, second], [&mut a, &mut b])
                    .unwrap();
                let mut want = vec![0u8; 784];
                model.generate(first.0, first.1, &mut want).unwrap();
                assert_eq!(a, want, "first of the pair, seed {seed}");
                model.generate(second.0, second.1, &mut want).unwrap();
                assert_eq!(b, want, "second of the pair, seed {seed}");
            }
        }
    }
}

#[test]
fn pair_checks_both_samples_before_generating() {
    let blob = conditional_blob().unwrap();
    let model = Model::parse(&blob).unwrap();
    let (mut a, mut b) = (vec![7u8; 784], vec![7u8; 784]);
    let bad_label = model.generate_pair(
        [(Noise::Seed(1), Some(2)), (Noise::Seed(2), Some(10))],
        [&mut a, &mut b],
    );
    assert_eq!(
        bad_label,
        Err(GenerateError::LabelOutOfRange {
            label: 10,
            classes: 10
        })
    );
    let short_z = model.generate_pair(
        [
            (Noise::Float(&[0.0; 3]), Some(1)),
            (Noise::Seed(2), Some(1)),
        ],
        [&mut a, &mut b],
    );
    assert_eq!(
        short_z,
        Err(GenerateError::NoiseSize {
            expected: 100,
            found: 3
        })
    );
    assert!(
        a.iter().chain(&b).all(|&p| p == 7),
        "nothing generated on error"
    );
    let mut short = vec![0u8; 10];
    let bad_pixels = model.generate_pair(
        [(Noise::Seed(1), Some(1)), (Noise::Seed(2), Some(1))],
        [&mut a, &mut short],
    );
    assert_eq!(
        bad_pixels,
        Err(GenerateError::OutputSize {
            expected: 784,
            found: 10
        })
    );
}

#[test]
fn int8_output_stays_close_to_f32() {
    let m = float_model(true);
    let blob = conditional_blob().unwrap();
    let model = Model::parse(&blob).unwrap();
    let mut z = vec![0f32; m.z_dim];
    let mut pixels = vec![0u8; model.output_len()];
    let (mut sum, mut max, mut n) = (0f64, 0f64, 0usize);
    // Seeds outside the calibration set (which starts at 1_000_000).
    for seed in 0..100u64 {
        latent(seed, &mut z);
        let label = Some(seed as usize % 10);
        let f = m.forward(&z, label).unwrap();
        model
            .generate(Noise::Float(&z), label, &mut pixels)
            .unwrap();
        for (&q, &v) in pixels.iter().zip(&f) {
            let e = (f64::from(q) - (f64::from(v) + 1.0) * 127.5).abs();
            sum += e;
            max = max.max(e);
            n += 1;
        }
    }
    let mean = sum / n as f64;
    println!("int8 vs f32 on 100 samples: mean |error| {mean:.3} gray levels, max {max:.3}");
    // Documented bound (firmware report): mean under 2 gray levels, max under 32.
    assert!(mean < 2.0, "mean abs error {mean} gray levels");
    assert!(max < 32.0, "max abs error {max} gray levels");
}

#[test]
fn committed_blob_is_reproducible() {
    let committed = include_bytes!("../assets/test-mlp-cond.gtfw");
    let fresh = conditional_blob().unwrap();
    assert!(
        committed[..] == fresh[..],
        "firmware/assets/test-mlp-cond.gtfw is stale: regenerate it with \
         `cargo run --release -p firmware --example make_test_blob` (and the goldens)"
    );
}

#[test]
fn noise_sources_agree() {
    let blob = unconditional_blob().unwrap();
    let model = Model::parse(&blob).unwrap();
    let mut z = vec![0f32; 100];
    latent(77, &mut z);
    let mut a = vec![0u8; 784];
    let mut b = vec![0u8; 784];
    let mut c = vec![0u8; 784];
    model.generate(Noise::Seed(77), None, &mut a).unwrap();
    model.generate(Noise::Float(&z), None, &mut b).unwrap();
    let q = model.input_quant();
    let codes: Vec<i8> = z.iter().map(|&v| q.quantize(v)).collect();
    model.generate(Noise::Codes(&codes), None, &mut c).unwrap();
    assert_eq!(a, b);
    assert_eq!(a, c);
    let mut buf = [0i8; MAX_INPUT];
    let n = model.input_codes(Noise::Seed(77), None, &mut buf).unwrap();
    assert_eq!(&buf[..n], &codes[..]);
    // Another seed gives another image.
    model.generate(Noise::Seed(78), None, &mut b).unwrap();
    assert_ne!(a, b);
}

#[test]
fn labels_change_the_sample() {
    let blob = conditional_blob().unwrap();
    let model = Model::parse(&blob).unwrap();
    let mut images = Vec::new();
    for label in 0..10 {
        let mut p = vec![0u8; 784];
        model.generate(Noise::Seed(5), Some(label), &mut p).unwrap();
        images.push(p);
    }
    for i in 0..10 {
        for j in i + 1..10 {
            assert_ne!(images[i], images[j], "labels {i} and {j}");
        }
    }
}

#[test]
fn misuse_is_reported() {
    let cond = conditional_blob().unwrap();
    let cond = Model::parse(&cond).unwrap();
    let uncond = unconditional_blob().unwrap();
    let uncond = Model::parse(&uncond).unwrap();
    let mut px = vec![0u8; 784];
    assert_eq!(
        cond.generate(Noise::Seed(0), None, &mut px),
        Err(GenerateError::LabelRequired { classes: 10 })
    );
    assert_eq!(
        cond.generate(Noise::Seed(0), Some(10), &mut px),
        Err(GenerateError::LabelOutOfRange {
            label: 10,
            classes: 10
        })
    );
    assert_eq!(
        uncond.generate(Noise::Seed(0), Some(1), &mut px),
        Err(GenerateError::LabelNotSupported)
    );
    assert_eq!(
        uncond.generate(Noise::Seed(0), None, &mut px[..783]),
        Err(GenerateError::OutputSize {
            expected: 784,
            found: 783
        })
    );
    assert_eq!(
        uncond.generate(Noise::Float(&[0.0; 99]), None, &mut px),
        Err(GenerateError::NoiseSize {
            expected: 100,
            found: 99
        })
    );
    assert_eq!(
        uncond.generate(Noise::Codes(&[0; 101]), None, &mut px),
        Err(GenerateError::NoiseSize {
            expected: 100,
            found: 101
        })
    );
    let mut h = [0i8; 5];
    assert!(uncond.hidden_layer(&[0; 100], &mut h).is_err());
    assert!(uncond.output_layer(&[0; 128], &mut px[..10]).is_err());
}

#[test]
fn quantizer_rejects_bad_models() {
    let mut m = float_model(false);
    m.w1.pop();
    assert!(quantize(&m, &Calibration::seeded(&float_model(false), 4, 0)).is_err());
    let mut m = float_model(false);
    m.b2[3] = f32::NAN;
    let err = quantize(&m, &Calibration::seeded(&m, 4, 0)).unwrap_err();
    assert!(err.to_string().contains("b2"), "{err}");
    let m = float_model(true);
    let cal = Calibration::from_samples(100, vec![0.0; 100], vec![None]).unwrap();
    let err = quantize(&m, &cal).unwrap_err();
    assert!(err.to_string().contains("label is required"), "{err}");
    assert!(Calibration::from_samples(100, vec![], vec![]).is_err());
    assert!(Calibration::from_samples(100, vec![0.0; 99], vec![None]).is_err());
    let mut m = float_model(false);
    m.leaky_alpha = -0.5;
    assert!(quantize(&m, &Calibration::seeded(&m, 4, 0)).is_err());
}
