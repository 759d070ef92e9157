//! `posescope fit IMAGE --pick` or `--picks picks.csv`: a pose for every
//! particle of one image (a whole-field render or a camera frame). The
//! library's [`ImageParticleSetup`] picks the particles (or takes the
//! CSV's), resamples each into a particle frame for the fit, and carries
//! the fitted centres back into image pixels.

use std::path::Path;

use anyhow::{bail, Context, Result};

use posescope::estimate::image_particles::ImageParticleSetup;
use posescope::estimate::pick::ImagePick;
use posescope::estimate::pose::batch::fit_all;
use posescope::estimate::pose::fit::FitOptions;
use posescope::estimate::pose::pipeline::{DeviceChoice, Fitter, ModelSpec};
use posescope::estimate::pose::results::result_row;
use posescope::io::{self, locs, write_pose_csv, Frame, PoseRow};

use super::truth::{axis_errors_report, read_truth};

/// What `fit` passes on for the particles of an image.
pub struct ImageFit<'a> {
    pub image: &'a Path,
    /// The frame of a stack that holds the field.
    pub frame: usize,
    pub picks: Option<&'a Path>,
    pub spec: ModelSpec,
    pub opts: FitOptions,
    pub weights: Option<&'a Path>,
    pub use_net: bool,
    pub device: DeviceChoice,
    pub csv: &'a Path,
    pub truth: Option<&'a Path>,
}

/// Reads frame `k` of an image file and its pixel size.
pub fn read_field(path: &Path, k: usize) -> Result<(Frame, Option<f64>)> {
    let mut stack = io::open(path)?;
    if k >= stack.len() {
        let n = stack.len();
        bail!(
            "{}: has {n} frame{}, no frame {k} (frames count from 0)",
            path.display(),
            if n == 1 { "" } else { "s" }
        );
    }
    let pixel_nm = stack.info().pixel_size_nm;
    Ok((stack.frame(k)?, pixel_nm))
}

pub fn run(a: ImageFit<'_>) -> Result<()> {
    let (img, file_pixel_nm) = read_field(a.image, a.frame)?;
    let setup = ImageParticleSetup::new(&a.spec, file_pixel_nm)
        .with_context(|| a.image.display().to_string())?;
    let picks: Vec<ImagePick> = match a.picks {
        Some(p) => locs::read_pick_centres_px(p, setup.pixel_nm)?
            .into_iter()
            .map(|c| setup.pick_at(&img, c))
            .collect(),
        None => setup
            .pick(&img, &setup.pick_config())
            .with_context(|| a.image.display().to_string())?,
    };
    let frames: Vec<Frame> = picks.iter().map(|p| setup.frame(&img, p)).collect();
    let fitter = Fitter::new(&setup.spec_px, a.opts, a.weights, a.use_net, a.device)
        .context("setting up the fit")?;
    let t0 = std::time::Instant::now();
    let results = fit_all(&fitter, &frames)?;
    let mut failed = 0;
    let centres: Vec<[f64; 2]> = picks
        .iter()
        .zip(&results)
        .map(|(p, r)| setup.centre_px(p, r))
        .collect();
    let nm = |v: f64| {
        setup
            .pixel_nm
            .map_or(String::new(), |s| format!("{:.2}", v * s))
    };
    let rows: Vec<PoseRow> = results
        .iter()
        .zip(&centres)
        .enumerate()
        .map(|(k, (result, c))| {
            failed += usize::from(result.is_err());
            let mut row = result_row(k, result);
            row.file = Some(a.image.display().to_string());
            row.set("particle", k);
            row.set("x_px", format!("{:.4}", c[0]));
            row.set("y_px", format!("{:.4}", c[1]));
            row.set("x_nm", nm(c[0]));
            row.set("y_nm", nm(c[1]));
            row.set("frame_scale", format!("{:.4}", setup.scale));
            row
        })
        .collect();
    write_pose_csv(a.csv, &rows)?;
    println!(
        "fitted {} particles ({failed} failed) of {} in {:.2} s → {}",
        picks.len() - failed,
        a.image.display(),
        t0.elapsed().as_secs_f64(),
        a.csv.display()
    );
    super::orientations::print_verdict(&rows);
    super::failures::report(&rows, 0, "particle")?;
    if let Some(t) = a.truth {
        let Some(pixel_nm) = setup.pixel_nm else {
            bail!("--truth needs the image's pixel size (--pixel-size)");
        };
        let truth = read_truth(t)?;
        let fitted: Vec<_> = results
            .iter()
            .zip(&centres)
            .filter_map(|(r, c)| {
                let f = r.as_ref().ok()?;
                Some((
                    [c[0] * pixel_nm, c[1] * pixel_nm],
                    f.outcome.state.pose.q.axis(),
                ))
            })
            .collect();
        println!("{}", axis_errors_report(&fitted, &truth, 150.0));
    }
    Ok(())
}
