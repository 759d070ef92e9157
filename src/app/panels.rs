//! The viewer's panel layout and its frame: menu bar, status bar, the
//! central image views with the frame bar, and the notices. The side panels
//! are in `controls` (model, pose, display, export) and `explorer`
//! (symmetry explorer, results). Panels read the state and push
//! [`Action`]s; they change no session state themselves.

use egui::{Color32, RichText, Vec2};

use super::actions::Action;
use super::jobs::file_name;
use super::state::Layout;
use super::view::{image_view, paint_scale_bar};
use super::{PoseScopeApp, RightTab};
use crate::render::display::{self, Lut};

impl PoseScopeApp {
    pub(super) fn panels(
        &mut self,
        ui: &mut egui::Ui,
        ctx: &egui::Context,
        frame: &eframe::Frame,
        out: &mut Vec<Action>,
    ) {
        // Panels are not filled: the window is cleared with the panel colour
        // (`clear_color`), which saves a full-window textured fill per frame
        // on software rasterisers (lavapipe), where fill rate bounds the FPS.
        let style = ctx.global_style();
        let side = egui::Frame::side_top_panel(&style).fill(Color32::TRANSPARENT);
        let central = egui::Frame::central_panel(&style).fill(Color32::TRANSPARENT);
        egui::Panel::top("menu")
            .frame(side)
            .show(ui, |ui| self.menu_bar(ui, ctx, out));
        egui::Panel::bottom("status")
            .frame(side)
            .show(ui, |ui| self.status_bar(ui, out));
        egui::Panel::left("controls")
            .frame(side)
            .resizable(true)
            .default_size(310.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| self.controls_panel(ui, out));
            });
        egui::Panel::right("explorer")
            .frame(side)
            .resizable(true)
            .default_size(340.0)
            .show(ui, |ui| {
                ui.horizontal(|ui| {
                    ui.selectable_value(&mut self.ui.right_tab, RightTab::Symmetry, "Symmetry");
                    ui.selectable_value(&mut self.ui.right_tab, RightTab::Results, "Results");
                    ui.selectable_value(&mut self.ui.right_tab, RightTab::Picks, "Picks");
                    ui.selectable_value(&mut self.ui.right_tab, RightTab::Learn, "Learn");
                });
                ui.separator();
                match self.ui.right_tab {
                    // thousands of picks: the panel scrolls its own rows, laying out only those shown
                    RightTab::Picks => self.picks_panel(ui, out),
                    tab => {
                        egui::ScrollArea::vertical().show(ui, |ui| match tab {
                            RightTab::Results => self.results_table(ui, out),
                            RightTab::Learn => self.learn_panel(ui, out),
                            _ => self.explorer_panel(ui, out),
                        });
                    }
                }
            });
        egui::CentralPanel::default()
            .frame(central)
            .show(ui, |ui| self.central(ui, ctx, frame, out));
    }

    fn menu_bar(&mut self, ui: &mut egui::Ui, ctx: &egui::Context, out: &mut Vec<Action>) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui
                    .add(egui::Button::new("Open…").shortcut_text("Ctrl+O"))
                    .clicked()
                {
                    out.push(Action::OpenDialog);
                }
                if ui
                    .button("Open folder…")
                    .on_hover_text(
                        "Every image inside; single-frame images of one size open as one sequence",
                    )
                    .clicked()
                {
                    out.push(Action::OpenFolderDialog);
                }
                ui.menu_button("Open recent", |ui| {
                    if self.settings.recent.is_empty() {
                        ui.label("(none yet)");
                    }
                    for p in self.settings.recent.clone() {
                        if ui.button(p.display().to_string()).clicked() {
                            out.push(Action::Open(vec![p]));
                        }
                    }
                });
                ui.separator();
                if ui
                    .add(egui::Button::new("Export PNG").shortcut_text("Ctrl+E"))
                    .clicked()
                {
                    out.push(Action::ExportCurrent);
                }
                if ui.button("Export all fitted frames").clicked() {
                    out.push(Action::ExportAll);
                }
                if ui.button("Export folder…").clicked() {
                    out.push(Action::ChooseExportFolder);
                }
                if ui
                    .add(egui::Button::new("Save results CSV…").shortcut_text("Ctrl+S"))
                    .clicked()
                {
                    out.push(Action::SaveResultsDialog);
                }
                ui.checkbox(&mut self.settings.autosave, "Autosave results")
                    .on_hover_text(
                        "Save each file's results beside it (NAME.posescope.csv) as they \
                         arrive, and restore them when the file is opened again",
                    );
                ui.separator();
                if ui.button("Quit").clicked() {
                    ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                }
            });
            ui.menu_button("Edit", |ui| {
                let next = self.session.doc().and_then(|d| d.history.next_undo());
                let label = next.map_or("Undo".to_string(), |what| format!("Undo {what}"));
                let undo = egui::Button::new(label).shortcut_text("Ctrl+Z");
                if ui
                    .add_enabled(next.is_some(), undo)
                    .on_disabled_hover_text(
                        "Undo takes back pose changes, fits that replaced others and edits of a field's picks",
                    )
                    .clicked()
                {
                    out.push(Action::Undo);
                }
            });
            ui.menu_button("View", |ui| {
                for l in Layout::ALL {
                    ui.radio_value(&mut self.settings.layout, l, l.name());
                }
                ui.separator();
                for l in Lut::ALL {
                    ui.radio_value(&mut self.settings.lut, l, l.name());
                }
                ui.separator();
                ui.checkbox(&mut self.ui.lean, "Lean drawing")
                    .on_hover_text(
                        "Fewer filled pixels: no anti-aliased edges, plot backgrounds or table \
                         stripes. On by default when the GPU is a software rasteriser \
                         (e.g. lavapipe), where every drawn pixel costs CPU time.",
                    );
                ui.add_enabled(
                    self.ui.gpu.is_some(),
                    egui::Checkbox::new(&mut self.ui.gpu_model, "GPU model view"),
                )
                .on_hover_text(
                    "Render the model with the WGSL splat shader. Off by default when the \
                     GPU is a software rasteriser (e.g. lavapipe): there the CPU renderer \
                     draws the same image for about a tenth of the CPU time.",
                );
                ui.separator();
                if ui
                    .add(egui::Button::new("Fit to window").shortcut_text("Home"))
                    .clicked()
                {
                    out.push(Action::FitView);
                }
            });
            ui.menu_button("Help", |ui| {
                ui.label(
                    "Ctrl+O open · Ctrl+E export PNG · Ctrl+S save results\n\
                     ←/→ previous/next frame · Home fit to window\n\
                     Picks: N next candidate · A accept · Delete remove · Ctrl+Z undo\n\
                     Wheel zoom · drag pan · double-click fit\n\
                     Drop image files on the window to open them.",
                );
                ui.separator();
                ui.label(format!("PoseScope {}", env!("CARGO_PKG_VERSION")));
            });
        });
    }

    fn status_bar(&self, ui: &mut egui::Ui, out: &mut Vec<Action>) {
        ui.horizontal(|ui| {
            match self.ui.hover {
                Some((x, y, v)) => ui.monospace(format!("x {x:4}  y {y:4}  value {v:.1}")),
                None => ui.monospace("x —  y —  value —"),
            };
            ui.separator();
            if let Some(d) = self.session.doc() {
                let px = d
                    .info
                    .pixel_size_nm
                    .map(|p| format!("{p:.1} nm/px"))
                    .unwrap_or_else(|| "pixel size unknown".into());
                ui.label(match &d.particles {
                    Some(p) => format!("{} · {}", d.info.format, p.status_line()),
                    None => format!(
                        "{} · {}×{} · {} frames · {px}",
                        d.info.format, d.info.width, d.info.height, d.info.frames
                    ),
                });
                if let Some(p) = &d.info.palette {
                    ui.label(format!("· palette image, {} colours (its own)", p.len()));
                }
            }
            if self.live.nonfinite > 0 {
                ui.separator();
                let n = self.live.nonfinite;
                ui.colored_label(
                    egui::Color32::from_rgb(0, 200, 220),
                    format!("{n} non-finite pixels (cyan; the score and fit use the median there)"),
                );
            }
            ui.separator();
            ui.label(if self.gpu_active() {
                "model view: GPU (wgpu)"
            } else {
                "model view: CPU"
            });
            let mut cancel = false;
            for j in self.jobs.visible() {
                ui.separator();
                ui.add(
                    egui::ProgressBar::new(j.fraction())
                        .desired_width(160.0)
                        .text(j.label())
                        .animate(true),
                );
                cancel |= ui.button("Cancel").clicked();
            }
            if cancel {
                out.push(Action::CancelJobs);
            }
        });
    }

    fn central(
        &mut self,
        ui: &mut egui::Ui,
        ctx: &egui::Context,
        frame: &eframe::Frame,
        out: &mut Vec<Action>,
    ) {
        self.notices_ui(ui, out);
        let n = self.frame_count();
        let is_table = self.session.doc().is_some_and(|d| d.particles.is_some());
        if is_table {
            ui.horizontal(|ui| {
                if ui
                    .selectable_label(self.ui.show_field, "Field")
                    .on_hover_text("The whole field with its picks")
                    .clicked()
                {
                    out.push(Action::ShowField(true));
                }
                if ui
                    .selectable_label(!self.ui.show_field, "Particle")
                    .on_hover_text("The selected particle and its model")
                    .clicked()
                {
                    out.push(Action::ShowField(false));
                }
            });
            if self.ui.show_field {
                self.field_central(ui, out);
                return;
            }
        }
        if n == 0 {
            ui.centered_and_justified(|ui| {
                if self.jobs.busy() {
                    ui.spinner();
                } else {
                    ui.label("Open images with File → Open (Ctrl+O) or drop them here.");
                }
            });
            return;
        }
        ui.horizontal(|ui| {
            let here = self.session.frame;
            if ui.button("◀").on_hover_text("Previous frame (←)").clicked() && here > 0 {
                out.push(Action::GoToFrame(here - 1));
            }
            let mut k = here;
            ui.add(egui::Slider::new(&mut k, 0..=n - 1).text("frame"));
            if k != here {
                out.push(Action::GoToFrame(k));
            }
            if ui.button("▶").on_hover_text("Next frame (→)").clicked() {
                out.push(Action::GoToFrame(here + 1));
            }
            ui.label(format!("of {n}"));
            // a sequence names the frame's own file after its folder
            let frame_file = self.session.doc().and_then(|d| d.frame_file(here));
            if let Some(p) = self.current_path() {
                let text = match frame_file {
                    Some(f) => format!("{}/{}", file_name(p), file_name(f)),
                    None => file_name(p),
                };
                ui.label(RichText::new(text).weak());
            }
            if self.session.docs.len() > 1 {
                let mut cur = self.session.current;
                egui::ComboBox::from_label("open files")
                    .selected_text("switch file")
                    .show_ui(ui, |ui| {
                        for (i, d) in self.session.docs.iter().enumerate() {
                            ui.selectable_value(&mut cur, i, d.path.display().to_string());
                        }
                    });
                if cur != self.session.current {
                    out.push(Action::SwitchDocument(cur));
                }
            }
        });
        let Some(raw_img) = self.raw_image(ctx) else {
            return;
        };
        let model_img = self.model_image(ctx, frame);
        let Some(f) = self.session.current_frame() else {
            return;
        };
        let size = (f.width, f.height);
        let pixel_size = self.session.doc().and_then(|d| d.info.pixel_size_nm);
        let avail = ui.available_size();
        let gap = 6.0;
        let half = Vec2::new(
            ((avail.x - gap) / 2.0).max(50.0),
            (avail.y - 22.0).max(50.0),
        );
        let mut hover = None;
        ui.horizontal(|ui| {
            ui.vertical(|ui| {
                ui.label("raw");
                let out = image_view(ui, raw_img, size, &mut self.ui.view, half);
                if let Some((x, y)) = out.hover_pixel {
                    hover = Some((x, y));
                }
                if let Some(bar) = pixel_size.and_then(|p| display::scale_bar(p, size.0 as f64)) {
                    paint_scale_bar(ui, out.rect, self.ui.view.zoom, bar.length_px, &bar.label);
                }
            });
            ui.add_space(gap);
            ui.vertical(|ui| {
                ui.label(match self.settings.layout {
                    Layout::SideBySide if self.gpu_active() => "model (GPU render)",
                    Layout::SideBySide => "model (CPU render)",
                    Layout::Overlay => "overlay: raw magenta, model green",
                    Layout::Residual => "residual: raw − (a·model + b)",
                    Layout::Orbit3d => "3D: the posed model",
                });
                if self.settings.layout == Layout::Orbit3d {
                    let st = self.session.controls.state();
                    let locs = self.particle_locs_3d(st.pose.shift).unwrap_or_default();
                    if !locs.is_empty() {
                        ui.label(format!(
                            "with the particle's {} localisations in 3D (orange; z about their median)",
                            locs.len()
                        ));
                    }
                    super::orbit::orbit_view(
                        ui,
                        &mut self.ui.orbit,
                        &self.live.points,
                        st.pose.q,
                        st.scale,
                        half,
                        &locs,
                    );
                } else if let Some(img) = model_img {
                    let out = image_view(ui, img, size, &mut self.ui.view, half);
                    if let Some((x, y)) = out.hover_pixel {
                        hover = Some((x, y));
                    }
                }
            });
        });
        self.ui.hover = hover.and_then(|(x, y)| {
            let f = self.session.current_frame()?;
            Some((x, y, *f.data.get(y * f.width + x)?))
        });
    }

    fn notices_ui(&self, ui: &mut egui::Ui, out: &mut Vec<Action>) {
        let mut dismiss = None;
        for (i, n) in self.session.notices.iter().enumerate().rev().take(4) {
            let (bg, fg) = if n.is_error {
                (
                    Color32::from_rgb(90, 20, 20),
                    Color32::from_rgb(255, 200, 200),
                )
            } else {
                (
                    Color32::from_rgb(20, 45, 80),
                    Color32::from_rgb(200, 225, 255),
                )
            };
            egui::Frame::new()
                .fill(bg)
                .inner_margin(6.0)
                .corner_radius(4.0)
                .show(ui, |ui| {
                    ui.horizontal(|ui| {
                        if ui.small_button("×").on_hover_text("Dismiss").clicked() {
                            dismiss = Some(i);
                        }
                        ui.label(
                            RichText::new(if n.is_error { "Error" } else { "Note" })
                                .strong()
                                .color(fg),
                        );
                        ui.add(egui::Label::new(RichText::new(&n.text).color(fg)).wrap());
                    });
                });
        }
        if let Some(i) = dismiss {
            out.push(Action::DismissNotice(i));
        }
    }
}

