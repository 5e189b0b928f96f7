//! Products without relinearisation. The phase of a product is the product of the phases, so
//! in NTT form a product of two size-2 ciphertexts is four pointwise multiplications per prime
//! (three for a square) and no transform at all. The scales multiply.

use super::{EvalError, Evaluator};
use crate::bgv::ciphertext::Ciphertext;
use crate::math::{Modulus, Ntt, RnsPoly};
use rayon::prelude::*;

impl Evaluator {
    /// `a·b` as a size-3 ciphertext (a_0 b_0, a_0 b_1 + a_1 b_0, a_1 b_1). Both of size 2 and
    /// at the same level; the scales may differ (the result's is their product).
    pub fn mul(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext, EvalError> {
        self.check_pair(a, b, false)?;
        self.check_size_two(a)?;
        self.check_size_two(b)?;
        Ok(self.tensor(a, Some(b)))
    }

    /// `a²` as a size-3 ciphertext (a_0², 2 a_0 a_1, a_1²).
    pub fn square(&self, a: &Ciphertext) -> Result<Ciphertext, EvalError> {
        self.check(a)?;
        self.check_size_two(a)?;
        Ok(self.tensor(a, None))
    }

    fn check_size_two(&self, ct: &Ciphertext) -> Result<(), EvalError> {
        if ct.size() != 2 {
            return Err(EvalError::UnsupportedSize {
                size: ct.size(),
                max: 2,
            });
        }
        Ok(())
    }

    /// The tensor product of `a` with `b` (or with itself), prime by prime in parallel.
    fn tensor(&self, a: &Ciphertext, b: Option<&Ciphertext>) -> Ciphertext {
        let level = a.level;
        let n = self.params.degree();
        let moduli = self.moduli(level);
        let mut d0 = RnsPoly::<Ntt>::zero(level, n);
        let mut d1 = RnsPoly::<Ntt>::zero(level, n);
        let mut d2 = RnsPoly::<Ntt>::zero(level, n);
        let (a0, a1) = (&a.polys[0], &a.polys[1]);
        d0.data_mut()
            .par_chunks_mut(n)
            .zip(d1.data_mut().par_chunks_mut(n))
            .zip(d2.data_mut().par_chunks_mut(n))
            .enumerate()
            .for_each(|(i, ((o0, o1), o2))| {
                let m = &moduli[i];
                let (x0, x1) = (a0.limb(i), a1.limb(i));
                let outs = o0.iter_mut().zip(o1.iter_mut()).zip(o2.iter_mut());
                match b {
                    Some(b) => {
                        let (y0, y1) = (b.polys[0].limb(i), b.polys[1].limb(i));
                        let ins = x0.iter().zip(x1).zip(y0.iter().zip(y1));
                        for (((o0, o1), o2), ((&a0, &a1), (&b0, &b1))) in outs.zip(ins) {
                            *o0 = m.mul(a0, b0);
                            *o1 = m.add(m.mul(a0, b1), m.mul(a1, b0));
                            *o2 = m.mul(a1, b1);
                        }
                    }
                    None => {
                        for (c, out) in [o0, o1, o2].into_iter().enumerate() {
                            square_component(m, c, x0, x1, out);
                        }
                    }
                }
            });
        let scale = self.product_scale(a.scale, b.map_or(a.scale, |b| b.scale));
        Ciphertext::new(self.params.clone(), vec![d0, d1, d2], level, scale)
    }

    /// The scale of a product of ciphertexts at scales `a` and `b`: their product mod t.
    pub fn product_scale(&self, a: u64, b: u64) -> u64 {
        self.params.plain().mul(a, b)
    }
}

/// Component `c` (0, 1 or 2) of the square of a size-2 ciphertext `(a0, a1)` in NTT form,
/// prime by prime: `a0²`, `2·a0·a1`, `a1²`, pointwise modulo `m`. The one rule for a BGV
/// square's components; the blocked linear map computes them on the fly with it.
pub(crate) fn square_component(m: &Modulus, c: usize, a0: &[u64], a1: &[u64], out: &mut [u64]) {
    let pairs = a0.iter().zip(a1).zip(out.iter_mut());
    match c {
        0 => pairs.for_each(|((&x, _), o)| *o = m.mul_lanes(x, x)),
        1 => pairs.for_each(|((&x, &y), o)| {
            let p = m.mul_lanes(x, y);
            *o = m.add(p, p);
        }),
        _ => pairs.for_each(|((_, &y), o)| *o = m.mul_lanes(y, y)),
    }
}
