//! Bad model files get typed errors that name the file, never a panic.

mod common;

use prost::Message;
use runtime::Error;
use runtime::generator::Generator;
use tract_onnx::pb::ModelProto;

fn load_err(path: &std::path::Path) -> Error {
    let err = Generator::load(path).expect_err("loading should fail");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "error does not name the file: {err}"
    );
    err
}

fn exported(conditional: bool) -> ModelProto {
    let spec = common::mlp(1, conditional);
    ModelProto::decode(&spec.to_onnx().unwrap()[..]).unwrap()
}

fn write_proto(dir: &std::path::Path, name: &str, model: &ModelProto) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, model.encode_to_vec()).unwrap();
    path
}

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_err(&dir.path().join("nope.onnx"));
    assert!(
        matches!(&err, Error::ReadModel { error, .. } if error.kind() == std::io::ErrorKind::NotFound),
        "{err}"
    );
}

#[test]
fn garbage_empty_and_truncated_files() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.onnx");
    std::fs::write(&garbage, b"this is a text file, not an ONNX model\n").unwrap();
    assert!(matches!(load_err(&garbage), Error::NotOnnx { .. }));

    let empty = dir.path().join("empty.onnx");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(load_err(&empty), Error::NotOnnx { .. }));

    let png = dir.path().join("image.onnx");
    std::fs::write(&png, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x1c").unwrap();
    assert!(matches!(load_err(&png), Error::NotOnnx { .. }));

    let bytes = common::dcgan(1, true).to_onnx().unwrap();
    for cut in [bytes.len() / 2, bytes.len() - 10, 100] {
        let truncated = dir.path().join(format!("truncated-{cut}.onnx"));
        std::fs::write(&truncated, &bytes[..cut]).unwrap();
        let err = load_err(&truncated);
        assert!(
            matches!(err, Error::NotOnnx { .. } | Error::Metadata { .. }),
            "cut at {cut}: {err}"
        );
    }
}

#[test]
fn inputs_and_outputs_that_are_not_a_generators() {
    let dir = tempfile::tempdir().unwrap();

    let mut renamed = exported(false);
    renamed.graph.as_mut().unwrap().input[0].name = "noise".into();
    let err = load_err(&write_proto(dir.path(), "renamed.onnx", &renamed));
    assert!(
        matches!(&err, Error::NotAGenerator { reason, .. } if reason.contains("noise")),
        "{err}"
    );

    // Conditional weights, unconditional metadata: the label input is unexpected.
    let mut cond = exported(true);
    cond.metadata_props.retain(|p| {
        p.key != runtime::info::keys::CLASSES && p.key != runtime::info::keys::NUM_CLASSES
    });
    cond.metadata_props
        .push(tract_onnx::pb::StringStringEntryProto {
            key: "gantry.classes".into(),
            value: "[]".into(),
        });
    cond.metadata_props
        .push(tract_onnx::pb::StringStringEntryProto {
            key: "gantry.num_classes".into(),
            value: "0".into(),
        });
    let err = load_err(&write_proto(dir.path(), "cond.onnx", &cond));
    assert!(
        matches!(&err, Error::NotAGenerator { reason, .. } if reason.contains("label")),
        "{err}"
    );

    // z declared as int64.
    let mut typed = exported(false);
    if let Some(tract_onnx::pb::type_proto::Value::TensorType(t)) =
        typed.graph.as_mut().unwrap().input[0]
            .r#type
            .as_mut()
            .unwrap()
            .value
            .as_mut()
    {
        t.elem_type = tract_onnx::pb::tensor_proto::DataType::Int64 as i32;
    }
    let err = load_err(&write_proto(dir.path(), "typed.onnx", &typed));
    assert!(
        matches!(&err, Error::NotAGenerator { reason, .. } if reason.contains("INT64")),
        "{err}"
    );

    // Image output of rank 2.
    let mut flat = exported(false);
    let out = &mut flat.graph.as_mut().unwrap().output[0];
    if let Some(tract_onnx::pb::type_proto::Value::TensorType(t)) =
        out.r#type.as_mut().unwrap().value.as_mut()
    {
        t.shape.as_mut().unwrap().dim.truncate(2);
    }
    let err = load_err(&write_proto(dir.path(), "flat.onnx", &flat));
    assert!(
        matches!(&err, Error::NotAGenerator { reason, .. } if reason.contains("rank")),
        "{err}"
    );

    // z_dim in metadata disagrees with the graph.
    let mut zdim = exported(false);
    for p in &mut zdim.metadata_props {
        if p.key == runtime::info::keys::Z_DIM {
            p.value = "17".into();
        }
    }
    let err = load_err(&write_proto(dir.path(), "zdim.onnx", &zdim));
    assert!(
        matches!(&err, Error::NotAGenerator { reason, .. } if reason.contains("17")),
        "{err}"
    );
}

