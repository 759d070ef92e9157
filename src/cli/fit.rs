//! `posescope fit`: fits every frame of image files through the library's
//! batch fit (the one behind the viewer's Estimate all) and writes the pose
//! CSV, and with --png-dir an annotated PNG per fitted frame.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use posescope::estimate::image_particles::is_whole_field;
use posescope::estimate::particles::RefineOn;

use super::args::{progress, DeviceArg, LookArgs, ModelArgs};
use posescope::estimate::pose::batch::{fit_frames, BatchOptions};
use posescope::estimate::pose::fit::FitOptions;
use posescope::estimate::pose::pipeline::{device_name, Fitter, ModelSpec};
use posescope::estimate::pose::results::FitResults;
use posescope::export::frames::{ExportTarget, FrameAt};
use posescope::io::{self, write_pose_csv, PoseRow};

#[derive(Args)]
pub struct FitArgs {
    /// Image files, or folders (every image inside, in natural order); every
    /// frame of each is fitted. Or one localisation table (Picasso .hdf5,
    /// ThunderSTORM/plain .csv): every particle is fitted, as a torus of
    /// R 180 nm, r 40 nm unless --torus R,r (in nm) says otherwise.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The particles to fit, as a picks CSV (as `posescope pick` writes).
    /// With a table: x_nm, y_nm; default: the table's groups when it has a
    /// group column (Picasso's picked files), else picked automatically. With one
    /// image (a whole-field render or a camera frame): x_px, y_px (or x_nm,
    /// y_nm and the pixel size); then every particle is fitted instead of
    /// every frame.
    #[arg(long)]
    picks: Option<PathBuf>,
    /// With a table that has a group column (Picasso's picked files, a
    /// clustering tool's output): pick automatically instead of fitting each
    /// group as one particle.
    #[arg(long, conflicts_with = "picks")]
    ignore_groups: bool,
    /// With one image: pick the particles automatically (a scale-matched
    /// detector) and fit each, instead of fitting every frame as one particle.
    /// The particle is then a torus of R 180 nm, r 40 nm (which needs the
    /// image's pixel size), unless --torus R,r [--units px] says otherwise.
    #[arg(long, conflicts_with = "picks")]
    pick: bool,
    /// With --pick/--picks on a stack: the frame that holds the field.
    #[arg(long, default_value_t = 0)]
    field_frame: usize,
    /// With a table: what the final pose is fitted to — the localisations'
    /// likelihood, started from the image fit (default, more accurate), or
    /// the rendered particle image alone.
    #[arg(long, value_enum, default_value = "locs")]
    refine_on: RefineOnArg,
    /// With a 3D table (a z column): fit in 2D, ignoring z. By default the
    /// localisation fit uses z, which tells each axis from its mirror in z
    /// (which way the particle tilts), as no 2D view can.
    #[arg(long)]
    ignore_z: bool,
    /// With a 3D table: the axial precision as a multiple of each
    /// localisation's lateral precision (tables state none; astigmatic 3D
    /// gives about 2–3×).
    #[arg(long, default_value_t = 2.5, value_parser = positive_factor)]
    z_precision_factor: f64,
    /// With a 3D table: multiply its z by this first, to correct for a
    /// refractive-index mismatch that the localisation software did not
    /// (about 0.7–0.9 for an oil objective imaging in water). A z off by
    /// such a factor still tells each axis from its mirror, but biases the
    /// tilt (docs/ACCURACY.md).
    #[arg(long, default_value_t = 1.0, value_parser = positive_factor)]
    z_scale: f64,
    /// With a 3D table: negate its z first, for software whose z grows
    /// toward the viewer. PoseScope's z points into the image (x right,
    /// y down, z = x × y); a flipped z mirrors every tilt direction, and the
    /// data cannot tell. The z_nm column is then negated too.
    #[arg(long)]
    flip_z: bool,
    /// With a table: also fit the torus's own size (R, r) to the particles:
    /// the profile likelihood of R, every pose fitted again at each trial R,
    /// from --torus (which must be within 1.6× of it). Prints the size with
    /// standard errors and the spread of each particle's own R; the CSV gets
    /// the poses fitted with it and each particle's own R (major_nm).
    #[arg(long)]
    fit_size: bool,
    /// With a table from `synth --locs` (or an image of it rendered with its
    /// origin at 0 nm): its truth.csv; prints the symmetry-aware axis error
    /// of the fitted particles.
    #[arg(long)]
    truth: Option<PathBuf>,
    /// With a table: write an overview PNG of the whole field with every
    /// particle's fitted model outlined in place and numbered.
    #[arg(long)]
    overview: Option<PathBuf>,
    /// Pixel size of the overview, nm.
    #[arg(long, default_value_t = 10.0)]
    overview_pixel_nm: f64,
    /// Fit only shard K of N: every N-th frame starting at frame K, counting
    /// frames over all inputs in order (for cluster job arrays; join the
    /// shards' CSVs with `posescope merge`).
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    shard: Option<Shard>,
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
    /// The final refinement weighs each pixel by its expected variance
    /// (signal + this fraction of the peak): a sparsely labelled particle's
    /// bright lumps then pull the pose less. 0: uniform weights only.
    #[arg(long, default_value_t = 0.01)]
    weight_floor: f64,
    /// Where the network runs: auto uses a GPU when one is compiled in and present.
    #[arg(long, value_enum, default_value = "auto")]
    device: DeviceArg,
    /// Also write an annotated PNG per fitted frame into this folder.
    #[arg(long)]
    png_dir: Option<PathBuf>,
    #[command(flatten)]
    look: LookArgs,
}

