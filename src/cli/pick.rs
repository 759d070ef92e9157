//! `posescope pick`: automatic picking of particles of a known size on a
//! localisation table (by localisation density) or on an image (a
//! scale-matched detector), written as a picks CSV
//! (`particle,x_px,y_px,x_nm,y_nm,diameter_nm,n_locs`, plus, for an image,
//! each pick's `signal,snr,size`), and, given the truth of a synthetic
//! field, how many were found.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use super::args::parse_floats;
use super::fit_image::read_field;
use super::truth::read_truth;
use posescope::estimate::image_particles::{ImageParticleSetup, PICK_EXTRA_COLUMNS};
use posescope::estimate::pick::{match_picks, pick_table, Pick, PickConfig};
use posescope::estimate::pose::pipeline::ModelSpec;
use posescope::io::locs::{self, PickRow};
use posescope::shapes::Units;

#[derive(Args)]
pub struct PickArgs {
    /// A localisation table (Picasso .hdf5, ThunderSTORM or plain .csv/.tsv),
    /// or an image (a whole-field render or a camera frame: TIFF, FITS, PNG).
    table: PathBuf,
    /// The torus radii "R,r" in nm (the particle's outer radius is R + r).
    #[arg(long, default_value = "180,40")]
    torus_nm: String,
    /// On an image: the torus radii "R,r" in image pixels (instead of
    /// --torus-nm and a pixel size).
    #[arg(long)]
    torus_px: Option<String>,
    /// On a table: least localisations of a pick.
    #[arg(long, default_value_t = 30)]
    min_locs: usize,
    /// On an image: least detector response, in units of its noise.
    #[arg(long, default_value_t = 5.0)]
    min_snr: f64,
    /// On an image: least rms radius of a pick's signal as a fraction of the
    /// outer radius (drops point-like spots such as beads).
    #[arg(long, default_value_t = 0.3)]
    min_size: f64,
    /// On a stack: the frame that holds the field.
    #[arg(long, default_value_t = 0)]
    frame: usize,
    /// Pixel size in nm: a table's camera pixels, or the image's pixels,
    /// when the file does not state it.
    #[arg(long)]
    pixel_size: Option<f64>,
    /// The picks CSV to write.
    #[arg(long)]
    out: PathBuf,
    /// A synth --locs truth.csv: report picks matched within 150 nm, false
    /// picks and misses (for an image, rendered with its origin at 0 nm).
    #[arg(long)]
    truth: Option<PathBuf>,
    /// Also write the picked localisations as Picasso's picked format
    /// (`/locs` with a `group` per pick, + .yaml), to open in Picasso.
    #[arg(long)]
    picasso_out: Option<PathBuf>,
}

pub fn run(a: PickArgs) -> Result<()> {
    if !locs::is_table(&a.table) {
        return run_image(&a);
    }
    let [major, tube] = parse_floats::<2>(&a.torus_nm, "--torus-nm")?;
    let opts = locs::TableOptions {
        pixel_size_nm: a.pixel_size,
        ..locs::TableOptions::default()
    };
    let table = locs::open_table(&a.table, &opts)?;
    let cfg = PickConfig {
        min_locs: a.min_locs,
        ..PickConfig::for_radius(major + tube)
    };
    if let Some(groups) = posescope::estimate::pick::picks_from_groups(&table) {
        eprintln!(
            "note: {} has {} groups (picks made in Picasso or by clustering), which fit and the \
             viewer take as its particles; this picks anew",
            a.table.display(),
            groups.len()
        );
    }
    let picks = pick_table(&table, &cfg).with_context(|| a.table.display().to_string())?;
    locs::write_picks(&a.out, &picks, table.pixel_size_nm, 2.0 * (major + tube))?;
    println!(
        "{} particles picked from {} localisations → {}",
        picks.len(),
        table.len(),
        a.out.display()
    );
    if let Some(out) = &a.picasso_out {
        let precision = table.summary().median_precision_nm.map_or(10.0, f64::from);
        let n = write_picked(out, &table, &picks, major + tube + 2.0 * precision)?;
        println!(
            "{n} picked localisations in Picasso's format → {} (+ .yaml)",
            out.display()
        );
    }
    if let Some(t) = &a.truth {
        report_truth(t, &picks)?;
    }
    Ok(())
}

