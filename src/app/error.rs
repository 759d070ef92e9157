//! The viewer's errors: what reaches the notice bar, typed, each naming the
//! file or the frame and the problem.

use std::path::PathBuf;

use crate::estimate::pose::pipeline::PipelineError;
use crate::io::{IoError, OutputError};

/// Most pixel values a viewer document may hold in memory (1 GiB of f32).
/// Larger stacks are for `posescope fit`, which streams them.
pub const MAX_DOCUMENT_VALUES: usize = 1 << 28;

/// Something the viewer could not do.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A file could not be read.
    #[error(transparent)]
    Read(#[from] IoError),
    /// A file is too large to hold in memory.
    #[error(
        "{}: {frames} frames of {width}×{height} are too many to view at once ({} M values, limit {} M); \
         fit it headless with `posescope fit`",
        path.display(), values >> 20, MAX_DOCUMENT_VALUES >> 20
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its frames.
        frames: usize,
        /// Frame width.
        width: usize,
        /// Frame height.
        height: usize,
        /// Pixel values in all.
        values: usize,
    },
    /// A file has no frames.
    #[error("{}: the file holds no frames", .0.display())]
    Empty(PathBuf),
    /// The model or its network could not be set up.
    #[error("model {model}: {source}")]
    Model {
        /// The model as described to the user.
        model: String,
        /// Why.
        source: PipelineError,
    },
    /// Estimation stopped with an error.
    #[error("estimation failed: {0}")]
    Estimate(#[from] PipelineError),
    /// A file could not be written.
    #[error(transparent)]
    Write(#[from] OutputError),
    /// A table could not become particles (bad model, picking failed).
    #[error("{}: {detail}", path.display())]
    Table {
        /// The table.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The user cancelled.
    #[error("cancelled")]
    Cancelled,
}
