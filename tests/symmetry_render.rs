//! Every symmetry-equivalent pose renders the same image (property test
//! through the real renderer), and the symmetry-aware errors ignore them.

use posescope::geometry::{Pose, Quat, Symmetry};
use posescope::render::cpu::render_frame;
use posescope::render::SplatParams;
use posescope::shapes::{Model, TorusSpec, Units};
use proptest::prelude::*;
use rand::SeedableRng;

fn render(model: &Model, q: Quat, shift: [f64; 2]) -> Vec<f32> {
    let params = SplatParams::new(64, 64, 1.4);
    render_frame(
        &model.points,
        &model.weights,
        &q.to_matrix(),
        shift,
        &params,
    )
    .unwrap()
}

fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
    let peak = a.iter().cloned().fold(0.0f32, f32::max);
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max)
        / peak
}

fn quat_strategy() -> impl Strategy<Value = Quat> {
    any::<u64>().prop_map(|s| Quat::random_uniform(&mut rand_chacha::ChaCha8Rng::seed_from_u64(s)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn torus_equivalent_poses_render_identically(q in quat_strategy(), sx in -4.0f64..4.0, sy in -4.0f64..4.0) {
        let n_az = 24;
        let torus = Model::torus_grid(TorusSpec { major_radius: 14.0, tube_radius: 4.0, units: Units::Px }, n_az, 10).unwrap();
        let base = render(&torus, q, [sx, sy]);
        let eq = Symmetry::TORUS.equivalent_poses(q, n_az);
        prop_assert!(eq.len() >= 4 * n_az, "only {} equivalent poses", eq.len());
        for e in &eq {
            let img = render(&torus, e.q, [sx, sy]);
            let d = max_rel_diff(&base, &img);
            prop_assert!(d < 1e-4, "{:?} ({}) renders differently: {}", e.kind, e.description, d);
            // and the errors do not see the difference
            prop_assert!(Symmetry::TORUS.rotation_error(e.q, q) < 1e-6);
            prop_assert!(Symmetry::TORUS.axis_error(e.q, q) < 1e-6);
        }
    }

    #[test]
    fn ring_of_blobs_equivalent_poses_render_identically(q in quat_strategy()) {
        let ring = Model::ring_of_blobs(15.0, 8, 8, 1.5, Units::Px, 3).unwrap();
        let base = render(&ring, q, [0.0, 0.0]);
        for e in ring.symmetry.equivalent_poses(q, 8) {
            let d = max_rel_diff(&base, &render(&ring, e.q, [0.0, 0.0]));
            prop_assert!(d < 1e-4, "{:?} renders differently: {}", e.kind, d);
            prop_assert!(ring.symmetry.rotation_error(e.q, q) < 1e-6);
        }
    }
}

#[test]
fn a_non_equivalent_pose_renders_differently_and_has_an_error() {
    let torus = Model::torus_grid(
        TorusSpec {
            major_radius: 14.0,
            tube_radius: 4.0,
            units: Units::Px,
        },
        24,
        10,
    )
    .unwrap();
    let q = Quat::from_euler_zyz_deg(20.0, 50.0, 0.0);
    let other = Quat::from_euler_zyz_deg(20.0, 65.0, 0.0);
    let d = max_rel_diff(
        &render(&torus, q, [0.0; 2]),
        &render(&torus, other, [0.0; 2]),
    );
    assert!(
        d > 0.05,
        "a 15° tilt change should change the image, got {d}"
    );
    let err = Symmetry::TORUS.axis_error(other, q).to_degrees();
    assert!((err - 15.0).abs() < 1e-6, "axis error {err}");
    // the projection mirror of the ring is a different rotation, but the same image
    let mirror = Symmetry::TORUS
        .equivalent_poses(q, 24)
        .into_iter()
        .find(|e| e.kind == posescope::geometry::EquivalenceKind::ProjectionMirror)
        .expect("the torus lists its projection mirror");
    assert!(mirror.q.angle_to(q).to_degrees() > 10.0);
    let _ = Pose::new(mirror.q, [0.0; 2]);
}
