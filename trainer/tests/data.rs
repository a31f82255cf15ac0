//! Loaders on the real MNIST-10k files and on each corrupt case: every bad input is an
//! error that names the file and the problem, never a panic.

use std::io::Write;
use std::path::{Path, PathBuf};

use trainer::data::{self, BatchCursor, Batcher, DataError, ImageShape, Split};

fn mnist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist-10k")
}

const MNIST_SHAPE: ImageShape = ImageShape {
    channels: 1,
    height: 28,
    width: 28,
};

fn idx_header(magic: u32, dims: &[u32]) -> Vec<u8> {
    let mut out = magic.to_be_bytes().to_vec();
    for d in dims {
        out.extend(d.to_be_bytes());
    }
    out
}

/// Writes an uncompressed IDX pair with `images` 2×2 images and `labels` labels.
fn write_idx(dir: &Path, images: u32, labels: u32) {
    let mut img = idx_header(0x0803, &[images, 2, 2]);
    img.extend((0..images * 4).map(|i| (i * 37 % 256) as u8));
    std::fs::write(dir.join("train-images-idx3-ubyte"), img).unwrap();
    let mut lab = idx_header(0x0801, &[labels]);
    lab.extend((0..labels).map(|i| (i % 10) as u8));
    std::fs::write(dir.join("train-labels-idx1-ubyte"), lab).unwrap();
}

#[test]
fn reads_bundled_mnist_10k() {
    let train = data::open(&mnist_dir(), Split::Train, MNIST_SHAPE).unwrap();
    assert_eq!(train.len(), 9003);
    assert_eq!(train.shape(), MNIST_SHAPE);
    assert_eq!(train.class_names().len(), 10);
    let test = data::open(&mnist_dir(), Split::Test, MNIST_SHAPE).unwrap();
    assert_eq!(test.len(), 997);
    // Pixels are scaled to [-1, 1] and use the whole range.
    let (min, max) = (0..100)
        .flat_map(|i| train.image(i).iter().copied())
        .fold((f32::MAX, f32::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    assert_eq!((min, max), (-1.0, 1.0));
    // Every class is present.
    let mut seen = [false; 10];
    for &l in train.labels() {
        seen[l] = true;
    }
    assert!(seen.iter().all(|&s| s));
}

#[test]
fn reads_uncompressed_idx() {
    let dir = tempfile::tempdir().unwrap();
    write_idx(dir.path(), 5, 5);
    let set = data::open(dir.path(), Split::Train, MNIST_SHAPE).unwrap();
    assert_eq!(set.len(), 5);
    assert_eq!(
        set.shape(),
        ImageShape {
            channels: 1,
            height: 2,
            width: 2
        }
    );
    assert_eq!(set.image(0)[0], -1.0);
}

fn expect_error(result: Result<data::Dataset, DataError>, file: &str, words: &str) {
    let err = result.expect_err("corrupt input must be an error");
    let text = err.to_string();
    assert!(text.contains(file), "error {text:?} does not name {file}");
    assert!(
        text.contains(words),
        "error {text:?} does not say {words:?}"
    );
}

#[test]
fn truncated_idx_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write_idx(dir.path(), 5, 5);
    let path = dir.path().join("train-images-idx3-ubyte");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
    expect_error(
        data::open(dir.path(), Split::Train, MNIST_SHAPE),
        "train-images-idx3-ubyte",
        "truncated",
    );
    std::fs::write(&path, &bytes[..10]).unwrap();
    expect_error(
        data::open(dir.path(), Split::Train, MNIST_SHAPE),
        "train-images-idx3-ubyte",
        "header",
    );
}

#[test]
fn wrong_magic_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write_idx(dir.path(), 5, 5);
    let path = dir.path().join("train-labels-idx1-ubyte");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[3] = 0x03;
    std::fs::write(&path, bytes).unwrap();
    expect_error(
        data::open(dir.path(), Split::Train, MNIST_SHAPE),
        "train-labels-idx1-ubyte",
        "magic",
    );
}

#[test]
fn mismatched_counts_are_an_error_naming_both_files() {
    let dir = tempfile::tempdir().unwrap();
    write_idx(dir.path(), 5, 4);
    let err = data::open(dir.path(), Split::Train, MNIST_SHAPE)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("train-images-idx3-ubyte") && err.contains("train-labels-idx1-ubyte"),
        "{err}"
    );
    assert!(
        err.contains("5 images") && err.contains("4 labels"),
        "{err}"
    );
}

#[test]
fn corrupt_gzip_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write_idx(dir.path(), 5, 5);
    std::fs::remove_file(dir.path().join("train-images-idx3-ubyte")).unwrap();
    let gz = std::fs::read(mnist_dir().join("train-images-idx3-ubyte.gz")).unwrap();
    std::fs::write(
        dir.path().join("train-images-idx3-ubyte.gz"),
        &gz[..gz.len() / 2],
    )
    .unwrap();
    expect_error(
        data::open(dir.path(), Split::Train, MNIST_SHAPE),
        "train-images-idx3-ubyte.gz",
        "gzip",
    );
}

#[test]
fn missing_folder_and_missing_labels_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    expect_error(
        data::open(&missing, Split::Train, MNIST_SHAPE),
        "nope",
        "missing",
    );
    write_idx(dir.path(), 5, 5);
    std::fs::remove_file(dir.path().join("train-labels-idx1-ubyte")).unwrap();
    expect_error(
        data::open(dir.path(), Split::Train, MNIST_SHAPE),
        "train-labels-idx1-ubyte",
        "missing",
    );
}

