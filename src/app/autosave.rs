//! Nothing lost: each document's results are saved, as the pose CSV
//! `posescope fit` writes, to a sidecar beside the data
//! (`stack.tif` → `stack.tif.posescope.csv`), or, where that folder cannot be
//! written, to the app's data folder. Writes are atomic (temp file + rename,
//! fsync) and debounced: at most one a second while results arrive, and at
//! once when a job ends or the window closes. They run on a writer thread of
//! their own, in order, so the UI never waits on the disk (the exit save waits
//! for it). Opening the file again restores the results, if the sidecar is
//! not older than the data.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::particles::PickEntry;
use super::pick_store;
use super::state::{DocId, Document};
use crate::estimate::pose::results::FitResults;
use crate::io::{read_pose_csv, write_pose_csv, OutputError, PoseRow};

/// Least time between two autosaves of a document while results arrive.
pub const DEBOUNCE: Duration = Duration::from_secs(1);

/// What the results sidecar is named after the data file's name.
const SUFFIX: &str = "posescope.csv";

/// The sidecar beside the data file.
pub fn sidecar_path(data: &Path) -> PathBuf {
    sidecar_named(data, SUFFIX)
}

/// `data`'s sidecar `NAME.suffix`.
fn sidecar_named(data: &Path, suffix: &str) -> PathBuf {
    let name = data
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into());
    data.with_file_name(format!("{name}.{suffix}"))
}

/// Where the results go when the data's folder is read-only: the app's data
/// folder, under a name made from the data's whole path.
pub fn fallback_path(data: &Path) -> Option<PathBuf> {
    fallback_named(data, SUFFIX)
}

fn fallback_named(data: &Path, suffix: &str) -> Option<PathBuf> {
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
    Some(dir.join(format!("{flat}.{suffix}")))
}

/// Writes a data file's result rows: to the sidecar, else to the fallback.
/// Returns where they went.
pub fn save_rows(data: &Path, rows: &[PoseRow]) -> Result<PathBuf, OutputError> {
    save_beside(data, SUFFIX, |p| write_pose_csv(p, rows))
}

/// Writes `data`'s sidecar `NAME.suffix` with `write`, or, where its folder
/// cannot be written, the fallback in the app's data folder.
fn save_beside(
    data: &Path,
    suffix: &str,
    write: impl Fn(&Path) -> Result<(), OutputError>,
) -> Result<PathBuf, OutputError> {
    let sidecar = sidecar_named(data, suffix);
    match write(&sidecar) {
        Ok(()) => Ok(sidecar),
        Err(first) => {
            let Some(fallback) = fallback_named(data, suffix) else {
                return Err(first);
            };
            if let Some(dir) = fallback.parent() {
                std::fs::create_dir_all(dir).map_err(|cause| OutputError::Io {
                    path: dir.to_path_buf(),
                    cause,
                })?;
            }
            write(&fallback).map(|()| fallback)
        }
    }
}

/// `data`'s saved sidecar `NAME.suffix` (beside it, else the fallback)
/// that is not older than the data.
fn saved_beside(data: &Path, suffix: &str) -> impl Iterator<Item = PathBuf> {
    let data_time = std::fs::metadata(data).and_then(|m| m.modified()).ok();
    [
        Some(sidecar_named(data, suffix)),
        fallback_named(data, suffix),
    ]
    .into_iter()
    .flatten()
    .filter(move |p| {
        let Ok(saved) = std::fs::metadata(p).and_then(|m| m.modified()) else {
            return false;
        };
        data_time.is_none_or(|d| saved >= d)
    })
}

/// The results saved for this data file, if a sidecar (or fallback) exists
/// and is not older than the data: `(results, where from, rows skipped)`.
///
/// For an image sequence, `files` are its frames' files: a row is frame
/// `k` when it names file `k` (frame 0), as [`Document::result_rows`]
/// writes; rows of other files are skipped.
pub fn restore(
    data: &Path,
    frames: usize,
    default_tube_px: f64,
    files: Option<&[PathBuf]>,
) -> Option<(FitResults, PathBuf, usize)> {
    saved_beside(data, SUFFIX).find_map(|p| {
        let mut rows = read_pose_csv(&p).ok()?;
        let before = rows.len();
        if let Some(files) = files {
            rows = sequence_rows(rows, files);
        }
        let (results, skipped) = FitResults::from_rows(frames, &rows, default_tube_px);
        let skipped = skipped + before - rows.len();
        (results.done() > 0).then_some((results, p, skipped))
    })
}

