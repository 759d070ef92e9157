//! Particle symmetry, equivalent poses and symmetry-aware pose errors.
//!
//! # Symmetry groups
//!
//! A [`SymmetryGroup`] is given in model coordinates with the symmetry axis
//! along model z:
//!
//! * `C1`: no symmetry;
//! * `Cyclic(n)`: rotations by `2πk/n` about z (an n-fold ring of blobs
//!   with a "front" side);
//! * `Dihedral(n)`: `Cyclic(n)` plus n two-fold axes in the xy plane, at
//!   angles `πk/n` from model x (model x itself is one of them);
//! * `CInf` / `DInf`: the continuous versions (any spin about z; `DInf` adds
//!   the 180° flips about every in-plane axis). A torus is `DInf`.
//!
//! A pose `q` and the pose `q·g` for `g` in the group put the model's points
//! at exactly the same places (the model maps onto itself under `g`), so no
//! image can tell them apart.
//!
//! # The projection mirror
//!
//! Images are orthographic projections along camera z: a camera point
//! (x, y, z) lands at (x, y) and its depth is lost. Let `M = diag(1, 1, −1)`
//! in the camera frame and `S = diag(1, 1, −1)` in model coordinates. If the
//! model is invariant under `S` ([`Symmetry::mirror_z`]: planar rings, a
//! torus), then for any pose `R` the matrix `R' = M·R·S`
//!
//! * is a proper rotation (`det R' = det M · det R · det S = +1`), and
//! * renders the same image: for every model point `p`, `S·p` is also a model
//!   point and `R'·(S·p) = M·R·p` differs from `R·p` only in the sign of z,
//!   which the projection drops.
//!
//! Geometrically, `R'` tilts the particle the other way through the image
//! plane. As a quaternion, `M·R·S` is `(w, −x, −y, z)` ([`projection_mirror`]).
//! For the torus axis `t = R·e_z`, `R'·e_z = −mirror_z(t)`; together with the
//! D∞ flip (`t → −t`) this gives the four indistinguishable axes
//! `{±t, ±mirror_z(t)}` of the shared [`axis_error`].
//!
//! The equivalent poses of `q` are therefore `{q·g : g ∈ G}` and, if the
//! model has `mirror_z`, also `{mirror(q)·g : g ∈ G}`
//! ([`Symmetry::equivalent_poses`]). Pose errors ([`Symmetry::rotation_error`],
//! [`Symmetry::axis_error`]) take the minimum over all of them.

use std::f64::consts::PI;
use std::fmt;
use std::str::FromStr;

use super::linalg::{angle_between, mirror_z};
use super::quat::Quat;
use super::Vec3;

/// Symmetry group of a model, in model coordinates: the symmetry axis is
/// model z; dihedral two-fold axes lie in the xy plane and include model x.
///
/// `Cyclic(0)` and `Dihedral(0)` are treated like order 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SymmetryGroup {
    /// No rotational symmetry.
    C1,
    /// n-fold rotations about model z.
    Cyclic(u32),
    /// n-fold rotations about z plus n two-fold axes in the xy plane.
    Dihedral(u32),
    /// Any rotation about model z.
    CInf,
    /// Any rotation about model z plus a two-fold flip about every in-plane axis.
    DInf,
}

impl SymmetryGroup {
    /// Whether the group is continuous (`CInf`, `DInf`).
    pub fn is_continuous(&self) -> bool {
        matches!(self, SymmetryGroup::CInf | SymmetryGroup::DInf)
    }

    /// Whether the group contains 180° flips about in-plane axes (which map
    /// the symmetry axis to its opposite).
    pub fn has_flips(&self) -> bool {
        matches!(self, SymmetryGroup::Dihedral(_) | SymmetryGroup::DInf)
    }

    /// Number of elements, or `None` for continuous groups.
    pub fn order(&self) -> Option<u64> {
        match *self {
            SymmetryGroup::C1 => Some(1),
            SymmetryGroup::Cyclic(n) => Some(u64::from(n.max(1))),
            SymmetryGroup::Dihedral(n) => Some(2 * u64::from(n.max(1))),
            SymmetryGroup::CInf | SymmetryGroup::DInf => None,
        }
    }

