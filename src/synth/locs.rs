//! Synthetic SMLM fields: localisation tables of many particles with known
//! centres and orientations, written as other tools write them (Picasso
//! HDF5 + YAML, ThunderSTORM CSV) with a truth CSV.
//!
//! # Model (defaults: CEP152-like tori, R 180 nm, r 40 nm)
//! 1. `particles` centres, uniform in the field, rejected until every pair
//!    is at least `min_gap_diameters` particle diameters apart
//!    (centre to centre, one diameter = 2(R + r));
//! 2. an orientation per particle, uniform on SO(3);
//! 3. `sites` points area-uniformly on the torus surface; each is labelled
//!    with probability `labelling`, and the label sits at the site plus an
//!    isotropic Gaussian linkage error of `linkage_nm`;
//! 4. every label blinks `1 + Poisson(blinks − 1)` times; each blink is a
//!    localisation at the label plus Gaussian error of its own precision,
//!    drawn uniformly from `precision_nm` (z gets `z_error_factor` × that,
//!    twice by default);
//! 5. `background` × (the particle localisations) more, uniform over the
//!    field, with the same precisions;
//! 6. frames uniform in `0..frames`, photons from the precision
//!    (`(PSF σ / precision)²` with a 130 nm PSF σ).
//!
//! Deterministic for a seed (one ChaCha8 stream per particle).

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Poisson};
use serde::{Deserialize, Serialize};

use super::SynthError;
use crate::geometry::Quat;
use crate::io::locs::picasso::{self, AxialLoc, PicassoLoc, Sidecar};
use crate::io::{self, OutputError};
use crate::shapes::{Model, TorusSpec, Units};

/// Settings of a synthetic field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldConfig {
    pub particles: usize,
    pub major_nm: f64,
    pub tube_nm: f64,
    /// Candidate label sites per particle.
    pub sites: usize,
    /// Probability that a site is labelled.
    pub labelling: f64,
    /// Mean localisations per label (at least one).
    pub blinks: f64,
    /// Linkage error (1σ, 3D), nm.
    pub linkage_nm: f64,
    /// Localisation precision range (1σ, lateral), nm.
    pub precision_nm: [f64; 2],
    /// Axial error (1σ) as a multiple of each localisation's lateral precision.
    #[serde(default = "default_z_error_factor")]
    pub z_error_factor: f64,
    /// Background localisations as a fraction of the particles' ones.
    pub background: f64,
    /// Camera pixel size, nm.
    pub pixel_nm: f64,
    /// Camera size in pixels (the field).
    pub field_px: [u32; 2],
    pub frames: u32,
    /// Least centre distance, in particle diameters 2(R + r).
    pub min_gap_diameters: f64,
    pub seed: u64,
}

impl Default for FieldConfig {
    fn default() -> Self {
        Self {
            particles: 24,
            major_nm: 180.0,
            tube_nm: 40.0,
            sites: 120,
            labelling: 0.5,
            blinks: 4.0,
            linkage_nm: 5.0,
            precision_nm: [5.0, 15.0],
            z_error_factor: default_z_error_factor(),
            background: 0.1,
            pixel_nm: 130.0,
            field_px: [128, 128],
            frames: 20_000,
            min_gap_diameters: 2.0,
            seed: 1,
        }
    }
}

fn default_z_error_factor() -> f64 {
    2.0
}

/// One localisation of a field.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FieldLoc {
    pub x_nm: f32,
    pub y_nm: f32,
    pub z_nm: f32,
    pub precision_nm: f32,
    pub frame: u32,
    pub photons: f32,
    /// The particle it came from; −1 for background.
    pub particle: i32,
}

/// A particle's truth.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParticleTruth {
    pub x_nm: f64,
    pub y_nm: f64,
    pub q: Quat,
    pub n_locs: usize,
}

/// A generated field.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub locs: Vec<FieldLoc>,
    pub truth: Vec<ParticleTruth>,
}

