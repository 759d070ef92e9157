//! Generated models: tori (random and gridded) and an NPC-like ring of blobs.
//!
//! The torus surface is parametrised by the azimuth `u` about model z and
//! the tube angle `v` (v = 0 on the outer equator):
//!
//! `p(u, v) = ((R + r·cos v)·cos u, (R + r·cos v)·sin u, r·sin v)`.
//!
//! Its area element is `r·(R + r·cos v) du dv`, so area-uniform points have
//! `u` uniform and `v` with density ∝ `R + r·cos v`: the outer half
//! (cos v > 0) holds a fraction `(πR + 2r)/(2πR)` of the area.

use std::f64::consts::{PI, TAU};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::{Model, ShapeError, TorusSpec, Units, MAX_GENERATED_POINTS};
use crate::geometry::{Symmetry, SymmetryGroup};

fn check_spec(spec: &TorusSpec) -> Result<(), ShapeError> {
    let (big, small) = (spec.major_radius, spec.tube_radius);
    if !(big.is_finite() && big > 0.0) {
        return Err(ShapeError::invalid(
            "major radius",
            format!("{big} (must be finite and > 0)"),
        ));
    }
    if !(small.is_finite() && small >= 0.0 && small < big) {
        return Err(ShapeError::invalid(
            "tube radius",
            format!("{small} (must satisfy 0 ≤ r < R = {big})"),
        ));
    }
    Ok(())
}

fn check_count(what: &'static str, n: usize) -> Result<(), ShapeError> {
    if n == 0 || n > MAX_GENERATED_POINTS {
        return Err(ShapeError::invalid(
            what,
            format!("{n} (must be in 1..={MAX_GENERATED_POINTS})"),
        ));
    }
    Ok(())
}

/// Surface point at azimuth `u`, tube angle `v`.
fn torus_point(big: f64, small: f64, u: f64, v: f64) -> [f64; 3] {
    let rho = big + small * v.cos();
    [rho * u.cos(), rho * u.sin(), small * v.sin()]
}

/// A tube angle with density ∝ R + r·cos v on [0, 2π), by rejection
/// (acceptance rate R/(R + r) ≥ 1/2).
fn sample_tube_angle<G: Rng + ?Sized>(rng: &mut G, big: f64, small: f64) -> f64 {
    if small == 0.0 {
        return 0.0;
    }
    loop {
        let v = TAU * rng.random::<f64>();
        if rng.random::<f64>() * (big + small) < big + small * v.cos() {
            return v;
        }
    }
}

/// `n` area-uniform torus points with azimuth uniform in `[u0, u0 + span)`.
fn sample_torus(spec: &TorusSpec, n: usize, u0: f64, span: f64, seed: u64) -> Vec<[f32; 3]> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (big, small) = (spec.major_radius, spec.tube_radius);
    (0..n)
        .map(|_| {
            let u = u0 + span * rng.random::<f64>();
            let v = sample_tube_angle(&mut rng, big, small);
            torus_point(big, small, u, v).map(|c| c as f32)
        })
        .collect()
}

/// Inverse of the tube-angle CDF `F(v) = (R·(v + π) + r·sin v)/(2πR)` on
/// (−π, π], for `p` in (0, 1). Safeguarded Newton iteration.
fn tube_angle_quantile(big: f64, small: f64, p: f64) -> f64 {
    let f = |v: f64| (big * (v + PI) + small * v.sin()) / (TAU * big) - p;
    let (mut lo, mut hi) = (-PI, PI);
    let mut v = TAU * p - PI; // exact for r = 0
    for _ in 0..100 {
        let fv = f(v);
        if fv == 0.0 {
            break;
        }
        if fv < 0.0 {
            lo = v;
        } else {
            hi = v;
        }
        let d = (big + small * v.cos()) / (TAU * big);
        let mut next = v - fv / d;
        if !(next > lo && next < hi) {
            next = 0.5 * (lo + hi);
        }
        if (next - v).abs() < 1e-15 {
            v = next;
            break;
        }
        v = next;
    }
    v
}

