//! Undo (Ctrl+Z, Edit → Undo) for what a user does to a document: every
//! accept, remove, add, move, Accept all and Load picks of a field's
//! review, every Estimate, Estimate all or Refine that replaced fits, and
//! every change of the pose sliders (a drag is one change) or jump to an
//! equivalent pose, is recorded as what it replaced, so a key pressed by
//! mistake in a review of thousands of candidates, an Estimate all over
//! hand-refined frames, or a slider knocked away from a hand-set pose,
//! costs nothing. A pick's number is its particle frame's, so picks are
//! never renumbered: an undone add drops the pick only when it is still the
//! last one, and is otherwise marked removed.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::particles::{PickEntry, PickState};
use super::state::{Document, PoseControls};
use crate::estimate::particles::ParticleSetup;
use crate::estimate::pose::results::{FitResults, FrameResult};

/// Edits kept per document.
pub const DEPTH: usize = 500;

/// Slider changes of one frame closer together than this are one edit: a
/// drag sends one per frame drawn.
const POSE_GAP: Duration = Duration::from_millis(700);

/// One edit, as what it replaced.
#[derive(Clone, Debug)]
enum Edit {
    /// These picks had these states (a review key, a row's buttons, Accept all).
    States(Vec<(usize, PickState)>),
    /// Pick `k` was added by hand.
    Added(usize),
    /// Pick `k` was moved from `entry`, dropping its fit `result`.
    Moved {
        k: usize,
        entry: PickEntry,
        result: Option<FrameResult>,
    },
    /// Load picks replaced these picks and their results.
    Replaced {
        picks: Vec<PickEntry>,
        results: FitResults,
    },
    /// A fit replaced these frames' results (`None`: not fitted).
    Fits(Vec<(usize, Option<FrameResult>)>),
    /// A size fit replaced these frames' results and the table's setup.
    Resized {
        fits: Vec<(usize, Option<FrameResult>)>,
        setup: Arc<ParticleSetup>,
    },
    /// The sliders of `frame` stood at `controls`.
    Pose {
        frame: usize,
        controls: PoseControls,
    },
}

/// A document's edits, newest last, each with its name ("remove pick 12").
#[derive(Clone, Debug, Default)]
pub struct EditHistory {
    edits: VecDeque<(String, Edit)>,
    /// When the newest slider change was recorded or joined to it.
    last_pose: Option<Instant>,
}

/// What an undo did: its name, the pick to show (none when it went), and
/// the frame and slider values to show again.
#[derive(Clone, Debug, PartialEq)]
pub struct Undone {
    pub what: String,
    pub pick: Option<usize>,
    pub pose: Option<(usize, PoseControls)>,
}

impl EditHistory {
    /// The name of the edit that Undo would undo.
    pub fn next_undo(&self) -> Option<&str> {
        self.edits.back().map(|(name, _)| name.as_str())
    }

    fn push(&mut self, name: String, edit: Edit) {
        if self.edits.len() == DEPTH {
            self.edits.pop_front();
        }
        self.edits.push_back((name, edit));
    }

    /// Records that picks `changed` had these former states; nothing when
    /// none changed.
    pub fn states(&mut self, name: String, changed: Vec<(usize, PickState)>) {
        if !changed.is_empty() {
            self.push(name, Edit::States(changed));
        }
    }

    /// Records that pick `k` was added by hand.
    pub fn added(&mut self, k: usize) {
        self.push(format!("add pick {k}"), Edit::Added(k));
    }

    /// Records that pick `k` was moved from `entry`, which had `result`.
    pub fn moved(&mut self, k: usize, entry: PickEntry, result: Option<FrameResult>) {
        self.push(format!("move pick {k}"), Edit::Moved { k, entry, result });
    }

    /// Records what a fit of `frames` is about to replace, when it replaces
    /// any fit (a fit of unfitted frames loses nothing and is not kept).
    pub fn fits(&mut self, name: String, results: &FitResults, frames: &[usize]) {
        let before = fits_of(results, frames);
        if before.iter().any(|(_, r)| r.is_some()) {
            self.push(name, Edit::Fits(before));
        }
    }

