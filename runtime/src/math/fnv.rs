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
    bytes.iter().fold(OFFSET_BASIS, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(PRIME)
    })
}