/// Colour of a score: red (poor) to green (good).
pub(crate) fn score_colour(s: f64) -> Color32 {
    if !s.is_finite() {
        return Color32::GRAY;
    }
    let t = ((s - 0.5) / 0.45).clamp(0.0, 1.0) as f32;
    Color32::from_rgb(
        (230.0 * (1.0 - t) + 60.0 * t) as u8,
        (80.0 + 140.0 * t) as u8,
        70,
    )
}

/// Plot grid marks at one "nice" step (1, 2 or 5 × 10ⁿ, about four per
/// axis), instead of egui_plot's three fading levels: the same labels, far
/// fewer thin lines to rasterise.
pub(super) fn coarse_grid(input: egui_plot::GridInput) -> Vec<egui_plot::GridMark> {
    let (lo, hi) = input.bounds;
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return Vec::new();
    }
    let rough = span / 4.0;
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * magnitude);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last)
        .map(|k| egui_plot::GridMark {
            value: k as f64 * step,
            step_size: step,
        })
        .collect()
}

/// Axis label of a [`coarse_grid`] mark: the value with its trailing zeros
/// dropped (egui_plot's own labels take their decimals from the step, and
/// print 0.5 as "0").
pub(super) fn tick_label(
    mark: egui_plot::GridMark,
    _range: &std::ops::RangeInclusive<f64>,
) -> String {
    let v = (mark.value * 1e6).round() / 1e6;
    // −0 prints as "-0"
    format!("{}", if v == 0.0 { 0.0 } else { v })
}

