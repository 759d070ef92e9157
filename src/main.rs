//! `posescope`: the command-line front end. Each subcommand is a thin call
//! into the library; the viewer (`view`, the default) arrives with the GUI.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use posescope::geometry::{Pose, Quat, Symmetry};
use posescope::io::{self, Frame, WriteSample};
use posescope::render::{cpu::render_frame, SplatParams};
use posescope::shapes::{Model, TorusSpec, Units};
use posescope::synth::{self, Range, SynthConfig, SynthModel};

#[derive(Parser)]
#[command(
    name = "posescope",
    version,
    about = "3D orientation of symmetric particles (tori, rings) from single super-resolution frames",
    long_about = "PoseScope estimates the 3D orientation of particles of known shape from 2D \
                  super-resolution images, shows the symmetry-equivalent poses, and renders models.\n\n\
                  Conventions: x = column (right), y = row (down), z into the screen; a pose is a unit \
                  quaternion rotating model coordinates into the camera frame plus a shift in pixels \
                  from the image centre; Euler angles are intrinsic ZYZ (rot, tilt, psi) in degrees, \
                  as in RELION. Without a subcommand, `view` is run."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Open the viewer (the default). Not part of this build yet.
    View {
        /// Files to open.
        files: Vec<PathBuf>,
    },
    /// Describe image files: size, frames, sample type, pixel size and value range.
    Info(InfoArgs),
    /// Generate a synthetic stack with ground truth.
    Synth(SynthArgs),
    /// Render a model at a pose into a PNG or TIFF.
    Render(RenderArgs),
    /// Fit poses to frames (CNN + refinement). Not part of this build yet.
    Fit {
        /// Arguments for the coming implementation.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        rest: Vec<String>,
    },
    /// Train the orientation network. Not part of this build yet.
    Train {
        /// Arguments for the coming implementation.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        rest: Vec<String>,
    },
    /// Compare predicted poses with the truth. Not part of this build yet.
    Eval {
        /// Arguments for the coming implementation.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        rest: Vec<String>,
    },
    /// Write annotated PNGs for a stack and its poses. Not part of this build yet.
    Export {
        /// Arguments for the coming implementation.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        rest: Vec<String>,
    },
}

