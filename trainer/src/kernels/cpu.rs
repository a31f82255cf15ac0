//! Convolution arithmetic on plain `f32` slices: im2col / col2im around one matrix
//! product per sample, samples spread over the rayon pool.
//!
//! Every convolution-shaped operation of a training step is one of three products
//! (`K` = image channels × kernel height × kernel width, `P` = map pixels):
//!
//! - [`im2col_matmul`]: map = weight `[map_c, K]` · im2col(image) `[K, P]` — a
//!   convolution's forward pass, and a transposed convolution's input gradient;
//! - [`matmul_col2im`]: image = col2im(weightᵀ `[K, map_c]` · map `[map_c, P]`) — a
//!   convolution's input gradient, and a transposed convolution's forward pass;
//! - [`weight_grad`]: Σ over samples of map `[map_c, P]` · im2col(image)ᵀ `[P, K]` — the
//!   weight gradient of both.
//!
//! burn's flex backend has no convolution backward of its own: burn's generic fallback
//! computes a weight gradient as a convolution with the batch and channel axes swapped,
//! which flex runs as many thin products plus transposing copies, and an input gradient
//! as a transposed convolution that materialises its own buffers. Here each gradient is
//! one well-shaped product per sample through the `gemm` crate (the kernel flex itself
//! uses for matmul), with the patch matrix built once and no transposing copies: the
//! transposes are strides handed to `gemm`.

use std::cell::RefCell;

use rayon::prelude::*;

/// Runs `f` compiled for the best instruction set this CPU has (AVX2 + FMA on most x86
/// machines), chosen at run time by `pulp`, so the plain loops inside auto-vectorise
/// wider than the SSE2 baseline the crate is built for. Everything `f` calls must be
/// `#[inline(always)]` to be compiled the same way.
#[inline(always)]
pub(super) fn simd<R>(f: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(f)
}

/// Σ f(a_i, b_i) and Σ g(a_i, b_i) over two equally long slices, in eight independent
/// lanes: one float accumulator cannot be reordered, so the compiler would not
/// vectorise it.
#[inline(always)]
fn lane_sums(
    a: &[f32],
    b: &[f32],
    f: impl Fn(f32, f32) -> f32,
    g: impl Fn(f32, f32) -> f32,
) -> (f32, f32) {
    const LANES: usize = 8;
    let (mut fs, mut gs) = ([0.0f32; LANES], [0.0f32; LANES]);
    let (chunks_a, chunks_b) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (rest_a, rest_b) = (chunks_a.remainder(), chunks_b.remainder());
    for (x, y) in chunks_a.zip(chunks_b) {
        for l in 0..LANES {
            fs[l] += f(x[l], y[l]);
            gs[l] += g(x[l], y[l]);
        }
    }
    let (mut f_tail, mut g_tail) = (0.0, 0.0);
    for (&x, &y) in rest_a.iter().zip(rest_b) {
        f_tail += f(x, y);
        g_tail += g(x, y);
    }
    (
        fs.iter().sum::<f32>() + f_tail,
        gs.iter().sum::<f32>() + g_tail,
    )
}

/// leaky_relu(z) without a branch: max(z, 0) + slope·min(z, 0).
#[inline(always)]
pub(super) fn leaky(z: f32, slope: f32) -> f32 {
    z.max(0.0) + slope * z.min(0.0)
}

/// One 2-D convolution seen from its large side, the *image*, and its small side, the
/// *map*: a convolution reads the image and writes the map, a transposed convolution
/// reads the map and writes the image. Groups 1, dilation 1, symmetric padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Samples in the batch.
    pub batch: usize,
    /// Image side `[channels, height, width]`.
    pub image: [usize; 3],
    /// Map side `[channels, height, width]`.
    pub map: [usize; 3],
    /// Kernel `[height, width]`.
    pub kernel: [usize; 2],
    /// Stride `[height, width]`.
    pub stride: [usize; 2],
    /// Zero padding of the image `[height, width]`, the same on both sides.
    pub padding: [usize; 2],
}

