//! A 3D orbit view of the posed model: the points as the camera sees them,
//! turned by an orbit that the user drags, with the model's symmetry axis
//! (yellow) and the optical axis (blue) drawn. It shows what the image
//! hides: which way the particle tilts towards or away from the viewer.

use egui::{Color32, Pos2, Sense, Stroke, Vec2};

use crate::geometry::Quat;

/// The orbit camera: yaw about the image y axis, then pitch about x.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Orbit {
    /// Degrees about the image's vertical axis.
    pub yaw: f32,
    /// Degrees about the image's horizontal axis.
    pub pitch: f32,
}

impl Default for Orbit {
    fn default() -> Self {
        Self {
            yaw: 35.0,
            pitch: -25.0,
        }
    }
}

impl Orbit {
    /// Camera-frame point → orbit-view point (x right, y down, z away).
    pub fn view(&self, p: [f64; 3]) -> [f64; 3] {
        let (sy, cy) = (self.yaw as f64).to_radians().sin_cos();
        let (sp, cp) = (self.pitch as f64).to_radians().sin_cos();
        // yaw about y
        let x1 = cy * p[0] + sy * p[2];
        let z1 = -sy * p[0] + cy * p[2];
        let y1 = p[1];
        // pitch about x
        [x1, cp * y1 - sp * z1, sp * y1 + cp * z1]
    }
}

/// Draws the posed points (model frame, pixels) at rotation `q` and `scale`
/// in a view of `size`; dragging turns the orbit, double-click resets it.
pub fn orbit_view(
    ui: &mut egui::Ui,
    orbit: &mut Orbit,
    points: &[[f32; 3]],
    q: Quat,
    scale: f64,
    size: Vec2,
    locs: &[[f32; 3]],
) {
    let (rect, response) = ui.allocate_exact_size(size, Sense::click_and_drag());
    if response.dragged() {
        let d = response.drag_delta();
        orbit.yaw = (orbit.yaw + d.x * 0.4) % 360.0;
        orbit.pitch = (orbit.pitch - d.y * 0.4).clamp(-89.0, 89.0);
    }
    if response.double_clicked() {
        *orbit = Orbit::default();
    }
    let painter = ui.painter_at(rect);
    super::view::outline(&painter, rect);
    let rot = q.to_matrix();
    let cam = |p: [f64; 3]| -> [f64; 3] {
        [0, 1, 2].map(|r| scale * (rot[r][0] * p[0] + rot[r][1] * p[1] + rot[r][2] * p[2]))
    };
    let mut pts: Vec<[f64; 3]> = points
        .iter()
        .map(|p| orbit.view(cam([p[0] as f64, p[1] as f64, p[2] as f64])))
        .collect();
    let extent = pts
        .iter()
        .map(|p| (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt())
        .fold(1.0f64, f64::max);
    let zoom = (0.42 * rect.width().min(rect.height())) as f64 / extent;
    let centre = rect.center();
    let to_screen = |p: [f64; 3]| {
        Pos2::new(
            centre.x + (p[0] * zoom) as f32,
            centre.y + (p[1] * zoom) as f32,
        )
    };
    // far points first
    pts.sort_by(|a, b| b[2].total_cmp(&a[2]));
    let radius = (2.2 * rect.width() / 400.0).clamp(1.5, 3.0);
    for p in &pts {
        let t = ((p[2] / extent) * 0.5 + 0.5).clamp(0.0, 1.0) as f32;
        let g = (230.0 - 150.0 * t) as u8;
        painter.circle_filled(
            to_screen(*p),
            radius,
            Color32::from_rgb(g, g, (g as f32 * 1.05).min(255.0) as u8),
        );
    }
    // a 3D table's localisations, already in the camera frame: over the
    // model, so that a fit and its mirror look as different as they are
    let loc_radius = (radius * 0.7).max(1.2);
    for p in locs {
        let v = orbit.view([p[0], p[1], p[2]].map(f64::from));
        painter.circle_filled(
            to_screen(v),
            loc_radius,
            Color32::from_rgba_unmultiplied(255, 140, 40, 200),
        );
    }
    // symmetry axis R·(0,0,±1) and the optical axis (camera z)
    let axis = cam([0.0, 0.0, 1.0]).map(|v| v / scale.max(1e-9));
    let len = 1.3 * extent;
    let a = orbit.view(axis.map(|v| v * len));
    let b = orbit.view(axis.map(|v| -v * len));
    painter.line_segment(
        [to_screen(b), to_screen(a)],
        Stroke::new(2.0, Color32::from_rgb(240, 200, 40)),
    );
    let o = orbit.view([0.0, 0.0, -len]);
    let f = orbit.view([0.0, 0.0, len]);
    painter.arrow(
        to_screen(o),
        to_screen(f) - to_screen(o),
        Stroke::new(1.5, Color32::from_rgb(90, 150, 255)),
    );
    painter.text(
        rect.left_top() + Vec2::new(6.0, 4.0),
        egui::Align2::LEFT_TOP,
        if locs.is_empty() {
            "drag to orbit · yellow: model axis · blue: optical axis (into the image)"
        } else {
            "drag to orbit · yellow: model axis · blue: optical axis · orange: localisations"
        },
        egui::FontId::proportional(12.0),
        Color32::from_gray(170),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_orbit_is_a_rotation_and_zero_is_the_camera_view() {
        let o = Orbit {
            yaw: 0.0,
            pitch: 0.0,
        };
        assert_eq!(o.view([1.0, 2.0, 3.0]), [1.0, 2.0, 3.0]);
        let d = Orbit::default();
        for p in [[1.0, 0.0, 0.0], [0.3, -0.4, 0.5]] {
            let v = d.view(p);
            let n0 = p.iter().map(|x| x * x).sum::<f64>();
            let n1 = v.iter().map(|x| x * x).sum::<f64>();
            assert!((n0 - n1).abs() < 1e-12, "lengths kept");
        }
        let yawed = Orbit {
            yaw: 90.0,
            pitch: 0.0,
        }
        .view([1.0, 0.0, 0.0]);
        assert!((yawed[2] + 1.0).abs() < 1e-12, "{yawed:?}");
    }
}
