//! Localisation tables: what SMLM software (Picasso, ThunderSTORM, SMAP …)
//! writes after fitting single-molecule blinks — one row per localisation
//! with x, y (and perhaps z), precision, photons and frame.
//!
//! Owns: [`LocTable`] (columns in nanometres, whatever the file's units),
//! [`open_table`] with its readers (`picasso`: HDF5 `/locs` + YAML sidecar;
//! `csv_table`: ThunderSTORM and plain CSV/TSV), header and unit parsing
//! (`columns`), the Picasso writer that `synth --locs` uses, and the picks
//! CSV ([`Pick`], [`read_picks`], [`write_picks`]). Errors are
//! [`IoError`]s naming the file. Memory is bounded: a table is refused up
//! front, or as soon as it passes [`TableLimits::max_rows`], never by
//! running out of memory.

mod columns;
mod csv_table;
pub mod picasso;
mod picks;

pub use picks::{read_pick_centres_px, read_picks, write_pick_rows, write_picks, Pick, PickRow};

use std::path::{Path, PathBuf};

use super::IoError;

/// Caps on what a table may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableLimits {
    /// Rows kept at most. At up to 28 bytes a row (x, y, z, precision,
    /// frame, photons, group) the default of 5·10⁷ stays within 1.4 GB.
    pub max_rows: usize,
}

impl Default for TableLimits {
    fn default() -> Self {
        Self {
            max_rows: 50_000_000,
        }
    }
}

/// How to read a table.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TableOptions {
    /// Camera pixel size in nm: needed for tables in pixels without one
    /// (a Picasso file without its YAML); overrides nothing the file states
    /// unless the file states none.
    pub pixel_size_nm: Option<f64>,
    pub limits: TableLimits,
}

/// A localisation table, every length in nanometres.
#[derive(Clone, Debug, Default)]
pub struct LocTable {
    pub path: PathBuf,
    /// `"Picasso HDF5"`, `"ThunderSTORM CSV"`, `"Zeiss ZEN (Elyra)"`, `"SMAP CSV"`,
    /// `"SMLM challenge CSV"`, `"TSV"` or `"CSV"`.
    pub format: &'static str,
    pub x_nm: Vec<f32>,
    pub y_nm: Vec<f32>,
    pub z_nm: Option<Vec<f32>>,
    /// Lateral localisation precision (1σ).
    pub precision_nm: Option<Vec<f32>>,
    /// Axial localisation precision (1σ), when the table states one beside
    /// its z; NaN where a row's is unusable.
    pub precision_z_nm: Option<Vec<f32>>,
    pub frame: Option<Vec<u32>>,
    pub photons: Option<Vec<f32>>,
    /// Pick / cluster id (Picasso's `group`).
    pub group: Option<Vec<i32>>,
    /// The camera pixel size (from the file or the options).
    pub pixel_size_nm: Option<f64>,
    /// Camera image size in pixels, when the file states it.
    pub camera_px: Option<(u32, u32)>,
    /// Camera frames, when the file states it.
    pub frames: Option<u64>,
    /// The file's columns as written, with their units.
    pub columns: Vec<String>,
    /// Rows dropped: NaN or missing x, y or precision, unparsable cells.
    pub skipped_rows: usize,
    /// Notes about assumptions and conversions.
    pub warnings: Vec<String>,
}

/// Facts for `info` and the viewer's status bar.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TableSummary {
    pub rows: usize,
    /// `[x_min, y_min, x_max, y_max]` in nm.
    pub extent_nm: [f32; 4],
    pub median_precision_nm: Option<f32>,
    /// Highest frame index + 1 (u64: the index may be `u32::MAX`).
    pub frames_seen: Option<u64>,
}

impl LocTable {
    /// Number of localisations.
    pub fn len(&self) -> usize {
        self.x_nm.len()
    }

    /// True for a table of no rows.
    pub fn is_empty(&self) -> bool {
        self.x_nm.is_empty()
    }

