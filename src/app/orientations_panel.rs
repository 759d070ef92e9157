//! Results → Orientations: how the fitted frames or particles are oriented
//! as a whole. An equal-area plot of the axes (both ends of each, since one
//! image cannot tell them apart, or the far end alone where a 3D table's z
//! did; the centre is face-on, the rim edge-on),
//! the tilt histogram against what randomly oriented particles would give,
//! and the isotropy test ([`crate::estimate::pose::orientations`], as
//! `posescope orientations`). A click on an axis goes to its frame.

use egui::{Color32, RichText};
use egui_plot::{Bar, BarChart, HoverPosition, Line, MarkerShape, Plot, PlotPoints, Points};

use super::actions::Action;
use super::panels::{coarse_grid, tick_label};
use super::PoseScopeApp;
use crate::estimate::pose::orientations::{
    equal_area_radius, isotropic_cdf, InPlane, TiltSummary, ViewAxis,
};
use crate::export::annotate::write_png;
use crate::export::orientations::orientation_figure;

/// Tilt bins of the histogram.
const BINS: usize = 9;

/// Name of the axes' series, which hover labels look up.
const AXES: &str = "axes";

/// A fitted frame's axis.
struct Axis {
    frame: usize,
    view: ViewAxis,
}

impl PoseScopeApp {
    pub(super) fn orientations_section(&self, ui: &mut egui::Ui, out: &mut Vec<Action>) {
        let axes = self.fitted_axes();
        let views: Vec<ViewAxis> = axes.iter().map(|a| a.view).collect();
        let Some(summary) = TiltSummary::of_axes(&views, BINS) else {
            ui.label(RichText::new("No fitted frames yet.").weak());
            return;
        };
        ui.horizontal_wrapped(|ui| {
            ui.label(summary.verdict());
            if ui
                .button("Save figure…")
                .on_hover_text("the disc and the histogram as a PNG, for a paper")
                .clicked()
            {
                out.push(Action::SaveOrientationFigureDialog);
            }
        });
        for line in InPlane::new(&views).iter().flat_map(InPlane::verdicts) {
            ui.label(line);
        }
        if let Some(k) = self.pole_figure(ui, &axes) {
            out.push(Action::GoToFrame(k));
        }
        self.tilt_histogram(ui, &summary);
    }

    /// The axes of the current document's fitted frames.
    fn fitted_axes(&self) -> Vec<Axis> {
        let Some(doc) = self.session.doc() else {
            return Vec::new();
        };
        doc.results
            .iter()
            .filter_map(|(frame, r)| {
                let outcome = &r.as_ref().ok()?.outcome;
                Some(Axis {
                    frame,
                    view: ViewAxis::of_fit(outcome.state.pose.q, outcome.z_locs > 0),
                })
            })
            .collect()
    }

    /// Writes the orientation figure of the current document's fits to
    /// `path` (PNG, atomically), with a notice either way.
    pub fn save_orientation_figure(&mut self, path: &std::path::Path) {
        let axes: Vec<ViewAxis> = self.fitted_axes().iter().map(|a| a.view).collect();
        let Some(summary) = TiltSummary::of_axes(&axes, BINS) else {
            self.session.info("no fitted frames: nothing to draw");
            return;
        };
        let written = orientation_figure(&axes, &summary).and_then(|img| write_png(path, &img));
        match written {
            Ok(()) => self.session.info(format!(
                "saved the orientations of {} fits to {}",
                summary.n,
                path.display()
            )),
            Err(e) => self.session.error(format!("saving the figure failed: {e}")),
        }
    }

