//! Fitting many frames: the one loop behind `posescope fit` and the viewer's
//! Estimate / Estimate all.
//!
//! Frames are fitted in chunks: the network runs once per chunk (a batch),
//! then the chunk's frames are refined in parallel. Between chunks the loop
//! checks a cancel flag; each frame's result goes to a callback as soon as its
//! chunk is done, in frame order, so a front end can advance a progress bar,
//! write a PNG, fill a table or autosave. Frames are loaded through a closure,
//! so a lazy stack is read one chunk at a time and an in-memory document is
//! borrowed without a copy.

use std::borrow::Borrow;
use std::sync::atomic::{AtomicBool, Ordering};

use super::pipeline::{Fitter, PipelineError};
use super::results::FrameResult;
use crate::io::Frame;

/// Frames per network call when the caller does not say.
pub const DEFAULT_CHUNK: usize = 32;

/// How a batch runs.
#[derive(Clone, Copy, Debug)]
pub struct BatchOptions<'a> {
    /// Frames per network call (at least 1).
    pub chunk: usize,
    /// Set by another thread to stop the batch between chunks.
    pub cancel: Option<&'a AtomicBool>,
}

impl Default for BatchOptions<'_> {
    fn default() -> Self {
        Self {
            chunk: DEFAULT_CHUNK,
            cancel: None,
        }
    }
}

/// How a batch ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchSummary {
    /// Frames fitted.
    pub fitted: usize,
    /// Frames that could not be read or fitted (each reported with its error).
    pub failed: usize,
    /// True when the cancel flag stopped the batch early.
    pub cancelled: bool,
}

impl BatchSummary {
    /// Frames reported, fitted or failed.
    pub fn done(&self) -> usize {
        self.fitted + self.failed
    }
}

/// One frame's outcome as the batch reports it.
pub struct BatchItem<'f> {
    /// The frame's index.
    pub index: usize,
    /// The frame, when it could be read.
    pub frame: Option<&'f Frame>,
    /// Its fit, or why there is none.
    pub result: FrameResult,
}

/// Fits every frame of an in-memory list (the particle frames of a table's
/// or an image's picks) in chunks of the default size: one result per
/// frame, in order.
pub fn fit_all(fitter: &Fitter, frames: &[Frame]) -> Result<Vec<FrameResult>, PipelineError> {
    let which: Vec<usize> = (0..frames.len()).collect();
    let mut results: Vec<FrameResult> = vec![Err("not fitted".into()); frames.len()];
    fit_frames(
        fitter,
        &which,
        |k| Ok(&frames[k]),
        BatchOptions::default(),
        |item| results[item.index] = item.result,
    )?;
    Ok(results)
}

/// Fits the frames `which` (indices into a document or stack), loading each
/// through `load`, and hands every frame's result to `on_result`.
///
/// A frame that cannot be loaded or fitted is reported with its error and the
/// batch goes on; only a failure of the network itself ends the batch early
/// with an error (the frames reported so far stay reported).
pub fn fit_frames<F: Borrow<Frame>>(
    fitter: &Fitter,
    which: &[usize],
    mut load: impl FnMut(usize) -> Result<F, String>,
    opts: BatchOptions<'_>,
    mut on_result: impl FnMut(BatchItem<'_>),
) -> Result<BatchSummary, PipelineError> {
    let mut summary = BatchSummary::default();
    for chunk in which.chunks(opts.chunk.max(1)) {
        if opts.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            summary.cancelled = true;
            break;
        }
        let loaded: Vec<(usize, Result<F, String>)> = chunk.iter().map(|&k| (k, load(k))).collect();
        let ok: Vec<&Frame> = loaded
            .iter()
            .filter_map(|(_, f)| f.as_ref().ok().map(Borrow::borrow))
            .collect();
        let mut fits = fitter.fit_batch(&ok)?.into_iter();
        for (index, f) in &loaded {
            let (frame, result) = match f {
                Ok(f) => (
                    Some(f.borrow()),
                    fits.next()
                        .unwrap_or_else(|| Err("internal: missing result".into())),
                ),
                Err(e) => (None, Err(e.clone())),
            };
            if result.is_ok() {
                summary.fitted += 1;
            } else {
                summary.failed += 1;
            }
            on_result(BatchItem {
                index: *index,
                frame,
                result,
            });
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::super::fit::FitOptions;
    use super::super::pipeline::{DeviceChoice, ModelSpec};
    use super::*;
    use crate::synth::{generate_frame, SynthConfig};

    /// A network-free fitter (a small coarse search) and `n` thin-torus frames.
    fn search_fitter_and_frames(n: usize) -> (Fitter, Vec<Frame>) {
        let opts = FitOptions {
            search_count: 64,
            ..FitOptions::default()
        };
        let fitter =
            Fitter::new(&ModelSpec::default(), opts, None, false, DeviceChoice::Cpu).unwrap();
        let cfg = SynthConfig::thin_torus(n, 5);
        let frames = (0..n)
            .map(|k| generate_frame(&cfg, k).unwrap().image)
            .collect();
        (fitter, frames)
    }

    #[test]
    fn reports_every_frame_in_order_with_load_errors() {
        let (fitter, frames) = search_fitter_and_frames(3);
        let mut seen = Vec::new();
        let summary = fit_frames(
            &fitter,
            &[2, 0, 1],
            |k| {
                if k == 1 {
                    Err("frame 1: unreadable".to_string())
                } else {
                    Ok(&frames[k])
                }
            },
            BatchOptions {
                chunk: 2,
                cancel: None,
            },
            |item| seen.push((item.index, item.frame.is_some(), item.result.is_ok())),
        )
        .unwrap();
        assert_eq!(seen, [(2, true, true), (0, true, true), (1, false, false)]);
        assert_eq!(
            summary,
            BatchSummary {
                fitted: 2,
                failed: 1,
                cancelled: false
            }
        );
    }

    #[test]
    fn a_set_cancel_flag_stops_before_the_next_chunk() {
        let (fitter, frames) = search_fitter_and_frames(2);
        let cancel = AtomicBool::new(false);
        let mut seen = 0;
        let summary = fit_frames(
            &fitter,
            &[0, 1],
            |k| Ok::<_, String>(frames[k].clone()),
            BatchOptions {
                chunk: 1,
                cancel: Some(&cancel),
            },
            |_| {
                seen += 1;
                cancel.store(true, Ordering::Relaxed);
            },
        )
        .unwrap();
        assert_eq!(seen, 1);
        assert!(summary.cancelled);
        assert_eq!(summary.done(), 1);
    }
}
