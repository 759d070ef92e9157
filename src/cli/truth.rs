//! The truth CSV of a synthetic field (`synth --locs` writes it): particle
//! centres and axes, and how picks and fitted axes compare with them.

use std::path::Path;

use anyhow::{Context, Result};

use posescope::geometry::symmetry::axis_error;
use posescope::geometry::Vec3;

/// One true particle.
#[derive(Clone, Copy, Debug)]
pub struct TrueParticle {
    pub centre_nm: [f64; 2],
    /// From `axis_x`, `axis_y`, `axis_z` where the CSV has them.
    pub axis: Option<Vec3>,
}

/// Reads `x_nm`, `y_nm` and, if present, `axis_x/y/z` of a truth CSV.
pub fn read_truth(path: &Path) -> Result<Vec<TrueParticle>> {
    let mut r = csv::Reader::from_path(path).with_context(|| path.display().to_string())?;
    let h = r.headers()?.clone();
    let col = |name: &str| h.iter().position(|c| c == name);
    let need =
        |name: &str| col(name).with_context(|| format!("{}: no {name} column", path.display()));
    let (xi, yi) = (need("x_nm")?, need("y_nm")?);
    let axis_cols = match (col("axis_x"), col("axis_y"), col("axis_z")) {
        (Some(a), Some(b), Some(c)) => Some([a, b, c]),
        _ => None,
    };
    let mut out = Vec::new();
    for (line, rec) in r.records().enumerate() {
        let rec = rec.with_context(|| format!("{} row {}", path.display(), line + 2))?;
        let num = |i: usize| -> Result<f64> {
            rec.get(i)
                .and_then(|v| v.trim().parse().ok())
                .with_context(|| format!("{} row {}: not a number", path.display(), line + 2))
        };
        let axis = match axis_cols {
            Some(c) => Some([num(c[0])?, num(c[1])?, num(c[2])?]),
            None => None,
        };
        out.push(TrueParticle {
            centre_nm: [num(xi)?, num(yi)?],
            axis,
        });
    }
    Ok(out)
}

/// Each fitted axis with the true axis of the nearest true centre within
/// `tolerance_nm` (particles without a match or a true axis are left out).
fn matched<'a>(
    fitted: &'a [([f64; 2], Vec3)],
    truth: &'a [TrueParticle],
    tolerance_nm: f64,
) -> impl Iterator<Item = (Vec3, Vec3)> + 'a {
    fitted.iter().filter_map(move |(c, axis)| {
        let t = truth
            .iter()
            .map(|t| (t, (t.centre_nm[0] - c[0]).hypot(t.centre_nm[1] - c[1])))
            .filter(|(_, d)| *d <= tolerance_nm)
            .min_by(|a, b| a.1.total_cmp(&b.1))?
            .0;
        Some((*axis, t.axis?))
    })
}

/// The symmetry-aware axis error (±axis and the z mirror equivalent) of
/// each fitted particle against the nearest true centre within
/// `tolerance_nm`, summarised as one line: count, median, p90, max.
pub fn axis_errors_report(
    fitted: &[([f64; 2], Vec3)],
    truth: &[TrueParticle],
    tolerance_nm: f64,
) -> String {
    let mut errors: Vec<f64> = matched(fitted, truth, tolerance_nm)
        .map(|(a, t)| axis_error(a, t).to_degrees())
        .filter(|e| e.is_finite())
        .collect();
    if errors.is_empty() {
        return "axis error: no fitted particle matched a true one with an axis".into();
    }
    errors.sort_by(f64::total_cmp);
    let q = |p: f64| errors[((errors.len() - 1) as f64 * p).round() as usize];
    format!(
        "axis error over {} matched particles: median {:.2}°, p90 {:.2}°, max {:.2}°",
        errors.len(),
        q(0.5),
        q(0.9),
        errors[errors.len() - 1]
    )
}

/// [`tilt_direction_report`] counts particles tilted between these, where
/// an axis and its mirror in z are at least 30° apart (nearly face-on or
/// edge-on they are nearly the same line).
const TILT_DIRECTION_DEG: [f64; 2] = [15.0, 75.0];

/// For fits that used the localisations' z: how often the fitted axis is
/// the true one (up to ±) rather than its mirror in z, over the matched
/// particles tilted 15–75°, as one line.
pub fn tilt_direction_report(
    fitted: &[([f64; 2], Vec3)],
    truth: &[TrueParticle],
    tolerance_nm: f64,
) -> String {
    let dot = |a: Vec3, b: Vec3| a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
    let (mut right, mut n) = (0, 0);
    for (a, t) in matched(fitted, truth, tolerance_nm) {
        let tilt = t[2].abs().min(1.0).acos().to_degrees();
        if !(TILT_DIRECTION_DEG[0]..=TILT_DIRECTION_DEG[1]).contains(&tilt)
            || !dot(a, a).is_normal()
        {
            continue;
        }
        let mirror = [t[0], t[1], -t[2]];
        n += 1;
        right += usize::from(dot(a, t).abs() > dot(a, mirror).abs());
    }
    format!(
        "tilt direction from z: right for {right} of {n} matched particles tilted {}–{}° (a 2D fit gets about half)",
        TILT_DIRECTION_DEG[0], TILT_DIRECTION_DEG[1]
    )
}
