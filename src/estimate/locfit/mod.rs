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
//! When the localisations have a z (3D SMLM), the centre's z is a fifth
//! parameter and the mirror is no longer equivalent: the grid covers the
//! half sphere (`n ≡ −n` only), a given start is tried with its mirror,
//! and the axis comes out with its tilt direction known.
//!
//! Around a fit: the axis's standard error from the likelihood
//! ([`uncertainty`]) and, for 3D tables, how well z agrees with the model
//! (a refractive-index factor, [`zscale`]); over many particles, the
//! torus's own size ([`size`]).
//!
//! Each localisation visits only the surface points within its cut-off
//! radius, found through a lateral grid of the posed points (`grid`).
//!
//! Deterministic; no randomness, no threads (callers parallelise over
//! particles).

mod grid;
pub mod likelihood;
pub mod simplex;
pub mod size;
pub mod uncertainty;
pub mod zscale;

use crate::geometry::Vec3;
use crate::geometry::{cross, normalize};
use crate::io::locs::LocTable;

pub use likelihood::{log_densities, negative_log_likelihood, AxialModel, ParticleLocs};
use simplex::{minimise, SimplexOptions};
pub use uncertainty::axis_standard_error;
pub use zscale::{fit_z_scale, ZFit, ZScale};

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
    /// Fit the localisations' z, when the table has one.
    pub use_z: bool,
    /// Axial precision as a multiple of the lateral one, where the table
    /// states none (astigmatic 3D gives about 2–3×).
    pub z_precision_factor: f64,
    /// Factor applied to the table's z (and its axial precision) first: a
    /// correction for refractive-index mismatch that the localisation
    /// software did not apply (about 0.7–0.9 for oil objectives imaging in
    /// water). 1 takes z as written.
    pub z_scale: f64,
    /// Negate the table's z first: for tables whose z grows toward the
    /// viewer. PoseScope's z points into the image (x right, y down,
    /// z = x × y); a flipped z mirrors every tilt direction, and nothing in
    /// the data can tell (a mirrored particle fits a flipped z exactly).
    pub flip_z: bool,
}

impl LocFitOptions {
    /// What the table's z is multiplied by before the fit:
    /// [`z_scale`](Self::z_scale), negated with [`flip_z`](Self::flip_z).
    pub fn z_factor(&self) -> f64 {
        if self.flip_z {
            -self.z_scale
        } else {
            self.z_scale
        }
    }
}

impl Default for LocFitOptions {
    fn default() -> Self {
        Self {
            background: 0.1,
            grid_axes: 60,
            starts: 2,
            max_evals: 400,
            default_precision_nm: 10.0,
            use_z: true,
            z_precision_factor: 2.5,
            z_scale: 1.0,
            flip_z: false,
        }
    }
}

