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
        matches!(&err, Error::ReadModel { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
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
    let mut bare = exported(false);
    bare.metadata_props.clear();
    let err = load_err(&write_proto(dir.path(), "bare.onnx", &bare));
    assert!(
        matches!(&err, Error::Metadata { source, .. } if source.key == "gantry.format_version"),
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
            matches!(&err, Error::Metadata { source, .. } if source.key == key),
            "{key}: {err}"
        );
    }
}
