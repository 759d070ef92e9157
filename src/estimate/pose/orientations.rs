//! How the fitted particles are oriented, as a whole: is the sample
//! isotropic, or do the particles lie flat on the coverslip?
//!
//! One image shows a particle's axis only up to its sign and its mirror in
//! z (the projection cannot tell the near side from the far side), so what
//! a fit determines is the [`ViewAxis`]: the tilt from the optical axis in
//! [0°, 90°] and the azimuth of the axis's image, a line, in [0°, 180°).
//! Every summary here is of that, never of a sign the data cannot give.
//! A fit to a 3D localisation table did tell the axis from its mirror, so
//! its view axis is *directed*: the azimuth, in [0°, 360°), is the way its
//! far end (+z, into the image) points, the way the particle tilts; for
//! those [`InPlane`] also tests the tilt directions ([`TiltDirection`]).
//!
//! For randomly oriented particles cos(tilt) is uniform on [0, 1], so
//! tilts near edge-on are common and face-on ones rare
//! (P(tilt ≤ θ) = 1 − cos θ). [`TiltSummary`] compares the tilts with that
//! law: per-bin expected counts and a Kolmogorov–Smirnov test. [`InPlane`]
//! asks whether the axes share a direction in the image plane.

use serde::Serialize;

use crate::geometry::Quat;

/// The part of a particle's axis that its fit determines.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ViewAxis {
    /// Angle between the axis and the optical axis, degrees in [0, 90]:
    /// 0 face-on, 90 edge-on.
    pub tilt_deg: f64,
    /// Direction of the axis's image, degrees from image +x (right)
    /// towards +y (down), as RELION's `rot`: in [0, 180) for a line; in
    /// [0, 360) when [`directed`](Self::directed), the direction of the
    /// axis's far end (+z).
    pub azimuth_deg: f64,
    /// The fit told the axis from its mirror in z (a 3D localisation fit).
    pub directed: bool,
}

impl ViewAxis {
    /// The view axis of the model z axis posed by `q` (the symmetry axis of
    /// a torus or ring), as one image shows it: a line.
    pub fn of(q: Quat) -> Self {
        let a = q.axis();
        let tilt_deg = a[2].abs().clamp(0.0, 1.0).acos().to_degrees();
        Self {
            tilt_deg,
            azimuth_deg: azimuth(a, 180.0),
            directed: false,
        }
    }

    /// The directed view axis of `q`, for a fit that told the axis from its
    /// mirror in z: the azimuth is that of the axis's end with z ≥ 0.
    pub fn directed(q: Quat) -> Self {
        let a = q.axis();
        let far = if a[2] < 0.0 { a.map(|v| -v) } else { a };
        Self {
            azimuth_deg: azimuth(far, 360.0),
            directed: true,
            ..Self::of(q)
        }
    }

    /// [`directed`](Self::directed) when `directed`, else [`of`](Self::of).
    pub fn of_fit(q: Quat, directed: bool) -> Self {
        if directed {
            Self::directed(q)
        } else {
            Self::of(q)
        }
    }

    /// The points of an equal-area (Lambert, Schmidt-net) plot of the axis
    /// on the unit disc, with plot y up so that it matches the image on
    /// screen: the centre is face-on, the rim edge-on, and randomly oriented
    /// particles cover the disc evenly. A line gives both its ends
    /// (opposite points); a directed axis only its far end.
    pub fn equal_area(self) -> impl Iterator<Item = [f64; 2]> {
        let r = equal_area_radius(self.tilt_deg);
        let (s, c) = self.azimuth_deg.to_radians().sin_cos();
        std::iter::once([r * c, -r * s]).chain((!self.directed).then_some([-r * c, r * s]))
    }
}

/// The azimuth of `a`'s image in [0, `period`).
fn azimuth(a: [f64; 3], period: f64) -> f64 {
    let d = a[1].atan2(a[0]).to_degrees().rem_euclid(period);
    if d >= period {
        0.0
    } else {
        d
    }
}

/// The distance from the centre of an equal-area plot of unit rim of an
/// axis tilted `tilt_deg` (0 face-on at the centre, 90 edge-on on the rim):
/// sin(tilt / 2) / sin 45°.
pub fn equal_area_radius(tilt_deg: f64) -> f64 {
    (tilt_deg.to_radians() / 2.0).sin() / std::f64::consts::FRAC_PI_4.sin()
}