#[test]
fn missing_or_invalid_metadata() {
    let dir = tempfile::tempdir().unwrap();
    // Without any Gantry metadata the file is a foreign generator: adopted when its graph
    // tells enough (this one does), refused naming what is missing otherwise.
    let mut bare = exported(false);
    bare.metadata_props.clear();
    let adopted = Generator::load(write_proto(dir.path(), "bare.onnx", &bare)).unwrap();
    assert!(adopted.info().metadata.contains_key("gantry.adopted"));
    let err = load_err(&write_proto(dir.path(), "bare.onnx", &unadoptable()));
    assert!(
        matches!(&err, Error::Adopt { reason, .. } if reason.contains("--pixel-range")),
        "{err}"
    );
    // Some Gantry keys but not the version: a damaged Gantry file, not a foreign one.
    let mut partial = exported(false);
    partial
        .metadata_props
        .retain(|p| p.key != "gantry.format_version");
    let err = load_err(&write_proto(dir.path(), "partial.onnx", &partial));
    assert!(
        matches!(&err, Error::Metadata { error, .. } if error.key == "gantry.format_version"),
        "{err}"
    );

    for (key, value) in [
        ("gantry.z_dim", "zero"),
        ("gantry.image_shape", "1,28"),
        ("gantry.classes", "not json"),
        ("gantry.pixel_range", "0,1"),
        ("gantry.format_version", "99"),
    ] {
        let mut bad = exported(false);
        for p in &mut bad.metadata_props {
            if p.key == key {
                p.value = value.into();
            }
        }
        let err = load_err(&write_proto(dir.path(), "bad.onnx", &bad));
        assert!(
            matches!(&err, Error::Metadata { error, .. } if error.key == key),
            "{key}: {err}"
        );
    }
}

/// An exported mlp without metadata whose output does not come from Tanh or Sigmoid: adoption
/// cannot tell its pixel range.
fn unadoptable() -> ModelProto {
    let mut bare = exported(false);
    bare.metadata_props.clear();
    for n in &mut bare.graph.as_mut().unwrap().node {
        if n.op_type == "Tanh" {
            n.op_type = "Relu".into();
        }
    }
    bare
}

/// A graph node as a fuzzer or a foreign tool might write it.
fn extra_node(op: &str, inputs: &[&str], outputs: &[&str]) -> tract_onnx::pb::NodeProto {
    tract_onnx::pb::NodeProto {
        name: format!("odd-{op}"),
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// Issue 12, row 1: a `DequantizeLinear` node with no inputs (or too few, no outputs, an empty
/// scale) made `runtime info` index `node.input[0]` and panic. Every path that reads the graph
/// (the generator loader, the spec importer, the byte-level entry point) returns an error that
/// names the file and the node.
#[test]
fn malformed_dequantize_nodes_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let weight = "layer0.weight";
    let empty_scale = tract_onnx::pb::TensorProto {
        name: "empty.scale".into(),
        dims: vec![0],
        data_type: tract_onnx::pb::tensor_proto::DataType::Float as i32,
        ..Default::default()
    };
    let cases = [
        ("no-inputs", extra_node("DequantizeLinear", &[], &[])),
        ("no-outputs", extra_node("DequantizeLinear", &[weight], &[])),
        (
            "one-input",
            extra_node("DequantizeLinear", &[weight], &["dq"]),
        ),
        (
            "empty-scale",
            extra_node("DequantizeLinear", &[weight, "empty.scale"], &["dq"]),
        ),
    ];
    for (name, node) in cases {
        let mut model = exported(false);
        let graph = model.graph.as_mut().unwrap();
        graph.initializer.push(empty_scale.clone());
        graph.node.push(node);
        let path = write_proto(dir.path(), &format!("{name}.onnx"), &model);
        let err = load_err(&path);
        assert!(
            err.to_string().contains("DequantizeLinear"),
            "{name}: {err}"
        );
        let err = runtime::import::read_spec(&path).expect_err(name);
        assert!(
            err.to_string().contains(&path.display().to_string())
                && err.to_string().contains("DequantizeLinear"),
            "{name}: {err}"
        );
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            runtime::import::spec_from_bytes(&path, &bytes).is_err(),
            "{name}"
        );
    }

    // The issue's own reproduction: a shipped model with such a node appended.
    let mut bytes = std::fs::read(common::shipped("mnist-mlp.onnx")).unwrap();
    bytes.extend_from_slice(b"\x3a\x14\x0a\x12\x22\x10DequantizeLinear");
    let path = dir.path().join("dq.onnx");
    std::fs::write(&path, &bytes).unwrap();
    let err = load_err(&path);
    assert!(err.to_string().contains("DequantizeLinear"), "{err}");
    assert!(runtime::import::read_spec(&path).is_err());
}

