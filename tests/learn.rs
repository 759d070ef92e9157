//! Structure learning on synthetic frames with a known answer.

use std::sync::atomic::AtomicBool;

use posescope::estimate::learn::compare::{align, chamfer};
use posescope::estimate::learn::data::FrameId;
use posescope::estimate::learn::{InitShape, LearnConfig, LearnState, Learner, StepOutcome};
use posescope::geometry::{Quat, Symmetry};
use posescope::io::Frame;
use posescope::render::cpu::render_frame_into;
use posescope::render::kernel::Scratch;
use posescope::render::SplatParams;
use posescope::shapes::{Model, Units};
use rand::SeedableRng;

const SIDE: usize = 40;

/// Eight blobs on a ring of radius 10 px.
fn blobs() -> Model {
    Model::ring_of_blobs(10.0, 8, 24, 0.8, Units::Px, 3).unwrap()
}

/// Noiseless frames of `model` at random orientations and small shifts.
fn frames(model: &Model, n: usize, seed: u64) -> Vec<(FrameId, Frame)> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let params = SplatParams::new(SIDE, SIDE, 1.2);
    (0..n)
        .map(|k| {
            let q = Quat::random_uniform(&mut rng);
            let shift = [(k % 5) as f64 * 0.4 - 0.8, (k % 3) as f64 * 0.5 - 0.5];
            let mut img = vec![0.0f32; SIDE * SIDE];
            let w: Vec<f32> = model.weights.iter().map(|w| w * 50.0).collect();
            render_frame_into(
                &model.points,
                &w,
                &q.to_matrix(),
                shift,
                &params,
                &mut Scratch::default(),
                &mut img,
            )
            .unwrap();
            let data = img.iter().map(|v| v + 10.0).collect();
            (
                FrameId {
                    file: None,
                    frame: k,
                },
                Frame::new(SIDE, SIDE, data),
            )
        })
        .collect()
}

fn config(iterations: usize) -> LearnConfig {
    LearnConfig {
        init: InitShape::Auto,
        points: 192,
        symmetry: Symmetry::parse("c8").unwrap(),
        iterations,
        seed: 4,
        sigma: 1.2,
        search: 1200,
        top: 2,
        steps: 20,
    }
}

fn run(l: &mut Learner) {
    let cancel = AtomicBool::new(false);
    l.run(None, &cancel, &mut |_| {}, &mut |_, _| {}).unwrap();
}

#[test]
fn eight_blobs_on_a_ring_are_recovered_from_noiseless_frames() {
    let truth = blobs();
    let mut l = Learner::new(frames(&truth, 48, 11), config(10)).unwrap();
    run(&mut l);
    let learned = l.result().unwrap();
    let a = align(
        &learned.model.points,
        &learned.model.weights,
        &truth.points,
        &truth.weights,
    );
    // a smooth ring of the same radius is ~1.3 px from the blobs: the blobs must be resolved
    let ring: Vec<[f64; 3]> = (0..192)
        .map(|i| {
            let t = std::f64::consts::TAU * i as f64 / 192.0;
            [10.0 * t.cos(), 10.0 * t.sin(), 0.0]
        })
        .collect();
    let known: Vec<[f64; 3]> = truth.points.iter().map(|p| p.map(|x| x as f64)).collect();
    let smooth = chamfer(&ring, &known);
    assert!(
        a.chamfer < 0.6 && a.chamfer < 0.6 * smooth,
        "Chamfer {:.3} px (a smooth ring: {smooth:.3} px)",
        a.chamfer
    );
    assert_eq!(learned.poses.len(), 48);
    assert!(
        learned.poses.iter().all(|r| r.score > 0.95),
        "every frame fits"
    );
}

#[test]
fn a_run_is_deterministic_for_a_seed_whatever_the_threads() {
    let truth = blobs();
    let data = frames(&truth, 24, 5);
    let mut a = Learner::new(data.clone(), config(2)).unwrap();
    run(&mut a);
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let mut b = Learner::new(data.clone(), config(2)).unwrap();
    one_thread.install(|| run(&mut b));
    assert_eq!(a.state().cloud, b.state().cloud);
    assert_eq!(a.state().poses, b.state().poses);
    let mut other_seed = config(2);
    other_seed.seed = 5;
    let mut c = Learner::new(data, other_seed).unwrap();
    run(&mut c);
    assert_ne!(a.state().cloud, c.state().cloud, "the seed matters");
}

#[test]
fn resume_from_a_checkpoint_continues_to_the_same_result() {
    let truth = blobs();
    let data = frames(&truth, 24, 6);
    let mut whole = Learner::new(data.clone(), config(4)).unwrap();
    run(&mut whole);

    let tmp = tempfile::tempdir().unwrap();
    let ckpt = tmp.path().join("run.ckpt.json");
    let mut first = Learner::new(data.clone(), config(4)).unwrap();
    let cancel = AtomicBool::new(false);
    for _ in 0..2 {
        assert!(matches!(
            first.step(&cancel, &mut |_| {}),
            StepOutcome::Done(_)
        ));
    }
    first.state().save(&ckpt).unwrap();
    drop(first);
    let state = LearnState::load(&ckpt).unwrap();
    assert_eq!(state.iteration, 2);
    let mut resumed = Learner::resume(data.clone(), state).unwrap();
    run(&mut resumed);
    assert_eq!(resumed.state().cloud, whole.state().cloud);
    assert_eq!(resumed.state().poses, whole.state().poses);

    // a checkpoint of other data is refused with a reason
    let state = LearnState::load(&ckpt).unwrap();
    let e = Learner::resume(data[..12].to_vec(), state).err().unwrap();
    assert!(e.to_string().contains("24 frames"), "{e}");
    // and a damaged one names the file
    std::fs::write(&ckpt, "{\"version\": 1, \"cloud\": ").unwrap();
    let e = LearnState::load(&ckpt).unwrap_err();
    assert!(e.to_string().contains("run.ckpt.json"), "{e}");
}

#[test]
fn cancel_keeps_the_last_whole_iteration() {
    let truth = blobs();
    let mut l = Learner::new(frames(&truth, 16, 7), config(3)).unwrap();
    let cancel = AtomicBool::new(false);
    assert!(matches!(l.step(&cancel, &mut |_| {}), StepOutcome::Done(_)));
    let before = l.state().clone();
    cancel.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(l.step(&cancel, &mut |_| {}), StepOutcome::Cancelled);
    assert_eq!(*l.state(), before);
}

#[test]
fn settings_and_inputs_that_cannot_be_learned_are_refused() {
    let truth = blobs();
    let mut c = config(2);
    c.symmetry = Symmetry::TORUS;
    let e = Learner::new(frames(&truth, 4, 1), c).err().unwrap();
    assert!(e.to_string().contains("finite prior"), "{e}");
    let mut c = config(2);
    c.sigma = f64::NAN;
    assert!(Learner::new(frames(&truth, 4, 1), c).is_err());
    let blank = vec![
        (
            FrameId {
                file: None,
                frame: 0
            },
            Frame::zeros(SIDE, SIDE)
        );
        3
    ];
    let e = Learner::new(blank, config(2)).err().unwrap();
    assert!(e.to_string().contains("at least two"), "{e}");
}
