//! A pose for every pick of an image (a whole-field render or a camera
//! frame with many particles): the orchestration that `posescope pick
//! IMAGE` and `posescope fit IMAGE --pick/--picks` share.
//!
//! Each pick's crop — its disc, background subtracted — is resampled into
//! a particle frame at the scale that puts the torus at the bundled
//! network's trained size ([`ImageParticleSetup::frame`]); the frames go
//! through the usual batch fit (network + render-and-compare), and each
//! fitted shift is carried back into image pixels
//! ([`ImageParticleSetup::centre_px`]).

use super::particles::{ParticleError, PARTICLE_FRAME_PX};
use super::pick::{image_particle_frame, pick_image, ImagePick, ImagePickConfig, PickError};
use super::pose::pipeline::ModelSpec;
use super::pose::results::FrameResult;
use super::pose::train::REFERENCE_MAJOR_PX;
use crate::io::locs::PickRow;
use crate::io::{Frame, StackInfo};
use crate::shapes::Units;

/// Single images at least this many pixels on a side are whole fields.
pub const FIELD_MIN_SIDE: usize = 1024;
/// Frames of a stack larger than this on a side are whole fields too
/// (frame 0): no GPU holds them as one texture.
pub const FIELD_MAX_FRAME_SIDE: usize = 4096;

/// Whether an image of `info` is a whole field of particles, to be picked,
/// rather than frames of one particle each: the viewer opens it as a
/// field, and `fit` without `--pick` warns.
pub fn is_whole_field(info: &StackInfo) -> bool {
    let side = info.width.max(info.height);
    (info.frames == 1 && side >= FIELD_MIN_SIDE) || side > FIELD_MAX_FRAME_SIDE
}

/// The columns of an image's picks CSV after the standard ones.
pub const PICK_EXTRA_COLUMNS: [&str; 3] = ["signal", "snr", "size"];

/// How the picks of one image become particle frames.
#[derive(Clone, Debug)]
pub struct ImageParticleSetup {
    /// Torus `[R, r]`, image pixels.
    pub torus_px: [f64; 2],
    /// The image's pixel size, nm, when known.
    pub pixel_nm: Option<f64>,
    /// Particle-frame pixels per image pixel.
    pub scale: f64,
    /// Radius of a pick's disc, image pixels.
    pub reach_px: f64,
    /// The model in particle-frame pixels, for the fit.
    pub spec_px: ModelSpec,
}

impl ImageParticleSetup {
    /// The setup for a torus given in pixels, or in nm with the pixel size
    /// from the model (`--pixel-size`) or else from the file (`file_pixel_nm`).
    pub fn new(spec: &ModelSpec, file_pixel_nm: Option<f64>) -> Result<Self, ParticleError> {
        if !spec.is_torus() {
            return Err(ParticleError::NotTorus(spec.describe()));
        }
        let pixel_nm = spec.pixel_size.or(file_pixel_nm);
        let to_px = match spec.units {
            Units::Px => 1.0,
            Units::Nm => match pixel_nm {
                Some(p) if p.is_finite() && p > 0.0 => 1.0 / p,
                _ => return Err(ParticleError::NoPixelSize),
            },
        };
        let [major, tube] = spec.torus.map(|v| v * to_px);
        if !(major.is_finite() && tube.is_finite() && tube >= 0.0 && tube < major) {
            return Err(ParticleError::BadTorus(spec.torus[0], spec.torus[1]));
        }
        let scale = REFERENCE_MAJOR_PX / major;
        Ok(Self {
            torus_px: [major, tube],
            pixel_nm,
            scale,
            reach_px: 1.2 * (major + tube) + 1.0,
            spec_px: ModelSpec {
                torus: [REFERENCE_MAJOR_PX, tube * scale],
                units: Units::Px,
                pixel_size: pixel_nm.map(|p| p / scale),
                ..spec.clone()
            },
        })
    }

    /// The picker's defaults for this particle.
    pub fn pick_config(&self) -> ImagePickConfig {
        ImagePickConfig::for_radius(self.torus_px[0] + self.torus_px[1])
    }

    /// Picks the particles of `img` automatically.
    pub fn pick(&self, img: &Frame, cfg: &ImagePickConfig) -> Result<Vec<ImagePick>, PickError> {
        pick_image(img, cfg)
    }

    /// A pick at a given centre (by hand, or from a picks CSV), measured.
    pub fn pick_at(&self, img: &Frame, centre_px: [f64; 2]) -> ImagePick {
        ImagePick::at(img, centre_px, self.torus_px[0] + self.torus_px[1])
    }

    /// The particle frame of one pick.
    pub fn frame(&self, img: &Frame, pick: &ImagePick) -> Frame {
        image_particle_frame(
            img,
            [pick.x_px, pick.y_px],
            pick.background,
            self.reach_px,
            self.scale,
            PARTICLE_FRAME_PX,
        )
    }

    /// The fitted particle centre in image pixels: the pick moved by the
    /// fit's shift (the pick itself when the fit failed).
    pub fn centre_px(&self, pick: &ImagePick, result: &FrameResult) -> [f64; 2] {
        match result {
            Ok(f) => {
                let s = f.outcome.state.pose.shift;
                [pick.x_px + s[0] / self.scale, pick.y_px + s[1] / self.scale]
            }
            Err(_) => [pick.x_px, pick.y_px],
        }
    }

