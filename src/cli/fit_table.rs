//! `posescope fit TABLE`: a pose for every particle of a localisation
//! table. The particles are the `--picks` CSV's, or picked automatically;
//! the library's [`ParticleSetup`] renders each into a particle frame for
//! the image fit and then (by default) refines it on its localisations.

use std::path::Path;

use anyhow::{Context, Result};

use posescope::estimate::locfit::ZScale;
use posescope::estimate::particles::{ParticleSetup, RefineOn};
use posescope::estimate::pick::{table_picks, PickConfig};
use posescope::estimate::pose::batch::fit_all;
use posescope::estimate::pose::fit::FitOptions;
use posescope::estimate::pose::pipeline::{DeviceChoice, Fitter, ModelSpec};
use posescope::estimate::pose::results::result_row;
use posescope::estimate::torus_size;
use posescope::export::annotate::write_png;
use posescope::export::overview::{table_overview, ParticleNm};
use posescope::io::{locs, write_pose_csv, PoseRow};
use posescope::render::display::Lut;

use super::truth::{axis_errors_report, read_truth, tilt_direction_report};

/// What `fit` passes on for a table.
pub struct TableFit<'a> {
    pub table: &'a Path,
    pub picks: Option<&'a Path>,
    /// Pick automatically even when the table has groups.
    pub ignore_groups: bool,
    pub spec: ModelSpec,
    pub opts: FitOptions,
    pub weights: Option<&'a Path>,
    pub use_net: bool,
    pub device: DeviceChoice,
    pub csv: &'a Path,
    pub refine_on: RefineOn,
    /// Use the table's z in the localisation fit (when it has one).
    pub use_z: bool,
    /// Axial precision ÷ lateral precision.
    pub z_precision_factor: f64,
    /// Factor on the table's z.
    pub z_scale: f64,
    /// Negate the table's z first.
    pub flip_z: bool,
    /// Fit the torus's size to the particles too.
    pub fit_size: bool,
    pub truth: Option<&'a Path>,
    /// The overview PNG and its pixel size, nm.
    pub overview: Option<(&'a Path, f64)>,
}

