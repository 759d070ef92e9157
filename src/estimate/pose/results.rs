//! The results of fitting a document's frames, and what is made of them:
//! the rows of the pose CSV (`posescope fit`, the viewer's Save CSV and its
//! autosave) and the list of fitted states that "export every fitted frame"
//! walks. A pose-CSV row can be read back into a fitted state
//! ([`state_from_row`]), so `posescope export` takes what `fit` wrote.

use super::fit::{FitOutcome, StartSource};
use super::pipeline::FrameFit;
use crate::io::PoseRow;
use crate::render::scene::FitState;

/// One frame's result: fitted, or the reason it could not be.
pub type FrameResult = Result<FrameFit, String>;

/// Per-frame results of one document (or one file of a batch).
#[derive(Clone, Debug, Default)]
pub struct FitResults {
    slots: Vec<Option<FrameResult>>,
}

/// A fitted frame as an export shows it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FittedState {
    /// The frame's index.
    pub index: usize,
    pub state: FitState,
    /// The fit's score, when known.
    pub score: Option<f64>,
    /// The axis's standard error, degrees, when known.
    pub axis_sd_deg: Option<f64>,
}

impl FitResults {
    /// No results yet for `frames` frames.
    pub fn new(frames: usize) -> Self {
        Self {
            slots: vec![None; frames],
        }
    }

    /// One more frame, not fitted yet.
    pub fn push(&mut self) {
        self.slots.push(None);
    }

    /// Drops the last frame and its result (an undone added particle).
    pub fn pop(&mut self) {
        self.slots.pop();
    }

    /// Frames in the document.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True for a document of no frames.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Records frame `k`'s result (ignored past the end).
    pub fn set(&mut self, k: usize, result: FrameResult) {
        if let Some(slot) = self.slots.get_mut(k) {
            *slot = Some(result);
        }
    }

    /// Puts back frame `k`'s earlier result: `result`, or none (not fitted).
    pub fn put_back(&mut self, k: usize, result: Option<FrameResult>) {
        match result {
            Some(r) => self.set(k, r),
            None => self.clear(k),
        }
    }

    /// Forgets frame `k`'s result (it is not fitted any more).
    pub fn clear(&mut self, k: usize) {
        if let Some(slot) = self.slots.get_mut(k) {
            *slot = None;
        }
    }

    /// Frame `k`'s result: `None` when not fitted (yet).
    pub fn get(&self, k: usize) -> Option<&FrameResult> {
        self.slots.get(k).and_then(Option::as_ref)
    }

    /// Frame `k`'s fit, when it succeeded.
    pub fn fit(&self, k: usize) -> Option<&FrameFit> {
        self.get(k).and_then(|r| r.as_ref().ok())
    }

    /// Frames with a result (fitted or failed).
    pub fn done(&self) -> usize {
        self.slots.iter().filter(|r| r.is_some()).count()
    }

    /// Frames with a result, in frame order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &FrameResult)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(k, r)| Some((k, r.as_ref()?)))
    }

    /// The fitted frames' states and scores, in frame order: what
    /// "export every fitted frame" writes.
    pub fn fitted_states(&self) -> impl Iterator<Item = FittedState> + '_ {
        self.iter().filter_map(|(index, r)| {
            let o = &r.as_ref().ok()?.outcome;
            Some(FittedState {
                index,
                state: o.state,
                score: Some(o.score),
                axis_sd_deg: Some(o.axis_sd_deg).filter(|s| s.is_finite()),
            })
        })
    }

    /// The pose-CSV rows of every frame with a result, `file` in the file column.
    pub fn rows(&self, file: Option<&str>) -> Vec<PoseRow> {
        self.iter()
            .map(|(k, r)| {
                let mut row = result_row(k, r);
                row.file = file.map(str::to_string);
                row
            })
            .collect()
    }
}

/// The pose-CSV row of one frame's result.
pub fn result_row(frame: usize, result: &FrameResult) -> PoseRow {
    match result {
        Ok(fit) => outcome_row(frame, fit),
        Err(e) => PoseRow::failed(frame, e),
    }
}

