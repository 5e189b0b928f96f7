//! Keys: the ternary secret key (zeroised on drop, redacted in `Debug`), the public key, and
//! the relinearisation and Galois keys for hybrid key switching. Keys depend only on the ring, so one key
//! set serves every plaintext modulus of that ring. One file per key kind, so the secret and
//! the keys a server holds never share a file.

mod galois;
mod public;
mod relin;
mod secret;
mod switching;

pub(crate) use switching::{expand_a, switching_b};

pub use galois::GaloisKeys;
pub(crate) use galois::{generate_at_levels, GaloisKey};
pub use public::PublicKey;
pub use relin::RelinKey;
pub(crate) use secret::budget_bits;
#[cfg(test)]
pub(crate) use secret::phase_norm;
pub use secret::SecretKey;

use super::error::EvalError;
use super::params::{BfvParameters, RingContext};

crate::random_id::random_id! {
    /// Names one key set: drawn at random when the secret key is generated and carried by the
    /// public and relinearisation keys derived from it (and by every serialised key). Files made
    /// under a key set record its id, so a file met with the keys of another set is refused by
    /// name instead of decrypting to noise. It is an identifier, not an authenticator: anyone may
    /// copy it.
    KeyId
}

pub(crate) fn check_ring(ring: &RingContext, params: &BfvParameters) -> Result<(), EvalError> {
    if ring.fingerprint() != params.ring_fingerprint() {
        return Err(EvalError::KeyMismatch {
            expected: params.ring_fingerprint(),
            found: ring.fingerprint(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bfv::encoding::Encoder;
    use crate::bfv::evaluator::Evaluator;
    use crate::bfv::params::tests::toy;
    use crate::bfv::sampling::{error_poly, small_to_rns, ternary};
    use crate::math::{pool, Form};
    use crate::math::{Coeff, Ntt, RnsPoly};
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn limbs<F: Form>(p: &RnsPoly<F>) -> impl Iterator<Item = &[u64]> {
        p.data().chunks_exact(p.degree())
    }

    /// Dropped buffers keep their contents (in the pool, or freed), so every temporary derived
    /// from s, from the encryption randomness or from a phase must be wiped first. Records what
    /// the key, encryption and decryption paths drop, then looks for each such value in it.
    #[test]
    fn no_secret_derived_value_is_dropped_unwiped() {
        let params = toy(4096);
        let ring = params.ring().clone();
        let n = ring.degree();
        let level = ring.max_level();
        let moduli = &ring.q()[..level];
        let tables = ring.q_tables(level);
        let key_moduli = ring.key_moduli();
        let enc = Encoder::new(&params);
        let ev = Evaluator::new(&params);
        let pt = enc.encode(&[7, -8, 9]).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(31);
        let ((sk, pk, rk, u_small, e0, e1, cts), dropped) = pool::recording(n, || {
            let sk = SecretKey::generate(&params, &mut rng);
            let pk = PublicKey::new(&sk, &mut rng);
            let rk = RelinKey::new(&sk, &mut rng);
            // Public-key encryption draws u, then e_0 and e_1: replay them from a copy.
            let mut replay = rng.clone();
            let u_small = ternary(&mut replay, n);
            let e0 = error_poly(&mut replay, n, moduli);
            let e1 = error_poly(&mut replay, n, moduli);
            let by_pk = pk.encrypt(&pt, &mut rng).unwrap();
            let by_sk = sk.encrypt(&pt, &mut rng).unwrap();
            let sq = ev.square(&by_sk).unwrap();
            let relin = ev.relinearize(&sq, &rk).unwrap();
            let cts = [by_pk, by_sk, sq, relin];
            for (ct, want) in cts
                .iter()
                .zip([[7, -8, 9], [7, -8, 9], [49, 64, 81], [49, 64, 81]])
            {
                assert_eq!(ct.level(), level);
                assert_eq!(enc.decode(&sk.decrypt(ct).unwrap()).unwrap()[..3], want);
                assert!(sk.noise_budget(ct).unwrap() > 0);
            }
            let back = SecretKey::from_bytes(&params, &sk.to_bytes()).unwrap();
            assert_eq!(back.coeffs, sk.coeffs);
            (sk, pk, rk, u_small, e0, e1, cts)
        });

        let mut secret: Vec<RnsPoly<Ntt>> = Vec::new();
        let mut secret_coeff: Vec<RnsPoly<Coeff>> = vec![
            small_to_rns(&sk.coeffs, key_moduli),
            small_to_rns(&u_small, moduli),
            e0,
            e1,
        ];
        let s = sk.s_at(level);
        let mut s2 = sk.ntt.clone();
        s2.mul_assign(&sk.ntt, key_moduli);
        let mut s2_level = s.clone();
        s2_level.mul_assign(&s, moduli);
        for aj in &rk.a {
            let mut as_ = aj.clone();
            as_.mul_assign(&sk.ntt, key_moduli);
            secret.push(as_);
        }
        let mut pk_as = pk.a.clone();
        pk_as.mul_assign(&s, moduli);
        secret.push(pk_as);
        secret.push(small_to_rns(&u_small, moduli).into_ntt(tables));
        // c_1·s (for a fresh symmetric encryption, a·s) in both forms, c_2·s², the phases.
        for ct in &cts {
            let mut c1s = ct.polys[1].clone().into_ntt(tables);
            c1s.mul_assign(&s, moduli);
            secret_coeff.push(c1s.clone().into_coeff(tables));
            secret.push(c1s);
            if let Some(c2) = ct.polys.get(2) {
                let mut c2s2 = c2.clone().into_ntt(tables);
                c2s2.mul_assign(&s2_level, moduli);
                secret.push(c2s2);
            }
            secret_coeff.push(RnsPoly::clone(&sk.phase(ct).unwrap()));
        }
        secret.push(sk.ntt.clone());
        secret.push(s2);

        let leaked = secret
            .iter()
            .flat_map(limbs)
            .chain(secret_coeff.iter().flat_map(limbs))
            .filter(|limb| dropped.contains(&pool::fingerprint(limb)))
            .count();
        assert_eq!(
            leaked, 0,
            "limbs of secret-derived values were dropped unwiped"
        );
    }
}
