//! OBJ and CSV point-cloud readers.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek};
use std::path::Path;

use super::{coord_f32, parse_unit, weight_f32, RawCloud, ShapeError, Units, MAX_LOADED_POINTS};

fn io_err(path: &Path, e: io::Error) -> ShapeError {
    ShapeError::Io {
        action: "read",
        path: path.to_path_buf(),
        source: e,
    }
}

fn at(path: &Path, line: u64, msg: impl Into<String>) -> ShapeError {
    ShapeError::Parse {
        path: path.to_path_buf(),
        line,
        message: msg.into(),
    }
}

fn whole(path: &Path, msg: impl Into<String>) -> ShapeError {
    ShapeError::Format {
        path: path.to_path_buf(),
        message: msg.into(),
    }
}

fn too_many(path: &Path) -> ShapeError {
    whole(path, format!("more than {MAX_LOADED_POINTS} points"))
}

/// Reads `v x y z` lines of a Wavefront OBJ file; everything else is ignored
/// except a `# units nm` comment.
pub(super) fn read_obj(path: &Path) -> Result<RawCloud, ShapeError> {
    let file = File::open(path).map_err(|e| io_err(path, e))?;
    let mut r = BufReader::new(file);
    let mut units = (Units::Px, 1.0);
    let mut raw = Vec::new();
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        if r.read_until(b'\n', &mut buf).map_err(|e| io_err(path, e))? == 0 {
            break;
        }
        line_no += 1;
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim();
        if let Some(comment) = line.strip_prefix('#') {
            let parts: Vec<&str> = comment
                .split(|c: char| c.is_whitespace() || c == '=' || c == ':')
                .filter(|s| !s.is_empty())
                .collect();
            if let ["units" | "unit", u, ..] = parts.as_slice() {
                units = parse_unit(u).ok_or_else(|| {
                    at(
                        path,
                        line_no,
                        format!("unknown units '{u}' (expected px, nm or um)"),
                    )
                })?;
            }
            continue;
        }
        let mut tok = line.split_whitespace();
        if tok.next() != Some("v") {
            continue;
        }
        let mut p = [0.0f64; 3];
        for (k, axis) in ["x", "y", "z"].iter().enumerate() {
            let t = tok
                .next()
                .ok_or_else(|| at(path, line_no, format!("vertex has no {axis} coordinate")))?;
            p[k] = t.parse().map_err(|_| {
                at(
                    path,
                    line_no,
                    format!("{axis} coordinate '{t}' is not a number"),
                )
            })?;
        }
        if raw.len() >= MAX_LOADED_POINTS {
            return Err(too_many(path));
        }
        raw.push((p, line_no));
    }
    let mut points = Vec::with_capacity(raw.len());
    for (p, line) in raw {
        let mut q = [0f32; 3];
        for k in 0..3 {
            q[k] = coord_f32(p[k] * units.1).ok_or_else(|| {
                at(
                    path,
                    line,
                    format!("non-finite or out-of-range coordinate {}", p[k]),
                )
            })?;
        }
        points.push(q);
    }
    let weights = vec![1.0; points.len()];
    Ok(RawCloud {
        points,
        weights,
        units: units.0,
        symmetry: None,
    })
}

/// Splits a header like `x [nm]` (or `x (nm)`) into a lower-case name and a unit.
fn split_header(h: &str) -> (String, String) {
    let h = h.trim().trim_start_matches('\u{feff}').trim();
    for (open, close) in [('[', ']'), ('(', ')')] {
        if let (Some(a), true) = (h.find(open), h.ends_with(close)) {
            let name = h[..a].trim().to_lowercase();
            let unit = h[a + 1..h.len() - 1].trim().to_string();
            return (name, unit);
        }
    }
    (h.to_lowercase(), String::new())
}

