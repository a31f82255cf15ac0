//! Generators from other frameworks: the fixtures in tests/fixtures/foreign were exported by
//! PyTorch (`torch.onnx.export`, both exporters) and TensorFlow (tf2onnx) with
//! scripts/make-foreign-fixtures.sh, each with the framework's own outputs for a few noise
//! vectors. Adopted, they must reproduce those outputs in Gantry's convention (NCHW, [-1, 1]);
//! what the graph does not tell must be asked for by name; nothing panics.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use runtime::engine::tract::{Generator, LoadOptions, Precision};
use runtime::onnx::adopt::{Foreign, Layout, PixelRange, adopt_file};
use runtime::onnx::import::read_spec_foreign;
use runtime::onnx::spec::ImageShape;

/// Float rounding between the framework, tract and the spec reader's reference.
const TOLERANCE: f32 = 1e-5;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/foreign")
        .join(format!("{name}.onnx"))
}

/// A fixture's framework outputs, raw.
struct Expected {
    z: Vec<f32>,
    labels: Option<Vec<i64>>,
    shape: Vec<usize>,
    output: Vec<f32>,
}

fn expected(name: &str) -> Expected {
    let path = fixture(name).with_extension("json");
    let text = std::fs::read_to_string(&path).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let floats = |v: &serde_json::Value| -> Vec<f32> {
        let mut out = Vec::new();
        flatten(v, &mut out);
        out
    };
    let inputs = v["inputs"].as_object().unwrap();
    let (mut z, mut labels) = (None, None);
    for (_, value) in inputs {
        let flat = floats(value);
        // The label is the integer input: a 1-D array of whole numbers.
        if value.as_array().unwrap()[0].is_number() && flat.iter().all(|x| x.fract() == 0.0) {
            labels = Some(flat.iter().map(|x| *x as i64).collect());
        } else {
            z = Some(flat);
        }
    }
    Expected {
        z: z.unwrap(),
        labels,
        shape: v["output_shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect(),
        output: floats(&v["output"]),
    }
}

fn flatten(v: &serde_json::Value, out: &mut Vec<f32>) {
    match v {
        serde_json::Value::Array(items) => items.iter().for_each(|i| flatten(i, out)),
        serde_json::Value::Number(n) => out.push(n.as_f64().unwrap() as f32),
        other => panic!("unexpected JSON value {other}"),
    }
}

/// The framework's output in Gantry's convention, computed here independently of adoption:
/// channels last moved first, [0, 1] mapped to [-1, 1].
fn in_gantry_convention(
    e: &Expected,
    layout: Layout,
    range: PixelRange,
    image: ImageShape,
) -> Vec<f32> {
    let n = e.shape[0];
    let (c, h, w) = (image.channels, image.height, image.width);
    let mut out = vec![0.0; e.output.len()];
    for s in 0..n {
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    let src = match layout {
                        Layout::Nchw => ((s * c + ch) * h + y) * w + x,
                        Layout::Nhwc => ((s * h + y) * w + x) * c + ch,
                    };
                    out[((s * c + ch) * h + y) * w + x] = e.output[src];
                }
            }
        }
    }
    let [lo, hi] = range.bounds();
    out.iter()
        .map(|v| (v - lo) / (hi - lo) * 2.0 - 1.0)
        .collect()
}

