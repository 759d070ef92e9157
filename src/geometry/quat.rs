//! Unit quaternions for 3D rotations; see [`Quat`].

use std::f64::consts::{PI, TAU};

use super::linalg::{cross, dot, norm, normalize, scale};
use super::{wrap_angle, Mat3, Vec3};

/// Below this tilt (or this close to π) [`Quat::to_euler_zyz`] treats the pose
/// as a gimbal case and returns `psi = 0`. The matrix error made is of the
/// same order.
const GIMBAL_EPS: f64 = 1e-9;

/// A rotation as a unit quaternion `(w, x, y, z)`, `w` the scalar part.
///
/// It represents the rotation `v ↦ q·v·q*` (Hamilton convention). Products
/// compose like matrices: `(a * b).to_matrix() == a.to_matrix() · b.to_matrix()`,
/// i.e. `a * b` applies `b` first. `q` and `-q` are the same rotation; every
/// method that compares rotations is invariant under that sign. As a pose,
/// it rotates model coordinates into the camera frame (see
/// [`crate::geometry`] for the frame and the ZYZ Euler convention).
///
/// # Untrusted input
///
/// Constructors never silently turn garbage into a valid rotation. Those that
/// normalise ([`Quat::new`], [`Quat::from_axis_angle`], [`Quat::from_rotvec`],
/// [`Quat::from_matrix`], [`Quat::from_6d`], [`Quat::from_euler_zyz`]) panic on
/// non-finite input; use [`Quat::try_new`] and [`Quat::try_from_6d`] for
/// values that may be NaN, infinite or zero (e.g. network outputs or file
/// contents).
///
/// The fields are public for serialisation and interop; code that writes
/// them directly is responsible for keeping the quaternion unit length.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Quat {
    /// Scalar part, `cos(angle/2)`.
    pub w: f64,
    /// x of the vector part, `axis_x·sin(angle/2)`.
    pub x: f64,
    /// y of the vector part.
    pub y: f64,
    /// z of the vector part.
    pub z: f64,
}

impl Default for Quat {
    fn default() -> Self {
        Quat::IDENTITY
    }
}

impl std::fmt::Display for Quat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "({}, {}, {}, {})", self.w, self.x, self.y, self.z)
    }
}

impl std::ops::Mul for Quat {
    type Output = Quat;
    /// Hamilton product; `a * b` applies `b` first, then `a`.
    fn mul(self, o: Quat) -> Quat {
        Quat::mul(self, o)
    }
}

impl std::ops::Neg for Quat {
    type Output = Quat;
    /// Negates all four components (the same rotation).
    fn neg(self) -> Quat {
        Quat {
            w: -self.w,
            x: -self.x,
            y: -self.y,
            z: -self.z,
        }
    }
}

/// Rotation by `angle` about a coordinate axis (0 = x, 1 = y, 2 = z).
fn axis_rotation(axis: usize, angle: f64) -> Quat {
    let (s, c) = (0.5 * angle).sin_cos();
    let mut q = Quat {
        w: c,
        x: 0.0,
        y: 0.0,
        z: 0.0,
    };
    match axis {
        0 => q.x = s,
        1 => q.y = s,
        _ => q.z = s,
    }
    q
}

fn all_finite(v: &[f64]) -> bool {
    v.iter().all(|x| x.is_finite())
}

impl Quat {
    /// A quaternion of NaNs: the placeholder for "no rotation" in outputs
    /// such as a failed fit row. It is not a rotation; check `is_finite`.
    pub const NAN: Quat = Quat {
        w: f64::NAN,
        x: f64::NAN,
        y: f64::NAN,
        z: f64::NAN,
    };

    /// The identity rotation `(1, 0, 0, 0)`.
    pub const IDENTITY: Quat = Quat {
        w: 1.0,
        x: 0.0,
        y: 0.0,
        z: 0.0,
    };