    /// Number of spins about z: n for finite groups, `samples` for continuous ones.
    fn spins(&self, samples: usize) -> u64 {
        match *self {
            SymmetryGroup::C1 => 1,
            SymmetryGroup::Cyclic(n) | SymmetryGroup::Dihedral(n) => u64::from(n.max(1)),
            SymmetryGroup::CInf | SymmetryGroup::DInf => samples.max(1) as u64,
        }
    }

    /// Human-readable name: "C1", "C8", "D8", "C∞", "D∞".
    pub fn name(&self) -> String {
        match *self {
            SymmetryGroup::C1 => "C1".to_string(),
            SymmetryGroup::Cyclic(n) => format!("C{n}"),
            SymmetryGroup::Dihedral(n) => format!("D{n}"),
            SymmetryGroup::CInf => "C∞".to_string(),
            SymmetryGroup::DInf => "D∞".to_string(),
        }
    }

    /// ASCII name accepted by [`Symmetry::from_str`]: "c1", "c8", "d8", "cinf", "dinf".
    pub fn code(&self) -> String {
        match *self {
            SymmetryGroup::C1 => "c1".to_string(),
            SymmetryGroup::Cyclic(n) => format!("c{n}"),
            SymmetryGroup::Dihedral(n) => format!("d{n}"),
            SymmetryGroup::CInf => "cinf".to_string(),
            SymmetryGroup::DInf => "dinf".to_string(),
        }
    }
}

/// The symmetry of a model: a rotation group plus whether the model is
/// symmetric under `z → −z` in model coordinates (which makes the
/// [projection mirror](self#the-projection-mirror) pose indistinguishable).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Symmetry {
    /// Rotation group in model coordinates.
    pub group: SymmetryGroup,
    /// The model is invariant under `(x, y, z) → (x, y, −z)` (planar rings, a torus).
    pub mirror_z: bool,
}

impl Default for Symmetry {
    fn default() -> Self {
        Symmetry::NONE
    }
}

/// How an [`EquivalentPose`] relates to the pose it was derived from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum EquivalenceKind {
    /// The pose itself.
    Identity,
    /// The pose composed with a non-trivial element of the model's symmetry group.
    Group,
    /// The projection mirror `M·R·S` of the pose.
    ProjectionMirror,
    /// The projection mirror composed with a non-trivial group element.
    GroupAndMirror,
}

/// A pose that renders exactly the same image as a given one.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EquivalentPose {
    /// The equivalent rotation.
    pub q: Quat,
    /// How it was obtained.
    pub kind: EquivalenceKind,
    /// One line explaining it, suitable for a UI tooltip.
    pub description: String,
}

/// Error from parsing a [`Symmetry`] name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown symmetry '{0}': expected c1, cN, dN, cinf or dinf (N ≥ 1), optionally followed by '+m' for a z mirror plane, or 'torus'"
)]
pub struct ParseSymmetryError(pub String);

/// The projection mirror of a pose: `M·R·S` with `M = S = diag(1, 1, −1)`,
/// i.e. the quaternion `(w, −x, −y, z)`. It renders the same orthographic
/// image as `q` for any model symmetric under model `z → −z`; see the
/// [module docs](self#the-projection-mirror). It is an involution.
pub fn projection_mirror(q: Quat) -> Quat {
    Quat {
        w: q.w,
        x: -q.x,
        y: -q.y,
        z: q.z,
    }
}

/// Axis error of the shared README: `min angle(p, {±t, ±mirror_z(t)})` in
/// radians, in [0, π/2]. The axes need not be unit length but must be
/// non-zero; non-finite input gives NaN.
///
/// This is the error for a torus (D∞ with mirror); [`Symmetry::axis_error`]
/// generalises it to other symmetries.
pub fn axis_error(pred_axis: Vec3, true_axis: Vec3) -> f64 {
    let t = true_axis;
    let m = mirror_z(t);
    min_angle(pred_axis, &[t, neg(t), m, neg(m)])
}

fn neg(v: Vec3) -> Vec3 {
    [-v[0], -v[1], -v[2]]
}

