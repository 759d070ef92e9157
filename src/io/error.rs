//! [`IoError`]: every way reading or writing an image can fail, each message
//! starting with the file's path.

use std::path::{Path, PathBuf};

/// Errors from reading or writing images. Every message starts with the file's path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IoError {
    /// The operating system reported an error (file missing, permission denied, disk full …).
    #[error("{}: I/O error: {source}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file has no bytes at all.
    #[error("{}: empty file (0 bytes)", path.display())]
    Empty {
        /// The file concerned.
        path: PathBuf,
    },
    /// The first bytes match none of the supported formats.
    #[error("{}: unrecognised format: {detail}", path.display())]
    UnknownFormat {
        /// The file concerned.
        path: PathBuf,
        /// What was found instead.
        detail: String,
    },
    /// The file ends before all the data it declares.
    #[error("{}: truncated: {detail}", path.display())]
    Truncated {
        /// The file concerned.
        path: PathBuf,
        /// Which part is missing.
        detail: String,
    },
    /// The file's structure or data is invalid.
    #[error("{}: corrupt: {detail}", path.display())]
    Corrupt {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The file is valid but uses a layout this reader does not handle.
    #[error("{}: unsupported: {detail}", path.display())]
    Unsupported {
        /// The file concerned.
        path: PathBuf,
        /// Which feature is missing.
        detail: String,
    },
    /// A declared size exceeds [`Limits`](crate::io::Limits) (or the decoder's own allocation limits).
    #[error("{}: exceeds limit: {detail}", path.display())]
    LimitExceeded {
        /// The file concerned.
        path: PathBuf,
        /// Which size and which limit.
        detail: String,
    },
    /// [`Stack::frame`](crate::io::Stack::frame) was asked for a frame the stack does not have.
    #[error("{}: frame index {index} out of range (the stack has {frames} frames)", path.display())]
    FrameOutOfRange {
        /// The file concerned.
        path: PathBuf,
        /// The requested index.
        index: usize,
        /// Number of frames in the stack.
        frames: usize,
    },
    /// A localisation table in camera pixels whose pixel size is unknown (a
    /// Picasso file without its `.yaml` sidecar): it must be given.
    #[error("{}: {detail}", path.display())]
    NeedsPixelSize {
        /// The table.
        path: PathBuf,
        /// What is missing and how to give it.
        detail: String,
    },
    /// A writer was given data it cannot write (mismatched frame sizes, empty stack …).
    #[error("{}: invalid input: {detail}", path.display())]
    InvalidInput {
        /// The file that was to be written.
        path: PathBuf,
        /// What is wrong with the input.
        detail: String,
    },
}

impl IoError {
    /// The path of the file this error is about.
    pub fn path(&self) -> &Path {
        match self {
            IoError::Io { path, .. }
            | IoError::Empty { path }
            | IoError::UnknownFormat { path, .. }
            | IoError::Truncated { path, .. }
            | IoError::Corrupt { path, .. }
            | IoError::Unsupported { path, .. }
            | IoError::LimitExceeded { path, .. }
            | IoError::FrameOutOfRange { path, .. }
            | IoError::NeedsPixelSize { path, .. }
            | IoError::InvalidInput { path, .. } => path,
        }
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        IoError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn truncated(path: &Path, detail: impl Into<String>) -> Self {
        IoError::Truncated {
            path: path.to_path_buf(),
            detail: detail.into(),
        }
    }

    pub(crate) fn corrupt(path: &Path, detail: impl Into<String>) -> Self {
        IoError::Corrupt {
            path: path.to_path_buf(),
            detail: detail.into(),
        }
    }

    pub(crate) fn unsupported(path: &Path, detail: impl Into<String>) -> Self {
        IoError::Unsupported {
            path: path.to_path_buf(),
            detail: detail.into(),
        }
    }

    pub(crate) fn limit(path: &Path, detail: impl Into<String>) -> Self {
        IoError::LimitExceeded {
            path: path.to_path_buf(),
            detail: detail.into(),
        }
    }

    pub(crate) fn invalid_input(path: &Path, detail: impl Into<String>) -> Self {
        IoError::InvalidInput {
            path: path.to_path_buf(),
            detail: detail.into(),
        }
    }

    /// Maps an I/O error that happened while reading `what`: an unexpected end of file becomes
    /// [`IoError::Truncated`], anything else [`IoError::Io`].
    pub(crate) fn read(path: &Path, what: &str, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::UnexpectedEof {
            IoError::truncated(path, format!("{what}: unexpected end of file"))
        } else {
            IoError::io(path, source)
        }
    }
}
