//! Property tests of rotations, symmetry-equivalent poses and pose errors.

use std::f64::consts::{FRAC_PI_2, PI};

use posescope::geometry::{
    axis_error, det, mat_identity, mat_mul, mat_transpose, mat_vec, mirror_z, projection_mirror,
    EquivalenceKind, Mat3, Quat, Symmetry, SymmetryGroup, Vec3,
};
use posescope::shapes::{Model, TorusSpec, Units};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

// ---------------------------------------------------------------- helpers

fn mat_close(a: &Mat3, b: &Mat3, tol: f64) -> bool {
    (0..3).all(|i| (0..3).all(|j| (a[i][j] - b[i][j]).abs() <= tol))
}

fn vec_close(a: Vec3, b: Vec3, tol: f64) -> bool {
    (0..3).all(|i| (a[i] - b[i]).abs() <= tol)
}

/// Same rotation (up to the sign of q).
fn same_rotation(a: Quat, b: Quat, tol: f64) -> bool {
    a.angle_to(b) <= tol
}

/// Rotation angle from the matrix trace, an independent reference for angle_to.
fn matrix_angle(a: Quat, b: Quat) -> f64 {
    let r = mat_mul(&mat_transpose(&a.to_matrix()), &b.to_matrix());
    let tr = r[0][0] + r[1][1] + r[2][2];
    ((tr - 1.0) / 2.0).clamp(-1.0, 1.0).acos()
}

fn unit_angle(a: Vec3, b: Vec3) -> f64 {
    let na = (a[0] * a[0] + a[1] * a[1] + a[2] * a[2]).sqrt();
    let nb = (b[0] * b[0] + b[1] * b[1] + b[2] * b[2]).sqrt();
    let c = (a[0] * b[0] + a[1] * b[1] + a[2] * b[2]) / (na * nb);
    c.clamp(-1.0, 1.0).acos()
}

/// Gram–Schmidt of two 3-vectors into a rotation matrix (independent of the library).
fn gram_schmidt(v: &[f64; 6]) -> Mat3 {
    let a1 = [v[0], v[1], v[2]];
    let a2 = [v[3], v[4], v[5]];
    let n1 = (a1[0] * a1[0] + a1[1] * a1[1] + a1[2] * a1[2]).sqrt();
    let b1 = a1.map(|x| x / n1);
    let d = b1[0] * a2[0] + b1[1] * a2[1] + b1[2] * a2[2];
    let u = [a2[0] - d * b1[0], a2[1] - d * b1[1], a2[2] - d * b1[2]];
    let nu = (u[0] * u[0] + u[1] * u[1] + u[2] * u[2]).sqrt();
    let b2 = u.map(|x| x / nu);
    let b3 = [
        b1[1] * b2[2] - b1[2] * b2[1],
        b1[2] * b2[0] - b1[0] * b2[2],
        b1[0] * b2[1] - b1[1] * b2[0],
    ];
    [
        [b1[0], b2[0], b3[0]],
        [b1[1], b2[1], b3[1]],
        [b1[2], b2[2], b3[2]],
    ]
}

/// Projects a model's points with rotation q (orthographic: drop camera z).
fn project(model: &Model, q: Quat) -> Vec<[f64; 2]> {
    model
        .points
        .iter()
        .map(|p| {
            let r = q.rotate(p.map(f64::from));
            [r[0], r[1]]
        })
        .collect()
}