/// The fitted pose of one particle.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LocFit {
    /// Unit symmetry axis, canonical: `z ≥ 0`. Without z the mirror
    /// `(x, y, −z)` is equivalent; with z ([`z_locs`](Self::z_locs) > 0) it is
    /// not, and `(x, y)` points the way the axis tilts.
    pub axis: Vec3,
    /// Centre, nm (the table's frame).
    pub centre_nm: [f64; 2],
    /// The centre's z, nm, when the fit used z: in the fit's frame, the
    /// table's z × [`LocFitOptions::z_factor`].
    pub z_centre_nm: Option<f64>,
    /// Localisations whose z entered the fit (0: a 2D fit).
    pub z_locs: usize,
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
/// their precisions (or `opts.default_precision_nm`) and, when the table has
/// z and `opts.use_z`, their z (× [`LocFitOptions::z_factor`]) with the table's axial
/// precision (× the same) or, where it states none,
/// `opts.z_precision_factor` × the lateral one.
pub fn gather(
    table: &LocTable,
    indices: &[usize],
    centre: [f64; 2],
    radius_nm: f64,
    opts: &LocFitOptions,
) -> ParticleLocs {
    let mut out = ParticleLocs {
        area_nm2: std::f64::consts::PI * radius_nm * radius_nm,
        depth_nm: 2.0 * radius_nm,
        ..ParticleLocs::default()
    };
    let z = table.z_nm.as_ref().filter(|_| opts.use_z);
    let precision_z = table.precision_z_nm.as_ref();
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
            .unwrap_or(opts.default_precision_nm);
        out.x.push(x);
        out.y.push(y);
        out.precision.push(p);
        if let Some(z) = z {
            out.z.push(opts.z_factor() * f64::from(z[i]));
            let pz = precision_z
                .map(|v| opts.z_scale.abs() * f64::from(v[i]))
                .filter(|p| p.is_finite() && *p > 0.0)
                .unwrap_or(opts.z_precision_factor * p);
            out.precision_z.push(pz);
        }
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
    // z enters when enough localisations have one
    let z_locs = locs.with_z();
    let depth = (z_locs >= MIN_LOCS).then(|| locs.median_z()).flatten();
    let c0 = [centre0[0], centre0[1], depth.unwrap_or(0.0)];
    let nll_of = |m: &AxialModel, axis: Vec3, c: [f64; 3]| {
        negative_log_likelihood(m, locs, axis, c, opts.background).unwrap_or(f64::INFINITY)
    };
    let first = coarse.unwrap_or(model);
    let nll = |axis: Vec3, c: [f64; 3]| nll_of(first, axis, c);
    let nll_fine = |axis: Vec3, c: [f64; 3]| nll_of(model, axis, c);
    // 1. the grid
    let grid = match depth {
        None => quarter_sphere(opts.grid_axes),
        Some(_) => half_sphere(2 * opts.grid_axes),
    };
    let mut scored: Vec<(f64, Vec3)> = grid.into_iter().map(|a| (nll(a, c0), a)).collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    // with z the given start is tried with its mirror: one grid start fewer
    // keeps the simplex runs as many as in 2D (as accurate on seeds 301–310,
    // 12 % faster)
    let given = start.and_then(normalize);
    let grid_starts = match (depth, given) {
        (Some(_), Some(_)) => opts.starts.saturating_sub(1).max(1),
        _ => opts.starts,
    };
    let mut starts: Vec<Vec3> = scored.iter().take(grid_starts).map(|s| s.1).collect();
    if let Some(s) = given {
        starts.insert(0, s);
        if depth.is_some() {
            // an image cannot tell the start from its mirror; z can
            starts.insert(1, [s[0], s[1], -s[2]]);
        }
    }
    // 2. a simplex from each start, 3. a restart from the best
    let fit_depth = depth.is_some();
    let mut evals = scored.len();
    let mut best: Option<(f64, Vec3, [f64; 3])> = None;
    for s in starts {
        let (f, a, c, e) = refine(&nll, s, c0, fit_depth, opts.max_evals);
        evals += e;
        if best.is_none_or(|b| f < b.0) {
            best = Some((f, a, c));
        }
    }
    let (_, a0, c0) = best.ok_or(LocFitError::NonFinite)?;
    let f0 = nll_fine(a0, c0);
    let (f, a, c, e) = refine(&nll_fine, a0, c0, fit_depth, opts.max_evals);
    evals += e;
    let (f, a, c) = if f <= f0 { (f, a, c) } else { (f0, a0, c0) };
    if !f.is_finite() {
        return Err(LocFitError::NonFinite);
    }
    // −n is always the same particle; the mirror only without z
    let axis = match (a[2] < 0.0, fit_depth) {
        (false, _) => a,
        (true, false) => [a[0], a[1], -a[2]],
        (true, true) => [-a[0], -a[1], -a[2]],
    };
    Ok(LocFit {
        axis,
        centre_nm: [c[0], c[1]],
        z_centre_nm: fit_depth.then_some(c[2]),
        z_locs: if fit_depth { z_locs } else { 0 },
        nll_per_loc: f / locs.len() as f64,
        evals,
    })
}

/// One simplex run in the tangent plane of `axis`: parameters are two tilts
/// (radians, roughly) and the centre shift (nm), laterally and, with
/// `depth`, in z.
fn refine(
    nll: &impl Fn(Vec3, [f64; 3]) -> f64,
    axis: Vec3,
    centre: [f64; 3],
    depth: bool,
    max_evals: usize,
) -> (f64, Vec3, [f64; 3], usize) {
    let plane = TangentPlane::new(axis);
    let at = |p: &[f64]| -> (Vec3, [f64; 3]) {
        let dz = p.get(4).copied().unwrap_or(0.0);
        (
            plane.tilted(p[0], p[1]).unwrap_or(axis),
            [centre[0] + p[2], centre[1] + p[3], centre[2] + dz],
        )
    };
    let steps = [0.12, 0.12, 15.0, 15.0, 30.0];
    let n = if depth { 5 } else { 4 };
    let m = minimise(
        |p| {
            let (a, c) = at(p);
            nll(a, c)
        },
        &[0.0; 5][..n],
        &steps[..n],
        SimplexOptions {
            f_tol: 1e-4,
            max_evals,
        },
    );
    let (a, c) = at(&m.x);
    (m.f, a, c, m.evals)
}

