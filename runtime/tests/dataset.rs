//! Each output format, read back: counts, labels, image sizes, manifest, atomic replacement.

mod common;

use std::path::Path;

use runtime::dataset::{
    DatasetRequest, Manifest, OutputFormat, class_folder, read_idx, write_dataset,
};
use runtime::generator::{Generator, to_u8};

fn request(out: &Path, count: usize, class: Option<usize>, format: OutputFormat) -> DatasetRequest {
    DatasetRequest {
        count,
        class,
        seed: 4,
        format,
        out: out.to_path_buf(),
        force: false,
        sampling: Default::default(),
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn png_folders_per_class() {
    let dir = tempfile::tempdir().unwrap();
    let g = Generator::load(common::write(&common::mlp(1, true), dir.path(), "m")).unwrap();
    let out = dir.path().join("png");
    let m = write_dataset(
        &g,
        "m.onnx",
        &request(&out, 23, None, OutputFormat::Png),
        |_| {},
    )
    .unwrap();
    assert_eq!(m.counts, [3, 3, 3, 2, 2, 2, 2, 2, 2, 2]);
    assert_eq!(m.folders[3], "3_3");
    let mut expected: Vec<String> = m.folders.clone();
    expected.push("manifest.json".into());
    expected.sort();
    assert_eq!(entries(&out), expected);
    // Sample 13 has class 3 (balanced: i % 10) and the same pixels as the generator's image 13.
    let samples = g.generate(23, None, 4).unwrap();
    for (class, folder) in m.folders.iter().enumerate() {
        let files = entries(&out.join(folder));
        assert_eq!(files.len(), m.counts[class], "{folder}");
        for f in files {
            let index: usize = f.trim_end_matches(".png").parse().unwrap();
            assert_eq!(index % 10, class);
            let img = image::open(out.join(folder).join(&f)).unwrap().to_luma8();
            assert_eq!(img.dimensions(), (28, 28));
            let want: Vec<u8> = samples.image(index).iter().map(|v| to_u8(*v)).collect();
            assert_eq!(img.into_raw(), want, "{folder}/{f}");
        }
    }
    assert_eq!(Manifest::read(&out.join("manifest.json")).unwrap(), m);
    assert_eq!(m.seed, 4);
    assert_eq!(m.model, "m.onnx");
    assert_eq!(m.noise.fingerprint.len(), 16);
}

#[test]
fn png_single_class_and_unconditional() {
    let dir = tempfile::tempdir().unwrap();
    let g = Generator::load(common::write(&common::mlp(1, true), dir.path(), "m")).unwrap();
    let out = dir.path().join("sevens");
    let m = write_dataset(
        &g,
        "m",
        &request(&out, 5, Some(7), OutputFormat::Png),
        |_| {},
    )
    .unwrap();
    assert_eq!(m.counts, [0, 0, 0, 0, 0, 0, 0, 5, 0, 0]);
    assert_eq!(m.selection, "class");
    assert_eq!(entries(&out), ["7_7", "manifest.json"]);
    assert_eq!(entries(&out.join("7_7")).len(), 5);

    let u = Generator::load(common::write(&common::dcgan(1, false), dir.path(), "u")).unwrap();
    let out = dir.path().join("u");
    let m = write_dataset(&u, "u", &request(&out, 3, None, OutputFormat::Png), |_| {}).unwrap();
    assert_eq!(entries(&out), ["manifest.json", "samples"]);
    assert_eq!(
        entries(&out.join("samples")),
        ["000000.png", "000001.png", "000002.png"]
    );
    assert!(m.counts.is_empty() && m.selection == "unconditional");
}

#[test]
fn idx_plain_and_gzipped() {
    let dir = tempfile::tempdir().unwrap();
    let g = Generator::load(common::write(&common::dcgan(2, true), dir.path(), "m")).unwrap();
    let samples = g.generate(130, None, 4).unwrap();
    for gzip in [false, true] {
        let out = dir.path().join(format!("idx-{gzip}"));
        let mut seen = 0;
        let m = write_dataset(
            &g,
            "m",
            &request(&out, 130, None, OutputFormat::Idx { gzip }),
            |n| seen = n,
        )
        .unwrap();
        assert_eq!(seen, 130);
        let gz = if gzip { ".gz" } else { "" };
        assert_eq!(
            m.files,
            [
                format!("images-idx3-ubyte{gz}"),
                format!("labels-idx1-ubyte{gz}")
            ]
        );
        let raw = std::fs::read(out.join(&m.files[0])).unwrap();
        assert_eq!(raw.starts_with(&[0x1f, 0x8b]), gzip);
        let images = read_idx(&out.join(&m.files[0])).unwrap();
        let labels = read_idx(&out.join(&m.files[1])).unwrap();
        assert_eq!(images.dims, [130, 28, 28]);
        assert_eq!(labels.dims, [130]);
        let want_labels: Vec<u8> = (0..130).map(|i| (i % 10) as u8).collect();
        assert_eq!(labels.data, want_labels);
        let want: Vec<u8> = samples.pixels.iter().map(|v| to_u8(*v)).collect();
        assert_eq!(images.data, want);
        assert_eq!(m.counts.iter().sum::<usize>(), 130);
    }
}

#[test]
fn idx_rgb_is_channels_last() {
    let dir = tempfile::tempdir().unwrap();
    let g = Generator::load(common::write(&common::rgb(3), dir.path(), "rgb")).unwrap();
    let out = dir.path().join("rgb");
    let m = write_dataset(
        &g,
        "m",
        &request(&out, 4, Some(1), OutputFormat::Idx { gzip: false }),
        |_| {},
    )
    .unwrap();
    let images = read_idx(&out.join(&m.files[0])).unwrap();
    assert_eq!(m.files[0], "images-idx4-ubyte");
    assert_eq!(images.dims, [4, 8, 8, 3]);
    let s = g.generate(4, Some(1), 4).unwrap();
    assert_eq!(images.data[..192], s.image_u8(0)[..]);
    // Channel 2 of pixel (0, 1) of image 0.
    assert_eq!(images.data[3 + 2], to_u8(s.image(0)[2 * 64 + 1]));
    assert_eq!(
        read_idx(&out.join("labels-idx1-ubyte")).unwrap().data,
        [1, 1, 1, 1]
    );
    // Class names with a slash or spaces become safe folder names.
    assert_eq!(class_folder(1, "green/blue", 3), "1_green_blue");
    assert_eq!(class_folder(2, "T-shirt top", 12), "02_T-shirt_top");
}

#[test]
fn grid_has_one_column_per_class() {
    let dir = tempfile::tempdir().unwrap();
    let g = Generator::load(common::write(&common::mlp(5, true), dir.path(), "m")).unwrap();
    let out = dir.path().join("grid");
    let m = write_dataset(
        &g,
        "m",
        &request(&out, 30, None, OutputFormat::Grid),
        |_| {},
    )
    .unwrap();
    assert_eq!(entries(&out), ["grid.png", "manifest.json"]);
    let img = image::open(out.join("grid.png")).unwrap().to_luma8();
    // 10 columns x 3 rows of 28 px tiles with 2 px borders.
    assert_eq!(img.dimensions(), (10 * 30 + 2, 3 * 30 + 2));
    // Tile (row 1, col 4) is sample 14.
    let s = g.generate(30, None, 4).unwrap();
    assert_eq!(
        img.get_pixel(2 + 4 * 30 + 5, 2 + 30 + 6)[0],
        to_u8(s.image(14)[6 * 28 + 5])
    );
    assert_eq!(m.files, ["grid.png"]);

    let rgb = Generator::load(common::write(&common::rgb(1), dir.path(), "rgb")).unwrap();
    let out = dir.path().join("rgb-grid");
    write_dataset(
        &rgb,
        "rgb",
        &request(&out, 5, Some(2), OutputFormat::Grid),
        |_| {},
    )
    .unwrap();
    let img = image::open(out.join("grid.png")).unwrap();
    assert_eq!(img.color(), image::ColorType::Rgb8);
    assert_eq!((img.width(), img.height()), (3 * 10 + 2, 2 * 10 + 2));
}

#[test]
fn existing_output_is_refused_then_replaced_with_force() {
    let dir = tempfile::tempdir().unwrap();
    let g = Generator::load(common::write(&common::mlp(1, false), dir.path(), "m")).unwrap();
    let out = dir.path().join("data");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "user file").unwrap();
    let err =
        write_dataset(&g, "m", &request(&out, 2, None, OutputFormat::Grid), |_| {}).unwrap_err();
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(entries(&out), ["keep.txt"]);
    // --force does not delete a user's folder (issue 12): only a data set Gantry wrote.
    let mut req = request(&out, 2, None, OutputFormat::Grid);
    req.force = true;
    let err = write_dataset(&g, "m", &req, |_| {}).unwrap_err();
    assert!(err.to_string().contains("--force replaces only"), "{err}");
    assert_eq!(entries(&out), ["keep.txt"]);
    std::fs::remove_file(out.join("keep.txt")).unwrap();
    write_dataset(&g, "m", &request(&out, 3, None, OutputFormat::Png), |_| {}).unwrap();
    write_dataset(&g, "m", &req, |_| {}).unwrap();
    assert_eq!(entries(&out), ["grid.png", "manifest.json"]);
    // No staging or backup folders are left beside the output.
    assert_eq!(entries(dir.path()), ["data", "m.onnx"]);

    // A failing request (class out of range) leaves nothing behind.
    let c = Generator::load(common::write(&common::mlp(1, true), dir.path(), "c")).unwrap();
    let bad = dir.path().join("bad");
    assert!(
        write_dataset(
            &c,
            "c",
            &request(&bad, 2, Some(11), OutputFormat::Png),
            |_| {}
        )
        .is_err()
    );
    assert_eq!(entries(dir.path()), ["c.onnx", "data", "m.onnx"]);
}

#[test]
fn read_idx_rejects_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad");
    std::fs::write(&p, [0u8, 0, 8, 1, 0, 0, 0, 5, 1, 2]).unwrap();
    let err = read_idx(&p).unwrap_err();
    assert!(err.to_string().contains("need 5 bytes"), "{err}");
    std::fs::write(&p, b"hello").unwrap();
    assert!(read_idx(&p).unwrap_err().to_string().contains("magic"));
}

