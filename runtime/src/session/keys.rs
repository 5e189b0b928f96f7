//! The key split: the client's key decrypts, the server's key only evaluates.
//!
//! Both schemes share the secret key. BGV's public and relinearisation keys carry an error that
//! is a multiple of the plaintext prime, so a BGV key set holds one of each per plaintext prime
//! of the plan (one key for all primes would need an error that is a multiple of their product,
//! which adds that product's bits, 110 for CryptoNets, to every relinearisation). A list of BGV
//! keys is serialised as [`MAGIC_BGV_PUBLIC_KEYS`] or [`MAGIC_BGV_EVAL_KEYS`], the key-format
//! version byte ([`KEY_FORMAT_VERSION`], the one every key file carries), a count byte, and each
//! key's own byte form behind a u32 length.

use super::{Context, SessionError};
use crate::bfv::{self, KeyId, RelinKey, SecretKey, SerialError, KEY_FORMAT_VERSION};
use crate::bgv;
use crate::plan::{Scheme, ValidationError};
use rand::{CryptoRng, RngCore};
use zeroize::Zeroizing;

/// The most bytes a serialised key may take: 256 MiB. The largest relinearisation key that
/// parameters can have (n = 32768, 20 primes, a 1000-bit modulus plus the special prime) is
/// about 90 MB; readers stop here instead of reading an endless input whole, and the key's
/// exact length for the plan's ring is then checked when it is parsed.
pub const MAX_KEY_BYTES: u64 = 256 << 20;

/// Magic bytes of a BGV public-key file: one public key per plaintext prime.
pub const MAGIC_BGV_PUBLIC_KEYS: &[u8; 4] = b"VGPL";
/// Magic bytes of a BGV evaluation-key file: one relinearisation key per plaintext prime.
pub const MAGIC_BGV_EVAL_KEYS: &[u8; 4] = b"VGEL";
/// Magic bytes of a packed plan's evaluation-key file: a list of two keys, the BFV
/// relinearisation key and the Galois keys of exactly the plan's rotations.
pub const MAGIC_PACKED_EVAL_KEYS: &[u8; 4] = b"VPEK";

/// The client's key: the secret key. It encrypts (seeded, half-size ciphertexts) and decrypts;
/// it never leaves the client. Wiped on drop, redacted in `Debug` (as [`SecretKey`] is).
#[derive(Debug)]
pub struct ClientKey {
    secret: SecretKey,
}

/// The server's key: relinearisation keys, and for a packed plan the Galois keys of its
/// rotations. It evaluates a plan on ciphertexts and can neither encrypt nor decrypt.
#[derive(Debug)]
pub struct ServerKey {
    keys: EvalKeys,
    galois: Option<GaloisSet>,
}

/// A packed plan's Galois keys, in the plan's scheme.
#[derive(Debug)]
enum GaloisSet {
    Bfv(bfv::GaloisKeys),
    /// One per plaintext prime, in the plan's order (as the relinearisation keys).
    Bgv(Vec<bgv::GaloisKeys>),
}

/// The relinearisation key(s) of a scheme.
#[derive(Debug)]
enum EvalKeys {
    Bfv(RelinKey),
    /// One per plaintext prime, in the plan's order.
    Bgv(Vec<bgv::RelinKey>),
}

/// The public encryption key of a key set: for a party that must encrypt but not decrypt.
#[derive(Debug)]
pub struct PublicKey {
    keys: PublicKeys,
}

#[derive(Debug)]
enum PublicKeys {
    Bfv(bfv::PublicKey),
    /// One per plaintext prime, in the plan's order.
    Bgv(Vec<bgv::PublicKey>),
}

/// A fresh set of keys for one plan's ring.
#[derive(Debug)]
pub struct KeySet {
    /// Stays with the client.
    pub client: ClientKey,
    /// For anyone who should encrypt but not decrypt.
    pub public: PublicKey,
    /// Given to the server.
    pub server: ServerKey,
}

/// A key that can encrypt a batch.
#[derive(Debug, Clone, Copy)]
pub enum EncryptionKey<'a> {
    /// Symmetric encryption with the client's key: seeded ciphertexts, half the upload.
    Client(&'a ClientKey),
    /// Public-key encryption.
    Public(&'a PublicKey),
}

impl EncryptionKey<'_> {
    /// The key set this key belongs to.
    pub fn id(&self) -> KeyId {
        match self {
            EncryptionKey::Client(client) => client.id(),
            EncryptionKey::Public(public) => public.id(),
        }
    }
}

