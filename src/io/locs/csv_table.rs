//! CSV and TSV localisation tables: ThunderSTORM's (`"x [nm]"`, …), Zeiss
//! ZEN's (Elyra: `Position X [nm]`, tab-separated), SMAP's (`xnm`), the SMLM
//! challenge's (`xnano`), ONI's (`X (nm)`) and any plain table whose headers name x and y (see `columns`). Rows with a
//! missing, unparsable or non-finite x, y or precision are skipped and
//! counted; the error for a table without x or y lists the columns found.

use std::path::Path;

use super::columns::{dialect, parse_header, Header, Quantity, Unit};
use super::{too_many_rows, LocTable, TableOptions};
use crate::io::IoError;

/// Reads a CSV (comma) or TSV (tab: sniffed from the header line) table.
pub(super) fn read(path: &Path, opts: &TableOptions) -> Result<LocTable, IoError> {
    let file = std::fs::File::open(path).map_err(|e| IoError::io(path, e))?;
    let mut first = String::new();
    {
        use std::io::BufRead;
        let mut r = std::io::BufReader::new(&file);
        r.read_line(&mut first)
            .map_err(|e| IoError::read(path, "the header line", e))?;
    }
    if first.contains('\0') {
        return Err(IoError::UnknownFormat {
            path: path.to_path_buf(),
            detail: "binary data, not a CSV/TSV localisation table or Picasso HDF5".into(),
        });
    }
    let delimiter = if first.contains('\t') { b'\t' } else { b',' };
    let file = std::fs::File::open(path).map_err(|e| IoError::io(path, e))?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(std::io::BufReader::with_capacity(1 << 20, file));
    let headers: Vec<Header> = reader
        .headers()
        .map_err(|e| IoError::corrupt(path, format!("header line: {e}")))?
        .iter()
        .map(parse_header)
        .collect();
    let found = || {
        headers
            .iter()
            .map(|h| h.raw.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let col = |q: Quantity| headers.iter().position(|h| h.quantity == Some(q));
    let (Some(xi), Some(yi)) = (col(Quantity::X), col(Quantity::Y)) else {
        return Err(IoError::unsupported(
            path,
            format!(
                "no x and y columns (looked for x/y with a unit such as \"x [nm]\", x_nm or \
                 x_px); columns found: {}",
                found()
            ),
        ));
    };
    let mut table = LocTable {
        path: path.to_path_buf(),
        format: dialect(&headers).unwrap_or(if delimiter == b'\t' { "TSV" } else { "CSV" }),
        pixel_size_nm: opts.pixel_size_nm,
        columns: headers.iter().map(|h| h.raw.clone()).collect(),
        ..LocTable::default()
    };
    let scale = |i: usize, table: &mut LocTable| -> Result<f32, IoError> {
        let h = &headers[i];
        if h.unit == Unit::None {
            table
                .warnings
                .push(format!("column \"{}\" states no unit: read as nm", h.raw));
        }
        h.unit
            .to_nm(opts.pixel_size_nm)
            .map(|f| f as f32)
            .ok_or_else(|| IoError::NeedsPixelSize {
                path: path.to_path_buf(),
                detail: format!(
                    "column \"{}\" is in camera pixels and no pixel size was given (--pixel-size, \
                     in nm)",
                    h.raw
                ),
            })
    };
    let sx = scale(xi, &mut table)?;
    let sy = if headers[yi].unit == headers[xi].unit {
        sx
    } else {
        scale(yi, &mut table)?
    };
    let zi = col(Quantity::Z);
    let pi = col(Quantity::Precision);
    let sz = zi.map(|i| scale(i, &mut table)).transpose()?;
    let sp = pi.map(|i| scale(i, &mut table)).transpose()?;
    // an axial precision only means something beside a z
    let pzi = col(Quantity::PrecisionZ).filter(|_| zi.is_some());
    let spz = pzi.map(|i| scale(i, &mut table)).transpose()?;
    let fi = col(Quantity::Frame);
    let phi = col(Quantity::Photons);
    let gi = col(Quantity::Group);
    table.warnings.dedup();
    let mut z = zi.map(|_| Vec::new());
    let mut prec = pi.map(|_| Vec::new());
    let mut prec_z = pzi.map(|_| Vec::new());
    let mut frame = fi.map(|_| Vec::new());
    let mut photons = phi.map(|_| Vec::new());
    let mut group = gi.map(|_| Vec::new());
    let mut record = csv::StringRecord::new();
    let num = |r: &csv::StringRecord, i: usize| -> Option<f64> { r.get(i)?.parse::<f64>().ok() };
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                // a broken line (e.g. invalid UTF-8) is skipped like any bad row
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    return Err(IoError::corrupt(path, format!("reading rows: {e}")));
                }
                table.skipped_rows += 1;
                continue;
            }
        }
        let (Some(x), Some(y)) = (num(&record, xi), num(&record, yi)) else {
            table.skipped_rows += 1;
            continue;
        };
        let p = pi.map(|i| num(&record, i));
        if !x.is_finite()
            || !y.is_finite()
            || p.is_some_and(|p| !p.is_some_and(|v| v.is_finite() && v >= 0.0))
        {
            table.skipped_rows += 1;
            continue;
        }
        if table.x_nm.len() >= opts.limits.max_rows {
            return Err(too_many_rows(
                path,
                table.x_nm.len() as u64 + 1,
                &opts.limits,
            ));
        }
        table.x_nm.push(x as f32 * sx);
        table.y_nm.push(y as f32 * sy);
        if let (Some(v), Some(i), Some(s)) = (&mut z, zi, sz) {
            v.push(num(&record, i).map_or(f32::NAN, |z| z as f32 * s));
        }
        if let (Some(v), Some(p), Some(s)) = (&mut prec, p.flatten(), sp) {
            v.push(p as f32 * s);
        }
        if let (Some(v), Some(i), Some(s)) = (&mut prec_z, pzi, spz) {
            // a bad axial precision is unknown, not a reason to drop the row
            let p = num(&record, i).filter(|p| p.is_finite() && *p > 0.0);
            v.push(p.map_or(f32::NAN, |p| p as f32 * s));
        }
        if let (Some(v), Some(i)) = (&mut frame, fi) {
            v.push(
                num(&record, i)
                    .filter(|f| *f >= 0.0 && *f < f64::from(u32::MAX))
                    .map_or(0, |f| f as u32),
            );
        }
        if let (Some(v), Some(i)) = (&mut photons, phi) {
            v.push(num(&record, i).map_or(f32::NAN, |p| p as f32));
        }
        if let (Some(v), Some(i)) = (&mut group, gi) {
            v.push(num(&record, i).map_or(-1, |g| g as i32));
        }
    }
    table.z_nm = z;
    table.precision_nm = prec;
    table.precision_z_nm = prec_z;
    table.frame = frame;
    table.photons = photons;
    table.group = group;
    if table.skipped_rows > 0 {
        table.warnings.push(super::skipped_note(
            table.skipped_rows,
            "missing, unparsable or non-finite x, y or precision",
        ));
    }
    Ok(table)
}
