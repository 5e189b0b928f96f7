//! Residue-number-system polynomials (limb-major, contiguous) with form markers, and the
//! exact centred fast base conversion between two coprime RNS bases.

use super::modulus::Modulus;
use super::ntt::NttTable;
use rayon::prelude::*;
use std::borrow::Borrow;
use std::fmt;
use std::marker::PhantomData;
use zeroize::Zeroize;

mod sealed {
    pub trait Sealed {}
}

/// The representation of an [`RnsPoly`]: [`Coeff`] or [`Ntt`].
pub trait Form: sealed::Sealed + Copy + fmt::Debug + Send + Sync + 'static {
    /// Short name used in `Debug` output.
    const NAME: &'static str;
}

/// Coefficient representation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Coeff;
/// Evaluation (NTT) representation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ntt;

impl sealed::Sealed for Coeff {}
impl sealed::Sealed for Ntt {}
impl Form for Coeff {
    const NAME: &'static str = "coeff";
}
impl Form for Ntt {
    const NAME: &'static str = "ntt";
}

/// A polynomial in RNS form: `limbs` residue polynomials of `degree` coefficients each,
/// stored one after the other. Every residue is fully reduced modulo its prime.
#[derive(PartialEq, Eq)]
pub struct RnsPoly<F: Form> {
    data: Vec<u64>,
    degree: usize,
    _form: PhantomData<F>,
}

impl<F: Form> fmt::Debug for RnsPoly<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RnsPoly<{}>(n={}, limbs={})",
            F::NAME,
            self.degree,
            self.limbs()
        )
    }
}

impl<F: Form> Clone for RnsPoly<F> {
    fn clone(&self) -> Self {
        let mut data = pool::take(self.data.len());
        data.extend_from_slice(&self.data);
        RnsPoly {
            data,
            degree: self.degree,
            _form: PhantomData,
        }
    }
}

impl<F: Form> Drop for RnsPoly<F> {
    fn drop(&mut self) {
        pool::give(std::mem::take(&mut self.data));
    }
}

impl<F: Form> Zeroize for RnsPoly<F> {
    fn zeroize(&mut self) {
        self.data.zeroize();
    }
}

impl<F: Form> RnsPoly<F> {
    /// The zero polynomial.
    pub fn zero(limbs: usize, degree: usize) -> Self {
        RnsPoly {
            data: pool::take_zeroed(limbs * degree),
            degree,
            _form: PhantomData,
        }
    }

    /// Wraps raw limb-major data; `None` when the length is not a multiple of `degree`.
    pub fn from_raw(data: Vec<u64>, degree: usize) -> Option<Self> {
        if degree == 0 || !data.len().is_multiple_of(degree) {
            return None;
        }
        Some(RnsPoly {
            data,
            degree,
            _form: PhantomData,
        })
    }

    /// Ring degree n.
    pub fn degree(&self) -> usize {
        self.degree
    }

    /// Number of residue polynomials.
    pub fn limbs(&self) -> usize {
        self.data.len() / self.degree.max(1)
    }

    /// All residues, limb-major.
    pub fn data(&self) -> &[u64] {
        &self.data
    }

    /// All residues, limb-major, mutable.
    pub fn data_mut(&mut self) -> &mut [u64] {
        &mut self.data
    }

    /// Residues modulo the `i`-th prime.
    pub fn limb(&self, i: usize) -> &[u64] {
        &self.data[i * self.degree..(i + 1) * self.degree]
    }

    /// Mutable residues modulo the `i`-th prime.
    pub fn limb_mut(&mut self, i: usize) -> &mut [u64] {
        let n = self.degree;
        &mut self.data[i * n..(i + 1) * n]
    }

    /// Keeps the first `limbs` residue polynomials.
    pub fn truncate_limbs(&mut self, limbs: usize) {
        self.data.truncate(limbs * self.degree);
    }

    /// A copy restricted to the listed limbs (in that order).
    pub fn select_limbs(&self, indices: &[usize]) -> Self {
        let mut data = pool::take(indices.len() * self.degree);
        for &i in indices {
            data.extend_from_slice(self.limb(i));
        }
        RnsPoly {
            data,
            degree: self.degree,
            _form: PhantomData,
        }
    }

    /// `self += other` limb by limb.
    pub fn add_assign(&mut self, other: &Self, moduli: &[Modulus]) {
        let n = self.degree;
        for ((a, b), m) in self
            .data
            .chunks_exact_mut(n)
            .zip(other.data.chunks_exact(n))
            .zip(moduli)
        {
            for (x, &y) in a.iter_mut().zip(b) {
                *x = m.add(*x, y);
            }
        }
    }