/// A frame's result read back from its pose-CSV row (the inverse of
/// [`result_row`]): the fitted state with its score, convergence, iterations,
/// start and timings where the row has them, or the recorded error. `None`
/// for a row that is neither (no pose and no error).
pub fn result_from_row(row: &PoseRow, default_tube_px: f64) -> Option<FrameResult> {
    if row_failed(row) {
        return Some(Err(row.get("error").unwrap_or_default().to_string()));
    }
    let state = state_from_row(row, default_tube_px)?;
    let num = |k: &str| {
        row.get(k)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let outcome = FitOutcome {
        state,
        score: row.score,
        converged: row.get("converged") == Some("true"),
        iterations: row
            .get("iterations")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0),
        axis_sd_deg: row
            .get("axis_sd_deg")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(f64::NAN),
        z_locs: row
            .get("z_locs")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0),
        source: if row.get("start") == Some("search") {
            StartSource::Search
        } else {
            StartSource::Network
        },
        start_ms: num("start_ms"),
        refine_ms: num("refine_ms"),
    };
    Some(Ok(FrameFit {
        outcome,
        cnn_ms: num("cnn_ms"),
        nonfinite_px: num("nonfinite_px") as usize,
    }))
}

impl FitResults {
    /// The results recorded in pose-CSV rows for a document of `frames`
    /// frames, and how many rows did not fit it (frame out of range, no pose).
    pub fn from_rows(frames: usize, rows: &[PoseRow], default_tube_px: f64) -> (Self, usize) {
        let mut r = Self::new(frames);
        let mut skipped = 0;
        for row in rows {
            match result_from_row(row, default_tube_px) {
                Some(res) if row.frame < frames => r.set(row.frame, res),
                _ => skipped += 1,
            }
        }
        (r, skipped)
    }
}

/// True for a row that records a failure (a non-empty `error` column).
pub fn row_failed(row: &PoseRow) -> bool {
    row.get("error").is_some_and(|e| !e.is_empty())
}

/// The pose-CSV row of a fitted frame, with the extra columns `fit` writes.
pub fn outcome_row(frame: usize, fit: &FrameFit) -> PoseRow {
    let o = &fit.outcome;
    let mut row = PoseRow::new(frame, o.state.pose, o.state.sigma);
    row.score = o.score;
    row.set("scale", format!("{:.5}", o.state.scale));
    row.set("tube_px", format!("{:.4}", o.state.shape * o.state.scale));
    row.set("converged", o.converged);
    row.set("iterations", o.iterations);
    row.set(
        "axis_sd_deg",
        if o.axis_sd_deg.is_finite() {
            format!("{:.3}", o.axis_sd_deg)
        } else {
            String::new()
        },
    );
    if o.z_locs > 0 {
        // a 3D table's fit: its axis is not its mirror, so it has a tilt
        // direction (the azimuth of its far end, +z; 0–360° from image +x
        // towards +y), which the axis columns leave to the reader's sign
        // (the tilt itself is tilt_deg, or 180° − it, of the Euler angles)
        row.set("z_locs", o.z_locs);
        let view = super::orientations::ViewAxis::directed(o.state.pose.q);
        row.set("tilt_toward_deg", format!("{:.3}", view.azimuth_deg));
    }
    row.set("start", format!("{:?}", o.source).to_lowercase());
    row.set("cnn_ms", format!("{:.3}", fit.cnn_ms));
    row.set("start_ms", format!("{:.3}", o.start_ms));
    row.set("refine_ms", format!("{:.3}", o.refine_ms));
    row.set("nonfinite_px", fit.nonfinite_px);
    row.set("error", "");
    row
}