/// One bin of a tilt histogram.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct TiltBin {
    /// Tilt range, degrees.
    pub lo_deg: f64,
    pub hi_deg: f64,
    /// Particles whose tilt falls here (the last bin includes 90°).
    pub count: usize,
    /// What randomly oriented particles would put here, on average.
    pub isotropic: f64,
}

/// The tilts of a set of fitted particles against random orientation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TiltSummary {
    pub n: usize,
    pub bins: Vec<TiltBin>,
    pub median_deg: f64,
    /// Kolmogorov–Smirnov distance between the tilts' distribution and
    /// the isotropic one (0 … 1).
    pub ks_d: f64,
    /// Probability of a distance at least `ks_d` from `n` randomly oriented
    /// particles (asymptotic; small: the sample is not isotropic).
    pub ks_p: f64,
}

impl TiltSummary {
    /// Summarises `tilts_deg` (each in [0, 90]; others are ignored) in
    /// `bins` equal bins over 0–90°. `None` when no tilt is usable.
    pub fn new(tilts_deg: &[f64], bins: usize) -> Option<Self> {
        let mut t: Vec<f64> = tilts_deg
            .iter()
            .copied()
            .filter(|t| (0.0..=90.0).contains(t))
            .collect();
        if t.is_empty() {
            return None;
        }
        t.sort_by(f64::total_cmp);
        let n = t.len();
        let bins = bins.clamp(1, 90);
        let width = 90.0 / bins as f64;
        let mut out: Vec<TiltBin> = (0..bins)
            .map(|b| {
                let (lo, hi) = (b as f64 * width, (b + 1) as f64 * width);
                TiltBin {
                    lo_deg: lo,
                    hi_deg: hi,
                    count: 0,
                    isotropic: n as f64 * (isotropic_cdf(hi) - isotropic_cdf(lo)),
                }
            })
            .collect();
        for &x in &t {
            let b = ((x / width) as usize).min(bins - 1);
            out[b].count += 1;
        }
        let median_deg = if n % 2 == 1 {
            t[n / 2]
        } else {
            (t[n / 2 - 1] + t[n / 2]) / 2.0
        };
        // the largest gap between the sample's step CDF and the isotropic one
        let ks_d = t
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                let f = isotropic_cdf(x);
                (f - i as f64 / n as f64).max((i + 1) as f64 / n as f64 - f)
            })
            .fold(0.0, f64::max);
        Some(Self {
            n,
            bins: out,
            median_deg,
            ks_d,
            ks_p: kolmogorov_p(ks_d, n),
        })
    }

    /// Of the tilts of `axes`.
    pub fn of_axes(axes: &[ViewAxis], bins: usize) -> Option<Self> {
        let tilts: Vec<f64> = axes.iter().map(|a| a.tilt_deg).collect();
        Self::new(&tilts, bins)
    }

    /// One line for a user: "24 particles, median tilt 58.1° (isotropic:
    /// 60.0°); consistent with random orientation (KS p = 0.61)".
    pub fn verdict(&self) -> String {
        let what = if self.ks_p < 0.01 {
            "not randomly oriented"
        } else if self.ks_p < 0.05 {
            "probably not randomly oriented"
        } else {
            "consistent with random orientation"
        };
        let particles = if self.n == 1 { "particle" } else { "particles" };
        format!(
            "{} {particles}, median tilt {:.1}° (random: 60.0°); {what} (KS D = {:.3}, {})",
            self.n,
            self.median_deg,
            self.ks_d,
            p_text(self.ks_p)
        )
    }
}

/// Whether the axes' images share a direction in the image plane (particles
/// aligned along a filament, a flow, a cell edge): the axial mean of the
/// azimuths (angles doubled, as a line has no arrow) and the Rayleigh test
/// of uniformity. Only axes tilted at least [`InPlane::MIN_TILT_DEG`] count:
/// a nearly face-on axis has no direction in the image worth the name.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InPlane {
    /// Axes that count.
    pub n: usize,
    /// Mean resultant length of the doubled azimuths: 0 uniform, 1 all alike.
    pub r: f64,
    /// The mean direction, degrees in [0, 180) as [`ViewAxis::azimuth_deg`].
    pub mean_deg: f64,
    /// Rayleigh test: the probability of an `r` at least this large from
    /// uniform directions.
    pub p: f64,
    /// Of the directed axes among them, when at least two: which way they
    /// tilt.
    pub tilt_direction: Option<TiltDirection>,
}

