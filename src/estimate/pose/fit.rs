//! Fitting one frame: starting points (CNN estimate or coarse search), then
//! render-and-compare refinement from each, keeping the best score.

use std::time::Instant;

use super::estimator::NetEstimate;
use super::refine::{
    check_frame, fit_axis_standard_error, refine, refine_weighted, RefineConfig, RefineError,
    RefineResult,
};
use super::search::{
    candidate_rotations, circular_peaks, coarse_search, image_moments, model_major_var,
    model_principal_axes, spin_scan,
};
use crate::geometry::{projection_mirror, Pose, Quat};
use crate::render::scene::{FitModel, FitState};

/// Settings of [`fit_frame`].
#[derive(Clone, Debug)]
pub struct FitOptions {
    /// Starting PSF σ in pixels.
    pub sigma: f64,
    /// Rotations scored by the coarse search (when there is no CNN estimate).
    pub search_count: usize,
    /// Best distinct search results that are refined.
    pub refine_top: usize,
    /// Refinement settings.
    pub refine: RefineConfig,
    /// After choosing the best start, refine it once more by least squares
    /// weighted by the expected variance of each pixel, with this floor (a
    /// fraction of the peak signal; see [`refine_weighted`]); `None`: the
    /// uniformly weighted fit is final.
    pub signal_weight_floor: Option<f64>,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            sigma: 1.6,
            search_count: 300,
            refine_top: 3,
            refine: RefineConfig::default(),
            signal_weight_floor: Some(0.01),
        }
    }
}

/// Where the refined start came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartSource {
    /// The network's estimate.
    Network,
    /// The coarse search.
    Search,
}

/// The result of fitting one frame.
#[derive(Clone, Copy, Debug)]
pub struct FitOutcome {
    /// Fitted parameters (rotation in canonical form for axial models).
    pub state: FitState,
    /// NCC of the fit.
    pub score: f64,
    /// Whether the refinement converged.
    pub converged: bool,
    /// Refinement iterations of the chosen start.
    pub iterations: usize,
    /// The axis's standard error from the fit's curvature and residuals,
    /// degrees ([`super::refine::RefineResult::axis_sd_deg`]); NaN when
    /// unknown (a fit read back from an older CSV, a fit to localisations).
    pub axis_sd_deg: f64,
    /// Localisations whose z entered a fit to a 3D table's localisations
    /// (0: a fit to an image, or to localisations without z). Above 0 the
    /// axis's mirror in z is ruled out ([`crate::estimate::locfit::LocFit`]).
    pub z_locs: usize,
    /// Where the chosen start came from.
    pub source: StartSource,
    /// Milliseconds spent on starting points (search) in this call.
    pub start_ms: f64,
    /// Milliseconds spent refining.
    pub refine_ms: f64,
}

/// A neutral starting state from image moments: shift at the intensity
/// centroid and the scale that matches the spread of the particle.
pub fn moment_start(
    frame: &[f32],
    width: usize,
    height: usize,
    model: &FitModel,
    sigma: f64,
    shape: f64,
) -> FitState {
    let mut st = FitState {
        pose: Pose::default(),
        scale: 1.0,
        sigma,
        shape,
    };
    if let Some(m) = image_moments(frame, width, height) {
        st.pose.shift = m.centroid;
        let pts: Vec<[f32; 3]> = match &model.mode {
            Some(dirs) => model
                .base
                .iter()
                .zip(dirs)
                .map(|(p, d)| [0, 1, 2].map(|k| p[k] + shape as f32 * d[k]))
                .collect(),
            None => model.base.clone(),
        };
        let mv = model_major_var(&pts, &model.weights);
        if mv > 0.0 {
            st.scale = ((m.major_var - sigma * sigma).max(1.0) / mv)
                .sqrt()
                .clamp(0.1, 10.0);
        }
    }
    st
}

/// The refinement start for a network estimate. For a torus model built with
/// major radius `template_major` px, the estimated radii become its scale and
/// tube radius; rigid models keep scale 1.
pub fn start_from_estimate(e: &NetEstimate, model: &FitModel, template_major: f64) -> FitState {
    let scale = if model.mode.is_some() && template_major > 0.0 {
        (e.major_px / template_major).clamp(0.1, 10.0)
    } else {
        1.0
    };
    FitState {
        pose: Pose::new(e.q, e.shift),
        scale,
        sigma: e.sigma.clamp(0.5, 10.0),
        shape: (e.tube_px / scale).max(0.0),
    }
}

