//! Products with plaintext vectors for BGV: the packed layout's diagonal products and bias.
//!
//! BGV ciphertexts are already in evaluation form, so a product with a plaintext lifted to the
//! q primes ([`crate::bfv::NttPlaintext`], made by `bfv::Evaluator::plain_to_ntt`: the centred
//! lift is the same in both schemes) is pointwise, and a sum of such products shares BFV's
//! lazily reduced kernel. The message keeps its scale: `scale·m` times `p` is `scale·(m·p)`.

use super::{Ciphertext, EvalError, Evaluator};
use crate::bfv::{check_terms, dot_ntt};
use crate::bfv::{NttPlaintext, Plaintext};
use crate::math::RnsPoly;

impl Evaluator {
    /// `Σ_i pt_i ⊙ ct_i` (slot-wise products summed). The ciphertexts must share level, size
    /// and scale; the sum has that scale. The noise of each product grows by the plaintext's
    /// polynomial (about δ·t/2).
    pub fn dot_plain(
        &self,
        terms: &[(&Ciphertext, &NttPlaintext)],
    ) -> Result<Ciphertext, EvalError> {
        let (level, size) = check_terms(
            self.params.fingerprint(),
            terms
                .iter()
                .map(|(ct, pt)| ((ct.fingerprint(), ct.level, ct.size()), *pt)),
        )?;
        let scale = terms.first().map_or(1, |(ct, _)| ct.scale);
        if let Some((ct, _)) = terms.iter().find(|(ct, _)| ct.scale != scale) {
            return Err(EvalError::ScaleMismatch {
                left: scale,
                right: ct.scale,
            });
        }
        let parts = terms
            .iter()
            .map(|(ct, pt)| (ct.polys.as_slice(), &pt.poly))
            .collect();
        let polys = dot_ntt(parts, self.moduli(level), self.params.degree(), size);
        Ok(Ciphertext::new(self.params.clone(), polys, level, scale))
    }

    /// `ct + pt` slot-wise: `[scale·pt]_t`, lifted centred, is added to c_0 (the message
    /// carries the factor `scale`). The noise grows by at most t/2 per coefficient.
    pub fn add_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext, EvalError> {
        self.check(ct)?;
        if pt.fingerprint() != self.params.fingerprint() {
            return Err(EvalError::ParamsMismatch {
                expected: self.params.fingerprint(),
                found: pt.fingerprint(),
            });
        }
        let t = self.params.plain();
        let n = self.params.degree();
        let level = ct.level;
        let mut m = RnsPoly::zero(level, n);
        for (limb, q) in m.data_mut().chunks_exact_mut(n).zip(self.moduli(level)) {
            for (o, &v) in limb.iter_mut().zip(pt.coeffs()) {
                *o = q.lift_centred(t.mul(v, ct.scale), t.value());
            }
        }
        let m = m.into_ntt(self.params.ring().q_tables(level));
        let mut r = ct.clone();
        r.polys[0].add_assign(&m, self.moduli(level));
        r.detach();
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::super::support::setup;
    use crate::bfv::test_params::toy;
    use crate::bfv::Evaluator as BfvEvaluator;

    #[test]
    fn plaintext_vector_products_and_sums_keep_the_scale() {
        let mut s = setup(toy(2048), 21);
        let (a, b, u, v) = (s.random(30), s.random(30), s.random(9), s.random(9));
        let (ca, cb) = (s.encrypt(&a), s.encrypt(&b));
        // A switched ciphertext carries a scale other than 1.
        let (ca, cb) = (
            s.ev.mod_switch_to_next(&ca).unwrap(),
            s.ev.mod_switch_to_next(&cb).unwrap(),
        );
        assert_ne!(ca.scale(), 1);
        let lift = BfvEvaluator::new(&s.params);
        let level = ca.level();
        let pu = lift
            .plain_to_ntt(&s.enc.encode(&u).unwrap(), level)
            .unwrap();
        let pv = lift
            .plain_to_ntt(&s.enc.encode(&v).unwrap(), level)
            .unwrap();
        let sum = s.ev.dot_plain(&[(&ca, &pu), (&cb, &pv)]).unwrap();
        let expected =
            s.expect(|i| i128::from(a[i]) * i128::from(u[i]) + i128::from(b[i]) * i128::from(v[i]));
        assert_eq!(s.decrypt(&sum), expected);
        let with_bias = s.ev.add_plain(&sum, &s.enc.encode(&u).unwrap()).unwrap();
        let expected = s.expect(|i| {
            i128::from(a[i]) * i128::from(u[i])
                + i128::from(b[i]) * i128::from(v[i])
                + i128::from(u[i])
        });
        assert_eq!(s.decrypt(&with_bias), expected);
        let fresh = s.encrypt(&a);
        assert!(s.ev.dot_plain(&[(&ca, &pu), (&fresh, &pu)]).is_err());
    }
}