    /// Normalises `(w, x, y, z)` to unit length.
    ///
    /// Returns `None` if any component is NaN or infinite, or if all are zero.
    /// Very large or very small finite inputs are handled without overflow.
    pub fn try_new(w: f64, x: f64, y: f64, z: f64) -> Option<Quat> {
        let c = [w, x, y, z];
        if !all_finite(&c) {
            return None;
        }
        let m = c.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        if m == 0.0 {
            return None;
        }
        let s = c.map(|v| v / m);
        let n = s.iter().map(|v| v * v).sum::<f64>().sqrt();
        Some(Quat {
            w: s[0] / n,
            x: s[1] / n,
            y: s[2] / n,
            z: s[3] / n,
        })
    }

    /// Normalises `(w, x, y, z)` to unit length.
    ///
    /// # Panics
    ///
    /// If the input is all zeros or contains NaN/infinity: there is no
    /// meaningful rotation to return, and silently returning the identity
    /// would hide bugs. Use [`Quat::try_new`] for untrusted input.
    pub fn new(w: f64, x: f64, y: f64, z: f64) -> Quat {
        Quat::try_new(w, x, y, z).unwrap_or_else(|| {
            panic!("Quat::new: cannot normalise ({w}, {x}, {y}, {z}): zero or non-finite")
        })
    }

    /// The components as `[w, x, y, z]`.
    pub fn to_array(self) -> [f64; 4] {
        [self.w, self.x, self.y, self.z]
    }

    /// The vector part `[x, y, z]`.
    pub fn vector(self) -> Vec3 {
        [self.x, self.y, self.z]
    }

    /// Euclidean norm of the four components (1 for a valid rotation).
    pub fn norm(self) -> f64 {
        self.dot(self).sqrt()
    }

    /// Four-component dot product.
    pub fn dot(self, o: Quat) -> f64 {
        self.w * o.w + self.x * o.x + self.y * o.y + self.z * o.z
    }

    /// Whether all components are finite.
    pub fn is_finite(self) -> bool {
        all_finite(&self.to_array())
    }

    /// The same rotation with the sign chosen so that `w > 0`; if `w == 0`,
    /// the first non-zero of `x, y, z` is made positive.
    pub fn canonical(self) -> Quat {
        let flip = if self.w != 0.0 {
            self.w < 0.0
        } else if self.x != 0.0 {
            self.x < 0.0
        } else if self.y != 0.0 {
            self.y < 0.0
        } else {
            self.z < 0.0
        };
        if flip {
            -self
        } else {
            self
        }
    }

    /// Conjugate `(w, −x, −y, −z)`, the inverse rotation for a unit quaternion.
    pub fn conj(self) -> Quat {
        Quat {
            w: self.w,
            x: -self.x,
            y: -self.y,
            z: -self.z,
        }
    }

    /// Inverse rotation (same as [`Quat::conj`] for unit quaternions).
    pub fn inverse(self) -> Quat {
        self.conj()
    }

    /// Hamilton product `self·o`: the rotation that applies `o` first, then `self`.
    #[allow(clippy::should_implement_trait)] // `Mul` is implemented too; this is the named form.
    pub fn mul(self, o: Quat) -> Quat {
        let a = self;
        Quat {
            w: a.w * o.w - a.x * o.x - a.y * o.y - a.z * o.z,
            x: a.w * o.x + a.x * o.w + a.y * o.z - a.z * o.y,
            y: a.w * o.y - a.x * o.z + a.y * o.w + a.z * o.x,
            z: a.w * o.z + a.x * o.y - a.y * o.x + a.z * o.w,
        }
    }

    /// Rotates a vector: `R·v`.
    pub fn rotate(self, v: Vec3) -> Vec3 {
        // v' = v + w·t + u×t with t = 2·(u×v), u the vector part.
        let u = self.vector();
        let t = scale(cross(u, v), 2.0);
        let ut = cross(u, t);
        [
            v[0] + self.w * t[0] + ut[0],
            v[1] + self.w * t[1] + ut[1],
            v[2] + self.w * t[2] + ut[2],
        ]
    }

