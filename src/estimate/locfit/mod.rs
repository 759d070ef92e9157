//! Pose refinement on the localisations themselves, in the manner of SMAP's
//! LocMoFit: instead of rendering a particle into an image and comparing
//! images, the posed model is scored by the likelihood of every
//! localisation, each blurred by its own precision ([`likelihood`]).
//!
//! For an axial model (a torus) the pose is its symmetry axis; with the
//! lateral centre that is four parameters, found by
//! 1. scoring a grid of axes over the quarter sphere that orthographic
//!    projection can tell apart (`n ≡ −n ≡ mirror_z(n)`) at the pick's centre,
//! 2. Nelder–Mead ([`simplex`]) from the best grid axes and from a given
//!    start (the image fit's axis, say), and
//! 3. a final restart from the best of those.
//!
//! Deterministic; no randomness, no threads (callers parallelise over
//! particles).

pub mod likelihood;
pub mod simplex;

use crate::geometry::Vec3;
use crate::geometry::{cross, normalize};
use crate::io::locs::LocTable;

pub use likelihood::{negative_log_likelihood, AxialModel, ParticleLocs};
use simplex::{minimise, SimplexOptions};

/// Settings of [`fit_axis`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LocFitOptions {
    /// Fraction of localisations taken as uniform background.
    pub background: f64,
    /// Axes scored on the quarter-sphere grid.
    pub grid_axes: usize,
    /// Best grid axes refined (besides the given start).
    pub starts: usize,
    /// Most likelihood evaluations per simplex run.
    pub max_evals: usize,
    /// Precision assumed for localisations without one, nm.
    pub default_precision_nm: f64,
}

impl Default for LocFitOptions {
    fn default() -> Self {
        Self {
            background: 0.1,
            grid_axes: 60,
            starts: 2,
            max_evals: 400,
            default_precision_nm: 10.0,
        }
    }
}

/// The fitted pose of one particle.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LocFit {
    /// Unit symmetry axis, canonical: `z ≥ 0` (the mirror is equivalent).
    pub axis: Vec3,
    /// Centre, nm (the table's frame).
    pub centre_nm: [f64; 2],
    /// Negative log-likelihood per localisation at the fit.
    pub nll_per_loc: f64,
    /// Likelihood evaluations spent.
    pub evals: usize,
}

/// Errors of the localisation fit.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LocFitError {
    #[error("only {0} localisations: at least {MIN_LOCS} are needed to fit a pose")]
    TooFew(usize),
    #[error("the localisations or the start are not finite numbers")]
    NonFinite,
}

/// Fewest localisations [`fit_axis`] accepts.
pub const MIN_LOCS: usize = 8;

/// The localisations of `table` within `radius_nm` of `centre` (nm), with
/// their precisions (or `default_precision_nm`).
pub fn gather(
    table: &LocTable,
    indices: &[usize],
    centre: [f64; 2],
    radius_nm: f64,
    default_precision_nm: f64,
) -> ParticleLocs {
    let mut out = ParticleLocs {
        area_nm2: std::f64::consts::PI * radius_nm * radius_nm,
        ..ParticleLocs::default()
    };
    for &i in indices {
        let (x, y) = (f64::from(table.x_nm[i]), f64::from(table.y_nm[i]));
        if (x - centre[0]).hypot(y - centre[1]) > radius_nm {
            continue;
        }
        let p = table
            .precision_nm
            .as_ref()
            .map(|p| f64::from(p[i]))
            .filter(|p| p.is_finite() && *p > 0.0)
            .unwrap_or(default_precision_nm);
        out.x.push(x);
        out.y.push(y);
        out.precision.push(p);
    }
    out
}

