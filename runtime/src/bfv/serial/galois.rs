//! Galois keys on the wire, in the style of the relinearisation key: the key header (magic,
//! key format version, ring fingerprint, key-set id), the ring's number of levels (L) and the
//! number of keys, then per key its element, the highest level ℓ it serves (1..=L), the
//! 32-byte seed of its uniform halves and its ℓ components b_j (NTT form over q_0..q_{ℓ-1}
//! and p) bit-packed: a key for low levels costs ℓ·(ℓ + 1) limbs rather than L·(L + 1).
//! Elements are strictly increasing.

use super::{
    io_err, key_header, poly_len, read_exact_vec, write_poly, Reader, SerialError, KEY_HEADER,
    MAGIC_GALOIS_KEYS,
};
use crate::bfv::galois::check_galois_element;
use crate::bfv::keys::{GaloisKey, GaloisKeys};
use crate::bfv::params::{BfvParameters, RingContext};
use crate::bfv::serial::KEY_FORMAT_VERSION;
use crate::math::{Ntt, RnsPoly};
use std::collections::BTreeMap;
use std::io::{Read, Write};

const WHAT: &str = "Galois keys";
/// The key header, the component count (u8) and the key count (u32).
const GK_HEADER: usize = KEY_HEADER + 1 + 4;

/// Bytes before a key's polynomials: element (u32), level (u8), seed.
const ENTRY_HEAD: usize = 4 + 1 + 32;

/// Bytes of one key serving levels up to `level`: the entry head and `level` polynomials over
/// q_0..q_{level-1}, p. BGV's Galois keys (`bgv/serial.rs`) store their keys the same way.
pub(crate) fn entry_len(ring: &RingContext, level: usize) -> usize {
    ENTRY_HEAD + level * poly_len(&level_moduli(ring, level), ring.degree())
}

/// Bytes of every key of `keys`.
pub(crate) fn entries_len(keys: &BTreeMap<u64, GaloisKey>, ring: &RingContext) -> usize {
    keys.values().map(|k| entry_len(ring, k.level())).sum()
}

/// The key limbs a key serving levels up to `level` keeps: q_0..q_{level-1}, then p (the last
/// key modulus).
fn level_limbs(ring: &RingContext, level: usize) -> Vec<usize> {
    (0..level).chain([ring.max_level()]).collect()
}

fn level_moduli(ring: &RingContext, level: usize) -> Vec<crate::math::Modulus> {
    level_limbs(ring, level)
        .into_iter()
        .map(|i| ring.key_moduli()[i])
        .collect()
}

/// Writes every key in increasing order of element: element, level, seed, b_j on the limbs
/// the level keeps.
pub(crate) fn write_entries(
    keys: &BTreeMap<u64, GaloisKey>,
    ring: &RingContext,
    out: &mut Vec<u8>,
) {
    for (&k, key) in keys {
        let level = key.level();
        out.extend_from_slice(&(k as u32).to_le_bytes());
        out.push(level as u8);
        out.extend_from_slice(&key.seed);
        let limbs = level_limbs(ring, level);
        let moduli = level_moduli(ring, level);
        for b in &key.b {
            write_poly(&b.select_limbs(&limbs), &moduli, out);
        }
    }
}

/// Reads a key's level byte: 1..=L.
fn read_level(
    r: &mut Reader<'_>,
    ring: &RingContext,
    what: &'static str,
) -> Result<usize, SerialError> {
    let level = usize::from(r.u8()?);
    if level == 0 || level > ring.max_level() {
        return Err(SerialError::Invalid {
            what,
            detail: format!(
                "a key for level {level}; the ring has levels 1..={}",
                ring.max_level()
            ),
        });
    }
    Ok(level)
}

