//! The blob format: round trips, every rejection path, and fuzzing of the parser (random
//! bytes and mutated valid blobs, with and without a repaired checksum): it must never
//! panic, and whatever it accepts must generate without panicking.

use firmware::blob::{BlobError, CRC_LEN, CRC32, Dims, HEADER_LEN, ModelParams, WriteError, write};
use firmware::quantize::{Calibration, Embedding, FloatMlp, quantize};
use firmware::{Model, Noise};
use proptest::prelude::*;

/// A tiny conditional generator (blob of a few hundred bytes) for fast fuzzing.
fn tiny_params() -> ModelParams {
    let w = |n: usize, k: f32| {
        (0..n)
            .map(|i| ((i as f32 * 0.37 + k).sin()) * 0.8)
            .collect::<Vec<_>>()
    };
    let m = FloatMlp {
        z_dim: 4,
        hidden: 3,
        width: 2,
        height: 3,
        w1: w(6 * 3, 0.1),
        b1: w(3, 0.2),
        w2: w(3 * 6, 0.3),
        b2: w(6, 0.4),
        leaky_alpha: 0.2,
        embedding: Some(Embedding {
            classes: 2,
            dim: 2,
            table: w(4, 0.5),
        }),
    };
    quantize(&m, &Calibration::seeded(&m, 32, 9)).unwrap()
}

fn tiny_blob() -> Vec<u8> {
    write(&tiny_params()).unwrap()
}

