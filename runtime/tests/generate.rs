//! Generation: seeded determinism, labels, and the errors a caller can trigger.

mod common;

use runtime::Error;
use runtime::generator::Generator;
use runtime::noise::noise;

fn load(spec: &runtime::spec::GeneratorSpec) -> (tempfile::TempDir, Generator) {
    let dir = tempfile::tempdir().unwrap();
    let path = common::write(spec, dir.path(), "m");
    let g = Generator::load(&path).unwrap();
    (dir, g)
}

#[test]
fn same_seed_same_images_other_seed_other_images() {
    let (_d, g) = load(&common::dcgan(1, true));
    let a = g.generate(70, None, 42).unwrap();
    let b = g.generate(70, None, 42).unwrap();
    assert_eq!(a, b);
    // A freshly loaded generator (new plans) gives bit-identical output too.
    let (_d2, g2) = load(&common::dcgan(1, true));
    assert_eq!(a, g2.generate(70, None, 42).unwrap());
    let c = g.generate(70, None, 43).unwrap();
    assert!(common::max_abs_diff(&a.pixels, &c.pixels) > 0.1);
    // Prefix property: the first 10 of 70 are the 10 of a request for 10 (another batch size, so
    // another tract plan: equal up to float rounding).
    let d = g.generate(10, None, 42).unwrap();
    assert!(common::max_abs_diff(&a.pixels[..d.pixels.len()], &d.pixels) <= 1e-5);
    assert_eq!(a.labels.as_ref().unwrap()[..10], d.labels.unwrap()[..]);
}

#[test]
fn generate_is_run_on_the_documented_noise() {
    let spec = common::mlp(3, true);
    let (_d, g) = load(&spec);
    let samples = g.generate(20, Some(7), 9).unwrap();
    let z = noise(20, spec.z_dim, 9);
    let labels = vec![7i64; 20];
    assert_eq!(samples.pixels, g.run(&z, Some(&labels)).unwrap());
    assert_eq!(samples.labels, Some(vec![7; 20]));
    assert_eq!(samples.len(), 20);
    assert_eq!(samples.image(3).len(), 28 * 28);
}

#[test]
fn balanced_labels_cycle_through_classes() {
    let (_d, g) = load(&common::mlp(3, true));
    let s = g.generate(25, None, 0).unwrap();
    let labels = s.labels.unwrap();
    assert_eq!(labels, (0..25).map(|i| i % 10).collect::<Vec<_>>());
}

#[test]
fn caller_errors() {
    let (_d, cond) = load(&common::mlp(3, true));
    assert!(matches!(cond.generate(0, None, 0), Err(Error::ZeroCount)));
    let err = cond.generate(5, Some(10), 0).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ClassOutOfRange {
                class: 10,
                classes: 10
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("0 to 9"), "{err}");
    assert!(matches!(
        cond.run(&noise(2, 16, 0), None),
        Err(Error::Input { .. })
    ));
    assert!(matches!(
        cond.run(&noise(2, 16, 0), Some(&[1])),
        Err(Error::Input { .. })
    ));
    assert!(matches!(
        cond.run(&noise(2, 16, 0), Some(&[1, -1])),
        Err(Error::Input { .. })
    ));
    assert!(matches!(
        cond.run(&noise(2, 16, 0), Some(&[1, 12])),
        Err(Error::ClassOutOfRange { class: 12, .. })
    ));
    assert!(matches!(
        cond.run(&[0.0; 17], Some(&[1])),
        Err(Error::Input { .. })
    ));
    assert!(matches!(cond.run(&[], Some(&[])), Err(Error::Input { .. })));

    let (_d, uncond) = load(&common::mlp(3, false));
    assert!(matches!(
        uncond.generate(5, Some(0), 0),
        Err(Error::NotConditional)
    ));
    assert!(matches!(
        uncond.run(&noise(1, 16, 0), Some(&[0])),
        Err(Error::NotConditional)
    ));
    assert!(uncond.generate(5, None, 0).unwrap().labels.is_none());
    assert!(matches!(
        Generator::load(common::write(&common::mlp(3, false), _d.path(), "x"))
            .unwrap()
            .with_batch_size(0),
        Err(Error::Input { .. })
    ));
}

#[test]
fn odd_batch_sizes_give_the_same_images() {
    let (_d, g) = load(&common::dcgan(6, false));
    let a = g.generate(40, None, 1).unwrap();
    let (_d2, g7) = load(&common::dcgan(6, false));
    let b = g7
        .with_batch_size(7)
        .unwrap()
        .generate(40, None, 1)
        .unwrap();
    assert!(common::max_abs_diff(&a.pixels, &b.pixels) <= 1e-5);
}

#[test]
fn tract_on_several_threads_gives_the_same_images_bit_for_bit() {
    for name in ["mnist-dcgan-cond", "mnist-mlp-cond"] {
        let path = common::shipped(&format!("{name}.onnx"));
        let one = Generator::load(&path).unwrap().with_batch_size(64).unwrap();
        let reference = one.generate(130, None, 5).unwrap();
        for threads in [2, 3] {
            let many = Generator::load(&path)
                .unwrap()
                .with_batch_size(64)
                .unwrap()
                .with_threads(threads)
                .unwrap();
            assert_eq!(many.threads(), threads);
            assert_eq!(
                many.generate(130, None, 5).unwrap(),
                reference,
                "{name} on {threads} threads"
            );
        }
    }
    let g = Generator::load(common::shipped("mnist-mlp.onnx")).unwrap();
    assert!(matches!(g.with_threads(0), Err(Error::Input { .. })));
}

#[test]
fn threads_auto_keeps_the_faster_of_one_and_many_threads() {
    let path = common::shipped("mnist-mlp-cond.onnx");
    let reference = Generator::load(&path)
        .unwrap()
        .generate(70, None, 3)
        .unwrap();
    let auto = Generator::load(&path)
        .unwrap()
        .with_auto_threads(2)
        .unwrap();
    let choice = *auto.thread_choice().expect("a measured choice");
    assert_eq!(choice.tried, 2);
    assert_eq!(auto.threads(), choice.chosen);
    let faster = if choice.many_threads_us_per_sample < choice.one_thread_us_per_sample {
        2
    } else {
        1
    };
    assert_eq!(choice.chosen, faster, "{choice:?}");
    assert!(choice.one_thread_us_per_sample > 0.0 && choice.many_threads_us_per_sample > 0.0);
    assert_eq!(auto.generate(70, None, 3).unwrap(), reference);
    // One thread asked for: nothing to choose between.
    let one = Generator::load(&path)
        .unwrap()
        .with_auto_threads(1)
        .unwrap();
    assert!(one.thread_choice().is_none());
    assert_eq!(one.threads(), 1);
}
