//! An image sequence: single-frame files of one size (a folder of FITS or
//! TIFF cut-outs, a camera's frame-per-file export) read as one stack, frame
//! `k` being file `k`'s only frame — what Fiji calls an image sequence.
//!
//! Opening reads every file's header once; frames are read when asked for,
//! each by opening its file, so a folder of 10 000 files keeps no file
//! handle open. A file that cannot be opened is left out with a warning; a
//! set of files that is not a sequence (a multi-frame stack among them,
//! sizes that differ) is told apart so that the caller opens the files one
//! by one.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::{open, Frame, IoError, StackInfo};

/// Names of files left out are listed up to this many.
const LISTED: usize = 3;

/// Single-frame files of one size, read as one stack.
#[derive(Clone, Debug)]
pub struct ImageSequence {
    files: Vec<PathBuf>,
    info: StackInfo,
}

/// What [`ImageSequence::open`] found.
#[derive(Debug)]
pub enum SequenceOpen {
    /// The files (those that opened) make one sequence.
    Sequence(ImageSequence),
    /// They do not (fewer than two, a stack among them, sizes that differ):
    /// why, for a log line.
    NotOne(String),
    /// Opening was cancelled.
    Cancelled,
}

impl ImageSequence {
    /// Reads the headers of `files` (in the order given) and returns the
    /// sequence when at least two open and every one that opens holds one
    /// frame of the first one's size. Files that fail to open are left out
    /// and named in the sequence's warnings (they would fail one by one too).
    /// `cancel` is checked between files; `progress(k)` is called after file
    /// `k`'s header was read.
    pub fn open(
        files: &[PathBuf],
        cancel: &AtomicBool,
        mut progress: impl FnMut(usize),
    ) -> SequenceOpen {
        let mut kept: Vec<PathBuf> = Vec::with_capacity(files.len());
        let mut first: Option<StackInfo> = None;
        let mut failed: Vec<String> = Vec::new();
        let mut other_pixel = 0usize;
        for (k, path) in files.iter().enumerate() {
            if cancel.load(Ordering::Relaxed) {
                return SequenceOpen::Cancelled;
            }
            progress(k);
            let info = match open(path) {
                Ok(stack) => stack.info().clone(),
                Err(e) => {
                    failed.push(e.to_string());
                    continue;
                }
            };
            if info.frames != 1 {
                return SequenceOpen::NotOne(format!(
                    "{} holds {} frames",
                    path.display(),
                    info.frames
                ));
            }
            match &first {
                None => first = Some(info),
                Some(f) if (f.width, f.height) != (info.width, info.height) => {
                    return SequenceOpen::NotOne(format!(
                        "{} is {} × {} px, {} is {} × {} px",
                        f.path.display(),
                        f.width,
                        f.height,
                        path.display(),
                        info.width,
                        info.height
                    ));
                }
                Some(f) => other_pixel += usize::from(f.pixel_size_nm != info.pixel_size_nm),
            }
            kept.push(path.clone());
        }
        let Some(mut info) = first.filter(|_| kept.len() >= 2) else {
            return SequenceOpen::NotOne(format!("{} of {} files opened", kept.len(), files.len()));
        };
        info.frames = kept.len();
        info.path = common_folder(&kept).unwrap_or_else(|| kept[0].clone());
        info.warnings.clear();
        if !failed.is_empty() {
            let mut listed = failed[..failed.len().min(LISTED)].join("; ");
            if failed.len() > LISTED {
                listed.push_str(&format!("; and {} more", failed.len() - LISTED));
            }
            info.warnings.push(format!(
                "{} file(s) left out of the sequence: {listed}",
                failed.len()
            ));
        }
        if other_pixel > 0 {
            info.warnings.push(format!(
                "{other_pixel} file(s) state another pixel size than the first; the first's is used"
            ));
        }
        SequenceOpen::Sequence(ImageSequence { files: kept, info })
    }

    /// The sequence as a stack: its folder as the path, the first file's
    /// format, size, sample type and pixel size, one frame per file.
    pub fn info(&self) -> &StackInfo {
        &self.info
    }

