//! Galois automorphisms of R = Z[X]/(X^n + 1): σ_k: a(X) ↦ a(X^k) for odd k mod 2n. On the
//! batching slots they act as permutations (rotations of the two rows of n/2 slots, or the
//! swap of the rows), which is what makes them useful. This file holds the ring maps (in
//! coefficient form: a permutation with sign flips; in NTT form: a permutation of the
//! evaluation points) and the names of the slot permutations in Galois elements. The slot
//! order itself is the encoder's rule ([`SLOT_GENERATOR`]); the keys and the evaluator build on
//! this file.

use super::encoding::SLOT_GENERATOR;
use super::error::EvalError;
use super::keys::GaloisKey;
use crate::math::{Coeff, Modulus, Ntt, RnsPoly};
use rayon::prelude::*;

/// Checks that `element` names an automorphism other than the identity in degree `degree`:
/// odd and in 3..2n.
pub fn check_galois_element(degree: usize, element: u64) -> Result<(), EvalError> {
    let two_n = 2 * degree as u64;
    if element.is_multiple_of(2) || element < 3 || element >= two_n {
        return Err(EvalError::BadGaloisElement { element, two_n });
    }
    Ok(())
}

/// The Galois element that rotates both rows of slots left by `steps` (slot c receives the
/// value of slot c + steps, cyclically in each row of n/2); negative steps rotate right.
/// It is g^steps mod 2n with g = [`SLOT_GENERATOR`]. Zero steps (mod n/2) give 1, the
/// identity, which needs no key.
pub fn row_rotation_element(degree: usize, steps: i64) -> u64 {
    let two_n = 2 * degree as u64;
    let half = (degree / 2).max(1) as i64;
    let e = steps.rem_euclid(half) as u64;
    pow_mod(SLOT_GENERATOR % two_n, e, two_n)
}

/// The Galois element that swaps the two rows of slots: 2n − 1 (X ↦ X^{-1}).
pub fn column_swap_element(degree: usize) -> u64 {
    2 * degree as u64 - 1
}

/// A Galois operation a rotation call asks for: its element and how an error names it.
pub(crate) type GaloisOp = (u64, String);

/// The operations of row rotations by `steps` (BFV's and BGV's `rotate_many`).
pub(crate) fn row_rotation_ops(degree: usize, steps: &[i64]) -> Vec<GaloisOp> {
    steps
        .iter()
        .map(|&s| {
            (
                row_rotation_element(degree, s),
                format!("a row rotation by {s} steps"),
            )
        })
        .collect()
}

/// The operation of the row swap (BFV's and BGV's `rotate_columns`).
pub(crate) fn column_swap_op(degree: usize) -> GaloisOp {
    (column_swap_element(degree), "the column swap".into())
}

/// The operations of the automorphisms `elements`, each checked (`apply_galois_many`).
pub(crate) fn automorphism_ops(
    degree: usize,
    elements: &[u64],
) -> Result<Vec<GaloisOp>, EvalError> {
    elements
        .iter()
        .map(|&k| {
            check_galois_element(degree, k)?;
            Ok((k, format!("the automorphism X -> X^{k}")))
        })
        .collect()
}

/// The key of every operation (`None` for element 1, the identity), each present and serving
/// `level`: the lookup BFV's and BGV's hoisted rotations share. `get` finds a key and
/// `present` lists the elements held, for the error.
pub(crate) fn find_keys<'k>(
    ops: &[GaloisOp],
    level: usize,
    get: impl Fn(u64) -> Option<&'k GaloisKey>,
    present: impl Fn() -> Vec<u64>,
) -> Result<Vec<(u64, Option<&'k GaloisKey>)>, EvalError> {
    ops.iter()
        .map(|(k, operation)| {
            if *k == 1 {
                return Ok((1, None));
            }
            let key = get(*k).ok_or_else(|| EvalError::MissingGaloisKey {
                operation: operation.clone(),
                element: *k,
                present: present(),
            })?;
            key.check_level(*k, level)?;
            Ok((*k, Some(key)))
        })
        .collect()
}

/// x^e mod m for m ≤ 2^17 (products fit a u64).
fn pow_mod(mut x: u64, mut e: u64, m: u64) -> u64 {
    let mut r = 1 % m;
    while e > 0 {
        if e & 1 == 1 {
            r = r * x % m;
        }
        x = x * x % m;
        e >>= 1;
    }
    r
}

/// k^{-1} mod 2n for odd k (the odd residues mod a power of two form a group of order n,
/// so k^{n-1} is the inverse).
pub(crate) fn inverse_element(degree: usize, element: u64) -> u64 {
    pow_mod(element, degree as u64 - 1, 2 * degree as u64)
}

/// σ_k in coefficient form: coefficient i moves to i·k mod 2n, negated when that is ≥ n
/// (X^n = −1).
pub(crate) fn automorphism_coeff(
    a: &RnsPoly<Coeff>,
    moduli: &[Modulus],
    element: u64,
) -> RnsPoly<Coeff> {
    let n = a.degree();
    let two_n = 2 * n;
    let k = element as usize % two_n;
    // Destination and sign of every source index; public (depends on k only).
    let dest: Vec<(usize, bool)> = (0..n)
        .map(|i| {
            let j = i * k % two_n;
            if j < n {
                (j, false)
            } else {
                (j - n, true)
            }
        })
        .collect();
    let mut out = RnsPoly::<Coeff>::zero(a.limbs(), n);
    out.data_mut()
        .par_chunks_mut(n)
        .zip(a.data().par_chunks(n))
        .zip(moduli.par_iter())
        .for_each(|((o, src), m)| {
            for (&x, &(j, neg)) in src.iter().zip(&dest) {
                o[j] = if neg { m.neg(x) } else { x };
            }
        });
    out
}