    /// Extent, median precision and frame count.
    pub fn summary(&self) -> TableSummary {
        let mut e = [
            f32::INFINITY,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NEG_INFINITY,
        ];
        for (&x, &y) in self.x_nm.iter().zip(&self.y_nm) {
            e = [e[0].min(x), e[1].min(y), e[2].max(x), e[3].max(y)];
        }
        if self.is_empty() {
            e = [0.0; 4];
        }
        let median_precision_nm = self.precision_nm.as_ref().and_then(|p| median(p));
        let frames_seen = self
            .frame
            .as_ref()
            .and_then(|f| f.iter().max().map(|&m| u64::from(m) + 1));
        TableSummary {
            rows: self.len(),
            extent_nm: e,
            median_precision_nm,
            frames_seen,
        }
    }

    /// Checks that every column has one value per row.
    fn check_lengths(&self) -> Result<(), IoError> {
        let n = self.len();
        let lens = [
            Some(self.y_nm.len()),
            self.z_nm.as_ref().map(Vec::len),
            self.precision_nm.as_ref().map(Vec::len),
            self.precision_z_nm.as_ref().map(Vec::len),
            self.frame.as_ref().map(Vec::len),
            self.photons.as_ref().map(Vec::len),
            self.group.as_ref().map(Vec::len),
        ];
        if lens.into_iter().flatten().any(|l| l != n) {
            return Err(IoError::corrupt(&self.path, "columns of different lengths"));
        }
        Ok(())
    }
}

/// The median of the finite values (`None` if there are none). Samples
/// 100 000 values evenly for long columns.
fn median(v: &[f32]) -> Option<f32> {
    let step = (v.len() / 100_000).max(1);
    let mut s: Vec<f32> = v
        .iter()
        .step_by(step)
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    if s.is_empty() {
        return None;
    }
    let mid = s.len() / 2;
    Some(*s.select_nth_unstable_by(mid, f32::total_cmp).1)
}

/// True for files that [`open_table`] reads (by extension): `.hdf5`, `.h5`,
/// `.csv`, `.tsv`, `.txt`.
pub fn is_table(path: &Path) -> bool {
    matches!(
        path.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("hdf5" | "h5" | "csv" | "tsv" | "txt")
    )
}

/// The HDF5 signature.
const HDF5_MAGIC: [u8; 8] = [0x89, b'H', b'D', b'F', b'\r', b'\n', 0x1a, b'\n'];

/// Opens a localisation table: Picasso HDF5 (by its signature) or a CSV/TSV
/// table (ThunderSTORM or plain, by its header).
pub fn open_table(path: &Path, opts: &TableOptions) -> Result<LocTable, IoError> {
    let mut head = [0u8; 8];
    let n = {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(|e| IoError::io(path, e))?;
        f.read(&mut head).map_err(|e| IoError::io(path, e))?
    };
    if n == 0 {
        return Err(IoError::Empty {
            path: path.to_path_buf(),
        });
    }
    let table = if n == 8 && head == HDF5_MAGIC {
        picasso::read(path, opts)?
    } else {
        csv_table::read(path, opts)?
    };
    table.check_lengths()?;
    if table.is_empty() {
        return Err(IoError::corrupt(
            path,
            format!(
                "no localisations ({} rows skipped for NaN or missing values)",
                table.skipped_rows
            ),
        ));
    }
    Ok(table)
}

/// "1 row skipped (why)", "3 rows skipped (why)".
fn skipped_note(n: usize, why: &str) -> String {
    let rows = if n == 1 { "row" } else { "rows" };
    format!("{n} {rows} skipped ({why})")
}

/// The refusal of a table over the row cap.
fn too_many_rows(path: &Path, rows: u64, limits: &TableLimits) -> IoError {
    IoError::limit(
        path,
        format!(
            "{rows} localisations; at most {} are opened (about {:.1} GB in memory); \
             filter or split the table first",
            limits.max_rows,
            limits.max_rows as f64 * 28.0 / 1e9
        ),
    )
}