/// Reads `count` keys written by [`write_entries`]; elements must be valid and strictly
/// increasing. The caller has checked `count` against the bytes present.
pub(crate) fn read_entries(
    r: &mut Reader<'_>,
    ring: &RingContext,
    count: usize,
    what: &'static str,
) -> Result<BTreeMap<u64, GaloisKey>, SerialError> {
    let mut keys = BTreeMap::new();
    let mut previous = 0u64;
    for _ in 0..count {
        let k = u64::from(r.u32()?);
        check_galois_element(ring.degree(), k).map_err(|e| SerialError::Invalid {
            what,
            detail: e.to_string(),
        })?;
        if k <= previous {
            return Err(SerialError::Invalid {
                what,
                detail: format!("element {k} follows {previous}; elements must increase"),
            });
        }
        previous = k;
        let level = read_level(r, ring, what)?;
        let seed = r.seed()?;
        let limbs = level_limbs(ring, level);
        let moduli = level_moduli(ring, level);
        let mut b = Vec::with_capacity(level);
        for _ in 0..level {
            // The kept limbs in place, the others (never read at these levels) zero.
            let kept: RnsPoly<Ntt> = r.poly(&moduli, ring.degree())?;
            let mut full = RnsPoly::<Ntt>::zero(ring.key_moduli().len(), ring.degree());
            for (from, &to) in limbs.iter().enumerate() {
                full.limb_mut(to).copy_from_slice(kept.limb(from));
            }
            b.push(full);
        }
        keys.insert(k, GaloisKey::from_parts(ring, seed, b));
    }
    Ok(keys)
}

/// Reads and checks the fixed header; returns the key-set id and the key count, checked
/// against the most keys a ring can have (n − 1 elements).
fn read_header(
    r: &mut Reader<'_>,
    params: &BfvParameters,
) -> Result<(crate::bfv::KeyId, usize), SerialError> {
    r.header(MAGIC_GALOIS_KEYS, KEY_FORMAT_VERSION)?;
    r.fingerprint(params.ring_fingerprint(), "ring")?;
    let id = r.key_id()?;
    let ring = params.ring();
    let components = usize::from(r.u8()?);
    if components != ring.max_level() {
        return Err(SerialError::Invalid {
            what: WHAT,
            detail: format!(
                "{components} components per key; the ring needs {}",
                ring.max_level()
            ),
        });
    }
    let count = r.u32()? as usize;
    let most = ring.degree() - 1;
    if count > most {
        return Err(SerialError::Invalid {
            what: WHAT,
            detail: format!(
                "{count} keys declared; a ring of degree {} has at most {most}",
                ring.degree()
            ),
        });
    }
    Ok((id, count))
}

impl GaloisKeys {
    /// Serialises the keys (see the module documentation for the layout).
    pub fn to_bytes(&self) -> Vec<u8> {
        let ring = &self.ring;
        let mut out = Vec::with_capacity(self.serialized_len());
        key_header(&mut out, MAGIC_GALOIS_KEYS, ring.fingerprint(), self.id);
        out.push(ring.max_level() as u8);
        out.extend_from_slice(&(self.keys.len() as u32).to_le_bytes());
        write_entries(&self.keys, ring, &mut out);
        out
    }

    /// Size in bytes of [`Self::to_bytes`].
    pub fn serialized_len(&self) -> usize {
        GK_HEADER + entries_len(&self.keys, &self.ring)
    }

    /// Size in bytes of one serialised key for `params` serving every level (what such an
    /// element adds to [`Self::serialized_len`]).
    pub fn serialized_len_per_key(params: &BfvParameters) -> usize {
        entry_len(params.ring(), params.ring().max_level())
    }

    /// Size in bytes of the serialised keys of `levels` ((element, highest level) pairs):
    /// what a reader that knows the keys it needs checks a file against before parsing it.
    pub fn serialized_len_for(params: &BfvParameters, levels: &[(u64, usize)]) -> usize {
        GK_HEADER
            + levels
                .iter()
                .map(|&(_, level)| Self::serialized_len_at_level(params, level))
                .sum::<usize>()
    }

    /// Size in bytes of one serialised key for `params` serving levels up to `level`.
    pub fn serialized_len_at_level(params: &BfvParameters, level: usize) -> usize {
        entry_len(params.ring(), level.clamp(1, params.ring().max_level()))
    }

