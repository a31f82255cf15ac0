"""Other ONNX forms of a Gantry dcgan generator's transposed convolutions, to time in tract.

    python3 scripts/tract_graph_forms.py IN.onnx OUT_DIR     # needs `onnx` and `onnxruntime`
    runtime bench --model OUT_DIR/<form>.onnx --precision f32  # for each form written

Issue 14 asked whether a graph shaped for tract beats tract's own ConvTranspose. This script
writes the same generator (weights, metadata, inputs and outputs unchanged) in three forms
and checks each against the original with ONNX Runtime:

- conv:     stride-1 ConvTranspose -> Conv with the flipped, transposed kernel (same MACs);
- subpixel: conv, plus every stride-2 3x3 ConvTranspose (padding 1, output padding 1) -> one
            2x2 Conv giving the four output phases as 4*c_out channels, then DepthToSpace
            (16 taps computed where 9 are non-zero: 1.78x the MACs);
- matmul:   every ConvTranspose -> one MatMul of the NHWC input by the [c_in, 9*c_out] kernel
            (one large product over batch*pixels rows), then the nine taps shifted (Slice/Pad)
            and summed per output phase, phases interleaved by Reshape (same MACs).

The measured results are in docs/BENCHMARKS.md ("Graph forms for tract"). The runtime keeps
the original form: none of these was faster in tract at batch 64.
"""
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

# Phase r of a stride-2, padding-1 transposed convolution reads kernel row k at input row
# m + d: out[2m + r] = sum over (k, d) in TAPS[r] of x[m + d] * w[k].
TAPS = {0: [(1, 0)], 1: [(2, 0), (0, 1)]}


class Rewriter:
    def __init__(self, model):
        self.model = model
        self.graph = model.graph
        self.inits = {i.name: i for i in self.graph.initializer}
        inferred = onnx.shape_inference.infer_shapes(model).graph.value_info
        self.dims = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in inferred}
        self.nodes = []
        self.count = 0

    def fresh(self, prefix):
        self.count += 1
        return f"{prefix}.form{self.count}"

    def const(self, prefix, array):
        name = self.fresh(prefix)
        self.graph.initializer.append(numpy_helper.from_array(array, name))
        return name

    def node(self, op, inputs, prefix, output=None, **attrs):
        output = output or self.fresh(prefix)
        self.nodes.append(helper.make_node(op, inputs, [output], name=output + ".node", **attrs))
        return output

    def weights(self, n):
        w = numpy_helper.to_array(self.inits[n.input[1]]).astype(np.float32)  # [c_in, c_out, 3, 3]
        b = numpy_helper.to_array(self.inits[n.input[2]]).astype(np.float32)
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        assert w.shape[2:] == (3, 3) and attrs["pads"] == [1, 1, 1, 1], "3x3 kernels, padding 1"
        return w, b, attrs["strides"][0]

    def finish(self, path):
        del self.graph.node[:]
        self.graph.node.extend(self.nodes)
        onnx.checker.check_model(self.model)
        onnx.save(self.model, path)