/// Whether two 2D point multisets are equal to `tol`: same size, and a
/// greedy one-to-one nearest-neighbour matching (after sorting by x) pairs
/// every point within `tol`.
fn same_point_set(a: &[[f64; 2]], b: &[[f64; 2]], tol: f64) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut b: Vec<[f64; 2]> = b.to_vec();
    b.sort_by(|p, q| p[0].total_cmp(&q[0]));
    let mut used = vec![false; b.len()];
    for p in a {
        // Candidates have |x − p.x| ≤ tol: binary search the window.
        let lo = b.partition_point(|q| q[0] < p[0] - tol);
        let mut best: Option<(usize, f64)> = None;
        for (j, q) in b.iter().enumerate().skip(lo) {
            if q[0] > p[0] + tol {
                break;
            }
            if used[j] {
                continue;
            }
            let d = ((q[0] - p[0]).powi(2) + (q[1] - p[1]).powi(2)).sqrt();
            if d <= tol && best.is_none_or(|(_, bd)| d < bd) {
                best = Some((j, d));
            }
        }
        match best {
            Some((j, _)) => used[j] = true,
            None => return false,
        }
    }
    true
}

/// A C8 model without mirror symmetry and without flips: eight copies of a
/// chiral, out-of-plane blob.
fn c8_model() -> Model {
    let template: [[f64; 3]; 5] = [
        [50.0, 0.0, 0.0],
        [52.0, 3.0, 4.0],
        [49.0, 5.0, -1.0],
        [55.0, -2.0, 7.0],
        [47.0, 1.5, 2.5],
    ];
    let mut points = Vec::new();
    for k in 0..8 {
        let (s, c) = (2.0 * PI * k as f64 / 8.0).sin_cos();
        for t in &template {
            points.push([
                (c * t[0] - s * t[1]) as f32,
                (s * t[0] + c * t[1]) as f32,
                t[2] as f32,
            ]);
        }
    }
    Model::from_points("c8", points, Units::Nm)
        .unwrap()
        .with_symmetry(Symmetry::new(SymmetryGroup::Cyclic(8), false))
}

fn d8_model() -> Model {
    Model::ring_of_blobs(50.0, 8, 12, 4.0, Units::Nm, 7).unwrap()
}

fn torus_model(n_azimuth: usize) -> Model {
    let spec = TorusSpec {
        major_radius: 20.0,
        tube_radius: 6.0,
        units: Units::Px,
    };
    Model::torus_grid(spec, n_azimuth, 10).unwrap()
}

fn d8m() -> Symmetry {
    Symmetry::new(SymmetryGroup::Dihedral(8), true)
}

fn test_symmetries() -> Vec<Symmetry> {
    let mut v = Vec::new();
    for g in [
        SymmetryGroup::C1,
        SymmetryGroup::Cyclic(8),
        SymmetryGroup::Dihedral(8),
        SymmetryGroup::Dihedral(3),
        SymmetryGroup::CInf,
        SymmetryGroup::DInf,
    ] {
        v.push(Symmetry::new(g, false));
        v.push(Symmetry::new(g, true));
    }
    v
}

// ---------------------------------------------------------------- strategies

/// Uniformly random rotations (normalised 4-vectors away from zero).
fn quat() -> impl Strategy<Value = Quat> {
    prop::array::uniform4(-1.0f64..1.0)
        .prop_filter("non-degenerate", |a| {
            a.iter().map(|x| x * x).sum::<f64>() > 0.01
        })
        .prop_map(|a| Quat::new(a[0], a[1], a[2], a[3]))
}

fn vec3() -> impl Strategy<Value = Vec3> {
    prop::array::uniform3(-1.0f64..1.0)
        .prop_filter("non-zero", |a| a.iter().map(|x| x * x).sum::<f64>() > 1e-4)
}