fn fix_crc(blob: &mut [u8]) {
    if blob.len() >= CRC_LEN {
        let n = blob.len() - CRC_LEN;
        let crc = CRC32.checksum(&blob[..n]);
        blob[n..].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Whatever parses must generate for every label without panicking.
fn exercise(blob: &[u8]) {
    if let Ok(model) = Model::parse(blob) {
        let mut pixels = vec![0u8; model.output_len()];
        let labels: Vec<Option<usize>> = if model.is_conditional() {
            (0..model.dims().classes.min(4)).map(Some).collect()
        } else {
            vec![None]
        };
        for label in labels {
            model.generate(Noise::Seed(1), label, &mut pixels).unwrap();
        }
    }
}

#[test]
fn round_trip_preserves_every_field() {
    let p = tiny_params();
    let blob = write(&p).unwrap();
    assert_eq!(blob.len(), p.dims.blob_len());
    let m = Model::parse(&blob).unwrap();
    assert_eq!(m.dims(), p.dims);
    assert_eq!(m.input_quant(), p.input);
    assert_eq!(m.hidden_quant(), p.hidden_quant);
    assert_eq!(m.pretanh_quant(), p.pretanh_quant);
    assert_eq!(m.leaky_alpha(), p.leaky_alpha);
    for (w, rows, want) in [
        (m.hidden_weights(), p.dims.hidden, &p.hidden.weights),
        (m.output_weights(), p.dims.output(), &p.output.weights),
    ] {
        assert_eq!((w.rows(), w.inputs()), (rows, want.len() / rows));
        let got: Vec<i8> = (0..rows).flat_map(|r| w.row(r)).collect();
        assert_eq!(&got, want);
        assert_eq!(
            w.bytes().len(),
            rows.div_ceil(4) * 4 * w.inputs(),
            "whole groups"
        );
    }
    // The biases come back with the input zero point folded in.
    let folded = |b: i32, row: &[i8], zp: i8| {
        let sum: i32 = row.iter().map(|&w| i32::from(w)).sum();
        b.wrapping_sub((i32::from(zp) + 128) * sum)
    };
    let n = p.dims.input();
    let lut: Vec<i8> = m.tanh_table().iter().map(|b| *b as i8).collect();
    assert_eq!(lut, p.tanh_lut);
    for c in 0..p.dims.hidden {
        let row = &p.hidden.weights[c * n..(c + 1) * n];
        assert_eq!(
            m.hidden_bias(c),
            folded(p.hidden.bias[c], row, p.input.zero_point)
        );
        assert_eq!(
            m.hidden_multipliers(c),
            (p.hidden.multipliers[c], p.hidden_negative[c])
        );
    }
    for c in 0..p.dims.output() {
        let h = p.dims.hidden;
        let row = &p.output.weights[c * h..(c + 1) * h];
        assert_eq!(
            m.output_bias(c),
            folded(p.output.bias[c], row, p.hidden_quant.zero_point)
        );
        assert_eq!(m.output_multiplier(c), p.output.multipliers[c]);
    }
    assert_eq!(m.embedding_row(1).unwrap(), &p.embedding[2..4]);
    assert!(m.embedding_row(2).is_none());
    assert!(m.embedding_row(usize::MAX).is_none());
}

#[test]
fn committed_test_blob_parses() {
    let blob = include_bytes!("../assets/test-mlp-cond.gtfw");
    let m = Model::parse(blob).unwrap();
    assert_eq!(
        m.dims(),
        Dims {
            z_dim: 100,
            embed_dim: 10,
            classes: 10,
            hidden: 128,
            width: 28,
            height: 28
        }
    );
    assert_eq!(m.dims().macs(), 110 * 128 + 128 * 784);
}

#[test]
fn rejections_are_typed() {
    let good = tiny_blob();
    let parse = |b: &[u8]| Model::parse(b).err();

    assert_eq!(parse(&[]), Some(BlobError::TooShort { len: 0 }));
    assert_eq!(parse(&good[..10]), Some(BlobError::TooShort { len: 10 }));
    assert!(matches!(
        parse(b"PK\x03\x04 zip file"),
        Some(BlobError::BadMagic { .. })
    ));

    let mut b = good.clone();
    b[0] = b'X';
    assert!(matches!(parse(&b), Some(BlobError::BadMagic { .. })));

    for version in [1, 3] {
        let mut b = good.clone();
        b[4] = version;
        assert_eq!(
            parse(&b),
            Some(BlobError::UnsupportedVersion {
                found: u16::from(version)
            })
        );
    }

    let mut b = good.clone();
    b[6] = 65;
    assert_eq!(parse(&b), Some(BlobError::BadHeaderLength { found: 65 }));

    let mut b = good.clone();
    b[50] = 1;
    assert_eq!(
        parse(&b),
        Some(BlobError::ReservedNotZero {
            offset: 50,
            value: 1
        })
    );

    let mut b = good.clone();
    b[8] = 0; // z_dim = 0
    b[9] = 0;
    assert!(matches!(
        parse(&b),
        Some(BlobError::BadDimension { field: "z_dim", .. })
    ));

    let mut b = good.clone();
    b[14..16].copy_from_slice(&600u16.to_le_bytes()); // hidden > MAX_HIDDEN
    assert!(matches!(
        parse(&b),
        Some(BlobError::BadDimension {
            field: "hidden",
            ..
        })
    ));

    let mut b = good.clone();
    b[12] = 0; // classes = 0 with embed_dim = 2
    assert!(matches!(
        parse(&b),
        Some(BlobError::BadDimension {
            field: "classes",
            ..
        })
    ));

    let n = good.len();
    assert_eq!(
        parse(&good[..n - 1]),
        Some(BlobError::Truncated {
            expected: n,
            found: n - 1
        })
    );
    let mut b = good.clone();
    b.push(0);
    assert_eq!(
        parse(&b),
        Some(BlobError::TrailingBytes {
            expected: n,
            extra: 1
        })
    );

    let mut b = good.clone();
    b[HEADER_LEN + 3] ^= 0x40; // one bit of the tanh table
    assert!(matches!(
        parse(&b),
        Some(BlobError::ChecksumMismatch { .. })
    ));

    let mut b = good.clone();
    b[20..24].copy_from_slice(&(-1.0f32).to_le_bytes());
    fix_crc(&mut b);
    assert!(matches!(
        parse(&b),
        Some(BlobError::BadScale { field: "input", .. })
    ));

    let mut b = good.clone();
    b[32..36].copy_from_slice(&f32::NAN.to_le_bytes());
    fix_crc(&mut b);
    assert!(matches!(parse(&b), Some(BlobError::BadAlpha(_))));

    // First hidden shift (after LUT, 2×2 embedding, 3 biases, 3 multipliers) set to 0.
    let mut b = good.clone();
    b[HEADER_LEN + 256 + 4 + 12 + 12] = 0;
    fix_crc(&mut b);
    assert!(matches!(
        parse(&b),
        Some(BlobError::BadMultiplier {
            channel: 0,
            shift: 0,
            ..
        })
    ));

    // Every strict prefix is rejected.
    for len in 0..n {
        assert!(Model::parse(&good[..len]).is_err(), "prefix {len} accepted");
    }
}

#[test]
fn errors_read_well() {
    let msg = Model::parse(&[0u8; 8]).unwrap_err().to_string();
    assert!(msg.contains("bad magic"), "{msg}");
    let mut b = tiny_blob();
    b[4] = 9;
    let msg = Model::parse(&b).unwrap_err().to_string();
    assert!(
        msg.contains("version 9") && msg.contains("export-firmware"),
        "{msg}"
    );
}

#[test]
fn writer_rejects_inconsistent_params() {
    let mut p = tiny_params();
    p.hidden.bias.pop();
    assert!(matches!(
        write(&p),
        Err(WriteError::Length {
            section: "hidden bias",
            ..
        })
    ));
    let mut p = tiny_params();
    p.output.weights.push(0);
    assert!(matches!(write(&p), Err(WriteError::Length { .. })));
    let mut p = tiny_params();
    p.input.scale = 0.0;
    assert!(matches!(
        write(&p),
        Err(WriteError::Invalid(BlobError::BadScale { .. }))
    ));
    let mut p = tiny_params();
    p.dims.hidden = 0;
    assert!(matches!(
        write(&p),
        Err(WriteError::Invalid(BlobError::BadDimension { .. }))
    ));
}

#[test]
fn every_single_byte_mutation_is_handled() {
    // Exhaustive over positions, with the checksum repaired so that the structural and
    // value checks behind it are reached; some mutations (weights) must stay valid.
    let good = tiny_blob();
    let (mut accepted, mut rejected) = (0, 0);
    for i in 0..good.len() - CRC_LEN {
        for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
            let mut b = good.clone();
            b[i] = value;
            fix_crc(&mut b);
            match Model::parse(&b) {
                Ok(_) => accepted += 1,
                Err(_) => rejected += 1,
            }
            exercise(&b);
        }
    }
    assert!(
        accepted > 0 && rejected > 0,
        "accepted {accepted}, rejected {rejected}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        exercise(&bytes);
    }

    #[test]
    fn random_bytes_behind_a_valid_header_never_panic(
        tail in proptest::collection::vec(any::<u8>(), 0..700),
        repair in any::<bool>(),
    ) {
        let mut b = tiny_blob()[..HEADER_LEN].to_vec();
        b.extend_from_slice(&tail);
        if repair {
            fix_crc(&mut b);
        }
        exercise(&b);
    }

    #[test]
    fn mutated_blobs_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in proptest::option::of(any::<prop::sample::Index>()),
        repair in any::<bool>(),
    ) {
        let mut b = tiny_blob();
        for (at, value) in flips {
            let i = at.index(b.len());
            b[i] = value;
        }
        if let Some(cut) = cut {
            b.truncate(cut.index(b.len()));
        }
        if repair {
            fix_crc(&mut b);
        }
        exercise(&b);
    }

    #[test]
    fn header_field_mutations_with_valid_crc_never_panic(
        offset in 0usize..HEADER_LEN,
        value in any::<u16>(),
    ) {
        let mut b = tiny_blob();
        let end = (offset + 2).min(HEADER_LEN);
        b[offset..end].copy_from_slice(&value.to_le_bytes()[..end - offset]);
        fix_crc(&mut b);
        exercise(&b);
    }
}