/// Smallest angle between `p` and the candidates; NaN if anything is non-finite.
fn min_angle(p: Vec3, candidates: &[Vec3]) -> f64 {
    if !p
        .iter()
        .chain(candidates.iter().flatten())
        .all(|x| x.is_finite())
    {
        return f64::NAN;
    }
    candidates
        .iter()
        .map(|&c| angle_between(p, c))
        .fold(f64::INFINITY, f64::min)
}

/// Rotation by `angle` about model z.
fn spin(angle: f64) -> Quat {
    let (s, c) = (0.5 * angle).sin_cos();
    Quat {
        w: c,
        x: 0.0,
        y: 0.0,
        z: s,
    }
}

/// 180° rotation about the in-plane axis at angle `phi` from model x.
fn flip(phi: f64) -> Quat {
    let (s, c) = phi.sin_cos();
    Quat {
        w: 0.0,
        x: c,
        y: s,
        z: 0.0,
    }
}

/// Smallest geodesic angle between `r` and the elements `e(k)`, k in 0..n,
/// where `|e(k)·r| = |a·cos(πk/n) + b·sin(πk/n)|` (spins: a = w, b = z;
/// flips: a = x, b = y). The best k is found analytically, so this is O(1)
/// even for huge n.
fn nearest_element(r: Quat, n: u64, a: f64, b: f64, e: impl Fn(u64) -> Quat) -> f64 {
    let phi = b.atan2(a); // |dot| is maximal where πk/n ≡ phi (mod π)
    let kf = phi * n as f64 / PI;
    let k0 = kf.floor() as i64;
    (k0 - 1..=k0 + 2)
        .map(|k| k.rem_euclid(n as i64) as u64)
        .map(|k| e(k).angle_to(r))
        .fold(f64::INFINITY, f64::min)
}

impl Symmetry {
    /// No symmetry at all.
    pub const NONE: Symmetry = Symmetry {
        group: SymmetryGroup::C1,
        mirror_z: false,
    };

    /// A torus (or a thin ring): any spin, any in-plane flip, and the z mirror.
    pub const TORUS: Symmetry = Symmetry {
        group: SymmetryGroup::DInf,
        mirror_z: true,
    };

    /// A symmetry from its parts.
    pub fn new(group: SymmetryGroup, mirror_z: bool) -> Symmetry {
        Symmetry { group, mirror_z }
    }

    /// Whether the group is axial (continuous: `CInf` or `DInf`). For axial
    /// symmetries the spin about the axis is unobservable and only the axis
    /// is compared.
    pub fn is_axial(&self) -> bool {
        self.group.is_continuous()
    }

    /// Number of distinct poses that render the same image as a given one
    /// (group order, doubled with the mirror), or `None` if infinite.
    pub fn equivalence_count(&self) -> Option<u64> {
        self.group
            .order()
            .map(|o| if self.mirror_z { 2 * o } else { o })
    }

    /// Human-readable name, e.g. "D∞ + mirror", "C8", "D8 + mirror".
    pub fn name(&self) -> String {
        if self.mirror_z {
            format!("{} + mirror", self.group.name())
        } else {
            self.group.name()
        }
    }

    /// ASCII name that [`Symmetry::from_str`] parses back, e.g. "dinf+m", "c8".
    pub fn code(&self) -> String {
        if self.mirror_z {
            format!("{}+m", self.group.code())
        } else {
            self.group.code()
        }
    }

    /// The group elements with a short description of each, identity first.
    /// Continuous groups are sampled at `samples_for_infinite` spins (and as
    /// many flips for `DInf`).
    fn described_elements(&self, samples_for_infinite: usize) -> Vec<(Quat, String)> {
        let n = self.group.spins(samples_for_infinite);
        let mut out = Vec::new();
        for k in 0..n {
            let angle = 2.0 * PI * k as f64 / n as f64;
            let desc = format!(
                "model spun {:.4}° about its symmetry axis",
                angle.to_degrees()
            );
            out.push((spin(angle), desc));
        }
        if self.group.has_flips() {
            for k in 0..n {
                let phi = PI * k as f64 / n as f64;
                let desc = format!(
                    "model flipped 180° about its in-plane two-fold axis at {:.4}° from model x",
                    phi.to_degrees()
                );
                out.push((flip(phi), desc));
            }
        }
        out
    }