    /// `self -= other` limb by limb.
    pub fn sub_assign(&mut self, other: &Self, moduli: &[Modulus]) {
        let n = self.degree;
        for ((a, b), m) in self
            .data
            .chunks_exact_mut(n)
            .zip(other.data.chunks_exact(n))
            .zip(moduli)
        {
            for (x, &y) in a.iter_mut().zip(b) {
                *x = m.sub(*x, y);
            }
        }
    }

    /// `self = -self`.
    pub fn neg_assign(&mut self, moduli: &[Modulus]) {
        let n = self.degree;
        for (a, m) in self.data.chunks_exact_mut(n).zip(moduli) {
            for x in a.iter_mut() {
                *x = m.neg(*x);
            }
        }
    }

    /// Multiplies limb `i` by the scalar `s_i < q_i`.
    pub fn mul_scalar_assign(&mut self, scalars: &[u64], moduli: &[Modulus]) {
        let n = self.degree;
        for ((a, &s), m) in self.data.chunks_exact_mut(n).zip(scalars).zip(moduli) {
            let ss = m.shoup(s);
            for x in a.iter_mut() {
                *x = m.mul_shoup_lanes(*x, s, ss);
            }
        }
    }

    fn with_form<G: Form>(mut self) -> RnsPoly<G> {
        RnsPoly {
            data: std::mem::take(&mut self.data),
            degree: self.degree,
            _form: PhantomData,
        }
    }
}

impl RnsPoly<Coeff> {
    /// Forward NTT of every limb (in parallel), consuming the coefficient form.
    pub fn into_ntt<T: Borrow<NttTable> + Sync>(mut self, tables: &[T]) -> RnsPoly<Ntt> {
        let n = self.degree;
        self.data
            .par_chunks_mut(n)
            .zip(tables.par_iter())
            .for_each(|(a, t)| t.borrow().forward(a));
        self.with_form()
    }
}

impl RnsPoly<Coeff> {
    /// Forward NTT of every limb but limb `skip` (left as it is, for the caller to fill with
    /// its evaluation form), in parallel.
    pub fn into_ntt_except<T: Borrow<NttTable> + Sync>(
        mut self,
        tables: &[T],
        skip: usize,
    ) -> RnsPoly<Ntt> {
        let n = self.degree;
        self.data
            .par_chunks_mut(n)
            .zip(tables.par_iter())
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .for_each(|(_, (a, t))| t.borrow().forward(a));
        self.with_form()
    }
}

impl RnsPoly<Ntt> {
    /// Inverse NTT of every limb (in parallel), consuming the evaluation form.
    pub fn into_coeff<T: Borrow<NttTable> + Sync>(mut self, tables: &[T]) -> RnsPoly<Coeff> {
        let n = self.degree;
        self.data
            .par_chunks_mut(n)
            .zip(tables.par_iter())
            .for_each(|(a, t)| t.borrow().inverse(a));
        self.with_form()
    }

    /// Point-wise product `self *= other`.
    pub fn mul_assign(&mut self, other: &Self, moduli: &[Modulus]) {
        let n = self.degree;
        for ((a, b), m) in self
            .data
            .chunks_exact_mut(n)
            .zip(other.data.chunks_exact(n))
            .zip(moduli)
        {
            for (x, &y) in a.iter_mut().zip(b) {
                *x = m.mul(*x, y);
            }
        }
    }
}

/// A small process-wide stock of polynomial buffers.
///
/// Hot operations allocate and free buffers of a few hundred KiB to a few MiB each. The system
/// allocator serves such sizes with fresh pages (or gives freed ones back to the kernel), and
/// the page faults that follow cost more than the arithmetic on them. Dropped [`RnsPoly`]
/// buffers are kept here instead, up to a byte limit, and reused. The stock is shared by all
/// threads because results are often dropped on another thread than the one that computed
/// them. Buffers handed out are either zero-filled or empty; none exposes earlier contents
/// through safe code.
///
/// The stock does not wipe what it keeps: that would cost a pass over every buffer on the hot
/// evaluation paths, whose polynomials (ciphertexts, public keys, plaintext products) are not
/// secret. Polynomials derived from the secret key, from the encryption randomness or from a
/// decryption phase must be wiped before they are dropped ([`RnsPoly`] implements
/// [`Zeroize`]; hold them in [`zeroize::Zeroizing`]), so that only zeros of theirs ever
/// reach the stock. Wiping clears the whole capacity, truncated limbs included.
pub(crate) mod pool {
    use std::sync::Mutex;

