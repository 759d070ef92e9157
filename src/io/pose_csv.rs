//! The pose CSV schema, defined once: every CSV that PoseScope writes —
//! `synth` truth, `fit` results, the viewer's result table — goes through
//! [`write_pose_csv`], so the columns are the same everywhere:
//!
//! `[file,] frame, qw, qx, qy, qz, axis_x, axis_y, axis_z, rot_deg, tilt_deg,
//! psi_deg, shift_x, shift_y, sigma, score, [extra columns…]`
//!
//! The quaternion rotates model coordinates into the camera frame
//! (x right, y down, z into the screen); the axis is `R·(0,0,1)`; the Euler
//! angles are intrinsic ZYZ in degrees (see [`crate::geometry`]); the shift is
//! in pixels from the image centre; `sigma` is the PSF σ in pixels. A missing
//! value (e.g. `score` in a truth file) is written as an empty field.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::Path;

use super::atomic::{atomic_write, OutputError};
use crate::geometry::{Pose, Quat};

/// The standard columns, in order, after the optional `file` column.
pub const POSE_COLUMNS: [&str; 15] = [
    "frame", "qw", "qx", "qy", "qz", "axis_x", "axis_y", "axis_z", "rot_deg", "tilt_deg",
    "psi_deg", "shift_x", "shift_y", "sigma", "score",
];

/// One row of a pose CSV.
#[derive(Clone, Debug, PartialEq)]
pub struct PoseRow {
    /// Source file, when results span several files.
    pub file: Option<String>,
    /// Frame index within the file, from 0.
    pub frame: usize,
    /// Rotation and shift.
    pub pose: Pose,
    /// PSF σ in pixels (NaN when unknown).
    pub sigma: f64,
    /// Fit score (NaN when there is none, e.g. ground truth).
    pub score: f64,
    /// Further named columns, written after the standard ones.
    pub extra: Vec<(String, String)>,
}

impl PoseRow {
    /// A row recording that `frame` could not be fitted: no pose, and the
    /// reason in the `error` column.
    pub fn failed(frame: usize, error: impl ToString) -> Self {
        let mut row = Self::new(frame, Pose::new(Quat::NAN, [f64::NAN; 2]), f64::NAN);
        row.set("error", error);
        row
    }

    /// A row with no file, score or extra columns.
    pub fn new(frame: usize, pose: Pose, sigma: f64) -> Self {
        Self {
            file: None,
            frame,
            pose,
            sigma,
            score: f64::NAN,
            extra: Vec::new(),
        }
    }

    /// The value of an extra column.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.extra
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Adds (or replaces) an extra column.
    pub fn set(&mut self, name: &str, value: impl ToString) {
        debug_assert!(
            name != "file" && !POSE_COLUMNS.contains(&name),
            "'{name}' is a standard column, not an extra"
        );
        match self.extra.iter_mut().find(|(k, _)| k == name) {
            Some((_, v)) => *v = value.to_string(),
            None => self.extra.push((name.to_string(), value.to_string())),
        }
    }
}

fn num(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        String::new()
    }
}

