//! The torus's size measured from the particles themselves: the major
//! radius `R` and tube radius `r` that make every particle's localisations
//! most likely ([`profile`]), and each particle's own `R`, the
//! heterogeneity a biologist asks about ("are the rings all 360 nm
//! across?").
//!
//! # Method: the profile likelihood of `R`
//! A pose absorbs part of a size change (in 2D a ring tilted a little more
//! looks a little smaller), so fitting the size at fixed poses and the
//! poses at a fixed size in turn crawls along that ridge and stops short:
//! on synthetic 2D fields it settled 4 % small from a start 17 % small.
//! Instead, for each `R` of a window of five (5 % apart) every particle's
//! pose is fitted afresh (the caller's `round`) and `r` at those poses
//! ([`fit_tube`]); the summed negative log-likelihood against `R` is the
//! profile, whose minimum (a parabola through the best point and its
//! neighbours) is `R` and whose curvature gives its standard error. A
//! minimum at the window's edge moves the window on. Each particle's own
//! `R` comes from its own terms the same way.
//!
//! Within a window every round gathers the localisations from the same
//! disc (the caller's business), so the sums compare the same data.
//!
//! Deterministic: sums run in particle order.

use rayon::prelude::*;

use super::likelihood::{negative_log_likelihood, torus_samples, AxialModel, ParticleLocs};
use super::simplex::{minimise, SimplexOptions};
use super::LocFit;

/// Points of a window of `R`.
const WINDOW: usize = 5;

/// Relative spacing of a window's points.
const SPACING: f64 = 0.05;

/// Most windows [`profile`] moves through.
const MAX_WINDOWS: usize = 4;

/// Fewest particles with their own minimum inside the window for the
/// vertex to sum only those.
const MIN_INSIDE: usize = 3;

/// Step of the finite differences for the tube's standard error, nm.
const H_NM: f64 = 0.5;

/// Settings of the size fits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SizeOptions {
    /// Spacing of the model's surface points at the start size, nm.
    pub spacing_nm: f64,
    /// Label linkage blur, nm.
    pub blur_nm: f64,
    /// Fraction of localisations taken as uniform background.
    pub background: f64,
}

/// One particle at its fitted pose.
#[derive(Clone, Copy, Debug)]
pub struct Posed<'a> {
    pub locs: &'a ParticleLocs,
    pub fit: &'a LocFit,
}

impl Posed<'_> {
    /// The particle's negative log-likelihood under `model` at its pose.
    fn nll(&self, model: &AxialModel, background: f64) -> f64 {
        let c = [
            self.fit.centre_nm[0],
            self.fit.centre_nm[1],
            self.fit.z_centre_nm.unwrap_or(0.0),
        ];
        negative_log_likelihood(model, self.locs, self.fit.axis, c, background)
            .unwrap_or(f64::INFINITY)
    }
}

/// The tube radius that fits particles at their poses best with the major
/// radius held.
#[derive(Clone, Debug, PartialEq)]
pub struct TubeFit {
    /// `r`, nm.
    pub tube_nm: f64,
    /// Its standard error (sandwich over particles), nm; NaN where the
    /// curvature gives none.
    pub se_nm: f64,
    /// Each particle's negative log-likelihood there, in order.
    pub terms: Vec<f64>,
}