    /// Buffers below this many elements go straight to the allocator.
    const MIN_ELEMENTS: usize = 1 << 12;
    /// Most bytes kept.
    const MAX_BYTES: usize = 128 << 20;

    /// The buffers and their total capacity in bytes.
    static FREE: Mutex<(Vec<Vec<u64>>, usize)> = Mutex::new((Vec::new(), 0));

    /// An empty buffer with room for `capacity` elements.
    pub(crate) fn take(capacity: usize) -> Vec<u64> {
        if capacity >= MIN_ELEMENTS {
            if let Ok(mut free) = FREE.lock() {
                let (buffers, held) = &mut *free;
                // The smallest buffer that fits.
                let best = buffers
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| v.capacity() >= capacity)
                    .min_by_key(|(_, v)| v.capacity())
                    .map(|(i, _)| i);
                if let Some(i) = best {
                    let v = buffers.swap_remove(i);
                    *held -= v.capacity() * 8;
                    return v;
                }
            }
        }
        Vec::with_capacity(capacity)
    }

    /// `len` zeros.
    pub(crate) fn take_zeroed(len: usize) -> Vec<u64> {
        let mut v = take(len);
        v.resize(len, 0);
        v
    }

    /// Returns a buffer to the stock (or frees it when the stock is full).
    pub(crate) fn give(mut v: Vec<u64>) {
        #[cfg(test)]
        record(&v);
        if v.capacity() < MIN_ELEMENTS {
            return;
        }
        v.clear();
        if let Ok(mut free) = FREE.lock() {
            let (buffers, held) = &mut *free;
            let bytes = v.capacity() * 8;
            if *held + bytes <= MAX_BYTES {
                *held += bytes;
                buffers.push(v);
            }
        }
    }

    /// While [`recording`] runs: the degree, and the fingerprints of the chunks seen.
    #[cfg(test)]
    static RECORD: Mutex<Option<(usize, std::collections::HashSet<u64>)>> = Mutex::new(None);

    /// Whether [`RECORD`] is set (spares other tests the lock).
    #[cfg(test)]
    static RECORDING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    /// Serialises the tests that record.
    #[cfg(test)]
    static RECORDER: Mutex<()> = Mutex::new(());

    /// A fingerprint of one limb (multiply–xor hashing; not adversarial, so enough for tests).
    #[cfg(test)]
    pub(crate) fn fingerprint(limb: &[u64]) -> u64 {
        limb.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
            let h = (h ^ x).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            h ^ (h >> 29)
        })
    }

    #[cfg(test)]
    fn record(v: &[u64]) {
        if !RECORDING.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        if let Ok(mut record) = RECORD.lock() {
            if let Some((degree, seen)) = record.as_mut() {
                seen.extend(v.chunks_exact(*degree).map(fingerprint));
            }
        }
    }

    /// Runs `f` and returns the [`fingerprint`] of every `degree`-element chunk of every buffer
    /// given back meanwhile, by any thread and whether kept or freed: the contents that
    /// dropped polynomials leave in memory.
    #[cfg(test)]
    pub(crate) fn recording<R>(
        degree: usize,
        f: impl FnOnce() -> R,
    ) -> (R, std::collections::HashSet<u64>) {
        let _one = RECORDER.lock().unwrap_or_else(|e| e.into_inner());
        *RECORD.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((degree, std::collections::HashSet::new()));
        RECORDING.store(true, std::sync::atomic::Ordering::Release);
        let result = f();
        RECORDING.store(false, std::sync::atomic::Ordering::Release);
        let mut record = RECORD.lock().unwrap_or_else(|e| e.into_inner());
        let seen = record.take().map(|(_, seen)| seen).unwrap_or_default();
        (result, seen)
    }
}

/// Largest source base a [`BaseConverter`] accepts.
pub const MAX_BASE: usize = 64;