def conv_forms(model, subpixel):
    r = Rewriter(model)
    for n in model.graph.node:
        if n.op_type != "ConvTranspose":
            r.nodes.append(n)
            continue
        w, b, stride = r.weights(n)
        c_in, c_out = w.shape[:2]
        if stride == 1:
            kernel = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
            r.node("Conv", [n.input[0], r.const("w", kernel), n.input[2]], "conv",
                   output=n.output[0], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
        elif subpixel:
            kernel = np.zeros((4 * c_out, c_in, 2, 2), np.float32)
            for pr in (0, 1):
                for pc in (0, 1):
                    for ky, dy in TAPS[pr]:
                        for kx, dx in TAPS[pc]:
                            block = slice((pr * 2 + pc) * c_out, (pr * 2 + pc + 1) * c_out)
                            kernel[block, :, dy, dx] = w[:, :, ky, kx].T
            phases = r.node("Conv", [n.input[0], r.const("w", kernel), r.const("b", np.tile(b, 4))],
                            "phases", kernel_shape=[2, 2], pads=[0, 0, 1, 1])
            r.node("DepthToSpace", [phases], "d2s", output=n.output[0], blocksize=2, mode="DCR")
        else:
            r.nodes.append(n)
    return r


def matmul_form(model):
    r = Rewriter(model)
    nhwc = {}
    big = np.iinfo(np.int64).max
    for n in model.graph.node:
        if n.op_type == "ConvTranspose":
            w, b, stride = r.weights(n)
            c_in, c_out = w.shape[:2]
            height, width = r.dims[n.input[0]][2:]
            if n.input[0] not in nhwc:
                nhwc[n.input[0]] = r.node("Transpose", [n.input[0]], "nhwc", perm=[0, 2, 3, 1])
            kernel = np.ascontiguousarray(w.transpose(0, 2, 3, 1).reshape(c_in, 9 * c_out))
            taps = r.node("MatMul", [nhwc[n.input[0]], r.const("w", kernel)], "taps")
            taps = r.node("Reshape", [taps, r.const("s", np.array([0, 0, 0, 3, 3, c_out]))], "taps6")

            def tap(ky, kx, dy, dx):
                t = r.node("Slice", [taps, r.const("st", np.array([ky, kx])),
                                     r.const("en", np.array([ky + 1, kx + 1])),
                                     r.const("ax", np.array([3, 4]))], "tap")
                t = r.node("Squeeze", [t, r.const("sq", np.array([3, 4]))], "tapq")
                if dy == 0 and dx == 0:
                    return t
                pads = [0, max(-dy, 0), max(-dx, 0), 0, 0, max(dy, 0), max(dx, 0), 0]
                t = r.node("Pad", [t, r.const("pd", np.array(pads))], "tapp")
                ends = [-max(-d, 0) if d < 0 else big for d in (dy, dx)]
                return r.node("Slice", [t, r.const("s0", np.array([max(dy, 0), max(dx, 0)])),
                                        r.const("e0", np.array(ends)),
                                        r.const("a12", np.array([1, 2]))], "taps")

            if stride == 1:
                out = r.node("Sum", [tap(ky, kx, 1 - ky, 1 - kx)
                                     for ky in range(3) for kx in range(3)], "sum")
            else:
                rows = []
                for pr in (0, 1):
                    row = []
                    for pc in (0, 1):
                        parts = [tap(ky, kx, dy, dx) for ky, dy in TAPS[pr] for kx, dx in TAPS[pc]]
                        p = parts[0] if len(parts) == 1 else r.node("Sum", parts, "phase")
                        row.append(r.node("Unsqueeze", [p, r.const("u", np.array([3]))], "pu"))
                    row = r.node("Concat", row, "row", axis=3)
                    rows.append(r.node("Unsqueeze", [row, r.const("u", np.array([2]))], "ru"))
                out = r.node("Concat", rows, "phases", axis=2)  # [N, H, 2, W, 2, c_out]
                shape = np.array([0, 2 * height, 2 * width, c_out])
                out = r.node("Reshape", [out, r.const("s", shape)], "interleaved")
            nhwc[n.output[0]] = r.node("Add", [out, r.const("b", b)], "biased")
        elif n.op_type in ("LeakyRelu", "Tanh") and n.input[0] in nhwc:
            attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
            out = r.node(n.op_type, [nhwc[n.input[0]]], "act", **attrs)
            nhwc[n.output[0]] = out
            if n.output[0] == model.graph.output[0].name:
                r.node("Transpose", [out], "nchw", output=n.output[0], perm=[0, 3, 1, 2])
        else:
            r.nodes.append(n)
    return r


def max_diff(original, rewritten):
    model = onnx.load(original)
    z_dim = model.graph.input[0].type.tensor_type.shape.dim[1].dim_value
    feeds = {"z": np.random.default_rng(0).standard_normal((5, z_dim)).astype(np.float32)}
    if len(model.graph.input) > 1:
        feeds["label"] = np.arange(5, dtype=np.int64) % 10
    options = ort.SessionOptions()
    options.log_severity_level = 3
    a = ort.InferenceSession(original, options).run(None, feeds)[0]
    b = ort.InferenceSession(rewritten, options).run(None, feeds)[0]
    return float(np.abs(a - b).max())


def main():
    src, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    for form, build in [("conv", lambda m: conv_forms(m, False)),
                        ("subpixel", lambda m: conv_forms(m, True)),
                        ("matmul", matmul_form)]:
        path = out / f"{form}.onnx"
        build(onnx.load(src)).finish(path)
        diff = max_diff(src, str(path))
        assert diff < 1e-5, f"{form}: differs from the original by {diff}"
        print(f"{path}: max |diff| vs the original {diff:.1e} (ONNX Runtime, 5 samples)")


if __name__ == "__main__":
    main()