impl Model {
    /// `n` points uniformly distributed over the *area* of a torus surface
    /// (azimuth uniform, tube angle by rejection with density ∝ R + r·cos v),
    /// axis along model z, centred at the origin, weights 1.
    ///
    /// Requires `R > 0`, `0 ≤ r < R` (`r = 0` gives a ring of radius R) and
    /// `n` in `1..=10_000_000`. Deterministic for a seed. Symmetry
    /// [`Symmetry::TORUS`] (of the surface the points sample).
    pub fn torus(spec: TorusSpec, n: usize, seed: u64) -> Result<Model, ShapeError> {
        check_spec(&spec)?;
        check_count("point count", n)?;
        let points = sample_torus(&spec, n, 0.0, TAU, seed);
        Ok(Model {
            name: "torus".to_string(),
            weights: vec![1.0; n],
            points,
            units: spec.units,
            symmetry: Symmetry::TORUS,
        })
    }

    /// A torus with the arc of azimuths `[0, arc_deg)` (measured from model x
    /// towards model y) left empty: `n` area-uniform points on the rest of
    /// the surface, so the point density matches [`Model::torus`] with
    /// `n·360/(360 − arc_deg)` points. `arc_deg` must be in [0, 360). Point
    /// azimuths lie in `[arc, 360°)` up to `f32` rounding of the coordinates.
    ///
    /// The gap breaks the rotational symmetry: symmetry C1 with `mirror_z`.
    pub fn torus_missing_arc(
        spec: TorusSpec,
        n: usize,
        arc_deg: f64,
        seed: u64,
    ) -> Result<Model, ShapeError> {
        check_spec(&spec)?;
        check_count("point count", n)?;
        if !(arc_deg.is_finite() && (0.0..360.0).contains(&arc_deg)) {
            return Err(ShapeError::invalid(
                "missing arc",
                format!("{arc_deg}° (must be in [0, 360))"),
            ));
        }
        let arc = arc_deg.to_radians();
        let points = sample_torus(&spec, n, arc, TAU - arc, seed);
        Ok(Model {
            name: format!("torus missing {arc_deg}°"),
            weights: vec![1.0; n],
            points,
            units: spec.units,
            symmetry: Symmetry::new(SymmetryGroup::C1, true),
        })
    }

    /// A torus ([`Model::torus`]) plus one extra point at `marker` (model
    /// coordinates, same units) with weight `marker_weight` (finite, > 0),
    /// stored last. The marker breaks the rotational symmetry: symmetry C1,
    /// with `mirror_z` only if the marker lies in the z = 0 plane.
    pub fn torus_with_marker(
        spec: TorusSpec,
        n: usize,
        marker: [f64; 3],
        marker_weight: f64,
        seed: u64,
    ) -> Result<Model, ShapeError> {
        let marker32 = marker.map(super::coord_f32);
        let [Some(mx), Some(my), Some(mz)] = marker32 else {
            return Err(ShapeError::invalid(
                "marker position",
                format!("{marker:?} (must be finite)"),
            ));
        };
        if !(marker_weight.is_finite() && marker_weight > 0.0 && (marker_weight as f32).is_finite())
        {
            return Err(ShapeError::invalid(
                "marker weight",
                format!("{marker_weight} (must be finite and > 0)"),
            ));
        }
        let mut m = Model::torus(spec, n, seed)?;
        m.points.push([mx, my, mz]);
        m.weights.push(marker_weight as f32);
        m.name = "torus with marker".to_string();
        m.symmetry = Symmetry::new(SymmetryGroup::C1, mz == 0.0);
        Ok(m)
    }

