//! The seeded noise that feeds every generator: the same seed gives the same `z`, bit for bit,
//! on every machine, operating system and backend.
//!
//! Algorithm [`NOISE_ALGORITHM`] (`chacha8-boxmuller-v1`):
//!
//! 1. Key: the seed as 8 little-endian bytes, followed by 24 zero bytes. Stream (nonce) 0.
//! 2. Uniform words: the ChaCha8 keystream (Bernstein's 64-bit counter layout, rand's
//!    `ChaCha8Rng`) read as little-endian `u32` words; word pairs `(lo, hi)` form
//!    `u64 = hi << 32 | lo`.
//! 3. Normals come in pairs from two such `u64`s `a`, `b`: `u1 = ((a >> 11) + 1) * 2^-53` in
//!    `(0, 1]`, `u2 = (b >> 11) * 2^-53` in `[0, 1)`, `r = sqrt(-2 ln u1)`, `t = 2 pi u2`; the pair
//!    is `(r cos t, r sin t)` computed in f64 and rounded to f32.
//! 4. `z` for `count` samples is the first `count * z_dim` normals, row after row; so the first
//!    rows of a larger request equal a smaller request with the same seed.
//!
//! Why not `rand_distr::StandardNormal`: its ziggurat calls the platform's `exp`/`ln`, whose last
//! bit may differ between C libraries and CPU architectures, and rand documents its value
//! streams as unstable across versions. Box–Muller over the pure-Rust `libm` functions is
//! bit-reproducible everywhere, and the steps above are short enough to reimplement elsewhere.

use rand::rngs::ChaCha8Rng;
use rand::{Rng, SeedableRng};

/// Identifier of the noise algorithm, recorded in data set manifests.
pub const NOISE_ALGORITHM: &str = "chacha8-boxmuller-v1";

/// An endless stream of standard-normal f32 values for one seed.
#[derive(Debug)]
pub struct NoiseStream {
    rng: ChaCha8Rng,
    spare: Option<f32>,
}

impl NoiseStream {
    /// The stream for `seed`, from its start.
    pub fn new(seed: u64) -> NoiseStream {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        NoiseStream {
            rng: ChaCha8Rng::from_seed(key),
            spare: None,
        }
    }

    /// The stream for `seed`, positioned at normal number `offset` (cheap: ChaCha seeks).
    pub fn at(seed: u64, offset: u64) -> NoiseStream {
        let mut s = NoiseStream::new(seed);
        // Each pair of normals consumes four 32-bit words.
        s.rng.set_word_pos(u128::from(offset / 2) * 4);
        if offset % 2 == 1 {
            s.next_normal();
        }
        s
    }

    fn next_u64(&mut self) -> u64 {
        let lo = u64::from(self.rng.next_u32());
        let hi = u64::from(self.rng.next_u32());
        (hi << 32) | lo
    }

    /// The next standard-normal value.
    pub fn next_normal(&mut self) -> f32 {
        if let Some(v) = self.spare.take() {
            return v;
        }
        const SCALE: f64 = 1.0 / (1u64 << 53) as f64;
        let (a, b) = (self.next_u64(), self.next_u64());
        let u1 = ((a >> 11) + 1) as f64 * SCALE;
        let u2 = (b >> 11) as f64 * SCALE;
        let r = libm::sqrt(-2.0 * libm::log(u1));
        let t = 2.0 * std::f64::consts::PI * u2;
        self.spare = Some((r * libm::sin(t)) as f32);
        (r * libm::cos(t)) as f32
    }

    /// Fills `out` with the next values.
    pub fn fill(&mut self, out: &mut [f32]) {
        for v in out {
            *v = self.next_normal();
        }
    }
}

/// `count * z_dim` standard-normal values for `seed`: the `z` of `count` samples, row-major.
pub fn noise(count: usize, z_dim: usize, seed: u64) -> Vec<f32> {
    let mut z = vec![0.0; count * z_dim];
    NoiseStream::new(seed).fill(&mut z);
    z
}

/// FNV-1a 64-bit hash of the values' little-endian bytes: a short fingerprint that shows two
/// machines drew the same noise.
pub fn fingerprint(values: &[f32]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in values.iter().flat_map(|v| v.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_and_seek_agree_with_the_full_stream() {
        let full = noise(7, 5, 42);
        assert_eq!(&noise(3, 5, 42)[..], &full[..15]);
        for offset in [0u64, 1, 2, 9, 17, 34] {
            let mut s = NoiseStream::at(42, offset);
            let mut tail = vec![0.0; 35 - offset as usize];
            s.fill(&mut tail);
            assert_eq!(&tail[..], &full[offset as usize..], "offset {offset}");
        }
    }

    /// Known answers (f32 bit patterns) from an independent Python implementation of the steps
    /// in the module documentation: ChaCha8 block function written from the specification,
    /// `math.log/cos/sin`. Seed 42 starts -0.32306322, 1.4160769, -0.8020522...
    #[test]
    fn matches_the_documented_algorithm() {
        let bits = |count, z_dim, seed| {
            noise(count, z_dim, seed)
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<u32>>()
        };
        assert_eq!(
            bits(2, 3, 42),
            [
                0xbea5688b, 0x3fb54202, 0xbf4d534b, 0x3f60890a, 0x3f1081e4, 0x3e81fdf8
            ]
        );
        assert_eq!(
            bits(1, 4, 7),
            [0xbf3780dc, 0x3e1f897e, 0xbf82960e, 0x404333cd]
        );
        assert_eq!(bits(3, 1, u64::MAX), [0x3db8b23a, 0x3f5518ae, 0xbf4d537c]);
    }

    #[test]
    fn seeds_differ_and_moments_are_normal() {
        assert_ne!(noise(1, 8, 1), noise(1, 8, 2));
        let z = noise(1000, 100, 7);
        let n = z.len() as f64;
        let mean = z.iter().map(|v| *v as f64).sum::<f64>() / n;
        let var = z.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / n;
        // 100k samples: the standard error of the mean is 0.003, of the variance about 0.0045.
        assert!(mean.abs() < 0.02, "mean {mean}");
        assert!((var - 1.0).abs() < 0.03, "variance {var}");
        let beyond_2 = z.iter().filter(|v| v.abs() > 2.0).count() as f64 / n;
        assert!((beyond_2 - 0.0455).abs() < 0.005, "P(|z|>2) = {beyond_2}");
    }
}
