//! The seeded weight matrices shared by the linear-kernel benchmark and timing example.

use rand::Rng;
use rand_chacha::ChaCha20Rng;
use veil_runtime::plan::IntMatrix;

/// A rows × cols matrix with `taps` seeded weights in [-127, 127] per row, spread evenly.
pub fn seeded_matrix(rows: usize, cols: usize, taps: usize, rng: &mut ChaCha20Rng) -> IntMatrix {
    let mut m = IntMatrix {
        rows,
        cols,
        row_ptr: vec![0],
        col_idx: vec![],
        values: vec![],
    };
    for r in 0..rows {
        let mut picked: Vec<u32> = (0..taps)
            .map(|k| ((r * 7 + k * cols / taps) % cols) as u32)
            .collect();
        picked.sort_unstable();
        picked.dedup();
        for c in picked {
            m.col_idx.push(c);
            m.values.push(rng.gen_range(-127..=127));
        }
        m.row_ptr.push(m.values.len());
    }
    m
}
