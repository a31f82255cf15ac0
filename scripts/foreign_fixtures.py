"""Makes the foreign-generator test fixtures in runtime/tests/fixtures/foreign/.

Each fixture is a small, untrained generator exported by the real exporter a user would run:
`torch.onnx.export` (PyTorch, NCHW) or tf2onnx (TensorFlow/Keras, NHWC). Beside each NAME.onnx
goes NAME.json: the exporter, the framework versions, a few noise vectors (and labels) and the
framework's own outputs for them, raw (in the framework's layout and pixel range), so the
runtime's tests can check `runtime adopt` against the framework itself without torch or
TensorFlow installed.

Run it through scripts/make-foreign-fixtures.sh, which creates the Python environments.

    python foreign_fixtures.py torch OUT_DIR     # needs torch, onnx
    python foreign_fixtures.py tf OUT_DIR        # needs tensorflow, tf2onnx
"""

import json
import os
import sys

import numpy as np

Z_DIM = 16
SEED = 7


def save(out_dir, name, exporter, versions, inputs, output, notes):
    """Writes NAME.json with the framework's outputs for `inputs`."""
    record = {
        "name": name,
        "exporter": exporter,
        "versions": versions,
        "notes": notes,
        "inputs": {k: np.asarray(v).tolist() for k, v in inputs.items()},
        "output_shape": list(output.shape),
        "output": np.asarray(output, dtype=np.float64).ravel().tolist(),
    }
    with open(os.path.join(out_dir, name + ".json"), "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")


def torch_fixtures(out_dir):
    import torch
    from torch import nn

    torch.manual_seed(SEED)
    versions = {"torch": torch.__version__}
    z = torch.randn(3, Z_DIM)
    labels = torch.tensor([0, 7, 3], dtype=torch.int64)

    class Mlp(nn.Module):
        """The book's MLP generator, small: NCHW [N,1,28,28] in [-1,1]."""

        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(
                nn.Linear(Z_DIM, 32), nn.LeakyReLU(0.01), nn.Linear(32, 784), nn.Tanh()
            )

        def forward(self, noise):
            return self.net(noise).view(-1, 1, 28, 28)

    class CondMlpFlat(nn.Module):
        """Conditional (label embedding), flat [N,784] output in [0,1] (Sigmoid)."""

        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(10, 8)
            self.net = nn.Sequential(
                nn.Linear(Z_DIM + 8, 32), nn.LeakyReLU(0.2), nn.Linear(32, 784), nn.Sigmoid()
            )

        def forward(self, z, label):
            return self.net(torch.cat([z, self.embed(label)], dim=1))

    class Dcgan(nn.Module):
        """PyTorch's DCGAN tutorial shape, small: z [N,16,1,1] -> [N,1,14,14] in [-1,1]."""

        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(
                nn.ConvTranspose2d(Z_DIM, 8, 7, 1, 0, bias=False),
                nn.BatchNorm2d(8),
                nn.ReLU(True),
                nn.ConvTranspose2d(8, 1, 4, 2, 1, bias=False),
                nn.Tanh(),
            )

        def forward(self, z):
            return self.net(z)

    def export(model, name, args, input_names, notes, dynamo=False):
        model.eval()
        # Give BatchNorm running statistics that are not the identity.
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
        with torch.no_grad():
            output = model(*args).numpy()
        path = os.path.join(out_dir, name + ".onnx")
        if dynamo:
            # The default exporter since PyTorch 2.9 (torch.export based).
            batch = torch.export.Dim("batch")
            torch.onnx.export(
                model,
                args,
                path,
                input_names=input_names,
                output_names=["output"],
                dynamic_shapes=tuple({0: batch} for _ in args),
                opset_version=18,
                dynamo=True,
                external_data=False,
            )
            exporter = "torch.onnx.export (dynamo=True, the default exporter, opset 18)"
        else:
            torch.onnx.export(
                model,
                args,
                path,
                input_names=input_names,
                output_names=["output"],
                dynamic_axes={**{n: {0: "batch"} for n in input_names}, "output": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
            exporter = "torch.onnx.export (dynamo=False, the TorchScript exporter, opset 17)"
        inputs = {n: a.numpy() for n, a in zip(input_names, args)}
        save(out_dir, name, exporter, versions, inputs, output, notes)

    export(Mlp(), "torch-mlp", (z,), ["noise"], "NCHW [N,1,28,28], Tanh: nothing to ask")
    export(
        Mlp(),
        "torch-mlp-dynamo",
        (z,),
        ["noise"],
        "the same model through the torch.export-based exporter",
        dynamo=True,
    )
    export(
        CondMlpFlat(),
        "torch-mlp-cond-flat",
        (z, labels),
        ["z", "label"],
        "flat [N,784], Sigmoid (pixels in [0,1]), label embedding of 10 classes: needs --image",
    )
    export(
        Dcgan(),
        "torch-dcgan",
        (z.view(-1, Z_DIM, 1, 1),),
        ["z"],
        "z [N,16,1,1], NCHW [N,1,14,14], Tanh",
    )


def tf_fixtures(out_dir):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    import tf2onnx

    tf.keras.utils.set_random_seed(SEED)
    versions = {"tensorflow": tf.__version__, "tf2onnx": tf2onnx.__version__}
    z = np.random.default_rng(SEED).standard_normal((3, Z_DIM)).astype(np.float32)

    def convert(model, name, notes):
        output = model(z, training=False).numpy()
        spec = (tf.TensorSpec((None, Z_DIM), tf.float32, name="z"),)
        path = os.path.join(out_dir, name + ".onnx")
        # tf2onnx's from_keras does not know Keras 3 models; converting the model's inference
        # function is what tf2onnx recommends for them.
        forward = tf.function(lambda z: model(z, training=False), input_signature=spec)
        tf2onnx.convert.from_function(forward, input_signature=spec, opset=17, output_path=path)
        save(out_dir, name, "tf2onnx.convert.from_function (opset 17)", versions, {"z": z}, output, notes)

    # The book's chapter-3 generator, small: Dense, LeakyReLU, Dense, tanh, Reshape (28,28,1).
    mlp = tf.keras.Sequential(
        [
            tf.keras.Input((Z_DIM,)),
            tf.keras.layers.Dense(32),
            tf.keras.layers.LeakyReLU(0.01),
            tf.keras.layers.Dense(784, activation="tanh"),
            tf.keras.layers.Reshape((28, 28, 1)),
        ]
    )
    convert(mlp, "tf-mlp", "NHWC [N,28,28,1], tanh")

    # A small RGB DCGAN: the channels-last layout really moves data here.
    dcgan = tf.keras.Sequential(
        [
            tf.keras.Input((Z_DIM,)),
            tf.keras.layers.Dense(4 * 4 * 8),
            tf.keras.layers.Reshape((4, 4, 8)),
            tf.keras.layers.BatchNormalization(),
            tf.keras.layers.LeakyReLU(0.2),
            tf.keras.layers.Conv2DTranspose(3, 4, strides=2, padding="same", activation="tanh"),
        ]
    )
    convert(dcgan, "tf-dcgan-rgb", "NHWC [N,8,8,3], tanh: a real transpose to NCHW")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("torch", "tf"):
        sys.exit(__doc__)
    os.makedirs(sys.argv[2], exist_ok=True)
    (torch_fixtures if sys.argv[1] == "torch" else tf_fixtures)(sys.argv[2])
