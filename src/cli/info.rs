//! `posescope info`: what is in a file — size, frames, sample type, pixel
//! size, read from the headers alone (a 2 GB stack answers at once); with
//! `--stats`, also the value range, which reads every frame.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::args::progress;
use posescope::io::{self, locs};

#[derive(Args)]
pub struct InfoArgs {
    /// Image files (TIFF, BigTIFF, FITS, PNG, JPEG), or folders of them, or
    /// localisation tables (Picasso .hdf5, ThunderSTORM or plain .csv/.tsv).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Camera pixel size in nm, for tables in pixels that do not state it
    /// (a Picasso file without its .yaml).
    #[arg(long)]
    pixel_size: Option<f64>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Also the value range (min, max), which reads every frame (with a progress bar).
    #[arg(long)]
    stats: bool,
    /// Without --stats the range is skipped anyway (kept for old scripts).
    #[arg(long, hide = true)]
    no_range: bool,
}

pub fn run(a: InfoArgs) -> Result<()> {
    let mut reports = Vec::new();
    for path in &io::expand_paths(&a.files)? {
        if locs::is_table(path) {
            reports.push(table_report(path, a.pixel_size, a.json)?);
            continue;
        }
        // headers only: a frame above the frame limit is still described
        // (a finite bound keeps every size product far from overflow)
        let limits = if a.stats {
            io::Limits::default()
        } else {
            io::Limits {
                max_frame_bytes: 1 << 50,
                ..io::Limits::default()
            }
        };
        let mut stack = io::open_with_limits(path, &limits)?;
        let n = stack.len();
        let range = if !a.stats || a.no_range {
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
        let mut info = stack.info().clone();
        // the check the other commands make when they open the file
        if let Err(e) =
            io::Limits::default().check_frame(path, info.width as u64, info.height as u64)
        {
            info.warnings
                .push(format!("{e}: view, fit and pick refuse this file"));
        }
        let info = &info;
        reports.push(serde_json::json!({
            "file": path.display().to_string(),
            "format": info.format,
            "width": info.width,
            "height": info.height,
            "frames": info.frames,
            "sample_type": info.sample_type.to_string(),
            "bits_per_sample": info.bits_per_sample,
            "palette_colours": info.palette.as_ref().map(Vec::len),
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
            if usize::from(info.bits_per_sample) == 8 * info.sample_type.bytes() {
                println!("  sample      {}", info.sample_type);
            } else {
                println!(
                    "  sample      {} ({}-bit)",
                    info.sample_type, info.bits_per_sample
                );
            }
            if let Some(p) = &info.palette {
                println!("  palette     {} colours (values are indices)", p.len());
            }
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

/// Opens a localisation table and describes it (printing unless `json`).
fn table_report(
    path: &std::path::Path,
    pixel_size_nm: Option<f64>,
    json: bool,
) -> Result<serde_json::Value> {
    let opts = locs::TableOptions {
        pixel_size_nm,
        ..locs::TableOptions::default()
    };
    let t = locs::open_table(path, &opts)?;
    let s = t.summary();
    let groups = posescope::estimate::pick::picks_from_groups(&t).map(|p| p.len());
    let [x0, y0, x1, y1] = s.extent_nm;
    if !json {
        println!("{}", path.display());
        println!("  format      {} (localisation table)", t.format);
        println!("  rows        {}", s.rows);
        println!("  columns     {}", t.columns.join(", "));
        match t.pixel_size_nm {
            Some(p) => println!("  pixel size  {p} nm (camera)"),
            None => println!("  pixel size  not stated (coordinates in nm)"),
        }
        println!(
            "  extent      x {x0:.0} .. {x1:.0} nm, y {y0:.0} .. {y1:.0} nm ({:.2} × {:.2} µm)",
            (x1 - x0) / 1000.0,
            (y1 - y0) / 1000.0
        );
        if let Some((w, h)) = t.camera_px {
            println!("  camera      {w} × {h} px");
        }
        match (t.frames, s.frames_seen) {
            (Some(f), _) => println!("  frames      {f}"),
            (None, Some(f)) => println!("  frames      {f} (highest frame index + 1)"),
            _ => {}
        }
        match s.median_precision_nm {
            Some(p) => println!("  precision   median {p:.1} nm"),
            None => println!("  precision   no column"),
        }
        if t.z_nm.is_some() {
            let axial = if t.precision_z_nm.is_some() {
                "axial precision from its column"
            } else {
                "no axial precision column: fit assumes 2.5 × the lateral, --z-precision-factor"
            };
            println!("  z           yes: fit uses it to tell each axis from its mirror ({axial})");
        }
        if let Some(n) = groups {
            println!("  groups      {n}: fit, learn and the viewer take each as a particle");
        }
        for w in &t.warnings {
            println!("  warning     {w}");
        }
    }
    Ok(serde_json::json!({
        "file": path.display().to_string(),
        "format": t.format,
        "rows": s.rows,
        "columns": t.columns,
        "pixel_size_nm": t.pixel_size_nm,
        "extent_nm": s.extent_nm,
        "camera_px": t.camera_px,
        "frames": t.frames.or(s.frames_seen),
        "median_precision_nm": s.median_precision_nm,
        "skipped_rows": t.skipped_rows,
        "groups": groups,
        "warnings": t.warnings,
    }))
}
