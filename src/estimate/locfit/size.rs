//! The torus's size measured from the particles themselves: the major
//! radius `R` and tube radius `r` that make every particle's localisations
//! most likely at its fitted pose ([`fit_size`]), and each particle's own
//! ([`particle_size`]), the heterogeneity a biologist asks about ("are the
//! rings all 360 nm across?").
//!
//! The joint fit sums the negative log-likelihood of all particles; the
//! torus keeps a fixed number of surface points while its size moves, so
//! the sum is smooth in `(R, r)`. Its standard errors are the sandwich
//! estimate over particles (`H⁻¹ B H⁻¹`, `H` the curvature of the sum and `B`
//! the outer products of each particle's gradient): they hold when the
//! particles differ from each other more than the model says, which real
//! ones do.
//!
//! The poses stay fixed here; the caller alternates size and poses
//! (`ParticleSetup::fit_size` in `estimate::particles`).
//!
//! Deterministic: sums run in particle order.

use rayon::prelude::*;

use super::likelihood::{negative_log_likelihood, torus_samples, AxialModel, ParticleLocs};
use super::simplex::{minimise, SimplexOptions};
use super::LocFit;

/// Step of the finite differences for the standard errors, nm.
const H_NM: f64 = 0.5;

/// A torus size fitted to many particles.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SizeFit {
    /// Major radius `R`, nm.
    pub major_nm: f64,
    /// Tube radius `r`, nm.
    pub tube_nm: f64,
    /// Standard errors of `R` and `r`, nm (NaN where the curvature does
    /// not give one).
    pub se_nm: [f64; 2],
    /// Particles it was fitted to.
    pub particles: usize,
}

/// One particle at its fitted pose, for [`fit_size`].
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

/// The sampled torus of size `p = [R, r]` (`None` where unusable).
fn model(p: &[f64], samples: [usize; 2], blur_nm: f64) -> Option<AxialModel> {
    AxialModel::torus_sampled(p[0], p[1], samples, blur_nm)
}