/// Exact centred conversion of an RNS value from base `from` (product Q) to base `to`: each
/// coefficient x ∈ [0, Q) is read as the integer in [−Q/2, Q/2) and reduced modulo each
/// target prime. Uses x = Σ y_i·(Q/q_i) − v·Q with y_i = [x_i·(Q/q_i)^{-1}]_{q_i} and
/// v = round(Σ y_i/q_i) (Halevi–Polyakov–Shoup), exact whenever |x| is not within a
/// 2^{-40} relative distance of Q/2.
#[derive(Clone, Debug)]
pub struct BaseConverter {
    from: Vec<Modulus>,
    to: Vec<Modulus>,
    inv_punct: Vec<u64>,
    inv_punct_shoup: Vec<u64>,
    inv_from: Vec<f64>,
    /// `[j·l + i]` = (Q/q_i) mod p_j.
    punct_mod_to: Vec<u64>,
    /// `[j·(l+1) + v]` = v·Q mod p_j for v in 0..=l.
    vq_mod_to: Vec<u64>,
}

impl BaseConverter {
    /// Precomputes the constants; `None` if a prime of `from` is not invertible modulo
    /// another of `from` (i.e. the primes are not distinct).
    pub fn new(from: &[Modulus], to: &[Modulus]) -> Option<Self> {
        if from.len() > MAX_BASE {
            return None;
        }
        let mut inv_punct = Vec::with_capacity(from.len());
        for (i, qi) in from.iter().enumerate() {
            let mut punct = 1u64;
            for (k, qk) in from.iter().enumerate() {
                if k != i {
                    punct = qi.mul(punct, qi.reduce(qk.value()));
                }
            }
            inv_punct.push(qi.inv(punct)?);
        }
        let inv_punct_shoup = inv_punct
            .iter()
            .zip(from)
            .map(|(&w, m)| m.shoup(w))
            .collect();
        let mut punct_mod_to = Vec::with_capacity(to.len());
        let mut vq_mod_to = Vec::with_capacity(to.len());
        for pj in to {
            let mut row = Vec::with_capacity(from.len());
            for i in 0..from.len() {
                let mut punct = 1u64;
                for (k, qk) in from.iter().enumerate() {
                    if k != i {
                        punct = pj.mul(punct, pj.reduce(qk.value()));
                    }
                }
                row.push(punct);
            }
            punct_mod_to.extend(row);
            let q_mod = from
                .iter()
                .fold(1u64, |acc, qk| pj.mul(acc, pj.reduce(qk.value())));
            vq_mod_to.extend((0..=from.len() as u64).map(|v| pj.mul(pj.reduce(v), q_mod)));
        }
        Some(BaseConverter {
            from: from.to_vec(),
            to: to.to_vec(),
            inv_punct,
            inv_punct_shoup,
            inv_from: from.iter().map(|m| 1.0 / m.value() as f64).collect(),
            punct_mod_to,
            vq_mod_to,
        })
    }

    /// Source base.
    pub fn from_base(&self) -> &[Modulus] {
        &self.from
    }

    /// Target base.
    pub fn to_base(&self) -> &[Modulus] {
        &self.to
    }

    /// Converts `input` (from.len() limbs of `degree` coefficients) into `output`
    /// (to.len() limbs). Works on blocks of `BLOCK` coefficients that stay in the L1 cache:
    /// first the y_i and the overflow count v limb by limb (vectorised), then one 128-bit
    /// accumulation and one reduction per output residue. Blocks run in parallel.
    pub fn convert(&self, input: &[u64], output: &mut [u64], degree: usize) {
        let n = degree;
        let tl = self.to.len();
        let ins: Vec<&[u64]> = input.chunks_exact(n).take(self.from.len()).collect();
        for_each_block(output, n, tl, |base, outs| {
            let mut scratch = BlockScratch::new(self.from.len());
            let len = outs.first().map_or(0, |o| o.len());
            scratch.load(
                &ins,
                base,
                len,
                &self.from,
                &self.inv_punct,
                &self.inv_punct_shoup,
            );
            scratch.count_overflows(&self.inv_from, len);
            let l = self.from.len();
            for (j, out) in outs.iter_mut().enumerate() {
                let row = &self.punct_mod_to[j * l..(j + 1) * l];
                let vq = &self.vq_mod_to[j * (l + 1)..(j + 1) * (l + 1)];
                let pj = &self.to[j];
                scratch.combine(
                    row,
                    pj,
                    len,
                    None,
                    |kk, r| pj.sub(r, vq[scratch.v[kk]]),
                    out,
                );
            }
        });
    }
}

/// Coefficients per block of the coefficient-wise RNS kernels (a few KiB of scratch per prime).
pub const BLOCK: usize = 256;