fn write_png(path: &Path, side: u32, value: u8) {
    let img = image::RgbImage::from_pixel(side, side, image::Rgb([value, value / 2, 255 - value]));
    img.save(path).unwrap();
}

#[test]
fn reads_an_image_folder_of_any_size_into_the_model_shape() {
    let dir = tempfile::tempdir().unwrap();
    for (class, value) in [("cat", 10u8), ("dog", 200u8)] {
        std::fs::create_dir(dir.path().join(class)).unwrap();
        write_png(&dir.path().join(class).join("a.png"), 40, value);
        write_png(&dir.path().join(class).join("b.PNG"), 13, value);
    }
    let grey = data::open(dir.path(), Split::Train, MNIST_SHAPE).unwrap();
    assert_eq!(grey.len(), 4);
    assert_eq!(grey.class_names(), ["cat", "dog"]);
    assert_eq!(grey.labels(), [0, 0, 1, 1]);
    assert_eq!(grey.image(0).len(), 28 * 28);
    let rgb_shape = ImageShape {
        channels: 3,
        height: 8,
        width: 8,
    };
    let rgb = data::open(dir.path(), Split::Train, rgb_shape).unwrap();
    assert_eq!(rgb.image(3).len(), 3 * 64);
    // Planar RGB: the blue plane of a "cat" (value 10) is bright.
    assert!(rgb.image(0)[2 * 64] > 0.9);
}

#[test]
fn unreadable_image_and_empty_class_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("a")).unwrap();
    write_png(&dir.path().join("a").join("ok.png"), 8, 1);
    let mut f = std::fs::File::create(dir.path().join("a").join("broken.png")).unwrap();
    f.write_all(b"\x89PNG\r\n\x1a\nthis is not a png").unwrap();
    drop(f);
    expect_error(
        data::open(dir.path(), Split::Train, MNIST_SHAPE),
        "broken.png",
        "unreadable image",
    );

    std::fs::remove_file(dir.path().join("a").join("broken.png")).unwrap();
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    expect_error(
        data::open(dir.path(), Split::Train, MNIST_SHAPE),
        "empty",
        "no PNG or JPEG",
    );
}

#[test]
fn batches_are_seeded_shuffled_and_resumable() {
    let set = data::open(&mnist_dir(), Split::Train, MNIST_SHAPE)
        .unwrap()
        .truncated(300);
    let mut a = Batcher::new(&set, 128, 7, BatchCursor::default());
    let mut b = Batcher::new(&set, 128, 7, BatchCursor::default());
    let first = a.next_batch(&set);
    assert_eq!(first.labels, b.next_batch(&set).labels);
    assert_eq!(first.pixels.len(), 128 * 784);
    // Not in file order.
    assert_ne!(
        first.labels[..20],
        set.labels()[..20]
            .iter()
            .map(|&l| l as i64)
            .collect::<Vec<_>>()[..]
    );
    // A batcher rebuilt at a cursor continues the same stream, across epochs.
    let cursor = a.cursor();
    let mut c = Batcher::new(&set, 128, 7, cursor);
    for _ in 0..5 {
        assert_eq!(a.next_batch(&set).labels, c.next_batch(&set).labels);
    }
    // Another seed, another order.
    let mut d = Batcher::new(&set, 128, 8, BatchCursor::default());
    assert_ne!(first.labels, d.next_batch(&set).labels);
}

#[test]
fn idx_dimensions_whose_product_overflows_are_refused() {
    use trainer::data::idx::{IdxKind, decode};
    // 2^22 × 2^21 × 2^21 = 2^64: wraps to 0 in 64-bit arithmetic.
    let bytes = idx_header(0x0803, &[1 << 22, 1 << 21, 1 << 21]);
    let err = decode(Path::new("huge.idx"), &bytes, IdxKind::Images)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("huge.idx") && err.contains("promise more"),
        "{err}"
    );
}

#[test]
fn a_gzip_bomb_is_refused_after_the_promised_bytes() {
    use trainer::data::idx::{IdxKind, decode};
    // Promises one 28×28 image, then inflates to 64 MiB.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&idx_header(0x0803, &[1, 28, 28])).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        gz.write_all(&zeros).unwrap();
    }
    let bytes = gz.finish().unwrap();
    assert!(bytes.len() < 200_000, "the bomb is small: {}", bytes.len());
    let err = decode(Path::new("bomb.gz"), &bytes, IdxKind::Images)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bomb.gz") && err.contains("the file holds more"),
        "{err}"
    );
    // An honest gzipped file of the same header decodes.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&idx_header(0x0803, &[1, 28, 28])).unwrap();
    gz.write_all(&[7u8; 784]).unwrap();
    let (dims, pixels) =
        decode(Path::new("ok.gz"), &gz.finish().unwrap(), IdxKind::Images).unwrap();
    assert_eq!(dims, [1, 28, 28]);
    assert_eq!(pixels, vec![7u8; 784]);
}

#[test]
fn a_device_given_as_an_idx_file_is_not_read() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("train-images-idx3-ubyte")).unwrap();
    std::fs::copy(
        mnist_dir().join("train-labels-idx1-ubyte.gz"),
        dir.path().join("train-labels-idx1-ubyte.gz"),
    )
    .unwrap();
    let err = trainer::data::load_idx(
        dir.path(),
        trainer::data::Split::Train,
        vec!["0".into(); 10],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("train-images-idx3-ubyte"), "{err}");
}
