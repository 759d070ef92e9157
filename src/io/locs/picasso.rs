//! Picasso's localisation files: an HDF5 file whose dataset `/locs` is a
//! compound record per localisation (`frame` u4, `x`, `y` f4 in camera
//! pixels, `lpx`, `lpy` precision in camera pixels, `photons`, … and, when
//! present, `z`/`lpz` in nm and `group`), and a sidecar `NAME.yaml` with
//! several YAML documents, one of which holds `Width`, `Height`, `Frames`
//! and `Pixelsize` (nm).
//!
//! Read with hdf5-pure (pure Rust; chosen against rust-hdf5, hdf5-reader
//! and hdf5-metno on Picasso-dtype files: the only one with no system
//! library, no crash on 300 corrupted files and windowed row reads; see
//! docs/ARCHITECTURE.md), 65 536 rows at a time, keeping only the columns
//! PoseScope uses. Without the sidecar the pixel size must be given; the
//! error says so (a common trap for Picasso users).

use std::path::{Path, PathBuf};

use hdf5_pure::{CompoundTypeBuilder, Datatype, DatatypeByteOrder, File, FileBuilder};

use super::{too_many_rows, LocTable, TableOptions};
use crate::io::IoError;

/// Rows decoded per read.
const WINDOW: u64 = 65_536;

/// The sidecar of `path`: the same name with `.yaml`.
pub fn sidecar(path: &Path) -> PathBuf {
    path.with_extension("yaml")
}

/// What the sidecar states.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sidecar {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub frames: Option<u64>,
    pub pixel_size_nm: Option<f64>,
}

/// Reads the multi-document sidecar; a key stated twice with different
/// values is an error.
pub fn read_sidecar(path: &Path) -> Result<Sidecar, IoError> {
    let text = std::fs::read_to_string(path).map_err(|e| IoError::io(path, e))?;
    let docs = yaml_rust2::YamlLoader::load_from_str(&text)
        .map_err(|e| IoError::corrupt(path, format!("not valid YAML: {e}")))?;
    let mut s = Sidecar::default();
    let mut seen: Vec<(&str, f64)> = Vec::new();
    for doc in &docs {
        for key in ["Width", "Height", "Frames", "Pixelsize"] {
            let v = &doc[key];
            let Some(v) = v.as_i64().map(|i| i as f64).or_else(|| v.as_f64()) else {
                continue;
            };
            if let Some(&(_, old)) = seen.iter().find(|(k, _)| *k == key) {
                if old != v {
                    return Err(IoError::corrupt(
                        path,
                        format!("contradictory {key}: {old} in one document, {v} in another"),
                    ));
                }
            }
            seen.push((key, v));
            let ok = v.is_finite() && v > 0.0;
            match key {
                "Width" if ok && v <= f64::from(u32::MAX) => s.width = Some(v as u32),
                "Height" if ok && v <= f64::from(u32::MAX) => s.height = Some(v as u32),
                "Frames" if ok => s.frames = Some(v as u64),
                "Pixelsize" if ok && v < 1e6 => s.pixel_size_nm = Some(v),
                _ => {
                    return Err(IoError::corrupt(
                        path,
                        format!("{key}: {v} is not a usable value"),
                    ))
                }
            }
        }
    }
    Ok(s)
}

/// HDF5 files up to this size are read into memory whole, bytes.
const IN_MEMORY_BYTES: u64 = 64 << 20;

/// How many times its file's size a table's rows may be (compression).
const MAX_EXPANSION: u64 = 64;

/// Largest `/locs` record accepted, bytes.
const MAX_RECORD_BYTES: usize = 4096;

/// One field of the compound record.
#[derive(Clone, Copy, Debug)]
struct Field {
    offset: usize,
    size: usize,
    float: bool,
    signed: bool,
    little: bool,
}

impl Field {
    fn of(dt: &Datatype, offset: u64) -> Option<Field> {
        let (size, float, signed, order) = match dt {
            Datatype::FloatingPoint {
                size, byte_order, ..
            } => (*size, true, true, *byte_order),
            Datatype::FixedPoint {
                size,
                byte_order,
                layout,
            } => (*size, false, layout.signed, *byte_order),
            _ => return None,
        };
        matches!(size, 1 | 2 | 4 | 8).then_some(Field {
            offset: offset as usize,
            size: size as usize,
            float,
            signed,
            little: order == DatatypeByteOrder::LittleEndian,
        })
    }