/// Writes rows as a pose CSV (atomically). Extra columns are the union over
/// all rows, in order of first appearance; a row without one leaves it empty.
pub fn write_pose_csv(path: &Path, rows: &[PoseRow]) -> Result<(), OutputError> {
    let with_file = rows.iter().any(|r| r.file.is_some());
    let mut extra_names: Vec<&str> = Vec::new();
    let mut seen = BTreeSet::new();
    for r in rows {
        for (k, _) in &r.extra {
            if seen.insert(k.as_str()) {
                extra_names.push(k);
            }
        }
    }
    let csv_err = |e: csv::Error| OutputError::Csv {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    atomic_write(path, |w| {
        let mut out = csv::Writer::from_writer(w);
        let mut header: Vec<&str> = Vec::new();
        if with_file {
            header.push("file");
        }
        header.extend(POSE_COLUMNS);
        header.extend(&extra_names);
        out.write_record(&header).map_err(csv_err)?;
        for r in rows {
            let q = r.pose.q.canonical();
            let axis = q.axis();
            let (rot, tilt, psi) = q.to_euler_zyz();
            let mut rec: Vec<String> = Vec::with_capacity(header.len());
            if with_file {
                rec.push(r.file.clone().unwrap_or_default());
            }
            rec.push(r.frame.to_string());
            rec.extend([q.w, q.x, q.y, q.z].map(num));
            rec.extend(axis.map(num));
            rec.extend([rot, tilt, psi].map(|a| num(a.to_degrees())));
            rec.extend([r.pose.shift[0], r.pose.shift[1], r.sigma, r.score].map(num));
            for name in &extra_names {
                rec.push(r.get(name).unwrap_or("").to_string());
            }
            out.write_record(&rec).map_err(csv_err)?;
        }
        out.flush().map_err(|e| OutputError::Io {
            path: path.to_path_buf(),
            cause: e,
        })
    })
}

/// Reads a pose CSV. The quaternion columns are required; `frame` defaults to
/// the row number; derived columns (axis, Euler angles) are recomputed from
/// the quaternion and not kept; unknown columns land in `extra`.
pub fn read_pose_csv(path: &Path) -> Result<Vec<PoseRow>, OutputError> {
    let err = |message: String| OutputError::Csv {
        path: path.to_path_buf(),
        message,
    };
    let file = File::open(path).map_err(|source| OutputError::Io {
        path: path.to_path_buf(),
        cause: source,
    })?;
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(file);
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| err(e.to_string()))?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let (Some(iw), Some(ix), Some(iy), Some(iz)) = (col("qw"), col("qx"), col("qy"), col("qz"))
    else {
        return Err(err("missing quaternion columns qw, qx, qy, qz".into()));
    };
    let derived = [
        "axis_x", "axis_y", "axis_z", "rot_deg", "tilt_deg", "psi_deg",
    ];
    let mut rows = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| err(format!("line {line}: {e}")))?;
        let field = |j: Option<usize>| j.and_then(|j| rec.get(j)).unwrap_or("");
        let parse = |name: &str, j: Option<usize>, default: f64| -> Result<f64, OutputError> {
            let s = field(j);
            if s.is_empty() || s.eq_ignore_ascii_case("nan") {
                return Ok(default);
            }
            s.parse::<f64>()
                .map_err(|_| err(format!("line {line}: column {name}: '{s}' is not a number")))
        };
        let w = parse("qw", Some(iw), f64::NAN)?;
        let x = parse("qx", Some(ix), f64::NAN)?;
        let y = parse("qy", Some(iy), f64::NAN)?;
        let z = parse("qz", Some(iz), f64::NAN)?;
        let failed = !field(col("error")).is_empty();
        let q = match Quat::try_new(w, x, y, z) {
            Some(q) => q,
            // a row that records a failure carries no pose
            None if failed => Quat::NAN,
            None => {
                return Err(err(format!(
                    "line {line}: quaternion ({w}, {x}, {y}, {z}) is not a rotation"
                )))
            }
        };
        let frame = match col("frame") {
            Some(j) => field(Some(j)).parse::<usize>().map_err(|_| {
                err(format!(
                    "line {line}: column frame: '{}' is not a frame number",
                    field(Some(j))
                ))
            })?,
            None => i,
        };
        let shift = [
            parse("shift_x", col("shift_x"), 0.0)?,
            parse("shift_y", col("shift_y"), 0.0)?,
        ];
        let mut row = PoseRow {
            file: col("file").map(|j| field(Some(j)).to_string()),
            frame,
            pose: Pose::new(q, shift),
            sigma: parse("sigma", col("sigma"), f64::NAN)?,
            score: parse("score", col("score"), f64::NAN)?,
            extra: Vec::new(),
        };
        for (j, h) in header.iter().enumerate() {
            let known =
                POSE_COLUMNS.contains(&h.as_str()) || h == "file" || derived.contains(&h.as_str());
            if !known {
                row.extra.push((h.clone(), field(Some(j)).to_string()));
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pose_csv_round_trip_keeps_poses_and_extras() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("poses.csv");
        let mut a = PoseRow::new(
            0,
            Pose::new(Quat::from_euler_zyz(0.3, 1.1, -0.4), [1.5, -2.0]),
            1.6,
        );
        a.score = 0.93;
        a.set("major_radius_px", 20.0);
        let mut b = PoseRow::new(
            1,
            Pose::new(Quat::new(-0.5, 0.5, -0.5, 0.5), [0.0, 3.25]),
            2.0,
        );
        b.file = Some("b.tif".into());
        write_pose_csv(&path, &[a.clone(), b.clone()]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let header = text.lines().next().unwrap();
        assert!(header.starts_with("file,frame,qw,qx,qy,qz,axis_x,axis_y,axis_z,rot_deg,tilt_deg,psi_deg,shift_x,shift_y,sigma,score,major_radius_px"), "{header}");
        let back = read_pose_csv(&path).unwrap();
        assert_eq!(back.len(), 2);
        assert!(back[0].pose.q.angle_to(a.pose.q) < 1e-12);
        assert!(back[1].pose.q.angle_to(b.pose.q) < 1e-12);
        assert_eq!(back[0].pose.shift, a.pose.shift);
        assert_eq!(back[0].score, 0.93);
        assert!(back[1].score.is_nan(), "missing score reads back as NaN");
        assert_eq!(back[0].get("major_radius_px"), Some("20"));
        assert_eq!(back[1].get("major_radius_px"), Some(""));
        assert_eq!(back[1].file.as_deref(), Some("b.tif"));
        // no temp file left behind
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn malformed_csv_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.csv");
        std::fs::write(&path, "frame,qw,qx,qy,qz\n0,1,0,0,0\n1,abc,0,0,0\n").unwrap();
        let e = read_pose_csv(&path).unwrap_err().to_string();
        assert!(
            e.contains("bad.csv") && e.contains("line 3") && e.contains("qw"),
            "{e}"
        );
        std::fs::write(&path, "frame,a,b\n0,1,2\n").unwrap();
        let e = read_pose_csv(&path).unwrap_err().to_string();
        assert!(e.contains("missing quaternion"), "{e}");
        std::fs::write(&path, "qw,qx,qy,qz\n0,0,0,0\n").unwrap();
        assert!(read_pose_csv(&path)
            .unwrap_err()
            .to_string()
            .contains("not a rotation"));
    }
}