/// The `R` and `r` that maximise the likelihood of all `particles` at
/// their poses, from `start` (nm). `None` when there are no particles or
/// the fit ends at an unusable size.
pub fn fit_size(particles: &[Posed<'_>], start: [f64; 2], opts: &SizeOptions) -> Option<SizeFit> {
    if particles.is_empty() {
        return None;
    }
    let samples = torus_samples(start[0], start[1], opts.spacing_nm)?;
    // each particle's term, in particle order (a deterministic sum)
    let terms = |p: &[f64]| -> Option<Vec<f64>> {
        let m = model(p, samples, opts.blur_nm)?;
        Some(
            particles
                .par_iter()
                .map(|q| q.nll(&m, opts.background))
                .collect(),
        )
    };
    let total = |p: &[f64]| terms(p).map_or(f64::INFINITY, |t| t.iter().sum());
    let m = minimise(
        total,
        &start,
        &[0.05 * start[0], 0.2 * start[1] + 5.0],
        SimplexOptions {
            f_tol: 1e-3,
            max_evals: 200,
        },
    );
    let (major_nm, tube_nm) = (m.x[0], m.x[1]);
    if !m.f.is_finite() || model(&m.x, samples, opts.blur_nm).is_none() {
        return None;
    }
    Some(SizeFit {
        major_nm,
        tube_nm,
        se_nm: sandwich_se(&terms, [major_nm, tube_nm]).unwrap_or([f64::NAN; 2]),
        particles: particles.len(),
    })
}

/// The sandwich standard errors at `x` from central differences of the
/// per-particle terms. `None` where the curvature is not positive definite
/// or a stencil point is unusable.
fn sandwich_se(terms: &impl Fn(&[f64]) -> Option<Vec<f64>>, x: [f64; 2]) -> Option<[f64; 2]> {
    let at = |d0: f64, d1: f64| terms(&[x[0] + d0 * H_NM, x[1] + d1 * H_NM]);
    let (c, r0p, r0m, r1p, r1m) = (
        at(0.0, 0.0)?,
        at(1.0, 0.0)?,
        at(-1.0, 0.0)?,
        at(0.0, 1.0)?,
        at(0.0, -1.0)?,
    );
    let (pp, pm, mp, mm) = (
        at(1.0, 1.0)?,
        at(1.0, -1.0)?,
        at(-1.0, 1.0)?,
        at(-1.0, -1.0)?,
    );
    let sum = |v: &[f64]| v.iter().sum::<f64>();
    let h2 = H_NM * H_NM;
    let h00 = (sum(&r0p) - 2.0 * sum(&c) + sum(&r0m)) / h2;
    let h11 = (sum(&r1p) - 2.0 * sum(&c) + sum(&r1m)) / h2;
    let h01 = (sum(&pp) - sum(&pm) - sum(&mp) + sum(&mm)) / (4.0 * h2);
    let det = h00 * h11 - h01 * h01;
    if !(h00 > 0.0 && det > 0.0) {
        return None;
    }
    let inv = [[h11 / det, -h01 / det], [-h01 / det, h00 / det]];
    // B: the particles' gradients' outer products
    let mut b = [[0.0; 2]; 2];
    for i in 0..c.len() {
        let g = [
            (r0p[i] - r0m[i]) / (2.0 * H_NM),
            (r1p[i] - r1m[i]) / (2.0 * H_NM),
        ];
        for (j, row) in b.iter_mut().enumerate() {
            for (k, v) in row.iter_mut().enumerate() {
                *v += g[j] * g[k];
            }
        }
    }
    // H⁻¹ B H⁻¹, its diagonal
    let var = |j: usize| -> f64 {
        (0..2)
            .flat_map(|k| (0..2).map(move |l| (k, l)))
            .map(|(k, l)| inv[j][k] * b[k][l] * inv[l][j])
            .sum()
    };
    let se = [var(0).sqrt(), var(1).sqrt()];
    se.iter().all(|v| v.is_finite()).then_some(se)
}

/// One particle's own `R` and `r` at its pose, from `start` (the joint
/// fit, say): `None` when its fit ends at an unusable size.
pub fn particle_size(particle: Posed<'_>, start: [f64; 2], opts: &SizeOptions) -> Option<[f64; 2]> {
    let samples = torus_samples(start[0], start[1], opts.spacing_nm)?;
    let m = minimise(
        |p| {
            model(p, samples, opts.blur_nm)
                .map_or(f64::INFINITY, |m| particle.nll(&m, opts.background))
        },
        &start,
        &[0.05 * start[0], 0.2 * start[1] + 5.0],
        SimplexOptions {
            f_tol: 1e-4,
            max_evals: 150,
        },
    );
    (m.f.is_finite() && model(&m.x, samples, opts.blur_nm).is_some()).then(|| [m.x[0], m.x[1]])
}

/// Rounds of [`alternate`].
#[derive(Clone, Debug, PartialEq)]
pub struct Alternation {
    /// The size fitted in the last round, at poses fitted with (nearly) it.
    pub fit: SizeFit,
    /// Rounds run (pose fits of every particle).
    pub rounds: usize,
    /// Whether the size settled (within [`SETTLED_NM`]) before the rounds
    /// ran out.
    pub settled: bool,
}

/// [`alternate`] stops when the size is predicted to move less than this, nm.
pub const SETTLED_NM: f64 = 0.1;

/// Alternates the poses and the size: each round fits every particle's
/// pose with a torus of the current size (`refit`, which returns the
/// particles it fitted) and then the size at those poses ([`fit_size`]),
/// until the size the rounds would settle at is less than [`SETTLED_NM`]
/// away or `max_rounds` have run. Poses fitted with a wrong size absorb
/// much of it (on synthetic fields a round moved the size only a tenth of
/// the way), so plain alternation creeps and its steps understate how far
/// it has to go: from the second round each component takes a secant step
/// toward where the rounds settle (at most four rounds' worth), and that
/// step is what must fall below [`SETTLED_NM`]. `None` when no round gives
/// a size.
pub fn alternate(
    start: [f64; 2],
    max_rounds: usize,
    opts: &SizeOptions,
    mut refit: impl FnMut([f64; 2], usize) -> Vec<(ParticleLocs, LocFit)>,
    mut on_round: impl FnMut(usize, &SizeFit),
) -> Option<Alternation> {
    let mut at = start;
    let mut last: Option<([f64; 2], [f64; 2])> = None; // (at, its step)
    let mut out: Option<Alternation> = None;
    for round in 0..max_rounds.max(1) {
        let particles = refit(at, round);
        let posed: Vec<Posed<'_>> = particles
            .iter()
            .map(|(locs, fit)| Posed { locs, fit })
            .collect();
        let Some(fit) = fit_size(&posed, at, opts) else {
            break;
        };
        on_round(round, &fit);
        let to = [fit.major_nm, fit.tube_nm];
        let step = [to[0] - at[0], to[1] - at[1]];
        // where the rounds would settle, by a secant through this round and
        // the last: g(a) = T(a) − a is zero there; without a usable secant,
        // one plain step
        let mut jump = step;
        if let Some((a0, g0)) = last {
            for k in 0..2 {
                let slope = (step[k] - g0[k]) / (at[k] - a0[k]);
                if slope.is_finite() && slope < -0.05 {
                    jump[k] = (-step[k] / slope).clamp(-4.0 * step[k].abs(), 4.0 * step[k].abs());
                }
            }
        }
        let settled = round > 0 && jump.iter().all(|d| d.abs() < SETTLED_NM);
        out = Some(Alternation {
            fit,
            rounds: round + 1,
            settled,
        });
        if settled {
            break;
        }
        let mut next = [at[0] + jump[0], at[1] + jump[1]];
        if AxialModel::torus_sampled(next[0], next[1], [8, 4], opts.blur_nm).is_none() {
            next = to;
        }
        last = Some((at, step));
        at = next;
    }
    out
}

/// The median and quartiles of `values` (non-finite ones dropped); `None`
/// when none is left.
pub fn quartiles(values: impl IntoIterator<Item = f64>) -> Option<[f64; 3]> {
    let mut v: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    Some([q(0.25), q(0.5), q(0.75)])
}

#[cfg(test)]
mod tests {
    use super::super::tests::particle_3d;
    use super::super::{fit_axis, LocFitOptions};
    use super::*;
    use crate::geometry::Quat;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Particles of particle_3d's torus (R 180, r 40 nm), 3D or (NaN
    /// depth) 2D, each fitted with a torus of the wrong size.
    fn fitted(n: usize, depth: f64, wrong: [f64; 2]) -> Vec<(ParticleLocs, LocFit)> {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let model = AxialModel::torus(wrong[0], wrong[1], POSE_SPACING_NM, 5.0).unwrap();
        let opts = LocFitOptions::default();
        (0..n)
            .map(|k| {
                let q = Quat::random_uniform(&mut rng);
                let locs = particle_3d(q, [0.0, 0.0, depth], 700 + k as u64);
                let fit = fit_axis(&model, None, &locs, [0.0, 0.0], None, &opts).unwrap();
                (locs, fit)
            })
            .collect()
    }

    fn posed(v: &[(ParticleLocs, LocFit)]) -> Vec<Posed<'_>> {
        v.iter().map(|(locs, fit)| Posed { locs, fit }).collect()
    }

    /// The poses are fitted on a sparser surface than the size (cheaper;
    /// the size fit sees every 16 nm).
    const POSE_SPACING_NM: f64 = 20.0;

    const OPTS: SizeOptions = SizeOptions {
        spacing_nm: 16.0,
        blur_nm: 5.0,
        background: 0.1,
    };

    #[test]
    fn the_size_is_found_from_a_wrong_start_in_3d_and_in_2d() {
        for depth in [250.0, f64::NAN] {
            let mut particles = fitted(8, depth, [150.0, 25.0]);
            let run = alternate(
                [150.0, 25.0],
                8,
                &OPTS,
                |size, _| {
                    let model = AxialModel::torus(size[0], size[1], POSE_SPACING_NM, 5.0).unwrap();
                    // from each particle's last axis: a small grid will do
                    let opts = LocFitOptions {
                        grid_axes: 10,
                        starts: 1,
                        max_evals: 250,
                        ..LocFitOptions::default()
                    };
                    for (locs, f) in &mut particles {
                        *f =
                            fit_axis(&model, None, locs, f.centre_nm, Some(f.axis), &opts).unwrap();
                    }
                    particles.clone()
                },
                |_, _| {},
            )
            .unwrap();
            let fit = run.fit;
            assert!(run.settled && run.rounds <= 6, "depth {depth}: {run:?}");
            assert_eq!(fit.particles, 8);
            assert!((fit.major_nm - 180.0).abs() < 3.0, "depth {depth}: {fit:?}");
            assert!((fit.tube_nm - 40.0).abs() < 4.0, "depth {depth}: {fit:?}");
            // the standard errors are of the size a few hundred labels give
            for se in fit.se_nm {
                assert!(se > 0.05 && se < 3.0, "depth {depth}: {fit:?}");
            }
            // and each particle's own R is near the truth
            let own: Vec<f64> = posed(&particles)
                .into_iter()
                .filter_map(|p| particle_size(p, [fit.major_nm, fit.tube_nm], &OPTS))
                .map(|s| s[0])
                .collect();
            assert!(own.len() >= 7, "{own:?}");
            let [lo, mid, hi] = quartiles(own).unwrap();
            assert!(
                (mid - 180.0).abs() < 4.0 && lo < mid && mid < hi,
                "{lo} {mid} {hi}"
            );
        }
    }

    #[test]
    fn a_larger_ring_gives_a_larger_size() {
        // particles of R 180 fitted as the same torus scaled by 1.2: the fit
        // follows the localisations, not the start
        let particles = fitted(6, 250.0, [180.0, 40.0]);
        let scaled: Vec<(ParticleLocs, LocFit)> = particles
            .into_iter()
            .map(|(mut l, mut f)| {
                let [cx, cy] = f.centre_nm;
                let cz = f.z_centre_nm.unwrap();
                l.x.iter_mut().for_each(|x| *x = cx + 1.2 * (*x - cx));
                l.y.iter_mut().for_each(|y| *y = cy + 1.2 * (*y - cy));
                l.z.iter_mut().for_each(|z| *z = cz + 1.2 * (*z - cz));
                f.z_centre_nm = Some(cz);
                (l, f)
            })
            .collect();
        let fit = fit_size(&posed(&scaled), [180.0, 40.0], &OPTS).unwrap();
        assert!((fit.major_nm - 216.0).abs() < 4.0, "{fit:?}");
    }

    #[test]
    fn nothing_to_fit_gives_none() {
        assert_eq!(fit_size(&[], [180.0, 40.0], &OPTS), None);
        let particles = fitted(1, 250.0, [180.0, 40.0]);
        assert_eq!(fit_size(&posed(&particles), [f64::NAN, 40.0], &OPTS), None);
        assert_eq!(quartiles([f64::NAN]), None);
    }
}
