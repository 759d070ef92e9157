//! The live view's derived data, with no egui in it: the display model
//! (rebuilt when the model spec changes), the model rendered at the slider
//! pose on the frame on screen and its score, and the symmetry-explorer
//! sweeps. Everything here is a cache of the session: [`LiveView::update`]
//! renders once per new `(document, frame, pose, model)` and does nothing
//! otherwise, so the score shown is always the score of what is drawn.

use std::sync::Arc;

use super::state::{DocId, PoseControls, Session};
use crate::estimate::pose::fit::FitOptions;
use crate::estimate::pose::pipeline::ModelSpec;
use crate::io::Frame;
use crate::render::kernel::Scratch;
use crate::render::scene::{render_state, score, FitModel};

/// Steps of the symmetry-explorer sweeps (5° apart).
pub const SWEEP_STEPS: usize = 73;

/// Score of each rotation angle swept through 360° with the others fixed.
#[derive(Clone, Debug)]
pub struct Sweeps {
    /// The controls the sweeps were computed for.
    pub at: PoseControls,
    /// The frame they were computed on.
    pub key: (DocId, usize),
    /// `(angle°, score)` per Euler angle.
    pub curves: [Vec<[f64; 2]>; 3],
}

/// What a render depends on: document, frame, every slider and the model.
type RenderKey = (DocId, usize, [u64; 8], usize);

/// The model and its live render.
pub struct LiveView {
    /// The display model (the fitter's own, so the live score is a fit's score).
    pub model: Arc<FitModel>,
    model_key: Option<ModelSpec>,
    render_key: Option<RenderKey>,
    /// The model rendered at the slider pose, at the frame's size.
    pub render: Vec<f32>,
    /// NCC of the frame on screen and `render` (non-finite pixels count as
    /// the frame's median, as in a fit).
    pub score: f64,
    /// NaN and ±∞ pixels of the frame on screen.
    pub nonfinite: usize,
    /// The posed model's points (model frame), for the 3D view and the GPU splat.
    pub points: Vec<[f32; 3]>,
    /// The latest sweeps.
    pub sweeps: Option<Sweeps>,
    /// Renders made (for tests: one per pose change).
    pub renders: u64,
}

impl Default for LiveView {
    fn default() -> Self {
        Self {
            model: Arc::new(FitModel::torus(20.0, 5.0, 1.6)),
            model_key: None,
            render_key: None,
            render: Vec::new(),
            score: f64::NAN,
            nonfinite: 0,
            points: Vec::new(),
            sweeps: None,
            renders: 0,
        }
    }
}

impl LiveView {
    /// Rebuilds the display model when `spec` changed; an unusable spec is an error
    /// (the previous model stays).
    pub fn set_model(
        &mut self,
        spec: &ModelSpec,
    ) -> Result<(), crate::estimate::pose::pipeline::PipelineError> {
        if Some(spec) == self.model_key.as_ref() {
            return Ok(());
        }
        self.model_key = Some(spec.clone());
        let m = spec.fit_model(FitOptions::default().sigma)?;
        self.model = Arc::new(m);
        self.render_key = None;
        self.sweeps = None;
        Ok(())
    }

    /// The frame on screen now holds other pixels: render and score again,
    /// and drop its sweeps.
    pub fn frame_changed(&mut self) {
        self.render_key = None;
        self.sweeps = None;
    }

    /// Re-renders and rescores when the frame, the pose or the model changed.
    /// Returns whether it rendered.
    pub fn update(&mut self, session: &Session) -> bool {
        let Some((doc, frame)) = session.frame_key() else {
            return false;
        };
        let Some(f) = session.current_frame() else {
            return false;
        };
        let c = session.controls;
        let key = (
            doc,
            frame,
            [
                c.euler[0].to_bits(),
                c.euler[1].to_bits(),
                c.euler[2].to_bits(),
                c.shift[0].to_bits(),
                c.shift[1].to_bits(),
                c.sigma.to_bits(),
                c.scale.to_bits(),
                c.tube_px.to_bits(),
            ],
            Arc::as_ptr(&self.model) as usize,
        );
        if self.render_key == Some(key) {
            return false;
        }
        let st = c.state();
        self.render = render_state(&self.model, &st, f.width, f.height, &mut Scratch::default());
        (self.score, self.nonfinite) = match f.finite_filled() {
            Some((filled, n)) => (crate::render::scene::ncc(&filled.data, &self.render), n),
            None => (f64::NAN, f.data.len()),
        };
        self.points = self.model.points(st.shape);
        self.render_key = Some(key);
        self.renders += 1;
        true
    }