    /// The group elements as rotations in model coordinates, identity first.
    /// Continuous groups are sampled at `samples_for_infinite` evenly spaced
    /// spins (and, for `DInf`, as many evenly spaced flip axes); 0 counts as 1.
    pub fn elements(&self, samples_for_infinite: usize) -> Vec<Quat> {
        self.described_elements(samples_for_infinite)
            .into_iter()
            .map(|(q, _)| q)
            .collect()
    }

    /// All poses that render the same image as `q`: `{q·g : g ∈ G}` and, if
    /// the model has `mirror_z`, `{mirror(q)·g : g ∈ G}` (see the
    /// [module docs](self#the-projection-mirror)). The first entry is `q`
    /// itself ([`EquivalenceKind::Identity`]). Continuous groups are sampled
    /// as in [`Symmetry::elements`].
    pub fn equivalent_poses(&self, q: Quat, samples_for_infinite: usize) -> Vec<EquivalentPose> {
        let elements = self.described_elements(samples_for_infinite);
        let group = self.group.name();
        let mut out = Vec::with_capacity(elements.len() * if self.mirror_z { 2 } else { 1 });
        for (i, (g, desc)) in elements.iter().enumerate() {
            let (kind, description) = if i == 0 {
                (EquivalenceKind::Identity, "This pose.".to_string())
            } else {
                (
                    EquivalenceKind::Group,
                    format!(
                        "Same image: {desc}, which maps the model onto itself ({group} symmetry)."
                    ),
                )
            };
            out.push(EquivalentPose {
                q: q * *g,
                kind,
                description,
            });
        }
        if self.mirror_z {
            let m = projection_mirror(q);
            for (i, (g, desc)) in elements.iter().enumerate() {
                let (kind, description) = if i == 0 {
                    (
                        EquivalenceKind::ProjectionMirror,
                        "Same image: the mirror pose, tilted the other way through the image plane; a projection cannot tell them apart.".to_string(),
                    )
                } else {
                    (
                        EquivalenceKind::GroupAndMirror,
                        format!("Same image: the mirror pose (tilted the other way through the image plane) with the {desc}."),
                    )
                };
                out.push(EquivalentPose {
                    q: m * *g,
                    kind,
                    description,
                });
            }
        }
        out
    }

    /// The candidate true axes that `truth_axis` cannot be told apart from:
    /// `t`, plus `−t` with flips, `−mirror_z(t)` with the mirror, and
    /// `mirror_z(t)` with both.
    fn axis_candidates(&self, t: Vec3) -> Vec<Vec3> {
        let mut c = vec![t];
        let flips = self.group.has_flips();
        if flips {
            c.push(neg(t));
        }
        if self.mirror_z {
            c.push(neg(mirror_z(t)));
            if flips {
                c.push(mirror_z(t));
            }
        }
        c
    }

    /// Angle in radians between the predicted and the true symmetry axis
    /// (`R·e_z`), minimised over the axes the symmetry makes
    /// indistinguishable. For [`Symmetry::TORUS`] this is exactly the shared
    /// [`axis_error`]; with no flips and no mirror it is the plain angle.
    pub fn axis_error(&self, pred: Quat, truth: Quat) -> f64 {
        min_angle(pred.axis(), &self.axis_candidates(truth.axis()))
    }