/// Generates a field.
pub fn generate_field(cfg: &FieldConfig) -> Result<Field, SynthError> {
    let bad = |m: &str| Err(SynthError::Config(m.to_string()));
    let [p0, p1] = cfg.precision_nm;
    if !(cfg.major_nm > 0.0 && cfg.tube_nm >= 0.0 && cfg.tube_nm < cfg.major_nm) {
        return bad("need 0 ≤ tube < major radius");
    }
    if !(cfg.pixel_nm > 0.0 && p0 > 0.0 && p1 >= p0 && cfg.blinks >= 1.0) {
        return bad("pixel size and precisions must be positive, blinks ≥ 1");
    }
    if !(0.0..=1.0).contains(&cfg.labelling)
        || cfg.background.is_nan()
        || cfg.background < 0.0
        || cfg.frames == 0
    {
        return bad("labelling in [0, 1], background ≥ 0, frames ≥ 1");
    }
    if !(cfg.z_error_factor.is_finite() && cfg.z_error_factor >= 0.0) {
        return bad("the z error factor must be a finite number ≥ 0");
    }
    let size = [
        f64::from(cfg.field_px[0]) * cfg.pixel_nm,
        f64::from(cfg.field_px[1]) * cfg.pixel_nm,
    ];
    let diameter = 2.0 * (cfg.major_nm + cfg.tube_nm);
    let gap = cfg.min_gap_diameters * diameter;
    let margin = diameter;
    if size[0] <= 2.0 * margin || size[1] <= 2.0 * margin {
        return bad("the field is smaller than two particle diameters");
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut centres: Vec<[f64; 2]> = Vec::with_capacity(cfg.particles);
    let mut tries = 0usize;
    while centres.len() < cfg.particles {
        tries += 1;
        if tries > 10_000 * cfg.particles.max(1) {
            return Err(SynthError::Config(format!(
                "cannot place {} particles {:.0} nm apart in a {:.0}×{:.0} nm field",
                cfg.particles, gap, size[0], size[1]
            )));
        }
        let c = [
            rng.random_range(margin..size[0] - margin),
            rng.random_range(margin..size[1] - margin),
        ];
        if centres
            .iter()
            .all(|o| (o[0] - c[0]).hypot(o[1] - c[1]) >= gap)
        {
            centres.push(c);
        }
    }
    let prec = |rng: &mut ChaCha8Rng| rng.random_range(p0..=p1);
    let photons = |p: f64| (130.0 / p).powi(2) as f32 * 100.0;
    let mut locs = Vec::new();
    let mut truth = Vec::with_capacity(cfg.particles);
    let link =
        Normal::new(0.0, cfg.linkage_nm.max(0.0)).map_err(|e| SynthError::Config(e.to_string()))?;
    let extra = Poisson::new(cfg.blinks - 1.0).ok();
    for (k, c) in centres.iter().enumerate() {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        rng.set_stream(k as u64 + 1);
        let q = Quat::random_uniform(&mut rng);
        let rot = q.to_matrix();
        let spec = TorusSpec {
            major_radius: cfg.major_nm,
            tube_radius: cfg.tube_nm,
            units: Units::Nm,
        };
        let sites = Model::torus(spec, cfg.sites.max(1), rng.random())
            .map_err(|e| SynthError::Config(e.to_string()))?;
        let before = locs.len();
        for s in &sites.points {
            if rng.random::<f64>() >= cfg.labelling {
                continue;
            }
            let m = [0, 1, 2].map(|i| f64::from(s[i]) + link.sample(&mut rng));
            let cam = [0, 1, 2].map(|r| rot[r][0] * m[0] + rot[r][1] * m[1] + rot[r][2] * m[2]);
            let n = 1 + extra.map_or(0, |p| p.sample(&mut rng) as usize);
            for _ in 0..n {
                let p = prec(&mut rng);
                let e = Normal::new(0.0, p).map_err(|e| SynthError::Config(e.to_string()))?;
                locs.push(FieldLoc {
                    x_nm: (c[0] + cam[0] + e.sample(&mut rng)) as f32,
                    y_nm: (c[1] + cam[1] + e.sample(&mut rng)) as f32,
                    z_nm: (cam[2] + cfg.z_error_factor * e.sample(&mut rng)) as f32,
                    precision_nm: p as f32,
                    frame: rng.random_range(0..cfg.frames),
                    photons: photons(p),
                    particle: k as i32,
                });
            }
        }
        truth.push(ParticleTruth {
            x_nm: c[0],
            y_nm: c[1],
            q,
            n_locs: locs.len() - before,
        });
    }
    let n_bg = (cfg.background * locs.len() as f64).round() as usize;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    rng.set_stream(0);
    for _ in 0..n_bg {
        let p = prec(&mut rng);
        locs.push(FieldLoc {
            x_nm: rng.random_range(0.0..size[0]) as f32,
            y_nm: rng.random_range(0.0..size[1]) as f32,
            z_nm: rng.random_range(-300.0..300.0),
            precision_nm: p as f32,
            frame: rng.random_range(0..cfg.frames),
            photons: photons(p),
            particle: -1,
        });
    }
    // as a camera acquisition lists them: by frame
    locs.sort_by_key(|l| l.frame);
    Ok(Field { locs, truth })
}

/// Where [`write_field`] put things.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldFiles {
    /// Picasso HDF5 (+ `.yaml` beside it).
    pub picasso: PathBuf,
    pub thunderstorm: PathBuf,
    pub truth: PathBuf,
    pub settings: PathBuf,
}