// ---------------------------------------------------------------- rotations

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn matrix_round_trip(q in quat()) {
        let back = Quat::from_matrix(&q.to_matrix());
        prop_assert!(same_rotation(q, back, 1e-12));
        prop_assert!(back.w >= 0.0);
        prop_assert!((back.norm() - 1.0).abs() < 1e-14);
    }

    #[test]
    fn matrix_is_orthonormal_with_det_one(q in quat()) {
        let m = q.to_matrix();
        prop_assert!(mat_close(&mat_mul(&mat_transpose(&m), &m), &mat_identity(), 1e-14));
        prop_assert!((det(&m) - 1.0).abs() < 1e-14);
    }

    #[test]
    fn composition_matches_matrix_product(a in quat(), b in quat(), v in vec3()) {
        let ab = (a * b).to_matrix();
        prop_assert!(mat_close(&ab, &mat_mul(&a.to_matrix(), &b.to_matrix()), 1e-14));
        prop_assert_eq!(a * b, a.mul(b));
        prop_assert!(vec_close(a.rotate(v), mat_vec(&a.to_matrix(), v), 1e-14));
        prop_assert!(vec_close(a.conj().rotate(a.rotate(v)), v, 1e-14));
        // The axis is the third column.
        let m = a.to_matrix();
        prop_assert!(vec_close(a.axis(), [m[0][2], m[1][2], m[2][2]], 1e-14));
    }

    #[test]
    fn axis_angle_round_trip(axis in vec3(), angle in 0.0f64..PI) {
        let q = Quat::from_axis_angle(axis, angle);
        let (a2, ang2) = q.to_axis_angle();
        prop_assert!((ang2 - angle).abs() < 1e-9);
        prop_assert!(same_rotation(Quat::from_axis_angle(a2, ang2), q, 1e-12));
        if angle > 1e-6 {
            prop_assert!(unit_angle(a2, axis) < 1e-7);
        }
        prop_assert!((matrix_angle(Quat::IDENTITY, q) - angle).abs() < 1e-7);
    }

    #[test]
    fn rotvec_round_trip(q in quat()) {
        let v = q.to_rotvec();
        let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
        prop_assert!(n <= PI + 1e-12);
        prop_assert!(same_rotation(Quat::from_rotvec(v), q, 1e-12));
    }

    #[test]
    fn rotvec_from_vector(v in prop::array::uniform3(-3.0f64..3.0)) {
        let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
        prop_assume!(n < PI - 1e-6);
        prop_assert!(vec_close(Quat::from_rotvec(v).to_rotvec(), v, 1e-12));
    }

    #[test]
    fn six_d_round_trip(q in quat()) {
        prop_assert!(same_rotation(Quat::from_6d(&q.to_6d()), q, 1e-12));
        prop_assert!(same_rotation(Quat::try_from_6d(&q.to_6d()).unwrap(), q, 1e-12));
    }

    #[test]
    fn six_d_of_perturbed_input_is_gram_schmidt(
        q in quat(),
        noise in prop::array::uniform6(-0.3f64..0.3),
        s1 in 0.2f64..5.0,
        s2 in 0.2f64..5.0,
    ) {
        let c = q.to_6d();
        let mut v = [0.0; 6];
        for i in 0..6 {
            let s = if i < 3 { s1 } else { s2 };
            v[i] = s * c[i] + noise[i];
        }
        let a1 = [v[0], v[1], v[2]];
        let a2 = [v[3], v[4], v[5]];
        // Keep away from (near-)degenerate input, where Gram–Schmidt itself
        // is ill-conditioned and any two implementations may differ.
        prop_assume!(a1.iter().map(|x| x * x).sum::<f64>() > 0.01);
        let ang = unit_angle(a1, a2);
        prop_assume!(ang.sin() > 0.05);
        let got = Quat::from_6d(&v).to_matrix();
        prop_assert!(mat_close(&got, &gram_schmidt(&v), 1e-10));
        // The first column keeps the direction of a1.
        prop_assert!(unit_angle([got[0][0], got[1][0], got[2][0]], a1) < 1e-7);
    }

    #[test]
    fn euler_round_trip_away_from_gimbal(
        rot in -PI + 1e-6..PI,
        tilt in 1e-3f64..PI - 1e-3,
        psi in -PI + 1e-6..PI,
    ) {
        let q = Quat::from_euler_zyz(rot, tilt, psi);
        let (r2, t2, p2) = q.to_euler_zyz();
        prop_assert!((r2 - rot).abs() < 1e-9, "rot {} vs {}", r2, rot);
        prop_assert!((t2 - tilt).abs() < 1e-9);
        prop_assert!((p2 - psi).abs() < 1e-9, "psi {} vs {}", p2, psi);
        let axis = q.axis();
        let want = [rot.cos() * tilt.sin(), rot.sin() * tilt.sin(), tilt.cos()];
        prop_assert!(vec_close(axis, want, 1e-12));
    }

    #[test]
    fn euler_from_any_rotation_round_trips(q in quat()) {
        let (r, t, p) = q.to_euler_zyz();
        prop_assert!(r > -PI && r <= PI && p > -PI && p <= PI && (0.0..=PI).contains(&t));
        prop_assert!(mat_close(&Quat::from_euler_zyz(r, t, p).to_matrix(), &q.to_matrix(), 1e-9));
        let (rd, td, pd) = q.to_euler_zyz_deg();
        prop_assert!(same_rotation(Quat::from_euler_zyz_deg(rd, td, pd), q, 1e-9));
    }

    #[test]
    fn euler_at_gimbal_round_trips_matrix(
        rot in -PI..PI,
        psi in -PI..PI,
        flip in any::<bool>(),
        eps in 0.0f64..1e-10,
    ) {
        let tilt = if flip { PI - eps } else { eps };
        let q = Quat::from_euler_zyz(rot, tilt, psi);
        let (r2, t2, p2) = q.to_euler_zyz();
        prop_assert_eq!(p2, 0.0);
        prop_assert!(r2.is_finite() && t2.is_finite());
        prop_assert!(mat_close(&Quat::from_euler_zyz(r2, t2, p2).to_matrix(), &q.to_matrix(), 1e-9));
    }

    #[test]
    fn angle_to_is_a_sign_invariant_symmetric_metric(a in quat(), b in quat(), c in quat()) {
        let d = a.angle_to(b);
        prop_assert!((0.0..=PI).contains(&d));
        prop_assert!((d - b.angle_to(a)).abs() < 1e-14);
        prop_assert!((d - (-a).angle_to(b)).abs() < 1e-14);
        prop_assert!((d - a.angle_to(-b)).abs() < 1e-14);
        prop_assert!((d - matrix_angle(a, b)).abs() < 1e-6);
        prop_assert_eq!(a.angle_to(a), 0.0);
        // Bi-invariance and the triangle inequality.
        prop_assert!((d - (c * a).angle_to(c * b)).abs() < 1e-12);
        prop_assert!((d - (a * c).angle_to(b * c)).abs() < 1e-12);
        prop_assert!(d <= a.angle_to(c) + c.angle_to(b) + 1e-12);
    }

    #[test]
    fn canonical_is_same_rotation_with_nonnegative_w(q in quat()) {
        let c = (-q).canonical();
        prop_assert!(c.w >= 0.0);
        prop_assert!(same_rotation(c, q, 1e-15));
        prop_assert_eq!(c, q.canonical());
    }

    #[test]
    fn slerp_moves_along_the_geodesic(a in quat(), b in quat(), t in 0.0f64..1.0) {
        let s = a.slerp(b, t);
        let d = a.angle_to(b);
        prop_assert!((s.norm() - 1.0).abs() < 1e-12);
        prop_assert!((a.angle_to(s) - t * d).abs() < 1e-9);
        prop_assert!((s.angle_to(b) - (1.0 - t) * d).abs() < 1e-9);
    }
}

