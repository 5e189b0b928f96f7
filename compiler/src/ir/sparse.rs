//! Sparse real matrices in compressed sparse row form: the fused affine maps of the IR.

/// A real matrix in CSR form; rows are outputs, columns inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct SparseMatrix {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Row `r` owns entries `row_ptr[r]..row_ptr[r + 1]`.
    pub row_ptr: Vec<usize>,
    /// Column of each entry (strictly increasing within a row).
    pub col_idx: Vec<usize>,
    /// Value of each entry (never zero).
    pub values: Vec<f64>,
}

impl SparseMatrix {
    /// Builds a matrix from per-row (column, value) lists; zeros are dropped and duplicates
    /// summed.
    pub fn from_rows(cols: usize, rows: Vec<Vec<(usize, f64)>>) -> Self {
        let mut m = SparseMatrix {
            rows: rows.len(),
            cols,
            row_ptr: Vec::with_capacity(rows.len() + 1),
            col_idx: Vec::new(),
            values: Vec::new(),
        };
        m.row_ptr.push(0);
        for mut row in rows {
            row.sort_by_key(|&(c, _)| c);
            let mut last: Option<usize> = None;
            for (c, v) in row {
                if last == Some(c) {
                    if let Some(x) = m.values.last_mut() {
                        *x += v;
                    }
                } else {
                    m.col_idx.push(c);
                    m.values.push(v);
                    last = Some(c);
                }
            }
            // Drop exact zeros (sums that cancelled included).
            let start = m.row_ptr[m.row_ptr.len() - 1];
            let mut keep = start;
            for i in start..m.values.len() {
                if m.values[i] != 0.0 {
                    m.col_idx[keep] = m.col_idx[i];
                    m.values[keep] = m.values[i];
                    keep += 1;
                }
            }
            m.col_idx.truncate(keep);
            m.values.truncate(keep);
            m.row_ptr.push(keep);
        }
        m
    }

    /// The n×n identity scaled by `factor`.
    pub fn diagonal(values: &[f64]) -> Self {
        SparseMatrix::from_rows(
            values.len(),
            values
                .iter()
                .enumerate()
                .map(|(i, &v)| vec![(i, v)])
                .collect(),
        )
    }

    /// Entries of row `r` as (column, value).
    pub fn row(&self, r: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        let span = self.row_ptr[r]..self.row_ptr[r + 1];
        self.col_idx[span.clone()]
            .iter()
            .copied()
            .zip(self.values[span].iter().copied())
    }

    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    /// `self · x`.
    pub fn mul_vec(&self, x: &[f64]) -> Vec<f64> {
        (0..self.rows)
            .map(|r| {
                self.row(r)
                    .map(|(c, v)| v * x.get(c).copied().unwrap_or(0.0))
                    .sum()
            })
            .collect()
    }

    /// The product `self · other` (`self.cols == other.rows`).
    pub fn compose(&self, other: &SparseMatrix) -> SparseMatrix {
        let mut acc = vec![0.0f64; other.cols];
        let mut touched: Vec<usize> = Vec::new();
        let mut mark = vec![false; other.cols];
        let mut rows = Vec::with_capacity(self.rows);
        for r in 0..self.rows {
            for (k, a) in self.row(r) {
                if k >= other.rows {
                    continue;
                }
                for (c, b) in other.row(k) {
                    if !mark[c] {
                        mark[c] = true;
                        touched.push(c);
                    }
                    acc[c] += a * b;
                }
            }
            let mut row = Vec::with_capacity(touched.len());
            for &c in &touched {
                row.push((c, acc[c]));
                acc[c] = 0.0;
                mark[c] = false;
            }
            touched.clear();
            rows.push(row);
        }
        SparseMatrix::from_rows(other.cols, rows)
    }

    /// Stacks matrices with the same number of columns vertically.
    pub fn vstack(cols: usize, parts: &[&SparseMatrix]) -> SparseMatrix {
        let mut rows = Vec::new();
        for m in parts {
            for r in 0..m.rows {
                rows.push(m.row(r).collect());
            }
        }
        SparseMatrix::from_rows(cols, rows)
    }

    /// Renumbers columns through `map` into a matrix with `cols` columns.
    pub fn remap_columns(&self, cols: usize, map: &[usize]) -> SparseMatrix {
        SparseMatrix::from_rows(
            cols,
            (0..self.rows)
                .map(|r| self.row(r).map(|(c, v)| (map[c], v)).collect())
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composition_matches_dense_products() {
        let a = SparseMatrix::from_rows(3, vec![vec![(0, 1.0), (2, 2.0)], vec![(1, -1.0)]]);
        let b = SparseMatrix::from_rows(
            2,
            vec![vec![(0, 1.0)], vec![(1, 3.0)], vec![(0, 0.5), (1, 1.0)]],
        );
        let ab = a.compose(&b);
        let x = [2.0, 5.0];
        assert_eq!(ab.mul_vec(&x), a.mul_vec(&b.mul_vec(&x)));
        assert_eq!(ab.rows, 2);
        assert_eq!(ab.cols, 2);
    }

    #[test]
    fn zeros_and_duplicates_are_normalised() {
        let m = SparseMatrix::from_rows(4, vec![vec![(3, 1.0), (1, 2.0), (3, -1.0), (0, 0.0)]]);
        assert_eq!(m.col_idx, vec![1]);
        assert_eq!(m.values, vec![2.0]);
    }
}
