//! The frames of a learning run, read from image files and folders (every
//! frame of each, in order), with a bound on what is held in memory.

use std::path::PathBuf;

use crate::io::{self, Frame};

use super::data::FrameId;
use super::LearnError;

/// Most bytes of f32 frames a run reads before they are cropped.
pub const MAX_INPUT_BYTES: u64 = 8 << 30;

/// Every frame of `files` (folders expand to the images inside). Files that
/// cannot be opened and frames that cannot be read are reported in the
/// returned warnings and left out; no frame at all is an error.
pub fn read_frames(files: &[PathBuf]) -> Result<(Vec<(FrameId, Frame)>, Vec<String>), LearnError> {
    let paths = io::expand_paths(files).map_err(|e| LearnError::Input(e.to_string()))?;
    let several = paths.len() > 1;
    let mut frames = Vec::new();
    let mut warnings = Vec::new();
    let mut bytes = 0u64;
    for path in &paths {
        let mut stack = match io::open(path) {
            Ok(s) => s,
            Err(e) => {
                warnings.push(e.to_string());
                continue;
            }
        };
        let name = several.then(|| path.display().to_string());
        for k in 0..stack.len() {
            match stack.frame(k) {
                Ok(f) => {
                    bytes += 4 * f.data.len() as u64;
                    if bytes > MAX_INPUT_BYTES {
                        return Err(LearnError::Input(format!(
                            "{}: the frames so far need more than {} GiB; learn from fewer frames \
                             (a few hundred to a few thousand particles are enough)",
                            path.display(),
                            MAX_INPUT_BYTES >> 30
                        )));
                    }
                    frames.push((
                        FrameId {
                            file: name.clone(),
                            frame: k,
                        },
                        f,
                    ));
                }
                Err(e) => warnings.push(format!("frame {k}: {e}")),
            }
        }
    }
    if frames.is_empty() {
        return Err(LearnError::Input(format!(
            "no frame could be read from {} file(s){}",
            paths.len(),
            warnings.first().map_or(String::new(), |w| format!(": {w}"))
        )));
    }
    Ok((frames, warnings))
}
