//! Shape models: the 3D point clouds that poses are applied to, and
//! [`ModelKind`], the models a user can name.
//!
//! Owns: [`Model`], its generators and PLY/OBJ/CSV files, [`ShapeError`]. Must not import
//! `render`, `estimate`, `app`, candle, wgpu or egui.
//!
//! A [`Model`] is a weighted point cloud in *model coordinates* with a
//! [`Symmetry`]. Symmetric models have their symmetry axis along model z and
//! are centred at the origin (see [`crate::geometry`] for the pose and
//! symmetry conventions). Points are stored as `f32` (enough for
//! super-resolution data and what the renderers consume); all arithmetic on
//! them is done in `f64`.
//!
//! # Sources
//!
//! * Generators ([`Model::torus`], [`Model::torus_missing_arc`],
//!   [`Model::torus_with_marker`], [`Model::torus_grid`],
//!   [`Model::ring_of_blobs`]) are deterministic for a given seed
//!   (ChaCha8 stream).
//! * Files ([`Model::load`]): `.ply` (ASCII, binary little/big endian),
//!   `.obj` (`v` lines) and `.csv`/`.tsv` (localisation tables). See
//!   [`Model::load`] for the columns, properties and how units are declared.
//!   Loading never trusts counts in headers for allocation, and rejects
//!   malformed input (missing columns, non-numeric fields, NaN/∞
//!   coordinates, truncated binary data) with a [`ShapeError`] naming the
//!   file and the line or vertex.
//! * [`Model::save_ply`] writes binary little-endian PLY with `x, y, z,
//!   weight` and `comment units …` / `comment symmetry …` lines, which
//!   [`Model::load`] reads back.
//!
//! # Units
//!
//! [`Units::Px`] means camera pixels, [`Units::Nm`] nanometres. A model in nm
//! is converted to pixels with [`Model::to_pixels`] before rendering.

mod kind;
mod ply;
mod pointcloud;
mod torus;

pub use kind::{ModelKind, ModelKindError};

use std::fmt;
use std::path::{Path, PathBuf};

use crate::geometry::{Pose, Symmetry};

/// Largest number of points a generator produces.
pub const MAX_GENERATED_POINTS: usize = 10_000_000;
/// Largest number of points a file may hold (headers declaring more are rejected).
pub const MAX_LOADED_POINTS: usize = 50_000_000;

/// Length unit of model coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Units {
    /// Camera pixels.
    Px,
    /// Nanometres.
    Nm,
}

impl Units {
    /// "px" or "nm", as written in file headers.
    pub fn as_str(&self) -> &'static str {
        match self {
            Units::Px => "px",
            Units::Nm => "nm",
        }
    }
}

impl fmt::Display for Units {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors from generating, loading or saving models.
///
/// File errors name the file, and the line (text formats) or vertex (binary
/// PLY) where relevant.
#[derive(Debug, thiserror::Error)]
pub enum ShapeError {
    /// A generator or conversion parameter is out of range.
    #[error("invalid {what}: {reason}")]
    InvalidParameter {
        /// The parameter.
        what: &'static str,
        /// Why it is invalid, including the value.
        reason: String,
    },
    /// The operating system refused to read or write a file.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// "read" or "write".
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A problem at a specific line of a text file (or PLY header).
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// A problem with a file as a whole or with a binary record.
    #[error("{}: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong (names the vertex for binary records).
        message: String,
    },
    /// The file extension is not one [`Model::load`] understands.
    #[error("{}: unsupported model file type (expected .ply, .obj, .csv or .tsv)", path.display())]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
    },
}

impl ShapeError {
    fn invalid(what: &'static str, reason: impl Into<String>) -> ShapeError {
        ShapeError::InvalidParameter {
            what,
            reason: reason.into(),
        }
    }
}

/// Parameters of a torus: axis along model z, centred at the origin.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TorusSpec {
    /// Distance from the axis to the centre of the tube, R > 0.
    pub major_radius: f64,
    /// Radius of the tube, 0 ≤ r < R (0 gives a thin ring).
    pub tube_radius: f64,
    /// Units of both radii and of the generated points.
    pub units: Units,
}

/// A weighted 3D point cloud in model coordinates, with its symmetry.
#[derive(Clone, Debug)]
pub struct Model {
    /// Display name (file stem for loaded models).
    pub name: String,
    /// Points in model coordinates.
    pub points: Vec<[f32; 3]>,
    /// One non-negative weight (brightness) per point.
    pub weights: Vec<f32>,
    /// Units of `points`.
    pub units: Units,
    /// Symmetry of the point set in model coordinates.
    pub symmetry: Symmetry,
}