#[test]
fn random_uniform_is_uniform_on_so3() {
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    let n = 20_000;
    let (mut sz, mut szz, mut sx, mut scos, mut sw2) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for _ in 0..n {
        let q = Quat::random_uniform(&mut rng);
        assert!((q.norm() - 1.0).abs() < 1e-12);
        let a = q.axis();
        sz += a[2];
        szz += a[2] * a[2];
        sx += a[0];
        // Rotation angle θ has density (1 − cos θ)/π, so E[cos θ] = −1/2.
        scos += ((q.to_matrix()[0][0] + q.to_matrix()[1][1] + q.to_matrix()[2][2] - 1.0) / 2.0)
            .clamp(-1.0, 1.0);
        sw2 += q.w * q.w;
    }
    let nf = n as f64;
    // Standard errors: sqrt(1/3/n) ≈ 0.004 for the means, ≈ 0.0021 for E[z²]
    // (Var z² = 1/5 − 1/9), ≈ 0.0035 for E[cos θ] (Var = 1/4 − ... ≤ 1/4).
    let (mz, vz, mx, mcos, mw2) = (sz / nf, szz / nf, sx / nf, scos / nf, sw2 / nf);
    assert!(mz.abs() < 0.02, "mean axis z {mz}");
    assert!(mx.abs() < 0.02, "mean axis x {mx}");
    assert!((vz - 1.0 / 3.0).abs() < 0.012, "E[z²] {vz}");
    assert!((mcos + 0.5).abs() < 0.02, "E[cos θ] {mcos}");
    assert!((mw2 - 0.25).abs() < 0.01, "E[w²] {mw2}");
}