/// `pick IMAGE`.
fn run_image(a: &PickArgs) -> Result<()> {
    if a.picasso_out.is_some() {
        anyhow::bail!("--picasso-out needs a localisation table, not an image");
    }
    let (img, file_pixel_nm) = read_field(&a.table, a.frame)?;
    let spec = match &a.torus_px {
        Some(t) => ModelSpec {
            torus: parse_floats::<2>(t, "--torus-px")?,
            units: Units::Px,
            pixel_size: a.pixel_size,
            ..ModelSpec::default()
        },
        None => ModelSpec {
            torus: parse_floats::<2>(&a.torus_nm, "--torus-nm")?,
            units: Units::Nm,
            pixel_size: a.pixel_size,
            ..ModelSpec::default()
        },
    };
    let setup = ImageParticleSetup::new(&spec, file_pixel_nm)
        .with_context(|| a.table.display().to_string())?;
    let cfg = posescope::estimate::pick::ImagePickConfig {
        min_snr: a.min_snr,
        min_size: a.min_size,
        ..setup.pick_config()
    };
    let picks = setup
        .pick(&img, &cfg)
        .with_context(|| a.table.display().to_string())?;
    let s = setup.pixel_nm;
    let rows: Vec<PickRow> = picks.iter().map(|p| setup.pick_row(p)).collect();
    locs::write_pick_rows(&a.out, &rows, &PICK_EXTRA_COLUMNS)?;
    println!(
        "{} particles picked on {} ({} × {} px, particle diameter {:.1} px) → {}",
        picks.len(),
        a.table.display(),
        img.width,
        img.height,
        setup.diameter_px(),
        a.out.display()
    );
    if let Some(t) = &a.truth {
        let Some(s) = s else {
            anyhow::bail!("--truth needs the image's pixel size (--pixel-size)");
        };
        let as_nm: Vec<Pick> = picks.iter().map(|p| p.to_pick(s)).collect();
        report_truth(t, &as_nm)?;
    }
    Ok(())
}

/// Prints how `picks` match a truth CSV within 150 nm.
fn report_truth(t: &Path, picks: &[Pick]) -> Result<()> {
    let truth: Vec<[f64; 2]> = read_truth(t)?.iter().map(|t| t.centre_nm).collect();
    let (m, f, miss) = match_picks(picks, &truth, 150.0);
    println!(
        "against {}: {m} of {} particles picked ({:.1} %), {f} false picks, {miss} missed (match within 150 nm)",
        t.display(),
        truth.len(),
        100.0 * m as f64 / truth.len().max(1) as f64
    );
    Ok(())
}

/// The localisations within `radius_nm` of each pick, grouped by pick, in
/// Picasso's picked format; returns how many were written.
fn write_picked(
    out: &Path,
    table: &locs::LocTable,
    picks: &[Pick],
    radius_nm: f64,
) -> Result<usize> {
    use posescope::io::locs::picasso::{write_grouped, AxialLoc, PicassoLoc, Sidecar};
    let px = table.pixel_size_nm.with_context(|| {
        format!(
            "{}: Picasso stores camera pixels and this table states no pixel size; give --pixel-size",
            table.path.display()
        )
    })?;
    let pxf = px as f32;
    let (mut locs, mut groups) = (Vec::new(), Vec::new());
    for (g, p) in picks.iter().enumerate() {
        for i in 0..table.len() {
            let (x, y) = (table.x_nm[i], table.y_nm[i]);
            if (f64::from(x) - p.x_nm).hypot(f64::from(y) - p.y_nm) > radius_nm {
                continue;
            }
            let lp = table.precision_nm.as_ref().map_or(0.0, |v| v[i]) / pxf;
            locs.push(PicassoLoc {
                frame: table.frame.as_ref().map_or(0, |f| f[i]),
                x: x / pxf,
                y: y / pxf,
                photons: table.photons.as_ref().map_or(0.0, |v| v[i]),
                sx: 1.0,
                sy: 1.0,
                bg: 0.0,
                lpx: lp,
                lpy: lp,
                // a 3D table keeps its z (and axial precision, where stated)
                z: table.z_nm.as_ref().map(|z| AxialLoc {
                    z: z[i],
                    lpz: table.precision_z_nm.as_ref().map_or(f32::NAN, |v| v[i]),
                }),
            });
            groups.push(g as i32);
        }
    }
    let meta = Sidecar {
        width: table.camera_px.map(|c| c.0),
        height: table.camera_px.map(|c| c.1),
        frames: table.frames,
        pixel_size_nm: Some(px),
    };
    write_grouped(out, &locs, Some(&groups), &meta, "PoseScope pick")?;
    Ok(locs.len())
}