    /// The files, one per frame.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Number of frames (files).
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Never true for an opened sequence (it has at least two files).
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Frame `k`: file `k` opened and its frame read. A file changed since
    /// opening to another size is an error naming it.
    pub fn frame(&self, k: usize) -> Result<Frame, IoError> {
        let path = self.files.get(k).ok_or_else(|| IoError::FrameOutOfRange {
            path: self.info.path.clone(),
            index: k,
            frames: self.files.len(),
        })?;
        let frame = open(path)?.frame(0)?;
        if (frame.width, frame.height) != (self.info.width, self.info.height) {
            return Err(IoError::unsupported(
                path,
                format!(
                    "{} × {} px now, not the sequence's {} × {} px",
                    frame.width, frame.height, self.info.width, self.info.height
                ),
            ));
        }
        Ok(frame)
    }
}

/// The folder every file is in, when they share one.
fn common_folder(files: &[PathBuf]) -> Option<PathBuf> {
    let parent = |p: &Path| p.parent().map(Path::to_path_buf);
    let first = parent(files.first()?)?;
    files
        .iter()
        .all(|f| parent(f).as_ref() == Some(&first))
        .then(|| {
            // "" for files named without a folder: the working directory
            if first.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                first
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{write_tiff_stack, WriteSample};

    fn frame(w: usize, h: usize, v: f32) -> Frame {
        Frame {
            width: w,
            height: h,
            data: vec![v; w * h],
        }
    }

    fn write(dir: &Path, name: &str, frames: &[Frame]) -> PathBuf {
        let p = dir.join(name);
        write_tiff_stack(&p, frames, WriteSample::U16, Some(65.0)).unwrap();
        p
    }

    fn open_all(files: &[PathBuf]) -> SequenceOpen {
        ImageSequence::open(files, &AtomicBool::new(false), |_| {})
    }

    #[test]
    fn single_frames_of_one_size_read_as_one_stack() {
        let dir = tempfile::tempdir().unwrap();
        let mut files: Vec<PathBuf> = (0..3)
            .map(|k| write(dir.path(), &format!("f{k}.tif"), &[frame(8, 6, k as f32)]))
            .collect();
        // a broken file is left out and named
        let bad = dir.path().join("bad.tif");
        std::fs::write(&bad, b"II*\0garbage").unwrap();
        files.insert(1, bad);
        let mut seen = Vec::new();
        let SequenceOpen::Sequence(s) =
            ImageSequence::open(&files, &AtomicBool::new(false), |k| seen.push(k))
        else {
            panic!("not a sequence");
        };
        assert_eq!(seen, [0, 1, 2, 3]);
        assert_eq!(s.len(), 3);
        assert_eq!(s.info().frames, 3);
        assert_eq!((s.info().width, s.info().height), (8, 6));
        assert_eq!(s.info().path, dir.path());
        assert_eq!(s.info().pixel_size_nm, Some(65.0));
        assert_eq!(s.info().warnings.len(), 1, "{:?}", s.info().warnings);
        assert!(s.info().warnings[0].contains("bad.tif"));
        for k in 0..3 {
            assert_eq!(s.frame(k).unwrap().data[0], k as f32);
        }
        assert!(matches!(
            s.frame(3),
            Err(IoError::FrameOutOfRange { index: 3, .. })
        ));
        // a file replaced by one of another size fails on its own
        write(dir.path(), "f2.tif", &[frame(4, 4, 0.0)]);
        let e = s.frame(2).unwrap_err().to_string();
        assert!(e.contains("f2.tif") && e.contains("4 × 4"), "{e}");
        assert_eq!(s.frame(0).unwrap().data[0], 0.0);
    }

    #[test]
    fn stacks_other_sizes_and_lone_files_are_not_a_sequence() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a.tif", &[frame(8, 6, 1.0)]);
        let b = write(dir.path(), "b.tif", &[frame(8, 8, 1.0)]);
        let s = write(dir.path(), "s.tif", &[frame(8, 6, 1.0), frame(8, 6, 2.0)]);
        for (files, why) in [
            (vec![a.clone(), b], "8 × 8"),
            (vec![a.clone(), s], "2 frames"),
            (vec![a.clone()], "1 of 1"),
        ] {
            match open_all(&files) {
                SequenceOpen::NotOne(w) => assert!(w.contains(why), "{w}"),
                other => panic!("{other:?}"),
            }
        }
        let cancel = AtomicBool::new(true);
        assert!(matches!(
            ImageSequence::open(&[a.clone(), a], &cancel, |_| {}),
            SequenceOpen::Cancelled
        ));
    }
}