impl KeySet {
    /// The id every key of the set carries.
    pub fn id(&self) -> KeyId {
        self.client.id()
    }

    /// Generates a secret key (with a fresh key-set id) and the public and relinearisation
    /// keys of `context`'s scheme derived from it.
    pub fn generate(
        context: &Context,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Self, SessionError> {
        let params = &context.params()[0];
        let secret = SecretKey::generate(params, rng);
        let (public, server) = match context.plan().params.scheme {
            Scheme::Bfv => (
                PublicKeys::Bfv(bfv::PublicKey::new(&secret, rng)),
                EvalKeys::Bfv(RelinKey::new(&secret, rng)),
            ),
            Scheme::Bgv => {
                let primes = &context.plan().params.plain_primes;
                let public = primes
                    .iter()
                    .map(|&t| bgv::PublicKey::new(&secret, &[t], rng))
                    .collect::<Result<_, _>>()?;
                let relin = primes
                    .iter()
                    .map(|&t| bgv::RelinKey::new(&secret, &[t], rng))
                    .collect::<Result<_, _>>()?;
                (PublicKeys::Bgv(public), EvalKeys::Bgv(relin))
            }
        };
        let galois = match &context.plan().packing {
            Some(packing) => {
                let levels = packing
                    .galois_levels(context.plan())
                    .map_err(|e| SessionError::Plan(ValidationError::Packing(e)))?;
                Some(match context.plan().params.scheme {
                    Scheme::Bfv => {
                        GaloisSet::Bfv(bfv::GaloisKeys::new_at_levels(&secret, &levels, rng)?)
                    }
                    Scheme::Bgv => GaloisSet::Bgv(
                        context
                            .plan()
                            .params
                            .plain_primes
                            .iter()
                            .map(|&t| bgv::GaloisKeys::new_at_levels(&secret, &levels, &[t], rng))
                            .collect::<Result<_, _>>()?,
                    ),
                })
            }
            None => None,
        };
        Ok(KeySet {
            client: ClientKey { secret },
            public: PublicKey { keys: public },
            server: ServerKey {
                keys: server,
                galois,
            },
        })
    }
}

impl ClientKey {
    /// The secret key.
    pub fn secret(&self) -> &SecretKey {
        &self.secret
    }

    /// The key set this key starts.
    pub fn id(&self) -> KeyId {
        self.secret.id()
    }

    /// The serialised secret key, in a buffer wiped on drop.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        self.secret.to_bytes()
    }

    /// Reads a serialised secret key made for `context`'s ring.
    pub fn from_bytes(context: &Context, bytes: &[u8]) -> Result<Self, SerialError> {
        let secret = SecretKey::from_bytes(&context.params()[0], bytes)?;
        Ok(ClientKey { secret })
    }
}

impl From<SecretKey> for ClientKey {
    fn from(secret: SecretKey) -> Self {
        ClientKey { secret }
    }
}

impl ServerKey {
    /// The BFV relinearisation key, or `None` for a BGV key set.
    pub fn bfv(&self) -> Option<&RelinKey> {
        match &self.keys {
            EvalKeys::Bfv(key) => Some(key),
            EvalKeys::Bgv(_) => None,
        }
    }

    /// The BGV relinearisation key of plaintext prime `prime` (index into the plan's primes),
    /// or `None` for a BFV key set or a prime it has no key for.
    pub fn bgv(&self, prime: usize) -> Option<&bgv::RelinKey> {
        match &self.keys {
            EvalKeys::Bgv(keys) => keys.get(prime),
            EvalKeys::Bfv(_) => None,
        }
    }

    /// The BFV Galois keys of a packed plan's rotations, or `None` for a slot-layout or BGV
    /// plan.
    pub fn galois(&self) -> Option<&bfv::GaloisKeys> {
        match &self.galois {
            Some(GaloisSet::Bfv(keys)) => Some(keys),
            _ => None,
        }
    }

    /// The BGV Galois keys of plaintext prime `prime` for a packed BGV plan.
    pub fn bgv_galois(&self, prime: usize) -> Option<&bgv::GaloisKeys> {
        match &self.galois {
            Some(GaloisSet::Bgv(keys)) => keys.get(prime),
            _ => None,
        }
    }

