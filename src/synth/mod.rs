//! Synthetic particle frames with known ground truth.
//!
//! Owns: the noise model, [`SynthConfig`] and the data-set writer, and
//! synthetic localisation fields ([`locs`]). Uses `shapes`, `render`
//! (the CPU splat) and `io`; must not import `estimate`, `app`, wgpu or egui.
//!
//! # Image model
//! A particle is a set of labelled sites on the model (for a torus, points
//! sampled area-uniformly on its surface). For each frame:
//! 1. the pose is drawn uniformly from SO(3) (Shoemake) and the shift
//!    uniformly from `±shift_px` in x and y;
//! 2. the geometry (major radius R, r/R, PSF σ), the photon count per blink
//!    and the background are drawn from their ranges;
//! 3. **structural noise**: each site is lost with probability `dropout`
//!    (labelling efficiency); every kept site blinks `1 + Poisson(blinks − 1)`
//!    times, and each blink sits at the site plus isotropic Gaussian jitter
//!    of `jitter_px` (label displacement and localisation error);
//! 4. the expected photon image is `Σ_blinks photons·PSF + background`,
//!    rendered with the same splat as everything else ([`crate::render`]);
//! 5. **camera noise**: Poisson shot noise on that image, then
//!    `ADU = gain·photons + offset + Normal(0, read_noise)`.
//!
//! Generation is deterministic: frame `i` uses its own ChaCha8 stream of
//! `seed`, so results do not depend on the number of threads.

pub mod locs;

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Poisson};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::geometry::{Pose, Quat};
use crate::io::{self, Frame, OutputError, PoseRow, WriteSample};
use crate::render::cpu::render_frame_into;
use crate::render::kernel::Scratch;
use crate::render::SplatParams;
use crate::shapes::{Model, TorusSpec, Units};

/// Errors from synthesis.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// The configuration is not usable.
    #[error("invalid synthesis settings: {0}")]
    Config(String),
    /// A model could not be built.
    #[error(transparent)]
    Shape(#[from] crate::shapes::ShapeError),
    /// The stack could not be written.
    #[error(transparent)]
    Io(#[from] io::IoError),
    /// The truth table could not be written.
    #[error(transparent)]
    Export(#[from] OutputError),
    /// Rendering failed.
    #[error(transparent)]
    Render(#[from] crate::render::RenderError),
}

/// A closed range `[lo, hi]` sampled uniformly; `lo == hi` is a fixed value.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Range {
    /// Lower end.
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
}

impl Range {
    /// `[lo, hi]`.
    pub const fn new(lo: f64, hi: f64) -> Self {
        Self { lo, hi }
    }

    /// A fixed value.
    pub const fn fixed(x: f64) -> Self {
        Self { lo: x, hi: x }
    }

    /// A uniform draw.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        if self.hi > self.lo {
            rng.random_range(self.lo..=self.hi)
        } else {
            self.lo
        }
    }

    fn check(&self, name: &str, min: f64, max: f64) -> Result<(), SynthError> {
        if !(self.lo.is_finite()
            && self.hi.is_finite()
            && self.lo <= self.hi
            && self.lo >= min
            && self.hi <= max)
        {
            return Err(SynthError::Config(format!(
                "{name} range {}..{} must be finite, ordered and within {min}..{max}",
                self.lo, self.hi
            )));
        }
        Ok(())
    }
}

impl std::str::FromStr for Range {
    type Err = String;

    /// `"20"` or `"10..30"`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let num = |t: &str| {
            t.trim()
                .parse::<f64>()
                .map_err(|_| format!("'{t}' is not a number"))
        };
        match s.split_once("..") {
            Some((a, b)) => {
                let r = Range::new(num(a)?, num(b)?);
                if r.lo > r.hi {
                    return Err(format!("range {s} is reversed"));
                }
                Ok(r)
            }
            None => Ok(Range::fixed(num(s)?)),
        }
    }
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}..{}", self.lo, self.hi)
        }
    }
}

/// Which particle to simulate.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum SynthModel {
    /// A torus (D∞ with mirror): the default.
    Torus,
    /// A torus with an arc of `arc_deg` degrees missing (no rotational symmetry).
    TorusGap {
        /// Missing arc in degrees.
        arc_deg: f64,
    },
    /// A torus plus one bright marker at angle 0 on the outer equator.
    TorusMarker,
    /// A given point model in pixels; the geometry ranges are ignored.
    /// Recorded in synth.json by name and size (the points are in the model file).
    #[serde(skip_deserializing, serialize_with = "model_summary")]
    Points(Model),
}

