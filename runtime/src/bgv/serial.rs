//! Byte forms of BGV ciphertexts and keys, beside BFV's and in the same style: magic bytes that
//! name the scheme and the type, a version byte, fingerprints, then bit-packed residues (NTT
//! form, as the objects hold them). Every count is checked against its bound and against the
//! bytes present before anything is allocated from it.
//!
//! Ciphertext: `VGCT`, version, parameter fingerprint (u64), level (u8), size (u8), flags (u8,
//! bit 0: c_1 is a 32-byte seed; bit 1: low bits rounded away), scale (u64, a unit mod t), with
//! bit 1 one u16 per component (the bits rounded away, see [`Ciphertext::round_low_bits`]),
//! then c_0, c_1 or its seed, c_2: each bit-packed limb by limb, or, where k > 0 bits were
//! rounded away, as the n rounded coefficients of `t⁻¹·c_i` at `bits((Q − 1) >> k)` bits each.
//! Public key: `VGPK`, [`PUBLIC_KEY_VERSION`], ring fingerprint, key-set id, prime count (u8),
//! the plaintext primes (u64 each), seed, b over q_0..q_{L-1}, p. Relinearisation key: `VGRK`,
//! key version ([`KEY_FORMAT_VERSION`]), the same header, seed, then L polynomials b_j over
//! q_0..q_{L-1}, p. Galois keys: `VGGK`, key version, the same header, the component count L
//! (u8) and the key count (u32), then per key, in increasing order of element: the element
//! (u32), the highest level ℓ it serves (u8), the seed of its a_j and its ℓ polynomials b_j
//! over q_0..q_{ℓ-1}, p (BFV's entry layout, `bfv/serial/galois.rs`).

use super::ciphertext::Ciphertext;
use super::compress::BgvRounder;
use super::galois::GaloisKeys;
use super::keys::{check_plain_primes, MAX_PLAIN_PRIMES};
use super::public::PublicKey;
use super::relin::RelinKey;
use crate::bfv::coefficient_bits;
use crate::bfv::{
    expand_seed, galois_entries_len, galois_entry_len, io_err, key_header, key_header_with_version,
    modulus_bits, packed_len, poly_len, read_exact_vec, read_galois_entries, write_galois_entries,
    write_poly, BfvParameters, Reader, SerialError, FORMAT_VERSION, KEY_FORMAT_VERSION, KEY_HEADER,
};
use crate::math::Modulus;
use std::io::{Read, Write};
use std::sync::Arc;

/// Bytes before the polynomials: magic, version, fingerprint, level, size, flags, scale.
const CT_HEADER: usize = 4 + 1 + 8 + 3 + 8;
/// Flag bit: c_1 is given as a 32-byte seed.
const FLAG_SEEDED: u8 = 1;
/// Flag bit: low bits were rounded away; one u16 per component says how many.
const FLAG_ROUNDED: u8 = 2;

/// Bytes of one component at `level` with `low_bits` bits rounded away (limb by limb when
/// none are), or of a seed.
fn component_len(params: &BfvParameters, level: usize, low_bits: u32, seeded: bool) -> usize {
    let moduli = &params.ring().q()[..level];
    if seeded {
        32
    } else if low_bits == 0 {
        poly_len(moduli, params.degree())
    } else {
        let q: Vec<u64> = moduli.iter().map(Modulus::value).collect();
        packed_len(params.degree(), coefficient_bits(&q, low_bits))
    }
}

/// Magic bytes of a BGV ciphertext.
pub const MAGIC_CIPHERTEXT: &[u8; 4] = b"VGCT";
/// Magic bytes of a BGV public key.
pub const MAGIC_PUBLIC_KEY: &[u8; 4] = b"VGPK";
/// Magic bytes of a BGV relinearisation key.
pub const MAGIC_RELIN_KEY: &[u8; 4] = b"VGRK";
/// Magic bytes of a set of BGV Galois keys.
pub const MAGIC_GALOIS_KEYS: &[u8; 4] = b"VGGK";
/// Format version of BGV public keys. Version 3 holds b over q_0..q_{L-1}, p (public-key
/// encryption works over Q·P); version-2 keys, over the q primes only, are refused with a
/// request to generate the key set again.
pub const PUBLIC_KEY_VERSION: u8 = 3;

