//! Rows of a linear map gathered into groups that share one list of columns, so that the
//! kernel loads each input coefficient once for several rows.
//!
//! Loading is what limits a one-row-at-a-time product: every multiply-add needs its own load of
//! the input. A group of `R` rows over the same columns reuses each load `R` times. Two
//! patterns give such groups in practice:
//! - rows with identical columns (a convolution's output maps at one position share their
//!   window), found exactly;
//! - neighbouring rows of a dense map, whose columns differ only where a weight happens to be
//!   zero: their union is used, with zero weights where a row has none, when it costs at most
//!   [`MAX_PADDING`] more multiply-adds than the rows' own entries.

use crate::plan::IntMatrix;
use std::collections::HashMap;

/// Most rows in one group any kernel takes (each kernel says how many it keeps in registers:
/// [`super::kernel::Kernel::max_group`]).
pub(crate) const GROUP: usize = 8;

/// The largest ratio of padded to real entries for which neighbouring rows are merged.
const MAX_PADDING: f64 = 1.25;

/// Up to [`GROUP`] rows (the kernel's `max_group`) over one column list.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RowGroup {
    /// Input columns, ascending.
    pub cols: Vec<u32>,
    /// The matrix rows this group computes, in order.
    pub rows: Vec<usize>,
    /// `weights[c · rows.len() + r]`: the weight of column `cols[c]` in row `rows[r]`. Stored
    /// in 32 bits so that the compiler knows a widened weight is sign-extended: with 64-bit
    /// storage it re-extends every broadcast weight (two shifts) before each multiply.
    pub weights: Vec<i32>,
}

/// Groups of at most `max_rows` (≤ [`GROUP`]) rows covering every row of `matrix` exactly
/// once. Weights must fit in `i32` (the caller's
/// `fits` check bounds them).
pub(crate) fn group_rows(matrix: &IntMatrix, max_rows: usize) -> Vec<RowGroup> {
    let max_rows = max_rows.clamp(1, GROUP);
    let supports: Vec<Vec<u32>> = (0..matrix.rows)
        .map(|r| {
            matrix
                .row(r)
                .filter(|&(_, w)| w != 0)
                .map(|(c, _)| c as u32)
                .collect()
        })
        .collect();
    let mut same: HashMap<&[u32], Vec<usize>> = HashMap::new();
    let mut order = Vec::new();
    for (r, cols) in supports.iter().enumerate() {
        let rows = same.entry(cols.as_slice()).or_default();
        if rows.is_empty() {
            order.push(cols.as_slice());
        }
        rows.push(r);
    }
    let mut groups = Vec::new();
    let mut singles = Vec::new();
    for cols in order {
        let rows = &same[cols];
        if rows.len() == 1 {
            singles.push(rows[0]);
            continue;
        }
        // Balanced chunks (5 rows in fours as 3 + 2, not 4 + 1): a lone row reuses no load.
        let parts = rows.len().div_ceil(max_rows);
        let mut start = 0;
        for part in 0..parts {
            let end = start + (rows.len() - start).div_ceil(parts - part);
            groups.push(make_group(matrix, cols.to_vec(), &rows[start..end]));
            start = end;
        }
    }
    singles.sort_unstable();
    let mut at = 0;
    while at < singles.len() {
        let mut union = supports[singles[at]].clone();
        let mut real = union.len();
        let mut end = at + 1;
        while end < singles.len() && end - at < max_rows {
            let candidate = merge(&union, &supports[singles[end]]);
            let entries = real + supports[singles[end]].len();
            if (candidate.len() * (end - at + 1)) as f64 > MAX_PADDING * entries as f64 {
                break;
            }
            union = candidate;
            real = entries;
            end += 1;
        }
        groups.push(make_group(matrix, union, &singles[at..end]));
        at = end;
    }
    groups
}