/// Sizes in a model file are multiplied with checked arithmetic: a tensor whose dimensions
/// multiply past `usize` (2^32 x 2^32 x 2^32 wrapped to 0 values in release builds, so an
/// empty tensor passed for a huge one) and an image shape past the documented limit are refused.
#[test]
fn dimensions_that_overflow_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = exported(false);
    model
        .graph
        .as_mut()
        .unwrap()
        .initializer
        .push(tract_onnx::pb::TensorProto {
            name: "huge".into(),
            dims: vec![1 << 32, 1 << 32, 1 << 32],
            data_type: tract_onnx::pb::tensor_proto::DataType::Float as i32,
            ..Default::default()
        });
    let path = write_proto(dir.path(), "huge-tensor.onnx", &model);
    let err = runtime::import::read_spec(&path).expect_err("a tensor of 2^96 values");
    assert!(
        matches!(&err, Error::Unsupported { reason, .. } if reason.contains("huge") && reason.contains("too large")),
        "{err}"
    );

    let mut model = exported(false);
    for p in &mut model.metadata_props {
        if p.key == runtime::info::keys::IMAGE_SHAPE {
            p.value = "1,4294967296,4294967296".into();
        }
    }
    let err = load_err(&write_proto(dir.path(), "huge-image.onnx", &model));
    assert!(
        matches!(&err, Error::Metadata { error, .. } if error.key == runtime::info::keys::IMAGE_SHAPE),
        "{err}"
    );
}

/// Runs `f` on a thread and fails the test if it does not finish within `secs` (the old
/// `std::fs::read` of a FIFO blocked forever, and of `/dev/zero` never ended).
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(secs))
        .expect("did not finish: reading the model blocked or never ended")
}

/// Issue 12: a model path that is not a regular file (`/dev/zero`, a FIFO, a folder) is refused
/// before anything is read, instead of hanging or filling memory.
#[test]
fn devices_fifos_and_folders_are_not_read_as_models() {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = vec![dir.path().to_path_buf()];
    if std::path::Path::new("/dev/zero").exists() {
        paths.push("/dev/zero".into());
    }
    let fifo = dir.path().join("fifo.onnx");
    if std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success())
    {
        paths.push(fifo);
    }
    for path in paths {
        let shown = path.display().to_string();
        let err = within(10, {
            let path = path.clone();
            move || Generator::load(&path).expect_err("not a model file")
        });
        assert!(
            matches!(&err, Error::ReadModel { .. }) && err.to_string().contains(&shown),
            "{shown}: {err}"
        );
        let err = within(10, move || runtime::import::read_spec(&path).unwrap_err());
        assert!(matches!(&err, Error::ReadModel { .. }), "{err}");
    }
}

/// Issue 12, "errors that say things once": an error's text says the path once and its cause
/// once, and its `source()` does not hand the same cause out again (so printing the chain, as
/// `anyhow`'s `{:#}` does, cannot repeat it).
#[test]
fn errors_say_the_path_and_the_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.onnx");
    let garbage = dir.path().join("garbage.onnx");
    std::fs::write(&garbage, b"this is a text file, not an ONNX model\n").unwrap();
    let bare = write_proto(dir.path(), "bare.onnx", &unadoptable());
    for path in [missing, garbage, bare] {
        let err = load_err(&path);
        let mut chain = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            chain.push_str(&format!(": {s}"));
            source = s.source();
        }
        let shown = path.display().to_string();
        assert_eq!(chain.matches(&shown).count(), 1, "{chain}");
        let parts: Vec<&str> = chain.split(": ").collect();
        for (i, p) in parts.iter().enumerate() {
            assert!(
                !parts[i + 1..].contains(p),
                "`{p}` appears twice in: {chain}"
            );
        }
    }
}