/// `--refine-on`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum RefineOnArg {
    Locs,
    Image,
}

impl From<RefineOnArg> for RefineOn {
    fn from(a: RefineOnArg) -> Self {
        match a {
            RefineOnArg::Locs => RefineOn::Locs,
            RefineOnArg::Image => RefineOn::Image,
        }
    }
}

pub fn run(a: FitArgs) -> Result<()> {
    let spec = a.model.spec()?;
    let mut opts = FitOptions {
        sigma: a.sigma,
        search_count: a.search.max(1),
        ..FitOptions::default()
    };
    opts.refine.tolerance = a.refine_tol;
    opts.refine.max_iters = if a.no_refine { 0 } else { a.refine_iters };
    if !(a.weight_floor.is_finite() && a.weight_floor >= 0.0) {
        bail!(
            "--weight-floor must be a finite number ≥ 0, not {}",
            a.weight_floor
        );
    }
    opts.signal_weight_floor = (a.weight_floor > 0.0).then_some(a.weight_floor);
    if let [table] = a.files.as_slice() {
        let is_table = posescope::io::locs::is_table(table) && table.is_file();
        let spec = if is_table || a.pick || a.picks.is_some() {
            particle_model(&a.model)?
        } else {
            spec.clone()
        };
        if is_table {
            return super::fit_table::run(super::fit_table::TableFit {
                table,
                picks: a.picks.as_deref(),
                ignore_groups: a.ignore_groups,
                spec,
                opts,
                weights: a.weights.as_deref(),
                use_net: !a.no_net,
                device: a.device.into(),
                csv: &a.csv,
                refine_on: a.refine_on.into(),
                use_z: !a.ignore_z,
                z_precision_factor: a.z_precision_factor,
                z_scale: a.z_scale,
                flip_z: a.flip_z,
                fit_size: a.fit_size,
                truth: a.truth.as_deref(),
                overview: a.overview.as_deref().map(|p| (p, a.overview_pixel_nm)),
            });
        }
        if a.pick || a.picks.is_some() {
            return super::fit_image::run(super::fit_image::ImageFit {
                image: table,
                frame: a.field_frame,
                picks: a.picks.as_deref(),
                spec,
                opts,
                weights: a.weights.as_deref(),
                use_net: !a.no_net,
                device: a.device.into(),
                csv: &a.csv,
                truth: a.truth.as_deref(),
            });
        }
    }
    if a.pick || a.picks.is_some() {
        bail!("--pick and --picks take one file: a localisation table or one image");
    }
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
    let files = io::expand_paths(&a.files)?;
    let mut stacks = Vec::new();
    let mut rows: Vec<PoseRow> = Vec::new();
    for path in &files {
        match io::open(path) {
            Ok(s) => {
                if is_whole_field(s.info()) {
                    let i = s.info();
                    eprintln!(
                        "warning: {}: {} × {} px{} is a whole field, which the viewer picks into \
                         particles; here each frame is fitted as one particle. To fit every \
                         particle: posescope fit {} --pick",
                        path.display(),
                        i.width,
                        i.height,
                        if i.frames > 1 { " per frame" } else { "" },
                        path.display()
                    );
                }
                stacks.push((path.clone(), s))
            }
            Err(e) => {
                eprintln!("warning: {e}");
                // one shard reports a file that cannot be opened, so merged shards do not overlap
                if a.shard.is_none_or(|s| s.index == 0) {
                    let mut row = PoseRow::failed(0, e.to_string());
                    row.file = Some(path.display().to_string());
                    rows.push(row);
                }
            }
        }
    }
    // the rows so far are the files that did not open, each reported above
    let unopened = rows.len();
    let shard = a.shard.unwrap_or(Shard { index: 0, count: 1 });
    // global frame numbers over all inputs, in order; this shard's frames of each file
    let mut first = 0usize;
    let selected: Vec<Vec<usize>> = stacks
        .iter()
        .map(|(_, s)| {
            let which = (0..s.len()).filter(|k| shard.takes(first + k)).collect();
            first += s.len();
            which
        })
        .collect();
    let total: usize = selected.iter().map(Vec::len).sum();
    let bar = progress(total as u64, "fit");
    let t0 = std::time::Instant::now();
    let (mut fitted, mut failed) = (0usize, 0usize);
    let model_name = spec.describe();
    let look = a.look.look()?;
    if let Some(dir) = &a.png_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating --png-dir {}", dir.display()))?;
    }
    for ((path, mut stack), which) in stacks.into_iter().zip(selected) {
        let n = stack.len();
        let target = a.png_dir.as_deref().map(|dir| ExportTarget {
            dir,
            file: &path,
            frames: n,
            frame_files: None,
            model: &fitter.model,
            model_name: &model_name,
            pixel_size_nm: a.model.pixel_size.or(stack.info().pixel_size_nm),
            look,
        });
        let mut results = FitResults::new(n);
        let options = BatchOptions {
            chunk: a.chunk,
            cancel: None,
        };
        let summary = fit_frames(
            &fitter,
            &which,
            |k| stack.frame(k).map_err(|e| e.to_string()),
            options,
            |item| {
                if let (Some(target), Some(frame), Ok(fit)) = (&target, item.frame, &item.result) {
                    let at = FrameAt {
                        frame,
                        index: item.index,
                        state: fit.outcome.state,
                        score: Some(fit.outcome.score),
                        axis_sd_deg: Some(fit.outcome.axis_sd_deg).filter(|s| s.is_finite()),
                    };
                    if let Err(e) = target.write(&at) {
                        bar.suspend(|| {
                            eprintln!(
                                "warning: exporting frame {} of {}: {e}",
                                item.index,
                                path.display()
                            )
                        });
                    }
                }
                results.set(item.index, item.result);
                bar.inc(1);
            },
        )?;
        fitted += summary.fitted;
        failed += summary.failed;
        rows.extend(results.rows(Some(&path.display().to_string())));
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
    super::orientations::print_verdict(&rows);
    super::failures::report(&rows, unopened, "frame")
}