    /// Camera-frame direction of the model z axis, `R·(0,0,1)` (the third
    /// column of the rotation matrix). For a torus this is its symmetry axis.
    pub fn axis(self) -> Vec3 {
        let Quat { w, x, y, z } = self;
        [
            2.0 * (x * z + w * y),
            2.0 * (y * z - w * x),
            1.0 - 2.0 * (x * x + y * y),
        ]
    }

    /// Rotation by `angle_rad` (right-handed) about `axis`, which need not be
    /// unit length. A zero axis gives the identity.
    ///
    /// # Panics
    ///
    /// If the axis or angle is not finite.
    pub fn from_axis_angle(axis: Vec3, angle_rad: f64) -> Quat {
        assert!(
            all_finite(&axis) && angle_rad.is_finite(),
            "Quat::from_axis_angle: non-finite input (axis {axis:?}, angle {angle_rad})"
        );
        match normalize(axis) {
            None => Quat::IDENTITY,
            Some(n) => {
                let (s, c) = (0.5 * angle_rad).sin_cos();
                Quat {
                    w: c,
                    x: n[0] * s,
                    y: n[1] * s,
                    z: n[2] * s,
                }
            }
        }
    }

    /// Unit axis and angle in [0, π]. The identity returns axis `(0, 0, 1)`
    /// and angle 0; for other rotations the axis is chosen so the angle is
    /// not larger than π.
    pub fn to_axis_angle(self) -> (Vec3, f64) {
        let q = self.canonical();
        let v = q.vector();
        let s = norm(v);
        let angle = 2.0 * s.atan2(q.w);
        if s > 0.0 {
            (scale(v, 1.0 / s), angle)
        } else {
            ([0.0, 0.0, 1.0], 0.0)
        }
    }

    /// Rotation from a rotation vector (axis × angle in radians).
    ///
    /// # Panics
    ///
    /// If `v` is not finite.
    pub fn from_rotvec(v: Vec3) -> Quat {
        assert!(all_finite(&v), "Quat::from_rotvec: non-finite input {v:?}");
        let theta = norm(v);
        let half = 0.5 * theta;
        // sin(θ/2)/θ, with its Taylor series near 0.
        let k = if theta < 1e-4 {
            0.5 - theta * theta / 48.0
        } else {
            half.sin() / theta
        };
        Quat {
            w: half.cos(),
            x: v[0] * k,
            y: v[1] * k,
            z: v[2] * k,
        }
    }

    /// Rotation vector (unit axis × angle), with angle in [0, π].
    pub fn to_rotvec(self) -> Vec3 {
        let q = self.canonical();
        let v = q.vector();
        let s = norm(v);
        let angle = 2.0 * s.atan2(q.w);
        // angle / sin(angle/2), with its limit 2 (plus series) near 0.
        let k = if s < 1e-8 { 2.0 / q.w } else { angle / s };
        scale(v, k)
    }

    /// Rotation matrix (row-major, `v' = m·v`).
    pub fn to_matrix(self) -> Mat3 {
        let Quat { w, x, y, z } = self;
        [
            [
                1.0 - 2.0 * (y * y + z * z),
                2.0 * (x * y - w * z),
                2.0 * (x * z + w * y),
            ],
            [
                2.0 * (x * y + w * z),
                1.0 - 2.0 * (x * x + z * z),
                2.0 * (y * z - w * x),
            ],
            [
                2.0 * (x * z - w * y),
                2.0 * (y * z + w * x),
                1.0 - 2.0 * (x * x + y * y),
            ],
        ]
    }