    /// Records what a fit of the table's torus size is about to replace:
    /// the fits of `frames` and the table's `setup`.
    pub fn resized(
        &mut self,
        name: String,
        results: &FitResults,
        frames: &[usize],
        setup: Arc<ParticleSetup>,
    ) {
        let fits = fits_of(results, frames);
        self.push(name, Edit::Resized { fits, setup });
    }

    /// Whether Undo would take back a fit.
    pub fn next_is_fit(&self) -> bool {
        matches!(
            self.edits.back(),
            Some((_, Edit::Fits(_) | Edit::Resized { .. }))
        )
    }

    /// Records that the sliders of `frame` stood at `before` when `what`
    /// ("pose change", "jump to the mirror pose") moved them. Changes of
    /// one frame by the same means in quick succession (a drag) are one
    /// edit, undone to where the first one started.
    pub fn pose(&mut self, what: &str, frame: usize, before: PoseControls, now: Instant) {
        let joins = matches!(
            self.edits.back(),
            Some((name, Edit::Pose { frame: f, .. })) if name == what && *f == frame
        ) && self
            .last_pose
            .is_some_and(|t| now.saturating_duration_since(t) < POSE_GAP);
        self.last_pose = Some(now);
        if !joins {
            self.push(
                what.into(),
                Edit::Pose {
                    frame,
                    controls: before,
                },
            );
        }
    }

    /// Records that the picks were replaced (Load picks).
    pub fn replaced(&mut self, picks: Vec<PickEntry>, results: FitResults) {
        self.push("load picks".into(), Edit::Replaced { picks, results });
    }
}

/// The results of `frames` (`None`: not fitted), as a fit replaces them.
fn fits_of(results: &FitResults, frames: &[usize]) -> Vec<(usize, Option<FrameResult>)> {
    frames
        .iter()
        .map(|&k| (k, results.get(k).cloned()))
        .collect()
}

/// Puts back the results a fit replaced (the undo of `what`).
fn put_back_fits(
    doc: &mut Document,
    what: String,
    before: Vec<(usize, Option<FrameResult>)>,
) -> Undone {
    for (k, r) in before {
        doc.results.put_back(k, r);
    }
    Undone {
        what,
        pick: None,
        pose: None,
    }
}

