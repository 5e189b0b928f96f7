//! Compact versioned binary serialisation.
//!
//! Every object starts with 4 magic bytes naming its type and a format version byte; keys
//! then carry the ring fingerprint and the id of their key set ([`KeyId`]), plaintexts and
//! ciphertexts the full parameter fingerprint (all integers little-endian). Residues modulo a prime q are bit-packed at bits(q) bits each,
//! limb by limb. See `docs/bfv.md` for the byte layout.

use super::ciphertext::Ciphertext;
use super::encoding::Plaintext;
use super::keys::{KeyId, PublicKey, RelinKey, SecretKey};
use super::params::{BfvParameters, ParamError};
use super::sampling::expand_seed;
use crate::math::{Coeff, Form, Modulus, RnsPoly};
use crate::security::SecurityLevel;
use std::io::{Read, Write};
use std::sync::Arc;
use thiserror::Error;
use zeroize::Zeroizing;

mod galois;

pub(crate) use galois::{
    entries_len as galois_entries_len, entry_len as galois_entry_len, read_entries, write_entries,
};

/// Current format version of parameters, plaintexts and ciphertexts.
pub const FORMAT_VERSION: u8 = 1;
/// Current format version of keys. Version 2 added the key-set id; version-1 keys are
/// refused (they name no key set).
pub const KEY_FORMAT_VERSION: u8 = 2;

/// Magic bytes of a parameter set.
pub const MAGIC_PARAMS: &[u8; 4] = b"VEPA";
/// Magic bytes of a secret key.
pub const MAGIC_SECRET_KEY: &[u8; 4] = b"VESK";
/// Magic bytes of a public key.
pub const MAGIC_PUBLIC_KEY: &[u8; 4] = b"VEPK";
/// Magic bytes of a relinearisation key.
pub const MAGIC_RELIN_KEY: &[u8; 4] = b"VERK";
/// Magic bytes of a set of Galois keys.
pub const MAGIC_GALOIS_KEYS: &[u8; 4] = b"VEGK";
/// Magic bytes of a plaintext.
pub const MAGIC_PLAINTEXT: &[u8; 4] = b"VEPT";
/// Magic bytes of a ciphertext.
pub const MAGIC_CIPHERTEXT: &[u8; 4] = b"VECT";

/// Why bytes could not be read back.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum SerialError {
    /// The input ended early.
    #[error("{what}: input has {found} bytes but at least {needed} are needed (truncated?)")]
    Truncated {
        /// Object being read.
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        found: usize,
    },
    /// Not the expected type of object.
    #[error("{what}: wrong magic bytes: expected {expected:?}, found {found:?}")]
    BadMagic {
        /// Object being read.
        what: &'static str,
        /// Expected magic.
        expected: String,
        /// Magic found.
        found: String,
    },
    /// Written by an incompatible version.
    #[error("{what}: unsupported format version {found}; expected {expected}")]
    BadVersion {
        /// Object being read.
        what: &'static str,
        /// Supported version.
        expected: u8,
        /// Version found.
        found: u8,
    },
    /// Written for other parameters.
    #[error(
        "{what} was written for {kind} {found:016x} but the given parameters have {expected:016x}"
    )]
    FingerprintMismatch {
        /// Object being read.
        what: &'static str,
        /// "ring" or "parameters".
        kind: &'static str,
        /// Fingerprint of the given parameters.
        expected: u64,
        /// Fingerprint in the input.
        found: u64,
    },
    /// A field has an impossible value.
    #[error("{what}: {detail}")]
    Invalid {
        /// Object being read.
        what: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// Extra bytes after the object.
    #[error("{what}: {extra} unexpected trailing bytes")]
    TrailingBytes {
        /// Object being read.
        what: &'static str,
        /// How many.
        extra: usize,
    },
    /// The serialised parameters do not validate.
    #[error("serialised parameters are invalid: {0}")]
    Params(#[from] ParamError),
    /// Reading or writing failed.
    #[error("I/O error: {0}")]
    Io(String),
}

pub(crate) fn io_err(e: std::io::Error) -> SerialError {
    SerialError::Io(e.to_string())
}

/// Number of bytes `count` values of `bits` bits take when packed.
pub fn packed_len(count: usize, bits: u32) -> usize {
    (count * bits as usize).div_ceil(8)
}

pub(crate) fn pack(values: &[u64], bits: u32, out: &mut Vec<u8>) {
    let mut acc: u128 = 0;
    let mut nbits = 0u32;
    for &v in values {
        acc |= u128::from(v) << nbits;
        nbits += bits;
        while nbits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            nbits -= 8;
        }
    }
    if nbits > 0 {
        out.push(acc as u8);
    }
}