    /// Symmetry-aware rotation error in radians: the smallest geodesic angle
    /// between `pred` and any pose equivalent to `truth` (group elements and,
    /// with `mirror_z`, the projection mirror). For axial (continuous) groups
    /// the spin is unobservable and this returns [`Symmetry::axis_error`].
    ///
    /// Finite groups are handled exactly and in O(1) time regardless of n.
    /// The error is symmetric in its arguments and invariant under replacing
    /// either pose by an equivalent one.
    pub fn rotation_error(&self, pred: Quat, truth: Quat) -> f64 {
        if self.is_axial() {
            return self.axis_error(pred, truth);
        }
        if pred == truth || pred == -truth {
            return 0.0; // exact, rather than a rounding residue
        }
        let n = self.group.spins(1);
        let flips = self.group.has_flips();
        let mut truths = vec![truth];
        if self.mirror_z {
            truths.push(projection_mirror(truth));
        }
        let mut best = f64::INFINITY;
        for t in truths {
            // angle(pred, t·g) = angle(g, t⁻¹·pred)
            let r = t.conj() * pred;
            let e = nearest_element(r, n, r.w, r.z, |k| spin(2.0 * PI * k as f64 / n as f64));
            best = best.min(e);
            if flips {
                let e = nearest_element(r, n, r.x, r.y, |k| flip(PI * k as f64 / n as f64));
                best = best.min(e);
            }
        }
        best
    }

    /// A canonical representative of the axes indistinguishable from `axis`
    /// under this symmetry: the candidate with the largest z, ties broken by
    /// larger x, then larger y. For a torus this puts the axis in the
    /// hemisphere z ≥ 0 with x ≥ 0.
    pub fn canonical_axis(&self, axis: Vec3) -> Vec3 {
        const TIE: f64 = 1e-12;
        let key_greater = |a: &Vec3, b: &Vec3| {
            for i in [2, 0, 1] {
                if (a[i] - b[i]).abs() > TIE {
                    return a[i] > b[i];
                }
            }
            false
        };
        let mut best = axis;
        for c in self.axis_candidates(axis) {
            if key_greater(&c, &best) {
                best = c;
            }
        }
        best
    }
}

impl fmt::Display for Symmetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl FromStr for Symmetry {
    type Err = ParseSymmetryError;

    /// Parses "c1", "c8", "d8", "cinf", "dinf" (also "c∞", "d∞"),
    /// case-insensitive and ignoring spaces, optionally followed by "+m" or
    /// "+mirror" for the z mirror, e.g. "dinf+m", "D8 + mirror". "torus"
    /// means [`Symmetry::TORUS`]. Also parses everything [`Symmetry::name`]
    /// and [`Symmetry::code`] produce.
    fn from_str(s: &str) -> Result<Symmetry, ParseSymmetryError> {
        let err = || ParseSymmetryError(s.to_string());
        let t: String = s
            .chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_lowercase)
            .collect();
        if t == "torus" {
            return Ok(Symmetry::TORUS);
        }
        let (base, mirror) = match t.split_once('+') {
            None => (t.as_str(), false),
            Some((b, "m" | "mirror")) => (b, true),
            Some(_) => return Err(err()),
        };
        let group = match base {
            "cinf" | "c∞" | "cinfinity" => SymmetryGroup::CInf,
            "dinf" | "d∞" | "dinfinity" => SymmetryGroup::DInf,
            _ => {
                let mut chars = base.chars();
                let letter = chars.next().ok_or_else(err)?;
                let digits = chars.as_str();
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err());
                }
                let n: u32 = digits.parse().map_err(|_| err())?;
                match (letter, n) {
                    (_, 0) => return Err(err()),
                    ('c', 1) => SymmetryGroup::C1,
                    ('c', n) => SymmetryGroup::Cyclic(n),
                    ('d', n) => SymmetryGroup::Dihedral(n),
                    _ => return Err(err()),
                }
            }
        };
        Ok(Symmetry::new(group, mirror))
    }
}

impl Symmetry {
    /// Same as `s.parse::<Symmetry>()`; see the [`FromStr`] impl.
    pub fn parse(s: &str) -> Result<Symmetry, ParseSymmetryError> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{mat_mul, Mat3};
    use rand::SeedableRng;

