//! Imports the shipped ONNX generators back into burn with `burn-onnx`'s `ModelGen`, so
//! `tests/onnx_round_trip.rs` can check that an exported graph means the same thing to
//! burn as to tract.

fn main() {
    for model in ["mnist-mlp", "mnist-mlp-cond"] {
        let path = format!("../models/{model}.onnx");
        println!("cargo:rerun-if-changed={path}");
        burn_onnx::ModelGen::new()
            .input(&path)
            .out_dir("model/")
            .run_from_script();
    }
}
