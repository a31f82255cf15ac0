//! The `runtime` binary's int8 commands: `quantize`, `--precision`, `export-firmware`.

mod common;

use common::{runtime, s, text};

#[test]
fn quantize_then_inspect_and_generate() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write(&common::mlp(2, true), dir.path(), "cond");
    let out = dir.path().join("cond-int8.onnx");
    let o = runtime(&[
        "quantize",
        "--model",
        s(&model),
        "--out",
        s(&out),
        "--calibration-samples",
        "300",
        "--method",
        "percentile",
        "--percentile",
        "99.9",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("integer form") && t.contains("99.9th percentile of 300 samples"),
        "{t}"
    );
    assert!(t.contains("vs f32 on 256 fresh samples: max |diff|"), "{t}");

    // Refuses to overwrite without --force, and never writes over its input.
    let o = runtime(&["quantize", "--model", s(&model), "--out", s(&out)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("--force"), "{}", text(&o));
    let o = runtime(&[
        "quantize",
        "--model",
        s(&model),
        "--out",
        s(&model),
        "--force",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("is the input model"), "{}", text(&o));

    let o = runtime(&["info", "--model", s(&out), "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["precision"], "int8");
    assert_eq!(v["quantization"]["form"], "integer");
    assert_eq!(v["quantization"]["calibration"]["samples"], 300);
    assert_eq!(v["quantization"]["calibration"]["method"], "percentile");
    let o = runtime(&["info", "--model", s(&out)]);
    assert!(
        text(&o).contains("precision:    int8 (integer form)"),
        "{}",
        text(&o)
    );

    let o = runtime(&[
        "generate",
        "--model",
        s(&out),
        "--count",
        "20",
        "--out",
        s(&dir.path().join("synth")),
        "--format",
        "idx",
        "-q",
    ]);
    assert!(o.status.success(), "{}", text(&o));

    // The f32 model at --precision int8; an int8 model cannot run in f32.
    let o = runtime(&[
        "generate",
        "--model",
        s(&model),
        "--precision",
        "int8",
        "--count",
        "10",
        "--out",
        s(&dir.path().join("synth8")),
        "-q",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("synth8/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["precision"], "int8");
    assert_eq!(
        manifest["model_info"]["metadata"]["gantry.quantization"]
            .as_str()
            .map(|q| q.contains("\"form\":\"integer\"")),
        Some(true),
        "{manifest}"
    );
    let o = runtime(&["info", "--model", s(&out), "--precision", "f32"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("holds no f32 weights"), "{}", text(&o));

    // Weight-only.
    let wo = dir.path().join("wo.onnx");
    let o = runtime(&[
        "quantize",
        "--model",
        s(&model),
        "--out",
        s(&wo),
        "--weight-only",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("weight-only form"), "{}", text(&o));
    let o = runtime(&["info", "--model", s(&wo)]);
    assert!(
        text(&o).contains("int8-stored weights (weight-only)"),
        "{}",
        text(&o)
    );
}

#[test]
fn auto_precision_says_what_it_chose() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write(&common::mlp(1, false), dir.path(), "mlp");
    let o = runtime(&["info", "--model", s(&model), "--precision", "auto"]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("precision auto: running "), "{t}");
    assert!(
        t.contains("precision:    f32 (auto: ") || t.contains("precision:    int8 (auto: "),
        "{t}"
    );
}

#[test]
fn bad_quantize_input_fails_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write(&common::mlp(1, false), dir.path(), "mlp");
    let out = dir.path().join("q.onnx");
    let o = runtime(&[
        "quantize",
        "--model",
        s(&model),
        "--out",
        s(&out),
        "--calibration-samples",
        "0",
    ]);
    // An argument error (issue 12: numeric arguments are checked by the parser).
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--calibration-samples"), "{}", text(&o));
    assert!(!out.exists());
    let o = runtime(&[
        "quantize",
        "--model",
        s(&dir.path().join("missing.onnx")),
        "--out",
        s(&out),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("missing.onnx"), "{}", text(&o));
    let o = runtime(&[
        "quantize",
        "--model",
        s(&model),
        "--out",
        s(&out),
        "--form",
        "qdq",
        "--weight-only",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn export_firmware_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write(&common::mlp(1, true), dir.path(), "mlp");
    let out = dir.path().join("gen.gtfw");
    let o = runtime(&[
        "export-firmware",
        "--model",
        s(&model),
        "--out",
        s(&out),
        "--calibration-samples",
        "50",
        "--seed",
        "2",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("16 + label embedding 8 (10 classes) -> 64 hidden -> 28x28"),
        "{}",
        text(&o)
    );
    let blob = std::fs::read(&out).unwrap();
    firmware::Model::parse(&blob).unwrap();

    let dcgan = common::write(&common::dcgan(1, false), dir.path(), "dcgan");
    let o = runtime(&[
        "export-firmware",
        "--model",
        s(&dcgan),
        "--out",
        s(&dir.path().join("d.gtfw")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(
        t.contains("dcgan.onnx") && t.contains("only the mlp generator"),
        "{t}"
    );
    assert!(!dir.path().join("d.gtfw").exists());
}