/// Splits limb-major `output` (`limbs` limbs of `n` coefficients) into blocks of [`BLOCK`]
/// coefficients and runs `f(first coefficient, the block's slice of every limb)` on each, in
/// parallel.
pub(crate) fn for_each_block(
    output: &mut [u64],
    n: usize,
    limbs: usize,
    f: impl Fn(usize, &mut [&mut [u64]]) + Sync + Send,
) {
    let block = n.min(BLOCK);
    let blocks = n.div_ceil(block);
    let mut per_block: Vec<Vec<&mut [u64]>> =
        (0..blocks).map(|_| Vec::with_capacity(limbs)).collect();
    for limb in output.chunks_exact_mut(n).take(limbs) {
        for (b, chunk) in limb.chunks_mut(block).enumerate() {
            per_block[b].push(chunk);
        }
    }
    per_block
        .into_par_iter()
        .enumerate()
        .for_each(|(b, mut outs)| f(b * block, &mut outs));
}

/// Products of two residues below 2^62 are below 2^124, so 15 of them and one reduced value fit
/// a u128; accumulators are folded after every FOLD terms.
const FOLD: usize = 15;

/// Per-block scratch of the CRT kernels: y_r = [x_r·(M/r)^{-1}]_r for every source prime r,
/// limb-major, and the floating-point sum Σ y_r/r with its rounding v.
pub(crate) struct BlockScratch {
    /// `[r·BLOCK + k]`.
    pub y: Vec<u64>,
    /// Σ_r y_r / r per coefficient.
    pub sum: Vec<f64>,
    /// round(Σ_r y_r / r) per coefficient.
    pub v: Vec<usize>,
    width: usize,
}

impl BlockScratch {
    pub(crate) fn new(width: usize) -> Self {
        BlockScratch {
            y: vec![0; width * BLOCK],
            sum: vec![0.0; BLOCK],
            v: vec![0; BLOCK],
            width,
        }
    }

    /// Fills `y` (and `sum`) from coefficients `base..base + len` of the source limbs.
    pub(crate) fn load(
        &mut self,
        ins: &[&[u64]],
        base: usize,
        len: usize,
        moduli: &[Modulus],
        inv_punct: &[u64],
        inv_punct_shoup: &[u64],
    ) {
        self.sum[..len].fill(0.0);
        for (r, ((src, m), (&w, &ws))) in ins
            .iter()
            .zip(moduli)
            .zip(inv_punct.iter().zip(inv_punct_shoup))
            .enumerate()
        {
            let y = &mut self.y[r * BLOCK..r * BLOCK + len];
            for (o, &x) in y.iter_mut().zip(&src[base..base + len]) {
                *o = m.mul_shoup_lanes(x, w, ws);
            }
        }
    }

    /// Sets `v` to round(Σ_r y_r/r), clamped to the number of source primes.
    pub(crate) fn count_overflows(&mut self, inv: &[f64], len: usize) {
        for (r, &f) in inv.iter().enumerate() {
            let y = &self.y[r * BLOCK..r * BLOCK + len];
            for (s, &yr) in self.sum[..len].iter_mut().zip(y) {
                // y < 2^62, so the signed conversion (cheaper to vectorise) is exact enough.
                *s += (yr as i64) as f64 * f;
            }
        }
        let width = self.width;
        for (v, &s) in self.v[..len].iter_mut().zip(&self.sum[..len]) {
            *v = ((s + 0.5) as usize).min(width);
        }
    }

