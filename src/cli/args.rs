//! What several commands share: the model flags, the look of exported PNGs,
//! progress bars and the parsing of sizes and number lists.

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use posescope::estimate::particles::DEFAULT_TORUS_NM;
use posescope::estimate::pose::pipeline::{DeviceChoice, ModelSpec};
use posescope::export::frames::ExportLook;
use posescope::geometry::Symmetry;
use posescope::render::display::{Contrast, Lut};
use posescope::shapes::{ModelKind, Units};

#[derive(Args)]
pub struct ModelArgs {
    /// Model: torus, torus-gap, torus-marker, ring:N (an N-fold ring of blobs),
    /// or a point-cloud file (.ply, .obj, .csv).
    #[arg(long, default_value = "torus")]
    pub model: ModelKind,
    /// Torus radii "R,r" in the model units [default: 20,5 in px, the
    /// bundled network's torus; 180,40 in nm, a CEP152-like torus].
    #[arg(long)]
    pub torus: Option<String>,
    /// Units of the model: px (image pixels) or nm (needs a pixel size)
    /// [default: px for frames; nm for the particles of a localisation
    /// table or of a whole field (fit --pick)].
    #[arg(long, value_enum)]
    pub units: Option<UnitsArg>,
    /// Pixel size in nm, to convert nm models to pixels.
    #[arg(long)]
    pub pixel_size: Option<f64>,
    /// Points sampled on parametric models.
    #[arg(long, default_value_t = 2000)]
    pub points: usize,
    /// Override the model's symmetry, e.g. c1, c8, d8, dinf+m.
    #[arg(long)]
    pub symmetry: Option<Symmetry>,
}

impl ModelArgs {
    /// The model description shared with the library (and the viewer), for
    /// frames that each hold one particle: px unless `--units` says nm.
    pub fn spec(&self) -> Result<ModelSpec> {
        self.spec_in(Units::Px)
    }

    /// The model for the particles of a localisation table or a whole
    /// field: nm unless `--units` says px, so the default is the viewer's
    /// and `pick`'s torus of R 180 nm, r 40 nm.
    pub fn particle_spec(&self) -> Result<ModelSpec> {
        self.spec_in(Units::Nm)
    }

    /// True when neither `--torus` nor `--units` was given.
    pub fn default_torus(&self) -> bool {
        self.torus.is_none() && self.units.is_none()
    }

    fn spec_in(&self, default_units: Units) -> Result<ModelSpec> {
        let units = match self.units {
            Some(UnitsArg::Px) => Units::Px,
            Some(UnitsArg::Nm) => Units::Nm,
            None => default_units,
        };
        let torus = match (&self.torus, units) {
            (Some(t), _) => parse_floats::<2>(t, "--torus")?,
            (None, Units::Px) => ModelSpec::default().torus,
            (None, Units::Nm) => DEFAULT_TORUS_NM,
        };
        Ok(ModelSpec {
            model: self.model.clone(),
            torus,
            units,
            pixel_size: self.pixel_size,
            points: self.points,
            symmetry: self.symmetry,
        })
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum UnitsArg {
    Px,
    Nm,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum DeviceArg {
    Auto,
    Cpu,
    Cuda,
    Metal,
}

impl From<DeviceArg> for DeviceChoice {
    fn from(d: DeviceArg) -> Self {
        match d {
            DeviceArg::Auto => DeviceChoice::Auto,
            DeviceArg::Cpu => DeviceChoice::Cpu,
            DeviceArg::Cuda => DeviceChoice::Cuda,
            DeviceArg::Metal => DeviceChoice::Metal,
        }
    }
}

#[derive(Args)]
pub struct LookArgs {
    /// Colour map: grey, inverted, magma, inferno, viridis, hot.
    #[arg(long, default_value = "grey", value_parser = parse_lut)]
    lut: Lut,
    /// Integer zoom of the exported images.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=16))]
    zoom: u32,
    /// Fixed contrast "MIN,MAX" (default: auto-contrast, 0.35 % saturated, per frame).
    #[arg(long)]
    contrast: Option<String>,
}

impl LookArgs {
    pub fn look(&self) -> Result<ExportLook> {
        let contrast = match &self.contrast {
            Some(c) => {
                let [min, max] = parse_floats::<2>(c, "--contrast")?;
                if min.partial_cmp(&max) != Some(std::cmp::Ordering::Less) {
                    bail!("--contrast {c}: need MIN < MAX");
                }
                Some(Contrast {
                    min: min as f32,
                    max: max as f32,
                })
            }
            None => None,
        };
        Ok(ExportLook {
            lut: self.lut,
            contrast,
            upscale: self.zoom,
        })
    }
}

fn parse_lut(s: &str) -> std::result::Result<Lut, String> {
    Lut::ALL
        .into_iter()
        .find(|l| l.name().eq_ignore_ascii_case(s))
        .ok_or_else(|| {
            let names: Vec<_> = Lut::ALL.iter().map(|l| l.name()).collect();
            format!("unknown LUT '{s}' (one of {})", names.join(", "))
        })
}

/// A progress bar of `len` units labelled `what`.
pub fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// `N` or `WxH` pixels, each within 1..16384.
pub fn parse_size(s: &str) -> Result<(usize, usize)> {
    let parse = |t: &str| {
        t.trim()
            .parse::<usize>()
            .with_context(|| format!("size '{s}': '{t}' is not a whole number"))
    };
    let (w, h) = match s.split_once(['x', 'X']) {
        Some((w, h)) => (parse(w)?, parse(h)?),
        None => {
            let n = parse(s)?;
            (n, n)
        }
    };
    if !(1..=16384).contains(&w) || !(1..=16384).contains(&h) {
        bail!("size {w}×{h} must be within 1..16384 pixels");
    }
    Ok((w, h))
}

/// `N` comma-separated finite numbers.
pub fn parse_floats<const N: usize>(s: &str, what: &str) -> Result<[f64; N]> {
    let v: Vec<f64> = s
        .split(',')
        .map(|t| t.trim().parse::<f64>())
        .collect::<std::result::Result<_, _>>()
        .with_context(|| format!("{what} '{s}': not a list of numbers"))?;
    let arr: [f64; N] = v
        .try_into()
        .map_err(|_| anyhow::anyhow!("{what} '{s}': expected {N} comma-separated numbers"))?;
    if arr.iter().any(|x| !x.is_finite()) {
        bail!("{what} '{s}': values must be finite");
    }
    Ok(arr)
}

/// Lets a closed pipe end the process quietly, as other command-line tools
/// do (`posescope info big.tif | head`): Rust ignores SIGPIPE, so printing
/// to a closed pipe would panic instead. Unix only; a no-op elsewhere.
pub fn default_sigpipe() {
    #[cfg(unix)]
    {
        use std::ffi::c_int;
        extern "C" {
            fn signal(signum: c_int, handler: usize) -> usize;
        }
        const SIGPIPE: c_int = 13;
        const SIG_DFL: usize = 0;
        // SAFETY: restores the default disposition of one signal before any
        // thread is started; no handler code of ours is involved.
        unsafe {
            signal(SIGPIPE, SIG_DFL);
        }
    }
}
