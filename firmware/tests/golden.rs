//! Golden images: the preview scenes of the committed test blob (seed 0, zoom 1) must
//! match the PNGs under `firmware/tests/golden/` pixel for pixel.
//!
//! After an intended change, regenerate them with
//! `cargo run --release -p firmware --features preview --bin preview -- --out firmware/tests/golden`
//! and look at the diff before committing.

use std::path::PathBuf;

use firmware::Model;
use firmware::preview::render_scenes;

#[test]
fn scenes_match_golden_pngs() {
    let model = Model::parse(include_bytes!("../assets/test-mlp-cond.gtfw")).unwrap();
    let scenes = render_scenes(&model, 0, 1).unwrap();
    assert_eq!(scenes.len(), 3);
    let golden_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let actual_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("golden-actual");
    std::fs::create_dir_all(&actual_dir).unwrap();
    let mut failures = Vec::new();
    for scene in &scenes {
        let golden_path = golden_dir.join(format!("{}.png", scene.name));
        let golden = image::open(&golden_path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", golden_path.display()))
            .to_rgb8();
        if golden.dimensions() != scene.image.dimensions()
            || golden.as_raw() != scene.image.as_raw()
        {
            let actual = actual_dir.join(format!("{}.png", scene.name));
            scene.image.save(&actual).unwrap();
            let differing = golden
                .pixels()
                .zip(scene.image.pixels())
                .filter(|(a, b)| a != b)
                .count();
            failures.push(format!(
                "{}: {differing} pixels differ (sizes {:?} vs {:?}); actual written to {}",
                scene.name,
                golden.dimensions(),
                scene.image.dimensions(),
                actual.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "golden images differ:\n{}\nIf the change is intended, regenerate with \
         `cargo run --release -p firmware --features preview --bin preview -- --out firmware/tests/golden`",
        failures.join("\n")
    );
}

#[test]
fn scenes_show_something() {
    // Guards the goldens themselves: every scene has both dark and lit pixels.
    let model = Model::parse(include_bytes!("../assets/test-mlp-cond.gtfw")).unwrap();
    for scene in render_scenes(&model, 0, 1).unwrap() {
        let lit = scene
            .image
            .pixels()
            .filter(|p| p.0.iter().any(|&c| c > 128))
            .count();
        let total = scene.image.pixels().count();
        assert!(
            lit > total / 20 && lit < total * 9 / 10,
            "{}: {lit} of {total} lit",
            scene.name
        );
    }
}