    /// The value in record `r` (which holds at least `offset + size` bytes).
    fn get(&self, r: &[u8]) -> f64 {
        let mut b = [0u8; 8];
        let src = &r[self.offset..self.offset + self.size];
        if self.little {
            b[..self.size].copy_from_slice(src);
        } else {
            for (d, s) in b[..self.size].iter_mut().zip(src.iter().rev()) {
                *d = *s;
            }
        }
        let u = u64::from_le_bytes(b);
        match (self.float, self.size, self.signed) {
            (true, 4, _) => f64::from(f32::from_bits(u as u32)),
            (true, 8, _) => f64::from_bits(u),
            (true, _, _) => f64::NAN,
            (false, n, true) => {
                let shift = 64 - 8 * n as u32;
                (((u << shift) as i64) >> shift) as f64
            }
            (false, _, false) => u as f64,
        }
    }
}

/// Reads `/locs` and its sidecar.
pub(super) fn read(path: &Path, opts: &TableOptions) -> Result<LocTable, IoError> {
    let h5 = |e: hdf5_pure::Error| IoError::corrupt(path, format!("HDF5: {e}"));
    // a panic inside the HDF5 reader is ours too: a clear per-file error
    // Files up to IN_MEMORY_BYTES are read whole: hdf5-pure then checks every
    // address against the bytes it holds, where its streaming reader allocates
    // what a (corrupt) address asks for before finding the file too short
    // (fuzz_locs_hdf5 found 2.6 GB asked by a 2.7 kB file). Larger files stream.
    let small = std::fs::metadata(path)
        .map(|m| m.len() <= IN_MEMORY_BYTES)
        .unwrap_or(false);
    let file = crate::io::guard(path, "HDF5", || {
        if small {
            File::open(path).map_err(h5)
        } else {
            File::open_streaming(path).map_err(h5)
        }
    })?;
    let ds = file.dataset("locs").map_err(|e| {
        IoError::unsupported(
            path,
            format!("no /locs dataset, so not a Picasso localisation file ({e})"),
        )
    })?;
    let Datatype::Compound { size, members } = ds.datatype().map_err(h5)? else {
        return Err(IoError::unsupported(
            path,
            "/locs is not a compound (record) dataset",
        ));
    };
    let shape = ds.shape().map_err(h5)?;
    let rows = match shape.as_slice() {
        [n] => *n,
        other => {
            return Err(IoError::unsupported(
                path,
                format!("/locs has shape {other:?}; a 1-D table was expected"),
            ))
        }
    };
    if rows > opts.limits.max_rows as u64 {
        return Err(too_many_rows(path, rows, &opts.limits));
    }
    let record = size as usize;
    // Picasso's records are under 100 bytes; a corrupt header claiming huge
    // ones would make each window of rows a multi-gigabyte read
    if record == 0 || record > MAX_RECORD_BYTES {
        return Err(IoError::Corrupt {
            path: path.to_path_buf(),
            detail: format!(
                "/locs records of {record} bytes (a localisation table's are under {MAX_RECORD_BYTES})"
            ),
        });
    }
    // the rows cannot hold more than the file does (allowing for compression):
    // a header claiming gigabytes in a small file is refused before any read,
    // as hdf5-pure would allocate what the header claims
    let file_len = std::fs::metadata(path)
        .map_err(|e| IoError::io(path, e))?
        .len();
    let claimed = rows.saturating_mul(record as u64);
    if claimed > file_len.saturating_mul(MAX_EXPANSION) + (1 << 20) {
        return Err(IoError::Corrupt {
            path: path.to_path_buf(),
            detail: format!(
                "/locs claims {rows} rows of {record} bytes ({} MB) in a file of {} kB",
                claimed >> 20,
                file_len >> 10
            ),
        });
    }
    let field = |name: &str| {
        members
            .iter()
            .find(|m| m.name == name)
            .and_then(|m| Field::of(&m.datatype, m.byte_offset))
            .filter(|f| f.offset + f.size <= record)
    };
    let names: Vec<String> = members.iter().map(|m| m.name.clone()).collect();
    let (Some(fx), Some(fy)) = (field("x"), field("y")) else {
        return Err(IoError::unsupported(
            path,
            format!(
                "/locs has no x and y fields; fields found: {}",
                names.join(", ")
            ),
        ));
    };
    let side = sidecar(path);
    let meta = if side.exists() {
        read_sidecar(&side)?
    } else {
        Sidecar::default()
    };
    let mut warnings = Vec::new();
    let px = match (meta.pixel_size_nm, opts.pixel_size_nm) {
        (Some(p), Some(given)) if (p - given).abs() > 1e-9 * p => {
            warnings.push(format!(
                "pixel size {given} nm given; the sidecar says {p} nm: using {given} nm"
            ));
            given
        }
        (Some(p), _) => p,
        (None, Some(given)) => given,
        (None, None) => {
            let why = if side.exists() {
                format!("its sidecar {} states no Pixelsize", side.display())
            } else {
                format!(
                    "its sidecar {} is missing (Picasso keeps the pixel size there)",
                    side.display()
                )
            };
            return Err(IoError::NeedsPixelSize {
                path: path.to_path_buf(),
                detail: format!(
                    "x and y are in camera pixels but {why}; give the pixel size in nm \
                     (--pixel-size, or in the open dialog)"
                ),
            });
        }
    };
    let fz = field("z");
    let (flpz, flpx, flpy, fframe, fphot, fgroup) = (
        // an axial precision only means something beside a z
        field("lpz").filter(|_| fz.is_some()),
        field("lpx"),
        field("lpy"),
        field("frame"),
        field("photons"),
        field("group"),
    );
    let mut t = LocTable {
        path: path.to_path_buf(),
        format: "Picasso HDF5",
        pixel_size_nm: Some(px),
        camera_px: meta.width.zip(meta.height),
        frames: meta.frames,
        columns: names,
        z_nm: fz.map(|_| Vec::new()),
        precision_z_nm: flpz.map(|_| Vec::new()),
        precision_nm: flpx.map(|_| Vec::new()),
        frame: fframe.map(|_| Vec::new()),
        photons: fphot.map(|_| Vec::new()),
        group: fgroup.map(|_| Vec::new()),
        warnings,
        ..LocTable::default()
    };
    let cap = usize::try_from(rows).unwrap_or(usize::MAX);
    t.x_nm.reserve(cap);
    t.y_nm.reserve(cap);
    let pxf = px as f32;
    let mut start = 0u64;
    while start < rows {
        let count = WINDOW.min(rows - start);
        let raw = crate::io::guard(path, "HDF5 rows", || {
            ds.read_raw_rows(start, count).map_err(h5)
        })?;
        if raw.len() < record * count as usize {
            return Err(IoError::truncated(
                path,
                format!("/locs rows {start}..{}: too few bytes", start + count),
            ));
        }
        for r in raw.chunks_exact(record).take(count as usize) {
            let (x, y) = (fx.get(r), fy.get(r));
            // precision: the mean of lpx and lpy (camera px)
            let lp = flpx.map(|f| {
                let a = f.get(r);
                flpy.map_or(a, |g| 0.5 * (a + g.get(r)))
            });
            if !x.is_finite() || !y.is_finite() || lp.is_some_and(|v| !(v.is_finite() && v >= 0.0))
            {
                t.skipped_rows += 1;
                continue;
            }
            t.x_nm.push(x as f32 * pxf);
            t.y_nm.push(y as f32 * pxf);
            if let (Some(v), Some(f)) = (&mut t.z_nm, fz) {
                v.push(f.get(r) as f32); // Picasso's z is in nm already
            }
            if let (Some(v), Some(f)) = (&mut t.precision_z_nm, flpz) {
                // in nm like z; a bad one is unknown, not a reason to drop the row
                let p = f.get(r);
                v.push(if p.is_finite() && p > 0.0 {
                    p as f32
                } else {
                    f32::NAN
                });
            }
            if let (Some(v), Some(lp)) = (&mut t.precision_nm, lp) {
                v.push(lp as f32 * pxf);
            }
            if let (Some(v), Some(f)) = (&mut t.frame, fframe) {
                v.push(f.get(r).clamp(0.0, f64::from(u32::MAX)) as u32);
            }
            if let (Some(v), Some(f)) = (&mut t.photons, fphot) {
                v.push(f.get(r) as f32);
            }
            if let (Some(v), Some(f)) = (&mut t.group, fgroup) {
                v.push(f.get(r) as i32);
            }
        }
        start += count;
    }
    if t.skipped_rows > 0 {
        t.warnings.push(super::skipped_note(
            t.skipped_rows,
            "non-finite x, y or precision",
        ));
    }
    Ok(t)
}

