//! The `runtime` binary, end to end: what a user types, what they get, and the exit codes.

mod common;

use common::{runtime, s, text};

#[test]
fn info_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let spec = common::dcgan(1, true);
    let model = common::write(&spec, dir.path(), "cond");
    let o = runtime(&["info", "--model", s(&model)]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    for needle in [
        "z_dim:        16",
        "image:        1x28x28",
        "classes:      10 (0=0, 1=1",
        "input:        z FLOAT [N, 16]",
        "input:        label INT64 [N]",
        "output:       image FLOAT [N, 1, 28, 28]",
        "gantry.dataset = random-test",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    assert!(
        out.contains(&format!(
            "parameters:   {}",
            spec.parameter_count().unwrap()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "MACs/sample:  {}",
            spec.macs_per_sample().unwrap()
        )),
        "{out}"
    );

    let o = runtime(&["info", "--model", s(&model), "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["metadata"]["z_dim"], 16);
    assert_eq!(v["metadata"]["classes"].as_array().unwrap().len(), 10);
    assert_eq!(v["macs_per_sample"], spec.macs_per_sample().unwrap());
}

#[test]
fn generate_each_format() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write(&common::mlp(2, true), dir.path(), "cond");

    let png = dir.path().join("png");
    let o = runtime(&[
        "generate",
        "--model",
        s(&model),
        "--count",
        "20",
        "--balanced",
        "--seed",
        "3",
        "--out",
        s(&png),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("wrote 20 images (0: 2, 1: 2"),
        "{}",
        text(&o)
    );
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(png.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        m["counts"],
        serde_json::json!([2, 2, 2, 2, 2, 2, 2, 2, 2, 2])
    );
    assert_eq!(m["seed"], 3);
    assert_eq!(std::fs::read_dir(png.join("4_4")).unwrap().count(), 2);

    let idx = dir.path().join("idx");
    let o = runtime(&[
        "generate",
        "--model",
        s(&model),
        "-n",
        "9",
        "--class",
        "6",
        "--out",
        s(&idx),
        "--format",
        "idx",
        "--gzip",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let labels = runtime::dataset::read_idx(&idx.join("labels-idx1-ubyte.gz")).unwrap();
    assert_eq!(labels.data, [6; 9]);
    assert_eq!(
        runtime::dataset::read_idx(&idx.join("images-idx3-ubyte.gz"))
            .unwrap()
            .dims,
        [9, 28, 28]
    );

    let grid = dir.path().join("grid");
    let o = runtime(&[
        "generate",
        "--model",
        s(&model),
        "-n",
        "10",
        "--out",
        s(&grid),
        "--format",
        "grid",
        "-q",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        image::open(grid.join("grid.png")).unwrap().width(),
        10 * 30 + 2
    );

    // The same command twice gives the same bytes (seeded), and refuses to overwrite without --force.
    let again = dir.path().join("idx2");
    let o = runtime(&[
        "generate",
        "--model",
        s(&model),
        "-n",
        "9",
        "--class",
        "6",
        "--out",
        s(&again),
        "--format",
        "idx",
        "--gzip",
    ]);
    assert!(o.status.success());
    assert_eq!(
        runtime::dataset::read_idx(&idx.join("images-idx3-ubyte.gz")).unwrap(),
        runtime::dataset::read_idx(&again.join("images-idx3-ubyte.gz")).unwrap()
    );
    let o = runtime(&[
        "generate",
        "--model",
        s(&model),
        "-n",
        "9",
        "--out",
        s(&again),
        "--format",
        "idx",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("--force"), "{}", text(&o));
}

#[test]
fn errors_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write(&common::mlp(2, true), dir.path(), "cond");
    let uncond = common::write(&common::mlp(2, false), dir.path(), "uncond");
    let out = dir.path().join("o");

    // Usage errors: 2.
    let o = runtime(&["generate", "--model", s(&model)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = runtime(&[
        "generate",
        "--model",
        s(&model),
        "-n",
        "3",
        "--class",
        "1",
        "--balanced",
        "--out",
        s(&out),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(runtime(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(runtime(&["--help"]).status.code(), Some(0));

    // Failures: 1, with a message that names the problem.
    let missing = dir.path().join("missing.onnx");
    let o = runtime(&["info", "--model", s(&missing)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("missing.onnx") && text(&o).contains("cannot read"),
        "{}",
        text(&o)
    );

    let garbage = dir.path().join("garbage.onnx");
    std::fs::write(&garbage, "not a model").unwrap();
    let o = runtime(&[
        "generate",
        "--model",
        s(&garbage),
        "-n",
        "3",
        "--out",
        s(&out),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("not a valid ONNX model"), "{}", text(&o));

    let o = runtime(&[
        "generate",
        "--model",
        s(&model),
        "-n",
        "3",
        "--class",
        "10",
        "--out",
        s(&out),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("class 10 is out of range"),
        "{}",
        text(&o)
    );

    // A count of 0 is an argument error (see numeric_arguments_are_checked_by_the_parser).
    let o = runtime(&[
        "generate",
        "--model",
        s(&model),
        "-n",
        "0",
        "--out",
        s(&out),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--count"), "{}", text(&o));

    let o = runtime(&[
        "generate",
        "--model",
        s(&uncond),
        "-n",
        "3",
        "--balanced",
        "--out",
        s(&out),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("unconditional"), "{}", text(&o));
    assert!(!out.exists());
}

#[test]
fn bench_reports_every_backend_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write(&common::dcgan(1, true), dir.path(), "cond");
    let o = runtime(&["bench", "--model", s(&model), "--seconds", "0.05", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = v["rows"].as_array().unwrap();
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["backend"].as_str().unwrap())
        .collect();
    assert_eq!(&names[..2], ["tract", "tract-symbolic"]);
    assert!(names.contains(&"tract-int8"), "{names:?}");
    for r in rows {
        assert!(r["batch1_latency_us"].as_f64().unwrap() > 0.0);
        // f32 backends agree to float rounding; int8 ones to the quantization error.
        let bound = if r["backend"].as_str().unwrap().contains("int8") {
            0.8
        } else {
            1e-4
        };
        assert!(
            r["max_abs_diff_vs_tract_batch64"].as_f64().unwrap() <= bound,
            "{r}"
        );
    }
    if !names.contains(&"ort") {
        assert!(
            v["notes"][0].as_str().unwrap().contains("ort skipped"),
            "{v}"
        );
    }
    let o = runtime(&["bench", "--model", s(&model), "--seconds", "0.02"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("tract-symbolic"), "{}", text(&o));
}

/// Issue 12, row 3: `bench --seconds inf` panicked (exit 101). Every numeric argument of every
/// subcommand is checked by the parser (finite, positive, bounded): an argument error, exit 2,
/// naming the argument, and nothing is loaded or written.
#[test]
fn numeric_arguments_are_checked_by_the_parser() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write(&common::mlp(2, false), dir.path(), "m");
    let m = s(&model);
    let out = dir.path().join("out");
    let o = s(&out);
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("--seconds", vec!["bench", "-m", m, "--seconds", "inf"]),
        ("--seconds", vec!["bench", "-m", m, "--seconds", "NaN"]),
        ("--seconds", vec!["bench", "-m", m, "--seconds=-1"]),
        ("--seconds", vec!["bench", "-m", m, "--seconds", "0"]),
        ("--seconds", vec!["bench", "-m", m, "--seconds", "1e300"]),
        (
            "--ort-threads",
            vec!["bench", "-m", m, "--ort-threads", "0"],
        ),
        ("--count", vec!["generate", "-m", m, "-o", o, "-n", "0"]),
        ("--count", vec!["generate", "-m", m, "-o", o, "--count=-5"]),
        (
            "--count",
            vec![
                "generate",
                "-m",
                m,
                "-o",
                o,
                "-n",
                "4294967296",
                "-f",
                "grid",
            ],
        ),
        (
            "--batch",
            vec!["generate", "-m", m, "-o", o, "-n", "2", "--batch", "0"],
        ),
        (
            "--batch",
            vec![
                "generate",
                "-m",
                m,
                "-o",
                o,
                "-n",
                "2",
                "--batch",
                "100000000",
            ],
        ),
        (
            "--percentile",
            vec![
                "quantize",
                "-m",
                m,
                "-o",
                o,
                "--method",
                "percentile",
                "--percentile",
                "nan",
            ],
        ),
        (
            "--percentile",
            vec![
                "quantize",
                "-m",
                m,
                "-o",
                o,
                "--method",
                "percentile",
                "--percentile",
                "101",
            ],
        ),
        (
            "--calibration-samples",
            vec!["quantize", "-m", m, "-o", o, "--calibration-samples", "0"],
        ),
        (
            "--calibration-samples",
            vec![
                "export-firmware",
                "-m",
                m,
                "-o",
                o,
                "--calibration-samples",
                "0",
            ],
        ),
    ];
    for (arg, args) in cases {
        let r = runtime(&args);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {}", text(&r));
        assert!(text(&r).contains(arg), "{args:?}: {}", text(&r));
        assert!(!out.exists(), "{args:?} wrote {}", out.display());
    }
}

/// Issue 12, row 4: `generate --force` deleted a user's folder. `--force` replaces only a data
/// set folder Gantry wrote (with its manifest.json) or an empty folder; a user's folder, a
/// folder whose manifest.json is not Gantry's, and a file are refused and left untouched.
#[test]
fn force_replaces_only_a_gantry_data_set() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write(&common::mlp(2, false), dir.path(), "m");
    let generate = |out: &std::path::Path| {
        runtime(&[
            "generate",
            "-m",
            s(&model),
            "-n",
            "4",
            "-o",
            s(out),
            "-f",
            "grid",
            "--force",
        ])
    };

    let user = dir.path().join("p");
    std::fs::create_dir(&user).unwrap();
    std::fs::write(user.join("x.txt"), "keep").unwrap();
    let o = generate(&user);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("--force replaces only"), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(user.join("x.txt")).unwrap(), "keep");

    let foreign = dir.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("manifest.json"), r#"{"name": "my project"}"#).unwrap();
    let o = generate(&foreign);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(foreign.join("manifest.json").exists());

    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "keep").unwrap();
    let o = generate(&file);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");

    // Gantry's own data set, and an empty folder, are replaced.
    let ours = dir.path().join("ours");
    for _ in 0..2 {
        let o = generate(&ours);
        assert!(o.status.success(), "{}", text(&o));
    }
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(generate(&empty).status.success());
    assert!(empty.join("manifest.json").exists());
}

/// Issue 12, rows 1 and 6: a shipped model with an input-less `DequantizeLinear` appended gives
/// exit 1 and a message naming the file and the node (it panicked); a foreign or missing file
/// says its path once and its cause once (each was said twice).
#[test]
fn bad_model_files_exit_1_saying_each_fact_once() {
    let dir = tempfile::tempdir().unwrap();
    let dq = dir.path().join("dq.onnx");
    let mut bytes = std::fs::read(common::shipped("mnist-mlp.onnx")).unwrap();
    bytes.extend_from_slice(b"\x3a\x14\x0a\x12\x22\x10DequantizeLinear");
    std::fs::write(&dq, &bytes).unwrap();
    let foreign = dir.path().join("foreign.onnx");
    std::fs::write(&foreign, "garbage, not protobuf").unwrap();
    let missing = dir.path().join("missing.onnx");
    let out = dir.path().join("out");
    for (path, cause) in [
        (&dq, "DequantizeLinear"),
        (&foreign, "protobuf decoding failed"),
        (&missing, "No such file or directory"),
    ] {
        for args in [
            vec!["info", "-m", s(path)],
            vec!["generate", "-m", s(path), "-n", "2", "-o", s(&out)],
            vec!["quantize", "-m", s(path), "-o", s(&out)],
            vec!["export-firmware", "-m", s(path), "-o", s(&out)],
        ] {
            let o = runtime(&args);
            assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o));
            let err = String::from_utf8_lossy(&o.stderr).to_string();
            assert_eq!(err.matches(s(path)).count(), 1, "{args:?}: {err}");
            assert_eq!(err.matches(cause).count(), 1, "{args:?}: {err}");
            assert!(!err.contains("panicked"), "{args:?}: {err}");
        }
    }
}

/// Issue 12 (generate): a grid is one picture held in memory, so it has a documented limit,
/// [`runtime::dataset::MAX_GRID_IMAGES`], refused before anything is generated.
#[test]
fn grid_count_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write(&common::mlp(2, false), dir.path(), "m");
    let out = dir.path().join("grid");
    let n = (runtime::dataset::MAX_GRID_IMAGES + 1).to_string();
    let o = runtime(&[
        "generate",
        "-m",
        s(&model),
        "-n",
        &n,
        "-o",
        s(&out),
        "-f",
        "grid",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("grid picture holds at most"),
        "{}",
        text(&o)
    );
    assert!(!out.exists());
}

#[test]
fn auto_choices_are_measured_once_per_model_and_machine_then_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let model = common::write(&common::mlp(4, true), dir.path(), "cond");
    let run = |extra: &[&str], out: &str| {
        let out = dir.path().join(out);
        let mut args = vec![
            "generate",
            "--model",
            s(&model),
            "--count",
            "12",
            "--format",
            "idx",
            "--precision",
            "auto",
            "--threads",
            "auto",
            "--out",
            s(&out),
        ];
        args.extend_from_slice(extra);
        let o = common::runtime_with_cache(&args, &cache);
        assert!(o.status.success(), "{}", text(&o));
        (
            text(&o),
            std::fs::read(out.join("images-idx3-ubyte")).unwrap(),
        )
    };
    // Threads are chosen only where there is more than one core.
    let choices = if std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
        2
    } else {
        1
    };
    let (first, images) = run(&[], "a");
    assert_eq!(
        first.matches("measured at load").count(),
        choices,
        "{first}"
    );
    let file = cache.join("choices.json");
    let recorded = std::fs::read_to_string(&file).unwrap();
    assert!(recorded.contains("\"precision\""), "{recorded}");
    assert_eq!(recorded.contains("\"threads\""), choices == 2, "{recorded}");

    // The same file on the same machine: both choices come from the cache, same images.
    let (second, again) = run(&[], "b");
    assert_eq!(
        second.matches("measured before on this machine").count(),
        choices,
        "{second}"
    );
    assert!(second.contains(&file.display().to_string()), "{second}");
    assert_eq!(images, again);

    // --remeasure times both again.
    let (third, _) = run(&["--remeasure"], "c");
    assert_eq!(
        third.matches("measured at load").count(),
        choices,
        "{third}"
    );

    // Another model file (other weights) is measured on its own.
    let other = common::write(&common::mlp(5, true), dir.path(), "other");
    let o = common::runtime_with_cache(
        &[
            "generate",
            "--model",
            s(&other),
            "--count",
            "4",
            "--precision",
            "auto",
            "--out",
            s(&dir.path().join("d")),
        ],
        &cache,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("measured at load"), "{}", text(&o));

    // A corrupt cache is measured over, not an error.
    std::fs::write(&file, b"{ broken").unwrap();
    let (fourth, _) = run(&[], "e");
    assert_eq!(
        fourth.matches("measured at load").count(),
        choices,
        "{fourth}"
    );
}

#[test]
fn int8_models_quantized_in_memory_are_kept_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let model = common::write(&common::dcgan(4, true), dir.path(), "dcgan");
    let run = |out: &str| {
        let out = dir.path().join(out);
        let o = common::runtime_with_cache(
            &[
                "generate",
                "--model",
                s(&model),
                "--count",
                "6",
                "--format",
                "idx",
                "--precision",
                "int8",
                "--out",
                s(&out),
            ],
            &cache,
        );
        assert!(o.status.success(), "{}", text(&o));
        std::fs::read(out.join("images-idx3-ubyte")).unwrap()
    };
    let kept = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(cache.join("int8"))
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default()
    };
    let first = run("a");
    let files = kept();
    assert_eq!(files.len(), 1, "one int8 model kept: {files:?}");
    let bytes = std::fs::read(&files[0]).unwrap();
    // The kept model is what `runtime quantize` writes with the same (default) settings.
    let quantized = dir.path().join("q.onnx");
    let o = runtime(&["quantize", "--model", s(&model), "--out", s(&quantized)]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(bytes, std::fs::read(&quantized).unwrap());
    // Loaded from the cache: the same images.
    assert_eq!(run("b"), first);
    // A damaged kept model is quantized again and replaced, not an error.
    std::fs::write(&files[0], b"not onnx").unwrap();
    assert_eq!(run("c"), first);
    assert_eq!(std::fs::read(&files[0]).unwrap(), bytes);
}

#[test]
fn generate_threads_auto_says_what_it_chose_and_writes_the_same_images() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write(&common::mlp(4, true), dir.path(), "cond");
    let mut written = Vec::new();
    for threads in ["1", "auto", "3"] {
        let out = dir.path().join(format!("t{threads}"));
        let o = runtime(&[
            "generate",
            "--model",
            s(&model),
            "--count",
            "30",
            "--format",
            "idx",
            "--threads",
            threads,
            "--out",
            s(&out),
        ]);
        assert!(o.status.success(), "{}", text(&o));
        if threads == "auto" {
            assert!(
                text(&o).contains("threads auto: running on "),
                "{}",
                text(&o)
            );
        }
        written.push(std::fs::read(out.join("images-idx3-ubyte")).unwrap());
    }
    assert!(written.iter().all(|w| *w == written[0]));
    let o = runtime(&[
        "generate",
        "--model",
        s(&model),
        "--count",
        "3",
        "--threads",
        "0",
        "--out",
        s(&dir.path().join("zero")),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("--threads"), "{}", text(&o));
}
