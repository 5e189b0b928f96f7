//! Byte forms of BGV ciphertexts and keys, beside BFV's and in the same style: magic bytes that
//! name the scheme and the type, a version byte, fingerprints, then bit-packed residues (NTT
//! form, as the objects hold them). Every count is checked against its bound and against the
//! bytes present before anything is allocated from it.
//!
//! Ciphertext: `VGCT`, version, parameter fingerprint (u64), level (u8), size (u8), flags (u8,
//! bit 0: c_1 is a 32-byte seed), scale (u64, a unit mod t), then c_0, c_1 or its seed, c_2.
//! Public key: `VGPK`, key version, ring fingerprint, key-set id, prime count (u8), the
//! plaintext primes (u64 each), seed, b over q_0..q_{L-1}. Relinearisation key: `VGRK`, the same
//! header, seed, then L polynomials b_j over q_0..q_{L-1}, p.

use super::ciphertext::Ciphertext;
use super::keys::{check_plain_primes, MAX_PLAIN_PRIMES};
use super::public::PublicKey;
use super::relin::RelinKey;
use crate::bfv::{
    expand_seed, key_header, poly_len, write_poly, BfvParameters, Reader, SerialError,
    FORMAT_VERSION, KEY_FORMAT_VERSION,
};
use std::sync::Arc;

/// Magic bytes of a BGV ciphertext.
pub const MAGIC_CIPHERTEXT: &[u8; 4] = b"VGCT";
/// Magic bytes of a BGV public key.
pub const MAGIC_PUBLIC_KEY: &[u8; 4] = b"VGPK";
/// Magic bytes of a BGV relinearisation key.
pub const MAGIC_RELIN_KEY: &[u8; 4] = b"VGRK";

impl Ciphertext {
    /// Serialises the ciphertext (layout in the module documentation of `bgv::serial`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let moduli = &self.params.ring().q()[..self.level];
        let mut out = Vec::with_capacity(
            4 + 1 + 8 + 3 + 8 + self.size() * poly_len(moduli, self.params.degree()),
        );
        out.extend_from_slice(MAGIC_CIPHERTEXT);
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&self.fingerprint().to_le_bytes());
        out.push(self.level as u8);
        out.push(self.size() as u8);
        out.push(u8::from(self.seed.is_some()));
        out.extend_from_slice(&self.scale.to_le_bytes());
        for (i, p) in self.polys.iter().enumerate() {
            match (i, &self.seed) {
                (1, Some(seed)) => out.extend_from_slice(seed),
                _ => write_poly(p, moduli, &mut out),
            }
        }
        out
    }

    /// Reads a BGV ciphertext for `params`.
    pub fn from_bytes(params: &Arc<BfvParameters>, bytes: &[u8]) -> Result<Self, SerialError> {
        let what = "BGV ciphertext";
        let mut r = Reader::new(bytes, what);
        r.header(MAGIC_CIPHERTEXT, FORMAT_VERSION)?;
        r.fingerprint(params.fingerprint(), "parameters")?;
        let level = usize::from(r.u8()?);
        let size = usize::from(r.u8()?);
        let flags = r.u8()?;
        let scale = r.u64()?;
        let invalid = |detail: String| SerialError::Invalid { what, detail };
        if level == 0 || level > params.max_level() {
            return Err(invalid(format!(
                "level {level} is outside 1..={}",
                params.max_level()
            )));
        }
        if !(2..=3).contains(&size) {
            return Err(invalid(format!("size {size} is not 2 or 3")));
        }
        let t = params.plain_modulus();
        if scale == 0 || scale >= t {
            return Err(invalid(format!("scale {scale} is outside 1..{t}")));
        }
        let seeded = match flags {
            0 => false,
            1 if level == params.max_level() && size == 2 => true,
            _ => {
                return Err(invalid(format!(
                    "flags {flags:#04x} are invalid for size {size} at level {level}"
                )))
            }
        };
        let n = params.degree();
        let moduli = &params.ring().q()[..level];
        let mut polys = Vec::with_capacity(size);
        let mut seed = None;
        for i in 0..size {
            if i == 1 && seeded {
                let s = r.seed()?;
                polys.push(expand_seed(&s, moduli, n, 0));
                seed = Some(s);
            } else {
                polys.push(r.poly(moduli, n)?);
            }
        }
        r.finish()?;
        let mut ct = Ciphertext::new(params.clone(), polys, level, scale);
        ct.seed = seed;
        Ok(ct)
    }
}