impl Model {
    /// A model from points and weights, validated: equal lengths, finite
    /// coordinates, finite non-negative weights.
    pub fn new(
        name: impl Into<String>,
        points: Vec<[f32; 3]>,
        weights: Vec<f32>,
        units: Units,
        symmetry: Symmetry,
    ) -> Result<Model, ShapeError> {
        if points.len() != weights.len() {
            return Err(ShapeError::invalid(
                "weights",
                format!("{} weights for {} points", weights.len(), points.len()),
            ));
        }
        if let Some(i) = points.iter().position(|p| !p.iter().all(|c| c.is_finite())) {
            return Err(ShapeError::invalid(
                "points",
                format!("point {i} has a non-finite coordinate {:?}", points[i]),
            ));
        }
        if let Some(i) = weights.iter().position(|w| !(w.is_finite() && *w >= 0.0)) {
            return Err(ShapeError::invalid(
                "weights",
                format!("weight {i} is {} (must be finite and ≥ 0)", weights[i]),
            ));
        }
        Ok(Model {
            name: name.into(),
            points,
            weights,
            units,
            symmetry,
        })
    }

    /// A model from points with all weights 1 and no symmetry (validated as in [`Model::new`]).
    pub fn from_points(
        name: impl Into<String>,
        points: Vec<[f32; 3]>,
        units: Units,
    ) -> Result<Model, ShapeError> {
        let weights = vec![1.0; points.len()];
        Model::new(name, points, weights, units, Symmetry::NONE)
    }

    /// The same model with a different symmetry (e.g. after loading a file,
    /// which defaults to no symmetry).
    pub fn with_symmetry(mut self, symmetry: Symmetry) -> Model {
        self.symmetry = symmetry;
        self
    }