/// How a point model is recorded in synth.json.
fn model_summary<S: serde::Serializer>(m: &Model, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    let mut st = s.serialize_struct("Points", 3)?;
    st.serialize_field("name", &m.name)?;
    st.serialize_field("points", &m.len())?;
    st.serialize_field("units", m.units.as_str())?;
    st.end()
}

/// Everything that defines a synthetic data set.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SynthConfig {
    /// The particle.
    pub model: SynthModel,
    /// Number of frames.
    pub frames: usize,
    /// Frame width in pixels.
    pub width: usize,
    /// Frame height in pixels.
    pub height: usize,
    /// Seed of the whole data set.
    pub seed: u64,
    /// Torus major radius R in pixels.
    pub major_radius_px: Range,
    /// Tube radius as a fraction of R.
    pub ratio: Range,
    /// PSF σ in pixels.
    pub sigma_px: Range,
    /// Maximum |shift| in x and in y, pixels.
    pub shift_px: f64,
    /// Labelled sites per particle before dropout.
    pub sites: usize,
    /// Fraction of sites lost.
    pub dropout: Range,
    /// Mean blinks per kept site (≥ 1).
    pub blinks: f64,
    /// Standard deviation of each blink's 3-D displacement from its site, pixels.
    pub jitter_px: f64,
    /// Expected photons per blink.
    pub photons: Range,
    /// Background photons per pixel.
    pub background: Range,
    /// Camera gain, ADU per photon.
    pub gain: f64,
    /// Camera offset, ADU.
    pub offset: f64,
    /// Camera read noise σ, ADU.
    pub read_noise: f64,
    /// Pixel size written into the stack, nm (None: not written).
    pub pixel_size_nm: Option<f64>,
}

impl Default for SynthConfig {
    /// The training ranges of the shipped torus model: R 10–30 px, r/R 0.15–0.5,
    /// σ 1–3 px, shift ±6 px, 100–1,000 photons per blink, 128×128 frames.
    fn default() -> Self {
        Self {
            model: SynthModel::Torus,
            frames: 100,
            width: 128,
            height: 128,
            seed: 1,
            major_radius_px: Range::new(10.0, 30.0),
            ratio: Range::new(0.15, 0.5),
            sigma_px: Range::new(1.0, 3.0),
            shift_px: 6.0,
            sites: 200,
            dropout: Range::new(0.0, 0.2),
            blinks: 3.0,
            jitter_px: 0.5,
            photons: Range::new(100.0, 1000.0),
            background: Range::new(5.0, 20.0),
            gain: 1.0,
            offset: 100.0,
            read_noise: 2.0,
            pixel_size_nm: None,
        }
    }
}

impl SynthConfig {
    /// The thin-torus benchmark of the accuracy targets: R 20 px, r 5 px,
    /// PSF σ 1.6 px, Poisson shot noise and read noise only (dense labelling:
    /// 2,000 sites, no dropout, one blink each, no jitter), 128×128 frames.
    pub fn thin_torus(frames: usize, seed: u64) -> Self {
        Self {
            frames,
            seed,
            major_radius_px: Range::fixed(20.0),
            ratio: Range::fixed(0.25),
            sigma_px: Range::fixed(1.6),
            sites: 2000,
            dropout: Range::fixed(0.0),
            blinks: 1.0,
            jitter_px: 0.0,
            ..Self::default()
        }
    }
}

/// Largest data set [`generate`] holds in memory, in bytes of f32 frames.
pub const MAX_DATASET_BYTES: u64 = 4 << 30;