    /// Number of Galois keys (per plaintext prime in BGV), 0 for a slot-layout plan.
    pub fn galois_count(&self) -> usize {
        match &self.galois {
            Some(GaloisSet::Bfv(keys)) => keys.len(),
            Some(GaloisSet::Bgv(keys)) => keys.first().map_or(0, bgv::GaloisKeys::len),
            None => 0,
        }
    }

    /// The key set this key belongs to.
    pub fn id(&self) -> KeyId {
        match &self.keys {
            EvalKeys::Bfv(key) => key.id(),
            EvalKeys::Bgv(keys) => list_id(keys.iter().map(bgv::RelinKey::id)),
        }
    }

    /// The serialised key(s).
    pub fn to_bytes(&self) -> Vec<u8> {
        match (&self.keys, &self.galois) {
            (EvalKeys::Bfv(key), Some(GaloisSet::Bfv(galois))) => key_list_to_bytes(
                MAGIC_PACKED_EVAL_KEYS,
                [key.to_bytes(), galois.to_bytes()].into_iter(),
            ),
            (EvalKeys::Bgv(relin), Some(GaloisSet::Bgv(galois))) => key_list_to_bytes(
                MAGIC_PACKED_EVAL_KEYS,
                relin
                    .iter()
                    .map(bgv::RelinKey::to_bytes)
                    .chain(galois.iter().map(bgv::GaloisKeys::to_bytes))
                    .collect::<Vec<_>>()
                    .into_iter(),
            ),
            (keys, _) => Self::relin_bytes(keys),
        }
    }

    fn relin_bytes(keys: &EvalKeys) -> Vec<u8> {
        match keys {
            EvalKeys::Bfv(key) => key.to_bytes(),
            EvalKeys::Bgv(keys) => {
                key_list_to_bytes(MAGIC_BGV_EVAL_KEYS, keys.iter().map(|k| k.to_bytes()))
            }
        }
    }

    /// Reads serialised key(s) made for `context`'s ring and scheme.
    pub fn from_bytes(context: &Context, bytes: &[u8]) -> Result<Self, SerialError> {
        let params = &context.params()[0];
        if context.plan().packing.is_some() {
            return Self::packed_from_bytes(context, bytes);
        }
        let keys = match context.plan().params.scheme {
            Scheme::Bfv => EvalKeys::Bfv(RelinKey::from_bytes(params, bytes)?),
            Scheme::Bgv => {
                let parts = key_list_from_bytes(
                    MAGIC_BGV_EVAL_KEYS,
                    "BGV relinearisation keys",
                    context.plan().params.plain_primes.len(),
                    bytes,
                )?;
                let keys = parts
                    .into_iter()
                    .map(|part| bgv::RelinKey::from_bytes(params, part))
                    .collect::<Result<Vec<_>, _>>()?;
                check_one_set(keys.iter().map(|k| (k.id(), k.plain_primes())), context)?;
                EvalKeys::Bgv(keys)
            }
        };
        Ok(ServerKey { keys, galois: None })
    }

