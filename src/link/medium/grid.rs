//! A uniform grid over member positions with cells at least one search
//! radius wide, used once when a medium is built so that finding each
//! sender's neighbours does not compare every pair of members.

/// A uniform grid over member positions with cells of the search radius,
/// used once at setup.
pub(super) struct Grid {
    cell: f64,
    min: (f64, f64),
    cols: usize,
    rows: usize,
    /// Members per cell, compressed: `cells[first[c]..first[c + 1]]`.
    first: Vec<u32>,
    cells: Vec<u32>,
}

impl Grid {
    pub(super) fn new(pos: &[(f64, f64)], radius: f64) -> Grid {
        let min = pos
            .iter()
            .fold((f64::MAX, f64::MAX), |m, p| (m.0.min(p.0), m.1.min(p.1)));
        let max = pos
            .iter()
            .fold((f64::MIN, f64::MIN), |m, p| (m.0.max(p.0), m.1.max(p.1)));
        let min = if pos.is_empty() { (0.0, 0.0) } else { min };
        // at most ~4 cells per member keeps the grid small when the radius is tiny
        let span = ((max.0 - min.0).max(0.0), (max.1 - min.1).max(0.0));
        let limit = (4 * pos.len()).max(1) as f64;
        let mut cell = radius;
        while (span.0 / cell + 1.0) * (span.1 / cell + 1.0) > limit {
            cell *= 2.0;
        }
        let cols = (span.0 / cell) as usize + 1;
        let rows = (span.1 / cell) as usize + 1;
        let idx = |p: (f64, f64)| {
            let c = (((p.0 - min.0) / cell) as usize).min(cols - 1);
            let r = (((p.1 - min.1) / cell) as usize).min(rows - 1);
            r * cols + c
        };
        let mut count = vec![0u32; cols * rows + 1];
        for &p in pos {
            count[idx(p) + 1] += 1;
        }
        for i in 1..count.len() {
            count[i] += count[i - 1];
        }
        let mut fill = count.clone();
        let mut cells = vec![0u32; pos.len()];
        for (i, &p) in pos.iter().enumerate() {
            let c = idx(p);
            cells[fill[c] as usize] = i as u32;
            fill[c] += 1;
        }
        Grid {
            cell,
            min,
            cols,
            rows,
            first: count,
            cells,
        }
    }

    /// Members in the cells within one search radius of `p`.
    pub(super) fn near(&self, p: (f64, f64), out: &mut Vec<u32>) {
        let span = |v: f64, lo: f64, n: usize| {
            let a = ((v - lo) / self.cell).floor() - 1.0;
            let b = ((v - lo) / self.cell).floor() + 1.0;
            let clamp = |x: f64| x.max(0.0).min((n - 1) as f64) as usize;
            if b < 0.0 || a > (n - 1) as f64 {
                None
            } else {
                Some((clamp(a), clamp(b)))
            }
        };
        let (Some((c0, c1)), Some((r0, r1))) = (
            span(p.0, self.min.0, self.cols),
            span(p.1, self.min.1, self.rows),
        ) else {
            return;
        };
        for r in r0..=r1 {
            for c in c0..=c1 {
                let k = r * self.cols + c;
                out.extend_from_slice(
                    &self.cells[self.first[k] as usize..self.first[k + 1] as usize],
                );
            }
        }
    }
}