impl SynthConfig {
    /// Checks every setting, with a message naming the bad one.
    pub fn validate(&self) -> Result<(), SynthError> {
        let bad = |m: String| Err(SynthError::Config(m));
        if self.frames == 0 {
            return bad("frames must be at least 1".into());
        }
        if !(8..=4096).contains(&self.width) || !(8..=4096).contains(&self.height) {
            return bad(format!(
                "frame size {}×{} must be within 8..4096",
                self.width, self.height
            ));
        }
        let bytes = self.frames as u64 * (self.width * self.height * 4) as u64;
        if bytes > MAX_DATASET_BYTES {
            return bad(format!(
                "{} frames of {}×{} need {} MiB; the limit is {} MiB — generate several smaller sets with different seeds",
                self.frames,
                self.width,
                self.height,
                bytes >> 20,
                MAX_DATASET_BYTES >> 20
            ));
        }
        self.major_radius_px.check("major radius", 0.1, 1e4)?;
        self.ratio.check("tube ratio r/R", 0.0, 0.99)?;
        self.sigma_px.check("PSF sigma", 0.1, 100.0)?;
        self.dropout.check("dropout", 0.0, 0.99)?;
        self.photons.check("photons", 0.0, 1e9)?;
        self.background.check("background", 0.0, 1e9)?;
        let finite_nonneg = |x: f64| x.is_finite() && x >= 0.0;
        if !(finite_nonneg(self.shift_px)
            && finite_nonneg(self.jitter_px)
            && finite_nonneg(self.read_noise))
        {
            return bad("shift, jitter and read noise must be finite and ≥ 0".into());
        }
        if !(self.blinks.is_finite() && self.blinks >= 1.0 && self.blinks <= 1000.0) {
            return bad(format!("blinks {} must be within 1..1000", self.blinks));
        }
        if !(self.gain.is_finite() && self.gain > 0.0 && self.offset.is_finite()) {
            return bad("gain must be > 0 and offset finite".into());
        }
        if self.sites == 0 || self.sites > 1_000_000 {
            return bad(format!("sites {} must be within 1..1,000,000", self.sites));
        }
        Ok(())
    }
}

/// One generated frame and its truth.
#[derive(Clone, Debug)]
pub struct SynthFrame {
    /// Camera image in ADU.
    pub image: Frame,
    /// Pose, σ and geometry (extra columns `major_radius_px`, `tube_radius_px`,
    /// `photons`, `background`, `sites_kept`, `blinks` and, for tori,
    /// `floor_axis_deg`: see [`plane_floor_deg`]).
    pub truth: PoseRow,
    /// Every blink's position in the model frame (before the pose), pixels:
    /// the frame's true emitters.
    pub emitters: Vec<[f32; 3]>,
}

/// The 3D floor of an axis estimate for a ring-like particle: the angle
/// between the normal of the least-squares plane through its true emitters
/// (model frame) and the model axis z, in degrees (0..=90, the sign of the
/// axis being invisible). No method that sees only these emitters' image
/// can be expected to do much better on average; `None` for fewer than
/// three emitters.
pub fn plane_floor_deg(emitters: &[[f32; 3]]) -> Option<f64> {
    if emitters.len() < 3 {
        return None;
    }
    let n = emitters.len() as f64;
    let mut mean = [0.0f64; 3];
    for p in emitters {
        for k in 0..3 {
            mean[k] += p[k] as f64 / n;
        }
    }
    let mut c = [[0.0f64; 3]; 3];
    for p in emitters {
        let d = [0, 1, 2].map(|k| p[k] as f64 - mean[k]);
        for i in 0..3 {
            for j in 0..3 {
                c[i][j] += d[i] * d[j] / n;
            }
        }
    }
    let (_, vecs) = crate::geometry::sym_eigen3(&c);
    // eigenvalues decrease: the last row is the plane's normal
    Some(vecs[2][2].abs().min(1.0).acos().to_degrees())
}

