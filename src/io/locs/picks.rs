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

/// One row of a picks CSV, as written: what is unknown stays empty.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PickRow {
    pub x_px: Option<f64>,
    pub y_px: Option<f64>,
    pub x_nm: Option<f64>,
    pub y_nm: Option<f64>,
    pub diameter_nm: Option<f64>,
    pub n_locs: Option<usize>,
    /// Values of the file's extra columns, in their order.
    pub extra: Vec<String>,
}

/// The columns every picks CSV starts with.
const COLUMNS: [&str; 7] = [
    "particle",
    "x_px",
    "y_px",
    "x_nm",
    "y_nm",
    "diameter_nm",
    "n_locs",
];

/// Writes `picks` (of a table) as a picks CSV (atomically).
pub fn write_picks(
    path: &Path,
    picks: &[Pick],
    pixel_nm: Option<f64>,
    diameter_nm: f64,
) -> Result<(), OutputError> {
    let rows: Vec<PickRow> = picks
        .iter()
        .map(|p| PickRow {
            x_px: pixel_nm.map(|s| p.x_nm / s),
            y_px: pixel_nm.map(|s| p.y_nm / s),
            x_nm: Some(p.x_nm),
            y_nm: Some(p.y_nm),
            diameter_nm: Some(diameter_nm),
            n_locs: Some(p.n_locs),
            extra: Vec::new(),
        })
        .collect();
    write_pick_rows(path, &rows, &[])
}