    /// The same model with a different name.
    pub fn with_name(mut self, name: impl Into<String>) -> Model {
        self.name = name.into();
        self
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether the model has no points.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Unweighted mean of the points (origin for an empty model).
    pub fn centroid(&self) -> [f64; 3] {
        if self.points.is_empty() {
            return [0.0; 3];
        }
        let mut s = [0.0f64; 3];
        for p in &self.points {
            for k in 0..3 {
                s[k] += f64::from(p[k]);
            }
        }
        let n = self.points.len() as f64;
        s.map(|v| v / n)
    }

    /// Largest distance of a point from the [centroid](Model::centroid), in
    /// model units (0 for an empty model).
    pub fn radius(&self) -> f64 {
        let c = self.centroid();
        self.points
            .iter()
            .map(|p| {
                let d = [0, 1, 2].map(|k| f64::from(p[k]) - c[k]);
                (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt()
            })
            .fold(0.0, f64::max)
    }

    /// The model placed in the camera frame: each point becomes
    /// `R·p·scale + (shift_x, shift_y, 0)` (see [`Pose::transform`]), e.g. to
    /// export a posed model to PLY. `scale` converts model units to the
    /// output units (pass 1 to keep them; `units` is copied unchanged, so set
    /// it if `scale` changes units). The result has no symmetry, since the
    /// symmetry axis is no longer model z.
    pub fn posed(&self, pose: &Pose, scale: f64) -> Model {
        let points = self
            .points
            .iter()
            .map(|p| {
                let t = pose.transform(p.map(f64::from), scale);
                t.map(|v| v as f32)
            })
            .collect();
        Model {
            name: format!("{} (posed)", self.name),
            points,
            weights: self.weights.clone(),
            units: self.units,
            symmetry: Symmetry::NONE,
        }
    }

    /// The model in pixels: nm coordinates are divided by `pixel_size_nm`;
    /// a model already in pixels is returned unchanged.
    pub fn to_pixels(&self, pixel_size_nm: f64) -> Result<Model, ShapeError> {
        if !(pixel_size_nm.is_finite() && pixel_size_nm > 0.0) {
            return Err(ShapeError::invalid(
                "pixel size",
                format!("{pixel_size_nm} nm (must be finite and > 0)"),
            ));
        }
        match self.units {
            Units::Px => Ok(self.clone()),
            Units::Nm => {
                let inv = 1.0 / pixel_size_nm;
                let points = self
                    .points
                    .iter()
                    .map(|p| p.map(|v| (f64::from(v) * inv) as f32))
                    .collect();
                Ok(Model {
                    points,
                    units: Units::Px,
                    ..self.clone()
                })
            }
        }
    }

    /// Loads a point cloud, dispatching on the (case-insensitive) extension.
    ///
    /// * **`.ply`**: `format ascii`, `binary_little_endian` or
    ///   `binary_big_endian`. The `vertex` element must have `x`, `y`, `z`
    ///   properties (any scalar type). The weight is taken from the first of
    ///   `weight`, `intensity`, `scalar` or a `scalar_*` property, if any.
    ///   Other elements (faces) are skipped. A header line
    ///   `comment units nm` (or `px`, `um`) sets the units;
    ///   `comment symmetry dinf+m` (as written by [`Model::save_ply`]) sets
    ///   the symmetry.
    /// * **`.obj`**: `v x y z` lines only (extra values such as colours are
    ///   ignored); everything else is skipped. A comment `# units nm` sets
    ///   the units.
    /// * **`.csv` / `.tsv`**: a header row with columns `x`, `y`, `z` and an
    ///   optional `weight`, case-insensitive, in any order; other columns are
    ///   ignored. The delimiter (comma, tab or semicolon) is detected from the
    ///   header. Headers may carry units in brackets, ThunderSTORM style:
    ///   `"x [nm]","y [nm]","z [nm]"` makes the model nm (`[px]` → px,
    ///   `[um]`/`[µm]` → converted to nm). x, y and z must agree.
    ///
    /// Units default to px. Weights default to 1 and must be finite and ≥ 0.
    /// The symmetry defaults to [`Symmetry::NONE`]; set it with
    /// [`Model::with_symmetry`]. The name is the file stem. An empty point
    /// set, more than [`MAX_LOADED_POINTS`] points, or any malformed value is
    /// an error naming the file and the line or vertex.
    pub fn load(path: &Path) -> Result<Model, ShapeError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        let raw = match ext.as_str() {
            "ply" => ply::read_ply(path)?,
            "obj" => pointcloud::read_obj(path)?,
            "csv" | "tsv" => pointcloud::read_csv(path)?,
            _ => {
                return Err(ShapeError::UnsupportedFormat {
                    path: path.to_path_buf(),
                })
            }
        };
        if raw.points.is_empty() {
            return Err(ShapeError::Format {
                path: path.to_path_buf(),
                message: "no points in file".to_string(),
            });
        }
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".to_string());
        Ok(Model {
            name,
            points: raw.points,
            weights: raw.weights,
            units: raw.units,
            symmetry: raw.symmetry.unwrap_or(Symmetry::NONE),
        })
    }

    /// Writes binary little-endian PLY with float properties `x, y, z,
    /// weight` and header comments `units px|nm` and `symmetry <code>`.
    /// The data goes to a temporary file in the same directory, which is then
    /// renamed over `path`, so readers never see a half-written file.
    pub fn save_ply(&self, path: &Path) -> Result<(), ShapeError> {
        ply::write_ply(self, path)
    }
}

/// What a file reader returns before it becomes a [`Model`].
struct RawCloud {
    points: Vec<[f32; 3]>,
    weights: Vec<f32>,
    units: Units,
    symmetry: Option<Symmetry>,
}

/// Parses a unit name as found in headers ("nm", "px", "µm", ...): the units
/// and the factor that converts values into them.
fn parse_unit(u: &str) -> Option<(Units, f64)> {
    match u.trim().to_ascii_lowercase().as_str() {
        "" | "px" | "pix" | "pixel" | "pixels" => Some((Units::Px, 1.0)),
        "nm" | "nanometer" | "nanometers" | "nanometre" | "nanometres" => Some((Units::Nm, 1.0)),
        "um" | "µm" | "μm" | "micron" | "microns" | "micrometer" | "micrometers" => {
            Some((Units::Nm, 1000.0))
        }
        _ => None,
    }
}

/// Converts a coordinate to f32, rejecting non-finite values and values
/// outside the f32 range.
fn coord_f32(v: f64) -> Option<f32> {
    let f = v as f32;
    (v.is_finite() && f.is_finite()).then_some(f)
}

/// Converts a weight to f32, rejecting non-finite and negative values.
fn weight_f32(v: f64) -> Option<f32> {
    let f = v as f32;
    (f.is_finite() && f >= 0.0).then_some(f)
}