/// Generates frame `index` of the data set (deterministic in `seed` and `index`).
pub fn generate_frame(cfg: &SynthConfig, index: usize) -> Result<SynthFrame, SynthError> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    rng.set_stream(index as u64);
    let q = Quat::random_uniform(&mut rng);
    let shift = [
        rng.random_range(-cfg.shift_px..=cfg.shift_px),
        rng.random_range(-cfg.shift_px..=cfg.shift_px),
    ];
    let major = cfg.major_radius_px.sample(&mut rng);
    let tube = major * cfg.ratio.sample(&mut rng);
    let sigma = cfg.sigma_px.sample(&mut rng);
    let photons = cfg.photons.sample(&mut rng);
    let background = cfg.background.sample(&mut rng);
    let dropout = cfg.dropout.sample(&mut rng);
    let spec = TorusSpec {
        major_radius: major,
        tube_radius: tube,
        units: Units::Px,
    };
    let site_seed: u64 = rng.random();
    let model = match &cfg.model {
        SynthModel::Torus => Model::torus(spec, cfg.sites, site_seed)?,
        SynthModel::TorusGap { arc_deg } => {
            Model::torus_missing_arc(spec, cfg.sites, *arc_deg, site_seed)?
        }
        SynthModel::TorusMarker => {
            Model::torus_with_marker(spec, cfg.sites, [major + tube, 0.0, 0.0], 10.0, site_seed)?
        }
        SynthModel::Points(m) => m.clone(),
    };

    // structural noise: dropout, blinks, jitter
    let jitter = Normal::new(0.0, cfg.jitter_px.max(1e-12))
        .map_err(|e| SynthError::Config(e.to_string()))?;
    let extra_blinks = Poisson::new(cfg.blinks - 1.0).ok();
    let mut blink_pts: Vec<[f32; 3]> = Vec::with_capacity(model.len() * cfg.blinks.ceil() as usize);
    let mut blink_w: Vec<f32> = Vec::with_capacity(blink_pts.capacity());
    let mut kept = 0usize;
    for (p, &w) in model.points.iter().zip(&model.weights) {
        if rng.random::<f64>() < dropout {
            continue;
        }
        kept += 1;
        let k = 1 + extra_blinks.map_or(0, |d| d.sample(&mut rng) as usize);
        for _ in 0..k {
            let j = [0; 3].map(|_| {
                if cfg.jitter_px > 0.0 {
                    jitter.sample(&mut rng)
                } else {
                    0.0
                }
            });
            blink_pts.push([p[0] + j[0] as f32, p[1] + j[1] as f32, p[2] + j[2] as f32]);
            blink_w.push(w * photons as f32);
        }
    }

    // expected photons, then shot and camera noise
    let params = SplatParams::new(cfg.width, cfg.height, sigma as f32);
    let mut expected = vec![0.0f32; cfg.width * cfg.height];
    let rot = q.to_matrix();
    render_frame_into(
        &blink_pts,
        &blink_w,
        &rot,
        shift,
        &params,
        &mut Scratch::default(),
        &mut expected,
    )?;
    let read = Normal::new(0.0, cfg.read_noise.max(1e-12))
        .map_err(|e| SynthError::Config(e.to_string()))?;
    let data: Vec<f32> = expected
        .iter()
        .map(|&e| {
            let lambda = (e as f64 + background).max(0.0);
            let n = if lambda > 0.0 {
                Poisson::new(lambda)
                    .map(|d| d.sample(&mut rng))
                    .unwrap_or(lambda)
            } else {
                0.0
            };
            let noise = if cfg.read_noise > 0.0 {
                read.sample(&mut rng)
            } else {
                0.0
            };
            (cfg.gain * n + cfg.offset + noise) as f32
        })
        .collect();

    let mut truth = PoseRow::new(index, Pose::new(q, shift), sigma);
    truth.set("major_radius_px", major);
    truth.set("tube_radius_px", tube);
    truth.set("photons", photons);
    truth.set("background", background);
    truth.set("sites_kept", kept);
    truth.set("blinks", blink_pts.len());
    if !matches!(cfg.model, SynthModel::Points(_)) {
        if let Some(floor) = plane_floor_deg(&blink_pts) {
            truth.set("floor_axis_deg", format!("{floor:.4}"));
        }
    }
    Ok(SynthFrame {
        image: Frame {
            width: cfg.width,
            height: cfg.height,
            data,
        },
        truth,
        emitters: blink_pts,
    })
}

/// Generates every frame on all cores; `on_frame` is called once per finished frame.
pub fn generate(
    cfg: &SynthConfig,
    on_frame: impl Fn() + Sync,
) -> Result<Vec<SynthFrame>, SynthError> {
    cfg.validate()?;
    (0..cfg.frames)
        .into_par_iter()
        .map(|i| {
            let f = generate_frame(cfg, i);
            on_frame();
            f
        })
        .collect()
}

/// Paths written by [`write_dataset`].
#[derive(Clone, Debug)]
pub struct Dataset {
    /// The multi-page TIFF.
    pub stack: PathBuf,
    /// The truth table (pose CSV).
    pub truth: PathBuf,
    /// The settings, as JSON.
    pub settings: PathBuf,
    /// Every frame's true emitters (`emitters.csv`: frame, x_px, y_px, z_px
    /// in the model frame), when asked for.
    pub emitters: Option<PathBuf>,
}

