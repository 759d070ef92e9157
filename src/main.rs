//! `posescope`: the command-line front end. Each subcommand is a thin call
//! into the library; `view` (the default) opens the egui viewer.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use posescope::estimate::eval::evaluate;
use posescope::estimate::fit::FitOptions;
use posescope::estimate::pipeline::{
    device_name, outcome_row, state_from_row, DeviceChoice, Fitter, ModelSpec,
};
use posescope::estimate::refine::{FitModel, FitState};
use posescope::estimate::train::{train, TrainConfig};
use posescope::export::frames::{ExportLook, FrameExport};
use posescope::export::{read_pose_csv, write_pose_csv, PoseRow};
use posescope::geometry::{Pose, Quat, Symmetry};
use posescope::io::{self, Frame, WriteSample};
use posescope::render::display::{Contrast, Lut};
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
    /// Open the viewer (the default): the bundled sample stack when no files are given.
    View {
        /// Files to open.
        files: Vec<PathBuf>,
        /// Animate the pose for SECONDS, print the frame rate and exit (for docs/PERFORMANCE.md).
        #[arg(long, value_name = "SECONDS", hide = true)]
        measure_fps: Option<f64>,
        /// With --measure-fps: run Estimate all on the stack meanwhile.
        #[arg(long, hide = true)]
        measure_with_batch: bool,
    },
    /// Describe image files: size, frames, sample type, pixel size and value range.
    Info(InfoArgs),
    /// Generate a synthetic stack with ground truth.
    Synth(SynthArgs),
    /// Render a model at a pose into a PNG or TIFF.
    Render(RenderArgs),
    /// Fit poses to every frame of image files (start + render-and-compare refinement).
    Fit(FitArgs),
    /// Train the orientation network on synthetic frames generated on the fly.
    Train(TrainArgs),
    /// Compare predicted poses with the truth (symmetry-aware errors).
    Eval(EvalArgs),
    /// Measure this machine: CNN forward and training throughput, renderer and refinement times.
    Bench(BenchArgs),
    /// Write an annotated PNG (raw, model, overlay, pose text, scale bar) per
    /// frame of a stack at the poses of a pose CSV.
    Export(ExportArgs),
}

#[derive(Args)]
struct ExportArgs {
    /// Image file whose frames are exported.
    file: PathBuf,
    /// Pose CSV, as written by `posescope fit` or the viewer.
    #[arg(long)]
    poses: PathBuf,
    /// Output folder (created when missing); files are named STEM_fNNNN.png.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    look: LookArgs,
}

