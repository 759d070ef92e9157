//! The frames of a learning run, read from image files and folders (every
//! frame of each, in order), with a bound on what is held in memory, or
//! rendered from the picked particles of a localisation table.

use std::path::{Path, PathBuf};

use crate::estimate::particles::ParticleSetup;
use crate::estimate::pick::{table_picks, PickConfig};
use crate::estimate::pose::pipeline::ModelSpec;
use crate::io::{self, locs, Frame};
use crate::shapes::Units;

use super::data::FrameId;
use super::LearnError;

/// Most bytes of f32 frames a run reads before they are cropped.
pub const MAX_INPUT_BYTES: u64 = 8 << 30;

/// The frames read, each with its source, and a warning per file or frame
/// left out.
pub type FramesRead = (Vec<(FrameId, Frame)>, Vec<String>);

/// Every frame of `files` (folders expand to the images inside). Files that
/// cannot be opened and frames that cannot be read are reported in the
/// returned warnings and left out; no frame at all is an error.
pub fn read_frames(files: &[PathBuf]) -> Result<FramesRead, LearnError> {
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

/// What a user learning from `table` should know when it is a 3D table:
/// learning compares images of the particles, so their z goes unused.
pub fn unused_z_note(table: &locs::LocTable) -> Option<String> {
    table.z_nm.as_ref()?;
    Some(format!(
        "{}: the localisations' z is not used: learning compares the particles' images \
         (their projections); the torus fit of the table (Estimate, `fit`) uses it",
        table.path.display()
    ))
}

/// The particles of a localisation table as frames to learn from, and a
/// warning when the table's z goes unused ([`unused_z_note`]): the
/// `picks` CSV's, the table's own groups (a Picasso picked file), or picked
/// automatically for a particle about the size of
/// a torus `size_nm` = `[R, r]` (which also sets the frames' pixel size, as
/// `fit TABLE` does). Returns the frames (numbered by pick) and their pixel
/// size in nm.
pub fn table_frames(
    table_path: &Path,
    picks: Option<&Path>,
    size_nm: [f64; 2],
) -> Result<TableFrames, LearnError> {
    let input = |e: String| LearnError::Input(format!("{}: {e}", table_path.display()));
    let table = locs::open_table(table_path, &locs::TableOptions::default())
        .map_err(|e| LearnError::Input(e.to_string()))?;
    let spec = ModelSpec {
        torus: size_nm,
        units: Units::Nm,
        ..ModelSpec::default()
    };
    let setup = ParticleSetup::new(&table, &spec).map_err(|e| input(e.to_string()))?;
    let picks = match picks {
        Some(p) => locs::read_picks(p).map_err(|e| LearnError::Input(e.to_string()))?,
        None => {
            table_picks(
                &table,
                &PickConfig::for_radius(size_nm[0] + size_nm[1]),
                false,
            )
            .map_err(|e| input(e.to_string()))?
            .0
        }
    };
    if picks.len() < 2 {
        return Err(input(format!(
            "{} particle(s) picked: learning needs many (a few hundred are typical)",
            picks.len()
        )));
    }
    let grid = setup.index(&table);
    let frames = picks
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let id = FrameId {
                file: None,
                frame: k,
            };
            (id, setup.frame(&table, &grid, p))
        })
        .collect();
    Ok(TableFrames {
        frames,
        pixel_nm: setup.pixel_nm,
        warnings: unused_z_note(&table).into_iter().collect(),
    })
}

/// The frames [`table_frames`] renders.
pub struct TableFrames {
    /// One frame per pick, numbered by pick.
    pub frames: Vec<(FrameId, Frame)>,
    /// Their pixel size, nm.
    pub pixel_nm: f64,
    /// What the user should know about the table.
    pub warnings: Vec<String>,
}
