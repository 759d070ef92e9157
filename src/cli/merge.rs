//! `posescope merge`: joins the pose CSVs of a sharded fit (`fit --shard K/N`)
//! into one, after checking that the shards neither overlap nor leave gaps.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use posescope::io::{natural_cmp, read_pose_csv, write_pose_csv, PoseRow};

#[derive(Args)]
pub struct MergeArgs {
    /// The shards' pose CSVs.
    #[arg(required = true)]
    csvs: Vec<PathBuf>,
    /// The merged CSV (rows ordered by file, then frame).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(a: MergeArgs) -> Result<()> {
    // (file, frame) → which CSV it came from, and the row
    let mut seen: BTreeMap<(String, usize), (usize, PoseRow)> = BTreeMap::new();
    for (i, path) in a.csvs.iter().enumerate() {
        for row in read_pose_csv(path)? {
            let key = (row.file.clone().unwrap_or_default(), row.frame);
            if let Some((j, _)) = seen.get(&key) {
                bail!(
                    "{} and {} both have frame {} of '{}': the shards overlap",
                    a.csvs[*j].display(),
                    path.display(),
                    key.1,
                    key.0
                );
            }
            seen.insert(key, (i, row));
        }
    }
    // per file, the frames must be 0, 1, …, last
    let mut per_file: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (file, frame) in seen.keys() {
        per_file.entry(file.clone()).or_default().push(*frame);
    }
    for (file, frames) in &per_file {
        if let Some(gap) = frames.iter().enumerate().find(|(i, f)| *i != **f) {
            bail!(
                "frame {} of '{file}' is in none of the shards (a shard is missing or failed)",
                gap.0
            );
        }
    }
    let mut rows: Vec<PoseRow> = seen.into_values().map(|(_, r)| r).collect();
    rows.sort_by(|x, y| {
        natural_cmp(
            x.file.as_deref().unwrap_or(""),
            y.file.as_deref().unwrap_or(""),
        )
        .then(x.frame.cmp(&y.frame))
    });
    write_pose_csv(&a.out, &rows)?;
    println!(
        "merged {} rows of {} files from {} CSVs → {}",
        rows.len(),
        per_file.len(),
        a.csvs.len(),
        a.out.display()
    );
    Ok(())
}