/// The `r` that maximises the likelihood of all `particles` at their poses
/// with `R` = `major_nm`, from `start_tube`. `None` without particles or
/// at an unusable size.
pub fn fit_tube(
    particles: &[Posed<'_>],
    major_nm: f64,
    start_tube: f64,
    opts: &SizeOptions,
) -> Option<TubeFit> {
    if particles.is_empty() {
        return None;
    }
    let samples = torus_samples(major_nm, start_tube, opts.spacing_nm)?;
    let terms = |r: f64| -> Option<Vec<f64>> {
        let m = AxialModel::torus_sampled(major_nm, r, samples, opts.blur_nm)?;
        Some(
            particles
                .par_iter()
                .map(|p| p.nll(&m, opts.background))
                .collect(),
        )
    };
    let total = |p: &[f64]| terms(p[0]).map_or(f64::INFINITY, |t| t.iter().sum());
    let m = minimise(
        total,
        &[start_tube],
        &[0.2 * start_tube + 5.0],
        SimplexOptions {
            f_tol: 1e-3,
            max_evals: 80,
        },
    );
    let tube_nm = m.x[0];
    let at = terms(tube_nm)?;
    if !at.iter().all(|v| v.is_finite()) {
        return None;
    }
    Some(TubeFit {
        tube_nm,
        se_nm: sandwich_se(&terms, tube_nm, &at).unwrap_or(f64::NAN),
        terms: at,
    })
}

/// The sandwich standard error at `x` from central differences of the
/// per-particle terms: `√(Σ gᵢ²) / H`.
fn sandwich_se(terms: &impl Fn(f64) -> Option<Vec<f64>>, x: f64, at: &[f64]) -> Option<f64> {
    let (up, down) = (terms(x + H_NM)?, terms(x - H_NM)?);
    let sum = |v: &[f64]| v.iter().sum::<f64>();
    let h = (sum(&up) - 2.0 * sum(at) + sum(&down)) / (H_NM * H_NM);
    let b: f64 = up
        .iter()
        .zip(&down)
        .map(|(u, d)| ((u - d) / (2.0 * H_NM)).powi(2))
        .sum();
    let se = b.sqrt() / h;
    (h > 0.0 && se.is_finite()).then_some(se)
}

/// One point of the profile: `R`, the `r` fitted there and each
/// particle's term (their sum is the profile's value).
#[derive(Clone, Debug, PartialEq)]
pub struct ProfilePoint {
    pub major_nm: f64,
    pub tube: TubeFit,
}

impl ProfilePoint {
    /// The summed negative log-likelihood.
    pub fn total(&self) -> f64 {
        self.tube.terms.iter().sum()
    }
}

/// What [`profile`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    /// `R`, nm: the minimum of the profile.
    pub major_nm: f64,
    /// Its standard error from the profile's curvature, nm.
    pub major_se_nm: f64,
    /// `r` at the point nearest `R`, with its standard error.
    pub tube_nm: f64,
    pub tube_se_nm: f64,
    /// Each particle's own `R` from its own profile (`None` where its
    /// minimum is at the window's edge or it has no fit at every point).
    pub per_particle: Vec<Option<f64>>,
    /// The final window's points.
    pub window: Vec<ProfilePoint>,
    /// Rounds of pose fits run.
    pub rounds: usize,
}

/// Why [`profile`] gave up.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ProfileError {
    #[error(
        "the likelihood kept improving toward R {0:.0} nm, beyond {1}× the start: start nearer"
    )]
    RanAway(f64, f64),
    #[error("no particle could be fitted at R {0:.0} nm")]
    NoFits(f64),
}

/// The vertex of the parabola through `(x-h, a)`, `(x, b)`, `(x+h, c)` and
/// its second derivative.
fn vertex(x: f64, h: f64, [a, b, c]: [f64; 3]) -> (f64, f64) {
    let curv = (a - 2.0 * b + c) / (h * h);
    let shift = if curv > 0.0 {
        (h * (a - c) / (2.0 * (a - 2.0 * b + c))).clamp(-h, h)
    } else {
        0.0
    };
    (x + shift, curv)
}

/// Each point's sum of the terms of the particles marked in `mask`.
fn sums_of(window: &[ProfilePoint], mask: &[bool]) -> Vec<f64> {
    window
        .iter()
        .map(|p| {
            p.tube
                .terms
                .iter()
                .zip(mask)
                .filter(|(_, k)| **k)
                .map(|(v, _)| v)
                .sum()
        })
        .collect()
}

/// The index of the smallest of `values` (the first of equals).
fn argmin(values: &[f64]) -> Option<usize> {
    (0..values.len()).min_by(|&a, &b| values[a].total_cmp(&values[b]))
}