/// A sequence's rows (file `k`, frame 0) renumbered as frame `k`; rows of
/// other files or frames are dropped.
fn sequence_rows(rows: Vec<PoseRow>, files: &[PathBuf]) -> Vec<PoseRow> {
    let index: std::collections::HashMap<String, usize> = files
        .iter()
        .enumerate()
        .map(|(k, f)| (f.display().to_string(), k))
        .collect();
    rows.into_iter()
        .filter_map(|mut row| {
            let k = *index.get(row.file.as_deref()?)?;
            (row.frame == 0).then(|| {
                row.frame = k;
                row
            })
        })
        .collect()
}

/// Restores `doc`'s saved picks (a field: [`pick_store`]) and results
/// ([`restore`]) into it; returns the notice to show, or `None` when
/// nothing was saved for it.
pub fn restore_into(doc: &mut super::state::Document, default_tube_px: f64) -> Option<String> {
    let picks = restore_picks(doc);
    let files = doc.sequence.as_ref().map(|s| s.files());
    let results = restore(&doc.path, doc.frames.len(), default_tube_px, files);
    let mut parts = Vec::new();
    if let Some(n) = picks {
        parts.push(format!("{n} picks as reviewed"));
    }
    let (mut from, mut extra) = (None, String::new());
    if let Some((results, path, skipped)) = results {
        parts.push(format!("{} results", results.done()));
        if skipped > 0 {
            extra = format!(" ({skipped} rows did not fit this file)");
        }
        doc.results = results;
        from = Some(path);
    }
    if parts.is_empty() {
        return None;
    }
    let from = from.unwrap_or_else(|| sidecar_named(&doc.path, pick_store::SUFFIX));
    Some(format!(
        "restored {} from {}{extra}",
        parts.join(" and "),
        from.display()
    ))
}

/// Replaces a field's picks with those saved for it (its frames follow,
/// with no results yet); returns how many, or `None` when none were saved
/// (or they cannot be read: the picker's stay).
fn restore_picks(doc: &mut super::state::Document) -> Option<usize> {
    let p = doc.particles.as_mut()?;
    let units = p.positions();
    let picks = saved_beside(&doc.path, pick_store::SUFFIX).find_map(|path| {
        pick_store::read(&path, units)
            .map_err(|e| tracing::warn!("{}: {e}", path.display()))
            .ok()
    })?;
    let n = picks.len();
    p.picks = picks;
    doc.results = FitResults::new(n);
    super::particles::refresh_frames(doc);
    Some(n)
}

/// One save for the writer thread.
struct SaveJob {
    doc: DocId,
    data: PathBuf,
    rows: Vec<PoseRow>,
    /// A field's picks and their units, saved beside its results.
    picks: Option<(Vec<PickEntry>, pick_store::Positions)>,
}

/// Debounces saves and hands them to a writer thread.
pub struct Autosaver {
    last: Option<Instant>,
    /// Documents whose results could be written nowhere (told once).
    failed: HashSet<DocId>,
    tx: Sender<SaveJob>,
    errors: Receiver<(DocId, OutputError)>,
    pending: Arc<AtomicUsize>,
}

impl Default for Autosaver {
    fn default() -> Self {
        let (tx, rx) = channel::<SaveJob>();
        let (etx, errors) = channel();
        let pending = Arc::new(AtomicUsize::new(0));
        let left = pending.clone();
        std::thread::Builder::new()
            .name("posescope-autosave".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    // several queued saves of one file: only the newest is written
                    let mut batch = vec![first];
                    batch.extend(rx.try_iter());
                    let n = batch.len();
                    let mut written = HashSet::new();
                    for job in batch.into_iter().rev() {
                        if written.insert(job.data.clone()) {
                            let picks = job
                                .picks
                                .as_ref()
                                .map(|(p, units)| {
                                    save_beside(&job.data, pick_store::SUFFIX, |at| {
                                        pick_store::write(at, p, *units)
                                    })
                                })
                                .transpose();
                            if let Err(e) = picks.and(save_rows(&job.data, &job.rows)) {
                                let _ = etx.send((job.doc, e));
                            }
                        }
                    }
                    left.fetch_sub(n, Ordering::SeqCst);
                }
            })
            .expect("spawning the autosave thread");
        Self {
            last: None,
            failed: HashSet::new(),
            tx,
            errors,
            pending,
        }
    }
}