#[test]
fn random_uniform_is_deterministic_for_a_seed() {
    let a: Vec<Quat> = {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        (0..10).map(|_| Quat::random_uniform(&mut rng)).collect()
    };
    let b: Vec<Quat> = {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        (0..10).map(|_| Quat::random_uniform(&mut rng)).collect()
    };
    assert_eq!(a, b);
}

#[test]
fn serde_round_trip() {
    let q = Quat::from_euler_zyz(0.1, 0.2, 0.3);
    let s = serde_json::to_string(&q).unwrap();
    // serde_json may round the last digit; the rotation must survive.
    assert!(serde_json::from_str::<Quat>(&s).unwrap().angle_to(q) < 1e-14);
    let sym = Symmetry::TORUS;
    let s = serde_json::to_string(&sym).unwrap();
    assert_eq!(serde_json::from_str::<Symmetry>(&s).unwrap(), sym);
}

// ---------------------------------------------------------------- symmetry: images

fn check_equivalents_project_identically(model: &Model, samples: usize, q: Quat) {
    let reference = project(model, q);
    let tol = 1e-3 * model.radius().max(1.0);
    let eqs = model.symmetry.equivalent_poses(q, samples);
    assert_eq!(eqs[0].kind, EquivalenceKind::Identity);
    assert!(same_rotation(eqs[0].q, q, 0.0));
    for e in &eqs {
        assert!((e.q.norm() - 1.0).abs() < 1e-12);
        assert!(!e.description.is_empty() && !e.description.contains('\n'));
        let img = project(model, e.q);
        assert!(
            same_point_set(&reference, &img, tol),
            "{} ({:?}: {}) projects differently for q = {q}",
            model.name,
            e.kind,
            e.description
        );
    }
}

#[test]
fn every_equivalent_pose_projects_to_the_same_points() {
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let c8 = c8_model();
    let d8 = d8_model();
    let torus = torus_model(12);
    for _ in 0..6 {
        let q = Quat::random_uniform(&mut rng);
        check_equivalents_project_identically(&c8, 0, q);
        check_equivalents_project_identically(&d8, 0, q);
        check_equivalents_project_identically(&torus, 12, q);
    }
    assert_eq!(c8.symmetry.equivalent_poses(Quat::IDENTITY, 0).len(), 8);
    assert_eq!(d8.symmetry.equivalent_poses(Quat::IDENTITY, 0).len(), 32);
    assert_eq!(
        torus.symmetry.equivalent_poses(Quat::IDENTITY, 12).len(),
        48
    );
}

#[test]
fn equivalence_kinds_are_labelled() {
    let eqs = d8m().equivalent_poses(Quat::from_euler_zyz(0.3, 0.8, 0.1), 0);
    let count = |k| eqs.iter().filter(|e| e.kind == k).count();
    assert_eq!(count(EquivalenceKind::Identity), 1);
    assert_eq!(count(EquivalenceKind::Group), 15);
    assert_eq!(count(EquivalenceKind::ProjectionMirror), 1);
    assert_eq!(count(EquivalenceKind::GroupAndMirror), 15);
}

