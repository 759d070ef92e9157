//! Poses for every frame against the current structure: a template search
//! over a grid of rotations, as one matrix product of the binned frames with
//! the binned templates (all normalised, so each entry is an NCC), then
//! Levenberg–Marquardt render-and-compare from the best few templates and
//! from the frame's previous pose; the best refined pose wins.

use gemm::Parallelism;
use rayon::prelude::*;

use crate::estimate::pose::refine::{refine, RefineConfig};
use crate::geometry::{Pose, Quat};
use crate::render::kernel::{splat_frame, Scratch};
use crate::render::scene::{FitModel, FitState};

use super::data::{bin_image, standardise};
use super::structure::CropPose;

/// An even grid over SO(3): `dirs` Fibonacci directions of the model z axis
/// times `spins` evenly spaced spins about it, about `count` in all.
pub fn rotation_grid(count: usize) -> Vec<Quat> {
    // equal steps: 4π/dirs ≈ (2π/spins)² → dirs ≈ spins²/π
    let spins = ((count as f64 * std::f64::consts::PI).cbrt().round() as usize).max(4);
    let dirs = (count / spins).max(2);
    let golden = std::f64::consts::PI * (3.0 - 5f64.sqrt());
    let mut out = Vec::with_capacity(dirs * spins);
    for i in 0..dirs {
        let z = 1.0 - (2.0 * i as f64 + 1.0) / dirs as f64;
        let r = (1.0 - z * z).max(0.0).sqrt();
        let a = [
            r * (golden * i as f64).cos(),
            r * (golden * i as f64).sin(),
            z,
        ];
        for k in 0..spins {
            let psi = std::f64::consts::TAU * k as f64 / spins as f64;
            if let Some(q) = Quat::from_symmetry_axis(a, psi) {
                out.push(q);
            }
        }
    }
    out
}

/// What the assignment needs besides the frames and the structure.
pub struct AssignInput<'a> {
    /// Crops at the level's blur (`side × side`).
    pub crops: &'a [Vec<f32>],
    /// Side of the crops.
    pub side: usize,
    /// Render σ at full resolution (PSF and the level's blur).
    pub sigma: f64,
    /// Starting shift of each crop (its centroid).
    pub start_shift: &'a [[f64; 2]],
    /// Previous poses (refined again as one more start), if any.
    pub previous: Option<&'a [CropPose]>,
    /// The rotations searched.
    pub grid: &'a [Quat],
    /// Templates refined per frame.
    pub top: usize,
    /// Levenberg–Marquardt iterations per start.
    pub iterations: usize,
    /// Turns of the model (model frame) tried on top of each previous pose;
    /// the best of them by NCC is refined as one more start. For a cloud
    /// close to a ring these are its near-degenerate alternatives (spins
    /// about its axis, flips), which the grid's best few rarely include.
    pub turns: &'a [Quat],
}

/// The binning that brings the crop to about 32 pixels (the search needs
/// shape, not detail).
fn bin_for(side: usize) -> usize {
    let mut b = 1;
    while side / (b * 2) >= 28 && side.is_multiple_of(b * 2) {
        b *= 2;
    }
    b
}

/// Normalised binned templates of the expanded cloud at every grid rotation, `K × P`.
fn templates(
    pts: &[[f32; 3]],
    w: &[f32],
    side: usize,
    bin: usize,
    sigma: f64,
    grid: &[Quat],
) -> Vec<f32> {
    let s = side / bin;
    let p = s * s;
    // a bin of b×b pixels adds the variance of a uniform b-pixel box
    let sb = ((sigma * sigma + (bin * bin - 1) as f64 / 12.0).sqrt() / bin as f64) as f32;
    let mut out = vec![0.0f32; grid.len() * p];
    out.par_chunks_mut(p).zip(grid.par_iter()).for_each_init(
        || (Scratch::default(), Vec::new()),
        |(scratch, uv), (dst, q)| {
            let rot = q.to_matrix();
            uv.clear();
            let c = s as f64 / 2.0;
            for pt in pts {
                let x = pt.map(|v| v as f64);
                for row in &rot[..2] {
                    uv.push(
                        (c + (row[0] * x[0] + row[1] * x[1] + row[2] * x[2]) / bin as f64) as f32,
                    );
                }
            }
            splat_frame(uv, w, sb, s, s, Parallelism::None, scratch, dst);
            standardise(dst);
        },
    );
    out
}

/// Frames per matrix product (bounds the score matrix to `CHUNK × K`).
const CHUNK: usize = 32;

