//! The key split: the client's key decrypts, the server's key only evaluates.

use super::Context;
use crate::bfv::{BfvParameters, KeyId, PublicKey, RelinKey, SecretKey, SerialError};
use rand::{CryptoRng, RngCore};
use zeroize::Zeroizing;

/// The most bytes a serialised key may take: 256 MiB. The largest relinearisation key that
/// parameters can have (n = 32768, 20 primes, a 1000-bit modulus plus the special prime) is
/// about 90 MB; readers stop here instead of reading an endless input whole, and the key's
/// exact length for the plan's ring is then checked when it is parsed.
pub const MAX_KEY_BYTES: u64 = 256 << 20;

/// The client's key: the secret key. It encrypts (seeded, half-size ciphertexts) and decrypts;
/// it never leaves the client. Wiped on drop, redacted in `Debug` (as [`SecretKey`] is).
#[derive(Debug)]
pub struct ClientKey {
    secret: SecretKey,
}

/// The server's key: the relinearisation key. It evaluates a plan on ciphertexts and can
/// neither encrypt nor decrypt.
#[derive(Debug)]
pub struct ServerKey {
    relin: RelinKey,
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
    /// keys derived from it.
    pub fn generate(params: &BfvParameters, rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let secret = SecretKey::generate(params, rng);
        let public = PublicKey::new(&secret, rng);
        let relin = RelinKey::new(&secret, rng);
        KeySet {
            client: ClientKey { secret },
            public,
            server: ServerKey { relin },
        }
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
    /// The relinearisation key.
    pub fn relin(&self) -> &RelinKey {
        &self.relin
    }

    /// The key set this key belongs to.
    pub fn id(&self) -> KeyId {
        self.relin.id()
    }

    /// The serialised relinearisation key.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.relin.to_bytes()
    }

    /// Reads a serialised relinearisation key made for `context`'s ring.
    pub fn from_bytes(context: &Context, bytes: &[u8]) -> Result<Self, SerialError> {
        let relin = RelinKey::from_bytes(&context.params()[0], bytes)?;
        Ok(ServerKey { relin })
    }
}

impl From<RelinKey> for ServerKey {
    fn from(relin: RelinKey) -> Self {
        ServerKey { relin }
    }
}