#[derive(Args)]
struct InfoArgs {
    /// Image files (TIFF, BigTIFF, FITS, PNG, JPEG).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Skip the value range (which reads every frame).
    #[arg(long)]
    no_range: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum SampleArg {
    /// Unsigned 16-bit camera counts.
    U16,
    /// 32-bit float.
    F32,
}

#[derive(Args)]
struct SynthArgs {
    /// Particle: torus, torus-gap (an arc missing), torus-marker (one off-ring marker),
    /// or a point-cloud file (.ply, .obj, .csv) in pixels.
    #[arg(long, default_value = "torus")]
    model: String,
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
    /// Pixel size to record in the stack, nm.
    #[arg(long)]
    pixel_size: Option<f64>,
}

#[derive(Args)]
struct ModelArgs {
    /// Model: torus, torus-gap, torus-marker, ring:N (an N-fold ring of blobs),
    /// or a point-cloud file (.ply, .obj, .csv).
    #[arg(long, default_value = "torus")]
    model: String,
    /// Torus radii "R,r" in the model units.
    #[arg(long, default_value = "20,5")]
    torus: String,
    /// Units of the model: px (image pixels) or nm (needs --pixel-size).
    #[arg(long, value_enum, default_value = "px")]
    units: UnitsArg,
    /// Pixel size in nm, to convert nm models to pixels.
    #[arg(long)]
    pixel_size: Option<f64>,
    /// Points sampled on parametric models.
    #[arg(long, default_value_t = 2000)]
    points: usize,
    /// Override the model's symmetry, e.g. c1, c8, d8, dinf+m.
    #[arg(long)]
    symmetry: Option<Symmetry>,
}

#[derive(Clone, Copy, ValueEnum)]
enum UnitsArg {
    Px,
    Nm,
}

#[derive(Args)]
struct RenderArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Euler angles "rot,tilt,psi" in degrees (intrinsic ZYZ).
    #[arg(long, conflicts_with = "quat", allow_hyphen_values = true)]
    euler: Option<String>,
    /// Quaternion "w,x,y,z" (model → camera).
    #[arg(long, allow_hyphen_values = true)]
    quat: Option<String>,
    /// Shift "x,y" in pixels from the image centre.
    #[arg(long, default_value = "0,0", allow_hyphen_values = true)]
    shift: String,
    /// PSF sigma in pixels.
    #[arg(long, default_value_t = 1.6)]
    sigma: f32,
    /// Model scale.
    #[arg(long, default_value_t = 1.0)]
    scale: f32,
    /// Image size: N or WxH pixels.
    #[arg(long, default_value = "128")]
    size: String,
    /// Output image: .png (16-bit, scaled to the maximum) or .tif/.tiff (float32, raw values).
    #[arg(long)]
    out: PathBuf,
    /// Also write the posed model as a PLY point cloud.
    #[arg(long)]
    ply: Option<PathBuf>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::View { files: vec![] }) {
        Command::View { .. } => Err(anyhow::anyhow!(
            "the viewer is not part of this build yet; the headless commands are: info, synth, render \
             (see `posescope --help`)"
        )),
        Command::Info(a) => info(a),
        Command::Synth(a) => synth_cmd(a),
        Command::Render(a) => render_cmd(a),
        Command::Fit { .. } => not_yet("fit"),
        Command::Train { .. } => not_yet("train"),
        Command::Eval { .. } => not_yet("eval"),
        Command::Export { .. } => not_yet("export"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn not_yet(name: &str) -> Result<()> {
    bail!("`posescope {name}` is reserved but not implemented in this build")
}

fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

fn parse_size(s: &str) -> Result<(usize, usize)> {
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

fn parse_floats<const N: usize>(s: &str, what: &str) -> Result<[f64; N]> {
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

fn info(a: InfoArgs) -> Result<()> {
    let mut reports = Vec::new();
    for path in &a.files {
        let mut stack = io::open(path)?;
        let n = stack.len();
        let range = if a.no_range {
            None
        } else {
            let bar = progress(n as u64, "reading");
            let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
            for i in 0..n {
                let (a, b) = stack.frame(i)?.min_max();
                if !a.is_nan() {
                    lo = lo.min(a);
                    hi = hi.max(b);
                }
                bar.inc(1);
            }
            bar.finish_and_clear();
            Some((lo, hi))
        };
        let info = stack.info();
        reports.push(serde_json::json!({
            "file": path.display().to_string(),
            "format": info.format,
            "width": info.width,
            "height": info.height,
            "frames": info.frames,
            "sample_type": info.sample_type.to_string(),
            "pixel_size_nm": info.pixel_size_nm,
            "min": range.map(|r| r.0),
            "max": range.map(|r| r.1),
            "warnings": info.warnings,
        }));
        if !a.json {
            println!("{}", path.display());
            println!("  format      {}", info.format);
            println!("  size        {} × {} px", info.width, info.height);
            println!("  frames      {}", info.frames);
            println!("  sample      {}", info.sample_type);
            match info.pixel_size_nm {
                Some(p) => println!("  pixel size  {p} nm"),
                None => println!("  pixel size  unknown"),
            }
            if let Some((lo, hi)) = range {
                if lo <= hi {
                    println!("  range       {lo} .. {hi}");
                } else {
                    println!("  range       all NaN");
                }
            }
            for w in &info.warnings {
                println!("  warning     {w}");
            }
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    Ok(())
}

fn synth_model(name: &str) -> Result<SynthModel> {
    Ok(match name {
        "torus" => SynthModel::Torus,
        "torus-gap" => SynthModel::TorusGap { arc_deg: 90.0 },
        "torus-marker" => SynthModel::TorusMarker,
        path => SynthModel::Points(
            Model::load(Path::new(path)).with_context(|| format!("model '{path}'"))?,
        ),
    })
}

fn synth_cmd(a: SynthArgs) -> Result<()> {
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
    let out = synth::write_dataset(&cfg, &a.out, sample, || bar.inc(1))?;
    bar.finish_and_clear();
    println!("wrote {} frames of {width}×{height}", cfg.frames);
    println!("  stack     {}", out.stack.display());
    println!("  truth     {}", out.truth.display());
    println!("  settings  {}", out.settings.display());
    Ok(())
}

/// Builds the model named on the command line, in image pixels.
fn build_model(a: &ModelArgs) -> Result<Model> {
    let units = match a.units {
        UnitsArg::Px => Units::Px,
        UnitsArg::Nm => Units::Nm,
    };
    let [major, tube] = parse_floats::<2>(&a.torus, "--torus")?;
    let spec = TorusSpec {
        major_radius: major,
        tube_radius: tube,
        units,
    };
    let mut model = match a.model.as_str() {
        "torus" => Model::torus(spec, a.points, 1)?,
        "torus-gap" => Model::torus_missing_arc(spec, a.points, 90.0, 1)?,
        "torus-marker" => Model::torus_with_marker(spec, a.points, [major + tube, 0.0, 0.0], 10.0, 1)?,
        m if m.starts_with("ring:") => {
            let n: u32 = m[5..].parse().with_context(|| format!("model '{m}': expected ring:N"))?;
            Model::ring_of_blobs(major, n, (a.points / n.max(1) as usize).max(1), tube.max(0.0), units, 1)?
        }
        path => {
            let mut m = Model::load(Path::new(path)).with_context(|| format!("model '{path}'"))?;
            if matches!(a.units, UnitsArg::Nm) {
                m.units = Units::Nm;
            }
            m
        }
    };
    if let Some(s) = a.symmetry {
        model = model.with_symmetry(s);
    }
    if model.units == Units::Nm {
        let px = a
            .pixel_size
            .context("the model is in nm: give --pixel-size NM to convert it to pixels")?;
        model = model.to_pixels(px)?;
    }
    Ok(model)
}

fn render_cmd(a: RenderArgs) -> Result<()> {
    let model = build_model(&a.model)?;
    let q = match (&a.euler, &a.quat) {
        (Some(e), _) => {
            let [rot, tilt, psi] = parse_floats::<3>(e, "--euler")?;
            Quat::from_euler_zyz_deg(rot, tilt, psi)
        }
        (None, Some(q)) => {
            let [w, x, y, z] = parse_floats::<4>(q, "--quat")?;
            Quat::try_new(w, x, y, z).context("--quat: not a rotation (zero length)")?
        }
        (None, None) => Quat::IDENTITY,
    };
    let shift = parse_floats::<2>(&a.shift, "--shift")?;
    let (width, height) = parse_size(&a.size)?;
    let params = SplatParams {
        width,
        height,
        sigma: a.sigma,
        scale: a.scale,
    };
    let pose = Pose::new(q, shift);
    let img = render_frame(&model.points, &model.weights, &q.to_matrix(), shift, &params)?;
    let frame = Frame {
        width,
        height,
        data: img,
    };
    let ext = a
        .out
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => {
            let (_, hi) = frame.min_max();
            io::write_png_gray16(&a.out, &frame, 0.0, if hi > 0.0 { hi } else { 1.0 })?
        }
        "tif" | "tiff" => io::write_tiff_stack(&a.out, &[frame], WriteSample::F32, None)?,
        _ => bail!("{}: output must end in .png, .tif or .tiff", a.out.display()),
    }
    let (rot, tilt, psi) = q.to_euler_zyz_deg();
    let axis = q.axis();
    println!(
        "rendered {} ({} points, {}) at rot {rot:.2}° tilt {tilt:.2}° psi {psi:.2}°, axis ({:.4}, {:.4}, {:.4}) → {}",
        model.name,
        model.len(),
        model.symmetry,
        axis[0],
        axis[1],
        axis[2],
        a.out.display()
    );
    if let Some(ply) = &a.ply {
        model.posed(&pose, a.scale as f64).save_ply(ply)?;
        println!("posed model → {}", ply.display());
    }
    Ok(())
}
