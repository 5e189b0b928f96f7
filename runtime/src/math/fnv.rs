//! The 64-bit FNV-1a hash: Veil's one fingerprint function for parameter sets, plan files and
//! plans. It detects accidents (a truncated file, a plan that is not the one a batch was made
//! for); it is not a cryptographic integrity check.

const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// The 64-bit FNV-1a hash of `bytes`.
///
/// ```
/// assert_eq!(veil_runtime::math::fnv1a(b""), 0xcbf2_9ce4_8422_2325);
/// assert_eq!(veil_runtime::math::fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
/// ```
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash = Fnv1a::new();
    hash.update(bytes);
    hash.finish()
}

/// The same hash over bytes that arrive in pieces (a file being written or read).
///
/// ```
/// use veil_runtime::math::{fnv1a, Fnv1a};
/// let mut hash = Fnv1a::new();
/// hash.update(b"ve");
/// hash.update(b"il");
/// assert_eq!(hash.finish(), fnv1a(b"veil"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fnv1a(u64);

impl Fnv1a {
    /// The hash of no bytes.
    pub fn new() -> Self {
        Fnv1a(OFFSET_BASIS)
    }

    /// Hashes `bytes` after those seen so far.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0 = bytes
            .iter()
            .fold(self.0, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(PRIME));
    }

    /// The hash of every byte seen.
    pub fn finish(self) -> u64 {
        self.0
    }
}

impl Default for Fnv1a {
    fn default() -> Self {
        Self::new()
    }
}