/// Fits the axis and centre of `model` to `locs`, starting from the centre
/// `centre0` (nm) and, if given, the axis `start`. The grid and the first
/// simplex runs use `coarse` (the same surface sampled more sparsely, which
/// is several times cheaper) when given; the final restart uses `model`.
pub fn fit_axis(
    model: &AxialModel,
    coarse: Option<&AxialModel>,
    locs: &ParticleLocs,
    centre0: [f64; 2],
    start: Option<Vec3>,
    opts: &LocFitOptions,
) -> Result<LocFit, LocFitError> {
    if locs.len() < MIN_LOCS {
        return Err(LocFitError::TooFew(locs.len()));
    }
    let finite = locs
        .x
        .iter()
        .chain(&locs.y)
        .chain(&locs.precision)
        .chain(&centre0)
        .all(|v| v.is_finite());
    if !finite {
        return Err(LocFitError::NonFinite);
    }
    let nll_of = |m: &AxialModel, axis: Vec3, c: [f64; 2]| {
        negative_log_likelihood(m, locs, axis, c, opts.background).unwrap_or(f64::INFINITY)
    };
    let first = coarse.unwrap_or(model);
    let nll = |axis: Vec3, c: [f64; 2]| nll_of(first, axis, c);
    let nll_fine = |axis: Vec3, c: [f64; 2]| nll_of(model, axis, c);
    // 1. the grid
    let mut scored: Vec<(f64, Vec3)> = quarter_sphere(opts.grid_axes)
        .into_iter()
        .map(|a| (nll(a, centre0), a))
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut starts: Vec<Vec3> = scored.iter().take(opts.starts).map(|s| s.1).collect();
    if let Some(s) = start.and_then(normalize) {
        starts.insert(0, s);
    }
    // 2. a simplex from each start, 3. a restart from the best
    let mut evals = scored.len();
    let mut best: Option<(f64, Vec3, [f64; 2])> = None;
    for s in starts {
        let (f, a, c, e) = refine(&nll, s, centre0, opts.max_evals);
        evals += e;
        if best.is_none_or(|b| f < b.0) {
            best = Some((f, a, c));
        }
    }
    let (_, a0, c0) = best.ok_or(LocFitError::NonFinite)?;
    let f0 = nll_fine(a0, c0);
    let (f, a, c, e) = refine(&nll_fine, a0, c0, opts.max_evals);
    evals += e;
    let (f, a, c) = if f <= f0 { (f, a, c) } else { (f0, a0, c0) };
    if !f.is_finite() {
        return Err(LocFitError::NonFinite);
    }
    let axis = if a[2] < 0.0 { [a[0], a[1], -a[2]] } else { a };
    Ok(LocFit {
        axis,
        centre_nm: c,
        nll_per_loc: f / locs.len() as f64,
        evals,
    })
}

/// One simplex run in the tangent plane of `axis`: parameters are two tilts
/// (radians, roughly) and the centre shift (nm).
fn refine(
    nll: &impl Fn(Vec3, [f64; 2]) -> f64,
    axis: Vec3,
    centre: [f64; 2],
    max_evals: usize,
) -> (f64, Vec3, [f64; 2], usize) {
    let (e1, e2) = tangents(axis);
    let at = |p: &[f64]| -> (Vec3, [f64; 2]) {
        let a = [0, 1, 2].map(|i| axis[i] + p[0] * e1[i] + p[1] * e2[i]);
        (
            normalize(a).unwrap_or(axis),
            [centre[0] + p[2], centre[1] + p[3]],
        )
    };
    let m = minimise(
        |p| {
            let (a, c) = at(p);
            nll(a, c)
        },
        &[0.0; 4],
        &[0.12, 0.12, 15.0, 15.0],
        SimplexOptions {
            f_tol: 1e-4,
            max_evals,
        },
    );
    let (a, c) = at(&m.x);
    (m.f, a, c, m.evals)
}

/// Two unit vectors perpendicular to `a` and to each other.
fn tangents(a: Vec3) -> (Vec3, Vec3) {
    let helper = if a[0].abs() < 0.9 {
        [1.0, 0.0, 0.0]
    } else {
        [0.0, 1.0, 0.0]
    };
    let e1 = normalize(cross(a, helper)).unwrap_or([0.0, 1.0, 0.0]);
    let e2 = normalize(cross(a, e1)).unwrap_or([0.0, 0.0, 1.0]);
    (e1, e2)
}

