//! `posescope info`: what is in a file — size, frames, sample type, pixel
//! size, read from the headers alone (a 2 GB stack answers at once); with
//! `--stats`, also the value range, which reads every frame.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::args::progress;
use posescope::io;

#[derive(Args)]
pub struct InfoArgs {
    /// Image files (TIFF, BigTIFF, FITS, PNG, JPEG), or folders of them.
    #[arg(required = true)]
    files: Vec<PathBuf>,
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
        let mut stack = io::open(path)?;
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
        let info = stack.info();
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