    /// A deterministic, exactly symmetric torus: `n_azimuth` evenly spaced
    /// rings (azimuths `2πi/n_azimuth`) of `n_tube` points each. The tube
    /// angles are area-stratified, `v_j = F⁻¹((j + ½)/n_tube)` with `F` the
    /// CDF of the density ∝ R + r·cos v on (−π, π], and symmetric about 0.
    ///
    /// The point set is invariant (up to rounding) under spins by
    /// `2π/n_azimuth`, the matching in-plane flips and `z → −z`, so every
    /// pose in `Symmetry::TORUS.equivalent_poses(q, n_azimuth)` projects it
    /// to the same 2D point set. Symmetry [`Symmetry::TORUS`].
    pub fn torus_grid(
        spec: TorusSpec,
        n_azimuth: usize,
        n_tube: usize,
    ) -> Result<Model, ShapeError> {
        check_spec(&spec)?;
        check_count("azimuth count", n_azimuth)?;
        check_count("tube count", n_tube)?;
        let total = n_azimuth
            .checked_mul(n_tube)
            .filter(|&t| t <= MAX_GENERATED_POINTS)
            .ok_or_else(|| {
                ShapeError::invalid(
                    "grid size",
                    format!("{n_azimuth} × {n_tube} points (at most {MAX_GENERATED_POINTS})"),
                )
            })?;
        let (big, small) = (spec.major_radius, spec.tube_radius);
        let mut v = vec![0.0; n_tube];
        for j in 0..n_tube.div_ceil(2) {
            let p = (j as f64 + 0.5) / n_tube as f64;
            // Lower half solved, upper half mirrored: exact symmetry v ↔ −v.
            let vj = if 2 * j + 1 == n_tube {
                0.0
            } else {
                tube_angle_quantile(big, small, p)
            };
            v[j] = vj;
            v[n_tube - 1 - j] = -vj;
        }
        let mut points = Vec::with_capacity(total);
        for i in 0..n_azimuth {
            let u = TAU * i as f64 / n_azimuth as f64;
            for &vj in &v {
                points.push(torus_point(big, small, u, vj).map(|c| c as f32));
            }
        }
        Ok(Model {
            name: "torus grid".to_string(),
            weights: vec![1.0; total],
            points,
            units: spec.units,
            symmetry: Symmetry::TORUS,
        })
    }

