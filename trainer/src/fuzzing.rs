//! Entry points that feed untrusted bytes through the trainer's parsers of user files,
//! shared by the cargo-fuzz targets (`trainer/fuzz/`) and the test that replays their
//! corpora on stable Rust (`trainer/tests/fuzz_corpora.rs`). Each returns whether the
//! input was accepted; what must never happen is a panic, a hang or unbounded memory.

use std::cell::RefCell;
use std::path::Path;

use crate::checkpoint::{self, CheckpointError, CheckpointFiles};
use crate::config::TrainConfig;
use crate::data::idx::{self, IdxKind};
use crate::data::{BatchCursor, ImageShape, RealBatch, folder};
use crate::training::Gan;

/// The name untrusted bytes go by in error messages.
const INPUT: &str = "<fuzz input>";

/// An IDX file, raw or gzipped: the first byte picks images (even) or labels (odd).
pub fn idx(bytes: &[u8]) -> bool {
    let Some((&kind, rest)) = bytes.split_first() else {
        return false;
    };
    let kind = if kind % 2 == 0 {
        IdxKind::Images
    } else {
        IdxKind::Labels
    };
    idx::decode(Path::new(INPUT), rest, kind).is_ok()
}

/// A TOML run config, parsed and validated as `trainer train --config` does.
pub fn config_toml(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    TrainConfig::from_toml_str(text, Path::new(INPUT)).is_ok_and(|c| c.validate().is_ok())
}

/// The config of the small conditional model whose checkpoints [`checkpoint`] loads.
pub fn checkpoint_config() -> TrainConfig {
    let mut config = TrainConfig {
        image: ImageShape {
            channels: 1,
            height: 4,
            width: 4,
        },
        z_dim: 3,
        conditional: true,
        ema_decay: Some(0.9),
        ..TrainConfig::default()
    };
    config.model.label_embedding = 2;
    config.model.mlp.generator_hidden = vec![5];
    config.model.mlp.discriminator_hidden = vec![5];
    config
}

thread_local! {
    static CHECKPOINT: RefCell<Option<(Gan, CheckpointFiles)>> = const { RefCell::new(None) };
}

/// A model of [`checkpoint_config`] after one training step (so that the optimizers hold
/// Adam moments), and the files of its checkpoint, in the order [`checkpoint`] numbers them.
pub fn small_checkpoint() -> Result<(Gan, CheckpointFiles), CheckpointError> {
    let config = checkpoint_config();
    let mut gan = Gan::new(&config, 2, config.image, &burn::tensor::Device::flex());
    let real = RealBatch {
        pixels: (0..2 * config.image.numel())
            .map(|i| (i % 7) as f32 / 3.5 - 1.0)
            .collect(),
        labels: vec![0, 1],
    };
    gan.train_step(&real);
    let files = checkpoint::encode(&gan, BatchCursor::default(), 0)?;
    Ok((gan, files))
}

/// A checkpoint with one file replaced: the first byte's low 7 bits pick the file (in
/// [`small_checkpoint`] order), the rest is its content; the other files are valid. With
/// the first byte's high bit set, state.json's checksum of the replaced file is fixed up,
/// so that malformed records reach burn's decoders behind the checksum.
pub fn checkpoint(bytes: &[u8]) -> bool {
    let Some((&selector, content)) = bytes.split_first() else {
        return false;
    };
    CHECKPOINT.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let Ok(checkpoint) = small_checkpoint() else {
                return false;
            };
            *slot = Some(checkpoint);
        }
        let Some((gan, files)) = slot.as_mut() else {
            return false;
        };
        let replaced = files[usize::from(selector & 0x7f) % files.len()].0;
        let mut state = files
            .iter()
            .find(|(f, _)| *f == "state.json")
            .map(|(_, b)| b.clone())
            .unwrap_or_default();
        if selector & 0x80 != 0 && replaced != "state.json" {
            let fixed = serde_json::from_slice::<checkpoint::TrainingState>(&state).map(|mut s| {
                s.files
                    .insert(replaced.to_string(), checkpoint::FileCheck::of(content));
                s
            });
            if let Ok(bytes) = fixed.and_then(|s| serde_json::to_vec(&s)) {
                state = bytes;
            }
        }
        let dir = Path::new(INPUT);
        checkpoint::decode(gan, dir, |file, max| {
            let bytes = if file == replaced {
                content
            } else if file == "state.json" {
                state.as_slice()
            } else {
                files
                    .iter()
                    .find(|(f, _)| *f == file)
                    .map(|(_, b)| b.as_slice())
                    .unwrap_or_default()
            };
            if bytes.len() as u64 > max {
                return Err(CheckpointError::Invalid {
                    path: dir.join(file),
                    problem: "too large".into(),
                });
            }
            Ok(bytes.to_vec())
        })
        .is_ok()
    })
}

/// One file of an image folder, decoded as the scanner does: the first byte picks grey
/// (even) or RGB (odd) at 28×28.
pub fn image_file(bytes: &[u8]) -> bool {
    let Some((&channels, rest)) = bytes.split_first() else {
        return false;
    };
    let shape = ImageShape {
        channels: if channels % 2 == 0 { 1 } else { 3 },
        height: 28,
        width: 28,
    };
    folder::decode_image(Path::new(INPUT), rest, shape).is_ok()
}
