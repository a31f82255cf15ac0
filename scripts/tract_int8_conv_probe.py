"""Probe: would int8 convolutions pay in tract? Writes a dcgan generator with every Conv as
ConvInteger, to time against its f32 form.

    python3 scripts/tract_graph_forms.py models/mnist-dcgan-cond.onnx /tmp/forms
    python3 scripts/tract_int8_conv_probe.py /tmp/forms/subpixel.onnx /tmp/forms/subpixel-int8.onnx
    runtime bench --model /tmp/forms/subpixel-int8.onnx --precision f32      # x86, here
    # aarch64: time `runtime generate` of both files under qemu-aarch64 (docs/BENCHMARKS.md)

Issue 14 asks for int8 transposed convolutions. Neither ONNX nor tract has an integer
ConvTranspose, but `scripts/tract_graph_forms.py` rewrites every transposed convolution of
a Gantry dcgan as Conv (+ DepthToSpace for the stride-2 ones), and ONNX has ConvInteger.
This script quantizes each Conv of such a file the way `runtime quantize` quantizes Dense
layers: activations per tensor (uint8, min/max over 512 calibration samples of seeded noise,
range widened to include 0), weights per output channel (symmetric int8), as
QuantizeLinear -> ConvInteger -> Cast -> Mul(scale) -> Add(bias). The Gemm and everything
else stay f32, so timing the result against its input isolates the convolutions. It checks
the output against the f32 file with ONNX Runtime and prints the error.

It measured whether to build this into `runtime quantize`, which now writes the same form
(`runtime::quantize::ConvForm`); it stays as a quick way to try other forms and calibrations
on a file. The results are in docs/BENCHMARKS.md ("int8 convolutions in tract: a probe").
"""
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


def main():
    src, dst = sys.argv[1], sys.argv[2]
    model = onnx.load(src)
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    z_dim = next(i for i in graph.input if i.name == "z").type.tensor_type.shape.dim[1].dim_value
    rng = np.random.default_rng(0)

    def feeds(n):
        return {
            "z": rng.standard_normal((n, z_dim)).astype(np.float32),
            "label": (np.arange(n) % 10).astype(np.int64),
        }

    # Calibration: every Conv input as an extra output of the f32 graph.
    probe = onnx.load(src)
    for n in convs:
        probe.graph.output.append(helper.make_tensor_value_info(n.input[0], TensorProto.FLOAT, None))
    seen = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    values = seen.run(None, feeds(512))[1:]
    ranges = {n.input[0]: (min(0.0, float(v.min())), max(0.0, float(v.max()))) for n, v in zip(convs, values)}

    count = 0

    def const(prefix, array):
        nonlocal count
        count += 1
        name = f"{prefix}.probe{count}"
        graph.initializer.append(numpy_helper.from_array(array, name))
        return name

    nodes = []
    for n in graph.node:
        if n.op_type != "Conv":
            nodes.append(n)
            continue
        x = n.input[0]
        lo, hi = ranges[x]
        sx = (hi - lo) / 255.0
        zp = int(np.clip(round(-lo / sx), 0, 255))
        w = numpy_helper.to_array(inits[n.input[1]]).astype(np.float32)
        b = (numpy_helper.to_array(inits[n.input[2]]).astype(np.float32)
             if len(n.input) > 2 else np.zeros(w.shape[0], np.float32))
        sw = np.maximum(np.abs(w).reshape(w.shape[0], -1).max(1), 1e-12) / 127.0
        wq = np.clip(np.round(w / sw[:, None, None, None]), -127, 127).astype(np.int8)
        codes, acc, real, scaled = (f"{x}.probe_{s}" for s in ("codes", "acc", "real", "scaled"))
        zero = const("zero_point", np.array(zp, np.uint8))
        nodes.append(helper.make_node("QuantizeLinear", [x, const("scale", np.array(sx, np.float32)), zero], [codes]))
        conv = helper.make_node("ConvInteger", [codes, const("weight", wq), zero], [acc])
        conv.attribute.extend(n.attribute)
        nodes.append(conv)
        nodes.append(helper.make_node("Cast", [acc], [real], to=TensorProto.FLOAT))
        nodes.append(helper.make_node("Mul", [real, const("scales", (sx * sw).astype(np.float32).reshape(1, -1, 1, 1))], [scaled]))
        nodes.append(helper.make_node("Add", [scaled, const("bias", b.reshape(1, -1, 1, 1))], [n.output[0]]))
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, dst)

    batch = feeds(200)
    want = ort.InferenceSession(src, providers=["CPUExecutionProvider"]).run(None, batch)[0]
    got = ort.InferenceSession(dst, providers=["CPUExecutionProvider"]).run(None, batch)[0]
    d = np.abs(want - got)
    print(f"{dst}: {len(convs)} Conv -> ConvInteger; vs f32 (ONNX Runtime, 200 samples): "
          f"mean {d.mean():.4f}, p99 {np.percentile(d, 99):.3f}, max {d.max():.3f} (pixels in [-1, 1])")


if __name__ == "__main__":
    main()
