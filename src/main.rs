//! `veil`: compile neural networks to BFV circuits and run them on encrypted data.

fn main() {
    println!("veil: commands arrive with the compiler and executor");
}