/// The plane tangent to an axis, in which the fits move it: an axis tilted
/// by `(t1, t2)` (radians, roughly) is `axis + t1·e1 + t2·e2`, normalised.
struct TangentPlane {
    axis: Vec3,
    e1: Vec3,
    e2: Vec3,
}

impl TangentPlane {
    /// Two unit vectors perpendicular to `axis` and to each other.
    fn new(axis: Vec3) -> Self {
        let helper = if axis[0].abs() < 0.9 {
            [1.0, 0.0, 0.0]
        } else {
            [0.0, 1.0, 0.0]
        };
        let e1 = normalize(cross(axis, helper)).unwrap_or([0.0, 1.0, 0.0]);
        let e2 = normalize(cross(axis, e1)).unwrap_or([0.0, 0.0, 1.0]);
        Self { axis, e1, e2 }
    }

    /// The axis tilted by `t1` along `e1` and `t2` along `e2` (`None` for a
    /// zero vector).
    fn tilted(&self, t1: f64, t2: f64) -> Option<Vec3> {
        normalize([0, 1, 2].map(|i| self.axis[i] + t1 * self.e1[i] + t2 * self.e2[i]))
    }
}

/// The lower quartile, median and upper quartile of `values` (non-finite
/// ones dropped; each the nearest-rank value); `None` when none is left.
pub fn quartiles(values: impl IntoIterator<Item = f64>) -> Option<[f64; 3]> {
    let mut v: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    Some([q(0.25), q(0.5), q(0.75)])
}

/// About `n` axes spread evenly (a Fibonacci lattice) over the quarter
/// sphere `z ≥ 0, y ≥ 0`: one of each set of directions an orthographic
/// image of an axial particle cannot tell apart.
pub fn quarter_sphere(n: usize) -> Vec<Vec3> {
    fibonacci(4 * n.max(1))
        .filter(|v| v[2] >= 0.0 && v[1] >= 0.0)
        .collect()
}

/// About `n` axes spread evenly over the half sphere `z ≥ 0`: one of each
/// pair `±n`, all a 3D view of an axial particle can tell apart.
pub fn half_sphere(n: usize) -> Vec<Vec3> {
    fibonacci(2 * n.max(1)).filter(|v| v[2] >= 0.0).collect()
}

