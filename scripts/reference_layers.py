"""The layers of trainer/benches/layers.rs, in TensorFlow (the reference's framework).

    python reference_layers.py

Prints one `layer=... fwd_ms=... fwd_bwd_ms=...` line per layer, with the same names,
batch (128), warm-up (2 runs) and statistic (median of 9 runs) as the Rust bench. Images
are NHWC, TensorFlow's CPU layout, as in ../shared/reference/keras_ch3_gan.py. The
backward pass computes the gradients of the input and of the layer's variables.
"""
import time

import tensorflow as tf
from tensorflow import keras
from tensorflow.keras import layers

BATCH, RUNS = 128, 9


def median_ms(f, *args):
    for _ in range(2):
        f(*args).numpy()
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        f(*args).numpy()
        times.append((time.perf_counter() - start) * 1e3)
    return sorted(times)[RUNS // 2]


def report(name, x, layer):
    layer(x)  # builds the variables
    forward = tf.function(lambda x: tf.reduce_sum(layer(x, training=True)))

    @tf.function
    def backward(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(layer(x, training=True))
        grads = tape.gradient(y, [x] + layer.trainable_variables)
        return tf.add_n([tf.reduce_sum(g) for g in grads])

    print(f"layer={name} fwd_ms={median_ms(forward, x):.2f} fwd_bwd_ms={median_ms(backward, x):.2f}",
          flush=True)


def normal(*shape):
    return tf.random.normal(shape)


a = normal(2048, 2048)
ms = median_ms(tf.function(lambda a: tf.reduce_sum(a @ a)), a)
print(f"layer=matmul_2048 fwd_ms={ms:.2f} gflops={2 * 2048**3 / ms / 1e6:.0f}")

report("mlp_dense_128_784_tanh", normal(BATCH, 128), layers.Dense(784, activation="tanh"))
report("mlp_dense_784_128_lrelu", normal(BATCH, 784),
       keras.Sequential([layers.Dense(128), layers.LeakyReLU(0.01)]))
report("mlp_sigmoid_128x784", normal(BATCH, 784), layers.Activation("sigmoid"))

report("dcgan_dense_100_12544", normal(BATCH, 100), layers.Dense(7 * 7 * 256))
for c_in, c_out, stride, side in [(256, 128, 2, 7), (128, 64, 1, 14), (64, 1, 2, 14)]:
    report(f"dcgan_convT_{c_in}_{c_out}_s{stride}", normal(BATCH, side, side, c_in),
           layers.Conv2DTranspose(c_out, 3, strides=stride, padding="same"))
for channels in [128, 64]:
    report(f"dcgan_bn_lrelu_{channels}x14x14", normal(BATCH, 14, 14, channels),
           keras.Sequential([layers.BatchNormalization(), layers.LeakyReLU(0.01)]))

for c_in, c_out, side in [(1, 32, 28), (32, 64, 14), (64, 128, 7)]:
    report(f"dcgan_conv_{c_in}_{c_out}_s2", normal(BATCH, side, side, c_in),
           layers.Conv2D(c_out, 3, strides=2, padding="same"))
