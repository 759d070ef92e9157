//! Rotations, poses and particle symmetry.
//!
//! Owns: [`Quat`], [`Pose`], Euler conventions, SO(3) sampling, [`Symmetry`] and the
//! symmetry-aware errors. Must not import any other PoseScope module: everything builds on it.
//!
//! # Conventions
//!
//! **Camera frame.** Image x is the column and points right, image y is the
//! row and points down, and z = x × y points into the screen (away from the
//! viewer). The projection is orthographic along camera z: a camera-frame
//! point (x, y, z) lands at image position (x, y), measured in pixels from the
//! image centre.
//!
//! **Vectors and matrices.** A [`Vec3`] is `[x, y, z]`. A [`Mat3`] is
//! row-major (`m[row][col]`) and acts on column vectors, `v' = m·v`.
//!
//! **Pose.** A [`Pose`] is a unit quaternion [`Quat`] `(w, x, y, z)` that
//! rotates *model* coordinates into the *camera* frame, plus an in-plane shift
//! in pixels from the image centre (x right, y down). A model point `p` is
//! seen at camera position `R·p + (shift_x, shift_y, 0)`.
//!
//! **Symmetry axis.** Symmetric models (torus, ring) have their symmetry axis
//! along model z. Its camera-frame direction is `R·(0,0,1)`, returned by
//! [`Quat::axis`] and [`Pose::axis`].
//!
//! **Euler angles.** Everything a user sees uses one convention: intrinsic
//! ZYZ as in RELION, `R = Rz(rot)·Ry(tilt)·Rz(psi)`. With it the model
//! z axis lands at `(cos rot·sin tilt, sin rot·sin tilt, cos tilt)`, so
//!
//! * `tilt` ∈ [0, π] is the angle between the particle axis and the optical
//!   axis (0 = seen face-on, π/2 = seen edge-on),
//! * `rot` ∈ (−π, π] is the azimuth of the axis in the image plane, measured
//!   from +x (right) towards +y (down),
//! * `psi` ∈ (−π, π] is the spin about the model's own axis, which is
//!   invisible for a torus.
//!
//! At the gimbal poses (tilt ≈ 0 or tilt ≈ π) only `rot + psi` (resp.
//! `rot − psi`) is defined; [`Quat::to_euler_zyz`] then puts everything into
//! `rot` and returns `psi = 0`. See [`Quat::from_euler_zyz`].
//!
//! **Projection mirror.** See [`symmetry`] (re-exported here): orthographic
//! images of a model that is symmetric under `z → −z` cannot distinguish a
//! pose `R` from `M·R·S` with `M = S = diag(1, 1, −1)`. This is why the axis
//! error of the shared README compares against `{±t, ±mirror_z(t)}`
//! ([`axis_error`]).

mod linalg;
mod quat;
pub mod symmetry;

pub use linalg::{
    add, angle_between, cross, det, dot, mat_identity, mat_mul, mat_transpose, mat_vec, mirror_z,
    norm, normalize, scale, solve_spd, sub, sym_eigen3,
};
pub use quat::Quat;
pub use symmetry::{
    axis_error, projection_mirror, EquivalenceKind, EquivalentPose, ParseSymmetryError, Symmetry,
    SymmetryGroup,
};

/// A 3-vector `[x, y, z]`.
pub type Vec3 = [f64; 3];

/// A 3×3 matrix, row-major (`m[row][col]`), acting on column vectors: `v' = m·v`.
pub type Mat3 = [[f64; 3]; 3];

/// Converts degrees to radians.
#[inline]
pub fn deg_to_rad(deg: f64) -> f64 {
    deg.to_radians()
}

/// Converts radians to degrees.
#[inline]
pub fn rad_to_deg(rad: f64) -> f64 {
    rad.to_degrees()
}

/// Wraps an angle in radians into (−π, π].
pub fn wrap_angle(a: f64) -> f64 {
    use std::f64::consts::{PI, TAU};
    if !a.is_finite() {
        return a;
    }
    let mut r = a % TAU; // in (−2π, 2π)
    if r <= -PI {
        r += TAU;
    } else if r > PI {
        r -= TAU;
    }
    r
}

/// The pose of a particle in one image: a rotation from model coordinates into
/// the camera frame, and an in-plane shift in pixels from the image centre
/// (x right, y down).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Pose {
    /// Rotation from model coordinates into the camera frame.
    pub q: Quat,
    /// In-plane shift in pixels from the image centre, `[x (right), y (down)]`.
    pub shift: [f64; 2],
}

impl Default for Pose {
    fn default() -> Self {
        Pose::IDENTITY
    }
}

impl Pose {
    /// No rotation, no shift.
    pub const IDENTITY: Pose = Pose {
        q: Quat::IDENTITY,
        shift: [0.0, 0.0],
    };

    /// A pose from a rotation and a shift in pixels.
    pub fn new(q: Quat, shift: [f64; 2]) -> Pose {
        Pose { q, shift }
    }

    /// Camera-frame direction of the model z axis, `R·(0,0,1)`.
    pub fn axis(&self) -> Vec3 {
        self.q.axis()
    }

    /// Maps a model point into the camera frame: `R·p·scale + (shift_x, shift_y, 0)`.
    ///
    /// `scale` converts model units into pixels (1 for models in pixels).
    pub fn transform(&self, p: Vec3, scale: f64) -> Vec3 {
        let r = self.q.rotate(p);
        [
            r[0] * scale + self.shift[0],
            r[1] * scale + self.shift[1],
            r[2] * scale,
        ]
    }

    /// Orthographic projection of a model point: the (x, y) of
    /// [`Pose::transform`], in pixels from the image centre.
    pub fn project(&self, p: Vec3, scale: f64) -> [f64; 2] {
        let t = self.transform(p, scale);
        [t[0], t[1]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    #[test]
    fn wrap_angle_range() {
        assert_eq!(wrap_angle(PI), PI);
        assert!((wrap_angle(-PI) - PI).abs() < 1e-15);
        assert!((wrap_angle(3.0 * PI) - PI).abs() < 1e-12);
        assert!((wrap_angle(0.5 + 4.0 * PI) - 0.5).abs() < 1e-12);
        assert!((wrap_angle(-0.5 - 2.0 * PI) + 0.5).abs() < 1e-12);
    }

    #[test]
    fn pose_project_applies_rotation_then_shift() {
        // 90° about camera z maps x → y.
        let pose = Pose::new(
            Quat::from_axis_angle([0.0, 0.0, 1.0], PI / 2.0),
            [3.0, -1.0],
        );
        let p = pose.project([2.0, 0.0, 5.0], 1.5);
        assert!((p[0] - 3.0).abs() < 1e-12);
        assert!((p[1] - 2.0).abs() < 1e-12);
    }
}