    /// Quaternion of a rotation matrix (Shepperd's method: the largest of
    /// `w, x, y, z` is taken from the diagonal, the rest from off-diagonal
    /// sums, so it is accurate for every rotation including 180° ones).
    ///
    /// Slightly non-orthonormal input is tolerated (the result is
    /// normalised). The result is [`canonical`](Quat::canonical).
    ///
    /// # Panics
    ///
    /// If `m` contains NaN or infinity.
    pub fn from_matrix(m: &Mat3) -> Quat {
        assert!(
            m.iter().all(|r| all_finite(r)),
            "Quat::from_matrix: non-finite matrix {m:?}"
        );
        let tr = m[0][0] + m[1][1] + m[2][2];
        // Each chosen sqrt argument is ≥ 1 for any real matrix (the branch
        // picks the largest of tr, m00, m11, m22), so the divisions are safe.
        let (w, x, y, z);
        if tr >= m[0][0] && tr >= m[1][1] && tr >= m[2][2] {
            let s = 2.0 * (1.0 + tr).sqrt(); // 4w
            w = 0.25 * s;
            x = (m[2][1] - m[1][2]) / s;
            y = (m[0][2] - m[2][0]) / s;
            z = (m[1][0] - m[0][1]) / s;
        } else if m[0][0] >= m[1][1] && m[0][0] >= m[2][2] {
            let s = 2.0 * (1.0 + m[0][0] - m[1][1] - m[2][2]).sqrt(); // 4x
            x = 0.25 * s;
            w = (m[2][1] - m[1][2]) / s;
            y = (m[0][1] + m[1][0]) / s;
            z = (m[0][2] + m[2][0]) / s;
        } else if m[1][1] >= m[2][2] {
            let s = 2.0 * (1.0 - m[0][0] + m[1][1] - m[2][2]).sqrt(); // 4y
            y = 0.25 * s;
            w = (m[0][2] - m[2][0]) / s;
            x = (m[0][1] + m[1][0]) / s;
            z = (m[1][2] + m[2][1]) / s;
        } else {
            let s = 2.0 * (1.0 - m[0][0] - m[1][1] + m[2][2]).sqrt(); // 4z
            z = 0.25 * s;
            w = (m[1][0] - m[0][1]) / s;
            x = (m[0][2] + m[2][0]) / s;
            y = (m[1][2] + m[2][1]) / s;
        }
        Quat::new(w, x, y, z).canonical()
    }

    /// Rotation from intrinsic ZYZ Euler angles (RELION's rot, tilt, psi):
    /// `R = Rz(rot)·Ry(tilt)·Rz(psi)`.
    ///
    /// The model z axis lands at `(cos rot·sin tilt, sin rot·sin tilt, cos tilt)`:
    /// `tilt` is its angle from the optical axis, `rot` its azimuth in the
    /// image (from +x towards +y, i.e. clockwise on screen since y points
    /// down), and `psi` the spin about the model's own z axis. Any real angles
    /// are accepted.
    ///
    /// # Panics
    ///
    /// If an angle is not finite.
    pub fn from_euler_zyz(rot_rad: f64, tilt_rad: f64, psi_rad: f64) -> Quat {
        assert!(
            all_finite(&[rot_rad, tilt_rad, psi_rad]),
            "Quat::from_euler_zyz: non-finite angle ({rot_rad}, {tilt_rad}, {psi_rad})"
        );
        axis_rotation(2, rot_rad) * axis_rotation(1, tilt_rad) * axis_rotation(2, psi_rad)
    }

    /// Intrinsic ZYZ Euler angles `(rot, tilt, psi)` in radians, with rot and
    /// psi in (−π, π] and tilt in [0, π]; the inverse of
    /// [`Quat::from_euler_zyz`].
    ///
    /// At the gimbal poses only `rot + psi` (tilt ≈ 0) or `rot − psi`
    /// (tilt ≈ π) is defined; then everything goes into `rot` and `psi = 0`.
    pub fn to_euler_zyz(self) -> (f64, f64, f64) {
        // With B = cos(tilt/2) ≥ 0 and Bs = sin(tilt/2) ≥ 0:
        //   w = B·cos((rot+psi)/2),  z = B·sin((rot+psi)/2),
        //   y = Bs·cos((rot−psi)/2), x = −Bs·sin((rot−psi)/2).
        let Quat { w, x, y, z } = self;
        let s_half = x.hypot(y);
        let c_half = w.hypot(z);
        let tilt = 2.0 * s_half.atan2(c_half);
        if tilt < GIMBAL_EPS {
            (wrap_angle(2.0 * z.atan2(w)), tilt, 0.0)
        } else if PI - tilt < GIMBAL_EPS {
            (wrap_angle(2.0 * (-x).atan2(y)), tilt, 0.0)
        } else {
            let sum_half = z.atan2(w);
            let diff_half = (-x).atan2(y);
            (
                wrap_angle(sum_half + diff_half),
                tilt,
                wrap_angle(sum_half - diff_half),
            )
        }
    }

