//! Random 16-byte identifiers (key sets, batches): one definition of their bytes, generation
//! and hex form, so the id types the file formats carry cannot drift apart.

/// Defines `$name`, a random 16-byte identifier: `generate`, `from_bytes`, `to_bytes`,
/// lower-case hex `Display`, and a `Debug` that names the type. It identifies; it does not
/// authenticate (anyone may copy it).
macro_rules! random_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name([u8; $name::LEN]);

        impl $name {
            /// Bytes of an id.
            pub const LEN: usize = 16;

            /// A fresh random id.
            pub fn generate(rng: &mut (impl rand::RngCore + rand::CryptoRng)) -> Self {
                let mut id = [0u8; Self::LEN];
                rng.fill_bytes(&mut id);
                $name(id)
            }

            /// The id with these bytes.
            pub fn from_bytes(bytes: [u8; Self::LEN]) -> Self {
                $name(bytes)
            }

            /// The id's bytes.
            pub fn to_bytes(self) -> [u8; Self::LEN] {
                self.0
            }
        }

        /// Lower-case hex, as the CLI prints it.
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                for b in self.0 {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }
    };
}

pub(crate) use random_id;
