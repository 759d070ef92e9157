//! Nothing lost in a review: a field's picks — where each is, whether it is
//! a candidate, accepted or removed, and whether it was placed by hand —
//! are saved with its results ([`super::autosave`]) as
//! `field.hdf5.posescope-picks.csv`, and come back when the field is opened
//! again. Without them the picker would run anew, hand-placed and moved
//! picks would be gone, and results saved for pick `k` would land on
//! whatever the picker numbered `k`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::particles::{PickEntry, PickState};
use crate::io::locs::Pick;
use crate::io::{atomic_write, OutputError};

/// What the picks file is named after the data file's name.
pub const SUFFIX: &str = "posescope-picks.csv";

/// One row of the picks file.
#[derive(Debug, Serialize, Deserialize)]
struct Row {
    particle: usize,
    x_nm: f64,
    y_nm: f64,
    n_locs: usize,
    state: String,
    manual: bool,
}

fn state_name(s: PickState) -> &'static str {
    match s {
        PickState::Candidate => "candidate",
        PickState::Accepted => "accepted",
        PickState::Removed => "removed",
    }
}

fn parse_state(s: &str) -> Option<PickState> {
    match s {
        "candidate" => Some(PickState::Candidate),
        "accepted" => Some(PickState::Accepted),
        "removed" => Some(PickState::Removed),
        _ => None,
    }
}

/// Writes `picks` to `path`, atomically.
pub fn write(path: &Path, picks: &[PickEntry]) -> Result<(), OutputError> {
    let csv_err = |e: csv::Error| OutputError::Io {
        path: path.to_path_buf(),
        cause: std::io::Error::other(e),
    };
    atomic_write(path, |w| {
        let mut out = csv::Writer::from_writer(w);
        for (particle, e) in picks.iter().enumerate() {
            out.serialize(Row {
                particle,
                x_nm: e.pick.x_nm,
                y_nm: e.pick.y_nm,
                n_locs: e.pick.n_locs,
                state: state_name(e.state).into(),
                manual: e.manual,
            })
            .map_err(csv_err)?;
        }
        out.flush().map_err(|cause| OutputError::Io {
            path: path.to_path_buf(),
            cause,
        })
    })
}

/// Reads a picks file: the picks in particle order, or why not (a row
/// out of order, a position that is not finite, an unknown state).
pub fn read(path: &Path) -> Result<Vec<PickEntry>, String> {
    let mut rdr = csv::Reader::from_path(path).map_err(|e| e.to_string())?;
    let mut picks = Vec::new();
    for (k, row) in rdr.deserialize::<Row>().enumerate() {
        let row = row.map_err(|e| format!("row {}: {e}", k + 1))?;
        if row.particle != k || !(row.x_nm.is_finite() && row.y_nm.is_finite()) {
            return Err(format!(
                "row {}: particle {} at ({}, {}) nm",
                k + 1,
                row.particle,
                row.x_nm,
                row.y_nm
            ));
        }
        let state = parse_state(&row.state)
            .ok_or_else(|| format!("row {}: unknown state {:?}", k + 1, row.state))?;
        picks.push(PickEntry {
            pick: Pick {
                x_nm: row.x_nm,
                y_nm: row.y_nm,
                n_locs: row.n_locs,
            },
            state,
            manual: row.manual,
        });
    }
    Ok(picks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(x: f64, state: PickState, manual: bool) -> PickEntry {
        PickEntry {
            pick: Pick {
                x_nm: x,
                y_nm: 2.0 * x + 0.125,
                n_locs: 7,
            },
            state,
            manual,
        }
    }

    #[test]
    fn picks_come_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.hdf5.posescope-picks.csv");
        let picks = vec![
            entry(1234.5678, PickState::Candidate, false),
            entry(10.0, PickState::Accepted, true),
            entry(-3.25, PickState::Removed, false),
        ];
        write(&path, &picks).unwrap();
        assert_eq!(read(&path).unwrap(), picks);
    }

    #[test]
    fn truncated_and_bit_flipped_files_read_or_fail_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.csv");
        let picks: Vec<PickEntry> = (0..6)
            .map(|k| entry(100.0 * k as f64, PickState::Accepted, k % 2 == 0))
            .collect();
        write(&good, &picks).unwrap();
        let bytes = std::fs::read(&good).unwrap();
        let bad = dir.path().join("bad.csv");
        let check = |b: &[u8]| {
            std::fs::write(&bad, b).unwrap();
            if let Ok(back) = read(&bad) {
                assert!(back.len() <= picks.len());
                assert!(back
                    .iter()
                    .all(|e| e.pick.x_nm.is_finite() && e.pick.y_nm.is_finite()));
            }
        };
        for n in 0..bytes.len() {
            check(&bytes[..n]);
        }
        for i in 0..bytes.len() {
            for bit in [0x01u8, 0x10, 0x80] {
                let mut b = bytes.clone();
                b[i] ^= bit;
                check(&b);
            }
        }
    }

    #[test]
    fn damaged_files_are_refused_with_the_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.csv");
        let head = "particle,x_nm,y_nm,n_locs,state,manual\n";
        for (body, expect) in [
            ("0,1,2,3,accepted,false\n2,1,2,3,accepted,false\n", "row 2"),
            ("0,NaN,2,3,accepted,false\n", "row 1"),
            ("0,1,2,3,maybe,false\n", "unknown state"),
            ("0,1,2\n", "row 1"),
        ] {
            std::fs::write(&path, format!("{head}{body}")).unwrap();
            let e = read(&path).unwrap_err();
            assert!(e.contains(expect), "{body}: {e}");
        }
    }
}
