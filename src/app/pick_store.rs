//! Nothing lost in a review: a field's picks — where each is, whether it is
//! a candidate, accepted or removed, and whether it was placed by hand —
//! are saved with its results ([`super::autosave`]) as
//! `field.hdf5.posescope-picks.csv`, and come back when the field is opened
//! again. Without them the picker would run anew, hand-placed and moved
//! picks would be gone, and results saved for pick `k` would land on
//! whatever the picker numbered `k`.
//!
//! A table's picks are kept in nanometres. An image's are kept in its
//! pixels (and nm, when its pixel size is known, for the reader's sake), so
//! they land on the same particles when the pixel size is set or changed
//! before the image is opened again; `posescope fit IMAGE --picks` reads the
//! same pixel columns.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::particles::{PickEntry, PickState};
use crate::io::locs::Pick;
use crate::io::{atomic_write, OutputError};

/// What the picks file is named after the data file's name.
pub const SUFFIX: &str = "posescope-picks.csv";

/// What a field's positions ([`Pick::x_nm`], `y_nm`) are in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Positions {
    /// A table's: nanometres.
    Nm,
    /// An image's: nanometres at `pixel_nm` per pixel, or pixels when the
    /// pixel size is unknown.
    Image { pixel_nm: Option<f64> },
}

impl Positions {
    /// Field units per image pixel.
    fn per_px(self) -> Option<f64> {
        match self {
            Positions::Nm => None,
            Positions::Image { pixel_nm } => Some(pixel_nm.unwrap_or(1.0)),
        }
    }
}

/// One row of the picks file. Files written before the pixel columns have
/// only `x_nm`, `y_nm`, in the field's units.
#[derive(Debug, Serialize, Deserialize)]
struct Row {
    particle: usize,
    x_px: Option<f64>,
    y_px: Option<f64>,
    x_nm: Option<f64>,
    y_nm: Option<f64>,
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

/// Writes `picks`, whose positions are in `units`, to `path`, atomically.
pub fn write(path: &Path, picks: &[PickEntry], units: Positions) -> Result<(), OutputError> {
    let csv_err = |e: csv::Error| OutputError::Io {
        path: path.to_path_buf(),
        cause: std::io::Error::other(e),
    };
    atomic_write(path, |w| {
        let mut out = csv::Writer::from_writer(w);
        let (px, nm) = match units {
            Positions::Nm => (None, Some(1.0)),
            Positions::Image { pixel_nm } => (units.per_px(), pixel_nm.map(|_| 1.0)),
        };
        for (particle, e) in picks.iter().enumerate() {
            let [x, y] = [e.pick.x_nm, e.pick.y_nm];
            out.serialize(Row {
                particle,
                x_px: px.map(|u| x / u),
                y_px: px.map(|u| y / u),
                x_nm: nm.map(|u| x * u),
                y_nm: nm.map(|u| y * u),
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

/// Reads a picks file into positions in `units`: the picks in particle
/// order, or why not (a row out of order, a position missing or not
/// finite, an unknown state).
pub fn read(path: &Path, units: Positions) -> Result<Vec<PickEntry>, String> {
    let mut rdr = csv::Reader::from_path(path).map_err(|e| e.to_string())?;
    let mut picks = Vec::new();
    for (k, row) in rdr.deserialize::<Row>().enumerate() {
        let row = row.map_err(|e| format!("row {}: {e}", k + 1))?;
        // an image's pixels where the file has them, else its nm (or, in
        // files from before the pixel columns, its field units)
        let at = match (units.per_px(), row.x_px.zip(row.y_px)) {
            (Some(u), Some((x, y))) => Some((x * u, y * u)),
            _ => row.x_nm.zip(row.y_nm),
        };
        let Some((x_nm, y_nm)) = at.filter(|(x, y)| x.is_finite() && y.is_finite()) else {
            return Err(format!(
                "row {}: particle {} has no position",
                k + 1,
                row.particle
            ));
        };
        if row.particle != k {
            return Err(format!(
                "row {}: particle {} where {k} was due",
                k + 1,
                row.particle
            ));
        }
        let state = parse_state(&row.state)
            .ok_or_else(|| format!("row {}: unknown state {:?}", k + 1, row.state))?;
        picks.push(PickEntry {
            pick: Pick {
                x_nm,
                y_nm,
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
        write(&path, &picks, Positions::Nm).unwrap();
        assert_eq!(read(&path, Positions::Nm).unwrap(), picks);
        // an image's, in pixels or nm
        for pixel_nm in [None, Some(16.0)] {
            let units = Positions::Image { pixel_nm };
            write(&path, &picks, units).unwrap();
            assert_eq!(read(&path, units).unwrap(), picks);
        }
    }

    #[test]
    fn an_images_picks_stay_on_their_pixels_when_its_pixel_size_is_set() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("field.tif.posescope-picks.csv");
        let picks = vec![entry(100.5, PickState::Accepted, true)];
        // reviewed with no pixel size: positions are pixels
        write(&path, &picks, Positions::Image { pixel_nm: None }).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("particle,x_px,y_px,x_nm,y_nm,")
                && text.contains("\n0,100.5,201.125,,,"),
            "{text}"
        );
        // opened again at 10 nm per pixel: the same pixels, in nm
        let back = read(
            &path,
            Positions::Image {
                pixel_nm: Some(10.0),
            },
        )
        .unwrap();
        assert_eq!((back[0].pick.x_nm, back[0].pick.y_nm), (1005.0, 2011.25));
        // and `fit IMAGE --picks` reads the same pixels, whatever it is told
        let px = crate::io::locs::read_pick_centres_px(&path, Some(10.0)).unwrap();
        assert_eq!(px, vec![[100.5, 201.125]]);
        // a file from before the pixel columns reads as it was written
        std::fs::write(
            &path,
            "particle,x_nm,y_nm,n_locs,state,manual\n0,3.5,4,0,accepted,true\n",
        )
        .unwrap();
        let old = read(
            &path,
            Positions::Image {
                pixel_nm: Some(10.0),
            },
        )
        .unwrap();
        assert_eq!((old[0].pick.x_nm, old[0].pick.y_nm), (3.5, 4.0));
    }

    #[test]
    fn truncated_and_bit_flipped_files_read_or_fail_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.csv");
        let picks: Vec<PickEntry> = (0..6)
            .map(|k| entry(100.0 * k as f64, PickState::Accepted, k % 2 == 0))
            .collect();
        write(
            &good,
            &picks,
            Positions::Image {
                pixel_nm: Some(8.0),
            },
        )
        .unwrap();
        let bytes = std::fs::read(&good).unwrap();
        let bad = dir.path().join("bad.csv");
        let check = |b: &[u8]| {
            std::fs::write(&bad, b).unwrap();
            if let Ok(back) = read(
                &bad,
                Positions::Image {
                    pixel_nm: Some(8.0),
                },
            ) {
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
            ("0,,2,3,accepted,false\n", "no position"),
            ("0,1,2,3,maybe,false\n", "unknown state"),
            ("0,1,2\n", "row 1"),
        ] {
            std::fs::write(&path, format!("{head}{body}")).unwrap();
            let e = read(&path, Positions::Nm).unwrap_err();
            assert!(e.contains(expect), "{body}: {e}");
        }
    }
}