fn unpack(bytes: &[u8], count: usize, bits: u32, out: &mut [u64]) {
    let mask = if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let mut acc: u128 = 0;
    let mut nbits = 0u32;
    let mut it = bytes.iter();
    for o in out.iter_mut().take(count) {
        while nbits < bits {
            let b = it.next().copied().unwrap_or(0);
            acc |= u128::from(b) << nbits;
            nbits += 8;
        }
        *o = (acc as u64) & mask;
        acc >>= bits;
        nbits -= bits;
    }
}

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, pos: 0, what }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], SerialError> {
        let end = self.pos.checked_add(n).ok_or(SerialError::Invalid {
            what: self.what,
            detail: "length overflow".into(),
        })?;
        let slice = self.buf.get(self.pos..end).ok_or(SerialError::Truncated {
            what: self.what,
            needed: end,
            found: self.buf.len(),
        })?;
        self.pos = end;
        Ok(slice)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, SerialError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, SerialError> {
        let mut b = [0u8; 2];
        b.copy_from_slice(self.take(2)?);
        Ok(u16::from_le_bytes(b))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, SerialError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, SerialError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    pub(crate) fn seed(&mut self) -> Result<[u8; 32], SerialError> {
        let mut b = [0u8; 32];
        b.copy_from_slice(self.take(32)?);
        Ok(b)
    }

    pub(crate) fn key_id(&mut self) -> Result<KeyId, SerialError> {
        let mut b = [0u8; KeyId::LEN];
        b.copy_from_slice(self.take(KeyId::LEN)?);
        Ok(KeyId::from_bytes(b))
    }

    pub(crate) fn header(&mut self, magic: &[u8; 4], expected: u8) -> Result<(), SerialError> {
        let found = self.take(4)?;
        if found != magic {
            return Err(SerialError::BadMagic {
                what: self.what,
                expected: String::from_utf8_lossy(magic).into_owned(),
                found: String::from_utf8_lossy(found).into_owned(),
            });
        }
        let version = self.u8()?;
        if version != expected {
            return Err(SerialError::BadVersion {
                what: self.what,
                expected,
                found: version,
            });
        }
        Ok(())
    }

    pub(crate) fn fingerprint(
        &mut self,
        expected: u64,
        kind: &'static str,
    ) -> Result<(), SerialError> {
        let found = self.u64()?;
        if found != expected {
            return Err(SerialError::FingerprintMismatch {
                what: self.what,
                kind,
                expected,
                found,
            });
        }
        Ok(())
    }

    pub(crate) fn poly<F: Form>(
        &mut self,
        moduli: &[Modulus],
        n: usize,
    ) -> Result<RnsPoly<F>, SerialError> {
        let mut p = RnsPoly::<F>::zero(moduli.len(), n);
        for (limb, m) in p.data_mut().chunks_exact_mut(n).zip(moduli) {
            let bytes = self.take(packed_len(n, m.bits()))?;
            unpack(bytes, n, m.bits(), limb);
            if let Some(bad) = limb.iter().find(|&&v| v >= m.value()) {
                return Err(SerialError::Invalid {
                    what: self.what,
                    detail: format!("residue {bad} is not below its prime {}", m.value()),
                });
            }
        }
        Ok(p)
    }

    pub(crate) fn finish(self) -> Result<(), SerialError> {
        if self.pos != self.buf.len() {
            return Err(SerialError::TrailingBytes {
                what: self.what,
                extra: self.buf.len() - self.pos,
            });
        }
        Ok(())
    }
}

fn header(out: &mut Vec<u8>, magic: &[u8; 4]) {
    out.extend_from_slice(magic);
    out.push(FORMAT_VERSION);
}

/// Magic, key format version, ring fingerprint and key-set id.
pub(crate) fn key_header(out: &mut Vec<u8>, magic: &[u8; 4], ring: u64, id: KeyId) {
    key_header_with_version(out, magic, KEY_FORMAT_VERSION, ring, id);
}

/// [`key_header`] for a key type whose format moved on alone (BGV's public key).
pub(crate) fn key_header_with_version(
    out: &mut Vec<u8>,
    magic: &[u8; 4],
    version: u8,
    ring: u64,
    id: KeyId,
) {
    out.extend_from_slice(magic);
    out.push(version);
    out.extend_from_slice(&ring.to_le_bytes());
    out.extend_from_slice(&id.to_bytes());
}

pub(crate) fn write_poly<F: Form>(p: &RnsPoly<F>, moduli: &[Modulus], out: &mut Vec<u8>) {
    for (limb, m) in p.data().chunks_exact(p.degree()).zip(moduli) {
        pack(limb, m.bits(), out);
    }
}

pub(crate) fn poly_len(moduli: &[Modulus], n: usize) -> usize {
    moduli.iter().map(|m| packed_len(n, m.bits())).sum()
}

pub(crate) fn read_exact_vec(
    r: &mut impl Read,
    len: usize,
    out: &mut Vec<u8>,
) -> Result<(), SerialError> {
    let start = out.len();
    out.resize(start + len, 0);
    r.read_exact(&mut out[start..]).map_err(io_err)
}

impl BfvParameters {
    /// Serialises n, the primes, t, the security level and the insecure flag.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        header(&mut out, MAGIC_PARAMS);
        out.extend_from_slice(&(self.degree() as u32).to_le_bytes());
        let q = self.q_primes();
        out.push(q.len() as u8);
        for v in q {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.special_prime().to_le_bytes());
        out.extend_from_slice(&self.plain_modulus().to_le_bytes());
        out.extend_from_slice(&(self.security().bits() as u16).to_le_bytes());
        out.push(u8::from(self.is_insecure_allowed()));
        out.extend_from_slice(&self.fingerprint().to_le_bytes());
        out
    }

    /// Reads and re-validates a parameter set.
    pub fn from_bytes(bytes: &[u8]) -> Result<Arc<BfvParameters>, SerialError> {
        let what = "parameters";
        let mut r = Reader::new(bytes, what);
        r.header(MAGIC_PARAMS, FORMAT_VERSION)?;
        let n = r.u32()? as usize;
        let count = r.u8()? as usize;
        let mut q = Vec::with_capacity(count);
        for _ in 0..count {
            q.push(r.u64()?);
        }
        let special = r.u64()?;
        let t = r.u64()?;
        let bits = r.u16()?;
        let security = SecurityLevel::from_bits(u32::from(bits)).ok_or(SerialError::Invalid {
            what,
            detail: format!("security level {bits} is not 128, 192 or 256"),
        })?;
        let insecure = match r.u8()? {
            0 => false,
            1 => true,
            f => {
                return Err(SerialError::Invalid {
                    what,
                    detail: format!("flag byte {f} is not 0 or 1"),
                })
            }
        };
        let fp = r.u64()?;
        r.finish()?;
        let params = BfvParameters::builder()
            .degree(n)
            .q_primes(q)
            .special_prime(special)
            .plain_modulus(t)
            .security(security)
            .allow_insecure(insecure)
            .build()?;
        if params.fingerprint() != fp {
            return Err(SerialError::FingerprintMismatch {
                what,
                kind: "parameters",
                expected: params.fingerprint(),
                found: fp,
            });
        }
        Ok(params)
    }
}