/// For NTT form: `out[j] = in[perm[j]]` applies σ_k. NTT index j holds the value at ψ^{e_j}
/// with e_j = 2·bitrev(j) + 1 (see `math::ntt`), and σ_k(a)(ψ^e) = a(ψ^{e·k}).
pub(crate) fn ntt_permutation(degree: usize, element: u64) -> Vec<usize> {
    let bits = degree.trailing_zeros();
    let two_n = 2 * degree as u64;
    let rev = |x: usize| {
        if bits == 0 {
            0
        } else {
            x.reverse_bits() >> (usize::BITS - bits)
        }
    };
    (0..degree)
        .map(|j| {
            let e = 2 * rev(j) as u64 + 1;
            let ek = e * (element % two_n) % two_n;
            rev(((ek - 1) / 2) as usize)
        })
        .collect()
}

/// σ_k in NTT form (every limb permuted the same way).
pub(crate) fn automorphism_ntt(a: &RnsPoly<Ntt>, element: u64) -> RnsPoly<Ntt> {
    let n = a.degree();
    let perm = ntt_permutation(n, element);
    let mut out = RnsPoly::<Ntt>::zero(a.limbs(), n);
    out.data_mut()
        .par_chunks_mut(n)
        .zip(a.data().par_chunks(n))
        .for_each(|(o, src)| {
            for (o, &p) in o.iter_mut().zip(&perm) {
                *o = src[p];
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bfv::encoding::Encoder;
    use crate::bfv::params::tests::toy;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    /// σ_k by the definition: Σ a_i X^{ik}, reducing X^{2n} = 1 and X^n = −1 one term at a
    /// time.
    fn schoolbook(a: &[u64], k: u64, m: &Modulus) -> Vec<u64> {
        let n = a.len() as u64;
        let mut out = vec![0u64; a.len()];
        for (i, &x) in a.iter().enumerate() {
            let e = (i as u64 * k) % (2 * n);
            let (j, v) = if e >= n { (e - n, m.neg(x)) } else { (e, x) };
            out[j as usize] = m.add(out[j as usize], v);
        }
        out
    }

    #[test]
    fn coefficient_and_ntt_forms_agree_with_the_definition() {
        let params = toy(1024);
        let ring = params.ring();
        let n = ring.degree();
        let moduli = &ring.q()[..2];
        let tables = ring.q_tables(2);
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let mut a = RnsPoly::<Coeff>::zero(2, n);
        for (limb, m) in a.data_mut().chunks_exact_mut(n).zip(moduli) {
            limb.iter_mut()
                .for_each(|x| *x = rng.gen_range(0..m.value()));
        }
        for k in [3u64, 5, 9, 2047, 1025, row_rotation_element(n, -7)] {
            let c = automorphism_coeff(&a, moduli, k);
            for (i, m) in moduli.iter().enumerate() {
                assert_eq!(c.limb(i), schoolbook(a.limb(i), k, m), "k={k}");
            }
            let via_ntt = automorphism_ntt(&a.clone().into_ntt(tables), k);
            assert_eq!(via_ntt, c.clone().into_ntt(tables), "k={k}");
            // σ_{k^{-1}} undoes σ_k.
            let back = automorphism_coeff(&c, moduli, inverse_element(n, k));
            assert_eq!(back, a);
        }
    }

    #[test]
    fn elements_follow_the_slot_order() {
        let params = toy(1024);
        let n = params.degree();
        let half = n / 2;
        let enc = Encoder::new(&params);
        let t = params.plain();
        let v: Vec<i64> = (0..n as i64).map(|i| i * 3 - 700).collect();
        let pt = enc.encode(&v).unwrap();
        let apply = |k: u64| {
            let p = RnsPoly::<Coeff>::from_raw(pt.coeffs().to_vec(), n).unwrap();
            let q = automorphism_coeff(&p, std::slice::from_ref(t), k);
            let out =
                crate::bfv::encoding::Plaintext::from_coeffs(params.clone(), q.data().to_vec());
            enc.decode(&out).unwrap()
        };
        for steps in [1i64, 2, 5, -1, -3, 511, 512, 0] {
            let k = row_rotation_element(n, steps);
            let got = apply(k);
            let s = steps.rem_euclid(half as i64) as usize;
            for row in 0..2 {
                for c in 0..half {
                    assert_eq!(
                        got[row * half + c],
                        v[row * half + (c + s) % half],
                        "steps {steps} row {row} col {c}"
                    );
                }
            }
        }
        let got = apply(column_swap_element(n));
        assert_eq!(&got[..half], &v[half..]);
        assert_eq!(&got[half..], &v[..half]);
        assert_eq!(row_rotation_element(n, 0), 1);
        assert_eq!(row_rotation_element(n, 1), SLOT_GENERATOR);
        assert!(check_galois_element(n, 1).is_err());
        assert!(check_galois_element(n, 4).is_err());
        assert!(check_galois_element(n, 2049).is_err());
        assert!(check_galois_element(n, 2047).is_ok());
    }
}