impl ConvGeometry {
    /// Map side `[height, width]` that a convolution of `image_hw` gives.
    pub fn map_side(
        image_hw: [usize; 2],
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> Option<[usize; 2]> {
        let side = |i: usize| {
            (image_hw[i] + 2 * padding[i])
                .checked_sub(kernel[i])
                .map(|span| span / stride[i] + 1)
        };
        Some([side(0)?, side(1)?])
    }

    /// Rows of the patch matrix: image channels × kernel pixels.
    pub fn patch_len(&self) -> usize {
        self.image[0] * self.kernel[0] * self.kernel[1]
    }

    /// Pixels of one map channel.
    pub fn map_pixels(&self) -> usize {
        self.map[1] * self.map[2]
    }

    /// Values of one image sample.
    pub fn image_len(&self) -> usize {
        self.image.iter().product()
    }

    /// Values of one map sample.
    pub fn map_len(&self) -> usize {
        self.map.iter().product()
    }

    /// Values of the weight `[map_c, image_c, kh, kw]` (a convolution's
    /// `[c_out, c_in, kh, kw]`, a transposed convolution's `[c_in, c_out, kh, kw]`).
    pub fn weight_len(&self) -> usize {
        self.map[0] * self.patch_len()
    }

    /// Samples that share one matrix product: enough that the product has a few hundred
    /// columns (one sample of a 7×7 map has 49, too few for `gemm` to amortise packing
    /// the weight), few enough that the patch matrix stays within about 1 MiB of cache.
    pub fn samples_per_chunk(&self) -> usize {
        let (k, p) = (self.patch_len().max(1), self.map_pixels().max(1));
        let wide = 192usize.div_ceil(p);
        let fits = (256 * 1024 / (k * p)).max(1);
        wide.min(fits).clamp(1, self.batch.max(1))
    }

    /// Valid output columns `lo..hi` for kernel offset `k` along one axis: the map
    /// positions `o` whose image position `o·stride + k − padding` is inside `0..size`.
    #[inline(always)]
    fn valid(&self, axis: usize, k: usize) -> (usize, usize) {
        let (size, stride, pad, out) = (
            self.image[axis + 1],
            self.stride[axis],
            self.padding[axis],
            self.map[axis + 1],
        );
        let lo = pad.saturating_sub(k).div_ceil(stride);
        let hi = if size + pad > k {
            ((size + pad - k - 1) / stride + 1).min(out)
        } else {
            0
        };
        (lo.min(hi), hi)
    }
}

/// Fills columns `offset..offset + P` of `col` (`K` rows of `row_len` values) with the
/// patches of one image sample.
fn im2col(image: &[f32], g: &ConvGeometry, col: &mut [f32], row_len: usize, offset: usize) {
    simd(|| im2col_body(image, g, col, row_len, offset));
}

#[inline(always)]
fn im2col_body(image: &[f32], g: &ConvGeometry, col: &mut [f32], row_len: usize, offset: usize) {
    let [channels, height, width] = g.image;
    let [_, map_h, map_w] = g.map;
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.stride;
    let [ph, pw] = g.padding;
    let pixels = map_h * map_w;
    for c in 0..channels {
        let plane = &image[c * height * width..(c + 1) * height * width];
        for ky in 0..kh {
            let (y_lo, y_hi) = g.valid(0, ky);
            for kx in 0..kw {
                let (x_lo, x_hi) = g.valid(1, kx);
                let row = ((c * kh + ky) * kw + kx) * row_len + offset;
                let row = &mut col[row..row + pixels];
                row[..y_lo * map_w].fill(0.0);
                row[y_hi * map_w..].fill(0.0);
                for oy in y_lo..y_hi {
                    let src = &plane[(oy * sh + ky - ph) * width..][..width];
                    let dst = &mut row[oy * map_w..(oy + 1) * map_w];
                    dst[..x_lo].fill(0.0);
                    dst[x_hi..].fill(0.0);
                    if sw == 1 {
                        let start = x_lo + kx - pw;
                        dst[x_lo..x_hi].copy_from_slice(&src[start..start + x_hi - x_lo]);
                    } else {
                        for (ox, d) in dst[x_lo..x_hi].iter_mut().enumerate() {
                            *d = src[(x_lo + ox) * sw + kx - pw];
                        }
                    }
                }
            }
        }
    }
}

/// Adds the patches in columns `offset..offset + P` of `col` (`K` rows of `row_len`
/// values) back onto one image sample, which it overwrites.
fn col2im(col: &[f32], g: &ConvGeometry, image: &mut [f32], row_len: usize, offset: usize) {
    simd(|| col2im_body(col, g, image, row_len, offset));
}

#[inline(always)]
fn col2im_body(col: &[f32], g: &ConvGeometry, image: &mut [f32], row_len: usize, offset: usize) {
    let [channels, height, width] = g.image;
    let [_, map_h, map_w] = g.map;
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.stride;
    let [ph, pw] = g.padding;
    let pixels = map_h * map_w;
    image.fill(0.0);
    for c in 0..channels {
        let plane = &mut image[c * height * width..(c + 1) * height * width];
        for ky in 0..kh {
            let (y_lo, y_hi) = g.valid(0, ky);
            for kx in 0..kw {
                let (x_lo, x_hi) = g.valid(1, kx);
                let row = &col[((c * kh + ky) * kw + kx) * row_len + offset..][..pixels];
                for oy in y_lo..y_hi {
                    let dst = &mut plane[(oy * sh + ky - ph) * width..][..width];
                    let src = &row[oy * map_w..(oy + 1) * map_w];
                    if sw == 1 {
                        let start = x_lo + kx - pw;
                        for (d, s) in dst[start..start + x_hi - x_lo]
                            .iter_mut()
                            .zip(&src[x_lo..x_hi])
                        {
                            *d += s;
                        }
                    } else {
                        for (ox, s) in src[x_lo..x_hi].iter().enumerate() {
                            dst[(x_lo + ox) * sw + kx - pw] += s;
                        }
                    }
                }
            }
        }
    }
}

/// A read-only matrix view: element `(r, c)` is `data[r·row_stride + c·col_stride]`.
#[derive(Clone, Copy)]
pub(super) struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A row-major `rows × cols` matrix.
    pub(super) fn rows(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose of a row-major `cols × rows` matrix, without copying.
    pub(super) fn transposed(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            row_stride: 1,
            col_stride: rows,
        }
    }