    const M: Mat3 = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]];

    #[test]
    fn mirror_quaternion_matches_matrix_definition() {
        let q = Quat::new(0.3, -0.4, 0.5, 0.7);
        let want = mat_mul(&mat_mul(&M, &q.to_matrix()), &M);
        let got = projection_mirror(q).to_matrix();
        for i in 0..3 {
            for j in 0..3 {
                assert!((want[i][j] - got[i][j]).abs() < 1e-14);
            }
        }
        let t = q.axis();
        let m = projection_mirror(q).axis();
        let want = neg(mirror_z(t));
        for i in 0..3 {
            assert!((m[i] - want[i]).abs() < 1e-14);
        }
    }

    #[test]
    fn element_counts() {
        let c8 = Symmetry::new(SymmetryGroup::Cyclic(8), false);
        let d8 = Symmetry::new(SymmetryGroup::Dihedral(8), true);
        assert_eq!(c8.elements(0).len(), 8);
        assert_eq!(d8.elements(0).len(), 16);
        assert_eq!(d8.equivalent_poses(Quat::IDENTITY, 0).len(), 32);
        assert_eq!(d8.equivalence_count(), Some(32));
        assert_eq!(Symmetry::TORUS.elements(12).len(), 24);
        assert_eq!(Symmetry::TORUS.elements(0).len(), 2);
        assert_eq!(Symmetry::NONE.elements(5), vec![Quat::IDENTITY]);
        assert_eq!(Symmetry::TORUS.equivalence_count(), None);
    }

    #[test]
    fn analytic_nearest_matches_brute_force() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for group in [
            SymmetryGroup::C1,
            SymmetryGroup::Cyclic(2),
            SymmetryGroup::Cyclic(7),
            SymmetryGroup::Dihedral(1),
            SymmetryGroup::Dihedral(8),
            SymmetryGroup::Dihedral(13),
        ] {
            for mirror in [false, true] {
                let s = Symmetry::new(group, mirror);
                for _ in 0..200 {
                    let p = Quat::random_uniform(&mut rng);
                    let t = Quat::random_uniform(&mut rng);
                    let brute = s
                        .equivalent_poses(t, 0)
                        .iter()
                        .map(|e| p.angle_to(e.q))
                        .fold(f64::INFINITY, f64::min);
                    let fast = s.rotation_error(p, t);
                    assert!((brute - fast).abs() < 1e-12, "{s}: {brute} vs {fast}");
                }
            }
        }
    }

    #[test]
    fn huge_order_is_fast() {
        let s = Symmetry::new(SymmetryGroup::Dihedral(u32::MAX), true);
        let q = Quat::from_euler_zyz(0.1, 0.2, 0.3);
        let e = s.rotation_error(q * spin(1.234), q);
        assert!(e < 1e-6);
    }

    #[test]
    fn names_and_parsing_round_trip() {
        for s in [
            Symmetry::NONE,
            Symmetry::TORUS,
            Symmetry::new(SymmetryGroup::Cyclic(8), false),
            Symmetry::new(SymmetryGroup::Dihedral(8), true),
            Symmetry::new(SymmetryGroup::CInf, true),
        ] {
            assert_eq!(s.name().parse::<Symmetry>().unwrap(), s);
            assert_eq!(s.code().parse::<Symmetry>().unwrap(), s);
        }
        assert_eq!(Symmetry::TORUS.name(), "D∞ + mirror");
        assert_eq!(Symmetry::parse("torus").unwrap(), Symmetry::TORUS);
        assert_eq!(Symmetry::parse("DINF+M").unwrap(), Symmetry::TORUS);
        assert_eq!(
            Symmetry::parse("d8+mirror").unwrap(),
            Symmetry::new(SymmetryGroup::Dihedral(8), true)
        );
        for bad in [
            "",
            "c0",
            "x8",
            "d",
            "c-1",
            "c8+x",
            "cinf+",
            "c 8 8x",
            "d99999999999",
        ] {
            let e = Symmetry::parse(bad).unwrap_err();
            assert!(e.to_string().contains("unknown symmetry"));
        }
    }

    #[test]
    fn canonical_axis_of_torus() {
        let a = Symmetry::TORUS.canonical_axis([-0.3, 0.2, -0.9]);
        assert_eq!(a, [0.3, -0.2, 0.9]);
        let a = Symmetry::TORUS.canonical_axis([-0.3, 0.2, 0.9]);
        assert_eq!(a, [0.3, -0.2, 0.9]);
        let a = Symmetry::NONE.canonical_axis([-0.3, 0.2, -0.9]);
        assert_eq!(a, [-0.3, 0.2, -0.9]);
    }
}