/// Undoes the newest edit of `doc`; `None` when there is none.
pub fn undo(doc: &mut Document) -> Option<Undone> {
    let (what, edit) = doc.history.edits.pop_back()?;
    doc.unsaved = true;
    match edit {
        Edit::Fits(before) => return Some(put_back_fits(doc, what, before)),
        Edit::Resized { fits, setup } => {
            // a size fit also changed the table's torus
            if let Some(p) = doc.particles.as_mut() {
                p.set_setup(setup);
            }
            return Some(put_back_fits(doc, what, fits));
        }
        Edit::Pose { frame, controls } => {
            doc.history.last_pose = None;
            return Some(Undone {
                what,
                pick: None,
                pose: Some((frame, controls)),
            });
        }
        _ => {}
    }
    // the other edits are a field's
    let p = doc.particles.as_mut()?;
    let mut frames_changed = false;
    let pick = match edit {
        Edit::States(changed) => {
            for &(k, state) in &changed {
                if let Some(e) = p.picks.get_mut(k) {
                    e.state = state;
                }
            }
            // one pick: show it; many (Accept all): stay where the user is
            match changed.as_slice() {
                [(k, _)] => Some(*k),
                _ => None,
            }
        }
        Edit::Added(k) if k + 1 == p.picks.len() => {
            p.picks.pop();
            doc.results.pop();
            frames_changed = true;
            None
        }
        Edit::Added(k) => {
            // candidates found since came after it: keep the numbering
            if let Some(e) = p.picks.get_mut(k) {
                e.state = PickState::Removed;
            }
            None
        }
        Edit::Moved { k, entry, result } => {
            if let Some(e) = p.picks.get_mut(k) {
                *e = entry;
                doc.results.put_back(k, result);
                frames_changed = true;
            }
            Some(k)
        }
        Edit::Replaced { picks, results } => {
            p.picks = picks;
            doc.results = results;
            frames_changed = true;
            None
        }
        // undone above, for any document
        Edit::Fits(_) | Edit::Resized { .. } | Edit::Pose { .. } => None,
    };
    if frames_changed {
        super::particles::refresh_frames(doc);
    }
    doc.unsaved = true;
    Some(Undone {
        what,
        pick,
        pose: None,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;
    use crate::app::particles::{add_pick, load_table, move_pick, TableLoad};
    use crate::synth::locs::{generate_field, write_field, FieldConfig};

    fn table_doc(dir: &std::path::Path) -> Document {
        let cfg = FieldConfig {
            particles: 4,
            field_px: [40, 40],
            seed: 5,
            ..FieldConfig::default()
        };
        let f = generate_field(&cfg).unwrap();
        let path = write_field(&cfg, &f, dir).unwrap().thunderstorm;
        let load = TableLoad::default();
        load_table(&path, &load, &AtomicBool::new(false)).unwrap()
    }

    fn fitted() -> FrameResult {
        Err("a stand-in result".into())
    }

    #[test]
    fn adds_and_moves_are_undone_with_their_frames_and_fits() {
        let dir = tempfile::tempdir().unwrap();
        let mut doc = table_doc(dir.path());
        assert_eq!(doc.frames.len(), 4);
        let first = doc.particles.as_ref().unwrap().picks[0];
        doc.results.set(0, fitted());
        // moved: its fit is dropped, and comes back with its place
        move_pick(&mut doc, 0, first.pick.x_nm + 3000.0, first.pick.y_nm).unwrap();
        assert!(doc.results.get(0).is_none());
        // added: a fifth frame
        let k = add_pick(&mut doc, first.pick.x_nm, first.pick.y_nm + 2000.0).unwrap();
        assert_eq!((k, doc.frames.len()), (4, 5));
        assert_eq!(doc.history.next_undo(), Some("add pick 4"));
        let u = undo(&mut doc).unwrap();
        assert_eq!(
            u,
            Undone {
                what: "add pick 4".into(),
                pick: None,
                pose: None,
            }
        );
        assert_eq!(
            (doc.frames.len(), doc.results.len(), doc.info.frames),
            (4, 4, 4)
        );
        let u = undo(&mut doc).unwrap();
        assert_eq!(u.pick, Some(0));
        assert_eq!(doc.particles.as_ref().unwrap().picks[0], first);
        assert_eq!(
            doc.results.get(0).cloned().map(Result::unwrap_err),
            fitted().err()
        );
        assert!(undo(&mut doc).is_none());
    }

    #[test]
    fn fits_that_replaced_others_are_undone_and_first_fits_are_not_kept() {
        let mut doc = Document::in_memory("s.tif", vec![crate::io::Frame::zeros(8, 8); 3]);
        // a first fit of unfitted frames loses nothing: not kept
        doc.history
            .fits("estimate all (3 frames)".into(), &doc.results, &[0, 1, 2]);
        assert_eq!(doc.history.next_undo(), None);
        doc.results.set(1, Err("the first fit".into()));
        // a second fit over frames 0-2 replaces frame 1's
        doc.history
            .fits("estimate all (3 frames)".into(), &doc.results, &[0, 1, 2]);
        assert!(doc.history.next_is_fit());
        for k in 0..3 {
            doc.results.set(k, Err("the second fit".into()));
        }
        let u = undo(&mut doc).unwrap();
        assert_eq!(
            u,
            Undone {
                what: "estimate all (3 frames)".into(),
                pick: None,
                pose: None,
            }
        );
        assert!(doc.results.get(0).is_none() && doc.results.get(2).is_none());
        assert_eq!(
            doc.results.get(1).cloned().map(Result::unwrap_err),
            Some("the first fit".to_string())
        );
        assert!(doc.unsaved);
        assert!(undo(&mut doc).is_none());
    }

    #[test]
    fn an_added_pick_followed_by_candidates_is_removed_not_renumbered() {
        let dir = tempfile::tempdir().unwrap();
        let mut doc = table_doc(dir.path());
        let k = add_pick(&mut doc, 100.0, 100.0).unwrap();
        // the detector's candidates arrive after it
        crate::app::particles::add_candidates(
            &mut doc,
            &[crate::io::locs::Pick {
                x_nm: 4000.0,
                y_nm: 4000.0,
                n_locs: 0,
            }],
        )
        .unwrap();
        let n = doc.frames.len();
        undo(&mut doc).unwrap();
        let p = doc.particles.as_ref().unwrap();
        assert_eq!(doc.frames.len(), n);
        assert_eq!(p.picks[k].state, PickState::Removed);
        assert_eq!(p.picks[n - 1].state, PickState::Candidate);
    }

    #[test]
    fn loaded_picks_are_undone_whole_and_the_history_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut doc = table_doc(dir.path());
        let p = doc.particles.as_mut().unwrap();
        let before = p.picks.clone();
        doc.results.set(2, fitted());
        doc.history.replaced(p.picks.clone(), doc.results.clone());
        p.replace_picks(&[before[1].pick]);
        doc.results = FitResults::new(1);
        crate::app::particles::refresh_frames(&mut doc);
        undo(&mut doc).unwrap();
        assert_eq!(doc.particles.as_ref().unwrap().picks, before);
        assert_eq!(doc.frames.len(), 4);
        assert_eq!(
            doc.results.get(2).cloned().map(Result::unwrap_err),
            fitted().err()
        );
        let mut h = EditHistory::default();
        for k in 0..DEPTH + 10 {
            h.states(format!("remove pick {k}"), vec![(k, PickState::Candidate)]);
        }
        assert_eq!(h.edits.len(), DEPTH);
        assert_eq!(
            h.next_undo(),
            Some(format!("remove pick {}", DEPTH + 9).as_str())
        );
        h.states("nothing".into(), Vec::new());
        assert_eq!(h.edits.len(), DEPTH);
    }

    #[test]
    fn a_drag_is_one_pose_edit_and_separate_changes_are_several() {
        let mut doc = Document::in_memory("s.tif", vec![crate::io::Frame::zeros(8, 8); 2]);
        let at = |deg: f64| PoseControls {
            euler: [0.0, deg, 0.0],
            ..PoseControls::default()
        };
        let t0 = Instant::now();
        let ms = |m: u64| t0 + Duration::from_millis(m);
        // a drag from 10° to 13°, one change per frame drawn
        for (k, m) in [0, 16, 32, 48].into_iter().enumerate() {
            doc.history
                .pose("pose change", 0, at(10.0 + k as f64), ms(m));
        }
        // a second drag after a pause, and a jump to the mirror pose
        doc.history.pose("pose change", 0, at(14.0), ms(2000));
        doc.history.pose("pose change", 0, at(15.0), ms(2016));
        doc.history
            .pose("jump to the mirror pose", 0, at(16.0), ms(2030));
        // the same slider on another frame is another edit
        doc.history.pose("pose change", 1, at(50.0), ms(2040));
        let mut undone = Vec::new();
        while let Some(u) = undo(&mut doc) {
            let (frame, c) = u.pose.unwrap();
            undone.push((u.what, frame, c.euler[1]));
        }
        assert_eq!(
            undone,
            [
                ("pose change".to_string(), 1, 50.0),
                ("jump to the mirror pose".to_string(), 0, 16.0),
                ("pose change".to_string(), 0, 14.0),
                ("pose change".to_string(), 0, 10.0),
            ]
        );
    }
}
