//! Atomic file writes and the error type of every output PoseScope writes.
//!
//! [`atomic_write`] writes to a hidden temporary sibling and renames it over
//! the target only when everything succeeded, so a failed or interrupted write
//! never leaves a partial file behind.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// Errors from writing or reading outputs.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The file could not be written or read.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause (part of the message, not a separate error-chain link,
        /// so one-line reports do not repeat it).
        cause: std::io::Error,
    },
    /// A CSV file is malformed.
    #[error("{path}: {message}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line number where known.
        message: String,
    },
    /// The arguments do not describe a valid output (sizes, options).
    #[error("invalid export: {0}")]
    Invalid(String),
}

/// Writes a file through `write`, first to a temporary sibling that is renamed
/// over `path` only when everything succeeded, so a failure leaves nothing partial.
pub fn atomic_write<E>(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<(), E>,
) -> Result<(), E>
where
    E: From<OutputError>,
{
    let io_err = |source| OutputError::Io {
        path: path.to_path_buf(),
        cause: source,
    };
    let tmp = temp_sibling(path);
    let file = File::create(&tmp).map_err(io_err)?;
    let mut w = BufWriter::new(file);
    let result = write(&mut w).and_then(|()| {
        let file = w.into_inner().map_err(|e| io_err(e.into_error()))?;
        file.sync_all().map_err(io_err)?;
        Ok(())
    });
    match result {
        Ok(()) => std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io_err(e).into()
        }),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// `dir/.name.tmp-<pid>`: hidden, in the same directory (so rename is atomic).
pub fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn failed_atomic_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        let r: Result<(), OutputError> = atomic_write(&path, |w| {
            w.write_all(b"partial").map_err(|source| OutputError::Io {
                path: path.clone(),
                cause: source,
            })?;
            Err(OutputError::Csv {
                path: path.clone(),
                message: "boom".into(),
            })
        });
        assert!(r.is_err());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "temp file was not removed"
        );
    }
}
