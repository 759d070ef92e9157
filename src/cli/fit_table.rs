//! `posescope fit TABLE`: a pose for every particle of a localisation
//! table. The particles are the `--picks` CSV's, or picked automatically;
//! each pick's localisations (within its disc) are rendered into a 128 × 128
//! particle frame at the pixel size that puts the torus at the bundled
//! network's 20 px, and the frames go through the same batch fit as images.

use std::path::Path;

use anyhow::{bail, Context, Result};

use posescope::estimate::pick::{particle_frames, pick_table, Pick, PickConfig};
use posescope::estimate::pose::batch::{fit_frames, BatchOptions};
use posescope::estimate::pose::fit::FitOptions;
use posescope::estimate::pose::pipeline::{DeviceChoice, Fitter, ModelSpec};
use posescope::estimate::pose::results::result_row;
use posescope::estimate::pose::train::REFERENCE_MAJOR_PX;
use posescope::io::{locs, write_pose_csv, PoseRow};
use posescope::shapes::Units;

/// Particle frames are this many pixels square.
const FRAME: usize = 128;

/// What `fit` passes on for a table.
pub struct TableFit<'a> {
    pub table: &'a Path,
    pub picks: Option<&'a Path>,
    pub spec: ModelSpec,
    pub opts: FitOptions,
    pub weights: Option<&'a Path>,
    pub use_net: bool,
    pub device: DeviceChoice,
    pub csv: &'a Path,
}

pub fn run(a: TableFit<'_>) -> Result<()> {
    if !a.spec.is_torus() || a.spec.units != Units::Nm {
        bail!(
            "{}: a localisation table is in nm: give the torus in nm, e.g. --torus 180,40 --units nm",
            a.table.display()
        );
    }
    let [major_nm, tube_nm] = a.spec.torus;
    let table = locs::open_table(a.table, &locs::TableOptions::default())?;
    let picks = match a.picks {
        Some(p) => read_picks(p)?,
        None => pick_table(&table, &PickConfig::for_radius(major_nm + tube_nm))?,
    };
    let precision = table.summary().median_precision_nm.map_or(10.0, f64::from);
    let reach = major_nm + tube_nm + 2.0 * precision;
    let pixel_nm = major_nm / REFERENCE_MAJOR_PX;
    let frames = particle_frames(&table, &picks, reach, pixel_nm, FRAME);
    // the model in particle-frame pixels
    let spec = ModelSpec {
        torus: [REFERENCE_MAJOR_PX, tube_nm / pixel_nm],
        units: Units::Px,
        pixel_size: Some(pixel_nm),
        ..a.spec
    };
    let fitter =
        Fitter::new(&spec, a.opts, a.weights, a.use_net, a.device).context("setting up the fit")?;
    let t0 = std::time::Instant::now();
    let which: Vec<usize> = (0..frames.len()).collect();
    let mut rows: Vec<PoseRow> = Vec::with_capacity(frames.len());
    let summary = fit_frames(
        &fitter,
        &which,
        |k| Ok(&frames[k]),
        BatchOptions {
            chunk: 64,
            cancel: None,
        },
        |item| {
            let p = &picks[item.index];
            let mut row = result_row(item.index, &item.result);
            row.file = Some(a.table.display().to_string());
            row.set("particle", item.index);
            let px = |v: f64| {
                table
                    .pixel_size_nm
                    .map_or(String::new(), |s| format!("{:.4}", v / s))
            };
            row.set("x_px", px(p.x_nm));
            row.set("y_px", px(p.y_nm));
            row.set("x_nm", format!("{:.2}", p.x_nm));
            row.set("y_nm", format!("{:.2}", p.y_nm));
            row.set("n_locs", p.n_locs);
            row.set("frame_pixel_nm", format!("{pixel_nm:.4}"));
            rows.push(row);
        },
    )?;
    write_pose_csv(a.csv, &rows)?;
    println!(
        "fitted {} particles ({} failed) of {} localisations in {:.2} s ({} nm per particle-frame pixel) → {}",
        summary.fitted,
        summary.failed,
        table.len(),
        t0.elapsed().as_secs_f64(),
        pixel_nm,
        a.csv.display()
    );
    Ok(())
}

/// The `x_nm`, `y_nm` (and `n_locs`, if present) columns of a picks CSV.
fn read_picks(path: &Path) -> Result<Vec<Pick>> {
    let mut r = csv::Reader::from_path(path).with_context(|| path.display().to_string())?;
    let h = r.headers()?.clone();
    let col = |name: &str| h.iter().position(|c| c == name);
    let (Some(xi), Some(yi)) = (col("x_nm"), col("y_nm")) else {
        bail!(
            "{}: a picks CSV needs x_nm and y_nm columns; columns found: {}",
            path.display(),
            h.iter().collect::<Vec<_>>().join(", ")
        );
    };
    let ni = col("n_locs");
    let mut out = Vec::new();
    for (line, rec) in r.records().enumerate() {
        let rec = rec.with_context(|| format!("{} row {}", path.display(), line + 2))?;
        let num = |i: usize| {
            rec.get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| v.is_finite())
        };
        let (Some(x), Some(y)) = (num(xi), num(yi)) else {
            bail!(
                "{} row {}: x_nm and y_nm must be numbers",
                path.display(),
                line + 2
            );
        };
        out.push(Pick {
            x_nm: x,
            y_nm: y,
            n_locs: ni.and_then(num).map_or(0, |n| n as usize),
        });
    }
    Ok(out)
}
