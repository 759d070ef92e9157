//! Picks CSV: `particle,x_px,y_px,x_nm,y_nm,diameter_nm,n_locs`, the file
//! `posescope pick` writes, the viewer saves and loads, and `fit --picks`
//! reads. `x_px`/`y_px` are in the table's own (camera) pixels, empty when
//! its pixel size is unknown.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::io::{atomic_write, IoError, OutputError};

/// One picked particle.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pick {
    pub x_nm: f64,
    pub y_nm: f64,
    /// Localisations within the pick's disc.
    pub n_locs: usize,
}

/// Writes `picks` as a picks CSV (atomically).
pub fn write_picks(
    path: &Path,
    picks: &[Pick],
    pixel_nm: Option<f64>,
    diameter_nm: f64,
) -> Result<(), OutputError> {
    atomic_write(path, |w| {
        let err = |e: csv::Error| OutputError::Csv {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let mut c = csv::Writer::from_writer(w);
        c.write_record([
            "particle",
            "x_px",
            "y_px",
            "x_nm",
            "y_nm",
            "diameter_nm",
            "n_locs",
        ])
        .map_err(err)?;
        for (k, p) in picks.iter().enumerate() {
            let px = |v: f64| pixel_nm.map_or(String::new(), |s| format!("{:.4}", v / s));
            c.write_record(&[
                k.to_string(),
                px(p.x_nm),
                px(p.y_nm),
                format!("{:.2}", p.x_nm),
                format!("{:.2}", p.y_nm),
                format!("{diameter_nm:.1}"),
                p.n_locs.to_string(),
            ])
            .map_err(err)?;
        }
        c.flush().map_err(|cause| OutputError::Io {
            path: path.to_path_buf(),
            cause,
        })
    })
}

/// Most picks a picks CSV may hold.
const MAX_PICKS: usize = 10_000_000;

/// Reads the `x_nm`, `y_nm` (and `n_locs`, if present) columns of a picks CSV.
pub fn read_picks(path: &Path) -> Result<Vec<Pick>, IoError> {
    let corrupt = |detail: String| IoError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    let file = std::fs::File::open(path).map_err(|e| IoError::io(path, e))?;
    let mut r = csv::Reader::from_reader(std::io::BufReader::new(file));
    let h = r
        .headers()
        .map_err(|e| corrupt(format!("no header row: {e}")))?
        .clone();
    let col = |name: &str| h.iter().position(|c| c.trim() == name);
    let (Some(xi), Some(yi)) = (col("x_nm"), col("y_nm")) else {
        return Err(corrupt(format!(
            "a picks CSV needs x_nm and y_nm columns; columns found: {}",
            h.iter().collect::<Vec<_>>().join(", ")
        )));
    };
    let ni = col("n_locs");
    let mut out = Vec::new();
    for (line, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| corrupt(format!("row {}: {e}", line + 2)))?;
        let num = |i: usize| {
            rec.get(i)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite())
        };
        let (Some(x), Some(y)) = (num(xi), num(yi)) else {
            return Err(corrupt(format!(
                "row {}: x_nm and y_nm must be finite numbers",
                line + 2
            )));
        };
        if out.len() >= MAX_PICKS {
            return Err(corrupt(format!("more than {MAX_PICKS} picks")));
        }
        out.push(Pick {
            x_nm: x,
            y_nm: y,
            n_locs: ni.and_then(num).map_or(0, |n| n.max(0.0) as usize),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_round_trip_and_bad_files_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("picks.csv");
        let picks = vec![
            Pick {
                x_nm: 1300.5,
                y_nm: 260.25,
                n_locs: 240,
            },
            Pick {
                x_nm: 5.0,
                y_nm: 7.0,
                n_locs: 31,
            },
        ];
        write_picks(&p, &picks, Some(130.0), 440.0).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with("particle,x_px,y_px,x_nm,y_nm,diameter_nm,n_locs\n0,10.0038,2.0019,1300.50,260.25,440.0,240\n"), "{text}");
        assert_eq!(read_picks(&p).unwrap(), picks);
        std::fs::write(&p, "x,y\n1,2\n").unwrap();
        let e = read_picks(&p).unwrap_err().to_string();
        assert!(
            e.contains("picks.csv") && e.contains("columns found: x, y"),
            "{e}"
        );
        std::fs::write(&p, "x_nm,y_nm\n1,NaN\n").unwrap();
        let e = read_picks(&p).unwrap_err().to_string();
        assert!(e.contains("row 2"), "{e}");
    }
}