    /// An NPC-like test model: `n_fold` blobs of points in the z = 0 plane,
    /// centred on a circle of `radius` at azimuths `2πk/n_fold` (the first on
    /// model x), each a 3D Gaussian cloud of standard deviation `blob_sigma`.
    ///
    /// The blob shape is symmetrised so that the point set is *exactly*
    /// (up to rounding) invariant under the dihedral group `D_n` and
    /// `z → −z`: every random offset (a, b, c) in the blob frame is used as
    /// (a, ±b, ±c). Each blob therefore has `points_per_blob` rounded up to a
    /// multiple of 4 points. Symmetry `Dihedral(n_fold)` with `mirror_z`.
    ///
    /// Requires `radius > 0`, `n_fold ≥ 1`, `points_per_blob ≥ 1`,
    /// `blob_sigma ≥ 0` (finite) and at most 10 million points in total.
    pub fn ring_of_blobs(
        radius: f64,
        n_fold: u32,
        points_per_blob: usize,
        blob_sigma: f64,
        units: Units,
        seed: u64,
    ) -> Result<Model, ShapeError> {
        if !(radius.is_finite() && radius > 0.0) {
            return Err(ShapeError::invalid(
                "ring radius",
                format!("{radius} (must be finite and > 0)"),
            ));
        }
        if n_fold == 0 {
            return Err(ShapeError::invalid("fold", "0 (must be ≥ 1)"));
        }
        if !(blob_sigma.is_finite() && blob_sigma >= 0.0) {
            return Err(ShapeError::invalid(
                "blob sigma",
                format!("{blob_sigma} (must be finite and ≥ 0)"),
            ));
        }
        let orbits = points_per_blob.div_ceil(4);
        let total = (n_fold as usize)
            .checked_mul(orbits)
            .and_then(|t| t.checked_mul(4))
            .filter(|&t| points_per_blob > 0 && t <= MAX_GENERATED_POINTS)
            .ok_or_else(|| {
                ShapeError::invalid(
                    "points per blob",
                    format!(
                        "{points_per_blob} × {n_fold} blobs (need ≥ 1 per blob and at most {MAX_GENERATED_POINTS} in total)"
                    ),
                )
            })?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let normal = Normal::new(0.0, blob_sigma)
            .map_err(|e| ShapeError::invalid("blob sigma", format!("{blob_sigma}: {e}")))?;
        let mut template = Vec::with_capacity(orbits * 4);
        for _ in 0..orbits {
            let [a, b, c] = [0; 3].map(|_| normal.sample(&mut rng));
            for (sb, sc) in [(1.0, 1.0), (-1.0, -1.0), (1.0, -1.0), (-1.0, 1.0)] {
                template.push([radius + a, sb * b, sc * c]);
            }
        }
        let mut points = Vec::with_capacity(total);
        for k in 0..n_fold {
            let (s, c) = (TAU * f64::from(k) / f64::from(n_fold)).sin_cos();
            for t in &template {
                let p = [c * t[0] - s * t[1], s * t[0] + c * t[1], t[2]];
                points.push(p.map(|v| v as f32));
            }
        }
        Ok(Model {
            name: format!("ring of {n_fold} blobs"),
            weights: vec![1.0; total],
            points,
            units,
            symmetry: Symmetry::new(SymmetryGroup::Dihedral(n_fold), true),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(big: f64, small: f64) -> TorusSpec {
        TorusSpec {
            major_radius: big,
            tube_radius: small,
            units: Units::Px,
        }
    }

    #[test]
    fn quantile_inverts_cdf() {
        let (big, small) = (20.0, 15.0);
        for &p in &[1e-6, 0.01, 0.25, 0.5, 0.7, 0.999] {
            let v = tube_angle_quantile(big, small, p);
            let f = (big * (v + PI) + small * v.sin()) / (TAU * big);
            assert!((f - p).abs() < 1e-12, "p {p}: F(v) = {f}");
        }
        assert!(tube_angle_quantile(big, small, 0.5).abs() < 1e-12);
    }

    #[test]
    fn validation() {
        assert!(Model::torus(spec(0.0, 0.0), 10, 1).is_err());
        assert!(Model::torus(spec(5.0, 5.0), 10, 1).is_err());
        assert!(Model::torus(spec(5.0, -1.0), 10, 1).is_err());
        assert!(Model::torus(spec(f64::NAN, 1.0), 10, 1).is_err());
        assert!(Model::torus(spec(5.0, 1.0), 0, 1).is_err());
        assert!(Model::torus(spec(5.0, 1.0), MAX_GENERATED_POINTS + 1, 1).is_err());
        assert!(Model::torus_missing_arc(spec(5.0, 1.0), 10, 360.0, 1).is_err());
        assert!(Model::torus_missing_arc(spec(5.0, 1.0), 10, -1.0, 1).is_err());
        assert!(
            Model::torus_with_marker(spec(5.0, 1.0), 10, [f64::NAN, 0.0, 0.0], 1.0, 1).is_err()
        );
        assert!(Model::torus_with_marker(spec(5.0, 1.0), 10, [1.0, 0.0, 0.0], 0.0, 1).is_err());
        assert!(Model::ring_of_blobs(50.0, 0, 10, 1.0, Units::Nm, 1).is_err());
        assert!(Model::ring_of_blobs(50.0, 8, 0, 1.0, Units::Nm, 1).is_err());
        assert!(Model::ring_of_blobs(50.0, 8, 10, -1.0, Units::Nm, 1).is_err());
        assert!(Model::ring_of_blobs(50.0, u32::MAX, usize::MAX, 1.0, Units::Nm, 1).is_err());
        assert!(Model::torus_grid(spec(5.0, 1.0), 10_000, 10_000).is_err());
        let e = Model::torus(spec(5.0, 6.0), 10, 1).unwrap_err().to_string();
        assert!(e.contains("tube radius") && e.contains('6'), "{e}");
    }

    #[test]
    fn ring_when_tube_radius_is_zero() {
        let m = Model::torus(spec(7.0, 0.0), 500, 2).unwrap();
        for p in &m.points {
            let rho = f64::from(p[0]).hypot(f64::from(p[1]));
            assert!((rho - 7.0).abs() < 1e-5);
            assert_eq!(p[2], 0.0);
        }
    }

    #[test]
    fn ring_of_blobs_counts_and_symmetry() {
        let m = Model::ring_of_blobs(50.0, 8, 10, 3.0, Units::Nm, 4).unwrap();
        assert_eq!(m.len(), 8 * 12);
        assert_eq!(m.symmetry, Symmetry::new(SymmetryGroup::Dihedral(8), true));
        let c = m.centroid();
        assert!(c.iter().all(|v| v.abs() < 1e-4), "{c:?}");
    }
}
