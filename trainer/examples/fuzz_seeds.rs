//! Writes the seed corpora of the trainer's fuzz targets (trainer/fuzz/corpus/<target>/)
//! from real files: the first examples of MNIST-10k's IDX files (raw and gzipped), the
//! shipped run configs, every file of a real checkpoint, and small PNG and JPEG images.
//!
//!     cargo run --release -p trainer --example fuzz_seeds
//!
//! Each seed starts with the selector byte its target reads (see `trainer::fuzzing`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

fn write(dir: &Path, name: &str, selector: u8, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut seed = vec![selector];
    seed.extend_from_slice(bytes);
    std::fs::write(dir.join(name), seed)?;
    Ok(())
}

fn gunzip(path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path)?).read_to_end(&mut out)?;
    Ok(out)
}

fn gzip(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes)?;
    Ok(gz.finish()?)
}

fn main() -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = root.join("fuzz/corpus");
    let mnist = root.join("../data/mnist-10k");

    // IDX: 3 images and 3 labels, with the header's count rewritten to match.
    let dir = corpus.join("idx");
    let images = gunzip(&mnist.join("train-images-idx3-ubyte.gz"))?;
    let mut few = images[..16 + 3 * 784].to_vec();
    few[4..8].copy_from_slice(&3u32.to_be_bytes());
    let labels = gunzip(&mnist.join("train-labels-idx1-ubyte.gz"))?;
    let mut few_labels = labels[..8 + 3].to_vec();
    few_labels[4..8].copy_from_slice(&3u32.to_be_bytes());
    write(&dir, "images-raw", 0, &few)?;
    write(&dir, "images-gz", 0, &gzip(&few)?)?;
    write(&dir, "labels-raw", 1, &few_labels)?;
    write(&dir, "labels-gz", 1, &gzip(&few_labels)?)?;

    // Configs: every shipped one.
    let dir = corpus.join("config_toml");
    for entry in std::fs::read_dir(root.join("configs"))? {
        let path: PathBuf = entry?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if let Some(name) = name {
            let bytes = std::fs::read(&path)?;
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join(name), bytes)?;
        }
    }

    // Checkpoints: each file of a real one, behind the byte that selects it.
    let dir = corpus.join("checkpoint");
    for (i, (name, bytes)) in trainer::fuzzing::small_checkpoint()?.1.iter().enumerate() {
        write(&dir, name, i as u8, bytes)?;
        // The same file behind the selector that fixes up its checksum.
        write(&dir, &format!("{name}.fixed-crc"), 0x80 | i as u8, bytes)?;
    }

    // Images: a grey PNG, an RGB PNG and a JPEG, small.
    let dir = corpus.join("image_file");
    let grey = image::GrayImage::from_fn(9, 7, |x, y| image::Luma([(x * 25 + y * 3) as u8]));
    let rgb = image::RgbImage::from_fn(5, 6, |x, y| {
        image::Rgb([(x * 50) as u8, (y * 40) as u8, 99])
    });
    for (name, selector, picture, format) in [
        (
            "grey.png",
            0u8,
            image::DynamicImage::from(grey.clone()),
            image::ImageFormat::Png,
        ),
        (
            "rgb.png",
            1,
            image::DynamicImage::from(rgb),
            image::ImageFormat::Png,
        ),
        (
            "grey.jpg",
            0,
            image::DynamicImage::from(grey),
            image::ImageFormat::Jpeg,
        ),
    ] {
        let mut bytes = std::io::Cursor::new(Vec::new());
        picture.write_to(&mut bytes, format)?;
        write(&dir, name, selector, bytes.get_ref())?;
    }
    println!("wrote seed corpora under {}", corpus.display());
    Ok(())
}