/// Reads a CSV/TSV table with `x, y, z[, weight]` columns; see [`super::Model::load`].
pub(super) fn read_csv(path: &Path) -> Result<RawCloud, ShapeError> {
    let mut file = File::open(path).map_err(|e| io_err(path, e))?;
    // Sniff the delimiter from the first line (at most 64 KiB of it).
    let mut first = Vec::new();
    BufReader::new((&mut file).take(64 * 1024))
        .read_until(b'\n', &mut first)
        .map_err(|e| io_err(path, e))?;
    if first.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(whole(
            path,
            "empty file (expected a header row with x, y, z)",
        ));
    }
    let count = |c: u8| first.iter().filter(|&&b| b == c).count();
    let delimiter = [b',', b'\t', b';']
        .into_iter()
        .max_by_key(|&c| (count(c), c == b','))
        .unwrap_or(b',');
    file.rewind().map_err(|e| io_err(path, e))?;
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(BufReader::new(file));
    let csv_err = |e: csv::Error| match e.position() {
        Some(pos) => at(path, pos.line(), e.to_string()),
        None => whole(path, e.to_string()),
    };
    let headers: Vec<(String, String)> = rdr
        .headers()
        .map_err(csv_err)?
        .iter()
        .map(split_header)
        .collect();
    let col = |name: &str| headers.iter().position(|(n, _)| n == name);
    let header_list = || {
        headers
            .iter()
            .map(|(n, u)| {
                if u.is_empty() {
                    n.clone()
                } else {
                    format!("{n} [{u}]")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut idx = [0usize; 3];
    for (k, axis) in ["x", "y", "z"].iter().enumerate() {
        idx[k] = col(axis).ok_or_else(|| {
            whole(
                path,
                format!("missing column '{axis}' (header has: {})", header_list()),
            )
        })?;
    }
    let weight = col("weight");
    // Units: x, y and z must agree.
    let mut units = None;
    for (&i, axis) in idx.iter().zip(["x", "y", "z"]) {
        let u = &headers[i].1;
        let parsed = parse_unit(u).ok_or_else(|| {
            at(
                path,
                1,
                format!("column '{axis}': unknown unit '{u}' (expected px, nm or um)"),
            )
        })?;
        match units {
            None => units = Some(parsed),
            Some(prev) if prev.0 != parsed.0 => {
                return Err(at(path, 1, "x, y and z columns have different units"))
            }
            Some(_) => {}
        }
    }
    let units = units.unwrap_or((Units::Px, 1.0));
    let mut points = Vec::new();
    let mut weights = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        match rdr.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_err(e)),
        }
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(str::is_empty) {
            continue; // blank line
        }
        let field = |i: usize, name: &str| -> Result<f64, ShapeError> {
            let s = record.get(i).unwrap_or("");
            if s.is_empty() {
                return Err(at(path, line, format!("column '{name}' is empty")));
            }
            s.parse::<f64>().map_err(|_| {
                at(
                    path,
                    line,
                    format!("column '{name}': '{s}' is not a number"),
                )
            })
        };
        let mut p = [0f32; 3];
        for (k, axis) in ["x", "y", "z"].iter().enumerate() {
            let v = field(idx[k], axis)?;
            p[k] = coord_f32(v * units.1).ok_or_else(|| {
                at(
                    path,
                    line,
                    format!("column '{axis}': non-finite or out-of-range value {v}"),
                )
            })?;
        }
        let w = match weight {
            Some(i) => {
                let v = field(i, "weight")?;
                weight_f32(v).ok_or_else(|| {
                    at(
                        path,
                        line,
                        format!("column 'weight': must be finite and ≥ 0 (got {v})"),
                    )
                })?
            }
            None => 1.0,
        };
        if points.len() >= MAX_LOADED_POINTS {
            return Err(too_many(path));
        }
        points.push(p);
        weights.push(w);
    }
    Ok(RawCloud {
        points,
        weights,
        units: units.0,
        symmetry: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_units() {
        assert_eq!(split_header("x [nm]"), ("x".into(), "nm".into()));
        assert_eq!(split_header("\u{feff}X"), ("x".into(), "".into()));
        assert_eq!(split_header(" Z (um) "), ("z".into(), "um".into()));
        assert_eq!(
            split_header("intensity [photon]"),
            ("intensity".into(), "photon".into())
        );
    }
}