impl SecretKey {
    /// Serialises the secret alone: ring fingerprint, key-set id, then 2 bits per coefficient
    /// (0 → 00, 1 → 01, −1 → 10). Keep the result secret: it is wiped when dropped, and it
    /// is written into one allocation of the exact size, so no partial copy is freed on the
    /// way.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let n = self.coeffs.len();
        let mut out = Zeroizing::new(Vec::with_capacity(SK_HEADER + packed_len(n, 2)));
        key_header(&mut out, MAGIC_SECRET_KEY, self.ring.fingerprint(), self.id);
        let codes: Zeroizing<Vec<u64>> = Zeroizing::new(
            self.coeffs
                .iter()
                .map(|&c| u64::from(c == 1) | (u64::from(c == -1) << 1))
                .collect(),
        );
        pack(&codes, 2, &mut out);
        debug_assert_eq!(out.len(), out.capacity());
        out
    }

    /// Reads a secret key for the ring of `params`.
    pub fn from_bytes(params: &BfvParameters, bytes: &[u8]) -> Result<Self, SerialError> {
        let what = "secret key";
        let mut r = Reader::new(bytes, what);
        r.header(MAGIC_SECRET_KEY, KEY_FORMAT_VERSION)?;
        r.fingerprint(params.ring_fingerprint(), "ring")?;
        let id = r.key_id()?;
        let n = params.degree();
        // Both the codes and the coefficients are wiped on every path, errors included.
        let mut codes = Zeroizing::new(vec![0u64; n]);
        unpack(r.take(packed_len(n, 2))?, n, 2, &mut codes);
        r.finish()?;
        let mut coeffs = Zeroizing::new(Vec::with_capacity(n));
        for &c in codes.iter() {
            coeffs.push(match c {
                0 => 0i8,
                1 => 1,
                2 => -1,
                _ => {
                    return Err(SerialError::Invalid {
                        what,
                        detail: "coefficient code 3 is not ternary".into(),
                    })
                }
            });
        }
        // The key takes over the buffer (pushes stayed within its capacity: no reallocation).
        Ok(SecretKey::from_coeffs(
            params.ring().clone(),
            std::mem::take(&mut *coeffs),
            id,
        ))
    }
}

impl PublicKey {
    /// Serialises: ring fingerprint, key-set id, the 32-byte seed of a, then b (NTT form)
    /// bit-packed.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        key_header(&mut out, MAGIC_PUBLIC_KEY, self.ring.fingerprint(), self.id);
        out.extend_from_slice(&self.seed);
        write_poly(&self.b, self.ring.q(), &mut out);
        out
    }

    /// Reads a public key for the ring of `params`.
    pub fn from_bytes(params: &BfvParameters, bytes: &[u8]) -> Result<Self, SerialError> {
        let mut r = Reader::new(bytes, "public key");
        r.header(MAGIC_PUBLIC_KEY, KEY_FORMAT_VERSION)?;
        r.fingerprint(params.ring_fingerprint(), "ring")?;
        let id = r.key_id()?;
        let seed = r.seed()?;
        let ring = params.ring();
        let b = r.poly(ring.q(), ring.degree())?;
        r.finish()?;
        Ok(PublicKey::from_parts(ring.clone(), id, seed, b))
    }

    /// Streams the key into `w`.
    pub fn write_to(&self, w: &mut impl Write) -> Result<(), SerialError> {
        w.write_all(&self.to_bytes()).map_err(io_err)
    }

    /// Reads one key from `r`.
    pub fn read_from(params: &BfvParameters, r: &mut impl Read) -> Result<Self, SerialError> {
        let mut buf = Vec::new();
        let len = KEY_HEADER + 32 + poly_len(params.ring().q(), params.degree());
        read_exact_vec(r, len, &mut buf)?;
        Self::from_bytes(params, &buf)
    }
}