/// Generates the data set and writes `stack.tif`, `truth.csv` and `synth.json` into `dir`.
pub fn write_dataset(
    cfg: &SynthConfig,
    dir: &Path,
    sample: WriteSample,
    emitters: bool,
    on_frame: impl Fn() + Sync,
) -> Result<Dataset, SynthError> {
    let frames = generate(cfg, on_frame)?;
    std::fs::create_dir_all(dir).map_err(|source| OutputError::Io {
        path: dir.to_path_buf(),
        cause: source,
    })?;
    let out = Dataset {
        stack: dir.join("stack.tif"),
        truth: dir.join("truth.csv"),
        settings: dir.join("synth.json"),
        emitters: emitters.then(|| dir.join("emitters.csv")),
    };
    if let Some(path) = &out.emitters {
        write_emitters(path, &frames)?;
    }
    let (images, rows): (Vec<Frame>, Vec<PoseRow>) =
        frames.into_iter().map(|f| (f.image, f.truth)).unzip();
    io::write_tiff_stack(&out.stack, &images, sample, cfg.pixel_size_nm)?;
    io::write_pose_csv(&out.truth, &rows)?;
    let json = serde_json::to_string_pretty(cfg).map_err(|e| SynthError::Config(e.to_string()))?;
    io::atomic_write(&out.settings, |w| {
        use std::io::Write;
        w.write_all(json.as_bytes())
            .map_err(|source| OutputError::Io {
                path: out.settings.clone(),
                cause: source,
            })
    })?;
    Ok(out)
}