/// Writes a field into `dir`: `field.hdf5` + `field.yaml` (Picasso, camera
/// pixels), `field_thunderstorm.csv` (nm), `truth.csv` (particle centre in
/// nm and camera px, orientation as a quaternion and its axis, localisation
/// count) and `field.json` (the settings).
pub fn write_field(cfg: &FieldConfig, field: &Field, dir: &Path) -> Result<FieldFiles, SynthError> {
    std::fs::create_dir_all(dir).map_err(|cause| OutputError::Io {
        path: dir.to_path_buf(),
        cause,
    })?;
    let out = FieldFiles {
        picasso: dir.join("field.hdf5"),
        thunderstorm: dir.join("field_thunderstorm.csv"),
        truth: dir.join("truth.csv"),
        settings: dir.join("field.json"),
    };
    let px = cfg.pixel_nm as f32;
    let plocs: Vec<PicassoLoc> = field
        .locs
        .iter()
        .map(|l| PicassoLoc {
            frame: l.frame,
            x: l.x_nm / px,
            y: l.y_nm / px,
            photons: l.photons,
            sx: 1.0,
            sy: 1.0,
            bg: 10.0,
            lpx: l.precision_nm / px,
            lpy: l.precision_nm / px,
            z: Some(AxialLoc {
                z: l.z_nm,
                lpz: (cfg.z_error_factor * f64::from(l.precision_nm)) as f32,
            }),
        })
        .collect();
    let meta = Sidecar {
        width: Some(cfg.field_px[0]),
        height: Some(cfg.field_px[1]),
        frames: Some(u64::from(cfg.frames)),
        pixel_size_nm: Some(cfg.pixel_nm),
    };
    picasso::write(&out.picasso, &plocs, &meta, "PoseScope synth --locs")?;
    let csv_err = |path: &Path, e: csv::Error| OutputError::Csv {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    io::atomic_write(&out.thunderstorm, |w| {
        let mut c = csv::WriterBuilder::new()
            .quote_style(csv::QuoteStyle::NonNumeric)
            .from_writer(w);
        let p = &out.thunderstorm;
        c.write_record([
            "id",
            "frame",
            "x [nm]",
            "y [nm]",
            "z [nm]",
            "sigma [nm]",
            "intensity [photon]",
            "uncertainty_xy [nm]",
        ])
        .map_err(|e| csv_err(p, e))?;
        for (i, l) in field.locs.iter().enumerate() {
            c.write_record(&[
                (i + 1).to_string(),
                (l.frame + 1).to_string(),
                format!("{:.2}", l.x_nm),
                format!("{:.2}", l.y_nm),
                format!("{:.2}", l.z_nm),
                "130.0".to_string(),
                format!("{:.1}", l.photons),
                format!("{:.3}", l.precision_nm),
            ])
            .map_err(|e| csv_err(p, e))?;
        }
        c.flush().map_err(|cause| OutputError::Io {
            path: p.clone(),
            cause,
        })
    })?;
    io::atomic_write(&out.truth, |w| {
        let mut c = csv::Writer::from_writer(w);
        let p = &out.truth;
        c.write_record([
            "particle", "x_nm", "y_nm", "x_px", "y_px", "qw", "qx", "qy", "qz", "axis_x", "axis_y",
            "axis_z", "n_locs",
        ])
        .map_err(|e| csv_err(p, e))?;
        for (k, t) in field.truth.iter().enumerate() {
            let a = t.q.axis();
            let mut rec = vec![
                k.to_string(),
                format!("{:.3}", t.x_nm),
                format!("{:.3}", t.y_nm),
                format!("{:.5}", t.x_nm / cfg.pixel_nm),
                format!("{:.5}", t.y_nm / cfg.pixel_nm),
            ];
            rec.extend([t.q.w, t.q.x, t.q.y, t.q.z].map(|v| format!("{v:.9}")));
            rec.extend(a.map(|v| format!("{v:.9}")));
            rec.push(t.n_locs.to_string());
            c.write_record(&rec).map_err(|e| csv_err(p, e))?;
        }
        c.flush().map_err(|cause| OutputError::Io {
            path: p.clone(),
            cause,
        })
    })?;
    let json = serde_json::to_string_pretty(cfg).map_err(|e| SynthError::Config(e.to_string()))?;
    io::atomic_write(&out.settings, |w| {
        use std::io::Write;
        w.write_all(json.as_bytes())
            .map_err(|cause| OutputError::Io {
                path: out.settings.clone(),
                cause,
            })
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_deterministic_and_spaced() {
        let cfg = FieldConfig {
            particles: 6,
            ..FieldConfig::default()
        };
        let a = generate_field(&cfg).unwrap();
        assert_eq!(a, generate_field(&cfg).unwrap());
        assert_eq!(a.truth.len(), 6);
        let d = 2.0 * (cfg.major_nm + cfg.tube_nm);
        for (i, p) in a.truth.iter().enumerate() {
            for q in &a.truth[..i] {
                assert!((p.x_nm - q.x_nm).hypot(p.y_nm - q.y_nm) >= 2.0 * d);
            }
            // about 120 sites × 50 % × 4 blinks
            assert!((100..400).contains(&p.n_locs), "{}", p.n_locs);
        }
        let bg = a.locs.iter().filter(|l| l.particle < 0).count();
        let fg = a.locs.len() - bg;
        assert!((bg as f64 - 0.1 * fg as f64).abs() <= 1.0);
        // a particle's localisations lie on its torus (within precision and linkage)
        let t = &a.truth[0];
        for l in a.locs.iter().filter(|l| l.particle == 0) {
            let r = (f64::from(l.x_nm) - t.x_nm).hypot(f64::from(l.y_nm) - t.y_nm);
            assert!(r < cfg.major_nm + cfg.tube_nm + 80.0, "{r}");
        }
    }

    #[test]
    fn impossible_fields_are_refused() {
        let cfg = FieldConfig {
            particles: 500,
            field_px: [20, 20],
            ..FieldConfig::default()
        };
        assert!(generate_field(&cfg).is_err());
    }
}