    /// [`Quat::from_euler_zyz`] with angles in degrees.
    pub fn from_euler_zyz_deg(rot_deg: f64, tilt_deg: f64, psi_deg: f64) -> Quat {
        Quat::from_euler_zyz(
            rot_deg.to_radians(),
            tilt_deg.to_radians(),
            psi_deg.to_radians(),
        )
    }

    /// [`Quat::to_euler_zyz`] in degrees: rot, psi in (−180, 180], tilt in [0, 180].
    pub fn to_euler_zyz_deg(self) -> (f64, f64, f64) {
        let (a, b, c) = self.to_euler_zyz();
        (a.to_degrees(), b.to_degrees(), c.to_degrees())
    }

    /// A rotation whose [`axis`](Quat::axis) is the direction of `axis`, with
    /// spin `psi_rad` about it (ZYZ Euler with rot, tilt taken from the axis).
    /// Returns `None` for a zero or non-finite axis or a non-finite spin.
    pub fn from_symmetry_axis(axis: Vec3, psi_rad: f64) -> Option<Quat> {
        let n = normalize(axis)?;
        if !psi_rad.is_finite() {
            return None;
        }
        let tilt = n[0].hypot(n[1]).atan2(n[2]);
        let rot = n[1].atan2(n[0]);
        Some(Quat::from_euler_zyz(rot, tilt, psi_rad))
    }

    /// The continuous 6D representation of Zhou et al. (CVPR 2019): the first
    /// two columns of `R`, `[R00, R10, R20, R01, R11, R21]`.
    pub fn to_6d(self) -> [f64; 6] {
        let m = self.to_matrix();
        [m[0][0], m[1][0], m[2][0], m[0][1], m[1][1], m[2][1]]
    }

    /// Rotation from a 6D vector `[a1, a2]` by Gram–Schmidt, as in Zhou et al.:
    /// `b1 = a1/|a1|`, `b2 = normalise(a2 − (b1·a2)·b1)`, `b3 = b1 × b2`,
    /// `R = [b1 b2 b3]` (columns). Returns `None` if the input is not finite,
    /// `a1` is zero or `a2` is (numerically) parallel to `a1`.
    pub fn try_from_6d(v: &[f64; 6]) -> Option<Quat> {
        if !all_finite(v) {
            return None;
        }
        let a1 = [v[0], v[1], v[2]];
        let a2 = [v[3], v[4], v[5]];
        let b1 = normalize(a1)?;
        let u = orthogonal_part(a2, b1);
        if norm(u) <= 1e-12 * norm(a2) {
            return None;
        }
        let b2 = normalize(u)?;
        Some(Quat::from_orthonormal_columns(b1, b2))
    }

    /// Rotation from a 6D vector, accepting any finite input: non-orthonormal
    /// input is orthonormalised by Gram–Schmidt (see [`Quat::try_from_6d`]).
    /// Degenerate input falls back deterministically: a zero `a1` is replaced
    /// by `(1, 0, 0)`, and an `a2` parallel to `a1` (or zero) by a fixed
    /// direction perpendicular to `b1`.
    ///
    /// # Panics
    ///
    /// If the input contains NaN or infinity.
    pub fn from_6d(v: &[f64; 6]) -> Quat {
        assert!(all_finite(v), "Quat::from_6d: non-finite input {v:?}");
        if let Some(q) = Quat::try_from_6d(v) {
            return q;
        }
        let b1 = normalize([v[0], v[1], v[2]]).unwrap_or([1.0, 0.0, 0.0]);
        let a2 = [v[3], v[4], v[5]];
        let u = orthogonal_part(a2, b1);
        let b2 = if norm(u) > 1e-12 * norm(a2) {
            normalize(u)
        } else {
            None
        }
        .unwrap_or_else(|| any_perpendicular(b1));
        Quat::from_orthonormal_columns(b1, b2)
    }