    /// A pick as a picks-CSV row: its centre in pixels (and nm when the
    /// pixel size is known), the particle's diameter, and the
    /// [`PICK_EXTRA_COLUMNS`] (the SNR empty for a pick measured at a given
    /// centre, which has none).
    pub fn pick_row(&self, p: &ImagePick) -> PickRow {
        let nm = self.pixel_nm;
        PickRow {
            x_px: Some(p.x_px),
            y_px: Some(p.y_px),
            x_nm: nm.map(|s| p.x_px * s),
            y_nm: nm.map(|s| p.y_px * s),
            diameter_nm: nm.map(|s| self.diameter_px() * s),
            n_locs: None,
            extra: vec![
                format!("{:.2}", p.signal),
                if p.snr.is_finite() {
                    format!("{:.2}", p.snr)
                } else {
                    String::new()
                },
                format!("{:.3}", p.size),
            ],
        }
    }

    /// The particle's diameter 2(R + r), image pixels.
    pub fn diameter_px(&self) -> f64 {
        2.0 * (self.torus_px[0] + self.torus_px[1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimate::pose::fit::FitOptions;
    use crate::estimate::pose::pipeline::{DeviceChoice, Fitter};
    use crate::geometry::symmetry::axis_error;
    use crate::geometry::Quat;
    use crate::render::cpu::render_frame;
    use crate::render::scene::FitModel;
    use crate::render::SplatParams;

    #[test]
    fn models_need_a_pixel_size_in_nm_and_must_be_tori() {
        let nm = ModelSpec {
            torus: [180.0, 40.0],
            units: Units::Nm,
            ..ModelSpec::default()
        };
        let e = ImageParticleSetup::new(&nm, None).unwrap_err().to_string();
        assert!(e.contains("pixel size"), "{e}");
        let s = ImageParticleSetup::new(&nm, Some(10.0)).unwrap();
        assert_eq!(s.torus_px, [18.0, 4.0]);
        assert!((s.scale - REFERENCE_MAJOR_PX / 18.0).abs() < 1e-12);
        // the model's own pixel size wins over the file's
        let given = ModelSpec {
            pixel_size: Some(20.0),
            ..nm.clone()
        };
        assert_eq!(
            ImageParticleSetup::new(&given, Some(10.0))
                .unwrap()
                .torus_px,
            [9.0, 2.0]
        );
        let ring = ModelSpec {
            model: "ring:8".parse().unwrap(),
            ..ModelSpec::default()
        };
        assert!(ImageParticleSetup::new(&ring, None).is_err());
    }

    #[test]
    fn a_posed_torus_in_a_field_is_picked_and_fitted_in_place() {
        // a torus of R 13 px, r 3 px at two poses, placed off-centre in a
        // 200 × 160 image on a background of 10
        let spec = ModelSpec {
            torus: [13.0, 3.0],
            ..ModelSpec::default()
        };
        let setup = ImageParticleSetup::new(&spec, None).unwrap();
        let model = FitModel::torus(13.0, 3.0, 1.4);
        let points = model.points(3.0);
        let truths = [
            (Quat::from_euler_zyz(0.4, 0.9, 0.0), [60.3, 50.6]),
            (Quat::from_euler_zyz(2.0, 0.5, 0.0), [140.7, 100.2]),
        ];
        let mut img = Frame {
            width: 200,
            height: 160,
            data: vec![10.0; 200 * 160],
        };
        for (q, c) in truths {
            let shift = [c[0] - 100.0, c[1] - 80.0];
            let params = SplatParams {
                width: 200,
                height: 160,
                sigma: 1.4,
                scale: 1.0,
            };
            let r = render_frame(&points, &model.weights, &q.to_matrix(), shift, &params).unwrap();
            let peak = r.iter().copied().fold(0.0, f32::max);
            for (v, s) in img.data.iter_mut().zip(&r) {
                *v += 50.0 * s / peak;
            }
        }
        let picks = setup.pick(&img, &setup.pick_config()).unwrap();
        assert_eq!(picks.len(), 2, "{picks:?}");
        let fitter = Fitter::new(
            &setup.spec_px,
            FitOptions::default(),
            None,
            true,
            DeviceChoice::Cpu,
        )
        .unwrap();
        for (q, c) in truths {
            let pick = picks
                .iter()
                .find(|p| (p.x_px - c[0]).hypot(p.y_px - c[1]) < 4.0)
                .unwrap_or_else(|| panic!("no pick near {c:?}: {picks:?}"));
            assert!((pick.background - 10.0).abs() < 0.5, "{pick:?}");
            let frame = setup.frame(&img, pick);
            let mut results = fitter.fit_batch(&[&frame]).unwrap();
            let result: FrameResult = results.pop().unwrap();
            let fit = result.as_ref().unwrap();
            let err = axis_error(fit.outcome.state.pose.q.axis(), q.axis()).to_degrees();
            assert!(err < 3.0, "axis error {err}° at {c:?}");
            let centre = setup.centre_px(pick, &result);
            assert!(
                (centre[0] - c[0]).hypot(centre[1] - c[1]) < 0.3,
                "{centre:?} vs {c:?}"
            );
        }
    }
}
