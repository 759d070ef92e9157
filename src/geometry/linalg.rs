//! Small fixed-size vector and matrix helpers on [`Vec3`] and [`Mat3`].

use super::{Mat3, Vec3};

/// Dot product.
#[inline]
pub fn dot(a: Vec3, b: Vec3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// Cross product `a × b`.
#[inline]
pub fn cross(a: Vec3, b: Vec3) -> Vec3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

/// Euclidean length.
#[inline]
pub fn norm(a: Vec3) -> f64 {
    dot(a, a).sqrt()
}

/// `a + b`.
#[inline]
pub fn add(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

/// `a − b`.
#[inline]
pub fn sub(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// `s·a`.
#[inline]
pub fn scale(a: Vec3, s: f64) -> Vec3 {
    [a[0] * s, a[1] * s, a[2] * s]
}

/// `a / |a|`, or `None` if `a` is zero or not finite.
pub fn normalize(a: Vec3) -> Option<Vec3> {
    let n = norm(a);
    if n.is_finite() && n > 0.0 {
        Some(scale(a, 1.0 / n))
    } else {
        None
    }
}

/// Angle between two vectors in radians, in [0, π].
///
/// Uses `atan2(|a×b|, a·b)`, which stays accurate for nearly (anti)parallel
/// vectors where `acos` loses half the digits. Returns 0 if either is zero.
pub fn angle_between(a: Vec3, b: Vec3) -> f64 {
    norm(cross(a, b)).atan2(dot(a, b))
}

/// The mirror through the z = 0 plane: `(x, y, z) → (x, y, −z)`.
#[inline]
pub fn mirror_z(v: Vec3) -> Vec3 {
    [v[0], v[1], -v[2]]
}

/// The 3×3 identity matrix.
pub fn mat_identity() -> Mat3 {
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
}

/// Matrix product `a·b`.
pub fn mat_mul(a: &Mat3, b: &Mat3) -> Mat3 {
    let mut out = [[0.0; 3]; 3];
    for (i, row) in out.iter_mut().enumerate() {
        for (j, cell) in row.iter_mut().enumerate() {
            *cell = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    out
}

/// Matrix–vector product `m·v`.
pub fn mat_vec(m: &Mat3, v: Vec3) -> Vec3 {
    [dot(m[0], v), dot(m[1], v), dot(m[2], v)]
}

/// Transpose.
pub fn mat_transpose(m: &Mat3) -> Mat3 {
    let mut out = [[0.0; 3]; 3];
    for (i, row) in m.iter().enumerate() {
        for (j, &x) in row.iter().enumerate() {
            out[j][i] = x;
        }
    }
    out
}

/// Determinant.
pub fn det(m: &Mat3) -> f64 {
    dot(m[0], cross(m[1], m[2]))
}

/// Eigen-decomposition of a symmetric 3×3 matrix by cyclic Jacobi rotations:
/// eigenvalues in decreasing order and the matching unit eigenvectors as the
/// *rows* of the returned matrix (a proper rotation: its determinant is +1).
pub fn sym_eigen3(m: &Mat3) -> ([f64; 3], Mat3) {
    let mut a = *m;
    let mut v = mat_identity(); // columns are eigenvectors
    for _ in 0..50 {
        let off = a[0][1].abs() + a[0][2].abs() + a[1][2].abs();
        if off < 1e-300 {
            break;
        }
        for (p, q) in [(0, 1), (0, 2), (1, 2)] {
            if a[p][q].abs() < 1e-300 {
                continue;
            }
            let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
            let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
            let t = if theta == 0.0 { 1.0 } else { t };
            let c = 1.0 / (t * t + 1.0).sqrt();
            let s = t * c;
            // a ← Jᵀ a J, v ← v J
            for row in a.iter_mut() {
                let (akp, akq) = (row[p], row[q]);
                row[p] = c * akp - s * akq;
                row[q] = s * akp + c * akq;
            }
            let (rp, rq) = (a[p], a[q]);
            a[p] = std::array::from_fn(|k| c * rp[k] - s * rq[k]);
            a[q] = std::array::from_fn(|k| s * rp[k] + c * rq[k]);
            for row in v.iter_mut() {
                let (vp, vq) = (row[p], row[q]);
                row[p] = c * vp - s * vq;
                row[q] = s * vp + c * vq;
            }
        }
    }
    let mut order = [0usize, 1, 2];
    order.sort_by(|&i, &j| a[j][j].total_cmp(&a[i][i]));
    let values = order.map(|i| a[i][i]);
    let mut vecs = order.map(|i| [v[0][i], v[1][i], v[2][i]]);
    if det(&vecs) < 0.0 {
        vecs[2] = scale(vecs[2], -1.0);
    }
    (values, vecs)
}

/// Solves `A·x = b` for a small symmetric positive-definite `A` (Cholesky);
/// `None` when `A` is not positive definite.
pub fn solve_spd(a: &[f64], b: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if s <= 0.0 || !s.is_finite() {
                    return None;
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    let mut y = vec![0.0; n];
    for i in 0..n {
        let s: f64 = (0..i).map(|k| l[i * n + k] * y[k]).sum();
        y[i] = (b[i] - s) / l[i * n + i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|k| l[k * n + i] * x[k]).sum();
        x[i] = (y[i] - s) / l[i * n + i];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_eigen_decomposition_reconstructs_the_matrix() {
        let m = [[4.0, 1.0, -2.0], [1.0, 2.0, 0.5], [-2.0, 0.5, 3.0]];
        let (l, v) = sym_eigen3(&m);
        assert!(l[0] >= l[1] && l[1] >= l[2]);
        assert!((det(&v) - 1.0).abs() < 1e-12);
        for (k, row) in v.iter().enumerate() {
            let mv = mat_vec(&m, *row);
            for i in 0..3 {
                assert!((mv[i] - l[k] * row[i]).abs() < 1e-10, "{k}: {mv:?}");
            }
        }
        let (d, _) = sym_eigen3(&[[2.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 1.0]]);
        assert_eq!(d, [5.0, 2.0, 1.0]);
    }

    #[test]
    fn angle_between_is_accurate_for_tiny_angles() {
        let a = [1.0, 0.0, 0.0];
        let b = [1.0, 1e-9, 0.0];
        assert!((angle_between(a, b) - 1e-9).abs() < 1e-20);
        assert!((angle_between(a, [-1.0, 0.0, 0.0]) - std::f64::consts::PI).abs() < 1e-15);
    }

    #[test]
    fn matrix_helpers() {
        let m = [[1.0, 2.0, 3.0], [0.0, 1.0, 4.0], [5.0, 6.0, 0.0]];
        assert_eq!(det(&m), 1.0);
        assert_eq!(mat_mul(&m, &mat_identity()), m);
        assert_eq!(mat_transpose(&mat_transpose(&m)), m);
        assert_eq!(mat_vec(&m, [1.0, 0.0, 0.0]), [1.0, 0.0, 5.0]);
        assert!(normalize([0.0; 3]).is_none());
        assert!(normalize([f64::NAN, 0.0, 1.0]).is_none());
    }
}