impl Autosaver {
    /// Queues a save of every document with unsaved results, if due (the
    /// debounce passed, or `force`); it never waits for the disk (see
    /// [`Autosaver::flush`] for the exit save). Returns the errors the
    /// writer reported since the last call, for a notice; a document that
    /// failed is not tried again.
    pub fn tick(&mut self, docs: &mut [Document], force: bool) -> Vec<OutputError> {
        let due = force || self.last.is_none_or(|t| t.elapsed() >= DEBOUNCE);
        if due && docs.iter().any(|d| d.unsaved) {
            self.last = Some(Instant::now());
            for d in docs.iter_mut().filter(|d| d.unsaved) {
                d.unsaved = false;
                if self.failed.contains(&d.id) {
                    continue;
                }
                let rows = d.result_rows();
                // a field still being picked has only the picks made by hand
                let picks = d
                    .particles
                    .as_ref()
                    .filter(|p| !p.picking)
                    .map(|p| (p.picks.clone(), p.positions()));
                self.pending.fetch_add(1, Ordering::SeqCst);
                let job = SaveJob {
                    doc: d.id,
                    data: d.path.clone(),
                    rows,
                    picks,
                };
                if self.tx.send(job).is_err() {
                    self.pending.fetch_sub(1, Ordering::SeqCst);
                }
            }
        }
        self.errors
            .try_iter()
            .filter_map(|(doc, e)| self.failed.insert(doc).then_some(e))
            .collect()
    }

    /// Waits until every queued save is written, or `timeout` passed.
    pub fn flush(&self, timeout: Duration) {
        let t0 = Instant::now();
        while self.pending.load(Ordering::SeqCst) > 0 && t0.elapsed() < timeout {
            std::thread::sleep(Duration::from_millis(2));
        }
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
        saver.flush(Duration::from_secs(10));
        assert!(sidecar_path(&data).exists());
        let (back, from, skipped) = restore(&data, 3, 5.0, None).unwrap();
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
        assert!(restore(&data, 3, 5.0, None).is_none());
    }

    #[test]
    fn a_fields_review_comes_back_with_its_picks() {
        use crate::app::particles::{add_pick, load_table, PickState, TableLoad};
        use crate::synth::locs::{generate_field, write_field, FieldConfig};
        use std::sync::atomic::AtomicBool;
        let dir = tempfile::tempdir().unwrap();
        let cfg = FieldConfig {
            particles: 4,
            field_px: [40, 40],
            seed: 5,
            ..FieldConfig::default()
        };
        let path = write_field(&cfg, &generate_field(&cfg).unwrap(), dir.path())
            .unwrap()
            .thunderstorm;
        let load = TableLoad::default();
        let open = || load_table(&path, &load, &AtomicBool::new(false)).unwrap();
        let mut doc = open();
        let n = doc.frames.len();
        // a review: one removed, one accepted, one placed by hand and fitted
        let p = doc.particles.as_mut().unwrap();
        p.picks[0].state = PickState::Removed;
        p.picks[1].state = PickState::Accepted;
        let at = p.picks[1].pick;
        let k = add_pick(&mut doc, at.x_nm + 3000.0, at.y_nm).unwrap();
        doc.results.set(k, Err("no signal".into()));
        let mut saver = Autosaver::default();
        assert!(saver.tick(std::slice::from_mut(&mut doc), true).is_empty());
        saver.flush(Duration::from_secs(10));
        // opened again: the picker's picks, then the review and its result
        let mut again = open();
        assert_eq!(again.frames.len(), n);
        let text = restore_into(&mut again, 5.0).unwrap();
        assert!(
            text.starts_with(&format!(
                "restored {} picks as reviewed and 1 results",
                n + 1
            )),
            "{text}"
        );
        assert_eq!((again.frames.len(), again.info.frames), (n + 1, n + 1));
        let (a, b) = (
            again.particles.as_ref().unwrap(),
            doc.particles.as_ref().unwrap(),
        );
        assert_eq!(a.picks, b.picks);
        assert!(again.results.get(k).is_some_and(|r| r.is_err()));
        // a damaged picks file leaves the picker's picks
        std::fs::write(
            sidecar_named(&path, pick_store::SUFFIX),
            "particle,x_nm\n0,zz\n",
        )
        .unwrap();
        let mut third = open();
        let _ = restore_into(&mut third, 5.0);
        assert_eq!(third.frames.len(), n);
    }
}