/// The fitted state recorded in a pose-CSV row (the inverse of
/// [`outcome_row`]); `scale` and `tube_px` default to 1 and the model's own
/// tube when the row lacks them. `None` for a failed row.
pub fn state_from_row(row: &PoseRow, default_tube_px: f64) -> Option<FitState> {
    if row_failed(row) || !row.pose.q.w.is_finite() {
        return None;
    }
    let num = |k: &str| row.get(k).and_then(|v| v.trim().parse::<f64>().ok());
    let scale = num("scale").filter(|s| *s > 0.0).unwrap_or(1.0);
    let tube_px = num("tube_px").unwrap_or(default_tube_px);
    Some(FitState {
        pose: row.pose,
        scale,
        sigma: if row.sigma.is_finite() && row.sigma > 0.0 {
            row.sigma
        } else {
            1.6
        },
        shape: tube_px / scale,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{Pose, Quat};

    #[test]
    fn rows_round_trip_the_state() {
        let q = Quat::from_euler_zyz_deg(30.0, 50.0, 0.0);
        let fit = FrameFit {
            outcome: FitOutcome {
                state: FitState {
                    pose: Pose::new(q, [1.5, -2.0]),
                    scale: 1.1,
                    sigma: 1.7,
                    shape: 4.0,
                },
                score: 0.9,
                converged: true,
                iterations: 4,
                axis_sd_deg: 0.125,
                z_locs: 212,
                source: StartSource::Network,
                start_ms: 0.0,
                refine_ms: 1.0,
            },
            cnn_ms: 0.5,
            nonfinite_px: 2,
        };
        let row = outcome_row(3, &fit);
        let st = state_from_row(&row, 5.0).unwrap();
        assert!(st.pose.q.angle_to(q) < 1e-6);
        assert!((st.scale - 1.1).abs() < 1e-4);
        assert!((st.shape * st.scale - 4.4).abs() < 1e-3);
        assert!((st.sigma - 1.7).abs() < 1e-9);
        assert!(state_from_row(&PoseRow::failed(0, "bad"), 5.0).is_none());
        // a 3D table's fit keeps how many z it used; a 2D fit writes no column
        let back = result_from_row(&row, 5.0).unwrap().unwrap();
        assert_eq!(back.outcome.z_locs, 212);
        // and the way its axis tilts
        let view = super::super::orientations::ViewAxis::directed(q);
        let col = |name: &str| row.get(name).unwrap().parse::<f64>().unwrap();
        assert!((col("tilt_toward_deg") - view.azimuth_deg).abs() < 1e-3);
        // the one tilt column is the Euler angles'
        let tilt = row.pose.q.to_euler_zyz_deg().1;
        assert!((tilt.min(180.0 - tilt) - view.tilt_deg).abs() < 1e-6);
        let mut flat = fit;
        flat.outcome.z_locs = 0;
        let flat = outcome_row(3, &flat);
        assert_eq!(flat.get("z_locs"), None);
        assert_eq!(flat.get("tilt_toward_deg"), None);
    }

    #[test]
    fn results_make_rows_in_frame_order_and_list_fitted_states() {
        let fit = |score| FrameFit {
            outcome: FitOutcome {
                state: FitState {
                    pose: Pose::new(Quat::IDENTITY, [0.0; 2]),
                    scale: 1.0,
                    sigma: 1.6,
                    shape: 5.0,
                },
                score,
                converged: true,
                iterations: 1,
                axis_sd_deg: 1.5,
                z_locs: 0,
                source: StartSource::Search,
                start_ms: 0.0,
                refine_ms: 0.0,
            },
            cnn_ms: 0.0,
            nonfinite_px: 0,
        };
        let mut r = FitResults::new(4);
        r.set(3, Ok(fit(0.5)));
        r.set(1, Err("bad frame".into()));
        r.set(0, Ok(fit(0.9)));
        r.set(9, Ok(fit(0.1))); // past the end: ignored
        assert_eq!(r.done(), 3);
        let rows = r.rows(Some("a.tif"));
        assert_eq!(rows.iter().map(|r| r.frame).collect::<Vec<_>>(), [0, 1, 3]);
        assert!(rows.iter().all(|r| r.file.as_deref() == Some("a.tif")));
        assert!(row_failed(&rows[1]) && !row_failed(&rows[0]));
        let states: Vec<_> = r.fitted_states().map(|f| (f.index, f.score)).collect();
        assert_eq!(states, [(0, Some(0.9)), (3, Some(0.5))]);
    }

    #[test]
    fn results_come_back_from_their_rows() {
        let mut r = FitResults::new(3);
        let fit = FrameFit {
            outcome: FitOutcome {
                state: FitState {
                    pose: Pose::new(Quat::from_euler_zyz_deg(10.0, 70.0, 0.0), [0.5, -1.0]),
                    scale: 1.05,
                    sigma: 1.7,
                    shape: 4.5,
                },
                score: 0.93,
                converged: true,
                iterations: 6,
                axis_sd_deg: 0.25,
                z_locs: 0,
                source: StartSource::Search,
                start_ms: 2.5,
                refine_ms: 1.25,
            },
            cnn_ms: 0.0,
            nonfinite_px: 0,
        };
        r.set(0, Ok(fit));
        r.set(2, Err("pixel (3, 4) is NaN".into()));
        let mut rows = r.rows(Some("a.tif"));
        rows.push(PoseRow::failed(7, "past the end"));
        let (back, skipped) = FitResults::from_rows(3, &rows, 5.0);
        assert_eq!(skipped, 1);
        assert_eq!(back.done(), 2);
        let o = back.fit(0).unwrap().outcome;
        assert!(o.state.pose.q.angle_to(fit.outcome.state.pose.q) < 1e-6);
        assert!((o.score - 0.93).abs() < 1e-12 && o.converged && o.iterations == 6);
        assert_eq!(o.source, StartSource::Search);
        assert!((o.refine_ms - 1.25).abs() < 1e-9);
        assert_eq!(
            back.get(2).unwrap().as_ref().unwrap_err(),
            "pixel (3, 4) is NaN"
        );
        assert!(back.get(1).is_none());
    }
}