/// Issue 12: an IDX header whose dimensions multiply past 64 bits (2^22 x 2^21 x 2^21 wrapped
/// to 0 in release builds, so a 16-byte file was accepted as an empty array) is refused, and a
/// gzip stream is decompressed only as far as its header promises (a "gzip bomb" of 64 MiB of
/// zeros behind a 10-byte header is refused without being inflated).
#[test]
fn read_idx_checks_the_header_before_the_data() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("overflow");
    let mut header = vec![0u8, 0, 8, 3];
    for d in [1u32 << 22, 1 << 21, 1 << 21] {
        header.extend_from_slice(&d.to_be_bytes());
    }
    std::fs::write(&p, &header).unwrap();
    let err = read_idx(&p).unwrap_err();
    assert!(err.to_string().contains("limit"), "{err}");

    let bomb = dir.path().join("bomb.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&[0, 0, 8, 1, 0, 0, 0, 10]).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        gz.write_all(&zeros).unwrap();
    }
    std::fs::write(&bomb, gz.finish().unwrap()).unwrap();
    let err = read_idx(&bomb).unwrap_err();
    assert!(err.to_string().contains("need 10 bytes"), "{err}");
    assert!(err.to_string().contains("the file has more"), "{err}");

    // A FIFO or a device is not read.
    let err = read_idx(std::path::Path::new("/dev/zero")).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
}
