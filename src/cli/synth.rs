//! `posescope synth`: a synthetic stack with ground truth (stack.tif,
//! truth.csv, synth.json).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use super::args::{parse_size, progress};
use posescope::io::WriteSample;
use posescope::shapes::{Model, ModelKind};
use posescope::synth::{self, Range, SynthConfig, SynthModel};

#[derive(Clone, Copy, ValueEnum)]
pub enum SampleArg {
    /// Unsigned 16-bit camera counts.
    U16,
    /// 32-bit float.
    F32,
}

#[derive(Args)]
pub struct SynthArgs {
    /// Particle: torus, torus-gap (an arc missing), torus-marker (one off-ring marker),
    /// or a point-cloud file (.ply, .obj, .csv) in pixels.
    #[arg(long, default_value = "torus")]
    model: ModelKind,
    /// Number of frames.
    #[arg(long, default_value_t = 100)]
    n: usize,
    /// Frame size: N or WxH pixels.
    #[arg(long, default_value = "128")]
    size: String,
    /// Random seed (the data set is reproducible from it).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output directory (stack.tif, truth.csv, synth.json).
    #[arg(long)]
    out: PathBuf,
    /// Also write every frame's true emitters (emitters.csv: frame, x_px,
    /// y_px, z_px in the model frame), e.g. to fit each frame with its own
    /// exact cloud.
    #[arg(long)]
    emitters: bool,
    /// Sample type of the stack.
    #[arg(long, value_enum, default_value = "u16")]
    sample: SampleArg,
    /// Torus major radius R in pixels: a value or a range lo..hi.
    #[arg(long, default_value = "10..30")]
    radius: Range,
    /// Tube radius as a fraction of R (r/R).
    #[arg(long, default_value = "0.15..0.5")]
    ratio: Range,
    /// PSF sigma in pixels.
    #[arg(long, default_value = "1..3")]
    sigma: Range,
    /// Maximum shift from the centre in x and y, pixels.
    #[arg(long, default_value_t = 6.0)]
    shift: f64,
    /// Expected photons per blink (per fluorophore).
    #[arg(long, default_value = "100..1000")]
    photons: Range,
    /// Background photons per pixel.
    #[arg(long, default_value = "5..20")]
    background: Range,
    /// Labelled sites per particle.
    #[arg(long, default_value_t = 200)]
    sites: usize,
    /// Fraction of sites lost (labelling efficiency).
    #[arg(long, default_value = "0..0.2")]
    dropout: Range,
    /// Mean blinks per site (at least 1).
    #[arg(long, default_value_t = 3.0)]
    blinks: f64,
    /// Blink displacement from its site (standard deviation), pixels.
    #[arg(long, default_value_t = 0.5)]
    jitter: f64,
    /// Camera gain, ADU per photon.
    #[arg(long, default_value_t = 1.0)]
    gain: f64,
    /// Camera offset, ADU.
    #[arg(long, default_value_t = 100.0)]
    offset: f64,
    /// Camera read noise, ADU (standard deviation).
    #[arg(long, default_value_t = 2.0)]
    read_noise: f64,
    /// Pixel size to record in the stack, nm (with --locs: the camera pixel, default 130).
    #[arg(long)]
    pixel_size: Option<f64>,
    /// Write a whole SMLM field instead of frames: a localisation table of
    /// --particles CEP152-like tori (Picasso HDF5 + YAML, ThunderSTORM CSV,
    /// truth.csv). --size is then the camera field in pixels.
    #[arg(long)]
    locs: bool,
    /// Particles in the field (--locs).
    #[arg(long, default_value_t = 24)]
    particles: usize,
    /// Torus major and tube radius "R,r" in nm (--locs).
    #[arg(long, default_value = "180,40")]
    torus_nm: String,
    /// Probability that a site is labelled (--locs).
    #[arg(long, default_value_t = 0.5)]
    labelling: f64,
    /// The localisations' axial error as a multiple of their lateral
    /// precision (--locs; the ThunderSTORM CSV's z column).
    #[arg(long, default_value_t = 2.0)]
    z_error_factor: f64,
}

/// The particle of a synthetic set.
fn synth_model(kind: &ModelKind) -> Result<SynthModel> {
    Ok(match kind {
        ModelKind::Torus => SynthModel::Torus,
        ModelKind::TorusGap => SynthModel::TorusGap { arc_deg: 90.0 },
        ModelKind::TorusMarker => SynthModel::TorusMarker,
        ModelKind::Ring(_) => anyhow::bail!(
            "synth --model {kind}: rings are not generated yet (torus, torus-gap, torus-marker or a point-cloud file)"
        ),
        ModelKind::File(path) => SynthModel::Points(
            Model::load(path).with_context(|| format!("model '{}'", path.display()))?,
        ),
    })
}

/// `synth --locs`: a synthetic SMLM field.
fn run_field(a: &SynthArgs) -> Result<()> {
    use posescope::synth::locs::{generate_field, write_field, FieldConfig};
    let (width, height) = parse_size(&a.size)?;
    let [major_nm, tube_nm] = super::args::parse_floats::<2>(&a.torus_nm, "--torus-nm")?;
    let cfg = FieldConfig {
        particles: a.particles,
        major_nm,
        tube_nm,
        labelling: a.labelling,
        z_error_factor: a.z_error_factor,
        blinks: a.blinks,
        pixel_nm: a.pixel_size.unwrap_or(130.0),
        field_px: [
            u32::try_from(width).context("--size")?,
            u32::try_from(height).context("--size")?,
        ],
        seed: a.seed,
        ..FieldConfig::default()
    };
    let field = generate_field(&cfg)?;
    let out = write_field(&cfg, &field, &a.out)?;
    println!(
        "wrote a {width}×{height} px field ({} nm/px) of {} particles, {} localisations",
        cfg.pixel_nm,
        field.truth.len(),
        field.locs.len()
    );
    println!("  picasso       {} (+ .yaml)", out.picasso.display());
    println!("  thunderstorm  {}", out.thunderstorm.display());
    println!("  truth         {}", out.truth.display());
    println!("  settings      {}", out.settings.display());
    Ok(())
}

pub fn run(a: SynthArgs) -> Result<()> {
    if a.locs {
        return run_field(&a);
    }
    let (width, height) = parse_size(&a.size)?;
    let cfg = SynthConfig {
        model: synth_model(&a.model)?,
        frames: a.n,
        width,
        height,
        seed: a.seed,
        major_radius_px: a.radius,
        ratio: a.ratio,
        sigma_px: a.sigma,
        shift_px: a.shift,
        sites: a.sites,
        dropout: a.dropout,
        blinks: a.blinks,
        jitter_px: a.jitter,
        photons: a.photons,
        background: a.background,
        gain: a.gain,
        offset: a.offset,
        read_noise: a.read_noise,
        pixel_size_nm: a.pixel_size,
    };
    cfg.validate()?;
    let sample = match a.sample {
        SampleArg::U16 => WriteSample::U16,
        SampleArg::F32 => WriteSample::F32,
    };
    let bar = progress(cfg.frames as u64, "synth");
    let out = synth::write_dataset(&cfg, &a.out, sample, a.emitters, || bar.inc(1))?;
    bar.finish_and_clear();
    println!("wrote {} frames of {width}×{height}", cfg.frames);
    println!("  stack     {}", out.stack.display());
    println!("  truth     {}", out.truth.display());
    println!("  settings  {}", out.settings.display());
    if let Some(e) = &out.emitters {
        println!("  emitters  {}", e.display());
    }
    Ok(())
}