#[cfg(test)]
mod tests {
    use super::{coarse_grid, tick_label};

    fn marks(lo: f64, hi: f64) -> Vec<f64> {
        coarse_grid(egui_plot::GridInput {
            bounds: (lo, hi),
            base_step_size: 1e-9,
        })
        .into_iter()
        .map(|m| m.value)
        .collect()
    }

    #[test]
    fn coarse_grid_uses_one_nice_step() {
        assert_eq!(marks(-180.0, 180.0), vec![-100.0, 0.0, 100.0]);
        assert_eq!(marks(0.0, 1.0), vec![0.0, 0.5, 1.0]);
        assert_eq!(marks(95.0, 240.0), vec![100.0, 150.0, 200.0]);
        assert!(marks(1.0, 1.0).is_empty());
        assert!(marks(0.0, f64::NAN).is_empty());
    }

    #[test]
    fn tick_labels_keep_halves_and_drop_zeros() {
        let label = |value: f64| {
            tick_label(
                egui_plot::GridMark {
                    value,
                    step_size: 0.5,
                },
                &(0.0..=1.0),
            )
        };
        assert_eq!(label(0.5), "0.5");
        assert_eq!(label(1.0), "1");
        assert_eq!(label(-100.0), "-100");
        assert_eq!(label(-0.0), "0");
        assert_eq!(label(0.1 + 0.2), "0.3");
    }
}
