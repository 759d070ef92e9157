//! The posed model's points bucketed by their lateral position, so that a
//! localisation visits only the points within its cut-off radius instead
//! of the whole surface: a uniform grid over x and y, filled by a counting
//! sort (each cell keeps its points in model order). A row of cells is one
//! contiguous run of points, so a query is a few slices.

/// Most cells a grid has; a finer cell size is coarsened to stay below.
const MAX_CELLS: usize = 1 << 14;

/// Points in cells of a uniform lateral grid.
#[derive(Debug)]
pub(super) struct PointGrid {
    x0: f32,
    y0: f32,
    inv_cell: f32,
    nx: usize,
    ny: usize,
    /// Where each cell's points start, row-major, and the end.
    starts: Vec<usize>,
    /// The points in cell order, coordinate by coordinate (for SIMD), and
    /// their weights.
    run: Run,
}

/// Points as separate coordinate arrays, with their weights.
#[derive(Debug, Default)]
pub(super) struct Run {
    pub xs: Vec<f32>,
    pub ys: Vec<f32>,
    pub zs: Vec<f32>,
    pub ws: Vec<f32>,
}

/// A slice of a [`Run`]: consecutive points of one row of cells.
#[derive(Clone, Copy, Debug)]
pub(super) struct RunSlice<'a> {
    pub xs: &'a [f32],
    pub ys: &'a [f32],
    pub zs: &'a [f32],
    pub ws: &'a [f32],
}

impl PointGrid {
    /// `points` (x, y, z) with their `weights`, in cells of about `cell`
    /// (coarser when the points span more than [`MAX_CELLS`] such cells).
    /// Non-finite coordinates are the caller's to exclude.
    pub(super) fn new(points: &[[f32; 3]], weights: &[f64], cell: f32) -> Self {
        let (mut lo, mut hi) = ([f32::INFINITY; 2], [f32::NEG_INFINITY; 2]);
        for p in points {
            for a in 0..2 {
                lo[a] = lo[a].min(p[a]);
                hi[a] = hi[a].max(p[a]);
            }
        }
        if points.is_empty() {
            (lo, hi) = ([0.0; 2], [0.0; 2]);
        }
        let mut cell = if cell.is_finite() && cell > 0.0 {
            cell
        } else {
            1.0
        };
        let cells = |cell: f32| {
            let n = |a: usize| ((hi[a] - lo[a]) / cell) as usize + 1;
            (n(0), n(1))
        };
        let (mut nx, mut ny) = cells(cell);
        while nx.saturating_mul(ny) > MAX_CELLS {
            cell *= 2.0;
            (nx, ny) = cells(cell);
        }
        let inv_cell = 1.0 / cell;
        let index = |p: &[f32; 3]| {
            let cx = (((p[0] - lo[0]) * inv_cell) as usize).min(nx - 1);
            let cy = (((p[1] - lo[1]) * inv_cell) as usize).min(ny - 1);
            cy * nx + cx
        };
        let mut starts = vec![0usize; nx * ny + 1];
        for p in points {
            starts[index(p) + 1] += 1;
        }
        for k in 1..starts.len() {
            starts[k] += starts[k - 1];
        }
        let mut next = starts.clone();
        let n = points.len();
        let mut run = Run {
            xs: vec![0.0; n],
            ys: vec![0.0; n],
            zs: vec![0.0; n],
            ws: vec![0.0; n],
        };
        for (p, &w) in points.iter().zip(weights) {
            let c = index(p);
            let k = next[c];
            (run.xs[k], run.ys[k], run.zs[k], run.ws[k]) = (p[0], p[1], p[2], w as f32);
            next[c] += 1;
        }
        Self {
            x0: lo[0],
            y0: lo[1],
            inv_cell,
            nx,
            ny,
            starts,
            run,
        }
    }

    /// Calls `visit` with every run of points in the cells that overlap the
    /// square of half side `r` around (x, y): every point within `r` of it
    /// laterally, and some beyond.
    pub(super) fn near(&self, x: f32, y: f32, r: f32, mut visit: impl FnMut(RunSlice<'_>)) {
        let span = |c: f32, origin: f32, n: usize| -> Option<(usize, usize)> {
            let a = ((c - r - origin) * self.inv_cell).floor();
            let b = ((c + r - origin) * self.inv_cell).floor();
            // NaN fails both tests: nothing is near a NaN
            if !(b >= 0.0 && a < n as f32) {
                return None;
            }
            Some((a.max(0.0) as usize, (b as usize).min(n - 1)))
        };
        let (Some((cx0, cx1)), Some((cy0, cy1))) =
            (span(x, self.x0, self.nx), span(y, self.y0, self.ny))
        else {
            return;
        };
        for cy in cy0..=cy1 {
            let row = cy * self.nx;
            let (a, b) = (self.starts[row + cx0], self.starts[row + cx1 + 1]);
            if a < b {
                let run = &self.run;
                visit(RunSlice {
                    xs: &run.xs[a..b],
                    ys: &run.ys[a..b],
                    zs: &run.zs[a..b],
                    ws: &run.ws[a..b],
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn a_query_finds_every_point_within_its_radius_once() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let points: Vec<[f32; 3]> = (0..2000)
            .map(|_| {
                [
                    rng.random_range(-200.0..200.0),
                    rng.random_range(-80.0..80.0),
                    rng.random_range(-40.0..40.0),
                ]
            })
            .collect();
        let weights: Vec<f64> = (0..points.len()).map(|k| k as f64).collect();
        for cell in [7.0, 30.0, 1000.0, 1e-6] {
            let grid = PointGrid::new(&points, &weights, cell);
            assert_eq!(grid.run.xs.len(), points.len());
            for _ in 0..200 {
                let (x, y) = (
                    rng.random_range(-260.0..260.0),
                    rng.random_range(-120.0..120.0),
                );
                let r = rng.random_range(1.0..60.0);
                let mut seen = Vec::new();
                grid.near(x, y, r, |run| {
                    for k in 0..run.xs.len() {
                        // each point keeps its weight
                        let p = [run.xs[k], run.ys[k], run.zs[k]];
                        assert_eq!(points[run.ws[k] as usize], p);
                        seen.push(run.ws[k] as usize);
                    }
                });
                let mut sorted = seen.clone();
                sorted.sort_unstable();
                sorted.dedup();
                assert_eq!(sorted.len(), seen.len(), "a point visited twice");
                for (k, p) in points.iter().enumerate() {
                    if (p[0] - x).hypot(p[1] - y) <= r {
                        assert!(
                            sorted.binary_search(&k).is_ok(),
                            "missed {p:?} near ({x}, {y}), r {r}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn far_nan_and_empty_queries_visit_nothing() {
        let points = [[0.0f32, 0.0, 0.0], [10.0, 10.0, 0.0]];
        let grid = PointGrid::new(&points, &[0.5, 0.5], 2.0);
        let count = |x: f32, y: f32, r: f32| {
            let mut n = 0;
            grid.near(x, y, r, |run| n += run.xs.len());
            n
        };
        assert_eq!(count(5.0, 5.0, 100.0), 2);
        assert_eq!(count(-50.0, 5.0, 10.0), 0);
        assert_eq!(count(5.0, 500.0, 10.0), 0);
        assert_eq!(count(f32::NAN, 5.0, 10.0), 0);
        let empty = PointGrid::new(&[], &[], 2.0);
        let mut n = 0;
        empty.near(0.0, 0.0, 5.0, |run| n += run.xs.len());
        assert_eq!(n, 0);
    }
}