    /// out[k] = finish(k, [init[k] + Σ_r y_r[k]·row[r]]_m) for k in 0..len (`init` below 2^66).
    pub(crate) fn combine(
        &self,
        row: &[u64],
        m: &Modulus,
        len: usize,
        init: Option<&[u128; BLOCK]>,
        finish: impl Fn(usize, u64) -> u64,
        out: &mut [u64],
    ) {
        let mut acc = match init {
            Some(init) => *init,
            None => [0u128; BLOCK],
        };
        for (r, &c) in row.iter().enumerate() {
            if r > 0 && r % FOLD == 0 {
                for a in &mut acc[..len] {
                    *a = u128::from(m.reduce_u128(*a));
                }
            }
            let y = &self.y[r * BLOCK..r * BLOCK + len];
            let c = u128::from(c);
            for (a, &yr) in acc[..len].iter_mut().zip(y) {
                *a += u128::from(yr) * c;
            }
        }
        for (k, (o, &a)) in out[..len].iter_mut().zip(&acc[..len]).enumerate() {
            *o = finish(k, m.reduce_u128(a));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::ntt_primes;
    use crate::math::BigUint;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn base_conversion_is_exact_and_centred() {
        let n = 64;
        let q = ntt_primes(55, n, 3, &[]).unwrap();
        let p = ntt_primes(60, n, 4, &q).unwrap();
        let qm: Vec<Modulus> = q.iter().map(|&x| Modulus::new(x).unwrap()).collect();
        let pm: Vec<Modulus> = p.iter().map(|&x| Modulus::new(x).unwrap()).collect();
        let conv = BaseConverter::new(&qm, &pm).unwrap();
        let big_q = BigUint::product(&q);
        let half = big_q.shr(1);
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        // Random big values below Q, built from random residues by CRT.
        let mut input = vec![0u64; 3 * n];
        for (i, &qi) in q.iter().enumerate() {
            for k in 0..n {
                input[i * n + k] = rng.gen_range(0..qi);
            }
        }
        // Include 0, 1 and Q - 1 in the first coefficients.
        for (i, &qi) in q.iter().enumerate() {
            input[i * n] = 0;
            input[i * n + 1] = 1;
            input[i * n + 2] = qi - 1;
        }
        let mut out = vec![0u64; 4 * n];
        conv.convert(&input, &mut out, n);
        for k in 0..n {
            // Reconstruct x by CRT.
            let mut x = BigUint::zero();
            for (i, &qi) in q.iter().enumerate() {
                let punct = big_q.div_rem_u64(qi).unwrap().0;
                let inv = qm[i].inv(punct.rem_u64(qi)).unwrap();
                let term = punct.mul_u64(qm[i].mul(input[i * n + k], inv));
                x = x.add(&term);
            }
            let x = x.div_rem(&big_q).unwrap().1;
            for (j, &pj) in p.iter().enumerate() {
                let expect = if x > half {
                    let neg = big_q.sub(&x).rem_u64(pj);
                    (pj - neg) % pj
                } else {
                    x.rem_u64(pj)
                };
                assert_eq!(out[j * n + k], expect, "coefficient {k} prime {j}");
            }
        }
    }

    #[test]
    fn polynomial_forms_round_trip() {
        let n = 32;
        let q = ntt_primes(40, n, 2, &[]).unwrap();
        let qm: Vec<Modulus> = q.iter().map(|&x| Modulus::new(x).unwrap()).collect();
        let tables: Vec<NttTable> = qm.iter().map(|&m| NttTable::new(m, n).unwrap()).collect();
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let mut a = RnsPoly::<Coeff>::zero(2, n);
        for i in 0..2 {
            for x in a.limb_mut(i) {
                *x = rng.gen_range(0..q[i]);
            }
        }
        let back = a.clone().into_ntt(&tables).into_coeff(&tables);
        assert_eq!(back, a);
        assert_eq!(format!("{a:?}"), "RnsPoly<coeff>(n=32, limbs=2)");
    }

    /// Residues stay below 2^62, so no other buffer holds these values.
    const DIRTY: u64 = 0xd1e7_0000_0000_0000;
    const WIPED: u64 = 0xd1ff_0000_0000_0000;

    #[test]
    fn pooled_buffers_are_handed_out_empty_or_zeroed() {
        let n = 1 << 13;
        let mut v = pool::take(n);
        v.resize(n, DIRTY);
        pool::give(v);
        // Whatever buffer comes back (this one or another thread's), none shows old contents.
        assert!(pool::take(n).is_empty());
        let mut v = pool::take(n);
        v.resize(n, DIRTY);
        pool::give(v);
        assert!(pool::take_zeroed(n).iter().all(|&x| x == 0));
    }

    #[test]
    fn wiped_polynomials_leave_nothing_behind() {
        let n = 1 << 12;
        let mut kept = RnsPoly::<Coeff>::zero(1, n);
        kept.data_mut().fill(DIRTY);
        let ((), seen) = pool::recording(n, || {
            let mut p = RnsPoly::<Ntt>::zero(3, n);
            p.data_mut().fill(WIPED);
            p.zeroize();
            assert_eq!(p.limbs(), 0);
            drop(p);
            let mut q = zeroize::Zeroizing::new(RnsPoly::<Coeff>::zero(2, n));
            q.data_mut().fill(WIPED);
            drop(q);
            // The recorder does see what is dropped unwiped.
            drop(kept.clone());
        });
        assert!(seen.contains(&pool::fingerprint(kept.limb(0))));
        assert!(!seen.contains(&pool::fingerprint(&vec![WIPED; n])));
    }
}
