//! The viewer's errors: what reaches the notice bar, typed, each naming the
//! file or the frame and the problem.

use std::path::PathBuf;

use crate::estimate::pose::pipeline::PipelineError;
use crate::io::{IoError, OutputError};

/// Most pixel values a document holds in memory whole (128 MiB of f32);
/// larger stacks are read on demand (see `frame_store`).
pub const IN_MEMORY_VALUES: usize = 1 << 25;

/// Something the viewer could not do.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A file could not be read.
    #[error(transparent)]
    Read(#[from] IoError),
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
    /// Structure learning could not run or stopped with an error.
    #[error("learning: {0}")]
    Learn(String),
    /// The user cancelled.
    #[error("cancelled")]
    Cancelled,
}