    /// Reads Galois keys for the ring of `params`. The declared key count is checked against
    /// the bytes present before anything is allocated.
    pub fn from_bytes(params: &BfvParameters, bytes: &[u8]) -> Result<Self, SerialError> {
        let mut r = Reader::new(bytes, WHAT);
        let (id, count) = read_header(&mut r, params)?;
        let ring = params.ring();
        // Every key takes at least a level-1 entry: checked before anything is allocated.
        let entry = entry_len(ring, 1);
        let needed = count
            .checked_mul(entry)
            .and_then(|body| body.checked_add(GK_HEADER))
            .ok_or(SerialError::Invalid {
                what: WHAT,
                detail: "length overflow".into(),
            })?;
        if bytes.len() < needed {
            return Err(SerialError::Truncated {
                what: WHAT,
                needed,
                found: bytes.len(),
            });
        }
        let keys = read_entries(&mut r, ring, count, WHAT)?;
        r.finish()?;
        Ok(GaloisKeys {
            ring: ring.clone(),
            id,
            keys,
        })
    }

    /// Streams the keys into `w`.
    pub fn write_to(&self, w: &mut impl Write) -> Result<(), SerialError> {
        w.write_all(&self.to_bytes()).map_err(io_err)
    }

    /// Reads one set of Galois keys from `r`. The buffer grows one key at a time as the bytes
    /// arrive, so a header declaring many keys costs nothing until they are there.
    pub fn read_from(params: &BfvParameters, r: &mut impl Read) -> Result<Self, SerialError> {
        let mut buf = Vec::new();
        read_exact_vec(r, GK_HEADER, &mut buf)?;
        let (_, count) = read_header(&mut Reader::new(&buf, WHAT), params)?;
        let ring = params.ring();
        for _ in 0..count {
            // Element and level first: the level gives the rest of the entry's length.
            let at = buf.len();
            read_exact_vec(r, 5, &mut buf)?;
            let level = read_level(&mut Reader::new(&buf[at + 4..], WHAT), ring, WHAT)?;
            read_exact_vec(r, entry_len(ring, level) - 5, &mut buf)?;
        }
        Self::from_bytes(params, &buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bfv::keys::SecretKey;
    use crate::bfv::params::tests::toy;
    use crate::bfv::{column_swap_element, row_rotation_element};
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use std::sync::Arc;

    fn fixture() -> &'static (Arc<BfvParameters>, GaloisKeys, Vec<u8>) {
        static FIXTURE: std::sync::OnceLock<(Arc<BfvParameters>, GaloisKeys, Vec<u8>)> =
            std::sync::OnceLock::new();
        FIXTURE.get_or_init(|| {
            let params = toy(1024);
            let mut rng = ChaCha20Rng::seed_from_u64(51);
            let sk = SecretKey::generate(&params, &mut rng);
            let n = params.degree();
            let elements = [
                row_rotation_element(n, 1),
                row_rotation_element(n, -4),
                column_swap_element(n),
            ];
            let gk = GaloisKeys::new(&sk, &elements, &mut rng).unwrap();
            let bytes = gk.to_bytes();
            (params, gk, bytes)
        })
    }

    #[test]
    fn galois_keys_round_trip_and_stream() {
        let (params, gk, bytes) = fixture();
        assert_eq!(bytes.len(), gk.serialized_len());
        assert_eq!(
            bytes.len(),
            GK_HEADER + 3 * GaloisKeys::serialized_len_per_key(params)
        );
        let back = GaloisKeys::from_bytes(params, bytes).unwrap();
        assert_eq!(&back, gk);
        assert_eq!(back.id(), gk.id());
        // The seeded form: the a halves are not stored, so a key costs L polynomials, not 2L.
        let ring = params.ring();
        assert_eq!(
            GaloisKeys::serialized_len_per_key(params),
            4 + 1 + 32 + ring.max_level() * poly_len(ring.key_moduli(), ring.degree())
        );
        let mut stream = Vec::new();
        gk.write_to(&mut stream).unwrap();
        gk.write_to(&mut stream).unwrap();
        let mut c = std::io::Cursor::new(stream);
        assert_eq!(&GaloisKeys::read_from(params, &mut c).unwrap(), gk);
        assert_eq!(&GaloisKeys::read_from(params, &mut c).unwrap(), gk);
        // Empty key sets are fine too.
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let sk = SecretKey::generate(params, &mut rng);
        let empty = GaloisKeys::new(&sk, &[], &mut rng).unwrap();
        assert_eq!(empty.id(), sk.id());
        assert_eq!(
            GaloisKeys::from_bytes(params, &empty.to_bytes()).unwrap(),
            empty
        );
    }

    #[test]
    fn hostile_galois_key_bytes_are_refused() {
        let (params, _, bytes) = fixture();
        // Every truncation.
        for cut in (0..bytes.len()).step_by(97).chain([bytes.len() - 1]) {
            assert!(
                GaloisKeys::from_bytes(params, &bytes[..cut]).is_err(),
                "cut {cut}"
            );
            let mut c = std::io::Cursor::new(&bytes[..cut]);
            assert!(
                GaloisKeys::read_from(params, &mut c).is_err(),
                "stream cut {cut}"
            );
        }
        let count_at = KEY_HEADER + 1;
        let set_count = |count: u32| {
            let mut b = bytes.clone();
            b[count_at..count_at + 4].copy_from_slice(&count.to_le_bytes());
            b
        };
        // Inflated counts: beyond what the ring allows, and beyond the bytes present.
        let e = GaloisKeys::from_bytes(params, &set_count(u32::MAX)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Galois keys: 4294967295 keys declared; a ring of degree 1024 has at most 1023"
        );
        let e = GaloisKeys::from_bytes(params, &set_count(1000)).unwrap_err();
        assert!(matches!(e, SerialError::Truncated { .. }), "{e}");
        let mut c = std::io::Cursor::new(set_count(1000));
        assert!(matches!(
            GaloisKeys::read_from(params, &mut c),
            Err(SerialError::Io(_))
        ));
        let e = GaloisKeys::from_bytes(params, &set_count(2)).unwrap_err();
        assert!(matches!(e, SerialError::TrailingBytes { .. }), "{e}");
        // Wrong component count.
        let mut b = bytes.clone();
        b[KEY_HEADER] = 7;
        let e = GaloisKeys::from_bytes(params, &b).unwrap_err();
        assert!(e.to_string().contains("7 components per key"), "{e}");
        // Elements out of order, even, or out of range.
        let first = GK_HEADER;
        let second = GK_HEADER + GaloisKeys::serialized_len_per_key(params);
        for (at, value, expect) in [
            (first, 4u32, "Galois element 4 is not an odd number"),
            (first, 2049, "Galois element 2049 is not an odd number"),
            (second, 3, "element 3 follows 3; elements must increase"),
        ] {
            let mut b = bytes.clone();
            b[at..at + 4].copy_from_slice(&value.to_le_bytes());
            let e = GaloisKeys::from_bytes(params, &b).unwrap_err();
            assert!(e.to_string().contains(expect), "{e}");
        }
        // Other rings, and other objects.
        let e = GaloisKeys::from_bytes(&toy(2048), bytes).unwrap_err();
        assert!(matches!(
            e,
            SerialError::FingerprintMismatch { kind: "ring", .. }
        ));
        let mut b = bytes.clone();
        b[4] = 1;
        assert!(matches!(
            GaloisKeys::from_bytes(params, &b),
            Err(SerialError::BadVersion { found: 1, .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// A flipped byte is an error, or (in a residue, still below its prime) other valid keys;
        /// in the header it is always an error.
        #[test]
        fn flipped_galois_key_bytes_are_errors_not_panics(
            pos in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let (params, gk, bytes) = fixture();
            let mut b = bytes.clone();
            let pos = pos.index(b.len());
            b[pos] ^= flip;
            let result = GaloisKeys::from_bytes(params, &b);
            if pos < GK_HEADER + 4 {
                prop_assert!(result.is_err(), "header byte {} changed but accepted", pos);
            }
            if let Ok(back) = result {
                prop_assert_ne!(&back, gk);
            }
            let mut c = std::io::Cursor::new(b);
            let _ = GaloisKeys::read_from(params, &mut c);
        }
    }
}