/// Fits one frame. With `start` (a network estimate), refinement starts there
/// (and from its projection mirror when the model is not mirror-symmetric,
/// since that is the image's closest look-alike); without it, a coarse search
/// over the symmetry-reduced rotations supplies the starts.
pub fn fit_frame(
    frame: &[f32],
    width: usize,
    height: usize,
    model: &FitModel,
    opts: &FitOptions,
    start: Option<FitState>,
) -> Result<FitOutcome, RefineError> {
    check_frame(frame, width, height)?;
    let t0 = Instant::now();
    let default_shape = model
        .mode
        .as_ref()
        .map_or(0.0, |_| 0.3 * model_radius(model));
    let (starts, source) = match start {
        Some(s) => {
            let mut v = vec![s];
            if !model.symmetry.mirror_z {
                v.push(FitState {
                    pose: Pose::new(projection_mirror(s.pose.q), s.pose.shift),
                    ..s
                });
            }
            (v, StartSource::Network)
        }
        None => {
            let base = moment_start(frame, width, height, model, opts.sigma, default_shape);
            let cands = candidate_rotations(&model.symmetry, opts.search_count);
            let ranked = coarse_search(frame, width, height, model, &base, &cands);
            let mut chosen: Vec<Quat> = Vec::new();
            for (_, q) in ranked {
                if chosen.len() >= opts.refine_top.max(1) {
                    break;
                }
                if chosen
                    .iter()
                    .all(|c| model.symmetry.rotation_error(*c, q).to_degrees() > 10.0)
                {
                    chosen.push(q);
                }
            }
            let v = chosen
                .into_iter()
                .map(|q| FitState {
                    pose: Pose::new(q, base.pose.shift),
                    ..base
                })
                .collect();
            (v, StartSource::Search)
        }
    };
    let start_ms = t0.elapsed().as_secs_f64() * 1e3;
    let t1 = Instant::now();
    let mut best: Option<super::refine::RefineResult> = None;
    for s in &starts {
        let r = refine(frame, width, height, model, s, &opts.refine)?;
        if best.as_ref().is_none_or(|b| r.score > b.score) {
            best = Some(r);
        }
    }
    let mut best = best.ok_or_else(|| RefineError::BadFrame("no starting pose".into()))?;
    if let Some(axes) = spin_axis(model) {
        best = spin_basins(frame, width, height, model, &opts.refine, best, axes)?;
    }
    if let Some(floor) = opts.signal_weight_floor {
        best = refine_weighted(
            frame,
            width,
            height,
            model,
            &best.state,
            &opts.refine,
            floor,
        )?;
    }
    // the weighted pass computes it; a plain fit's needs one more linearisation
    let axis_sd_deg = match opts.signal_weight_floor {
        Some(_) => best.axis_sd_deg,
        None => {
            fit_axis_standard_error(frame, width, height, model, &best.state, &opts.refine, None)
        }
    };
    let refine_ms = t1.elapsed().as_secs_f64() * 1e3;
    let mut state = best.state;
    state.pose.q = canonical_rotation(model, state.pose.q);
    Ok(FitOutcome {
        state,
        score: best.score,
        converged: best.converged,
        iterations: best.iterations,
        axis_sd_deg,
        z_locs: 0,
        source,
        start_ms,
        refine_ms,
    })
}

/// Spin step of the scan about a rigid particle's own axis, degrees.
const SPIN_STEP_DEG: f64 = 2.0;
/// Best distinct spins of that scan that are refined.
const SPIN_REFINES: usize = 4;

/// A nearly flat rigid particle (a sparsely labelled ring) projects almost
/// alike in four families of pose: the fit, its projection mirror (world z
/// mirrored, the particle mirrored across its own plane), and the two with
/// the particle flipped over (its in-plane pattern seen from behind), and in
/// each there are basins of spin about a PSF wide along the ring. Scans the
/// spin about the particle's `axis` in all four, refines the best other
/// basins and keeps the best fit.
fn spin_basins(
    frame: &[f32],
    width: usize,
    height: usize,
    model: &FitModel,
    refine_opts: &RefineConfig,
    mut best: RefineResult,
    [axis, in_plane]: [[f64; 3]; 2],
) -> Result<RefineResult, RefineError> {
    use std::f64::consts::PI;
    // M·R·S with M the mirror in world z and S the mirror across the
    // particle's plane: both are −(a half turn), so this is a rotation
    let mirror = |q: Quat| {
        Quat::from_axis_angle([0.0, 0.0, 1.0], PI)
            .mul(q)
            .mul(Quat::from_axis_angle(axis, PI))
    };
    let q = best.state.pose.q;
    let flipped = q.mul(Quat::from_axis_angle(in_plane, PI));
    let mut peaks: Vec<(f64, Quat)> = Vec::new();
    for (k, from) in [q, mirror(q), flipped, mirror(flipped)]
        .into_iter()
        .enumerate()
    {
        let st = FitState {
            pose: Pose::new(from, best.state.pose.shift),
            ..best.state
        };
        let scan = spin_scan(frame, width, height, model, &st, axis, SPIN_STEP_DEG);
        let scores: Vec<f64> = scan.iter().map(|s| s.0).collect();
        let n = scan.len();
        peaks.extend(
            circular_peaks(&scores)
                .into_iter()
                // the fit's own basin is already refined
                .filter(|&i| k > 0 || i.min(n - i) > 1)
                .map(|i| scan[i]),
        );
    }
    peaks.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (_, q) in peaks.into_iter().take(SPIN_REFINES) {
        let s = FitState {
            pose: Pose::new(q, best.state.pose.shift),
            ..best.state
        };
        let r = refine(frame, width, height, model, &s, refine_opts)?;
        if r.score > best.score {
            best = r;
        }
    }
    Ok(best)
}

