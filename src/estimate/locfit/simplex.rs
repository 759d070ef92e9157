//! Nelder–Mead minimisation of a few parameters: the localisation fit has
//! four (two axis tilts, two centre shifts) and a cheap, non-smooth-enough
//! objective, where a derivative-free simplex is robust.

/// Settings of [`minimise`].
#[derive(Clone, Copy, Debug)]
pub struct SimplexOptions {
    /// Stop when the simplex's values differ by less than this.
    pub f_tol: f64,
    /// Most objective evaluations.
    pub max_evals: usize,
}

/// Where [`minimise`] stopped.
#[derive(Clone, Debug, PartialEq)]
pub struct Minimum {
    pub x: Vec<f64>,
    pub f: f64,
    pub evals: usize,
}

/// Minimises `f` from `x0` with an initial simplex of `step[i]` along each
/// axis (standard coefficients: reflect 1, expand 2, contract ½, shrink ½).
/// Non-finite values count as +∞.
pub fn minimise(
    mut f: impl FnMut(&[f64]) -> f64,
    x0: &[f64],
    step: &[f64],
    opts: SimplexOptions,
) -> Minimum {
    let n = x0.len();
    let mut evals = 0usize;
    let mut eval = |x: &[f64], evals: &mut usize| {
        *evals += 1;
        let v = f(x);
        if v.is_finite() {
            v
        } else {
            f64::INFINITY
        }
    };
    let mut pts: Vec<Vec<f64>> = Vec::with_capacity(n + 1);
    pts.push(x0.to_vec());
    for i in 0..n {
        let mut p = x0.to_vec();
        p[i] += step[i];
        pts.push(p);
    }
    let mut vals: Vec<f64> = pts.iter().map(|p| eval(p, &mut evals)).collect();
    while evals < opts.max_evals {
        // order best → worst
        let mut idx: Vec<usize> = (0..=n).collect();
        idx.sort_by(|&a, &b| vals[a].total_cmp(&vals[b]));
        pts = idx.iter().map(|&i| pts[i].clone()).collect();
        vals = idx.iter().map(|&i| vals[i]).collect();
        if (vals[n] - vals[0]).abs() <= opts.f_tol {
            break;
        }
        let centroid: Vec<f64> = (0..n)
            .map(|d| pts[..n].iter().map(|p| p[d]).sum::<f64>() / n as f64)
            .collect();
        let along = |t: f64| -> Vec<f64> {
            (0..n)
                .map(|d| centroid[d] + t * (pts[n][d] - centroid[d]))
                .collect()
        };
        let xr = along(-1.0);
        let fr = eval(&xr, &mut evals);
        if fr < vals[0] {
            let xe = along(-2.0);
            let fe = eval(&xe, &mut evals);
            if fe < fr {
                pts[n] = xe;
                vals[n] = fe;
            } else {
                pts[n] = xr;
                vals[n] = fr;
            }
        } else if fr < vals[n - 1] {
            pts[n] = xr;
            vals[n] = fr;
        } else {
            let (xc, fc) = if fr < vals[n] {
                let xc = along(-0.5);
                let fc = eval(&xc, &mut evals);
                (xc, fc)
            } else {
                let xc = along(0.5);
                let fc = eval(&xc, &mut evals);
                (xc, fc)
            };
            if fc < vals[n].min(fr) {
                pts[n] = xc;
                vals[n] = fc;
            } else {
                for i in 1..=n {
                    let p: Vec<f64> = (0..n)
                        .map(|d| pts[0][d] + 0.5 * (pts[i][d] - pts[0][d]))
                        .collect();
                    vals[i] = eval(&p, &mut evals);
                    pts[i] = p;
                }
            }
        }
    }
    let best = (0..=n)
        .min_by(|&a, &b| vals[a].total_cmp(&vals[b]))
        .unwrap_or(0);
    Minimum {
        x: pts[best].clone(),
        f: vals[best],
        evals,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_minimum_of_a_shifted_rosenbrock() {
        let f = |x: &[f64]| (1.0 - x[0]).powi(2) + 100.0 * (x[1] - x[0] * x[0]).powi(2);
        let m = minimise(
            f,
            &[-1.2, 1.0],
            &[0.5, 0.5],
            SimplexOptions {
                f_tol: 1e-14,
                max_evals: 5000,
            },
        );
        assert!(
            (m.x[0] - 1.0).abs() < 1e-3 && (m.x[1] - 1.0).abs() < 1e-3,
            "{m:?}"
        );
        assert!(m.evals <= 5000);
    }

    #[test]
    fn non_finite_values_are_avoided() {
        // NaN left of zero: the minimum at 2 is still found from 1
        let f = |x: &[f64]| {
            if x[0] < 0.0 {
                f64::NAN
            } else {
                (x[0] - 2.0).powi(2)
            }
        };
        let m = minimise(
            f,
            &[1.0],
            &[3.0],
            SimplexOptions {
                f_tol: 1e-12,
                max_evals: 500,
            },
        );
        assert!((m.x[0] - 2.0).abs() < 1e-4, "{m:?}");
    }
}