/// Whether directed axes ([`ViewAxis::directed`]) tilt the same way (a
/// tilted coverslip, particles leaning toward a cell's centre): the mean of
/// their azimuths as directions, not doubled, and its Rayleigh test.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct TiltDirection {
    /// Directed axes that count (tilted at least [`InPlane::MIN_TILT_DEG`]).
    pub n: usize,
    /// Mean resultant length: 0 uniform, 1 all alike.
    pub r: f64,
    /// The mean tilt direction, degrees in [0, 360).
    pub mean_deg: f64,
    /// Rayleigh test of uniform tilt directions.
    pub p: f64,
}

impl TiltDirection {
    /// One line for a user.
    pub fn verdict(&self) -> String {
        let what = if self.p < 0.01 {
            format!("tilt toward {:.0}°", self.mean_deg)
        } else if self.p < 0.05 {
            format!("probably tilt toward {:.0}°", self.mean_deg)
        } else {
            "no preferred tilt direction".into()
        };
        rayleigh_line("tilt directions from z", self.n, self.r, self.p, &what)
    }
}

/// "`what` (`n` axes tilted ≥ 30°): `finding` (R = …, Rayleigh p = …)".
fn rayleigh_line(what: &str, n: usize, r: f64, p: f64, finding: &str) -> String {
    format!(
        "{what} ({n} axes tilted ≥ {:.0}°): {finding} (R = {r:.2}, Rayleigh {})",
        InPlane::MIN_TILT_DEG,
        p_text(p)
    )
}

/// Mean resultant length, mean angle (radians) and Rayleigh p of `angles`
/// (radians); `None` for fewer than two.
fn rayleigh(angles: impl Iterator<Item = f64>) -> Option<(usize, f64, f64, f64)> {
    let (mut c, mut s, mut n) = (0.0, 0.0, 0usize);
    for t in angles {
        c += t.cos();
        s += t.sin();
        n += 1;
    }
    if n < 2 {
        return None;
    }
    let nf = n as f64;
    let r = c.hypot(s) / nf;
    // Rayleigh's p with the second-order correction (Mardia & Jupp 6.3.5)
    let z = nf * r * r;
    let p = (-z).exp()
        * (1.0 + (2.0 * z - z * z) / (4.0 * nf)
            - (24.0 * z - 132.0 * z * z + 76.0 * z.powi(3) - 9.0 * z.powi(4)) / (288.0 * nf * nf));
    Some((n, r, s.atan2(c), p.clamp(0.0, 1.0)))
}

impl InPlane {
    /// Least tilt, degrees, for an axis's direction to count.
    pub const MIN_TILT_DEG: f64 = 30.0;

    /// Of `axes`; `None` when fewer than two are tilted enough.
    pub fn new(axes: &[ViewAxis]) -> Option<Self> {
        let tilted = || axes.iter().filter(|a| a.tilt_deg >= Self::MIN_TILT_DEG);
        // as lines: a directed azimuth doubled is its line's doubled
        let (n, r, mean, p) = rayleigh(tilted().map(|a| 2.0 * a.azimuth_deg.to_radians()))?;
        let tilt_direction = rayleigh(
            tilted()
                .filter(|a| a.directed)
                .map(|a| a.azimuth_deg.to_radians()),
        )
        .map(|(n, r, mean, p)| TiltDirection {
            n,
            r,
            mean_deg: mean.to_degrees().rem_euclid(360.0),
            p,
        });
        Some(Self {
            n,
            r,
            mean_deg: (mean.to_degrees() / 2.0).rem_euclid(180.0),
            p,
            tilt_direction,
        })
    }

    /// [`verdict`](Self::verdict), then that of the tilt directions where
    /// there are directed axes.
    pub fn verdicts(&self) -> impl Iterator<Item = String> {
        std::iter::once(self.verdict()).chain(self.tilt_direction.map(|d| d.verdict()))
    }