    /// The equal-area plot of the axes; returns the frame clicked.
    fn pole_figure(&self, ui: &mut egui::Ui, axes: &[Axis]) -> Option<usize> {
        let ring = |tilt: f64| {
            let r = equal_area_radius(tilt);
            PlotPoints::from_parametric_callback(
                move |t| (r * t.cos(), r * t.sin()),
                0.0..=std::f64::consts::TAU,
                97,
            )
        };
        let here = self.session.frame;
        // the points of each series, with the axis each belongs to (a line
        // gives two points, a directed axis one)
        let (mut others, mut current) = (Vec::new(), Vec::new());
        let (mut others_of, mut current_of) = (Vec::new(), Vec::new());
        for a in axes {
            let (to, of) = if a.frame == here {
                (&mut current, &mut current_of)
            } else {
                (&mut others, &mut others_of)
            };
            for p in a.view.equal_area() {
                to.push(p);
                of.push(a);
            }
        }
        let label = |pos: &HoverPosition| -> Option<String> {
            let HoverPosition::NearDataPoint {
                plot_name, index, ..
            } = pos
            else {
                return None;
            };
            let a: &Axis = match *plot_name {
                AXES => others_of.get(*index)?,
                "this frame" => current_of.get(*index)?,
                _ => return None,
            };
            let toward = if a.view.directed {
                " (the way it tilts, from z)"
            } else {
                ""
            };
            Some(format!(
                "frame {} · tilt {:.1}°, azimuth {:.1}°{toward}",
                a.frame, a.view.tilt_deg, a.view.azimuth_deg
            ))
        };
        let width = ui.available_width().min(320.0);
        let response = Plot::new("pole figure")
            .data_aspect(1.0)
            .width(width)
            .height(width)
            .show_axes(false)
            .show_grid(false)
            .show_background(!self.ui.lean)
            .allow_drag(false)
            .allow_zoom(false)
            .allow_scroll(false)
            .allow_boxed_zoom(false)
            .allow_double_click_reset(false)
            .set_margin_fraction(egui::Vec2::ZERO)
            .include_x(-1.08)
            .include_x(1.08)
            .include_y(-1.08)
            .include_y(1.08)
            .label_formatter(label)
            .show(ui, |p| {
                // squares, smaller as they crowd: two triangles each, so
                // thousands of axes stay cheap on a software rasteriser
                let crowd = (300.0 / axes.len().max(1) as f32).sqrt();
                p.points(
                    Points::new(AXES, others)
                        .radius((2.5 * crowd).clamp(1.0, 2.5))
                        .shape(MarkerShape::Square)
                        .color(Color32::from_rgb(110, 190, 255)),
                );
                // the rings over the axes, so they stay visible
                for tilt in [30.0, 60.0, 90.0] {
                    let grey = if tilt == 90.0 { 170 } else { 110 };
                    p.line(
                        Line::new(format!("tilt {tilt:.0}°"), ring(tilt))
                            .color(Color32::from_gray(grey))
                            .width(1.0),
                    );
                }
                if !current.is_empty() {
                    p.points(
                        Points::new("this frame", current)
                            .radius(4.5)
                            .color(Color32::YELLOW),
                    );
                }
                p.pointer_coordinate()
            });
        ui.label(
            RichText::new(
                "axes, equal-area: centre face-on, rim edge-on, rings at 30° and 60°; \
                 x right, y down as in the image; each axis shows both its ends, or, where \
                 z told it from its mirror, only its far end (the way it tilts)",
            )
            .small()
            .weak(),
        );
        let at = response.inner?;
        if !response.response.clicked() {
            return None;
        }
        axes.iter()
            .map(|a| {
                let d = a
                    .view
                    .equal_area()
                    .map(|p| (p[0] - at.x).hypot(p[1] - at.y))
                    .fold(f64::INFINITY, f64::min);
                (a.frame, d)
            })
            .filter(|&(_, d)| d < 0.08)
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(k, _)| k)
    }

    /// Counts per tilt bin, with what random orientation would give.
    fn tilt_histogram(&self, ui: &mut egui::Ui, s: &TiltSummary) {
        let width = s.bins.first().map_or(10.0, |b| b.hi_deg - b.lo_deg);
        let bars: Vec<Bar> = s
            .bins
            .iter()
            .map(|b| {
                Bar::new((b.lo_deg + b.hi_deg) / 2.0, b.count as f64)
                    .width(width * 0.9)
                    .fill(Color32::from_rgb(70, 130, 180))
                    .name(format!(
                        "{:.0}–{:.0}°: {} (random: {:.1})",
                        b.lo_deg, b.hi_deg, b.count, b.isotropic
                    ))
            })
            .collect();
        // what a bin of this width centred at each tilt would expect: through
        // the middle of each bar's expectation, as a smooth curve
        let n = s.n as f64;
        let expected = PlotPoints::from_explicit_callback(
            move |t| n * (isotropic_cdf(t + width / 2.0) - isotropic_cdf(t - width / 2.0)),
            width / 2.0..=90.0 - width / 2.0,
            64,
        );
        Plot::new("tilt histogram")
            .height(110.0)
            .show_background(!self.ui.lean)
            .x_grid_spacer(coarse_grid)
            .y_grid_spacer(coarse_grid)
            .x_axis_formatter(tick_label)
            .y_axis_formatter(tick_label)
            .allow_drag(false)
            .allow_zoom(false)
            .allow_scroll(false)
            .include_x(0.0)
            .include_x(90.0)
            .include_y(0.0)
            .show(ui, |p| {
                p.bar_chart(BarChart::new("count", bars));
                p.line(
                    Line::new("random orientation", expected)
                        .color(Color32::from_rgb(255, 170, 60))
                        .width(1.5),
                );
            });
        ui.label(
            RichText::new(
                "tilt from the optical axis (°): counts, and what random orientation gives \
                 (orange); fits of nearly face-on particles drift out of the first bin",
            )
            .small()
            .weak(),
        );
    }
}