impl RelinKey {
    /// Serialises: ring fingerprint, key-set id, component count, the 32-byte seed of the a_j,
    /// then the b_j (NTT form over q_0..q_{L-1}, p) bit-packed.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        key_header(&mut out, MAGIC_RELIN_KEY, self.ring.fingerprint(), self.id);
        out.push(self.b.len() as u8);
        out.extend_from_slice(&self.seed);
        for b in &self.b {
            write_poly(b, self.ring.key_moduli(), &mut out);
        }
        out
    }

    /// Reads a relinearisation key for the ring of `params`.
    pub fn from_bytes(params: &BfvParameters, bytes: &[u8]) -> Result<Self, SerialError> {
        let what = "relinearisation key";
        let mut r = Reader::new(bytes, what);
        r.header(MAGIC_RELIN_KEY, KEY_FORMAT_VERSION)?;
        r.fingerprint(params.ring_fingerprint(), "ring")?;
        let id = r.key_id()?;
        let ring = params.ring();
        let count = r.u8()? as usize;
        if count != ring.max_level() {
            return Err(SerialError::Invalid {
                what,
                detail: format!("{count} components; the ring needs {}", ring.max_level()),
            });
        }
        let seed = r.seed()?;
        let mut b = Vec::with_capacity(count);
        for _ in 0..count {
            b.push(r.poly(ring.key_moduli(), ring.degree())?);
        }
        r.finish()?;
        let a = RelinKey::expand(ring, &seed);
        Ok(RelinKey {
            ring: ring.clone(),
            id,
            seed,
            b,
            a,
        })
    }

    /// Streams the key into `w`.
    pub fn write_to(&self, w: &mut impl Write) -> Result<(), SerialError> {
        w.write_all(&self.to_bytes()).map_err(io_err)
    }

    /// Reads one key from `r`.
    pub fn read_from(params: &BfvParameters, r: &mut impl Read) -> Result<Self, SerialError> {
        let ring = params.ring();
        let len =
            KEY_HEADER + 1 + 32 + ring.max_level() * poly_len(ring.key_moduli(), ring.degree());
        let mut buf = Vec::new();
        read_exact_vec(r, len, &mut buf)?;
        Self::from_bytes(params, &buf)
    }
}

impl Plaintext {
    /// Serialises: full fingerprint, then n coefficients packed at bits(t).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        header(&mut out, MAGIC_PLAINTEXT);
        out.extend_from_slice(&self.fingerprint().to_le_bytes());
        pack(self.coeffs(), self.params().plain().bits(), &mut out);
        out
    }

    /// Reads a plaintext for `params`.
    pub fn from_bytes(params: &Arc<BfvParameters>, bytes: &[u8]) -> Result<Self, SerialError> {
        let mut r = Reader::new(bytes, "plaintext");
        r.header(MAGIC_PLAINTEXT, FORMAT_VERSION)?;
        r.fingerprint(params.fingerprint(), "parameters")?;
        let p = r.poly::<Coeff>(std::slice::from_ref(params.plain()), params.degree())?;
        r.finish()?;
        Ok(Plaintext::from_coeffs(params.clone(), p.data().to_vec()))
    }
}

const CT_HEADER: usize = 4 + 1 + 8 + 3;
/// Magic, version, ring fingerprint and key-set id of a key.
pub(crate) const KEY_HEADER: usize = 4 + 1 + 8 + KeyId::LEN;
const SK_HEADER: usize = KEY_HEADER;
/// Flag bit: c_1 is given as a 32-byte seed.
const FLAG_SEEDED: u8 = 1;
/// Flag bit: low bits were rounded away; one u16 per component says how many.
const FLAG_ROUNDED: u8 = 2;

/// Bytes of one component at `moduli` with `low_bits` bits rounded away (limb by limb when
/// none are), or of a seed.
fn component_len(moduli: &[Modulus], n: usize, low_bits: u32, seeded: bool) -> usize {
    if seeded {
        32
    } else if low_bits == 0 {
        poly_len(moduli, n)
    } else {
        let q: Vec<u64> = moduli.iter().map(Modulus::value).collect();
        packed_len(n, super::compress::coefficient_bits(&q, low_bits))
    }
}