    fn from_orthonormal_columns(b1: Vec3, b2: Vec3) -> Quat {
        let b3 = cross(b1, b2);
        let m = [
            [b1[0], b2[0], b3[0]],
            [b1[1], b2[1], b3[1]],
            [b1[2], b2[2], b3[2]],
        ];
        Quat::from_matrix(&m)
    }

    /// Geodesic angle between two rotations in radians, in [0, π]: the angle
    /// of the relative rotation `self⁻¹·o`. Invariant under `q ~ −q` and
    /// symmetric. Accurate for tiny angles (uses `atan2`, not `acos`).
    pub fn angle_to(self, o: Quat) -> f64 {
        if self == o || self == -o {
            return 0.0; // exact, rather than a rounding residue
        }
        let d = self.conj() * o;
        2.0 * norm(d.vector()).atan2(d.w.abs())
    }

    /// A rotation drawn uniformly from SO(3) (Shoemake, Graphics Gems III, 1992).
    pub fn random_uniform<R: rand::Rng + ?Sized>(rng: &mut R) -> Quat {
        let u1: f64 = rng.random();
        let u2: f64 = rng.random();
        let u3: f64 = rng.random();
        let s1 = (1.0 - u1).sqrt();
        let s2 = u1.sqrt();
        let (sin1, cos1) = (TAU * u2).sin_cos();
        let (sin2, cos2) = (TAU * u3).sin_cos();
        Quat {
            w: s2 * cos2,
            x: s1 * sin1,
            y: s1 * cos1,
            z: s2 * sin2,
        }
    }

    /// Spherical linear interpolation along the shorter arc: `t = 0` gives
    /// `self`, `t = 1` gives `o` (possibly with the opposite sign).
    pub fn slerp(self, o: Quat, t: f64) -> Quat {
        let mut d = self.dot(o);
        let o = if d < 0.0 {
            d = -d;
            -o
        } else {
            o
        };
        if d > 1.0 - 1e-10 {
            // Nearly identical: linear interpolation is exact to rounding.
            let lerp = |a: f64, b: f64| a + (b - a) * t;
            return Quat::try_new(
                lerp(self.w, o.w),
                lerp(self.x, o.x),
                lerp(self.y, o.y),
                lerp(self.z, o.z),
            )
            .unwrap_or(self);
        }
        let theta = d.min(1.0).acos();
        let s = theta.sin();
        let a = ((1.0 - t) * theta).sin() / s;
        let b = (t * theta).sin() / s;
        Quat::new(
            a * self.w + b * o.w,
            a * self.x + b * o.x,
            a * self.y + b * o.y,
            a * self.z + b * o.z,
        )
    }
}

/// `a − (b·a)·b` for unit `b`.
fn orthogonal_part(a: Vec3, b: Vec3) -> Vec3 {
    let d = dot(a, b);
    [a[0] - d * b[0], a[1] - d * b[1], a[2] - d * b[2]]
}