fn load(name: &str, foreign: &Foreign, precision: Option<Precision>) -> Generator {
    Generator::load_with(
        fixture(name),
        &LoadOptions {
            precision,
            foreign: foreign.clone(),
            ..LoadOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// (fixture, flags needed, layout and range of the framework's output, image shape)
fn cases() -> Vec<(&'static str, Foreign, Layout, PixelRange, ImageShape)> {
    let grey = |h, w| ImageShape {
        channels: 1,
        height: h,
        width: w,
    };
    vec![
        (
            "torch-mlp",
            Foreign::default(),
            Layout::Nchw,
            PixelRange::MinusOneToOne,
            grey(28, 28),
        ),
        (
            "torch-mlp-dynamo",
            Foreign::default(),
            Layout::Nchw,
            PixelRange::MinusOneToOne,
            grey(28, 28),
        ),
        (
            "torch-mlp-cond-flat",
            Foreign {
                image: Some(grey(28, 28)),
                ..Foreign::default()
            },
            Layout::Nchw,
            PixelRange::ZeroToOne,
            grey(28, 28),
        ),
        (
            "torch-dcgan",
            Foreign::default(),
            Layout::Nchw,
            PixelRange::MinusOneToOne,
            grey(14, 14),
        ),
        (
            "tf-mlp",
            Foreign::default(),
            Layout::Nhwc,
            PixelRange::MinusOneToOne,
            grey(28, 28),
        ),
        (
            "tf-dcgan-rgb",
            Foreign::default(),
            Layout::Nhwc,
            PixelRange::MinusOneToOne,
            ImageShape {
                channels: 3,
                height: 8,
                width: 8,
            },
        ),
    ]
}

#[test]
fn adopted_generators_reproduce_their_framework() {
    for (name, foreign, layout, range, image) in cases() {
        let e = expected(name);
        let want = in_gantry_convention(&e, layout, range, image);
        let g = load(name, &foreign, None);
        assert_eq!(g.info().image, image, "{name}");
        assert_eq!(g.info().z_dim, 16, "{name}");
        assert_eq!(
            g.info().classes.len(),
            if e.labels.is_some() { 10 } else { 0 },
            "{name}"
        );
        let got = g.run(&e.z, e.labels.as_deref()).unwrap();
        let diff = common::max_abs_diff(&got, &want);
        assert!(
            diff <= TOLERANCE,
            "{name}: max |adopted - framework| = {diff}"
        );
    }
}

#[test]
fn adoption_reads_layout_range_and_classes_from_the_graph() {
    for (name, foreign, layout, range, image) in cases() {
        let a = adopt_file(&fixture(name), &foreign).unwrap().adoption;
        assert_eq!(a.layout.value, layout, "{name}");
        assert_eq!(a.pixel_range.value, range, "{name}");
        assert_eq!(a.image.value, image, "{name}");
        assert_ne!(
            a.pixel_range.from, "flag",
            "{name}: the range comes from the graph"
        );
    }
    let a = adopt_file(
        &fixture("torch-mlp-cond-flat"),
        &Foreign {
            image: Some(ImageShape {
                channels: 1,
                height: 28,
                width: 28,
            }),
            ..Foreign::default()
        },
    )
    .unwrap()
    .adoption;
    assert_eq!(a.classes.value.len(), 10);
    assert!(
        a.classes.from.contains("embed.weight"),
        "{}",
        a.classes.from
    );
    assert_eq!(a.image.from, "flag");
    let a = adopt_file(&fixture("torch-dcgan"), &Foreign::default())
        .unwrap()
        .adoption;
    assert!(
        a.adapters.iter().any(|d| d.contains("Reshape z")),
        "{:?}",
        a.adapters
    );
}

/// The spec reader (what `quantize` and `export-firmware` use) reads the adopted mlps and the
/// PyTorch dcgan (BatchNormalization, a sigmoid output folded into tanh) to the same function.
#[test]
fn adopted_graphs_import_as_specs() {
    for (name, foreign, layout, range, image) in cases() {
        if name == "tf-dcgan-rgb" {
            continue; // channels-last convolutions: tract runs it, the spec reader refuses it
        }
        let e = expected(name);
        let spec = read_spec_foreign(&fixture(name), &foreign)
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        let got = spec.forward_reference(&e.z, e.labels.as_deref()).unwrap();
        let want = in_gantry_convention(&e, layout, range, image);
        let diff = common::max_abs_diff(&got, &want);
        assert!(diff <= 1e-4, "{name}: max |spec - framework| = {diff}");
    }
    let err = read_spec_foreign(&fixture("tf-dcgan-rgb"), &Foreign::default()).unwrap_err();
    assert!(err.to_string().contains("Mul"), "{err}");
}

#[test]
fn adopted_mlps_run_in_int8_close_to_f32() {
    for name in ["torch-mlp", "tf-mlp", "torch-mlp-dynamo"] {
        let f32 = load(name, &Foreign::default(), None);
        let int8 = load(name, &Foreign::default(), Some(Precision::Int8));
        assert_eq!(int8.precision(), Precision::Int8);
        let z = runtime::noise::noise(64, 16, 3);
        let diff = common::max_abs_diff(&f32.run(&z, None).unwrap(), &int8.run(&z, None).unwrap());
        assert!(diff < 0.05, "{name}: int8 vs f32 max diff {diff}");
    }
}

#[test]
fn what_the_graph_does_not_tell_is_asked_for_by_name() {
    let err = |name: &str, foreign: Foreign| {
        adopt_file(&fixture(name), &foreign)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    let flat = err("torch-mlp-cond-flat", Foreign::default());
    assert!(
        flat.contains("--image") && flat.contains("1,28,28"),
        "{flat}"
    );
    let z = err(
        "torch-mlp",
        Foreign {
            z_dim: Some(17),
            ..Foreign::default()
        },
    );
    assert!(z.contains("--z-dim 17") && z.contains("16"), "{z}");
    let classes = err(
        "torch-mlp-cond-flat",
        Foreign {
            image: Some(ImageShape {
                channels: 1,
                height: 28,
                width: 28,
            }),
            classes: Some(vec!["a".into(), "b".into(), "c".into()]),
            ..Foreign::default()
        },
    );
    assert!(
        classes.contains("3 classes") && classes.contains("10 rows"),
        "{classes}"
    );
    let no_label = err(
        "torch-mlp",
        Foreign {
            classes: Some(vec!["a".into()]),
            ..Foreign::default()
        },
    );
    assert!(no_label.contains("no integer label input"), "{no_label}");
    let wrong_image = err(
        "tf-dcgan-rgb",
        Foreign {
            image: Some(ImageShape {
                channels: 1,
                height: 8,
                width: 24,
            }),
            ..Foreign::default()
        },
    );
    assert!(wrong_image.contains("disagrees"), "{wrong_image}");
    // A Gantry generator needs no adoption.
    let gantry = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/mnist-mlp.onnx");
    let e = adopt_file(
        &gantry,
        &Foreign {
            layout: Some(Layout::Nhwc),
            ..Foreign::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("Gantry generator already") && e.contains("--layout"),
        "{e}"
    );
}

/// Damaged or unusual foreign graphs: each is an error naming the problem, never a panic.
#[test]
fn foreign_graphs_that_cannot_be_adopted_are_clear_errors() {
    use prost::Message;
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read(fixture("torch-mlp")).unwrap();
    let edit = |f: &dyn Fn(&mut tract_onnx::pb::ModelProto)| {
        let mut m = tract_onnx::pb::ModelProto::decode(&base[..]).unwrap();
        f(&mut m);
        let path = dir.path().join("edited.onnx");
        std::fs::write(&path, m.encode_to_vec()).unwrap();
        adopt_file(&path, &Foreign::default())
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    let fixed = edit(&|m| {
        let dim = &mut m.graph.as_mut().unwrap().input[0]
            .r#type
            .as_mut()
            .unwrap()
            .value;
        if let Some(tract_onnx::pb::type_proto::Value::TensorType(t)) = dim {
            t.shape.as_mut().unwrap().dim[0].value =
                Some(tract_onnx::pb::tensor_shape_proto::dimension::Value::DimValue(1));
        }
    });
    assert!(
        fixed.contains("fixed batch size of 1") && fixed.contains("dynamic"),
        "{fixed}"
    );
    let unknown_op = edit(&|m| {
        for n in &mut m.graph.as_mut().unwrap().node {
            if n.op_type == "LeakyRelu" {
                n.op_type = "NoSuchOp".into();
            }
        }
    });
    assert!(unknown_op.contains("NoSuchOp"), "{unknown_op}");
    let no_range = edit(&|m| {
        for n in &mut m.graph.as_mut().unwrap().node {
            if n.op_type == "Tanh" {
                n.op_type = "Relu".into();
            }
        }
    });
    assert!(
        no_range.contains("--pixel-range") && no_range.contains("Relu"),
        "{no_range}"
    );
    let two_floats = edit(&|m| {
        let g = m.graph.as_mut().unwrap();
        let mut extra = g.input[0].clone();
        extra.name = "extra".into();
        g.input.push(extra);
    });
    assert!(
        two_floats.contains("one float32 noise input"),
        "{two_floats}"
    );
}

fn runtime_cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_runtime"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn adopt_writes_a_gantry_generator_that_every_subcommand_takes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("adopted.onnx");
    let input = fixture("torch-mlp-cond-flat");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let o = runtime_cli(&["adopt", &s(&input), "--out", &s(&out)]);
    assert!(!o.status.success());
    assert!(text(&o).contains("--image"), "{}", text(&o));
    assert!(!out.exists(), "nothing is written when adoption fails");

    let o = runtime_cli(&[
        "adopt",
        &s(&input),
        "--out",
        &s(&out),
        "--image",
        "1,28,28",
        "--classes",
        "10",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let report = text(&o);
    for needle in ["rescale 0,1 to -1,1", "10 classes", "Sigmoid", "check:"] {
        assert!(report.contains(needle), "missing {needle:?} in\n{report}");
    }
    // The adopted file is a Gantry generator: no flags needed any more.
    let g = Generator::load(&out).unwrap();
    assert_eq!(g.info().classes.len(), 10);
    assert!(g.info().metadata.contains_key("gantry.adopted"));
    let e = expected("torch-mlp-cond-flat");
    let grey = ImageShape {
        channels: 1,
        height: 28,
        width: 28,
    };
    let want = in_gantry_convention(&e, Layout::Nchw, PixelRange::ZeroToOne, grey);
    let diff = common::max_abs_diff(&g.run(&e.z, e.labels.as_deref()).unwrap(), &want);
    assert!(diff <= TOLERANCE, "{diff}");

    let info = runtime_cli(&["info", "--model", &s(&out)]);
    assert!(
        info.status.success() && text(&info).contains("gantry.adopted"),
        "{}",
        text(&info)
    );
    let data = dir.path().join("data");
    let generated = runtime_cli(&[
        "generate",
        "--model",
        &s(&out),
        "--count",
        "20",
        "--out",
        &s(&data),
        "--format",
        "idx",
    ]);
    assert!(generated.status.success(), "{}", text(&generated));
    let q = runtime_cli(&[
        "quantize",
        "--model",
        &s(&out),
        "--out",
        &s(&dir.path().join("q.onnx")),
    ]);
    assert!(q.status.success(), "{}", text(&q));
    let fw = runtime_cli(&[
        "export-firmware",
        "--model",
        &s(&out),
        "--out",
        &s(&dir.path().join("g.gtfw")),
    ]);
    assert!(fw.status.success(), "{}", text(&fw));
    let b = runtime_cli(&["bench", "--model", &s(&out), "--seconds", "0.05"]);
    assert!(b.status.success(), "{}", text(&b));

    // The same flags work on the foreign file directly, without adopting first.
    let direct = dir.path().join("direct");
    let generated = runtime_cli(&[
        "generate",
        "--model",
        &s(&input),
        "--image",
        "1,28,28",
        "--count",
        "20",
        "--seed",
        "0",
        "--out",
        &s(&direct),
        "--format",
        "idx",
    ]);
    assert!(generated.status.success(), "{}", text(&generated));
    let info = runtime_cli(&["info", "--model", &s(&fixture("tf-dcgan-rgb")), "--json"]);
    assert!(info.status.success(), "{}", text(&info));
    let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(v["metadata"]["image"]["channels"], 3);
    // And the same images as the adopted file.
    let read = |d: &Path| std::fs::read(d.join("images-idx3-ubyte")).unwrap();
    assert_eq!(read(&data), read(&direct));
    let bad = runtime_cli(&["info", "--model", &s(&input), "--pixel-range", "0,2"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
}