/// The sorted union of two ascending column lists.
fn merge(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let next = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) if x == y => {
                i += 1;
                j += 1;
                x
            }
            (Some(&x), Some(&y)) if x < y => {
                i += 1;
                x
            }
            (Some(&x), None) => {
                i += 1;
                x
            }
            (_, Some(&y)) => {
                j += 1;
                y
            }
            (None, None) => break,
        };
        out.push(next);
    }
    out
}

fn make_group(matrix: &IntMatrix, cols: Vec<u32>, rows: &[usize]) -> RowGroup {
    let index: HashMap<u32, usize> = cols.iter().enumerate().map(|(i, &c)| (c, i)).collect();
    let mut weights = vec![0i32; cols.len() * rows.len()];
    for (r, &row) in rows.iter().enumerate() {
        for (c, w) in matrix.row(row) {
            if let Some(&i) = index.get(&(c as u32)) {
                // Bounded by the caller's `fits` (Σ|w| < 2^31), so the conversion is exact.
                weights[i * rows.len() + r] += w as i32;
            }
        }
    }
    RowGroup {
        cols,
        rows: rows.to_vec(),
        weights,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(rows: &[&[(u32, i64)]], cols: usize) -> IntMatrix {
        let mut m = IntMatrix {
            rows: rows.len(),
            cols,
            row_ptr: vec![0],
            col_idx: Vec::new(),
            values: Vec::new(),
        };
        for row in rows {
            for &(c, w) in *row {
                m.col_idx.push(c);
                m.values.push(w);
            }
            m.row_ptr.push(m.col_idx.len());
        }
        m
    }

    /// Every row lands in exactly one group, with its own weights and zeros elsewhere.
    fn check_cover(m: &IntMatrix, groups: &[RowGroup]) {
        let mut seen = vec![0; m.rows];
        for g in groups {
            assert!(!g.rows.is_empty() && g.rows.len() <= 4);
            for (r, &row) in g.rows.iter().enumerate() {
                seen[row] += 1;
                let mut dense = vec![0i64; m.cols];
                for (c, w) in m.row(row) {
                    dense[c] += w;
                }
                for (i, &c) in g.cols.iter().enumerate() {
                    assert_eq!(
                        i64::from(g.weights[i * g.rows.len() + r]),
                        dense[c as usize]
                    );
                    dense[c as usize] = 0;
                }
                assert!(dense.iter().all(|&w| w == 0), "row {row} lost an entry");
            }
        }
        assert!(seen.iter().all(|&s| s == 1));
    }

    #[test]
    fn identical_windows_group_across_the_matrix() {
        let w: &[(u32, i64)] = &[(0, 1), (1, -2)];
        let v: &[(u32, i64)] = &[(5, 3), (6, 4), (7, 1)];
        let rows = [w, v, w, v, w, w, w];
        let m = matrix(&rows, 8);
        let groups = group_rows(&m, 4);
        check_cover(&m, &groups);
        assert_eq!(groups[0].rows, vec![0, 2, 4]);
        assert_eq!(groups[1].rows, vec![5, 6]);
        assert_eq!(groups[2].rows, vec![1, 3]);
    }

    #[test]
    fn dense_rows_with_a_few_zeros_merge_and_disjoint_rows_do_not() {
        let a: Vec<(u32, i64)> = (0..40).map(|c| (c, 1 + i64::from(c))).collect();
        let b: Vec<(u32, i64)> = (0..40).filter(|c| c % 13 != 0).map(|c| (c, -2)).collect();
        let far: Vec<(u32, i64)> = (100..140).map(|c| (c, 7)).collect();
        let zero: Vec<(u32, i64)> = vec![(3, 0)];
        let rows = [&a[..], &b[..], &far[..], &zero[..]];
        let m = matrix(&rows, 140);
        let groups = group_rows(&m, 4);
        check_cover(&m, &groups);
        assert_eq!(groups[0].rows, vec![0, 1]);
        assert_eq!(groups[1].rows, vec![2]);
        // A row of zeros is a group over no columns.
        assert_eq!(groups[2].rows, vec![3]);
        assert!(groups[2].cols.is_empty());
    }
}