/// The axes of the spin scan of a rigid, non-axial model, in the model
/// frame: its least-variance principal axis (a ring's normal), scanned
/// about, and its largest-variance one, in the plane, flipped about.
/// `None` for axial models (their spin is invisible) and shape-mode models.
fn spin_axis(model: &FitModel) -> Option<[[f64; 3]; 2]> {
    if model.symmetry.is_axial() || model.mode.is_some() {
        return None;
    }
    model_principal_axes(&model.base, &model.weights).map(|(_, v)| [v[2], v[0]])
}

/// For axial models the spin is invisible: report the rotation with the
/// canonical axis (z ≥ 0, x ≥ 0 for a torus) and zero spin; otherwise the
/// quaternion with w ≥ 0.
pub fn canonical_rotation(model: &FitModel, q: Quat) -> Quat {
    if model.symmetry.is_axial() {
        Quat::from_symmetry_axis(model.symmetry.canonical_axis(q.axis()), 0.0).unwrap_or(q)
    } else {
        q.canonical()
    }
}

fn model_radius(model: &FitModel) -> f64 {
    model
        .base
        .iter()
        .map(|p| ((p[0] * p[0] + p[1] * p[1] + p[2] * p[2]) as f64).sqrt())
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::Symmetry;
    use crate::render::kernel::Scratch;
    use crate::render::scene::render_state;

    #[test]
    fn search_then_refine_finds_a_torus_axis_from_scratch() {
        let model = FitModel::torus(20.0, 5.0, 1.6);
        let truth = FitState {
            pose: Pose::new(Quat::from_euler_zyz_deg(-70.0, 38.0, 12.0), [3.0, -2.0]),
            scale: 1.15,
            sigma: 1.8,
            shape: 4.5,
        };
        let frame: Vec<f32> = render_state(&model, &truth, 96, 96, &mut Scratch::default())
            .iter()
            .map(|v| 500.0 * v + 100.0)
            .collect();
        let fit = fit_frame(&frame, 96, 96, &model, &FitOptions::default(), None).unwrap();
        let err = Symmetry::TORUS
            .axis_error(fit.state.pose.q, truth.pose.q)
            .to_degrees();
        assert!(err < 0.1, "axis error {err}°, score {}", fit.score);
        assert_eq!(fit.source, StartSource::Search);
        let a = fit.state.pose.q.axis();
        assert!(a[2] >= 0.0 && a[0] >= 0.0, "axis {a:?} not canonical");
    }

    /// A sparsely labelled ring fitted with its own exact sites (a C1
    /// model): the spin about its axis is resolved by the spin scan, which
    /// the coarse search alone misses (it lands a few degrees of spin off,
    /// in a neighbouring basin of the lumps).
    #[test]
    fn an_exact_sparse_cloud_is_fitted_to_the_right_spin() {
        use crate::shapes::{Model, TorusSpec, Units};
        let spec = TorusSpec {
            major_radius: 20.0,
            tube_radius: 5.0,
            units: Units::Px,
        };
        let sites = Model::torus(spec, 300, 7).unwrap();
        let model = FitModel::rigid(&Model {
            symmetry: Symmetry::NONE,
            ..sites
        });
        let opts = FitOptions::default();
        for (k, euler) in [
            [20.0, 50.0, 70.0],
            [-120.0, 75.0, 10.0],
            [200.0, 30.0, -40.0],
        ]
        .into_iter()
        .enumerate()
        {
            let truth = FitState {
                pose: Pose::new(
                    Quat::from_euler_zyz_deg(euler[0], euler[1], euler[2]),
                    [1.5, -1.0],
                ),
                scale: 1.0,
                sigma: 1.6,
                shape: 0.0,
            };
            let frame: Vec<f32> = render_state(&model, &truth, 96, 96, &mut Scratch::default())
                .iter()
                .map(|v| 400.0 * v + 20.0)
                .collect();
            let fit = fit_frame(&frame, 96, 96, &model, &opts, None).unwrap();
            let err = Symmetry::NONE
                .rotation_error(fit.state.pose.q, truth.pose.q)
                .to_degrees();
            assert!(
                err < 0.5,
                "pose {k}: rotation error {err}°, score {}",
                fit.score
            );
        }
    }
}