#[test]
fn non_equivalent_poses_project_differently() {
    // Guards the projection test itself: a pose that is not equivalent must
    // fail the point-set comparison.
    let q = Quat::from_euler_zyz(0.4, 0.9, 0.2);
    for (model, step) in [(c8_model(), PI / 8.0), (d8_model(), PI / 8.0)] {
        let tol = 1e-3 * model.radius();
        let a = project(&model, q);
        let spun = q * Quat::from_axis_angle([0.0, 0.0, 1.0], step);
        assert!(!same_point_set(&a, &project(&model, spun), tol));
        let tilted = q * Quat::from_axis_angle([1.0, 1.0, 0.0], 0.2);
        assert!(!same_point_set(&a, &project(&model, tilted), tol));
    }
    // The C8 model has no mirror plane: its mirror pose looks different.
    let c8 = c8_model();
    let tol = 1e-3 * c8.radius();
    assert!(!same_point_set(
        &project(&c8, q),
        &project(&c8, projection_mirror(q)),
        tol
    ));
}

// ---------------------------------------------------------------- symmetry: errors

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn errors_are_invariant_under_the_group_and_the_mirror(pred in quat(), truth in quat()) {
        for sym in test_symmetries() {
            let e = sym.rotation_error(pred, truth);
            let ea = sym.axis_error(pred, truth);
            prop_assert!((0.0..=PI).contains(&e) && (0.0..=PI).contains(&ea));
            prop_assert!(ea <= e + 1e-12, "{}: axis error {} > rotation error {}", sym, ea, e);
            prop_assert!((e - sym.rotation_error(truth, pred)).abs() < 1e-12, "{} not symmetric", sym);
            for g in sym.elements(16) {
                for (p, t) in [(pred * g, truth), (pred, truth * g)] {
                    prop_assert!((sym.rotation_error(p, t) - e).abs() < 1e-9, "{}", sym);
                    prop_assert!((sym.axis_error(p, t) - ea).abs() < 1e-9, "{}", sym);
                }
            }
            if sym.mirror_z {
                for (p, t) in [(projection_mirror(pred), truth), (pred, projection_mirror(truth))] {
                    prop_assert!((sym.rotation_error(p, t) - e).abs() < 1e-9, "{}", sym);
                    prop_assert!((sym.axis_error(p, t) - ea).abs() < 1e-9, "{}", sym);
                }
            }
            // Every listed equivalent of the truth is at zero error.
            for eq in sym.equivalent_poses(truth, 16) {
                prop_assert!(sym.rotation_error(eq.q, truth) < 1e-7, "{} {:?}", sym, eq.kind);
            }
        }
    }

    #[test]
    fn torus_axis_error_is_the_shared_formula(pred in quat(), truth in quat()) {
        let (p, t) = (pred.axis(), truth.axis());
        let m = mirror_z(t);
        let neg = |v: Vec3| v.map(|x| -x);
        let want = [t, neg(t), m, neg(m)]
            .iter()
            .map(|&c| unit_angle(p, c))
            .fold(f64::INFINITY, f64::min);
        prop_assert!((axis_error(p, t) - want).abs() < 1e-7);
        prop_assert!((Symmetry::TORUS.axis_error(pred, truth) - want).abs() < 1e-7);
        prop_assert!((Symmetry::TORUS.rotation_error(pred, truth) - want).abs() < 1e-7);
        prop_assert!(want <= FRAC_PI_2 + 1e-12);
        // The canonical axis is one of the indistinguishable four.
        let c = Symmetry::TORUS.canonical_axis(t);
        prop_assert!(axis_error(c, t) < 1e-12 && c[2] >= 0.0);
    }

    #[test]
    fn error_with_itself_is_zero(q in quat()) {
        for sym in test_symmetries() {
            prop_assert_eq!(sym.rotation_error(q, q), 0.0);
            prop_assert_eq!(sym.axis_error(q, q), 0.0);
        }
        prop_assert_eq!(axis_error(q.axis(), q.axis()), 0.0);
    }

    #[test]
    fn plain_angle_without_symmetry(pred in quat(), truth in quat()) {
        let e = Symmetry::NONE.rotation_error(pred, truth);
        prop_assert!((e - pred.angle_to(truth)).abs() < 1e-12);
        let a = Symmetry::NONE.axis_error(pred, truth);
        prop_assert!((a - unit_angle(pred.axis(), truth.axis())).abs() < 1e-7);
    }
}