impl Ciphertext {
    /// Serialises: full fingerprint, level, size, flags (bit 0: c_1 given as a seed; bit 1:
    /// low bits rounded away), with bit 1 one u16 per component (the bits rounded away), then
    /// c_0, the 32-byte seed or c_1, and c_2 if present: each bit-packed limb by limb, or, where
    /// k > 0 bits were rounded away, as n values of bits((Q − 1) >> k) bits (see
    /// [`Ciphertext::round_low_bits`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let moduli = &self.params.ring().q()[..self.level];
        let mut out = Vec::with_capacity(self.serialized_len());
        header(&mut out, MAGIC_CIPHERTEXT);
        out.extend_from_slice(&self.fingerprint().to_le_bytes());
        out.push(self.level as u8);
        out.push(self.size() as u8);
        let rounded = self.low_bits().iter().any(|&k| k > 0);
        let flags = if self.seed.is_some() { FLAG_SEEDED } else { 0 }
            | if rounded { FLAG_ROUNDED } else { 0 };
        out.push(flags);
        if rounded {
            for &k in self.low_bits() {
                // round_low_bits keeps k below bits(Q) < 2^16.
                out.extend_from_slice(&(k as u16).to_le_bytes());
            }
        }
        for (i, (p, &k)) in self.polys.iter().zip(self.low_bits()).enumerate() {
            match (i, &self.seed) {
                (1, Some(seed)) => out.extend_from_slice(seed),
                _ => match super::compress::Rounder::new(moduli, k).filter(|_| k > 0) {
                    Some(rounder) => rounder.write(p, &mut out),
                    None => write_poly(p, moduli, &mut out),
                },
            }
        }
        out
    }

    /// Size in bytes of [`Self::to_bytes`].
    pub fn serialized_len(&self) -> usize {
        let moduli = &self.params.ring().q()[..self.level];
        let rounded = self.low_bits().iter().any(|&k| k > 0);
        let n = self.params.degree();
        CT_HEADER
            + if rounded { 2 * self.size() } else { 0 }
            + self
                .low_bits()
                .iter()
                .enumerate()
                .map(|(i, &k)| component_len(moduli, n, k, i == 1 && self.seed.is_some()))
                .sum::<usize>()
    }

    /// The most bytes [`Self::to_bytes`] can give for `params`: a size-3 ciphertext at the top
    /// level. Readers use it to bound what they accept before parsing.
    pub fn max_serialized_len(params: &BfvParameters) -> usize {
        let q = params.ring().q();
        let top = &q[..params.max_level().min(q.len())];
        CT_HEADER + 2 * 3 + 3 * poly_len(top, params.degree())
    }

    /// Reads a ciphertext for `params`.
    pub fn from_bytes(params: &Arc<BfvParameters>, bytes: &[u8]) -> Result<Self, SerialError> {
        let what = "ciphertext";
        let mut r = Reader::new(bytes, what);
        r.header(MAGIC_CIPHERTEXT, FORMAT_VERSION)?;
        r.fingerprint(params.fingerprint(), "parameters")?;
        let level = r.u8()? as usize;
        let size = r.u8()? as usize;
        let flags = r.u8()?;
        if level == 0 || level > params.max_level() {
            return Err(SerialError::Invalid {
                what,
                detail: format!("level {level} is outside 1..={}", params.max_level()),
            });
        }
        if !(2..=3).contains(&size) {
            return Err(SerialError::Invalid {
                what,
                detail: format!("size {size} is not 2 or 3"),
            });
        }
        let seeded = flags & FLAG_SEEDED != 0;
        if flags & !(FLAG_SEEDED | FLAG_ROUNDED) != 0
            || (seeded && (level != params.max_level() || size != 2))
        {
            return Err(SerialError::Invalid {
                what,
                detail: format!("flags {flags:#04x} are invalid for size {size} at level {level}"),
            });
        }
        let n = params.degree();
        let moduli = &params.ring().q()[..level];
        let mut low_bits = [0u32; 3];
        if flags & FLAG_ROUNDED != 0 {
            let q_bits = super::compress::modulus_bits(&params.ring().q_values()[..level]);
            for (i, k) in low_bits.iter_mut().take(size).enumerate() {
                *k = u32::from(r.u16()?);
                if *k >= q_bits || (i == 1 && seeded && *k > 0) {
                    return Err(SerialError::Invalid {
                        what,
                        detail: format!(
                            "component {i} cannot have {k} low bits rounded away (modulus of                              {q_bits} bits{})",
                            if seeded { ", c_1 seeded" } else { "" }
                        ),
                    });
                }
            }
            if low_bits.iter().all(|&k| k == 0) {
                return Err(SerialError::Invalid {
                    what,
                    detail: "flags say low bits were rounded away but every count is 0".into(),
                });
            }
        }
        let mut polys = Vec::with_capacity(size);
        let mut seed = None;
        for (i, &k) in low_bits.iter().enumerate().take(size) {
            if i == 1 && seeded {
                let s = r.seed()?;
                polys.push(expand_seed(&s, moduli, n, 0));
                seed = Some(s);
            } else if let Some(rounder) = super::compress::Rounder::new(moduli, k).filter(|_| k > 0)
            {
                let bytes = r.take(packed_len(n, rounder.width()))?;
                let p = rounder
                    .read(bytes, n)
                    .map_err(|detail| SerialError::Invalid {
                        what,
                        detail: format!("component {i}: {detail}"),
                    })?;
                polys.push(p);
            } else {
                polys.push(r.poly(moduli, n)?);
            }
        }
        r.finish()?;
        let mut ct = Ciphertext::new(params.clone(), polys, level);
        ct.seed = seed;
        ct.low_bits = low_bits;
        Ok(ct)
    }

    /// Streams the ciphertext into `w` (ciphertexts can be concatenated in one stream).
    pub fn write_to(&self, w: &mut impl Write) -> Result<(), SerialError> {
        w.write_all(&self.to_bytes()).map_err(io_err)
    }

    /// Reads the next ciphertext from `r`.
    pub fn read_from(params: &Arc<BfvParameters>, r: &mut impl Read) -> Result<Self, SerialError> {
        let mut buf = Vec::new();
        read_exact_vec(r, CT_HEADER, &mut buf)?;
        let level = usize::from(buf[CT_HEADER - 3]);
        let size = usize::from(buf[CT_HEADER - 2]).min(3);
        let flags = buf[CT_HEADER - 1];
        let seeded = flags & FLAG_SEEDED != 0;
        let mut low_bits = [0u32; 3];
        if flags & FLAG_ROUNDED != 0 {
            read_exact_vec(r, 2 * size, &mut buf)?;
            for (i, k) in low_bits.iter_mut().take(size).enumerate() {
                let at = CT_HEADER + 2 * i;
                *k = u32::from(u16::from_le_bytes([buf[at], buf[at + 1]]));
            }
        }
        let moduli = params.ring().q();
        let moduli = &moduli[..level.min(moduli.len())];
        // Garbled headers must not make this arithmetic panic; from_bytes reports them.
        let body: usize = low_bits
            .iter()
            .enumerate()
            .take(size)
            .map(|(i, &k)| {
                let k = k.min(super::compress::modulus_bits(&params.ring().q_values()));
                component_len(moduli, params.degree(), k, i == 1 && seeded)
            })
            .sum();
        read_exact_vec(r, body, &mut buf)?;
        Self::from_bytes(params, &buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bfv::compress::modulus_bits;
    use crate::bfv::encoding::Encoder;
    use crate::bfv::evaluator::Evaluator;
    use crate::bfv::params::tests::toy;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    proptest! {
        #[test]
        fn packing_round_trips(values in proptest::collection::vec(any::<u64>(), 0..50), bits in 1u32..=62) {
            let values: Vec<u64> = values.iter().map(|v| v & ((1u64 << bits) - 1)).collect();
            let mut out = Vec::new();
            pack(&values, bits, &mut out);
            prop_assert_eq!(out.len(), packed_len(values.len(), bits));
            let mut back = vec![0u64; values.len()];
            unpack(&out, values.len(), bits, &mut back);
            prop_assert_eq!(back, values);
        }
    }

    /// Parameters and the serialised bytes of each kind of object.
    type Fixture = (Arc<BfvParameters>, Vec<(&'static str, Vec<u8>)>);

    /// Bytes of every serialisable object of one toy key set.
    fn fixture() -> &'static Fixture {
        static FIXTURE: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
        FIXTURE.get_or_init(|| {
            let params = toy(1024);
            let mut rng = ChaCha20Rng::seed_from_u64(24);
            let sk = SecretKey::generate(&params, &mut rng);
            let pk = PublicKey::new(&sk, &mut rng);
            let rk = RelinKey::new(&sk, &mut rng);
            let enc = Encoder::new(&params);
            let pt = enc.encode(&[5, -6, 7]).unwrap();
            let seeded = sk.encrypt(&pt, &mut rng).unwrap();
            let sq = Evaluator::new(&params).square(&seeded).unwrap();
            let objects = vec![
                ("params", params.to_bytes()),
                ("sk", sk.to_bytes().to_vec()),
                ("pk", pk.to_bytes()),
                ("rk", rk.to_bytes()),
                ("pt", pt.to_bytes()),
                ("seeded", seeded.to_bytes()),
                ("size3", sq.to_bytes()),
                ("rounded", seeded.round_low_bits(&[30]).unwrap().to_bytes()),
                (
                    "rounded3",
                    sq.round_low_bits(&[20, 0, 5]).unwrap().to_bytes(),
                ),
            ];
            (params, objects)
        })
    }

    fn parse(params: &Arc<BfvParameters>, kind: &str, bytes: &[u8]) -> Result<(), SerialError> {
        match kind {
            "params" => BfvParameters::from_bytes(bytes).map(drop),
            "sk" => SecretKey::from_bytes(params, bytes).map(drop),
            "pk" => PublicKey::from_bytes(params, bytes).map(drop),
            "rk" => RelinKey::from_bytes(params, bytes).map(drop),
            "pt" => Plaintext::from_bytes(params, bytes).map(drop),
            _ => Ciphertext::from_bytes(params, bytes).map(drop),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Truncated or garbled input is an error (or, for a changed residue that is still in
        /// range, a different valid object), never a panic; garbled headers are always errors.
        #[test]
        fn damaged_bytes_are_errors_not_panics(
            which in 0usize..9,
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
            let result = parse(params, kind, &garbled);
            // Magic, version and fingerprint: the first 13 bytes of keys, plaintexts and
            // ciphertexts.
            if pos < 13 && *kind != "params" {
                prop_assert!(result.is_err(), "{} byte {} changed but accepted", kind, pos);
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
    fn everything_round_trips() {
        let params = toy(1024);
        let mut rng = ChaCha20Rng::seed_from_u64(21);
        let sk = SecretKey::generate(&params, &mut rng);
        let pk = PublicKey::new(&sk, &mut rng);
        let rk = RelinKey::new(&sk, &mut rng);
        let enc = Encoder::new(&params);
        let ev = Evaluator::new(&params);
        let v: Vec<i64> = (0..1024).map(|i| i * 7 - 3000).collect();
        let pt = enc.encode(&v).unwrap();

        let p2 = BfvParameters::from_bytes(&params.to_bytes()).unwrap();
        assert_eq!(p2.fingerprint(), params.fingerprint());
        let sk2 = SecretKey::from_bytes(&params, &sk.to_bytes()).unwrap();
        assert_eq!(sk2.coeffs, sk.coeffs);
        assert_eq!(PublicKey::from_bytes(&params, &pk.to_bytes()).unwrap(), pk);
        assert_eq!(RelinKey::from_bytes(&params, &rk.to_bytes()).unwrap(), rk);
        assert_eq!(Plaintext::from_bytes(&params, &pt.to_bytes()).unwrap(), pt);

        let fresh = sk.encrypt(&pt, &mut rng).unwrap();
        let bytes = fresh.to_bytes();
        assert_eq!(bytes.len(), fresh.serialized_len());
        let full = ev.mul_scalar(&fresh, 1).unwrap();
        assert!(!full.is_seeded());
        assert!(bytes.len() < full.to_bytes().len() / 2 + 64);
        let sq = ev.square(&fresh).unwrap();
        let low = ev.mod_switch_to_next(&sq).unwrap();
        let rounded = [
            fresh.round_low_bits(&[40]).unwrap(),
            sq.round_low_bits(&[9, 8, 7]).unwrap(),
            low.round_low_bits(&[0, 0, 3]).unwrap(),
        ];
        for (ct, whole) in rounded.iter().zip([&fresh, &sq, &low]) {
            let bytes = ct.to_bytes();
            assert_eq!(bytes.len(), ct.serialized_len());
            assert!(bytes.len() < whole.to_bytes().len());
            let back = Ciphertext::from_bytes(&params, &bytes).unwrap();
            assert_eq!(&back, ct);
            assert_eq!(back.low_bits(), ct.low_bits());
            assert_eq!(back.is_seeded(), ct.is_seeded());
            // Rounded coefficients round to themselves: writing again changes nothing.
            assert_eq!(back.to_bytes(), bytes);
        }
        let [r0, r1, r2] = &rounded;
        let mut stream = Vec::new();
        for ct in [&fresh, &full, &sq, &low, r0, r1, r2] {
            assert_eq!(
                &Ciphertext::from_bytes(&params, &ct.to_bytes()).unwrap(),
                ct
            );
            ct.write_to(&mut stream).unwrap();
        }
        let mut cursor = std::io::Cursor::new(stream);
        for ct in [&fresh, &full, &sq, &low, r0, r1, r2] {
            let back = Ciphertext::read_from(&params, &mut cursor).unwrap();
            assert_eq!(&back, ct);
        }
        let back = Ciphertext::from_bytes(&params, &bytes).unwrap();
        assert_eq!(enc.decode(&sk2.decrypt(&back).unwrap()).unwrap(), v);
        let mut buf = Vec::new();
        rk.write_to(&mut buf).unwrap();
        pk.write_to(&mut buf).unwrap();
        let mut c = std::io::Cursor::new(buf);
        assert_eq!(RelinKey::read_from(&params, &mut c).unwrap(), rk);
        assert_eq!(PublicKey::read_from(&params, &mut c).unwrap(), pk);
    }

    #[test]
    fn keys_carry_their_key_set_id_and_old_keys_are_refused() {
        let (params, objects) = fixture();
        let mut rng = ChaCha20Rng::seed_from_u64(24);
        let sk = SecretKey::generate(params, &mut rng);
        let pk = PublicKey::new(&sk, &mut rng);
        let rk = RelinKey::new(&sk, &mut rng);
        assert_eq!((pk.id(), rk.id()), (sk.id(), sk.id()));
        let other = SecretKey::generate(params, &mut rng);
        assert_ne!(other.id(), sk.id());
        assert_eq!(
            SecretKey::from_bytes(params, &sk.to_bytes()).unwrap().id(),
            sk.id()
        );
        assert_eq!(
            PublicKey::from_bytes(params, &pk.to_bytes()).unwrap().id(),
            sk.id()
        );
        assert_eq!(
            RelinKey::from_bytes(params, &rk.to_bytes()).unwrap().id(),
            sk.id()
        );
        for (kind, bytes) in objects
            .iter()
            .filter(|(k, _)| matches!(*k, "sk" | "pk" | "rk"))
        {
            let mut old = bytes.clone();
            old[4] = 1;
            let err = parse(params, kind, &old).unwrap_err();
            assert!(
                err.to_string()
                    .ends_with("unsupported format version 1; expected 2"),
                "{kind}: {err}"
            );
        }
    }

    #[test]
    fn bad_input_is_rejected_with_a_clear_error() {
        let params = toy(1024);
        let mut rng = ChaCha20Rng::seed_from_u64(22);
        let sk = SecretKey::generate(&params, &mut rng);
        let rk = RelinKey::new(&sk, &mut rng);
        let enc = Encoder::new(&params);
        let ct = sk
            .encrypt(&enc.encode(&[1, 2, 3]).unwrap(), &mut rng)
            .unwrap();
        let bytes = ct.to_bytes();
        // Every truncation is an error, never a panic.
        for len in [0, 3, 4, 5, 12, 16, 100, bytes.len() - 1] {
            let e = Ciphertext::from_bytes(&params, &bytes[..len]).unwrap_err();
            assert!(matches!(e, SerialError::Truncated { .. }), "{len}: {e}");
        }
        let e = Ciphertext::from_bytes(&params, &[bytes.clone(), vec![0]].concat()).unwrap_err();
        assert_eq!(
            e,
            SerialError::TrailingBytes {
                what: "ciphertext",
                extra: 1
            }
        );
        let mut bad = bytes.clone();
        bad[0] = b'X';
        let e = Ciphertext::from_bytes(&params, &bad).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ciphertext: wrong magic bytes: expected \"VECT\", found \"XECT\""
        );
        let mut bad = bytes.clone();
        bad[4] = 9;
        assert!(matches!(
            Ciphertext::from_bytes(&params, &bad),
            Err(SerialError::BadVersion { found: 9, .. })
        ));
        let mut bad = bytes.clone();
        bad[13] = 7;
        assert!(matches!(
            Ciphertext::from_bytes(&params, &bad),
            Err(SerialError::Invalid { .. })
        ));
        // A residue ≥ q is caught.
        let mut bad = bytes.clone();
        for b in &mut bad[16..30] {
            *b = 0xff;
        }
        let e = Ciphertext::from_bytes(&params, &bad).unwrap_err();
        assert!(e.to_string().contains("is not below its prime"), "{e}");
        // Keys and ciphertexts from other parameters.
        let other_t = params.with_plain_modulus(12289).unwrap();
        let e = Ciphertext::from_bytes(&other_t, &bytes).unwrap_err();
        assert!(matches!(
            e,
            SerialError::FingerprintMismatch {
                kind: "parameters",
                ..
            }
        ));
        assert!(e
            .to_string()
            .starts_with("ciphertext was written for parameters"));
        // ... but keys are fine with another t of the same ring.
        assert!(RelinKey::from_bytes(&other_t, &rk.to_bytes()).is_ok());
        let other_ring = toy(2048);
        let e = RelinKey::from_bytes(&other_ring, &rk.to_bytes()).unwrap_err();
        assert!(
            matches!(e, SerialError::FingerprintMismatch { kind: "ring", .. }),
            "{e}"
        );
        let e = SecretKey::from_bytes(&other_ring, &sk.to_bytes()).unwrap_err();
        assert!(matches!(e, SerialError::FingerprintMismatch { .. }));
        // A secret key is not a ciphertext.
        let e = Ciphertext::from_bytes(&params, &sk.to_bytes()).unwrap_err();
        assert!(matches!(e, SerialError::BadMagic { .. }));
        // Garbled parameter bytes.
        let mut pb = params.to_bytes();
        pb[9] = 200;
        assert!(BfvParameters::from_bytes(&pb).is_err());
        let pb = params.to_bytes();
        for len in 0..pb.len() {
            assert!(BfvParameters::from_bytes(&pb[..len]).is_err());
        }
        // Garbled stream headers.
        for (level, size, flags) in [(0u8, 2u8, 1u8), (0, 0, 0), (200, 200, 255), (3, 3, 1)] {
            let mut b = bytes.clone();
            b[13] = level;
            b[14] = size;
            b[15] = flags;
            let mut c = std::io::Cursor::new(b);
            assert!(Ciphertext::read_from(&params, &mut c).is_err());
        }
        // Garbled counts of rounded-away bits.
        let rounded = ct.round_low_bits(&[12]).unwrap().to_bytes();
        assert_eq!(rounded[15], 3);
        let q_bits = modulus_bits(&params.ring().q_values()[..ct.level()]) as u16;
        for (c0, c1, expect) in [
            (q_bits, 0, "component 0 cannot have"),
            (12, 1u16, "component 1 cannot have 1 low bits rounded away"),
            (0, 0, "every count is 0"),
        ] {
            let mut b = rounded.clone();
            b[16..18].copy_from_slice(&c0.to_le_bytes());
            b[18..20].copy_from_slice(&c1.to_le_bytes());
            let e = Ciphertext::from_bytes(&params, &b).unwrap_err();
            assert!(e.to_string().contains(expect), "{e}");
            let mut c = std::io::Cursor::new(b);
            assert!(Ciphertext::read_from(&params, &mut c).is_err());
        }
        let mut b = rounded.clone();
        b[15] = 7;
        assert!(Ciphertext::from_bytes(&params, &b).is_err());
        // Truncated stream.
        let mut c = std::io::Cursor::new(bytes[..bytes.len() - 5].to_vec());
        assert!(matches!(
            Ciphertext::read_from(&params, &mut c),
            Err(SerialError::Io(_))
        ));
    }

    #[test]
    fn seeded_fresh_ciphertext_size_at_n8192() {
        let params = crate::bfv::params::tests::secure_8192();
        let mut rng = ChaCha20Rng::seed_from_u64(23);
        let sk = SecretKey::generate(&params, &mut rng);
        let pt = Encoder::new(&params).encode(&[1]).unwrap();
        let ct = sk.encrypt(&pt, &mut rng).unwrap();
        let len = ct.to_bytes().len();
        println!("seeded fresh ciphertext at n=8192, 163-bit Q: {len} bytes");
        assert_eq!(len, 8192 * 163 / 8 + 32 + CT_HEADER);
        assert!(len <= 216_000);
    }
}
