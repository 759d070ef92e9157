//! What `fit` says about the frames or particles it could not fit: the
//! first few reasons on stderr (the CSV's `error` column has them all), and
//! a failed command when nothing at all was fitted, so that scripts notice.

use anyhow::{bail, Result};

use posescope::io::PoseRow;

/// How many failures are described on stderr.
const SHOWN: usize = 3;

/// Prints why the first failed rows of `rows` failed and returns an error
/// when every row failed. `what` names a row ("frame", "particle");
/// the first `told` rows were reported already (files that did not open)
/// and are counted but not described again.
pub fn report(rows: &[PoseRow], told: usize, what: &str) -> Result<()> {
    let failed = |rows: &[PoseRow]| -> Vec<(String, String)> {
        rows.iter()
            .filter_map(|r| {
                let why = r.get("error").filter(|e| !e.is_empty())?;
                Some((describe(r), why.to_string()))
            })
            .collect()
    };
    let untold = failed(&rows[told.min(rows.len())..]);
    for (row, why) in untold.iter().take(SHOWN) {
        eprintln!("warning: {row}: {why}");
    }
    if untold.len() > SHOWN {
        eprintln!(
            "warning: … and {} more (the CSV's error column has every reason)",
            untold.len() - SHOWN
        );
    }
    let n_failed = failed(rows).len();
    if n_failed > 0 && n_failed == rows.len() {
        bail!(
            "nothing was fitted: {n_failed} {what}{} failed (reasons above)",
            if n_failed == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

/// "cut.tif frame 3", or "field.hdf5 particle 7".
fn describe(row: &PoseRow) -> String {
    let file = row.file.as_deref().unwrap_or("input");
    match row.get("particle") {
        Some(k) => format!("{file} particle {k}"),
        None => format!("{file} frame {}", row.frame),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use posescope::geometry::Pose;

    fn ok_row(frame: usize) -> PoseRow {
        PoseRow::new(frame, Pose::IDENTITY, 1.5)
    }

    fn bad_row(frame: usize) -> PoseRow {
        let mut r = PoseRow::failed(frame, "every pixel is non-finite");
        r.file = Some("a.tif".into());
        r
    }

    #[test]
    fn some_failures_pass_and_all_failures_fail() {
        assert!(report(&[ok_row(0), bad_row(1)], 0, "frame").is_ok());
        assert!(report(&[], 0, "particle").is_ok());
        let err = report(&[bad_row(0), bad_row(1)], 1, "frame").unwrap_err();
        assert_eq!(
            err.to_string(),
            "nothing was fitted: 2 frames failed (reasons above)"
        );
        // a fitted row may carry an empty error column
        let mut fitted = ok_row(2);
        fitted.set("error", "");
        assert!(report(&[bad_row(0), fitted], 0, "frame").is_ok());
    }

    #[test]
    fn rows_are_named_by_file_and_frame_or_particle() {
        assert_eq!(describe(&bad_row(4)), "a.tif frame 4");
        let mut r = bad_row(0);
        r.set("particle", 7);
        assert_eq!(describe(&r), "a.tif particle 7");
    }
}