/// The best `top` grid rotations for every crop, best first, at least 20° apart.
fn search(input: &AssignInput<'_>, pts: &[[f32; 3]], w: &[f32]) -> Vec<Vec<Quat>> {
    let bin = bin_for(input.side);
    let s = input.side / bin;
    let p = s * s;
    let k = input.grid.len();
    let bank = templates(pts, w, input.side, bin, input.sigma, input.grid);
    let min_sep = 20f64.to_radians();
    input
        .crops
        .par_chunks(CHUNK)
        .flat_map_iter(|crops| {
            let n = crops.len();
            let mut lhs = Vec::with_capacity(n * p);
            for c in crops {
                let mut b = bin_image(c, input.side, bin);
                standardise(&mut b);
                lhs.extend(b);
            }
            let mut scores = vec![0.0f32; n * k];
            // SAFETY: scores is n×k row-major, lhs n×p row-major, bank k×p row-major (read as p×k).
            unsafe {
                gemm::gemm(
                    n,
                    k,
                    p,
                    scores.as_mut_ptr(),
                    1,
                    k as isize,
                    false,
                    lhs.as_ptr(),
                    1,
                    p as isize,
                    bank.as_ptr(),
                    p as isize,
                    1,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    Parallelism::None,
                );
            }
            (0..n)
                .map(|f| {
                    let row = &scores[f * k..(f + 1) * k];
                    let mut order: Vec<usize> = (0..k).collect();
                    order.sort_unstable_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
                    let mut picked: Vec<Quat> = Vec::new();
                    for i in order {
                        let q = input.grid[i];
                        if picked.iter().all(|o| o.angle_to(q) > min_sep) {
                            picked.push(q);
                            if picked.len() >= input.top {
                                break;
                            }
                        }
                    }
                    picked
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A pose for every crop against the expanded cloud `pts`, `w`.
pub fn assign(input: &AssignInput<'_>, pts: &[[f32; 3]], w: &[f32]) -> Vec<CropPose> {
    let starts = if input.top > 0 {
        search(input, pts, w)
    } else {
        vec![Vec::new(); input.crops.len()]
    };
    let model = FitModel {
        base: pts.to_vec(),
        weights: w.to_vec(),
        mode: None,
        symmetry: crate::geometry::Symmetry::NONE,
    };
    let cfg = RefineConfig {
        max_iters: input.iterations,
        tolerance: 1e-4,
        fit_sigma: false,
        fit_scale: false,
        fit_shape: false,
    };
    let side = input.side;
    (0..input.crops.len())
        .into_par_iter()
        .map(|f| {
            let crop = &input.crops[f];
            let mut tries: Vec<FitState> = starts[f]
                .iter()
                .map(|&q| FitState {
                    pose: Pose::new(q, input.start_shift[f]),
                    scale: 1.0,
                    sigma: input.sigma,
                    shape: 0.0,
                })
                .collect();
            if let Some(prev) = input.previous {
                let at = |q: Quat| FitState {
                    pose: Pose::new(q, prev[f].shift),
                    scale: 1.0,
                    sigma: input.sigma,
                    shape: 0.0,
                };
                tries.push(at(prev[f].q));
                let mut scratch = Scratch::default();
                let best_turn = input
                    .turns
                    .iter()
                    .map(|&g| {
                        let st = at(prev[f].q * g);
                        let img = crate::render::scene::render_state(
                            &model,
                            &st,
                            side,
                            side,
                            &mut scratch,
                        );
                        (crate::render::scene::ncc(crop, &img), st)
                    })
                    .max_by(|a, b| a.0.total_cmp(&b.0));
                if let Some((_, st)) = best_turn {
                    tries.push(st);
                }
            }
            let mut best = CropPose {
                q: tries.first().map_or(Quat::IDENTITY, |t| t.pose.q),
                shift: input.start_shift[f],
                score: f64::NEG_INFINITY,
            };
            for t in &tries {
                // a crop is finite and at least 8×8 by construction, so refine cannot fail
                let Ok(r) = refine(crop, side, side, &model, t, &cfg) else {
                    continue;
                };
                if r.score > best.score {
                    best = CropPose {
                        q: r.state.pose.q,
                        shift: r.state.pose.shift,
                        score: r.score,
                    };
                }
            }
            best
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_covers_rotations_evenly() {
        let g = rotation_grid(4000);
        assert!((3000..=5000).contains(&g.len()), "{}", g.len());
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(3);
        let worst = (0..300)
            .map(|_| {
                let p = Quat::random_uniform(&mut rng);
                g.iter().map(|q| q.angle_to(p)).fold(f64::MAX, f64::min)
            })
            .fold(0.0f64, f64::max)
            .to_degrees();
        assert!(worst < 16.0, "coverage hole of {worst}°");
    }

    #[test]
    fn an_asymmetric_cloud_is_found_at_its_pose() {
        // three blobs of different brightness: a unique pose
        let pts = vec![
            [8.0f32, 0.0, 0.0],
            [0.0, 5.0, 0.0],
            [0.0, 0.0, 4.0],
            [-3.0, -3.0, 1.0],
        ];
        let w = vec![1.0f32, 0.7, 1.4, 0.5];
        let side = 40;
        let truth = Quat::from_euler_zyz_deg(70.0, 50.0, -30.0);
        let rot = truth.to_matrix();
        let uv: Vec<f32> = pts
            .iter()
            .flat_map(|p| {
                let p = p.map(|x| x as f64);
                [0, 1].map(|r| {
                    (20.0 + 0.4 + rot[r][0] * p[0] + rot[r][1] * p[1] + rot[r][2] * p[2]) as f32
                })
            })
            .collect();
        let mut img = vec![0.0f32; side * side];
        splat_frame(
            &uv,
            &w,
            1.5,
            side,
            side,
            Parallelism::None,
            &mut Scratch::default(),
            &mut img,
        );
        let grid = rotation_grid(3000);
        let crops = vec![img];
        let input = AssignInput {
            crops: &crops,
            side,
            sigma: 1.5,
            start_shift: &[[0.0, 0.0]],
            previous: None,
            grid: &grid,
            top: 4,
            iterations: 20,
            turns: &[],
        };
        let got = assign(&input, &pts, &w);
        let err = got[0].q.angle_to(truth).to_degrees();
        assert!(err < 0.5, "rotation error {err}°, score {}", got[0].score);
        assert!((got[0].shift[0] - 0.4).abs() < 0.05, "{:?}", got[0].shift);
    }
}