pub fn run(a: TableFit<'_>) -> Result<()> {
    let table = locs::open_table(a.table, &locs::TableOptions::default())?;
    let mut setup =
        ParticleSetup::new(&table, &a.spec).with_context(|| a.table.display().to_string())?;
    setup.locfit.use_z = a.use_z;
    setup.locfit.z_precision_factor = a.z_precision_factor;
    setup.locfit.z_scale = a.z_scale;
    setup.locfit.flip_z = a.flip_z;
    if table.z_nm.is_some() && a.use_z && a.refine_on == RefineOn::Locs {
        let axial = if table.precision_z_nm.is_some() {
            "its axial precision column".to_string()
        } else {
            format!("axial precision {} × lateral", a.z_precision_factor)
        };
        let scale = match (a.z_scale == 1.0, a.flip_z) {
            (true, false) => "z as written".to_string(),
            (true, true) => "z negated".to_string(),
            (false, false) => format!("z × {}", a.z_scale),
            (false, true) => format!("z × −{}", a.z_scale),
        };
        eprintln!(
            "3D table: the localisation fit uses z ({scale}, {axial}) to tell each axis from its mirror (--ignore-z: fit in 2D)"
        );
    }
    let [major_nm, tube_nm] = setup.torus_nm;
    let picks = match a.picks {
        Some(p) => locs::read_picks(p)?,
        None => {
            let cfg = PickConfig::for_radius(major_nm + tube_nm);
            let (picks, source) = table_picks(&table, &cfg, a.ignore_groups)
                .with_context(|| a.table.display().to_string())?;
            eprintln!("particles: {}", source.describe());
            picks
        }
    };
    // one index of the table serves the particle frames and the localisation fit
    let grid = setup.index(&table);
    let frames: Vec<_> = picks
        .iter()
        .map(|p| setup.frame(&table, &grid, p))
        .collect();
    let fitter = Fitter::new(&setup.spec_px, a.opts, a.weights, a.use_net, a.device)
        .context("setting up the fit")?;
    let t0 = std::time::Instant::now();
    let mut results = fit_all(&fitter, &frames)?;
    let t_image = t0.elapsed().as_secs_f64();
    let mut locfits = match a.refine_on {
        RefineOn::Locs => setup.refine_on_locs(&table, &grid, &picks, &mut results),
        RefineOn::Image => vec![None; picks.len()],
    };
    let sizes = if a.fit_size {
        if a.refine_on == RefineOn::Image {
            anyhow::bail!("--fit-size fits the localisations: it needs --refine-on locs");
        }
        let t = std::time::Instant::now();
        let round = |k: usize, p: &posescope::estimate::locfit::size::ProfilePoint| {
            eprintln!(
                "size round {}: R {:.1} nm: r {:.1} nm, −log L {:.1}",
                k + 1,
                p.major_nm,
                p.tube.tube_nm,
                p.total()
            );
        };
        let report = torus_size::fit_size(&mut setup, &table, &grid, &picks, &mut results, round)
            .with_context(|| format!("{}: --fit-size", a.table.display()))?;
        println!("{} [{:.2} s]", report.describe(), t.elapsed().as_secs_f64());
        locfits = report.fits;
        Some(report.per_particle)
    } else {
        None
    };
    let px = |v: f64| {
        table
            .pixel_size_nm
            .map_or(String::new(), |s| format!("{:.4}", v / s))
    };
    let mut failed = 0;
    let rows: Vec<PoseRow> = picks
        .iter()
        .zip(&results)
        .zip(&locfits)
        .enumerate()
        .map(|(k, ((p, result), lf))| {
            failed += usize::from(result.is_err());
            let mut row = result_row(k, result);
            row.file = Some(a.table.display().to_string());
            row.set("particle", k);
            let (x, y) = lf.map_or((p.x_nm, p.y_nm), |f| (f.centre_nm[0], f.centre_nm[1]));
            row.set("x_px", px(x));
            row.set("y_px", px(y));
            row.set("x_nm", format!("{x:.2}"));
            row.set("y_nm", format!("{y:.2}"));
            row.set("n_locs", p.n_locs);
            row.set("frame_pixel_nm", format!("{:.4}", setup.pixel_nm));
            row.set("refined_on", if lf.is_some() { "locs" } else { "image" });
            row.set(
                "loc_nll",
                lf.map_or(String::new(), |f| format!("{:.4}", f.nll_per_loc)),
            );
            if let Some(sizes) = &sizes {
                // the particle's own R, from its own profile
                let own = sizes[k].map_or(String::new(), |r| format!("{r:.2}"));
                row.set("major_nm", own);
            }
            if table.z_nm.is_some() {
                // how many localisations' z told the axis from its mirror
                row.set("z_locs", lf.map_or(0, |f| f.z_locs));
                row.set(
                    "z_nm",
                    lf.and_then(|f| f.z_centre_nm)
                        .map_or(String::new(), |z| format!("{z:.2}")),
                );
            }
            row
        })
        .collect();
    write_pose_csv(a.csv, &rows)?;
    println!(
        "fitted {} particles ({failed} failed) of {} localisations in {:.2} s (image fit {:.2} s; refined on {}) → {}",
        picks.len() - failed,
        table.len(),
        t0.elapsed().as_secs_f64(),
        t_image,
        a.refine_on.name(),
        a.csv.display()
    );
    super::orientations::print_verdict(&rows);
    if locfits.iter().flatten().any(|f| f.z_locs > 0) {
        let t = std::time::Instant::now();
        let z = setup.z_scale(&table, &grid, &picks, &locfits);
        let axial_column = table.precision_z_nm.is_some();
        print_z_check(
            z,
            t.elapsed().as_secs_f64(),
            axial_column,
            a.z_precision_factor,
        );
    }
    super::failures::report(&rows, 0, "particle")?;
    if let Some((path, pixel_nm)) = a.overview {
        let particles: Vec<ParticleNm> = rows
            .iter()
            .zip(&results)
            .enumerate()
            .filter_map(|(k, (row, r))| {
                Some(ParticleNm {
                    number: k,
                    centre_nm: [
                        row.get("x_nm")?.parse().ok()?,
                        row.get("y_nm")?.parse().ok()?,
                    ],
                    axis: r.as_ref().ok().map(|f| f.outcome.state.pose.q.axis()),
                })
            })
            .collect();
        let img = table_overview(&table, pixel_nm, setup.torus_nm[0], &particles, Lut::Hot)
            .with_context(|| path.display().to_string())?;
        write_png(path, &img)?;
        println!(
            "overview → {} ({} × {} px)",
            path.display(),
            img.width(),
            img.height()
        );
    }
    if let Some(t) = a.truth {
        let truth = read_truth(t)?;
        let fitted: Vec<_> = results
            .iter()
            .zip(&rows)
            .filter_map(|(r, row)| {
                let f = r.as_ref().ok()?;
                let x = row.get("x_nm")?.parse().ok()?;
                let y = row.get("y_nm")?.parse().ok()?;
                Some(([x, y], f.outcome.state.pose.q.axis()))
            })
            .collect();
        println!("{}", axis_errors_report(&fitted, &truth, 150.0));
        if locfits.iter().flatten().any(|f| f.z_locs > 0) {
            println!("{}", tilt_direction_report(&fitted, &truth, 150.0));
        }
    }
    Ok(())
}

/// The check of a 3D table's z against the model, with the flags that
/// would correct what looks off.
fn print_z_check(z: Option<ZScale>, secs: f64, axial_column: bool, precision_factor: f64) {
    let Some(z) = z else {
        println!(
            "z scale: too few particles tilted ≥ {}° to check z against the model",
            posescope::estimate::locfit::zscale::MIN_TILT_DEG
        );
        return;
    };
    let fix = if z.suggests_correction() {
        format!(" (--z-scale {:.2})", z.median)
    } else {
        String::new()
    };
    println!("{} [{secs:.2} s]: {}{fix}", z.describe(), z.verdict());
    if !z.precision_off() {
        return;
    }
    if axial_column {
        println!(
            "axial precision: the table's column looks {:.2} × what fits the particles",
            z.precision.recip()
        );
    } else {
        // the factor is in the fit's frame, after the z scale
        let scaled = if z.suggests_correction() {
            " with that --z-scale"
        } else {
            ""
        };
        println!(
            "axial precision: {:.2} × the assumed ({precision_factor} × lateral) fits better: --z-precision-factor {:.1}{scaled}",
            z.precision,
            z.precision * precision_factor * z.median
        );
    }
}