/// About `n` axes spread evenly (a Fibonacci lattice) over the quarter
/// sphere `z ≥ 0, y ≥ 0`: one of each set of directions an orthographic
/// image of an axial particle cannot tell apart.
pub fn quarter_sphere(n: usize) -> Vec<Vec3> {
    let total = 4 * n.max(1);
    let golden = std::f64::consts::PI * (3.0 - 5f64.sqrt());
    (0..total)
        .filter_map(|k| {
            let z = 1.0 - (k as f64 + 0.5) / total as f64 * 2.0;
            let r = (1.0 - z * z).max(0.0).sqrt();
            let phi = golden * k as f64;
            let v = [r * phi.cos(), r * phi.sin(), z];
            (v[2] >= 0.0 && v[1] >= 0.0).then_some(v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::symmetry::axis_error;
    use crate::geometry::Quat;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, Normal};

    /// Labels on a torus (R 180, r 40 nm), posed, with blinks and precision.
    fn particle(q: Quat, centre: [f64; 2], seed: u64) -> ParticleLocs {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let rot = q.to_matrix();
        let mut out = ParticleLocs {
            area_nm2: std::f64::consts::PI * 300.0 * 300.0,
            ..ParticleLocs::default()
        };
        let e = Normal::new(0.0, 1.0).unwrap();
        for _ in 0..70 {
            let u = rng.random_range(0.0..std::f64::consts::TAU);
            let v = rng.random_range(0.0..std::f64::consts::TAU);
            let m = [
                (180.0 + 40.0 * v.cos()) * u.cos(),
                (180.0 + 40.0 * v.cos()) * u.sin(),
                40.0 * v.sin(),
            ];
            let cam = [0, 1].map(|r| rot[r][0] * m[0] + rot[r][1] * m[1] + rot[r][2] * m[2]);
            for _ in 0..4 {
                let p = rng.random_range(5.0..15.0);
                out.x.push(centre[0] + cam[0] + p * e.sample(&mut rng));
                out.y.push(centre[1] + cam[1] + p * e.sample(&mut rng));
                out.precision.push(p);
            }
        }
        out
    }

    #[test]
    fn quarter_sphere_covers_its_quarter_evenly() {
        let g = quarter_sphere(60);
        assert!((50..=70).contains(&g.len()), "{}", g.len());
        assert!(g.iter().all(|v| v[2] >= 0.0 && v[1] >= 0.0));
        // any axis is within 20° of a grid axis or of an equivalent of one
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..200 {
            let a = Quat::random_uniform(&mut rng).axis();
            let near = g
                .iter()
                .map(|&v| axis_error(v, a).to_degrees())
                .fold(f64::INFINITY, f64::min);
            assert!(near < 20.0, "{a:?} is {near}° from the grid");
        }
    }

    #[test]
    fn recovers_random_axes_and_centres_without_a_start() {
        let model = AxialModel::torus(180.0, 40.0, 12.0, 5.0).unwrap();
        let coarse = AxialModel::torus(180.0, 40.0, 24.0, 5.0).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut errors = Vec::new();
        for k in 0..6 {
            let q = Quat::random_uniform(&mut rng);
            let locs = particle(q, [1000.0, 2000.0], 100 + k);
            let fit = fit_axis(
                &model,
                Some(&coarse),
                &locs,
                [1020.0, 1985.0],
                None,
                &LocFitOptions::default(),
            )
            .unwrap();
            errors.push(axis_error(fit.axis, q.axis()).to_degrees());
            let shift = (fit.centre_nm[0] - 1000.0).hypot(fit.centre_nm[1] - 2000.0);
            assert!(shift < 15.0, "centre off by {shift} nm");
            assert!(fit.axis[2] >= 0.0);
        }
        errors.sort_by(f64::total_cmp);
        assert!(errors[3] < 6.0, "axis errors {errors:?}");
    }

    #[test]
    fn too_few_or_non_finite_localisations_are_errors() {
        let model = AxialModel::torus(180.0, 40.0, 12.0, 5.0).unwrap();
        let mut locs = particle(Quat::IDENTITY, [0.0; 2], 1);
        let opts = LocFitOptions::default();
        locs.x[3] = f64::NAN;
        assert_eq!(
            fit_axis(&model, None, &locs, [0.0; 2], None, &opts),
            Err(LocFitError::NonFinite)
        );
        locs.x.truncate(3);
        locs.y.truncate(3);
        locs.precision.truncate(3);
        assert_eq!(
            fit_axis(&model, None, &locs, [0.0; 2], None, &opts),
            Err(LocFitError::TooFew(3))
        );
    }
}