    /// True when the sweeps shown belong to the frame and pose on screen.
    pub fn sweeps_current(&self, session: &Session) -> bool {
        let key = session.frame_key();
        self.sweeps
            .as_ref()
            .is_some_and(|s| Some(s.key) == key && s.at == session.controls)
    }
}

/// Scores of each Euler angle swept over −180…180° with the others fixed.
pub fn sweep_scores(frame: &Frame, model: &FitModel, at: &PoseControls) -> [Vec<[f64; 2]>; 3] {
    use rayon::prelude::*;
    let Some((frame, _)) = frame.finite_filled() else {
        return [Vec::new(), Vec::new(), Vec::new()];
    };
    let frame = &*frame;
    [0usize, 1, 2].map(|k| {
        (0..SWEEP_STEPS)
            .into_par_iter()
            .map(|i| {
                let angle = -180.0 + 360.0 * i as f64 / (SWEEP_STEPS - 1) as f64;
                let mut c = *at;
                c.euler[k] = angle;
                [
                    angle,
                    score(&frame.data, frame.width, frame.height, model, &c.state()),
                ]
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::super::state::Document;
    use super::*;

    /// A noiseless torus frame (`size`²) at rot 40°, tilt 60°.
    fn torus_at_tilt_60(size: usize) -> (FitModel, PoseControls, Frame) {
        let model = FitModel::torus(20.0, 5.0, 1.6);
        let truth = PoseControls {
            euler: [40.0, 60.0, 0.0],
            ..PoseControls::default()
        };
        let data = render_state(&model, &truth.state(), size, size, &mut Scratch::default());
        (model, truth, Frame::new(size, size, data))
    }

    #[test]
    fn sweeps_peak_at_the_true_tilt_and_are_flat_in_psi() {
        let (model, truth, frame) = torus_at_tilt_60(96);
        let [rot, tilt, psi] = sweep_scores(&frame, &model, &truth);
        let best = |c: &Vec<[f64; 2]>| {
            c.iter()
                .cloned()
                .fold([0.0, -2.0], |a, p| if p[1] > a[1] { p } else { a })
        };
        assert!(
            (best(&tilt)[0] - 60.0).abs() <= 5.0 || (best(&tilt)[0] + 60.0).abs() <= 5.0,
            "{:?}",
            best(&tilt)
        );
        assert!(best(&rot)[1] > 0.99);
        let (lo, hi) = psi
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), p| (l.min(p[1]), h.max(p[1])));
        assert!(
            hi - lo < 1e-3,
            "psi (the invisible spin) changes the score: {lo}..{hi}"
        );
        assert_eq!(rot.len(), SWEEP_STEPS);
    }

    #[test]
    fn a_pose_change_renders_once() {
        let (_, truth, frame) = torus_at_tilt_60(64);
        let mut session = Session::default();
        session.add_document(Document::in_memory("/t.tif", vec![frame]));
        session.controls = truth;
        let mut live = LiveView::default();
        live.set_model(&ModelSpec::default()).unwrap();
        assert!(live.update(&session));
        assert!(!live.update(&session), "same pose rendered twice");
        assert!(live.score > 0.99, "{}", live.score);
        session.controls.euler[1] = 10.0;
        assert!(live.update(&session));
        assert!(live.score < 0.99, "{}", live.score);
        assert_eq!(live.renders, 2);
    }
}