#[test]
fn non_equivalent_poses_have_nonzero_error() {
    let truth = Quat::from_euler_zyz(0.5, 0.7, 0.3);
    // Half a C8/D8 step about the axis: 22.5° from the nearest equivalent.
    let half_step = truth * Quat::from_axis_angle([0.0, 0.0, 1.0], PI / 8.0);
    for sym in [
        Symmetry::new(SymmetryGroup::Cyclic(8), false),
        Symmetry::new(SymmetryGroup::Cyclic(8), true),
        d8m(),
    ] {
        let e = sym.rotation_error(half_step, truth);
        assert!((e - PI / 8.0).abs() < 1e-12, "{sym}: {e}");
        assert!(sym.axis_error(half_step, truth) < 1e-12);
    }
    // For a torus the spin is invisible, but a tilt is not.
    assert!(Symmetry::TORUS.rotation_error(half_step, truth) < 1e-12);
    let tilted = Quat::from_euler_zyz(0.5, 0.9, 0.3);
    let e = Symmetry::TORUS.rotation_error(tilted, truth);
    assert!((e - 0.2).abs() < 1e-12, "{e}");
    // An edge-on flip is equivalent for D∞ but not for C∞ without mirror.
    let flipped = truth * Quat::from_axis_angle([1.0, 0.0, 0.0], PI);
    assert!(Symmetry::TORUS.rotation_error(flipped, truth) < 1e-12);
    let cinf = Symmetry::new(SymmetryGroup::CInf, false);
    assert!((cinf.rotation_error(flipped, truth) - PI).abs() < 1e-12);
    // The projection mirror is equivalent only with mirror_z.
    let m = projection_mirror(truth);
    assert!(Symmetry::new(SymmetryGroup::Cyclic(8), true).rotation_error(m, truth) < 1e-12);
    assert!(Symmetry::new(SymmetryGroup::Cyclic(8), false).rotation_error(m, truth) > 0.1);
    assert!(Symmetry::NONE.rotation_error(m, truth) > 0.1);
}

#[test]
fn mirror_pose_axis_is_minus_mirrored_axis() {
    let q = Quat::from_euler_zyz(1.0, 0.6, -0.4);
    let t = q.axis();
    let want = mirror_z(t).map(|x| -x);
    assert!(vec_close(projection_mirror(q).axis(), want, 1e-14));
    // It is a proper rotation and an involution.
    assert!((det(&projection_mirror(q).to_matrix()) - 1.0).abs() < 1e-14);
    assert_eq!(projection_mirror(projection_mirror(q)), q);
}

#[test]
fn symmetry_names() {
    assert_eq!(Symmetry::TORUS.name(), "D∞ + mirror");
    assert_eq!(Symmetry::TORUS.to_string(), "D∞ + mirror");
    assert_eq!(Symmetry::new(SymmetryGroup::Cyclic(8), false).name(), "C8");
    assert_eq!("d8+m".parse::<Symmetry>().unwrap(), d8m());
    assert_eq!("c1".parse::<Symmetry>().unwrap(), Symmetry::NONE);
    assert_eq!(
        "CInf".parse::<Symmetry>().unwrap(),
        Symmetry::new(SymmetryGroup::CInf, false)
    );
    assert!("e8".parse::<Symmetry>().is_err());
    assert!(Symmetry::TORUS.is_axial());
    assert!(!d8m().is_axial());
}
