//! The left panel: the model, the pose sliders with the live score and the
//! Estimate / Estimate all / Refine buttons, the display (LUT, layout,
//! contrast with its histogram) and export. Widgets push [`Action`]s.

use std::sync::Arc;

use egui::{Color32, RichText};
use egui_plot::{Bar, BarChart, Plot, VLine};

use super::actions::Action;
use super::panels::{coarse_grid, score_colour, tick_label};
use super::state::Layout;
use super::PoseScopeApp;
use crate::io::Frame;
use crate::render::display::{self, auto_contrast_fraction, Lut};
use crate::shapes::{ModelKind, Units};

/// A pose slider, clamped and rounded only when the user moves it: a fit's
/// pose is shown, scored and refined from exactly as fitted (egui's default
/// clamping would round it to the displayed decimals every frame).
fn slider(value: &mut f64, range: std::ops::RangeInclusive<f64>) -> egui::Slider<'_> {
    egui::Slider::new(value, range).clamping(egui::SliderClamping::Edits)
}

/// The Euler angles' names, in slider order.
pub(super) const EULER_NAMES: [&str; 3] = ["rot", "tilt", "psi"];

impl PoseScopeApp {
    pub(super) fn controls_panel(&mut self, ui: &mut egui::Ui, out: &mut Vec<Action>) {
        ui.heading("Model");
        self.model_section(ui, out);
        ui.separator();
        ui.heading("Pose");
        ui.label(RichText::new("Euler ZYZ (RELION rot, tilt, psi), degrees").small());
        let mut c = self.session.controls;
        for (k, name) in EULER_NAMES.iter().enumerate() {
            let range = if k == 1 { 0.0..=180.0 } else { -180.0..=180.0 };
            ui.add(
                slider(&mut c.euler[k], range)
                    .text(format!("{name} (°)"))
                    .fixed_decimals(1)
                    .drag_value_speed(0.5),
            );
        }
        ui.add(slider(&mut c.shift[0], -32.0..=32.0).text("shift x (px)"));
        ui.add(slider(&mut c.shift[1], -32.0..=32.0).text("shift y (px)"));
        ui.add(
            slider(&mut c.sigma, 0.5..=5.0)
                .text("PSF σ (px)")
                .fixed_decimals(2),
        );
        ui.add(
            slider(&mut c.scale, 0.3..=3.0)
                .text("scale")
                .fixed_decimals(3),
        );
        if self.settings.model.is_torus() {
            let max_tube = self.settings.model.template_major_px() * c.scale * 0.9;
            ui.add(
                slider(&mut c.tube_px, 0.0..=max_tube.max(1.0))
                    .text("tube r (px)")
                    .fixed_decimals(2),
            );
        }
        if c != self.session.controls {
            out.push(Action::EditPose {
                controls: c,
                what: "pose change".into(),
            });
        }
        // what the sliders show now (the score is the live view's, for the applied pose)
        let st = c.state();
        let axis = st.pose.q.axis();
        ui.label(format!(
            "axis ({:+.3}, {:+.3}, {:+.3}) · tilt from view {:.1}°",
            axis[0],
            axis[1],
            axis[2],
            axis[2].abs().clamp(0.0, 1.0).acos().to_degrees()
        ));
        ui.label(
            RichText::new(format!(
                "q = ({:.4}, {:.4}, {:.4}, {:.4})",
                st.pose.q.w, st.pose.q.x, st.pose.q.y, st.pose.q.z
            ))
            .small(),
        );
        ui.horizontal(|ui| {
            ui.label("Score (NCC)");
            ui.label(
                RichText::new(if self.live.score.is_finite() {
                    format!("{:.4}", self.live.score)
                } else {
                    "—".into()
                })
                .size(20.0)
                .strong()
                .color(score_colour(self.live.score)),
            );
        });
        let ready = self.fitter.is_some() && self.session.doc().is_some();
        let estimating = self.jobs.fitting();
        ui.horizontal(|ui| {
            if ui
                .add_enabled(ready && !estimating, egui::Button::new("Estimate"))
                .on_hover_text("CNN + refinement on this frame; the sliders move to the result")
                .clicked()
            {
                out.push(Action::EstimateCurrent);
            }
            if ui
                .add_enabled(ready && !estimating, egui::Button::new("Estimate all"))
                .on_hover_text("Every frame of this file, in the background")
                .clicked()
            {
                out.push(Action::EstimateAll);
            }
            if ui
                .add_enabled(ready && !estimating, egui::Button::new("Refine"))
                .on_hover_text("Render-and-compare refinement from the slider pose")
                .clicked()
            {
                out.push(Action::RefineCurrent);
            }
        });
        ui.checkbox(&mut self.settings.auto_estimate, "Estimate each new frame")
            .on_hover_text("Run Estimate automatically when a frame without a fit is shown");
        if self.fitter.is_none() {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("loading the model…");
            });
        }
        if let Some(r) = self.session.result(self.session.frame) {
            match r {
                Ok(fit) => {
                    ui.label(format!(
                        "fit: score {:.4}, {} after {} iterations",
                        fit.outcome.score,
                        if fit.outcome.converged {
                            "converged"
                        } else {
                            "not converged"
                        },
                        fit.outcome.iterations,
                    ))
                    .on_hover_text(format!(
                        "network {:.1} ms, start {:.1} ms, refinement {:.1} ms",
                        fit.cnn_ms, fit.outcome.start_ms, fit.outcome.refine_ms
                    ));
                    if fit.outcome.axis_sd_deg.is_finite() {
                        // a table's particle is fitted to its localisations
                        let table = self
                            .session
                            .doc()
                            .and_then(|d| d.particles.as_ref())
                            .is_some_and(|p| p.is_table());
                        let (from, why) = if table {
                            (
                                "its localisations",
                                "the axis's standard error from the scatter of this particle's \
                                 localisations (the likelihood's curvature, with the blinks of \
                                 one label counted once); on synthetic fields 56–61 % of fits \
                                 are within it, 63 % expected (docs/ACCURACY.md)",
                            )
                        } else {
                            (
                                "the frame's noise",
                                "the axis's standard error from the photon noise of this frame \
                                 (the fit's curvature and residuals); a particle's labelling adds \
                                 error that one frame cannot show, 3–4× this on synthetic tori \
                                 (docs/ACCURACY.md)",
                            )
                        };
                        ui.label(format!(
                            "axis ± {:.2}° from {from}",
                            fit.outcome.axis_sd_deg
                        ))
                        .on_hover_text(why);
                    }
                    if fit.outcome.z_locs > 0 {
                        ui.label(format!(
                            "tilt direction from the z of {} localisations",
                            fit.outcome.z_locs
                        ))
                        .on_hover_text(
                            "fitted to the table's 3D localisations: their z tells the axis \
                             from its mirror in z, which no 2D view can (the explorer marks \
                             the mirror as ruled out)",
                        );
                    }
                }
                Err(e) => {
                    ui.colored_label(Color32::LIGHT_RED, format!("fit failed: {e}"));
                }
            };
        }
        ui.separator();
        ui.heading("Display");
        self.display_section(ui, out);
        ui.separator();
        ui.heading("Export");
        ui.horizontal(|ui| {
            let l = ui.label("zoom");
            ui.add(egui::DragValue::new(&mut self.settings.export_zoom).range(1..=16))
                .labelled_by(l.id);
            if ui.button("Export PNG").clicked() {
                out.push(Action::ExportCurrent);
            }
        });
        let dir = self
            .settings
            .export_dir
            .as_ref()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|| "beside the image".into());
        ui.label(RichText::new(format!("folder: {dir}")).small());
    }

    fn model_section(&mut self, ui: &mut egui::Ui, out: &mut Vec<Action>) {
        let mut spec = self.ui.model_edit.clone();
        egui::ComboBox::from_label("shape")
            .selected_text(spec.model.to_string())
            .show_ui(ui, |ui| {
                for m in ModelKind::ALL {
                    let name = m.to_string();
                    ui.selectable_value(&mut spec.model, m, name);
                }
                if ui.button("Point cloud file…").clicked() {
                    let picked = self.run_dialog(|| {
                        rfd::FileDialog::new()
                            .add_filter("Point clouds", &["ply", "obj", "csv"])
                            .pick_file()
                    });
                    if let Some(p) = picked {
                        spec.model = ModelKind::File(p);
                    }
                }
            });
        ui.horizontal(|ui| {
            let l = ui.label("R");
            ui.add(
                egui::DragValue::new(&mut spec.torus[0])
                    .range(1.0..=5000.0)
                    .speed(0.2),
            )
            .labelled_by(l.id);
            let l = ui.label("r");
            ui.add(
                egui::DragValue::new(&mut spec.torus[1])
                    .range(0.0..=5000.0)
                    .speed(0.1),
            )
            .labelled_by(l.id);
            egui::ComboBox::from_label("units")
                .selected_text(match spec.units {
                    Units::Px => "px",
                    Units::Nm => "nm",
                })
                .width(50.0)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut spec.units, Units::Px, "px");
                    ui.selectable_value(&mut spec.units, Units::Nm, "nm");
                });
        });
        if spec.units == Units::Nm && spec.pixel_size.is_none() {
            spec.pixel_size = self.session.doc().and_then(|d| d.info.pixel_size_nm);
        }
        self.ui.model_edit = spec;
        let changed = self.ui.model_edit != self.settings.model;
        ui.horizontal(|ui| {
            if ui
                .add_enabled(changed, egui::Button::new("Apply model"))
                .clicked()
            {
                out.push(Action::SetModel(self.ui.model_edit.clone()));
            }
            ui.label(RichText::new(self.settings.model.describe()).small());
        });
    }

    /// The 64-bin histogram of frame `f` (the current one), computed once
    /// per frame shown rather than on every repaint.
    fn frame_histogram(&mut self, f: &Frame) -> Option<Arc<display::Histogram>> {
        let key = self.session.frame_key()?;
        match &self.ui.histogram {
            Some((k, h)) if *k == key => Some(h.clone()),
            _ => {
                let h = Arc::new(display::histogram(&f.data, 64));
                self.ui.histogram = Some((key, h.clone()));
                Some(h)
            }
        }
    }

    fn display_section(&mut self, ui: &mut egui::Ui, out: &mut Vec<Action>) {
        ui.horizontal(|ui| {
            egui::ComboBox::from_label("LUT")
                .selected_text(self.settings.lut.name())
                .show_ui(ui, |ui| {
                    for l in Lut::ALL {
                        ui.selectable_value(&mut self.settings.lut, l, l.name());
                    }
                });
        });
        ui.horizontal(|ui| {
            for l in Layout::ALL {
                ui.selectable_value(&mut self.settings.layout, l, l.name());
            }
        });
        let Some(frames) = self.session.doc().map(|d| d.frames.clone()) else {
            return;
        };
        let (Some(f), Some(mut c)) = (frames.get(self.session.frame), self.effective_contrast())
        else {
            return;
        };
        ui.horizontal(|ui| {
            let l = ui.label("min");
            let a = ui
                .add(egui::DragValue::new(&mut c.min).speed(1.0))
                .labelled_by(l.id);
            let l = ui.label("max");
            let b = ui
                .add(egui::DragValue::new(&mut c.max).speed(1.0))
                .labelled_by(l.id);
            if a.changed() || b.changed() {
                if c.max <= c.min {
                    c.max = c.min + 1e-3;
                }
                out.push(Action::SetContrast(c));
            }
        });
        ui.horizontal(|ui| {
            let pct = 100.0 * auto_contrast_fraction(self.session.display.auto_presses);
            if ui
                .button("Auto")
                .on_hover_text(format!(
                    "Saturate {pct:.2} % of pixels; press again to saturate more"
                ))
                .clicked()
            {
                out.push(Action::AutoContrast);
            }
            if ui
                .button("Reset")
                .on_hover_text("Full range of this frame")
                .clicked()
            {
                out.push(Action::ResetContrast);
            }
        });
        let Some(h) = self.frame_histogram(&f) else {
            return;
        };
        let width = ((h.hi - h.lo) / h.counts.len().max(1) as f32) as f64;
        let bars: Vec<Bar> = h
            .counts
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                // filled, unoutlined bars (as in Fiji): two triangles a bar
                Bar::new(h.bin_centre(i) as f64, ((n as f64) + 1.0).log10())
                    .width(width)
                    .fill(Color32::from_gray(120))
                    .stroke(egui::Stroke::NONE)
            })
            .collect();
        Plot::new("histogram")
            .show_background(!self.ui.lean)
            .x_grid_spacer(coarse_grid)
            .y_grid_spacer(coarse_grid)
            .x_axis_formatter(tick_label)
            .y_axis_formatter(tick_label)
            .height(90.0)
            .show_axes([true, false])
            .allow_drag(false)
            .allow_zoom(false)
            .allow_scroll(false)
            .show(ui, |p| {
                p.bar_chart(BarChart::new("log₁₀ count", bars));
                p.vline(
                    VLine::new(format!("min {:.1}", c.min), c.min as f64)
                        .color(Color32::LIGHT_BLUE),
                );
                p.vline(
                    VLine::new(format!("max {:.1}", c.max), c.max as f64).color(Color32::LIGHT_RED),
                );
            });
    }
}