fn write_primes(primes: &[u64], out: &mut Vec<u8>) {
    out.push(primes.len() as u8);
    for p in primes {
        out.extend_from_slice(&p.to_le_bytes());
    }
}

/// The plaintext primes of a key: a count bounded by [`MAX_PLAIN_PRIMES`] (checked before the
/// list is allocated), then the primes, checked as key generation checks them.
fn read_primes(
    r: &mut Reader<'_>,
    what: &'static str,
    params: &BfvParameters,
) -> Result<Vec<u64>, SerialError> {
    let count = usize::from(r.u8()?);
    if count == 0 || count > MAX_PLAIN_PRIMES {
        return Err(SerialError::Invalid {
            what,
            detail: format!("{count} plaintext primes; 1..={MAX_PLAIN_PRIMES} are allowed"),
        });
    }
    let mut primes = Vec::with_capacity(count);
    for _ in 0..count {
        primes.push(r.u64()?);
    }
    let mut ring_primes = params.q_primes();
    ring_primes.push(params.special_prime());
    check_plain_primes(&primes, &ring_primes).map_err(|e| SerialError::Invalid {
        what,
        detail: e.to_string(),
    })?;
    Ok(primes)
}

impl PublicKey {
    /// Serialises the key: header, plaintext primes, seed of a, b.
    pub fn to_bytes(&self) -> Vec<u8> {
        let moduli = &self.ring.q()[..self.ring.max_level()];
        let mut out = Vec::new();
        key_header(&mut out, MAGIC_PUBLIC_KEY, self.ring.fingerprint(), self.id);
        write_primes(&self.plain_primes, &mut out);
        out.extend_from_slice(&self.seed);
        write_poly(&self.b, moduli, &mut out);
        out
    }

    /// Reads a BGV public key for the ring of `params`.
    pub fn from_bytes(params: &BfvParameters, bytes: &[u8]) -> Result<Self, SerialError> {
        let what = "BGV public key";
        let mut r = Reader::new(bytes, what);
        r.header(MAGIC_PUBLIC_KEY, KEY_FORMAT_VERSION)?;
        r.fingerprint(params.ring_fingerprint(), "ring")?;
        let id = r.key_id()?;
        let primes = read_primes(&mut r, what, params)?;
        let seed = r.seed()?;
        let ring = params.ring().clone();
        let b = r.poly(&ring.q()[..ring.max_level()], ring.degree())?;
        r.finish()?;
        Ok(PublicKey::from_parts(ring, id, primes, seed, b))
    }
}

impl RelinKey {
    /// Serialises the key: header, plaintext primes, seed of the a_j, the b_j.
    pub fn to_bytes(&self) -> Vec<u8> {
        let moduli = self.ring.key_moduli();
        let mut out = Vec::new();
        key_header(&mut out, MAGIC_RELIN_KEY, self.ring.fingerprint(), self.id);
        write_primes(&self.plain_primes, &mut out);
        out.extend_from_slice(&self.seed);
        for b in &self.b {
            write_poly(b, moduli, &mut out);
        }
        out
    }

    /// Reads a BGV relinearisation key for the ring of `params`.
    pub fn from_bytes(params: &BfvParameters, bytes: &[u8]) -> Result<Self, SerialError> {
        let what = "BGV relinearisation key";
        let mut r = Reader::new(bytes, what);
        r.header(MAGIC_RELIN_KEY, KEY_FORMAT_VERSION)?;
        r.fingerprint(params.ring_fingerprint(), "ring")?;
        let id = r.key_id()?;
        let primes = read_primes(&mut r, what, params)?;
        let seed = r.seed()?;
        let ring = params.ring().clone();
        let mut b = Vec::with_capacity(ring.max_level());
        for _ in 0..ring.max_level() {
            b.push(r.poly(ring.key_moduli(), ring.degree())?);
        }
        r.finish()?;
        Ok(RelinKey::from_parts(ring, id, primes, seed, b))
    }
}