/// A unit vector perpendicular to the unit vector `b`.
fn any_perpendicular(b: Vec3) -> Vec3 {
    // Cross with the coordinate axis least aligned with b.
    let i = (0..3)
        .min_by(|&i, &j| b[i].abs().total_cmp(&b[j].abs()))
        .unwrap_or(0);
    let mut e = [0.0; 3];
    e[i] = 1.0;
    normalize(cross(b, e)).unwrap_or([0.0, 1.0, 0.0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{det, mat_mul, mat_transpose, mat_vec};
    use rand::SeedableRng;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    fn mat_close(a: &Mat3, b: &Mat3, tol: f64) -> bool {
        (0..3).all(|i| (0..3).all(|j| close(a[i][j], b[i][j], tol)))
    }

    fn rz(a: f64) -> Mat3 {
        let (s, c) = a.sin_cos();
        [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]
    }

    fn ry(a: f64) -> Mat3 {
        let (s, c) = a.sin_cos();
        [[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]]
    }

    #[test]
    fn new_normalises_and_rejects_garbage() {
        let q = Quat::new(2.0, 0.0, 0.0, 0.0);
        assert_eq!(q, Quat::IDENTITY);
        assert!(Quat::try_new(0.0, 0.0, 0.0, 0.0).is_none());
        assert!(Quat::try_new(f64::NAN, 1.0, 0.0, 0.0).is_none());
        assert!(Quat::try_new(f64::INFINITY, 1.0, 0.0, 0.0).is_none());
        let big = Quat::try_new(1e300, 1e300, 0.0, 0.0).unwrap();
        assert!(close(big.norm(), 1.0, 1e-15));
        let tiny = Quat::try_new(1e-310, 0.0, 0.0, 0.0).unwrap();
        assert_eq!(tiny, Quat::IDENTITY);
    }

    #[test]
    #[should_panic(expected = "cannot normalise")]
    fn new_panics_on_zero() {
        let _ = Quat::new(0.0, 0.0, 0.0, 0.0);
    }

    #[test]
    fn canonical_tie_breaks() {
        let q = Quat::new(-1.0, 1.0, 0.0, 0.0).canonical();
        assert!(q.w > 0.0 && q.x < 0.0);
        let q = Quat::new(0.0, -1.0, 2.0, 0.0).canonical();
        assert!(q.x > 0.0 && q.y < 0.0);
        let q = Quat::new(0.0, 0.0, 0.0, -1.0).canonical();
        assert_eq!(q.z, 1.0);
    }

    #[test]
    fn euler_matches_matrix_definition_and_axis_formula() {
        let (rot, tilt, psi) = (0.7, 1.1, -2.3);
        let q = Quat::from_euler_zyz(rot, tilt, psi);
        let expected = mat_mul(&mat_mul(&rz(rot), &ry(tilt)), &rz(psi));
        assert!(mat_close(&q.to_matrix(), &expected, 1e-14));
        let axis = q.axis();
        let want = [rot.cos() * tilt.sin(), rot.sin() * tilt.sin(), tilt.cos()];
        for i in 0..3 {
            assert!(close(axis[i], want[i], 1e-14));
        }
        let (a, b, c) = q.to_euler_zyz();
        assert!(close(a, rot, 1e-12) && close(b, tilt, 1e-12) && close(c, psi, 1e-12));
    }

    #[test]
    fn euler_gimbal_cases_put_everything_into_rot() {
        for &(tilt, rot, psi, want_rot) in &[
            (0.0, 0.4, 0.3, 0.7),
            (PI, 0.4, 0.3, 0.1),
            (0.0, 3.0, 1.0, 4.0 - TAU),
        ] {
            let q = Quat::from_euler_zyz(rot, tilt, psi);
            let (a, b, c) = q.to_euler_zyz();
            assert_eq!(c, 0.0);
            assert!(close(a, want_rot, 1e-12), "rot {a} want {want_rot}");
            assert!(close(b, tilt, 1e-12));
            let back = Quat::from_euler_zyz(a, b, c);
            assert!(mat_close(&back.to_matrix(), &q.to_matrix(), 1e-12));
        }
        let (a, b, c) = Quat::IDENTITY.to_euler_zyz();
        assert_eq!((a, b, c), (0.0, 0.0, 0.0));
    }

    #[test]
    fn euler_ranges() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for _ in 0..1000 {
            let q = Quat::random_uniform(&mut rng);
            let (a, b, c) = q.to_euler_zyz();
            assert!(a > -PI && a <= PI);
            assert!(c > -PI && c <= PI);
            assert!((0.0..=PI).contains(&b));
            let back = Quat::from_euler_zyz(a, b, c);
            assert!(back.angle_to(q) < 1e-9);
        }
    }

    #[test]
    fn from_matrix_handles_half_turns() {
        for axis in [
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 0.0, 1.0],
            [1.0, 1.0, 0.0],
            [1.0, -2.0, 3.0],
        ] {
            let q = Quat::from_axis_angle(axis, PI);
            let back = Quat::from_matrix(&q.to_matrix());
            assert!(q.angle_to(back) < 1e-12);
        }
    }

    #[test]
    fn matrix_is_proper_rotation() {
        let q = Quat::new(0.3, -0.4, 0.5, 0.7);
        let m = q.to_matrix();
        let mtm = mat_mul(&mat_transpose(&m), &m);
        assert!(mat_close(&mtm, &crate::geometry::mat_identity(), 1e-14));
        assert!(close(det(&m), 1.0, 1e-14));
        let v = [0.3, 2.0, -1.0];
        let a = q.rotate(v);
        let b = mat_vec(&m, v);
        for i in 0..3 {
            assert!(close(a[i], b[i], 1e-14));
        }
    }

    #[test]
    fn rotvec_small_angles() {
        let v = [1e-10, -2e-10, 3e-10];
        let q = Quat::from_rotvec(v);
        let back = q.to_rotvec();
        for i in 0..3 {
            assert!(close(back[i], v[i], 1e-24));
        }
        assert_eq!(Quat::from_rotvec([0.0; 3]), Quat::IDENTITY);
        assert_eq!(Quat::IDENTITY.to_rotvec(), [0.0; 3]);
    }

    #[test]
    fn axis_angle_identity_and_zero_axis() {
        let (axis, angle) = Quat::IDENTITY.to_axis_angle();
        assert_eq!((axis, angle), ([0.0, 0.0, 1.0], 0.0));
        assert_eq!(Quat::from_axis_angle([0.0; 3], 1.0), Quat::IDENTITY);
        let (axis, angle) = Quat::from_axis_angle([0.0, 0.0, -2.0], 1.5 * PI).to_axis_angle();
        assert!(close(angle, 0.5 * PI, 1e-14));
        assert!(close(axis[2], 1.0, 1e-14));
    }

    #[test]
    fn six_d_degenerate_fallbacks() {
        assert!(Quat::try_from_6d(&[0.0; 6]).is_none());
        assert!(Quat::try_from_6d(&[1.0, 0.0, 0.0, 2.0, 0.0, 0.0]).is_none());
        assert!(Quat::try_from_6d(&[f64::NAN, 0.0, 0.0, 0.0, 1.0, 0.0]).is_none());
        let q = Quat::from_6d(&[1.0, 0.0, 0.0, 2.0, 0.0, 0.0]);
        assert!(close(q.norm(), 1.0, 1e-14));
        assert!(close(q.to_6d()[0], 1.0, 1e-14));
        let q = Quat::from_6d(&[0.0; 6]);
        assert!(close(q.norm(), 1.0, 1e-14));
    }

    #[test]
    fn angle_to_small_angles_accurate() {
        let q = Quat::from_euler_zyz(0.3, 0.2, 0.1);
        let d = Quat::from_axis_angle([0.0, 1.0, 0.0], 1e-9);
        assert!(close(q.angle_to(q * d), 1e-9, 1e-16));
        assert_eq!(q.angle_to(q), 0.0);
        assert!(close(q.angle_to(-q), 0.0, 1e-15));
    }

    #[test]
    fn slerp_endpoints_and_midpoint() {
        let a = Quat::IDENTITY;
        let b = Quat::from_axis_angle([0.0, 0.0, 1.0], 1.0);
        assert!(a.slerp(b, 0.0).angle_to(a) < 1e-12);
        assert!(a.slerp(b, 1.0).angle_to(b) < 1e-12);
        let m = a.slerp(-b, 0.5);
        assert!(close(m.angle_to(a), 0.5, 1e-12));
        assert!(a.slerp(a, 0.3).angle_to(a) < 1e-15);
    }

    #[test]
    fn from_symmetry_axis_points_axis() {
        let axis = [0.3, -0.5, -0.8];
        let q = Quat::from_symmetry_axis(axis, 0.4).unwrap();
        let got = q.axis();
        let n = crate::geometry::normalize(axis).unwrap();
        for i in 0..3 {
            assert!(close(got[i], n[i], 1e-14));
        }
        assert!(Quat::from_symmetry_axis([0.0; 3], 0.0).is_none());
    }
}