#[derive(Args)]
struct LookArgs {
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
    fn look(&self) -> Result<ExportLook> {
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

#[derive(Args)]
struct FitArgs {
    /// Image files (every frame of each is fitted).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    /// Output pose CSV.
    #[arg(long)]
    csv: PathBuf,
    /// Starting PSF sigma in pixels (it is refined).
    #[arg(long, default_value_t = 1.6)]
    sigma: f64,
    /// Rotations scored by the coarse search.
    #[arg(long, default_value_t = 300)]
    search: usize,
    /// Frames read and fitted per batch.
    #[arg(long, default_value_t = 64, hide = true)]
    chunk: usize,
    /// Network weights (.safetensors with its .json sidecar). Default for the
    /// torus: the bundled assets/torus.safetensors. Without a network, a
    /// coarse search supplies the starting poses.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Do not use a network even if one is available (coarse search instead).
    #[arg(long)]
    no_net: bool,
    /// Report the starting poses without refinement (e.g. to measure the network alone).
    #[arg(long)]
    no_refine: bool,
    /// Stop refining when an iteration lowers the cost by less than this fraction.
    #[arg(long, default_value_t = 1e-3)]
    refine_tol: f64,
    /// Most refinement iterations per start.
    #[arg(long, default_value_t = 20)]
    refine_iters: usize,
    /// Where the network runs: auto uses a GPU when one is compiled in and present.
    #[arg(long, value_enum, default_value = "auto")]
    device: DeviceArg,
    /// Also write an annotated PNG per fitted frame into this folder.
    #[arg(long)]
    png_dir: Option<PathBuf>,
    #[command(flatten)]
    look: LookArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum LossArg {
    Supervised,
    Render,
}

#[derive(Clone, Copy, ValueEnum)]
enum DeviceArg {
    Auto,
    Cpu,
    Cuda,
    Metal,
}

#[derive(Args)]
struct TrainArgs {
    /// Model to train for (only the torus has a network so far).
    #[arg(long, default_value = "torus")]
    model: String,
    /// Output weights (.safetensors); the sidecar goes next to it as .json.
    #[arg(long)]
    out: PathBuf,
    /// Epochs of --epoch-size frames.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Frames per epoch (data is generated on the fly, never repeated).
    #[arg(long, default_value_t = 8192)]
    epoch_size: usize,
    /// Frames per step.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Peak learning rate (AdamW with cosine decay).
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Seed of the weights and the data.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Continue from the weights and sidecar at --out.
    #[arg(long)]
    resume: bool,
    /// Loss: supervised (symmetry-aware, on the axis) or render (self-supervised render-and-compare).
    #[arg(long, value_enum, default_value = "supervised")]
    loss: LossArg,
    /// Validation frames.
    #[arg(long, default_value_t = 256)]
    val_frames: usize,
    /// Steps between validations and checkpoints.
    #[arg(long, default_value_t = 200)]
    val_every: usize,
}

#[derive(Args)]
struct BenchArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Timed iterations per CNN measurement.
    #[arg(long, default_value_t = 10)]
    iters: usize,
}

#[derive(Args)]
struct EvalArgs {
    /// Truth pose CSV (e.g. from `posescope synth`).
    #[arg(long)]
    truth: PathBuf,
    /// Predicted pose CSV (e.g. from `posescope fit`).
    #[arg(long)]
    pred: PathBuf,
    /// Symmetry of the model: torus (D∞ + mirror), c8, d8+m, c1, …
    #[arg(long, default_value = "torus")]
    symmetry: Symmetry,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
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
    if matches!(
        cli.command,
        Some(Command::Train(_) | Command::Bench(_) | Command::Fit(_))
    ) {
        // keep large tensor buffers mapped between steps (glibc only; see net_bench)
        posescope::estimate::net::tune_malloc();
    }
    let command = cli.command.unwrap_or(Command::View {
        files: vec![],
        measure_fps: None,
        measure_with_batch: false,
    });
    let result = match command {
        Command::View {
            files,
            measure_fps,
            measure_with_batch,
        } => posescope::app::run(files, measure_fps, measure_with_batch),
        Command::Info(a) => info(a),
        Command::Synth(a) => synth_cmd(a),
        Command::Render(a) => render_cmd(a),
        Command::Fit(a) => fit_cmd(a),
        Command::Train(a) => train_cmd(a),
        Command::Eval(a) => eval_cmd(a),
        Command::Bench(a) => bench_cmd(a),
        Command::Export(a) => export_cmd(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
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

impl ModelArgs {
    /// The model description shared with the library (and the viewer).
    fn spec(&self) -> Result<ModelSpec> {
        Ok(ModelSpec {
            model: self.model.clone(),
            torus: parse_floats::<2>(&self.torus, "--torus")?,
            units: match self.units {
                UnitsArg::Px => Units::Px,
                UnitsArg::Nm => Units::Nm,
            },
            pixel_size: self.pixel_size,
            points: self.points,
            symmetry: self.symmetry,
        })
    }
}

/// Builds the model named on the command line, in image pixels.
fn build_model(a: &ModelArgs) -> Result<Model> {
    let spec = a.spec()?;
    spec.build_model()
        .with_context(|| format!("model '{}'", spec.model))
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
    let img = render_frame(
        &model.points,
        &model.weights,
        &q.to_matrix(),
        shift,
        &params,
    )?;
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
        _ => bail!(
            "{}: output must end in .png, .tif or .tiff",
            a.out.display()
        ),
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

fn fit_cmd(a: FitArgs) -> Result<()> {
    let spec = a.model.spec()?;
    let mut opts = FitOptions {
        sigma: a.sigma,
        search_count: a.search.max(1),
        ..FitOptions::default()
    };
    opts.refine.tolerance = a.refine_tol;
    opts.refine.max_iters = if a.no_refine { 0 } else { a.refine_iters };
    let fitter = Fitter::new(
        &spec,
        opts,
        a.weights.as_deref(),
        !a.no_net,
        a.device.into(),
    )
    .context("setting up the fit")?;
    match &fitter.estimator {
        Some(est) => eprintln!("network: {}", device_name(est.device())),
        None => eprintln!("no network: starting from a coarse search (slower)"),
    }
    // open everything first, so the bar knows the total and bad files are reported up front
    let mut stacks = Vec::new();
    let mut rows: Vec<PoseRow> = Vec::new();
    for path in &a.files {
        match io::open(path) {
            Ok(s) => stacks.push((path.clone(), s)),
            Err(e) => {
                eprintln!("warning: {e}");
                let mut row = PoseRow::failed(0, e.to_string());
                row.file = Some(path.display().to_string());
                rows.push(row);
            }
        }
    }
    let total: usize = stacks.iter().map(|(_, s)| s.len()).sum();
    let bar = progress(total as u64, "fit");
    let t0 = std::time::Instant::now();
    let (mut fitted, mut failed) = (0usize, 0usize);
    let model_name = spec.describe();
    let look = a.look.look()?;
    if let Some(dir) = &a.png_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating --png-dir {}", dir.display()))?;
    }
    for (path, mut stack) in stacks {
        let name = path.display().to_string();
        let pixel_size = a.model.pixel_size.or(stack.info().pixel_size_nm);
        let n = stack.len();
        let mut i = 0;
        while i < n {
            let end = (i + a.chunk.max(1)).min(n);
            let frames: Vec<(usize, std::result::Result<Frame, String>)> = (i..end)
                .map(|k| (k, stack.frame(k).map_err(|e| e.to_string())))
                .collect();
            let ok: Vec<(&[f32], usize, usize)> = frames
                .iter()
                .filter_map(|(_, f)| {
                    f.as_ref()
                        .ok()
                        .map(|f| (f.data.as_slice(), f.width, f.height))
                })
                .collect();
            // the network runs once per chunk, as a batch; frames are refined in parallel
            let mut fits = fitter.fit_batch(&ok)?.into_iter();
            for (k, f) in &frames {
                let mut row = match f {
                    Ok(frame) => match fits.next() {
                        Some(Ok(fit)) => {
                            if let Some(dir) = &a.png_dir {
                                if let Err(e) = export_frame_png(
                                    dir,
                                    &path,
                                    frame,
                                    *k,
                                    n,
                                    &fit.outcome.state,
                                    Some(fit.outcome.score),
                                    &fitter.model,
                                    &model_name,
                                    pixel_size,
                                    &look,
                                ) {
                                    bar.suspend(|| eprintln!("warning: {e:#}"));
                                }
                            }
                            outcome_row(*k, &fit)
                        }
                        Some(Err(e)) => PoseRow::failed(*k, e),
                        None => PoseRow::failed(*k, "internal: missing result"),
                    },
                    Err(e) => PoseRow::failed(*k, e),
                };
                if row.get("error").is_some_and(|e| !e.is_empty()) {
                    failed += 1;
                } else {
                    fitted += 1;
                }
                row.file = Some(name.clone());
                rows.push(row);
                bar.inc(1);
            }
            i = end;
        }
    }
    bar.finish_and_clear();
    let secs = t0.elapsed().as_secs_f64();
    write_pose_csv(&a.csv, &rows)?;
    println!(
        "fitted {fitted} frames ({failed} failed) in {secs:.2} s ({:.2} ms/frame on {} threads) → {}",
        1e3 * secs / (fitted + failed).max(1) as f64,
        rayon::current_num_threads(),
        a.csv.display()
    );
    Ok(())
}

/// Writes the annotated PNG of one fitted frame into `dir`.
#[allow(clippy::too_many_arguments)]
fn export_frame_png(
    dir: &Path,
    file: &Path,
    frame: &Frame,
    index: usize,
    frames: usize,
    state: &FitState,
    score: Option<f64>,
    model: &FitModel,
    model_name: &str,
    pixel_size_nm: Option<f64>,
    look: &ExportLook,
) -> Result<PathBuf> {
    let job = FrameExport {
        frame,
        file,
        index,
        frames,
        state: *state,
        score,
        model,
        model_name,
        pixel_size_nm,
    };
    job.write_into(dir, look)
        .with_context(|| format!("exporting frame {index} of {}", file.display()))
}

fn export_cmd(a: ExportArgs) -> Result<()> {
    let spec = a.model.spec()?;
    let look = a.look.look()?;
    let model = spec.fit_model(1.6).context("model")?;
    let rows = read_pose_csv(&a.poses)?;
    let mut stack = io::open(&a.file)?;
    let n = stack.len();
    let pixel_size = a.model.pixel_size.or(stack.info().pixel_size_nm);
    let wanted = a.file.display().to_string();
    let file_name = a.file.file_name().map(|f| f.to_os_string());
    // rows of this file: all rows when the CSV has no file column
    let mine: Vec<&PoseRow> = rows
        .iter()
        .filter(|r| match &r.file {
            None => true,
            Some(f) => {
                *f == wanted || Path::new(f).file_name().map(|x| x.to_os_string()) == file_name
            }
        })
        .collect();
    if mine.is_empty() {
        bail!(
            "{}: no rows for {} (the file column names other files)",
            a.poses.display(),
            a.file.display()
        );
    }
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("creating output folder {}", a.out.display()))?;
    let tube = spec.tube_px();
    let bar = progress(mine.len() as u64, "export");
    let (mut written, mut skipped) = (0usize, 0usize);
    for row in mine {
        bar.inc(1);
        let Some(state) = state_from_row(row, tube) else {
            skipped += 1;
            continue;
        };
        if row.frame >= n {
            bar.suspend(|| {
                eprintln!(
                    "warning: row for frame {} but the file has {n} frames",
                    row.frame
                )
            });
            skipped += 1;
            continue;
        }
        let frame = stack.frame(row.frame)?;
        let score = row.score.is_finite().then_some(row.score);
        export_frame_png(
            &a.out,
            &a.file,
            &frame,
            row.frame,
            n,
            &state,
            score,
            &model,
            &spec.describe(),
            pixel_size,
            &look,
        )?;
        written += 1;
    }
    bar.finish_and_clear();
    println!(
        "wrote {written} annotated PNGs ({skipped} rows skipped: failed fits or missing frames) → {}",
        a.out.display()
    );
    Ok(())
}

fn eval_cmd(a: EvalArgs) -> Result<()> {
    let truth = read_pose_csv(&a.truth)?;
    let pred = read_pose_csv(&a.pred)?;
    let r = evaluate(&truth, &pred, &a.symmetry);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!("symmetry      {}", r.symmetry);
    println!(
        "frames        {} truth, {} matched, {} missing, {} failed",
        r.truth_rows, r.matched, r.missing, r.failed
    );
    if let Some(s) = r.axis_error {
        println!(
            "axis error    median {:.3}°  p90 {:.3}°  mean {:.3}°  max {:.3}°",
            s.median, s.p90, s.mean, s.max
        );
    }
    if let Some(s) = r.rotation_error {
        println!(
            "rotation err  median {:.3}°  p90 {:.3}°  mean {:.3}°  max {:.3}°",
            s.median, s.p90, s.mean, s.max
        );
    }
    if r.matched == 0 {
        bail!("no prediction matches a truth row (compare the frame and file columns)");
    }
    Ok(())
}

fn train_cmd(a: TrainArgs) -> Result<()> {
    if a.model != "torus" {
        bail!(
            "only the torus has a trainable network so far (got --model {})",
            a.model
        );
    }
    if let Some(t) = a.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t.max(1))
            .build_global()
            .context("setting the thread count")?;
    }
    let steps = (a.epochs * a.epoch_size).div_ceil(a.batch.max(1));
    let cfg = TrainConfig {
        steps,
        batch: a.batch,
        lr: a.lr,
        seed: a.seed,
        val_frames: a.val_frames,
        val_every: a.val_every,
        loss: match a.loss {
            LossArg::Supervised => posescope::estimate::train::LossKind::Supervised,
            LossArg::Render => posescope::estimate::train::LossKind::Render,
        },
        command: std::env::args().collect::<Vec<_>>().join(" "),
        ..TrainConfig::default()
    };
    let bar = progress(steps as u64, "train");
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} steps ({per_sec}, eta {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let meta = train(&cfg, &a.out, a.resume, &|p| {
        bar.set_position(p.step as u64);
        let val = p
            .val_median_deg
            .map_or("-".to_string(), |v| format!("{v:.2}°"));
        bar.set_message(format!("loss {:.4} val median {val}", p.loss));
    })?;
    bar.finish_and_clear();
    let v = meta.validation.axis_error_deg;
    println!(
        "trained {} steps in {:.0} s → {} (validation axis error: median {} p90 {})",
        meta.steps_done,
        meta.wall_s,
        a.out.display(),
        v.map_or("-".into(), |s| format!("{:.2}°", s.median)),
        v.map_or("-".into(), |s| format!("{:.2}°", s.p90)),
    );
    Ok(())
}

/// Median wall time of `f` over `n` runs, in milliseconds.
fn median_ms(n: usize, mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..n.max(1))
        .map(|_| {
            let t0 = std::time::Instant::now();
            f();
            t0.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn bench_cmd(a: BenchArgs) -> Result<()> {
    use posescope::estimate::net::NetConfig;
    use posescope::estimate::net_bench::bench_cnn;
    use posescope::estimate::refine::{refine, FitState, RefineConfig};
    use posescope::estimate::train::OUTPUTS;
    let cfg = NetConfig {
        outputs: OUTPUTS,
        ..NetConfig::default()
    };
    let mut cnn = Vec::new();
    for batch in [1usize, 32] {
        let iters = if batch == 1 { a.iters * 8 } else { a.iters };
        cnn.push(bench_cnn(&cfg, batch, iters)?);
    }
    // renderer: 500 points into 128×128, the fast path
    let torus = Model::torus(
        TorusSpec {
            major_radius: 20.0,
            tube_radius: 5.0,
            units: Units::Px,
        },
        500,
        1,
    )?;
    let params = SplatParams::new(128, 128, 1.6);
    let rot = Quat::from_euler_zyz_deg(30.0, 50.0, 0.0).to_matrix();
    let mut scratch = posescope::render::kernel::Scratch::default();
    let mut out = vec![0.0f32; 128 * 128];
    let render_ms = median_ms(200, || {
        posescope::render::cpu::render_frame_into(
            &torus.points,
            &torus.weights,
            &rot,
            [0.0; 2],
            &params,
            &mut scratch,
            &mut out,
        )
        .expect("valid render");
    });
    // refinement of a noisy thin-torus frame from a start 5° away
    let data = SynthConfig::thin_torus(1, 1);
    let frame = synth::generate_frame(&data, 0)?;
    let model = FitModel::torus(20.0, 5.0, 1.6);
    let t = &frame.truth;
    let start = FitState {
        pose: Pose::new(
            Quat::from_axis_angle([0.6, 0.8, 0.0], 5f64.to_radians()) * t.pose.q,
            t.pose.shift,
        ),
        scale: 1.05,
        sigma: 1.8,
        shape: 5.5,
    };
    let refine_ms = median_ms(20, || {
        refine(
            &frame.image.data,
            128,
            128,
            &model,
            &start,
            &RefineConfig::default(),
        )
        .expect("valid frame");
    });
    let report = serde_json::json!({
        "machine": {
            "threads": rayon::current_num_threads(),
            "arch": std::env::consts::ARCH,
        },
        "cnn": cnn,
        "render_500_points_128px_ms": render_ms,
        "refine_thin_torus_ms": refine_ms,
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("PoseScope bench ({} threads)", rayon::current_num_threads());
    for r in &cnn {
        println!(
            "  CNN {}×{} batch {:>2}: forward {:>8.1} img/s, training step {:>8.1} img/s",
            cfg.input_size, cfg.input_size, r.batch, r.forward_img_per_s, r.train_step_img_per_s
        );
    }
    println!("  render 500 points → 128×128: {render_ms:.3} ms");
    println!("  refine one thin-torus frame (one thread): {refine_ms:.2} ms");
    Ok(())
}