    /// True when every element the view names lies inside `data`.
    fn in_bounds(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride
                < self.data.len()
    }
}

/// `out` (row-major `a.rows × b.cols`) = `a · b`, or `out + a · b` when `accumulate`;
/// `gemm` splits the product over the rayon pool as `parallelism` says.
///
/// The views are bounds-checked here, so the callers stay safe code.
pub(super) fn matmul(
    out: &mut [f32],
    a: MatRef,
    b: MatRef,
    accumulate: bool,
    parallelism: gemm::Parallelism,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows, "matmul: inner dimensions differ");
    assert!(out.len() >= m * n, "matmul: output too small");
    assert!(a.in_bounds() && b.in_bounds(), "matmul: view out of bounds");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            out[..m * n].fill(0.0);
        }
        return;
    }
    // SAFETY: the three views were checked above to lie inside their slices, and `out`
    // holds at least m·n values, is exclusively borrowed and does not alias `a` or `b`
    // (they are shared borrows).
    unsafe { gemm_raw(out.as_mut_ptr(), a, b, accumulate, parallelism) }
}

/// `a · b` as a new row-major `a.rows × b.cols` buffer. `gemm` told not to read its
/// destination writes every value of it without reading any, so the buffer is not
/// zero-filled first (fresh zeroed buffers were 5 % of an `mlp` training step).
pub(super) fn product(a: MatRef, b: MatRef, parallelism: gemm::Parallelism) -> Vec<f32> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows, "product: inner dimensions differ");
    assert!(
        a.in_bounds() && b.in_bounds(),
        "product: view out of bounds"
    );
    if m == 0 || n == 0 || k == 0 {
        return vec![0.0; m * n];
    }
    let mut out = Vec::<f32>::with_capacity(m * n);
    // SAFETY: the views lie inside their slices (checked above); the destination is the
    // vector's own capacity of m·n values, which aliases nothing; with `accumulate`
    // false `gemm` only writes it, every value of it, before `set_len` exposes them.
    unsafe {
        gemm_raw(out.as_mut_ptr(), a, b, false, parallelism);
        out.set_len(m * n);
    }
    out
}