/// The profile likelihood of `R` from `start` (nm). `round(size, reach)`
/// fits every particle's pose with the torus `size` and returns them, one
/// entry per particle in a fixed order (`None` where its fit failed), the
/// localisations gathered as for a torus `reach` (the same for a whole
/// window). `on_round` hears each point. The window moves at most
/// `max_factor` from the start either way.
pub fn profile(
    start: [f64; 2],
    max_factor: f64,
    opts: &SizeOptions,
    mut round: impl FnMut([f64; 2], [f64; 2]) -> Vec<Option<(ParticleLocs, LocFit)>>,
    mut on_round: impl FnMut(usize, &ProfilePoint),
) -> Result<Profile, ProfileError> {
    let (mut centre, mut tube) = (start[0], start[1]);
    let mut rounds = 0;
    for _ in 0..MAX_WINDOWS {
        let rs: Vec<f64> = (0..WINDOW)
            .map(|k| centre * (1.0 + SPACING * (k as f64 - (WINDOW / 2) as f64)))
            .collect();
        let reach = [rs[WINDOW - 1], tube];
        let mut window: Vec<ProfilePoint> = Vec::with_capacity(WINDOW);
        let mut fitted_everywhere: Option<Vec<bool>> = None;
        for &r_major in &rs {
            let particles = round([r_major, tube], reach);
            rounds += 1;
            let ok: Vec<bool> = particles.iter().map(Option::is_some).collect();
            fitted_everywhere = Some(match fitted_everywhere {
                None => ok,
                Some(prev) => prev.iter().zip(&ok).map(|(a, b)| *a && *b).collect(),
            });
            let posed: Vec<Posed<'_>> = particles
                .iter()
                .flatten()
                .map(|(locs, fit)| Posed { locs, fit })
                .collect();
            let t = fit_tube(&posed, r_major, tube, opts).ok_or(ProfileError::NoFits(r_major))?;
            // every particle's term in the fixed order (∞ where it failed)
            let mut terms = t.terms.iter();
            let all: Vec<f64> = particles
                .iter()
                .map(|p| match p {
                    Some(_) => terms.next().copied().unwrap_or(f64::INFINITY),
                    None => f64::INFINITY,
                })
                .collect();
            let point = ProfilePoint {
                major_nm: r_major,
                tube: TubeFit { terms: all, ..t },
            };
            on_round(rounds - 1, &point);
            window.push(point);
        }
        // the profile sums the particles fitted at every point
        let keep = fitted_everywhere.unwrap_or_default();
        let totals = sums_of(&window, &keep);
        let best = argmin(&totals).unwrap_or(WINDOW / 2);
        tube = window[best].tube.tube_nm;
        if best == 0 || best == WINDOW - 1 {
            // the minimum lies beyond: a window further on
            let sign = if best == 0 { -1.0 } else { 1.0 };
            centre = rs[best] * (1.0 + 2.0 * SPACING * sign);
            if (centre / start[0]).max(start[0] / centre) > max_factor {
                return Err(ProfileError::RanAway(centre, max_factor));
            }
            continue;
        }
        let h = centre * SPACING;
        let per_particle: Vec<Option<f64>> = (0..keep.len())
            .map(|i| {
                let t: Vec<f64> = window.iter().map(|p| p.tube.terms[i]).collect();
                if !keep[i] || !t.iter().all(|v| v.is_finite()) {
                    return None;
                }
                let k = argmin(&t)?;
                (k > 0 && k < WINDOW - 1).then(|| vertex(rs[k], h, [t[k - 1], t[k], t[k + 1]]).0)
            })
            .collect();
        // a particle whose own profile falls to the window's edge (a fit
        // that jumped to another pose or took in a neighbour) would pull the
        // sum about: the vertex sums the others when enough are left
        let inside: Vec<bool> = per_particle.iter().map(Option::is_some).collect();
        let robust = sums_of(&window, &inside);
        let robust_best = argmin(&robust);
        let enough = inside.iter().filter(|k| **k).count() >= MIN_INSIDE;
        let (sums, best) = match robust_best {
            Some(b) if enough && b > 0 && b < WINDOW - 1 => (&robust, b),
            _ => (&totals, best),
        };
        let (major_nm, curv) = vertex(rs[best], h, [sums[best - 1], sums[best], sums[best + 1]]);
        let p = &window[best];
        return Ok(Profile {
            major_nm,
            major_se_nm: if curv > 0.0 {
                curv.sqrt().recip()
            } else {
                f64::NAN
            },
            tube_nm: p.tube.tube_nm,
            tube_se_nm: p.tube.se_nm,
            per_particle,
            window,
            rounds,
        });
    }
    Err(ProfileError::RanAway(centre, max_factor))
}

#[cfg(test)]
mod tests {
    use super::super::tests::particle_3d;
    use super::super::{fit_axis, quartiles, LocFitOptions};
    use super::*;
    use crate::geometry::Quat;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// The poses are fitted on a sparser surface than the size (cheaper).
    const POSE_SPACING_NM: f64 = 20.0;