/// The model of the particles of a table or a field, named on stderr when
/// it is the default, so that the user knows what was fitted.
fn particle_model(model: &ModelArgs) -> Result<ModelSpec> {
    let spec = model.particle_spec()?;
    if model.default_torus() && spec.is_torus() {
        eprintln!(
            "model: {} (the default particle; --torus R,r [--units px] for another)",
            spec.describe()
        );
    }
    Ok(spec)
}

/// One shard of a sharded fit: frames `index, index + count, …`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    index: usize,
    count: usize,
}

impl Shard {
    /// True when global frame `g` belongs to this shard.
    fn takes(&self, g: usize) -> bool {
        g % self.count == self.index
    }
}

fn parse_shard(s: &str) -> std::result::Result<Shard, String> {
    let bad = || format!("'{s}': expected K/N with 0 ≤ K < N, e.g. 0/8");
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (index, count) = (
        k.trim().parse::<usize>().map_err(|_| bad())?,
        n.trim().parse::<usize>().map_err(|_| bad())?,
    );
    if count == 0 || index >= count {
        return Err(bad());
    }
    Ok(Shard { index, count })
}

/// A finite factor above zero (`--z-precision-factor`).
fn positive_factor(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 100.0 => Ok(v),
        Ok(v) => Err(format!("{v} is not a factor in (0, 100]")),
        Err(e) => Err(format!("{s:?} is not a number: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_frames() {
        assert!(parse_shard("3/3").is_err() && parse_shard("0/0").is_err());
        assert!(parse_shard("x/2").is_err() && parse_shard("1").is_err());
        let shards: Vec<Shard> = (0..3)
            .map(|k| parse_shard(&format!("{k}/3")).unwrap())
            .collect();
        for g in 0..100 {
            assert_eq!(shards.iter().filter(|s| s.takes(g)).count(), 1);
        }
    }
}
