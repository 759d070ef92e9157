//! Symmetry-aware comparison of predicted poses with the truth.

use serde::Serialize;

use crate::geometry::Symmetry;
use crate::io::PoseRow;

/// Summary statistics of an error, in degrees.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct Stats {
    /// Median.
    pub median: f64,
    /// 90th percentile.
    pub p90: f64,
    /// Mean.
    pub mean: f64,
    /// Largest.
    pub max: f64,
}

impl Stats {
    /// Statistics of `values` (degrees); `None` when empty.
    pub fn of(values: &[f64]) -> Option<Stats> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let q = |p: f64| {
            // linear interpolation between order statistics
            let x = p * (v.len() - 1) as f64;
            let (i, f) = (x.floor() as usize, x.fract());
            if i + 1 < v.len() {
                v[i] * (1.0 - f) + v[i + 1] * f
            } else {
                v[i]
            }
        };
        Some(Stats {
            median: q(0.5),
            p90: q(0.9),
            mean: v.iter().sum::<f64>() / v.len() as f64,
            max: v[v.len() - 1],
        })
    }
}

/// What [`evaluate`] found.
#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    /// Truth rows.
    pub truth_rows: usize,
    /// Truth rows with a usable prediction.
    pub matched: usize,
    /// Truth rows with no prediction row.
    pub missing: usize,
    /// Prediction rows that carry an error instead of a pose.
    pub failed: usize,
    /// Symmetry used, by name.
    pub symmetry: String,
    /// Symmetry-aware axis error (axial models) in degrees.
    pub axis_error: Option<Stats>,
    /// Symmetry-aware rotation error (finite groups) in degrees.
    pub rotation_error: Option<Stats>,
    /// The 3D floor of the matched frames (the truth's `floor_axis_deg`,
    /// written by `synth` for tori): what the axis error is measured against.
    pub floor: Option<Stats>,
    /// Per matched frame: (frame, error in degrees), in truth order.
    #[serde(skip)]
    pub per_frame: Vec<(usize, f64)>,
}

fn key(r: &PoseRow) -> (String, usize) {
    (r.file.clone().unwrap_or_default(), r.frame)
}

/// Matches predictions to the truth by `(file, frame)` — by frame alone when
/// the truth has no `file` column — and computes the errors.
pub fn evaluate(truth: &[PoseRow], pred: &[PoseRow], symmetry: &Symmetry) -> EvalReport {
    let truth_has_file = truth
        .iter()
        .any(|r| r.file.as_deref().is_some_and(|f| !f.is_empty()));
    let mut index = std::collections::HashMap::new();
    let mut failed = 0;
    for p in pred {
        if p.get("error").is_some_and(|e| !e.is_empty()) {
            failed += 1;
            continue;
        }
        let k = if truth_has_file {
            key(p)
        } else {
            (String::new(), p.frame)
        };
        index.insert(k, p);
    }
    let mut axis = Vec::new();
    let mut rot = Vec::new();
    let mut per_frame = Vec::new();
    let mut floor = Vec::new();
    let mut missing = 0;
    for t in truth {
        let k = if truth_has_file {
            key(t)
        } else {
            (String::new(), t.frame)
        };
        let Some(p) = index.get(&k) else {
            missing += 1;
            continue;
        };
        let a = symmetry.axis_error(p.pose.q, t.pose.q).to_degrees();
        let r = symmetry.rotation_error(p.pose.q, t.pose.q).to_degrees();
        axis.push(a);
        rot.push(r);
        if let Some(f) = t.get("floor_axis_deg").and_then(|f| f.parse::<f64>().ok()) {
            floor.push(f);
        }
        per_frame.push((t.frame, if symmetry.is_axial() { a } else { r }));
    }
    EvalReport {
        truth_rows: truth.len(),
        matched: axis.len(),
        missing,
        failed,
        symmetry: symmetry.name(),
        axis_error: Stats::of(&axis),
        rotation_error: if symmetry.is_axial() {
            None
        } else {
            Stats::of(&rot)
        },
        // only when every matched frame has one, so the two describe the same frames
        floor: if floor.len() == axis.len() {
            Stats::of(&floor)
        } else {
            None
        },
        per_frame,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{projection_mirror, Pose, Quat};

    #[test]
    fn stats_are_exact_on_known_values() {
        let s = Stats::of(&[1.0, 2.0, 3.0, 4.0, 10.0]).unwrap();
        assert_eq!(s.median, 3.0);
        assert_eq!(s.mean, 4.0);
        assert_eq!(s.max, 10.0);
        assert!((s.p90 - 7.6).abs() < 1e-12);
        assert!(Stats::of(&[]).is_none());
    }

    #[test]
    fn symmetric_predictions_count_as_correct_and_misses_are_counted() {
        let q = Quat::from_euler_zyz_deg(40.0, 60.0, 0.0);
        let truth: Vec<PoseRow> = (0..4)
            .map(|i| PoseRow::new(i, Pose::new(q, [0.0; 2]), 1.6))
            .collect();
        let mut pred = vec![
            PoseRow::new(0, Pose::new(projection_mirror(q), [0.0; 2]), 1.6),
            PoseRow::new(
                1,
                Pose::new(Quat::from_euler_zyz_deg(40.0, 70.0, 33.0), [0.0; 2]),
                1.6,
            ),
            PoseRow::new(2, Pose::new(q, [0.0; 2]), 1.6),
        ];
        pred[2].set("error", "NaN pixel");
        let r = evaluate(&truth, &pred, &Symmetry::TORUS);
        assert_eq!((r.matched, r.missing, r.failed), (2, 2, 1));
        let s = r.axis_error.unwrap();
        assert!(s.median > 4.9 && s.median < 5.1, "median {}", s.median); // (0 + 10) / 2
        assert!(r.rotation_error.is_none());
    }
}