    /// A packed plan's key list: the relinearisation key(s), then the Galois keys (BFV: one of
    /// each; BGV: one of each per plaintext prime, relinearisation keys first), all of one key
    /// set, the Galois keys holding exactly the elements the plan's rotations need.
    fn packed_from_bytes(context: &Context, bytes: &[u8]) -> Result<Self, SerialError> {
        let what = "packed evaluation keys";
        let params = &context.params()[0];
        let plan = context.plan();
        let needed = plan
            .packing
            .as_ref()
            .map(|p| p.galois_levels(plan))
            .transpose()
            .map_err(|detail| SerialError::Invalid { what, detail })?
            .unwrap_or_default();
        let bad = |detail: String| SerialError::Invalid { what, detail };
        // The Galois keys' bytes must be exactly those of the plan's keys, checked before they
        // are parsed (a key in memory takes more than on the wire).
        let expect_len = |part: &[u8], want: usize| {
            if part.len() == want {
                return Ok(());
            }
            Err(bad(format!(
                "the Galois keys take {} bytes, but the plan's rotations need keys of {want}",
                part.len()
            )))
        };
        // The keys of exactly the plan's elements, each serving the levels it rotates at.
        let check = |id: KeyId, relin: KeyId, held: Vec<(u64, usize)>| {
            if id != relin {
                return Err(bad(
                    "the Galois keys belong to another key set than the relinearisation key".into(),
                ));
            }
            let elements = |v: &[(u64, usize)]| v.iter().map(|&(k, _)| k).collect::<Vec<_>>();
            if elements(&held) != elements(&needed) {
                return Err(bad(format!(
                    "the Galois keys hold elements {:?}, but the plan rotates with {:?}",
                    elements(&held),
                    elements(&needed)
                )));
            }
            let short = held
                .iter()
                .zip(&needed)
                .find(|((_, has), (_, wants))| has < wants);
            if let Some(((k, has), (_, wants))) = short {
                return Err(bad(format!(
                    "the Galois key of element {k} serves levels up to {has}, but the plan \
                     rotates by it at level {wants}"
                )));
            }
            Ok(())
        };
        match plan.params.scheme {
            Scheme::Bfv => {
                let parts = key_list_from_bytes(MAGIC_PACKED_EVAL_KEYS, what, 2, bytes)?;
                let relin = RelinKey::from_bytes(params, parts[0])?;
                expect_len(
                    parts[1],
                    bfv::GaloisKeys::serialized_len_for(params, &needed),
                )?;
                let galois = bfv::GaloisKeys::from_bytes(params, parts[1])?;
                check(galois.id(), relin.id(), galois.levels())?;
                Ok(ServerKey {
                    keys: EvalKeys::Bfv(relin),
                    galois: Some(GaloisSet::Bfv(galois)),
                })
            }
            Scheme::Bgv => {
                let primes = plan.params.plain_primes.len();
                let parts = key_list_from_bytes(MAGIC_PACKED_EVAL_KEYS, what, 2 * primes, bytes)?;
                let (relin_parts, galois_parts) = parts.split_at(primes);
                let relin = relin_parts
                    .iter()
                    .map(|part| bgv::RelinKey::from_bytes(params, part))
                    .collect::<Result<Vec<_>, _>>()?;
                check_one_set(relin.iter().map(|k| (k.id(), k.plain_primes())), context)?;
                let galois = galois_parts
                    .iter()
                    .map(|part| {
                        expect_len(
                            part,
                            bgv::GaloisKeys::serialized_len_for(params, 1, &needed),
                        )?;
                        bgv::GaloisKeys::from_bytes(params, part)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                check_one_set(galois.iter().map(|k| (k.id(), k.plain_primes())), context)?;
                for (g, r) in galois.iter().zip(&relin) {
                    check(g.id(), r.id(), g.levels())?;
                }
                Ok(ServerKey {
                    keys: EvalKeys::Bgv(relin),
                    galois: Some(GaloisSet::Bgv(galois)),
                })
            }
        }
    }
}

impl From<RelinKey> for ServerKey {
    fn from(relin: RelinKey) -> Self {
        ServerKey {
            keys: EvalKeys::Bfv(relin),
            galois: None,
        }
    }
}

impl PublicKey {
    /// The key set this key belongs to.
    pub fn id(&self) -> KeyId {
        match &self.keys {
            PublicKeys::Bfv(key) => key.id(),
            PublicKeys::Bgv(keys) => list_id(keys.iter().map(bgv::PublicKey::id)),
        }
    }

    /// The BFV public key, or `None` for a BGV key set.
    pub fn bfv(&self) -> Option<&bfv::PublicKey> {
        match &self.keys {
            PublicKeys::Bfv(key) => Some(key),
            PublicKeys::Bgv(_) => None,
        }
    }

    /// The BGV public key of plaintext prime `prime`, or `None`.
    pub fn bgv(&self, prime: usize) -> Option<&bgv::PublicKey> {
        match &self.keys {
            PublicKeys::Bgv(keys) => keys.get(prime),
            PublicKeys::Bfv(_) => None,
        }
    }

    /// The serialised key(s).
    pub fn to_bytes(&self) -> Vec<u8> {
        match &self.keys {
            PublicKeys::Bfv(key) => key.to_bytes(),
            PublicKeys::Bgv(keys) => {
                key_list_to_bytes(MAGIC_BGV_PUBLIC_KEYS, keys.iter().map(|k| k.to_bytes()))
            }
        }
    }

    /// Reads serialised key(s) made for `context`'s ring and scheme.
    pub fn from_bytes(context: &Context, bytes: &[u8]) -> Result<Self, SerialError> {
        let params = &context.params()[0];
        let keys = match context.plan().params.scheme {
            Scheme::Bfv => PublicKeys::Bfv(bfv::PublicKey::from_bytes(params, bytes)?),
            Scheme::Bgv => {
                let parts = key_list_from_bytes(
                    MAGIC_BGV_PUBLIC_KEYS,
                    "BGV public keys",
                    context.plan().params.plain_primes.len(),
                    bytes,
                )?;
                let keys = parts
                    .into_iter()
                    .map(|part| bgv::PublicKey::from_bytes(params, part))
                    .collect::<Result<Vec<_>, _>>()?;
                check_one_set(keys.iter().map(|k| (k.id(), k.plain_primes())), context)?;
                PublicKeys::Bgv(keys)
            }
        };
        Ok(PublicKey { keys })
    }
}

impl From<bfv::PublicKey> for PublicKey {
    fn from(key: bfv::PublicKey) -> Self {
        PublicKey {
            keys: PublicKeys::Bfv(key),
        }
    }
}

/// The key-set id of a key list: its first key's ([`check_one_set`] made them equal; a list
/// always holds one key per plaintext prime, so it is never empty once made).
fn list_id(mut ids: impl Iterator<Item = KeyId>) -> KeyId {
    ids.next().unwrap_or(KeyId::from_bytes([0; 16]))
}

/// `magic`, the version, the count, then each key behind its u32 length.
fn key_list_to_bytes(magic: &[u8; 4], keys: impl ExactSizeIterator<Item = Vec<u8>>) -> Vec<u8> {
    let mut out = magic.to_vec();
    out.push(KEY_FORMAT_VERSION);
    out.push(u8::try_from(keys.len()).unwrap_or(u8::MAX));
    for key in keys {
        out.extend_from_slice(&u32::try_from(key.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(&key);
    }
    out
}

/// Splits a key list into its keys: exactly `expected` of them (one per plaintext prime of a
/// BGV plan), every length within the bytes present, nothing after the last.
fn key_list_from_bytes<'b>(
    magic: &[u8; 4],
    what: &'static str,
    expected: usize,
    bytes: &'b [u8],
) -> Result<Vec<&'b [u8]>, SerialError> {
    let bad = |detail: String| SerialError::Invalid { what, detail };
    let Some(rest) = bytes.strip_prefix(magic.as_slice()) else {
        return Err(bad("not a key list of this kind (wrong magic bytes)".into()));
    };
    let Some((&version, rest)) = rest.split_first() else {
        return Err(bad(
            "truncated before the format version (truncated?)".into()
        ));
    };
    if version != KEY_FORMAT_VERSION {
        return Err(SerialError::BadVersion {
            what,
            expected: KEY_FORMAT_VERSION,
            found: version,
        });
    }
    let Some((&count, mut rest)) = rest.split_first() else {
        return Err(bad("truncated before the key count (truncated?)".into()));
    };
    if usize::from(count) != expected {
        return Err(bad(format!("{count} keys, but the plan needs {expected}")));
    }
    let mut parts = Vec::with_capacity(expected);
    for k in 0..expected {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| bad(format!("truncated before key {k}")))?;
        let len = u32::from_le_bytes(*len) as usize;
        if len > tail.len() {
            return Err(bad(format!(
                "key {k} declares {len} bytes but {} remain (truncated?)",
                tail.len()
            )));
        }
        let (part, tail) = tail.split_at(len);
        parts.push(part);
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(bad(format!("{} bytes after the last key", rest.len())));
    }
    Ok(parts)
}

/// Checks that a list's keys share one key-set id and that key `i` is for the plan's prime `i`.
fn check_one_set<'k>(
    keys: impl Iterator<Item = (KeyId, &'k [u64])>,
    context: &Context,
) -> Result<(), SerialError> {
    let primes = &context.plan().params.plain_primes;
    let mut first = None;
    for (i, (id, covers)) in keys.enumerate() {
        if *first.get_or_insert(id) != id {
            return Err(SerialError::Invalid {
                what: "BGV key list",
                detail: format!("key {i} belongs to another key set than key 0"),
            });
        }
        if covers != [primes[i]] {
            return Err(SerialError::Invalid {
                what: "BGV key list",
                detail: format!(
                    "key {i} is made for the plaintext primes {covers:?}, not [{}]",
                    primes[i]
                ),
            });
        }
    }
    Ok(())
}
