//! Nothing lost: each document's results are saved, as the pose CSV
//! `posescope fit` writes, to a sidecar beside the data
//! (`stack.tif` → `stack.tif.posescope.csv`), or, where that folder cannot be
//! written, to the app's data folder. Writes are atomic (temp file + rename)
//! and debounced: at most one a second while results arrive, and at once when
//! a job ends or the window closes. Opening the file again restores them, if
//! the sidecar is not older than the data.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::state::Document;
use crate::estimate::pose::results::FitResults;
use crate::io::{read_pose_csv, write_pose_csv, OutputError};

/// Least time between two autosaves of a document while results arrive.
pub const DEBOUNCE: Duration = Duration::from_secs(1);

/// The sidecar beside the data file.
pub fn sidecar_path(data: &Path) -> PathBuf {
    let name = data
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into());
    data.with_file_name(format!("{name}.posescope.csv"))
}

/// Where the results go when the data's folder is read-only: the app's data
/// folder, under a name made from the data's whole path.
pub fn fallback_path(data: &Path) -> Option<PathBuf> {
    let dir = eframe::storage_dir("PoseScope")?.join("autosave");
    let abs = std::path::absolute(data).unwrap_or_else(|_| data.to_path_buf());
    let flat: String = abs
        .to_string_lossy()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Some(dir.join(format!("{flat}.posescope.csv")))
}

/// Writes the document's results: to the sidecar, else to the fallback.
/// Returns where they went.
pub fn save(doc: &Document) -> Result<PathBuf, OutputError> {
    let rows = doc.results.rows(Some(&doc.path.display().to_string()));
    let sidecar = sidecar_path(&doc.path);
    match write_pose_csv(&sidecar, &rows) {
        Ok(()) => Ok(sidecar),
        Err(first) => {
            let Some(fallback) = fallback_path(&doc.path) else {
                return Err(first);
            };
            if let Some(dir) = fallback.parent() {
                std::fs::create_dir_all(dir).map_err(|cause| OutputError::Io {
                    path: dir.to_path_buf(),
                    cause,
                })?;
            }
            write_pose_csv(&fallback, &rows).map(|()| fallback)
        }
    }
}

/// The results saved for this data file, if a sidecar (or fallback) exists
/// and is not older than the data: `(results, where from, rows skipped)`.
pub fn restore(
    data: &Path,
    frames: usize,
    default_tube_px: f64,
) -> Option<(FitResults, PathBuf, usize)> {
    let data_time = std::fs::metadata(data).and_then(|m| m.modified()).ok();
    [Some(sidecar_path(data)), fallback_path(data)]
        .into_iter()
        .flatten()
        .find_map(|p| {
            let saved = std::fs::metadata(&p).and_then(|m| m.modified()).ok()?;
            if data_time.is_some_and(|d| saved < d) {
                return None;
            }
            let rows = read_pose_csv(&p).ok()?;
            let (results, skipped) = FitResults::from_rows(frames, &rows, default_tube_px);
            (results.done() > 0).then_some((results, p, skipped))
        })
}

/// When each document was last written, to debounce.
#[derive(Default)]
pub struct Autosaver {
    last: Option<Instant>,
}

impl Autosaver {
    /// Saves every document with unsaved results, if `now` is due (the
    /// debounce passed, or `force`). Errors are returned for a notice.
    pub fn tick(&mut self, docs: &mut [Document], force: bool) -> Vec<OutputError> {
        let due = force || self.last.is_none_or(|t| t.elapsed() >= DEBOUNCE);
        if !due || !docs.iter().any(|d| d.unsaved) {
            return Vec::new();
        }
        self.last = Some(Instant::now());
        let mut errors = Vec::new();
        for d in docs.iter_mut().filter(|d| d.unsaved) {
            match save(d) {
                Ok(_) => d.unsaved = false,
                Err(e) => {
                    // tell once, then stop trying for this document
                    d.unsaved = false;
                    errors.push(e);
                }
            }
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::Frame;

    #[test]
    fn results_survive_through_the_sidecar_and_stale_ones_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("stack.tif");
        std::fs::write(&data, b"data").unwrap();
        let mut doc = Document::in_memory(&data, vec![Frame::zeros(8, 8); 3]);
        doc.results.set(1, Err("no signal".into()));
        doc.unsaved = true;
        let mut saver = Autosaver::default();
        assert!(saver.tick(std::slice::from_mut(&mut doc), false).is_empty());
        assert!(!doc.unsaved);
        assert!(sidecar_path(&data).exists());
        let (back, from, skipped) = restore(&data, 3, 5.0).unwrap();
        assert_eq!((back.done(), skipped), (1, 0));
        assert_eq!(from, sidecar_path(&data));
        // a debounced second save waits
        doc.unsaved = true;
        saver.tick(std::slice::from_mut(&mut doc), false);
        assert!(doc.unsaved, "saved again within the debounce");
        // data newer than its sidecar: not restored
        let old = std::time::SystemTime::now() - Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(sidecar_path(&data))
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert!(restore(&data, 3, 5.0).is_none());
    }
}