/// Writes picks CSV rows (atomically), with `extra` columns after the
/// standard ones.
pub fn write_pick_rows(path: &Path, rows: &[PickRow], extra: &[&str]) -> Result<(), OutputError> {
    atomic_write(path, |w| {
        let err = |e: csv::Error| OutputError::Csv {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let mut c = csv::Writer::from_writer(w);
        c.write_record(COLUMNS.iter().chain(extra)).map_err(err)?;
        let num =
            |v: Option<f64>, places: usize| v.map_or(String::new(), |v| format!("{v:.places$}"));
        for (k, r) in rows.iter().enumerate() {
            let fields = [
                k.to_string(),
                num(r.x_px, 4),
                num(r.y_px, 4),
                num(r.x_nm, 2),
                num(r.y_nm, 2),
                num(r.diameter_nm, 1),
                r.n_locs.map_or(String::new(), |n| n.to_string()),
            ];
            c.write_record(fields.iter().chain(&r.extra)).map_err(err)?;
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
    read_rows(path, &["x_nm", "y_nm"], &["n_locs"], |v| Pick {
        x_nm: v[0].unwrap_or(0.0),
        y_nm: v[1].unwrap_or(0.0),
        n_locs: v[2].map_or(0, |n| n.max(0.0) as usize),
    })
}

/// Reads the centres of a picks CSV in image pixels, for picks on an
/// image: the `x_px`, `y_px` columns, or, where the file has only nm,
/// `x_nm`, `y_nm` divided by `pixel_nm`.
pub fn read_pick_centres_px(path: &Path, pixel_nm: Option<f64>) -> Result<Vec<[f64; 2]>, IoError> {
    let has_px = {
        let file = std::fs::File::open(path).map_err(|e| IoError::io(path, e))?;
        let mut r = csv::Reader::from_reader(std::io::BufReader::new(file));
        let h = r
            .headers()
            .map_err(|e| IoError::Corrupt {
                path: path.to_path_buf(),
                detail: format!("no header row: {e}"),
            })?
            .clone();
        let first = r.records().next().and_then(|rec| rec.ok());
        let col = h.iter().position(|c| c.trim() == "x_px");
        // an x_px column whose first value is empty: a table's picks of
        // unknown pixel size
        col.is_some_and(|i| {
            first.is_none_or(|rec| rec.get(i).is_some_and(|v| !v.trim().is_empty()))
        })
    };
    if has_px {
        return read_rows(path, &["x_px", "y_px"], &[], |v| {
            [v[0].unwrap_or(0.0), v[1].unwrap_or(0.0)]
        });
    }
    let Some(s) = pixel_nm.filter(|s| s.is_finite() && *s > 0.0) else {
        return Err(IoError::Corrupt {
            path: path.to_path_buf(),
            detail: "the picks have no x_px, y_px columns, and the image's pixel size (to convert x_nm, y_nm) is unknown: give --pixel-size".into(),
        });
    };
    read_rows(path, &["x_nm", "y_nm"], &[], |v| {
        [v[0].unwrap_or(0.0) / s, v[1].unwrap_or(0.0) / s]
    })
}

/// Reads the `need`ed columns (finite numbers in every row) and the
/// `optional` ones (absent or unparsable: `None`) of a picks CSV, in that
/// order, into one `T` per row. Where the file has a `state` column (the
/// viewer's picks sidecar, `NAME.posescope-picks.csv`), the picks marked
/// `removed` are left out.
fn read_rows<T>(
    path: &Path,
    need: &[&str],
    optional: &[&str],
    make: impl Fn(&[Option<f64>]) -> T,
) -> Result<Vec<T>, IoError> {
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
    let col = |name: &&str| h.iter().position(|c| c.trim() == *name);
    let Some(need_at) = need.iter().map(col).collect::<Option<Vec<usize>>>() else {
        return Err(corrupt(format!(
            "a picks CSV needs {} columns; columns found: {}",
            need.join(" and "),
            h.iter().collect::<Vec<_>>().join(", ")
        )));
    };
    let optional_at: Vec<Option<usize>> = optional.iter().map(col).collect();
    let state_at = col(&"state");
    let mut out = Vec::new();
    let mut values = Vec::with_capacity(need.len() + optional.len());
    for (line, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| corrupt(format!("row {}: {e}", line + 2)))?;
        let removed = state_at
            .and_then(|i| rec.get(i))
            .is_some_and(|s| s.trim().eq_ignore_ascii_case("removed"));
        if removed {
            continue;
        }
        let num = |i: usize| {
            rec.get(i)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite())
        };
        values.clear();
        for &i in &need_at {
            let Some(v) = num(i) else {
                return Err(corrupt(format!(
                    "row {}: {} must be finite numbers",
                    line + 2,
                    need.join(" and ")
                )));
            };
            values.push(Some(v));
        }
        values.extend(optional_at.iter().map(|i| i.and_then(num)));
        if out.len() >= MAX_PICKS {
            return Err(corrupt(format!("more than {MAX_PICKS} picks")));
        }
        out.push(make(&values));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_viewers_picks_sidecar_reads_without_its_removed_picks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("field.hdf5.posescope-picks.csv");
        std::fs::write(
            &path,
            "particle,x_nm,y_nm,n_locs,state,manual\n\
             0,100,200,31,accepted,false\n\
             1,300,400,40,removed,false\n\
             2,500,600,12,candidate,true\n",
        )
        .unwrap();
        let picks = read_picks(&path).unwrap();
        let xs: Vec<f64> = picks.iter().map(|p| p.x_nm).collect();
        assert_eq!(xs, [100.0, 500.0]);
        assert_eq!(picks[1].n_locs, 12);
        let px = read_pick_centres_px(&path, Some(10.0)).unwrap();
        assert_eq!(px, [[10.0, 20.0], [50.0, 60.0]]);
    }

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

    #[test]
    fn image_picks_are_read_in_pixels() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("picks.csv");
        let rows = vec![PickRow {
            x_px: Some(12.5),
            y_px: Some(40.25),
            extra: vec!["7.5".into()],
            ..PickRow::default()
        }];
        write_pick_rows(&p, &rows, &["snr"]).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(
            text,
            "particle,x_px,y_px,x_nm,y_nm,diameter_nm,n_locs,snr\n0,12.5000,40.2500,,,,,7.5\n"
        );
        assert_eq!(read_pick_centres_px(&p, None).unwrap(), vec![[12.5, 40.25]]);
        // a table's picks of unknown pixel size: nm, converted
        write_picks(
            &p,
            &[Pick {
                x_nm: 100.0,
                y_nm: 50.0,
                n_locs: 3,
            }],
            None,
            440.0,
        )
        .unwrap();
        assert_eq!(
            read_pick_centres_px(&p, Some(10.0)).unwrap(),
            vec![[10.0, 5.0]]
        );
        let e = read_pick_centres_px(&p, None).unwrap_err().to_string();
        assert!(e.contains("--pixel-size"), "{e}");
    }
}