/// A localisation in Picasso's units, for [`write()`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PicassoLoc {
    pub frame: u32,
    /// Camera pixels.
    pub x: f32,
    pub y: f32,
    pub photons: f32,
    /// PSF width (camera px).
    pub sx: f32,
    pub sy: f32,
    pub bg: f32,
    /// Precision (camera px).
    pub lpx: f32,
    pub lpy: f32,
    /// z and its precision, for a 3D table: written as Picasso's 3D files
    /// hold them, `z` and `lpz` in nm.
    pub z: Option<AxialLoc>,
}

/// The axial part of a [`PicassoLoc`], nm.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AxialLoc {
    pub z: f32,
    /// Axial precision (1σ); NaN where unknown (read back as unknown).
    pub lpz: f32,
}

/// Writes `locs` as Picasso does: `/locs` with Picasso's field names and
/// types (`frame` u4, then f4; `z` and `lpz` when the localisations have a
/// z), and the YAML sidecar with `Width`, `Height`, `Frames` and
/// `Pixelsize`. Both atomically. The localisations must all have a z or
/// all have none.
pub fn write(
    path: &Path,
    locs: &[PicassoLoc],
    meta: &Sidecar,
    generator: &str,
) -> Result<(), crate::io::OutputError> {
    write_grouped(path, locs, None, meta, generator)
}