impl Ciphertext {
    /// Serialises the ciphertext (layout in the module documentation of `bgv::serial`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let moduli = &self.params.ring().q()[..self.level];
        let mut out = Vec::with_capacity(self.serialized_len());
        out.extend_from_slice(MAGIC_CIPHERTEXT);
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&self.fingerprint().to_le_bytes());
        out.push(self.level as u8);
        out.push(self.size() as u8);
        let rounded = self.low_bits().iter().any(|&k| k > 0);
        out.push(
            if self.seed.is_some() { FLAG_SEEDED } else { 0 }
                | if rounded { FLAG_ROUNDED } else { 0 },
        );
        out.extend_from_slice(&self.scale.to_le_bytes());
        if rounded {
            for &k in self.low_bits() {
                // round_low_bits keeps k below bits(Q) < 2^16.
                out.extend_from_slice(&(k as u16).to_le_bytes());
            }
        }
        for (i, (p, &k)) in self.polys.iter().zip(self.low_bits()).enumerate() {
            match (i, &self.seed) {
                (1, Some(seed)) => out.extend_from_slice(seed),
                _ => match BgvRounder::new(&self.params, self.level, k) {
                    Some(rounder) => rounder.write(p, &mut out),
                    None => write_poly(p, moduli, &mut out),
                },
            }
        }
        out
    }

    /// Size in bytes of [`Self::to_bytes`].
    pub fn serialized_len(&self) -> usize {
        let rounded = self.low_bits().iter().any(|&k| k > 0);
        CT_HEADER
            + if rounded { 2 * self.size() } else { 0 }
            + self
                .low_bits()
                .iter()
                .enumerate()
                .map(|(i, &k)| {
                    component_len(&self.params, self.level, k, i == 1 && self.seed.is_some())
                })
                .sum::<usize>()
    }

    /// The most bytes [`Self::to_bytes`] can give for `params` (size 3 at the top level):
    /// readers bound what they accept with it before parsing.
    pub fn max_serialized_len(params: &BfvParameters) -> usize {
        let q = params.ring().q();
        CT_HEADER + 2 * 3 + 3 * poly_len(&q[..params.max_level().min(q.len())], params.degree())
    }

    /// Streams the ciphertext into `w` (ciphertexts can be concatenated in one stream).
    pub fn write_to(&self, w: &mut impl Write) -> Result<(), SerialError> {
        w.write_all(&self.to_bytes()).map_err(io_err)
    }

    /// Reads the next BGV ciphertext from `r`: the header, then as many bytes as it announces
    /// (bounded by [`Self::max_serialized_len`]: level and size are clamped before the length
    /// is computed, and [`Self::from_bytes`] then refuses whatever is invalid).
    pub fn read_from(params: &Arc<BfvParameters>, r: &mut impl Read) -> Result<Self, SerialError> {
        let mut buf = Vec::new();
        read_exact_vec(r, CT_HEADER, &mut buf)?;
        let level = usize::from(buf[13]).min(params.max_level());
        let size = usize::from(buf[14]).min(3);
        let seeded = buf[15] & FLAG_SEEDED != 0;
        let mut low_bits = [0u32; 3];
        if buf[15] & FLAG_ROUNDED != 0 {
            read_exact_vec(r, 2 * size, &mut buf)?;
            for (i, k) in low_bits.iter_mut().take(size).enumerate() {
                let at = CT_HEADER + 2 * i;
                *k = u32::from(u16::from_le_bytes([buf[at], buf[at + 1]]));
            }
        }
        // Garbled headers must not make this arithmetic panic; from_bytes reports them.
        let q_bits = modulus_bits(&params.ring().q_values()[..level]);
        let body: usize = low_bits
            .iter()
            .enumerate()
            .take(size)
            .map(|(i, &k)| {
                let k = if k >= q_bits { 0 } else { k };
                component_len(params, level, k, i == 1 && seeded && size >= 2)
            })
            .sum();
        read_exact_vec(r, body, &mut buf)?;
        Self::from_bytes(params, &buf)
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
        let seeded = flags & FLAG_SEEDED != 0;
        if flags & !(FLAG_SEEDED | FLAG_ROUNDED) != 0
            || (seeded && (level != params.max_level() || size != 2))
        {
            return Err(invalid(format!(
                "flags {flags:#04x} are invalid for size {size} at level {level}"
            )));
        }
        let n = params.degree();
        let moduli = &params.ring().q()[..level];
        let mut low_bits = [0u32; 3];
        if flags & FLAG_ROUNDED != 0 {
            let q_bits = modulus_bits(&params.ring().q_values()[..level]);
            for (i, k) in low_bits.iter_mut().take(size).enumerate() {
                *k = u32::from(r.u16()?);
                if *k >= q_bits || (i == 1 && seeded && *k > 0) {
                    return Err(invalid(format!(
                        "component {i} cannot have {k} low bits rounded away (modulus of \
                         {q_bits} bits{})",
                        if seeded { ", c_1 seeded" } else { "" }
                    )));
                }
            }
            if low_bits.iter().all(|&k| k == 0) {
                return Err(invalid(
                    "flags say low bits were rounded away but every count is 0".into(),
                ));
            }
        }
        let mut polys = Vec::with_capacity(size);
        let mut seed = None;
        for (i, &k) in low_bits.iter().enumerate().take(size) {
            if i == 1 && seeded {
                let s = r.seed()?;
                polys.push(expand_seed(&s, moduli, n, 0));
                seed = Some(s);
            } else if let Some(rounder) = BgvRounder::new(params, level, k) {
                let bytes = r.take(packed_len(n, rounder.width()))?;
                let p = rounder
                    .read(bytes, n)
                    .map_err(|detail| invalid(format!("component {i}: {detail}")))?;
                polys.push(p);
            } else if k == 0 {
                polys.push(r.poly(moduli, n)?);
            } else {
                return Err(invalid(format!(
                    "component {i}: {k} low bits cannot be rounded at level {level}"
                )));
            }
        }
        r.finish()?;
        let mut ct = Ciphertext::new(params.clone(), polys, level, scale);
        ct.seed = seed;
        ct.low_bits = low_bits;
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
    /// Serialises the key: header, plaintext primes, seed of a, b (over Q·P).
    pub fn to_bytes(&self) -> Vec<u8> {
        let moduli = self.ring.key_moduli();
        let mut out = Vec::new();
        key_header_with_version(
            &mut out,
            MAGIC_PUBLIC_KEY,
            PUBLIC_KEY_VERSION,
            self.ring.fingerprint(),
            self.id,
        );
        write_primes(&self.plain_primes, &mut out);
        out.extend_from_slice(&self.seed);
        write_poly(&self.b, moduli, &mut out);
        out
    }

    /// Reads a BGV public key for the ring of `params`.
    pub fn from_bytes(params: &BfvParameters, bytes: &[u8]) -> Result<Self, SerialError> {
        let what = "BGV public key";
        let mut r = Reader::new(bytes, what);
        r.header(MAGIC_PUBLIC_KEY, PUBLIC_KEY_VERSION)
            .map_err(|e| match e {
                SerialError::BadVersion { found: 2, .. } => SerialError::Invalid {
                    what,
                    detail: format!(
                        "format version 2 (b over the q primes only) is no longer read; version \
                         {PUBLIC_KEY_VERSION} keys encrypt over Q·P with far less noise: generate \
                         the key set again"
                    ),
                },
                e => e,
            })?;
        r.fingerprint(params.ring_fingerprint(), "ring")?;
        let id = r.key_id()?;
        let primes = read_primes(&mut r, what, params)?;
        let seed = r.seed()?;
        let ring = params.ring().clone();
        let b = r.poly(ring.key_moduli(), ring.degree())?;
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

/// Bytes of a Galois key set's header with `primes` plaintext primes: the key header, the
/// primes (count and values), the component count (u8) and the key count (u32).
fn galois_header_len(primes: usize) -> usize {
    KEY_HEADER + 1 + 8 * primes + 1 + 4
}

impl GaloisKeys {
    /// Serialises the keys: header, plaintext primes, component and key counts, then per key
    /// its element, seed and b_j (layout in the module documentation of `bgv::serial`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let ring = &self.ring;
        let mut out = Vec::with_capacity(self.serialized_len());
        key_header(&mut out, MAGIC_GALOIS_KEYS, ring.fingerprint(), self.id);
        write_primes(&self.plain_primes, &mut out);
        out.push(ring.max_level() as u8);
        out.extend_from_slice(&(self.keys.len() as u32).to_le_bytes());
        write_galois_entries(&self.keys, ring, &mut out);
        out
    }

    /// Size in bytes of [`Self::to_bytes`].
    pub fn serialized_len(&self) -> usize {
        galois_header_len(self.plain_primes.len()) + galois_entries_len(&self.keys, &self.ring)
    }

    /// Size in bytes of one serialised key for `params` (what each element adds to
    /// [`Self::serialized_len`]).
    pub fn serialized_len_per_key(params: &BfvParameters) -> usize {
        galois_entry_len(params.ring(), params.ring().max_level())
    }

    /// Size in bytes of the serialised keys of `levels` ((element, highest level) pairs) for
    /// `primes` plaintext primes: what a reader that knows the keys it needs checks a file
    /// against before parsing it.
    pub fn serialized_len_for(
        params: &BfvParameters,
        primes: usize,
        levels: &[(u64, usize)],
    ) -> usize {
        let ring = params.ring();
        galois_header_len(primes)
            + levels
                .iter()
                .map(|&(_, level)| galois_entry_len(ring, level.clamp(1, ring.max_level())))
                .sum::<usize>()
    }

    /// Reads BGV Galois keys for the ring of `params`. The declared key count is checked
    /// against the most a ring can have (n − 1 elements) and against the bytes present before
    /// anything is allocated from it; elements must be valid and strictly increasing.
    pub fn from_bytes(params: &BfvParameters, bytes: &[u8]) -> Result<Self, SerialError> {
        let what = "BGV Galois keys";
        let invalid = |detail: String| SerialError::Invalid { what, detail };
        let mut r = Reader::new(bytes, what);
        r.header(MAGIC_GALOIS_KEYS, KEY_FORMAT_VERSION)?;
        r.fingerprint(params.ring_fingerprint(), "ring")?;
        let id = r.key_id()?;
        let primes = read_primes(&mut r, what, params)?;
        let ring = params.ring();
        let levels = ring.max_level();
        let components = usize::from(r.u8()?);
        if components != levels {
            return Err(invalid(format!(
                "{components} components per key; the ring needs {levels}"
            )));
        }
        let count = r.u32()? as usize;
        let n = ring.degree();
        if count > n - 1 {
            return Err(invalid(format!(
                "{count} keys declared; a ring of degree {n} has at most {}",
                n - 1
            )));
        }
        let needed = count
            .checked_mul(galois_entry_len(ring, 1))
            .and_then(|body| body.checked_add(galois_header_len(primes.len())))
            .ok_or_else(|| invalid("length overflow".into()))?;
        if bytes.len() < needed {
            return Err(SerialError::Truncated {
                what,
                needed,
                found: bytes.len(),
            });
        }
        let keys = read_galois_entries(&mut r, ring, count, what)?;
        r.finish()?;
        Ok(GaloisKeys {
            ring: ring.clone(),
            id,
            plain_primes: primes,
            keys,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bfv::test_params::toy;
    use crate::bfv::{Encoder, SecretKey, MAGIC_CIPHERTEXT as BFV_CIPHERTEXT};
    use crate::bgv::{decrypt, encrypt, Evaluator};
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    type Fixture = (Arc<BfvParameters>, Vec<(&'static str, Vec<u8>)>);

    /// The Galois elements of the fixture's keys (n = 1024): a row rotation each way and the
    /// column swap.
    fn galois_elements() -> [u64; 3] {
        [
            crate::bfv::row_rotation_element(1024, 1),
            crate::bfv::row_rotation_element(1024, -4),
            crate::bfv::column_swap_element(1024),
        ]
    }

    /// Bytes of every BGV object of one toy key set: keys, a seeded fresh ciphertext, and a
    /// switched size-3 ciphertext (scale ≠ 1).
    fn fixture() -> &'static Fixture {
        static FIXTURE: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
        FIXTURE.get_or_init(|| {
            let params = toy(1024);
            let mut rng = ChaCha20Rng::seed_from_u64(40);
            let sk = SecretKey::generate(&params, &mut rng);
            let t = params.plain_modulus();
            let pk = PublicKey::new(&sk, &[t, 12289], &mut rng).unwrap();
            let rk = RelinKey::new(&sk, &[t, 12289], &mut rng).unwrap();
            let gk = GaloisKeys::new(&sk, &galois_elements(), &[t, 12289], &mut rng).unwrap();
            let pt = Encoder::new(&params).encode(&[5, -6, 7]).unwrap();
            let seeded = encrypt(&sk, &pt, &mut rng).unwrap();
            let ev = Evaluator::new(&params);
            let size3 = ev.mod_switch_to_next(&ev.square(&seeded).unwrap()).unwrap();
            let objects = vec![
                ("pk", pk.to_bytes()),
                ("rk", rk.to_bytes()),
                ("gk", gk.to_bytes()),
                ("seeded", seeded.to_bytes()),
                ("size3", size3.to_bytes()),
                ("rounded", seeded.round_low_bits(&[30]).unwrap().to_bytes()),
                (
                    "rounded3",
                    size3.round_low_bits(&[20, 0, 5]).unwrap().to_bytes(),
                ),
            ];
            (params, objects)
        })
    }

    fn parse(params: &Arc<BfvParameters>, kind: &str, bytes: &[u8]) -> Result<(), SerialError> {
        match kind {
            "pk" => PublicKey::from_bytes(params, bytes).map(drop),
            "rk" => RelinKey::from_bytes(params, bytes).map(drop),
            "gk" => GaloisKeys::from_bytes(params, bytes).map(drop),
            _ => Ciphertext::from_bytes(params, bytes).map(drop),
        }
    }

    #[test]
    fn bgv_objects_round_trip() {
        let params = toy(1024);
        let mut rng = ChaCha20Rng::seed_from_u64(41);
        let sk = SecretKey::generate(&params, &mut rng);
        let t = params.plain_modulus();
        let pk = PublicKey::new(&sk, &[t], &mut rng).unwrap();
        let rk = RelinKey::new(&sk, &[t, 12289], &mut rng).unwrap();
        assert_eq!(PublicKey::from_bytes(&params, &pk.to_bytes()).unwrap(), pk);
        assert_eq!(RelinKey::from_bytes(&params, &rk.to_bytes()).unwrap(), rk);
        let enc = Encoder::new(&params);
        let pt = enc.encode(&[1, -2, 3]).unwrap();
        let seeded = encrypt(&sk, &pt, &mut rng).unwrap();
        let by_pk = pk.encrypt(&pt, &mut rng).unwrap();
        let ev = Evaluator::new(&params);
        let size3 = ev
            .mod_switch_to_next(&ev.mul(&seeded, &by_pk).unwrap())
            .unwrap();
        let full = seeded.to_bytes().len();
        assert!(
            full < by_pk.to_bytes().len() / 2 + 100,
            "seeded form is about half"
        );
        for ct in [&seeded, &by_pk, &size3] {
            assert_eq!(ct.serialized_len(), ct.to_bytes().len());
            assert!(ct.serialized_len() <= Ciphertext::max_serialized_len(&params));
            let back = Ciphertext::from_bytes(&params, &ct.to_bytes()).unwrap();
            assert_eq!(&back, ct);
            assert_eq!(back.scale(), ct.scale());
            assert_eq!(back.is_seeded(), ct.is_seeded());
            assert_eq!(decrypt(&sk, &back).unwrap(), decrypt(&sk, ct).unwrap());
        }
        assert_ne!(size3.scale(), 1);
        let mut stream = Vec::new();
        for ct in [&seeded, &size3, &by_pk] {
            ct.write_to(&mut stream).unwrap();
        }
        let mut cursor = std::io::Cursor::new(stream);
        for ct in [&seeded, &size3, &by_pk] {
            assert_eq!(&Ciphertext::read_from(&params, &mut cursor).unwrap(), ct);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Truncated or garbled input is an error (or, for a changed residue still in range, a
        /// different valid object), never a panic; garbled headers are always errors.
        #[test]
        fn bgv_damaged_bytes_are_errors_not_panics(
            which in 0usize..7,
            cut in any::<prop::sample::Index>(),
            pos in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let (params, objects) = fixture();
            let (kind, bytes) = &objects[which];
            prop_assert!(parse(params, kind, bytes).is_ok());
            let cut = cut.index(bytes.len());
            prop_assert!(parse(params, kind, &bytes[..cut]).is_err(), "{} cut at {}", kind, cut);
            let mut garbled = bytes.clone();
            let pos = pos.index(garbled.len());
            garbled[pos] ^= flip;
            // Magic, version and fingerprint: the first 13 bytes.
            let result = parse(params, kind, &garbled);
            if pos < 13 {
                prop_assert!(result.is_err(), "{} byte {} accepted", kind, pos);
            }
            if matches!(*kind, "seeded" | "size3" | "rounded" | "rounded3") {
                // The streaming reader sizes its read from the (possibly garbled) header.
                let mut stream = std::io::Cursor::new(garbled);
                let streamed = Ciphertext::read_from(params, &mut stream);
                prop_assert_eq!(streamed.is_ok(), result.is_ok());
            }
        }
    }

    #[test]
    fn bgv_hostile_bytes_get_clear_errors() {
        let (params, objects) = fixture();
        let get = |k: &str| {
            objects
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, b)| b.clone())
                .unwrap_or_default()
        };
        let msg = |kind: &str, bytes: &[u8]| parse(params, kind, bytes).unwrap_err().to_string();
        // A BFV ciphertext is not a BGV one.
        let mut bfv = get("seeded");
        bfv[..4].copy_from_slice(BFV_CIPHERTEXT);
        assert!(
            msg("seeded", &bfv).contains("wrong magic bytes"),
            "{}",
            msg("seeded", &bfv)
        );
        // Scale 0 or ≥ t; size 4; level 0; seed flag on a size-3 ciphertext.
        let ct = get("size3");
        let scale_at = 4 + 1 + 8 + 3;
        let mut bad = ct.clone();
        bad[scale_at..scale_at + 8].copy_from_slice(&0u64.to_le_bytes());
        assert!(
            msg("size3", &bad).contains("scale 0 is outside"),
            "{}",
            msg("size3", &bad)
        );
        bad[scale_at..scale_at + 8].copy_from_slice(&params.plain_modulus().to_le_bytes());
        assert!(msg("size3", &bad).contains("is outside 1.."));
        let mut bad = ct.clone();
        bad[14] = 4;
        assert!(msg("size3", &bad).contains("size 4 is not 2 or 3"));
        let mut bad = ct.clone();
        bad[13] = 0;
        assert!(msg("size3", &bad).contains("level 0 is outside"));
        let mut bad = ct.clone();
        bad[15] = 1;
        assert!(msg("size3", &bad).contains("flags 0x01 are invalid"));
        let mut long = ct.clone();
        long.push(0);
        assert!(msg("size3", &long).contains("1 unexpected trailing bytes"));
        // Rounded counts: as many bits as Q has, a rounded seed, the flag without a count,
        // an unknown flag.
        let counts_at = scale_at + 8;
        let q_bits = crate::bfv::modulus_bits(&params.ring().q_values()[..usize::from(ct[13])]);
        let mut bad = get("rounded3");
        bad[counts_at..counts_at + 2].copy_from_slice(&(q_bits as u16).to_le_bytes());
        assert!(
            msg("rounded3", &bad).contains(&format!(
                "component 0 cannot have {q_bits} low bits rounded away"
            )),
            "{}",
            msg("rounded3", &bad)
        );
        let mut bad = get("rounded");
        bad[counts_at + 2..counts_at + 4].copy_from_slice(&3u16.to_le_bytes());
        assert!(
            msg("rounded", &bad).contains("component 1 cannot have 3 low bits rounded away"),
            "{}",
            msg("rounded", &bad)
        );
        let mut bad = get("rounded");
        bad[counts_at..counts_at + 2].copy_from_slice(&0u16.to_le_bytes());
        assert!(msg("rounded", &bad).contains("every count is 0"));
        let mut bad = get("rounded");
        bad[15] |= 4;
        assert!(msg("rounded", &bad).contains("flags 0x07 are invalid"));
        // A rounded value beyond (Q − 1) >> k.
        let mut bad = get("rounded");
        let body = counts_at + 4;
        bad[body..].iter_mut().take(40).for_each(|b| *b = 0xff);
        assert!(
            msg("rounded", &bad).contains("component 0: rounded coefficient 0 is not below"),
            "{}",
            msg("rounded", &bad)
        );
        // Key prime counts: zero, above the bound (refused before any allocation), repeats.
        let rk = get("rk");
        let count_at = 4 + 1 + 8 + crate::bfv::KeyId::LEN;
        for (count, want) in [(0u8, "0 plaintext primes"), (255, "255 plaintext primes")] {
            let mut bad = rk.clone();
            bad[count_at] = count;
            assert!(msg("rk", &bad).contains(want), "{}", msg("rk", &bad));
        }
        let mut bad = rk.clone();
        let first = bad[count_at + 1..count_at + 9].to_vec();
        bad[count_at + 9..count_at + 17].copy_from_slice(&first);
        assert!(
            msg("rk", &bad).contains("listed twice"),
            "{}",
            msg("rk", &bad)
        );
        // A residue out of range.
        let mut bad = get("pk");
        let b_at = count_at + 1 + 2 * 8 + 32;
        bad[b_at..b_at + 7].fill(0xff);
        assert!(
            msg("pk", &bad).contains("is not below its prime"),
            "{}",
            msg("pk", &bad)
        );
        // A public key of format version 2 (b over the q primes only) says what to do.
        let mut old = get("pk");
        old[4] = 2;
        let text = msg("pk", &old);
        assert!(
            text.contains("format version 2 (b over the q primes only) is no longer read")
                && text.contains("generate the key set again"),
            "{text}"
        );
        old[4] = 9;
        assert!(msg("pk", &old).contains("unsupported format version 9; expected 3"));
        // Keys of another ring.
        let other = BfvParameters::builder()
            .degree(1024)
            .q_bits(&[40, 40])
            .special_bits(41)
            .plain_modulus(65537)
            .allow_insecure(true)
            .build()
            .unwrap();
        let err = RelinKey::from_bytes(&other, &rk).unwrap_err().to_string();
        assert!(err.contains("was written for ring"), "{err}");
    }

    #[test]
    fn bgv_galois_keys_round_trip() {
        let params = toy(1024);
        let mut rng = ChaCha20Rng::seed_from_u64(42);
        let sk = SecretKey::generate(&params, &mut rng);
        let t = params.plain_modulus();
        let gk = GaloisKeys::new(&sk, &galois_elements(), &[t, 12289], &mut rng).unwrap();
        let bytes = gk.to_bytes();
        assert_eq!(bytes.len(), gk.serialized_len());
        let ring = params.ring();
        // Seeded: a key costs its element, a seed and L polynomials, not 2L.
        assert_eq!(
            GaloisKeys::serialized_len_per_key(&params),
            4 + 1 + 32 + ring.max_level() * poly_len(ring.key_moduli(), ring.degree())
        );
        assert_eq!(
            bytes.len(),
            KEY_HEADER + 1 + 16 + 1 + 4 + 3 * GaloisKeys::serialized_len_per_key(&params)
        );
        let back = GaloisKeys::from_bytes(&params, &bytes).unwrap();
        assert_eq!(back, gk);
        assert_eq!(
            (back.id(), back.plain_primes(), back.elements()),
            (gk.id(), gk.plain_primes(), gk.elements())
        );
        // The keys read back rotate exactly as the originals, bit for bit.
        let enc = Encoder::new(&params);
        let ev = Evaluator::new(&params);
        let ct = encrypt(&sk, &enc.encode(&[1, 2, 3]).unwrap(), &mut rng).unwrap();
        let ct = ev.mod_switch_to_next(&ct).unwrap();
        assert_eq!(
            ev.rotate_rows(&ct, -4, &back).unwrap(),
            ev.rotate_rows(&ct, -4, &gk).unwrap()
        );
        let out = enc
            .decode(&decrypt(&sk, &ev.rotate_rows(&ct, 1, &back).unwrap()).unwrap())
            .unwrap();
        assert_eq!(&out[..2], &[2, 3]);
        let empty = GaloisKeys::new(&sk, &[], &[t], &mut rng).unwrap();
        assert_eq!(
            GaloisKeys::from_bytes(&params, &empty.to_bytes()).unwrap(),
            empty
        );
    }

    #[test]
    fn bgv_hostile_galois_key_bytes_get_clear_errors() {
        let (params, objects) = fixture();
        let bytes = objects
            .iter()
            .find(|(k, _)| *k == "gk")
            .map(|(_, b)| b.clone())
            .unwrap_or_default();
        let msg = |b: &[u8]| GaloisKeys::from_bytes(params, b).unwrap_err().to_string();
        // Every truncation.
        for cut in (0..bytes.len()).step_by(89).chain([bytes.len() - 1]) {
            assert!(
                GaloisKeys::from_bytes(params, &bytes[..cut]).is_err(),
                "cut {cut}"
            );
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(
            msg(&long).contains("1 unexpected trailing bytes"),
            "{}",
            msg(&long)
        );
        // Header fields: two primes, then the component and key counts.
        let primes_at = KEY_HEADER;
        let components_at = primes_at + 1 + 16;
        let count_at = components_at + 1;
        let first = count_at + 4;
        let entry = GaloisKeys::serialized_len_per_key(params);
        // The count check assumes the smallest entry, a key for level 1 only.
        let smallest = 4 + 1 + 32 + {
            let ring = params.ring();
            let moduli = [ring.key_moduli()[0], ring.key_moduli()[ring.max_level()]];
            poly_len(&moduli, ring.degree())
        };
        let with = |at: usize, value: &[u8]| {
            let mut b = bytes.clone();
            b[at..at + value.len()].copy_from_slice(value);
            b
        };
        assert_eq!(
            msg(&with(count_at, &u32::MAX.to_le_bytes())),
            "BGV Galois keys: 4294967295 keys declared; a ring of degree 1024 has at most 1023"
        );
        // A count the bytes do not back is refused before anything is allocated from it.
        let e = GaloisKeys::from_bytes(params, &with(count_at, &1000u32.to_le_bytes()));
        assert!(
            matches!(e, Err(SerialError::Truncated { needed, .. }) if needed == first + 1000 * smallest),
            "{e:?}"
        );
        let e = GaloisKeys::from_bytes(params, &with(count_at, &2u32.to_le_bytes()));
        assert!(matches!(e, Err(SerialError::TrailingBytes { .. })), "{e:?}");
        assert!(msg(&with(components_at, &[7])).contains("7 components per key; the ring needs 3"));
        for (count, want) in [(0u8, "0 plaintext primes"), (255, "255 plaintext primes")] {
            let text = msg(&with(primes_at, &[count]));
            assert!(text.contains(want), "{text}");
        }
        let dup = bytes[primes_at + 1..primes_at + 9].to_vec();
        assert!(msg(&with(primes_at + 9, &dup)).contains("listed twice"));
        // Elements: even, out of range, out of order.
        for (at, value, want) in [
            (
                first,
                4u32,
                "Galois element 4 is not an odd number in 3..2048",
            ),
            (first, 2049, "Galois element 2049 is not an odd number"),
            (first, 1, "Galois element 1 is not an odd number"),
            (
                first + entry,
                3,
                "element 3 follows 3; elements must increase",
            ),
        ] {
            let text = msg(&with(at, &value.to_le_bytes()));
            assert!(text.contains(want), "{text}");
        }
        // A level outside the ring's.
        for level in [0u8, 4] {
            let text = msg(&with(first + 4, &[level]));
            assert!(text.contains("the ring has levels 1..=3"), "{text}");
        }
        // A residue out of range.
        let b_at = first + 4 + 1 + 32;
        let mut bad = bytes.clone();
        bad[b_at..b_at + 7].fill(0xff);
        assert!(
            msg(&bad).contains("is not below its prime"),
            "{}",
            msg(&bad)
        );
        // BFV Galois keys, other BGV objects, other versions and rings.
        let bfv = with(0, crate::bfv::MAGIC_GALOIS_KEYS);
        assert!(msg(&bfv).contains("wrong magic bytes"), "{}", msg(&bfv));
        let rk = objects
            .iter()
            .find(|(k, _)| *k == "rk")
            .map(|(_, b)| b.clone())
            .unwrap_or_default();
        assert!(msg(&rk).contains("wrong magic bytes"));
        assert!(matches!(
            GaloisKeys::from_bytes(params, &with(4, &[1])),
            Err(SerialError::BadVersion { found: 1, .. })
        ));
        let e = GaloisKeys::from_bytes(&toy(2048), &bytes).unwrap_err();
        assert!(
            matches!(e, SerialError::FingerprintMismatch { kind: "ring", .. }),
            "{e}"
        );
    }
}