    const OPTS: SizeOptions = SizeOptions {
        spacing_nm: 16.0,
        blur_nm: 5.0,
        background: 0.1,
    };

    /// Particles of particle_3d's torus (R 180, r 40 nm), 3D or (NaN
    /// depth) 2D, oriented at random.
    fn particles(n: usize, depth: f64) -> Vec<ParticleLocs> {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        (0..n)
            .map(|k| {
                let q = Quat::random_uniform(&mut rng);
                particle_3d(q, [0.0, 0.0, depth], 700 + k as u64)
            })
            .collect()
    }

    /// `profile` with every pose fitted from the grid at each size.
    fn run(locs: &[ParticleLocs], start: [f64; 2]) -> Result<Profile, ProfileError> {
        let opts = LocFitOptions {
            grid_axes: 20,
            starts: 1,
            max_evals: 250,
            ..LocFitOptions::default()
        };
        profile(
            start,
            1.6,
            &OPTS,
            |size, _| {
                let model = AxialModel::torus(size[0], size[1], POSE_SPACING_NM, 5.0).unwrap();
                locs.iter()
                    .map(|l| {
                        let f = fit_axis(&model, None, l, [0.0, 0.0], None, &opts).ok()?;
                        Some((l.clone(), f))
                    })
                    .collect()
            },
            |_, _| {},
        )
    }

    #[test]
    fn the_size_is_found_from_a_wrong_start_in_3d_and_in_2d() {
        for depth in [250.0, f64::NAN] {
            let locs = particles(8, depth);
            let p = run(&locs, [150.0, 25.0]).unwrap();
            // a window about 150, its edge 165 best, then one about 181.5
            assert_eq!(p.rounds, 10, "depth {depth}: {p:?}");
            assert!((p.major_nm - 180.0).abs() < 4.0, "depth {depth}: {p:?}");
            assert!((p.tube_nm - 40.0).abs() < 5.0, "depth {depth}: {p:?}");
            assert!(
                p.major_se_nm > 0.1 && p.major_se_nm < 4.0,
                "depth {depth}: {p:?}"
            );
            assert!(
                p.tube_se_nm > 0.05 && p.tube_se_nm < 4.0,
                "depth {depth}: {p:?}"
            );
            // each particle's own R is near the truth
            let own: Vec<f64> = p.per_particle.iter().flatten().copied().collect();
            assert!(own.len() >= 5, "{own:?}");
            let [lo, mid, hi] = quartiles(own).unwrap();
            assert!(
                (mid - 180.0).abs() < 8.0 && lo <= mid && mid <= hi,
                "{lo} {mid} {hi}"
            );
        }
    }

    #[test]
    fn a_larger_ring_gives_a_larger_size_and_a_far_start_is_refused() {
        // the same particles scaled by 1.2 about their centre: R 216
        let locs: Vec<ParticleLocs> = particles(5, 250.0)
            .into_iter()
            .map(|mut l| {
                l.x.iter_mut().for_each(|x| *x *= 1.2);
                l.y.iter_mut().for_each(|y| *y *= 1.2);
                l.z.iter_mut().for_each(|z| *z = 250.0 + 1.2 * (*z - 250.0));
                l
            })
            .collect();
        let p = run(&locs, [216.0, 48.0]).unwrap();
        assert_eq!(p.rounds, 5, "{p:?}");
        assert!((p.major_nm - 216.0).abs() < 5.0, "{p:?}");
        // a start 2.2× too small: the window would leave the allowed range
        let e = run(&locs, [100.0, 20.0]).unwrap_err();
        assert!(matches!(e, ProfileError::RanAway(..)), "{e:?}");
        assert!(e.to_string().contains("start nearer"), "{e}");
    }

    #[test]
    fn the_vertex_of_a_parabola_and_nothing_to_fit() {
        // f = 2 (x − 3)² + 1 at 2, 4, 6 (h = 2 about 4)
        let f = |x: f64| 2.0 * (x - 3.0) * (x - 3.0) + 1.0;
        let (x, c) = vertex(4.0, 2.0, [f(2.0), f(4.0), f(6.0)]);
        assert!(
            (x - 3.0).abs() < 1e-12 && (c - 4.0).abs() < 1e-12,
            "{x} {c}"
        );
        assert_eq!(fit_tube(&[], 180.0, 40.0, &OPTS), None);
        assert_eq!(quartiles([f64::NAN]), None);
    }
}