/// `dst` (row-major `a.rows × b.cols`, row stride `b.cols`) = `a · b`, or `+=` when
/// `accumulate`, through `gemm`'s raw-pointer entry point.
///
/// # Safety
/// `a` and `b` lie inside their slices, `a.cols == b.rows ≥ 1`, and `dst` is valid for
/// writes (and, when `accumulate`, reads) of `a.rows · b.cols` values and aliases
/// neither `a` nor `b`.
unsafe fn gemm_raw(
    dst: *mut f32,
    a: MatRef,
    b: MatRef,
    accumulate: bool,
    parallelism: gemm::Parallelism,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    // SAFETY: the caller's contract; every stride fits in isize because it indexes a
    // slice.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

thread_local! {
    /// Each thread's two scratch buffers (patch matrices, side-by-side maps), kept between
    /// calls: allocating and zero-filling them per task was 3–5 % of a `dcgan` step.
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Runs `f` on this thread's scratch buffers, `a` and `b` values long. Their contents are
/// left over from earlier calls: every user writes what it later reads. `f` must not start
/// parallel work (a task stolen meanwhile would find the buffers borrowed).
fn with_scratch<R>(a: usize, b: usize, f: impl FnOnce(&mut [f32], &mut [f32]) -> R) -> R {
    SCRATCH.with_borrow_mut(|(x, y)| {
        if x.len() < a {
            x.resize(a, 0.0);
        }
        if y.len() < b {
            y.resize(b, 0.0);
        }
        f(&mut x[..a], &mut y[..b])
    })
}

/// The convolutions run one product per sample (or chunk of samples) on each rayon
/// thread, each product on its own thread.
const SERIAL: gemm::Parallelism = gemm::Parallelism::None;

/// Adds `bias[c]` to every pixel of channel `c` of one sample `[channels, pixels]`.
fn add_bias(sample: &mut [f32], bias: &[f32], pixels: usize) {
    simd(|| {
        for (plane, b) in sample.chunks_exact_mut(pixels.max(1)).zip(bias) {
            plane.iter_mut().for_each(|v| *v += b);
        }
    });
}

/// Copies the maps of a chunk of samples (`[n, c, P]`) side by side into `[c, n·P]`.
fn gather(maps: &[f32], c: usize, p: usize, out: &mut [f32]) {
    let n = maps.len() / (c * p).max(1);
    for (i, sample) in maps.chunks_exact((c * p).max(1)).enumerate() {
        for (ch, plane) in sample.chunks_exact(p.max(1)).enumerate() {
            out[ch * n * p + i * p..][..p].copy_from_slice(plane);
        }
    }
}

/// The inverse of [`gather`]: `[c, n·P]` back to `[n, c, P]`.
fn scatter(wide: &[f32], c: usize, p: usize, maps: &mut [f32]) {
    let n = maps.len() / (c * p).max(1);
    for (i, sample) in maps.chunks_exact_mut((c * p).max(1)).enumerate() {
        for (ch, plane) in sample.chunks_exact_mut(p.max(1)).enumerate() {
            plane.copy_from_slice(&wide[ch * n * p + i * p..][..p]);
        }
    }
}

/// map `[batch, map_c, map_h, map_w]` = weight · im2col(image) (+ bias per map channel).
///
/// Chunks of [`ConvGeometry::samples_per_chunk`] samples share one product: their patch
/// matrices side by side, `[K, n·P]`.
pub fn im2col_matmul(
    image: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    g: &ConvGeometry,
) -> Vec<f32> {
    let (k, p, c) = (g.patch_len(), g.map_pixels(), g.map[0]);
    let mut map = vec![0.0; g.batch * g.map_len()];
    if g.map_len() == 0 || g.image_len() == 0 {
        return map;
    }
    let chunk = g.samples_per_chunk();
    let w = MatRef::rows(weight, c, k);
    map.par_chunks_mut(chunk * g.map_len())
        .zip(image.par_chunks(chunk * g.image_len()))
        .for_each(|(out, images)| {
            with_scratch(k * chunk * p, c * chunk * p, |col, wide| {
                let width = images.len() / g.image_len() * p;
                for (i, sample) in images.chunks_exact(g.image_len()).enumerate() {
                    im2col(sample, g, col, width, i * p);
                }
                let col = MatRef::rows(&col[..k * width], k, width);
                if width == p {
                    matmul(out, w, col, false, SERIAL);
                } else {
                    matmul(&mut wide[..c * width], w, col, false, SERIAL);
                    scatter(&wide[..c * width], c, p, out);
                }
                if let Some(bias) = bias {
                    for sample in out.chunks_exact_mut(g.map_len()) {
                        add_bias(sample, bias, p);
                    }
                }
            })
        });
    map
}

/// image `[batch, image_c, image_h, image_w]` = col2im(weightᵀ · map) (+ bias per image
/// channel), chunks of samples sharing one product as in [`im2col_matmul`].
pub fn matmul_col2im(
    map: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    g: &ConvGeometry,
) -> Vec<f32> {
    let (k, p, c) = (g.patch_len(), g.map_pixels(), g.map[0]);
    let mut image = vec![0.0; g.batch * g.image_len()];
    if g.image_len() == 0 || g.map_len() == 0 {
        return image;
    }
    let chunk = g.samples_per_chunk();
    let w_t = MatRef::transposed(weight, k, c);
    image
        .par_chunks_mut(chunk * g.image_len())
        .zip(map.par_chunks(chunk * g.map_len()))
        .for_each(|(out, maps)| {
            with_scratch(c * chunk * p, k * chunk * p, |wide, col| {
                let width = maps.len() / g.map_len() * p;
                let maps = if width == p {
                    MatRef::rows(maps, c, p)
                } else {
                    gather(maps, c, p, &mut wide[..c * width]);
                    MatRef::rows(&wide[..c * width], c, width)
                };
                matmul(&mut col[..k * width], w_t, maps, false, SERIAL);
                for (i, sample) in out.chunks_exact_mut(g.image_len()).enumerate() {
                    col2im(col, g, sample, width, i * p);
                    if let Some(bias) = bias {
                        add_bias(sample, bias, g.image[1] * g.image[2]);
                    }
                }
            })
        });
    image
}

/// weight gradient `[map_c, image_c, kh, kw]` = Σ over samples of map · im2col(image)ᵀ.
///
/// The batch is cut into one contiguous run per thread; each run accumulates its own
/// gradient in the product's output, one product per chunk of samples (their maps and
/// patch matrices side by side), and the runs are summed.
pub fn weight_grad(map: &[f32], image: &[f32], g: &ConvGeometry) -> Vec<f32> {
    let (k, p, c) = (g.patch_len(), g.map_pixels(), g.map[0]);
    let runs = rayon::current_num_threads().clamp(1, g.batch.max(1));
    let per_run = g.batch.div_ceil(runs).max(1);
    let chunk = g.samples_per_chunk();
    let partials: Vec<Vec<f32>> = (0..runs)
        .into_par_iter()
        .map(|run| {
            let mut grad = vec![0.0; c * k];
            with_scratch(k * chunk * p, c * chunk * p, |col, wide| {
                let samples = run * per_run..((run + 1) * per_run).min(g.batch);
                let starts = samples.clone().step_by(chunk);
                for (i, first) in starts.enumerate() {
                    let n = chunk.min(samples.end - first);
                    let width = n * p;
                    let images = &image[first * g.image_len()..][..n * g.image_len()];
                    for (j, sample) in images.chunks_exact(g.image_len().max(1)).enumerate() {
                        im2col(sample, g, col, width, j * p);
                    }
                    let maps = &map[first * g.map_len()..][..n * g.map_len()];
                    gather(maps, c, p, &mut wide[..c * width]);
                    let dy = MatRef::rows(&wide[..c * width], c, width);
                    matmul(
                        &mut grad,
                        dy,
                        MatRef::transposed(&col[..k * width], width, k),
                        i > 0,
                        SERIAL,
                    );
                }
            });
            grad
        })
        .collect();
    let mut partials = partials.into_iter();
    let mut grad = partials.next().unwrap_or_else(|| vec![0.0; c * k]);
    for partial in partials {
        simd(|| grad.iter_mut().zip(&partial).for_each(|(g, p)| *g += p));
    }
    grad
}

/// Per-channel sums over the batch and the pixels of `x` `[batch, channels, pixels]`:
/// a bias gradient.
pub fn channel_sums(x: &[f32], batch: usize, channels: usize, pixels: usize) -> Vec<f32> {
    let mut sums = vec![0.0f64; channels];
    simd(|| {
        for sample in x.chunks_exact((channels * pixels).max(1)).take(batch) {
            for (sum, plane) in sums.iter_mut().zip(sample.chunks_exact(pixels.max(1))) {
                *sum += f64::from(lane_sums(plane, plane, |v, _| v, |_, _| 0.0).0);
            }
        }
    });
    sums.into_iter().map(|s| s as f32).collect()
}

/// The shape of a batch-norm input seen per channel: `[batch, channels, pixels]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelShape {
    /// Samples.
    pub batch: usize,
    /// Channels, each normalised on its own.
    pub channels: usize,
    /// Values per channel and sample (height × width).
    pub pixels: usize,
}

impl ChannelShape {
    /// The `pixels` values of channel `c` in sample `b`.
    #[inline(always)]
    fn plane(self, x: &[f32], b: usize, c: usize) -> &[f32] {
        &x[(b * self.channels + c) * self.pixels..][..self.pixels]
    }

    /// Values averaged per channel.
    fn count(self) -> f64 {
        (self.batch * self.pixels) as f64
    }
}

/// Per-channel mean and biased variance of `x`, as `[means…, variances…]` (`2·channels`
/// values): batch norm's statistics in training. Two passes, channels in parallel,
/// sums per plane in f32 and across planes in f64.
pub fn channel_moments(x: &[f32], shape: ChannelShape) -> Vec<f32> {
    let n = shape.count().max(1.0);
    let per_channel: Vec<(f32, f32)> = (0..shape.channels)
        .into_par_iter()
        .map(|c| {
            simd(|| {
                let planes = (0..shape.batch).map(|b| shape.plane(x, b, c));
                let sum: f64 = planes
                    .clone()
                    .map(|p| f64::from(lane_sums(p, p, |v, _| v, |_, _| 0.0).0))
                    .sum();
                let mean = (sum / n) as f32;
                let squares: f64 = planes
                    .map(|p| {
                        f64::from(lane_sums(p, p, |v, _| (v - mean) * (v - mean), |_, _| 0.0).0)
                    })
                    .sum();
                (mean, (squares / n) as f32)
            })
        })
        .collect();
    let (means, variances): (Vec<f32>, Vec<f32>) = per_channel.into_iter().unzip();
    means.into_iter().chain(variances).collect()
}

/// Per-channel 1 / √(variance + ε) of `moments` (means, then variances).
fn inv_std(moments: &[f32], channels: usize, epsilon: f64) -> Vec<f32> {
    moments[channels..]
        .iter()
        .map(|&v| (1.0 / (f64::from(v) + epsilon).sqrt()) as f32)
        .collect()
}

/// Per-channel `scale` and `shift` with batch_norm(x) = x·scale + shift.
fn affine(gamma: &[f32], beta: &[f32], moments: &[f32], epsilon: f64) -> (Vec<f32>, Vec<f32>) {
    let means = &moments[..gamma.len()];
    let scale: Vec<f32> = gamma
        .iter()
        .zip(inv_std(moments, gamma.len(), epsilon))
        .map(|(g, s)| g * s)
        .collect();
    let shift = beta
        .iter()
        .zip(means.iter().zip(&scale))
        .map(|(b, (m, s))| b - m * s)
        .collect();
    (scale, shift)
}

/// leaky_relu(batch_norm(x)) in one pass over memory, samples in parallel: the
/// normalisation folded into one multiply-add per value, the activation applied on the
/// way out.
pub fn batch_norm_leaky_relu(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    moments: &[f32],
    epsilon: f64,
    slope: f32,
    shape: ChannelShape,
) -> Vec<f32> {
    let (scale, shift) = affine(gamma, beta, moments, epsilon);
    let sample = (shape.channels * shape.pixels).max(1);
    let mut out = vec![0.0; x.len()];
    out.par_chunks_mut(sample)
        .zip(x.par_chunks(sample))
        .for_each(|(out, x)| {
            simd(|| {
                for ((out, x), (&scale, &shift)) in out
                    .chunks_exact_mut(shape.pixels.max(1))
                    .zip(x.chunks_exact(shape.pixels.max(1)))
                    .zip(scale.iter().zip(&shift))
                {
                    for (o, &v) in out.iter_mut().zip(x) {
                        *o = leaky(v * scale + shift, slope);
                    }
                }
            })
        });
    out
}

/// Gradients of [`batch_norm_leaky_relu`] (through the batch statistics, as batch norm
/// in training is differentiated).
pub struct BatchNormGrads {
    /// Gradient of the input, shaped like it.
    pub input: Vec<f32>,
    /// Gradient of the scale γ, per channel.
    pub gamma: Vec<f32>,
    /// Gradient of the shift β, per channel.
    pub beta: Vec<f32>,
}

/// Backward pass of [`batch_norm_leaky_relu`] for the output gradient `grad`: the
/// activation's slope is recomputed from x rather than stored, the per-channel sums in
/// one pass (channels in parallel), the input gradient in a second (samples in parallel).
#[allow(clippy::too_many_arguments)] // the op's own inputs, as burn's batch_norm ops take them
pub fn batch_norm_leaky_relu_backward(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    moments: &[f32],
    grad: &[f32],
    epsilon: f64,
    slope: f32,
    shape: ChannelShape,
) -> BatchNormGrads {
    let (scale, shift) = affine(gamma, beta, moments, epsilon);
    let channels = shape.channels;
    let means = &moments[..channels];
    let inv_std = inv_std(moments, channels, epsilon);
    // dz = dy · leaky_relu'(z) with z = x·scale + shift, selected without a branch.
    #[inline(always)]
    fn dz(dy: f32, v: f32, scale: f32, shift: f32, slope: f32) -> f32 {
        let z = v * scale + shift;
        dy * if z > 0.0 { 1.0 } else { slope }
    }
    let sums: Vec<(f64, f64)> = (0..channels)
        .into_par_iter()
        .map(|c| {
            let (sc, sh, mean) = (scale[c], shift[c], means[c]);
            simd(|| {
                let (mut sum_dz, mut sum_dz_x) = (0.0f64, 0.0f64);
                for b in 0..shape.batch {
                    let (xs, dys) = (shape.plane(x, b, c), shape.plane(grad, b, c));
                    let (s, sx) = lane_sums(
                        xs,
                        dys,
                        |v, dy| dz(dy, v, sc, sh, slope),
                        |v, dy| dz(dy, v, sc, sh, slope) * (v - mean),
                    );
                    sum_dz += f64::from(s);
                    sum_dz_x += f64::from(sx);
                }
                (sum_dz, sum_dz_x * f64::from(inv_std[c]))
            })
        })
        .collect();
    let n = shape.count().max(1.0);
    // dx = γ·inv_std·(dz − mean(dz) − x̂·mean(dz·x̂)), per channel a·dz + b·x + c.
    let coefficients: Vec<[f32; 3]> = (0..channels)
        .map(|c| {
            let k = f64::from(gamma[c]) * f64::from(inv_std[c]);
            let (mean_dz, mean_dz_xhat) = (sums[c].0 / n, sums[c].1 / n);
            let per_x = -k * mean_dz_xhat * f64::from(inv_std[c]);
            let constant = -k * mean_dz - per_x * f64::from(means[c]);
            [k as f32, per_x as f32, constant as f32]
        })
        .collect();
    let sample = (channels * shape.pixels).max(1);
    let mut input = vec![0.0; x.len()];
    input
        .par_chunks_mut(sample)
        .zip(x.par_chunks(sample).zip(grad.par_chunks(sample)))
        .for_each(|(out, (xs, dys))| {
            simd(|| {
                let planes = out
                    .chunks_exact_mut(shape.pixels.max(1))
                    .zip(xs.chunks_exact(shape.pixels.max(1)))
                    .zip(dys.chunks_exact(shape.pixels.max(1)));
                for (c, ((out, xs), dys)) in planes.enumerate() {
                    let [a, per_x, constant] = coefficients[c];
                    let (sc, sh) = (scale[c], shift[c]);
                    for ((o, &v), &dy) in out.iter_mut().zip(xs).zip(dys) {
                        *o = a * dz(dy, v, sc, sh, slope) + per_x * v + constant;
                    }
                }
            })
        });
    BatchNormGrads {
        input,
        gamma: sums.iter().map(|s| s.1 as f32).collect(),
        beta: sums.iter().map(|s| s.0 as f32).collect(),
    }
}

/// Values per parallel task of the element-wise kernels: large enough to amortise a
/// task, small enough to keep both cores busy on a 100k-value activation.
pub(super) const ELEMENTWISE_CHUNK: usize = 16 * 1024;

/// tanh(x) as a rational function, within a few float roundings of `f32::tanh` on all
/// inputs: a plain multiply-add chain that vectorises, where libm's `tanhf` is a scalar
/// call per value. Odd polynomial of degree 13 over even of degree 6 on x clamped to
/// ±7.905 (where tanh rounds to ±1), the approximation Eigen uses for its fast tanh;
/// below |x| = 4e-4 tanh(x) = x to float precision.
#[inline(always)]
pub(super) fn tanh_approx(x: f32) -> f32 {
    const CLAMP: f32 = 7.905_311;
    const ALPHA: [f32; 7] = [
        4.893_524_6e-3,
        6.372_619_3e-4,
        1.485_722_4e-5,
        5.122_297e-8,
        -8.604_672e-11,
        2.000_188e-13,
        -2.760_768_5e-16,
    ];
    const BETA: [f32; 4] = [4.893_525e-3, 2.268_434_6e-3, 1.185_347e-4, 1.198_258_4e-6];
    let tiny = x.abs() < 4e-4;
    let x = x.clamp(-CLAMP, CLAMP);
    let x2 = x * x;
    let mut p = ALPHA[6];
    for a in ALPHA[..6].iter().rev() {
        p = p * x2 + a;
    }
    let q = ((BETA[3] * x2 + BETA[2]) * x2 + BETA[1]) * x2 + BETA[0];
    if tiny { x } else { x * p / q }
}

/// tanh of every value, in parallel chunks.
pub fn tanh(x: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    out.par_chunks_mut(ELEMENTWISE_CHUNK)
        .zip(x.par_chunks(ELEMENTWISE_CHUNK))
        .for_each(|(out, x)| {
            simd(|| {
                out.iter_mut()
                    .zip(x)
                    .for_each(|(o, &v)| *o = tanh_approx(v))
            })
        });
    out
}

/// Gradient of tanh from its output `y`: `grad · (1 − y²)`.
pub fn tanh_backward(y: &[f32], grad: &[f32]) -> Vec<f32> {
    zip_map(y, grad, |y, g| g * (1.0 - y * y))
}

/// `f(a_i, b_i)` for every pair of two equally long slices, vectorised, in parallel
/// chunks.
pub(super) fn zip_map(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) -> Vec<f32> {
    let mut out = vec![0.0; a.len()];
    out.par_chunks_mut(ELEMENTWISE_CHUNK)
        .zip(
            a.par_chunks(ELEMENTWISE_CHUNK)
                .zip(b.par_chunks(ELEMENTWISE_CHUNK)),
        )
        .for_each(|(out, (a, b))| {
            simd(|| {
                for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
                    *o = f(a, b);
                }
            })
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct (seven-loop) convolution, the definition the kernels must agree with.
    fn direct_conv(image: &[f32], weight: &[f32], g: &ConvGeometry) -> Vec<f32> {
        let [ci, h, w] = g.image;
        let [co, mh, mw] = g.map;
        let [kh, kw] = g.kernel;
        let mut out = vec![0.0; g.batch * g.map_len()];
        for b in 0..g.batch {
            for o in 0..co {
                for oy in 0..mh {
                    for ox in 0..mw {
                        let mut acc = 0.0;
                        for c in 0..ci {
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let iy =
                                        (oy * g.stride[0] + ky) as isize - g.padding[0] as isize;
                                    let ix =
                                        (ox * g.stride[1] + kx) as isize - g.padding[1] as isize;
                                    if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                        continue;
                                    }
                                    acc += image
                                        [((b * ci + c) * h + iy as usize) * w + ix as usize]
                                        * weight[((o * ci + c) * kh + ky) * kw + kx];
                                }
                            }
                        }
                        out[((b * co + o) * mh + oy) * mw + ox] = acc;
                    }
                }
            }
        }
        out
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let x = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed);
                (x % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    fn geometry(image: [usize; 3], map_c: usize, k: usize, s: usize, p: usize) -> ConvGeometry {
        let [mh, mw] =
            ConvGeometry::map_side([image[1], image[2]], [k, k], [s, s], [p, p]).unwrap();
        ConvGeometry {
            batch: 3,
            image,
            map: [map_c, mh, mw],
            kernel: [k, k],
            stride: [s, s],
            padding: [p, p],
        }
    }

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{x} vs {y}");
        }
    }

    fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum()
    }

    #[test]
    fn forward_matches_the_direct_convolution() {
        for g in [
            geometry([2, 7, 5], 3, 3, 2, 1),
            geometry([1, 28, 28], 4, 3, 2, 1),
            geometry([3, 6, 6], 2, 3, 1, 1),
            geometry([2, 5, 4], 2, 2, 1, 0),
            geometry([2, 4, 4], 1, 5, 1, 2),
        ] {
            let image = values(g.batch * g.image_len(), 1);
            let weight = values(g.weight_len(), 2);
            close(
                &im2col_matmul(&image, &weight, None, &g),
                &direct_conv(&image, &weight, &g),
            );
        }
    }

    /// col2im ∘ Wᵀ is the adjoint of W ∘ im2col, and the weight gradient is the
    /// derivative of ⟨dy, conv(x, w)⟩ in w: both checked through inner products.
    #[test]
    fn gradients_are_the_adjoints_of_the_forward_pass() {
        for g in [
            geometry([2, 7, 5], 3, 3, 2, 1),
            geometry([3, 6, 6], 2, 3, 1, 1),
        ] {
            let image = values(g.batch * g.image_len(), 3);
            let weight = values(g.weight_len(), 4);
            let dy = values(g.batch * g.map_len(), 5);
            let y = im2col_matmul(&image, &weight, None, &g);
            let dx = matmul_col2im(&dy, &weight, None, &g);
            let lhs = dot(&y, &dy);
            assert!((lhs - dot(&image, &dx)).abs() < 1e-3 * (1.0 + lhs.abs()));
            let dw = weight_grad(&dy, &image, &g);
            assert!((lhs - dot(&weight, &dw)).abs() < 1e-3 * (1.0 + lhs.abs()));
        }
    }

    #[test]
    fn tanh_is_within_float_rounding_of_libm() {
        let mut worst: f32 = 0.0;
        for i in -200_000..=200_000 {
            let x = i as f32 * 1e-4; // −20 … 20, through the clamp and the tiny range
            worst = worst.max((tanh(&[x])[0] - x.tanh()).abs());
        }
        assert!(worst <= 1e-6, "largest difference from tanhf: {worst}");
        assert_eq!(tanh(&[f32::INFINITY, f32::NEG_INFINITY]), vec![1.0, -1.0]);
        let y = tanh(&[0.5]);
        assert!((tanh_backward(&y, &[2.0])[0] - 2.0 * (1.0 - 0.5f32.tanh().powi(2))).abs() < 1e-6);
    }

    #[test]
    fn channel_sums_add_every_pixel_of_every_sample() {
        let x: Vec<f32> = (0..2 * 3 * 4).map(|i| i as f32).collect();
        // channel c holds, over both samples, 4 pixels starting at 4c and at 12 + 4c.
        assert_eq!(
            channel_sums(&x, 2, 3, 4),
            vec![6.0 + 54.0, 22.0 + 70.0, 38.0 + 86.0]
        );
    }
}