/// Writes every frame's emitters as CSV: frame, x_px, y_px, z_px (model
/// frame, before the pose).
fn write_emitters(path: &Path, frames: &[SynthFrame]) -> Result<(), SynthError> {
    use std::io::Write;
    let io_err = |source| OutputError::Io {
        path: path.to_path_buf(),
        cause: source,
    };
    io::atomic_write(path, |w| {
        writeln!(w, "frame,x_px,y_px,z_px").map_err(io_err)?;
        for (k, f) in frames.iter().enumerate() {
            for p in &f.emitters {
                writeln!(w, "{k},{},{},{}", p[0], p[1], p[2]).map_err(io_err)?;
            }
        }
        w.flush().map_err(io_err)
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SynthConfig {
        SynthConfig {
            frames: 6,
            width: 48,
            height: 48,
            major_radius_px: Range::new(8.0, 12.0),
            sites: 80,
            ..SynthConfig::default()
        }
    }

    #[test]
    fn deterministic_and_independent_of_order() {
        let cfg = small();
        let all = generate(&cfg, || {}).unwrap();
        let again = generate_frame(&cfg, 4).unwrap();
        assert_eq!(all[4].image.data, again.image.data);
        // compared through Debug: the truth has a NaN score, and NaN != NaN
        assert_eq!(format!("{:?}", all[4].truth), format!("{:?}", again.truth));
        assert_ne!(all[3].image.data, all[4].image.data);
        let other_seed = generate_frame(&SynthConfig { seed: 2, ..cfg }, 4).unwrap();
        assert_ne!(other_seed.image.data, again.image.data);
    }

    #[test]
    fn noise_statistics_follow_the_camera_model() {
        // no particle signal outside the torus: corners hold background only
        let cfg = SynthConfig {
            frames: 1,
            width: 128,
            height: 128,
            major_radius_px: Range::fixed(10.0),
            ratio: Range::fixed(0.2),
            sigma_px: Range::fixed(1.5),
            shift_px: 0.0,
            background: Range::fixed(50.0),
            gain: 2.0,
            offset: 100.0,
            read_noise: 3.0,
            ..SynthConfig::default()
        };
        let f = generate_frame(&cfg, 0).unwrap();
        let corner: Vec<f64> = (0..128 * 128)
            .filter(|i| (i % 128) < 30 && (i / 128) < 30)
            .map(|i| f.image.data[i] as f64)
            .collect();
        let n = corner.len() as f64;
        let mean = corner.iter().sum::<f64>() / n;
        let var = corner.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        // mean = gain·bg + offset = 200; var = gain²·bg + read² = 209
        assert!((mean - 200.0).abs() < 1.5, "mean {mean}");
        assert!((var - 209.0).abs() < 25.0, "variance {var}");
        // the particle is bright at the centre
        let centre = f.image.get(64 + 10, 64);
        assert!(
            centre > 400.0 || f.image.min_max().1 > 1000.0,
            "no particle signal"
        );
    }

    #[test]
    fn dropout_and_blinks_change_structure() {
        let base = SynthConfig {
            frames: 1,
            dropout: Range::fixed(0.0),
            blinks: 1.0,
            ..small()
        };
        let f = generate_frame(&base, 0).unwrap();
        assert_eq!(f.truth.get("sites_kept"), Some("80"));
        assert_eq!(f.truth.get("blinks"), Some("80"));
        let g = generate_frame(
            &SynthConfig {
                dropout: Range::fixed(0.5),
                blinks: 4.0,
                ..base
            },
            0,
        )
        .unwrap();
        let kept: usize = g.truth.get("sites_kept").unwrap().parse().unwrap();
        let blinks: usize = g.truth.get("blinks").unwrap().parse().unwrap();
        assert!(
            (20..=60).contains(&kept),
            "kept {kept} of 80 at 50% dropout"
        );
        assert!(
            blinks > 2 * kept,
            "blinks {blinks} for {kept} sites at a mean of 4"
        );
    }

    #[test]
    fn a_point_model_set_is_written_with_its_settings() {
        let model = Model::new(
            "blobs",
            vec![[5.0, 0.0, 0.0], [-5.0, 0.0, 2.0]],
            vec![1.0, 1.0],
            Units::Px,
            crate::geometry::Symmetry::NONE,
        )
        .unwrap();
        let cfg = SynthConfig {
            model: SynthModel::Points(model),
            frames: 2,
            width: 32,
            height: 32,
            ..SynthConfig::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let out = write_dataset(&cfg, dir.path(), WriteSample::U16, true, || {}).unwrap();
        let json = std::fs::read_to_string(out.settings).unwrap();
        assert!(
            json.contains("\"name\": \"blobs\"") && json.contains("\"points\": 2"),
            "{json}"
        );
        // one emitters row per blink, frame by frame
        let truth = io::read_pose_csv(&out.truth).unwrap();
        let text = std::fs::read_to_string(out.emitters.unwrap()).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("frame,x_px,y_px,z_px"));
        let frames: Vec<usize> = lines
            .map(|l| l.split(',').next().unwrap().parse().unwrap())
            .collect();
        for (k, t) in truth.iter().enumerate() {
            let blinks: usize = t.get("blinks").unwrap().parse().unwrap();
            assert_eq!(frames.iter().filter(|&&f| f == k).count(), blinks);
        }
    }

    #[test]
    fn the_plane_floor_is_the_tilt_of_the_emitters_plane() {
        // a flat ring tilted 7° about x: its plane's normal is 7° from z
        let t = 7f64.to_radians();
        let ring: Vec<[f32; 3]> = (0..40)
            .map(|k| {
                let a = k as f64 * std::f64::consts::TAU / 40.0;
                let (x, y) = (20.0 * a.cos(), 20.0 * a.sin());
                [x as f32, (y * t.cos()) as f32, (y * t.sin()) as f32]
            })
            .collect();
        let f = plane_floor_deg(&ring).unwrap();
        assert!((f - 7.0).abs() < 1e-3, "floor {f}");
        // the sign of the axis is invisible: -7° is 7° too
        let mirrored: Vec<[f32; 3]> = ring.iter().map(|p| [p[0], p[1], -p[2]]).collect();
        assert!((plane_floor_deg(&mirrored).unwrap() - 7.0).abs() < 1e-3);
        assert!(plane_floor_deg(&ring[..2]).is_none());
    }

    #[test]
    fn bad_settings_are_rejected() {
        assert!(SynthConfig {
            frames: 0,
            ..small()
        }
        .validate()
        .is_err());
        assert!(SynthConfig {
            width: 100_000,
            ..small()
        }
        .validate()
        .is_err());
        assert!(SynthConfig {
            frames: 10_000_000,
            ..small()
        }
        .validate()
        .is_err());
        assert!(SynthConfig {
            sigma_px: Range::new(3.0, 1.0),
            ..small()
        }
        .validate()
        .is_err());
        assert!(SynthConfig {
            photons: Range::fixed(f64::NAN),
            ..small()
        }
        .validate()
        .is_err());
        assert!("10..30".parse::<Range>().unwrap() == Range::new(10.0, 30.0));
        assert!("30..10".parse::<Range>().is_err());
        assert!("x".parse::<Range>().is_err());
    }
}