/// [`write()`] with Picasso's `group` column (i4) when `groups` is given: the
/// format of Picasso's "picked" files, one group per pick.
pub fn write_grouped(
    path: &Path,
    locs: &[PicassoLoc],
    groups: Option<&[i32]>,
    meta: &Sidecar,
    generator: &str,
) -> Result<(), crate::io::OutputError> {
    if groups.is_some_and(|g| g.len() != locs.len()) {
        return Err(crate::io::OutputError::Invalid(format!(
            "{}: one group per localisation is needed",
            path.display()
        )));
    }
    let with_z = locs.first().is_some_and(|l| l.z.is_some());
    if locs.iter().any(|l| l.z.is_some() != with_z) {
        return Err(crate::io::OutputError::Invalid(format!(
            "{}: some localisations have a z and some do not",
            path.display()
        )));
    }
    let mut builder = CompoundTypeBuilder::new()
        .u32_field("frame")
        .f32_field("x")
        .f32_field("y")
        .f32_field("photons")
        .f32_field("sx")
        .f32_field("sy")
        .f32_field("bg")
        .f32_field("lpx")
        .f32_field("lpy");
    if with_z {
        builder = builder.f32_field("z").f32_field("lpz");
    }
    if groups.is_some() {
        builder = builder.i32_field("group");
    }
    let dt = builder.build().map_err(|e| crate::io::OutputError::Io {
        path: path.to_path_buf(),
        cause: std::io::Error::other(e.to_string()),
    })?;
    let mut raw = Vec::with_capacity(locs.len() * 48);
    for (k, l) in locs.iter().enumerate() {
        raw.extend(l.frame.to_le_bytes());
        for v in [l.x, l.y, l.photons, l.sx, l.sy, l.bg, l.lpx, l.lpy] {
            raw.extend(v.to_le_bytes());
        }
        if let Some(a) = l.z {
            raw.extend(a.z.to_le_bytes());
            raw.extend(a.lpz.to_le_bytes());
        }
        if let Some(g) = groups {
            raw.extend(g[k].to_le_bytes());
        }
    }
    let mut fb = FileBuilder::new();
    fb.create_dataset("locs")
        .with_compound_data(dt, raw, locs.len() as u64);
    let bytes = fb.finish().map_err(|e| crate::io::OutputError::Io {
        path: path.to_path_buf(),
        cause: std::io::Error::other(e.to_string()),
    })?;
    crate::io::atomic_write(path, |w| {
        use std::io::Write;
        w.write_all(&bytes).map_err(|e| crate::io::OutputError::Io {
            path: path.to_path_buf(),
            cause: e,
        })
    })?;
    let mut yaml = String::from("Byte Order: <\nData Type: uint16\n");
    let mut line = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            yaml.push_str(&format!("{k}: {v}\n"));
        }
    };
    line("Frames", meta.frames.map(|v| v.to_string()));
    line("Height", meta.height.map(|v| v.to_string()));
    line("Width", meta.width.map(|v| v.to_string()));
    yaml.push_str(&format!("---\nGenerated by: {generator}\n"));
    if let Some(p) = meta.pixel_size_nm {
        yaml.push_str(&format!("Pixelsize: {p}\n"));
    }
    let side = sidecar(path);
    crate::io::atomic_write(&side, |w| {
        use std::io::Write;
        w.write_all(yaml.as_bytes())
            .map_err(|e| crate::io::OutputError::Io {
                path: side.clone(),
                cause: e,
            })
    })
}