/// `total` unit vectors on a Fibonacci lattice over the sphere.
fn fibonacci(total: usize) -> impl Iterator<Item = Vec3> {
    let golden = std::f64::consts::PI * (3.0 - 5f64.sqrt());
    (0..total).map(move |k| {
        let z = 1.0 - (k as f64 + 0.5) / total as f64 * 2.0;
        let r = (1.0 - z * z).max(0.0).sqrt();
        let phi = golden * k as f64;
        [r * phi.cos(), r * phi.sin(), z]
    })
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
    pub(super) fn particle(q: Quat, centre: [f64; 2], seed: u64) -> ParticleLocs {
        particle_3d(q, [centre[0], centre[1], f64::NAN], seed)
    }

    /// The same with each localisation's z (σz 2.5 × the lateral σ) about
    /// a centre at depth `centre[2]`; a NaN depth gives a 2D table.
    pub(super) fn particle_3d(q: Quat, centre: [f64; 3], seed: u64) -> ParticleLocs {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let rot = q.to_matrix();
        let mut out = ParticleLocs {
            area_nm2: std::f64::consts::PI * 300.0 * 300.0,
            ..ParticleLocs::default()
        };
        out.depth_nm = 600.0;
        let e = Normal::new(0.0, 1.0).unwrap();
        for _ in 0..70 {
            let u = rng.random_range(0.0..std::f64::consts::TAU);
            let v = rng.random_range(0.0..std::f64::consts::TAU);
            let m = [
                (180.0 + 40.0 * v.cos()) * u.cos(),
                (180.0 + 40.0 * v.cos()) * u.sin(),
                40.0 * v.sin(),
            ];
            let cam = [0, 1, 2].map(|r| rot[r][0] * m[0] + rot[r][1] * m[1] + rot[r][2] * m[2]);
            for _ in 0..4 {
                let p = rng.random_range(5.0..15.0);
                out.x.push(centre[0] + cam[0] + p * e.sample(&mut rng));
                out.y.push(centre[1] + cam[1] + p * e.sample(&mut rng));
                out.precision.push(p);
                if centre[2].is_finite() {
                    out.z
                        .push(centre[2] + cam[2] + 2.5 * p * e.sample(&mut rng));
                    out.precision_z.push(2.5 * p);
                }
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
    fn gather_scales_and_flips_z_but_not_its_precision_sign() {
        let table = LocTable {
            x_nm: vec![0.0, 10.0, 20.0, 900.0],
            y_nm: vec![0.0; 4],
            z_nm: Some(vec![10.0, -20.0, f32::NAN, 5.0]),
            precision_nm: Some(vec![4.0; 4]),
            precision_z_nm: Some(vec![30.0, f32::NAN, 6.0, 1.0]),
            ..LocTable::default()
        };
        let opts = LocFitOptions {
            z_scale: 2.0,
            flip_z: true,
            ..LocFitOptions::default()
        };
        assert_eq!(opts.z_factor(), -2.0);
        let locs = gather(&table, &[0, 1, 2, 3], [0.0, 0.0], 100.0, &opts);
        // the fourth is outside the radius
        assert_eq!(locs.x, [0.0, 10.0, 20.0]);
        assert_eq!(&locs.z[..2], [-20.0, 40.0]);
        assert!(locs.z[2].is_nan(), "a missing z stays missing");
        // precisions scale by |factor|; a missing one is 2.5 × lateral
        assert_eq!(locs.precision_z, [60.0, 10.0, 12.0]);
    }

    #[test]
    fn z_tells_an_axis_from_its_mirror() {
        let model = AxialModel::torus(180.0, 40.0, 12.0, 5.0).unwrap();
        let coarse = AxialModel::torus(180.0, 40.0, 24.0, 5.0).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let (mut right, mut n) = (0, 0);
        while n < 8 {
            let q = Quat::random_uniform(&mut rng);
            let truth = q.axis();
            // face-on particles have no mirror to tell apart
            if truth[2].abs() > 0.9 {
                continue;
            }
            n += 1;
            let locs = particle_3d(q, [500.0, -300.0, 250.0], 200 + n);
            // the image fit's axis, mirrored: the start an image gives half the time
            let start = [truth[0], truth[1], -truth[2]];
            let fit = fit_axis(
                &model,
                Some(&coarse),
                &locs,
                [510.0, -290.0],
                Some(start),
                &LocFitOptions::default(),
            )
            .unwrap();
            assert_eq!(fit.z_locs, locs.len());
            let z = fit.z_centre_nm.unwrap();
            assert!((z - 250.0).abs() < 15.0, "z centre {z}");
            assert!(fit.axis[2] >= 0.0);
            // the line through the axis, not its mirror
            let strict = fit.axis.iter().zip(&truth).map(|(a, b)| a * b).sum::<f64>();
            let mirror = axis_error(fit.axis, truth).to_degrees();
            let line = strict.abs().min(1.0).acos().to_degrees();
            assert!(mirror < 8.0, "axis error {mirror}°");
            right += usize::from(line < 8.0);
        }
        assert_eq!(right, 8, "the mirror was chosen");
        // without z (or told to ignore it) the fit is the 2D one
        let q = Quat::from_symmetry_axis([0.6, 0.0, 0.8], 0.0).unwrap();
        let locs = particle_3d(q, [0.0, 0.0, 100.0], 5);
        let opts = LocFitOptions {
            use_z: false,
            ..LocFitOptions::default()
        };
        let mut flat = locs.clone();
        flat.z.clear();
        flat.precision_z.clear();
        let fit = fit_axis(&model, Some(&coarse), &flat, [0.0; 2], None, &opts).unwrap();
        assert_eq!((fit.z_locs, fit.z_centre_nm), (0, None));
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