    /// One line for a user.
    pub fn verdict(&self) -> String {
        let what = if self.p < 0.01 {
            format!("a preferred direction, {:.0}° in the image", self.mean_deg)
        } else if self.p < 0.05 {
            format!("probably a preferred direction, {:.0}°", self.mean_deg)
        } else {
            "no preferred direction".into()
        };
        rayleigh_line("in the image plane", self.n, self.r, self.p, &what)
    }
}

/// P(tilt ≤ θ) for randomly oriented axes: 1 − cos θ.
pub fn isotropic_cdf(tilt_deg: f64) -> f64 {
    1.0 - tilt_deg.clamp(0.0, 90.0).to_radians().cos()
}

/// A p-value as a person writes it: "p = 0.38", "p < 0.0001".
fn p_text(p: f64) -> String {
    if p < 1e-4 {
        "p < 0.0001".into()
    } else if p < 0.01 {
        format!("p = {p:.4}")
    } else {
        format!("p = {p:.2}")
    }
}

/// P(D ≥ d) for the one-sample Kolmogorov–Smirnov distance of `n` draws,
/// by the asymptotic series with Stephens' small-sample correction
/// λ = (√n + 0.12 + 0.11/√n)·d.
fn kolmogorov_p(d: f64, n: usize) -> f64 {
    let sn = (n as f64).sqrt();
    let lambda = (sn + 0.12 + 0.11 / sn) * d;
    if lambda < 0.2 {
        return 1.0;
    }
    // Q(λ) = 2 Σ (−1)^(k−1) exp(−2k²λ²)
    let mut sum = 0.0;
    for k in 1..=100 {
        let k = k as f64;
        let term = (-2.0 * k * k * lambda * lambda).exp();
        sum += if k as u32 % 2 == 1 { term } else { -term };
        if term < 1e-12 {
            break;
        }
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::symmetry::Symmetry;
    use crate::geometry::Quat;
    use rand::{Rng, SeedableRng};

    fn random_quats(n: usize, seed: u64) -> Vec<Quat> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..n).map(|_| Quat::random_uniform(&mut rng)).collect()
    }

    #[test]
    fn the_view_axis_is_the_same_for_every_pose_the_image_cannot_tell_apart() {
        for q in random_quats(200, 3) {
            let v = ViewAxis::of(q);
            assert!((0.0..=90.0).contains(&v.tilt_deg), "{v:?}");
            assert!((0.0..180.0).contains(&v.azimuth_deg), "{v:?}");
            // the torus's symmetries, the projection mirror and both
            for e in Symmetry::TORUS.equivalent_poses(q, 12) {
                let w = ViewAxis::of(e.q);
                assert!((w.tilt_deg - v.tilt_deg).abs() < 1e-6, "{v:?} {w:?}");
                let da = (w.azimuth_deg - v.azimuth_deg).rem_euclid(180.0);
                assert!(
                    da.min(180.0 - da) < 1e-6 || v.tilt_deg < 1e-6,
                    "{v:?} {w:?}"
                );
            }
        }
    }

    #[test]
    fn euler_tilt_and_rot_are_the_view_axis() {
        let q = Quat::from_euler_zyz_deg(30.0, 50.0, 77.0);
        let v = ViewAxis::of(q);
        assert!((v.tilt_deg - 50.0).abs() < 1e-9 && (v.azimuth_deg - 30.0).abs() < 1e-9);
        // tilted past edge-on: the same line, seen from the other side
        let v = ViewAxis::of(Quat::from_euler_zyz_deg(-150.0, 130.0, 0.0));
        assert!((v.tilt_deg - 50.0).abs() < 1e-9 && (v.azimuth_deg - 30.0).abs() < 1e-9);
        // the equal-area point: edge-on on the rim, azimuth 30° below +x on screen
        let v = ViewAxis {
            tilt_deg: 90.0,
            azimuth_deg: 30.0,
            directed: false,
        };
        let [p, m] = v.equal_area().collect::<Vec<_>>()[..] else {
            panic!("a line has two ends")
        };
        assert!((p[0] - 30f64.to_radians().cos()).abs() < 1e-12);
        assert!((p[1] + 0.5).abs() < 1e-12);
        assert_eq!(m, [-p[0], -p[1]]);
        // a directed axis: its far end only
        let d = ViewAxis {
            directed: true,
            ..v
        };
        assert_eq!(d.equal_area().collect::<Vec<_>>(), [p]);
    }

    #[test]
    fn a_directed_view_axis_tells_an_axis_from_its_mirror() {
        // tilted 40° with its far end (+z) toward 200°
        let (t, a) = (40f64.to_radians(), 200f64.to_radians());
        let n = [t.sin() * a.cos(), t.sin() * a.sin(), t.cos()];
        let mirror = [n[0], n[1], -n[2]];
        for (axis, toward) in [(n, 200.0), (n.map(|v| -v), 200.0), (mirror, 20.0)] {
            let q = Quat::from_symmetry_axis(axis, 0.3).unwrap();
            let v = ViewAxis::directed(q);
            assert!(v.directed && (v.tilt_deg - 40.0).abs() < 1e-9, "{v:?}");
            assert!((v.azimuth_deg - toward).abs() < 1e-9, "{axis:?}: {v:?}");
            // a line forgets which end: both are 20° mod 180
            let line = ViewAxis::of_fit(q, false);
            assert!(!line.directed && (line.azimuth_deg - 20.0).abs() < 1e-9);
        }
    }

    #[test]
    fn directed_axes_that_tilt_one_way_have_a_tilt_direction() {
        // tilted toward 300°–340° (across nothing): one direction; as lines
        // the same axes are also aligned
        let mut rng = rand::rngs::StdRng::seed_from_u64(31);
        let leaning: Vec<ViewAxis> = (0..60)
            .map(|_| ViewAxis {
                tilt_deg: rng.random_range(35.0..80.0),
                azimuth_deg: rng.random_range(300.0..340.0),
                directed: true,
            })
            .collect();
        let p = InPlane::new(&leaning).unwrap();
        let d = p.tilt_direction.expect("directed axes");
        assert_eq!(d.n, 60);
        assert!(d.p < 1e-6 && (d.mean_deg - 320.0).abs() < 5.0, "{d:?}");
        assert!(d.verdict().contains("tilt toward 3"), "{}", d.verdict());
        assert!((p.mean_deg - 140.0).abs() < 5.0, "{p:?}");
        // half of them tilted the opposite way: one line, no one direction
        let split: Vec<ViewAxis> = leaning
            .iter()
            .enumerate()
            .map(|(k, v)| ViewAxis {
                azimuth_deg: if k % 2 == 0 {
                    v.azimuth_deg
                } else {
                    (v.azimuth_deg + 180.0) % 360.0
                },
                ..*v
            })
            .collect();
        let p = InPlane::new(&split).unwrap();
        assert!(p.p < 1e-6, "still aligned as lines: {p:?}");
        let d = p.tilt_direction.unwrap();
        assert!(d.p > 0.05, "{d:?}");
        assert!(d.verdict().contains("no preferred tilt direction"));
        // lines alone say nothing of a tilt direction
        let lines: Vec<ViewAxis> = leaning
            .iter()
            .map(|v| ViewAxis {
                directed: false,
                azimuth_deg: v.azimuth_deg % 180.0,
                ..*v
            })
            .collect();
        assert!(InPlane::new(&lines).unwrap().tilt_direction.is_none());
    }

    #[test]
    fn random_orientations_pass_and_flat_ones_fail_the_isotropy_test() {
        let axes: Vec<ViewAxis> = random_quats(2000, 11)
            .into_iter()
            .map(ViewAxis::of)
            .collect();
        let iso = TiltSummary::of_axes(&axes, 9).unwrap();
        assert_eq!(iso.n, 2000);
        assert_eq!(iso.bins.iter().map(|b| b.count).sum::<usize>(), 2000);
        let expected: f64 = iso.bins.iter().map(|b| b.isotropic).sum();
        assert!((expected - 2000.0).abs() < 1e-9);
        assert!(iso.ks_p > 0.05, "{iso:?}");
        assert!((iso.median_deg - 60.0).abs() < 3.0, "{iso:?}");
        // every bin within 4 standard deviations of its expectation
        for b in &iso.bins {
            let sd = b.isotropic.sqrt();
            assert!((b.count as f64 - b.isotropic).abs() < 4.0 * sd, "{b:?}");
        }
        assert!(
            iso.verdict().contains("consistent with random"),
            "{}",
            iso.verdict()
        );
        // particles lying flat (tilt 70–90°): far from isotropic
        let mut rng = rand::rngs::StdRng::seed_from_u64(12);
        let flat: Vec<f64> = (0..200).map(|_| rng.random_range(70.0..90.0)).collect();
        let s = TiltSummary::new(&flat, 9).unwrap();
        assert!(s.ks_p < 1e-4 && s.ks_d > 0.3, "{s:?}");
        assert!(
            s.verdict().contains("not randomly oriented"),
            "{}",
            s.verdict()
        );
        assert_eq!(s.bins[7].count + s.bins[8].count, 200);
    }

    #[test]
    fn aligned_axes_have_a_preferred_direction_and_random_ones_none() {
        let random: Vec<ViewAxis> = random_quats(1000, 21)
            .into_iter()
            .map(ViewAxis::of)
            .collect();
        let p = InPlane::new(&random).unwrap();
        assert!(p.p > 0.05 && p.r < 0.1, "{p:?}");
        assert!(
            p.verdict().contains("no preferred direction"),
            "{}",
            p.verdict()
        );
        // axes along 170°–10° (across the 0/180 seam): mean 0°, not 90°
        let mut rng = rand::rngs::StdRng::seed_from_u64(22);
        let aligned: Vec<ViewAxis> = (0..100)
            .map(|_| ViewAxis {
                tilt_deg: rng.random_range(40.0..90.0),
                azimuth_deg: rng.random_range(-10.0f64..10.0).rem_euclid(180.0),
                directed: false,
            })
            .collect();
        let a = InPlane::new(&aligned).unwrap();
        assert!(a.p < 1e-6 && a.r > 0.9, "{a:?}");
        assert!(a.mean_deg.min(180.0 - a.mean_deg) < 3.0, "{a:?}");
        // face-on axes do not count
        let flat = [ViewAxis {
            tilt_deg: 5.0,
            azimuth_deg: 0.0,
            directed: false,
        }; 50];
        assert!(InPlane::new(&flat).is_none());
        // two opposite directions of a line are the same line
        let two = [
            ViewAxis {
                tilt_deg: 60.0,
                azimuth_deg: 45.0,
                directed: false,
            },
            ViewAxis {
                tilt_deg: 60.0,
                azimuth_deg: 45.0 + 1e-9,
                directed: false,
            },
        ];
        let t = InPlane::new(&two).unwrap();
        assert!((t.r - 1.0).abs() < 1e-9 && (t.mean_deg - 45.0).abs() < 1e-6);
        // five axes at 0° and five at 45°: R = 0.707, and astropy's
        // rayleightest of the doubled angles gives p = 0.00404861711177687
        let mixed: Vec<ViewAxis> = [0.0, 45.0]
            .iter()
            .flat_map(|&azimuth_deg| {
                [ViewAxis {
                    tilt_deg: 80.0,
                    azimuth_deg,
                    directed: false,
                }; 5]
            })
            .collect();
        let m = InPlane::new(&mixed).unwrap();
        assert!((m.p - 0.004_048_617_111_776_87).abs() < 1e-12, "{m:?}");
        assert!((m.mean_deg - 22.5).abs() < 1e-9, "{m:?}");
    }

    #[test]
    fn the_ks_distance_and_p_value_match_hand_computed_cases() {
        // one tilt of 60°: F = 0.5, so D = max(0.5 − 0, 1 − 0.5) = 0.5
        let s = TiltSummary::new(&[60.0], 3).unwrap();
        assert!((s.ks_d - 0.5).abs() < 1e-12);
        assert_eq!(s.median_deg, 60.0);
        // the asymptotic law: Q(1.36) ≈ 0.049, Q(1.63) ≈ 0.010 (the 5 % and 1 % points)
        let n = 1_000_000;
        let d = |lambda: f64| lambda / (1e3 + 0.12 + 0.11 / 1e3);
        assert!((kolmogorov_p(d(1.358), n) - 0.05).abs() < 1e-3);
        assert!((kolmogorov_p(d(1.628), n) - 0.01).abs() < 5e-4);
        assert_eq!(kolmogorov_p(0.0, 10), 1.0);
        // nothing usable
        assert!(TiltSummary::new(&[f64::NAN, -1.0, 95.0], 9).is_none());
    }
}
