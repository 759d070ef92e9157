//! The viewer's panels: menu, controls, symmetry explorer, results, images.

use egui::{Color32, RichText, Vec2};
use egui_plot::{Bar, BarChart, Line, Plot, PlotPoints, VLine};

use super::gpu_view::Layout;
use super::view::{image_view, paint_scale_bar};
use super::{score_colour, PoseScopeApp, RightTab};
use crate::estimate::pipeline::ModelSpec;
use crate::geometry::symmetry::EquivalenceKind;
use crate::render::display::{self, auto_contrast, auto_contrast_fraction, Contrast, Lut};
use crate::shapes::Units;

const EULER_NAMES: [&str; 3] = ["rot", "tilt", "psi"];

impl PoseScopeApp {
    pub(super) fn panels(&mut self, ui: &mut egui::Ui, ctx: &egui::Context, frame: &eframe::Frame) {
        // Panels are not filled: the window is cleared with the panel colour
        // (`clear_color`), which saves a full-window textured fill per frame
        // on software rasterisers (lavapipe), where fill rate bounds the FPS.
        let style = ctx.global_style();
        let side = egui::Frame::side_top_panel(&style).fill(Color32::TRANSPARENT);
        let central = egui::Frame::central_panel(&style).fill(Color32::TRANSPARENT);
        egui::Panel::top("menu")
            .frame(side)
            .show(ui, |ui| self.menu_bar(ui, ctx));
        egui::Panel::bottom("status")
            .frame(side)
            .show(ui, |ui| self.status_bar(ui));
        egui::Panel::left("controls")
            .frame(side)
            .resizable(true)
            .default_size(310.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| self.controls_panel(ui));
            });
        egui::Panel::right("explorer")
            .frame(side)
            .resizable(true)
            .default_size(340.0)
            .show(ui, |ui| {
                ui.horizontal(|ui| {
                    ui.selectable_value(&mut self.right_tab, RightTab::Symmetry, "Symmetry");
                    ui.selectable_value(&mut self.right_tab, RightTab::Results, "Results");
                });
                ui.separator();
                egui::ScrollArea::vertical().show(ui, |ui| match self.right_tab {
                    RightTab::Symmetry => self.explorer_panel(ui),
                    RightTab::Results => self.results_table(ui),
                });
            });
        egui::CentralPanel::default()
            .frame(central)
            .show(ui, |ui| self.central(ui, ctx, frame));
    }

    fn menu_bar(&mut self, ui: &mut egui::Ui, ctx: &egui::Context) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui
                    .add(egui::Button::new("Open…").shortcut_text("Ctrl+O"))
                    .clicked()
                {
                    self.open_dialog();
                }
                ui.menu_button("Open recent", |ui| {
                    if self.settings.recent.is_empty() {
                        ui.label("(none yet)");
                    }
                    for p in self.settings.recent.clone() {
                        if ui.button(p.display().to_string()).clicked() {
                            self.open_paths(vec![p]);
                        }
                    }
                });
                ui.separator();
                if ui
                    .add(egui::Button::new("Export PNG").shortcut_text("Ctrl+E"))
                    .clicked()
                {
                    self.export_current();
                }
                if ui.button("Export all fitted frames").clicked() {
                    self.export_all();
                }
                if ui.button("Export folder…").clicked() {
                    if let Some(d) = self.run_dialog(|| rfd::FileDialog::new().pick_folder()) {
                        self.settings.export_dir = Some(d);
                    }
                }
                if ui
                    .add(egui::Button::new("Save results CSV…").shortcut_text("Ctrl+S"))
                    .clicked()
                {
                    self.save_results_dialog();
                }
                ui.separator();
                if ui.button("Quit").clicked() {
                    ctx.send_viewport_cmd(egui::ViewportCommand::Close);
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
                ui.checkbox(&mut self.lean, "Lean drawing").on_hover_text(
                    "Fewer filled pixels: no anti-aliased edges, plot backgrounds or table \
                         stripes. On by default when the GPU is a software rasteriser \
                         (e.g. lavapipe), where every drawn pixel costs CPU time.",
                );
                ui.add_enabled(
                    self.gpu.is_some(),
                    egui::Checkbox::new(&mut self.gpu_model, "GPU model view"),
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
                    self.view.fit_pending = true;
                }
            });
            ui.menu_button("Help", |ui| {
                ui.label(
                    "Ctrl+O open · Ctrl+E export PNG · Ctrl+S save results\n\
                     ←/→ previous/next frame · Home fit to window\n\
                     Wheel zoom · drag pan · double-click fit\n\
                     Drop image files on the window to open them.",
                );
                ui.separator();
                ui.label(format!("PoseScope {}", env!("CARGO_PKG_VERSION")));
            });
        });
    }

    fn status_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            match self.hover {
                Some((x, y, v)) => ui.monospace(format!("x {x:4}  y {y:4}  value {v:.1}")),
                None => ui.monospace("x —  y —  value —"),
            };
            ui.separator();
            if let Some(d) = self.doc() {
                let px = d
                    .info
                    .pixel_size_nm
                    .map(|p| format!("{p:.1} nm/px"))
                    .unwrap_or_else(|| "pixel size unknown".into());
                ui.label(format!(
                    "{} · {}×{} · {} frames · {px}",
                    d.info.format, d.info.width, d.info.height, d.info.frames
                ));
            }
            ui.separator();
            ui.label(if self.gpu_active() {
                "model view: GPU (wgpu)"
            } else {
                "model view: CPU"
            });
            let mut cancel = false;
            for j in &self.jobs.running {
                ui.separator();
                ui.add(
                    egui::ProgressBar::new(j.fraction())
                        .desired_width(160.0)
                        .text(j.label.clone())
                        .animate(true),
                );
                cancel |= ui.button("Cancel").clicked();
            }
            if cancel {
                self.jobs.cancel_all();
            }
        });
    }

    fn controls_panel(&mut self, ui: &mut egui::Ui) {
        ui.heading("Model");
        self.model_section(ui);
        ui.separator();
        ui.heading("Pose");
        ui.label(RichText::new("Euler ZYZ (RELION rot, tilt, psi), degrees").small());
        let mut c = self.controls;
        for (k, name) in EULER_NAMES.iter().enumerate() {
            let range = if k == 1 { 0.0..=180.0 } else { -180.0..=180.0 };
            ui.add(
                egui::Slider::new(&mut c.euler[k], range)
                    .text(format!("{name} (°)"))
                    .fixed_decimals(1)
                    .drag_value_speed(0.5),
            );
        }
        ui.add(egui::Slider::new(&mut c.shift[0], -32.0..=32.0).text("shift x (px)"));
        ui.add(egui::Slider::new(&mut c.shift[1], -32.0..=32.0).text("shift y (px)"));
        ui.add(
            egui::Slider::new(&mut c.sigma, 0.5..=5.0)
                .text("PSF σ (px)")
                .fixed_decimals(2),
        );
        ui.add(
            egui::Slider::new(&mut c.scale, 0.3..=3.0)
                .text("scale")
                .fixed_decimals(3),
        );
        if self.settings.model.is_torus() {
            let max_tube = self.settings.model.template_major_px() * c.scale * 0.9;
            ui.add(
                egui::Slider::new(&mut c.tube_px, 0.0..=max_tube.max(1.0))
                    .text("tube r (px)")
                    .fixed_decimals(2),
            );
        }
        if c != self.controls {
            // render and score now, so the score below belongs to this slider position
            self.controls = c;
            self.update_render();
        }
        let st = self.controls.state();
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
                RichText::new(if self.score.is_finite() {
                    format!("{:.4}", self.score)
                } else {
                    "—".into()
                })
                .size(20.0)
                .strong()
                .color(score_colour(self.score)),
            );
        });
        let ready = self.fitter.is_some() && self.doc().is_some();
        let estimating = self.jobs.running_kind("Estimating") || self.jobs.running_kind("Refining");
        ui.horizontal(|ui| {
            if ui
                .add_enabled(ready && !estimating, egui::Button::new("Estimate"))
                .on_hover_text("CNN + refinement on this frame; the sliders move to the result")
                .clicked()
            {
                self.estimate_current();
            }
            if ui
                .add_enabled(ready && !estimating, egui::Button::new("Estimate all"))
                .on_hover_text("Every frame of this file, in the background")
                .clicked()
            {
                self.estimate_all();
            }
            if ui
                .add_enabled(ready && !estimating, egui::Button::new("Refine"))
                .on_hover_text("Render-and-compare refinement from the slider pose")
                .clicked()
            {
                self.refine_current();
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
        if let Some(Some(r)) = self.doc().and_then(|d| d.results.get(self.frame)) {
            match r {
                Ok(fit) => ui
                    .label(format!(
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
                    )),
                Err(e) => ui.colored_label(Color32::LIGHT_RED, format!("fit failed: {e}")),
            };
        }
        ui.separator();
        ui.heading("Display");
        self.display_section(ui);
        ui.separator();
        ui.heading("Export");
        ui.horizontal(|ui| {
            let l = ui.label("zoom");
            ui.add(egui::DragValue::new(&mut self.settings.export_zoom).range(1..=16))
                .labelled_by(l.id);
            if ui.button("Export PNG").clicked() {
                self.export_current();
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

    fn model_section(&mut self, ui: &mut egui::Ui) {
        let mut spec = self.model_edit.clone();
        egui::ComboBox::from_label("shape")
            .selected_text(spec.model.clone())
            .show_ui(ui, |ui| {
                for m in ["torus", "torus-gap", "torus-marker", "ring:8"] {
                    ui.selectable_value(&mut spec.model, m.to_string(), m);
                }
                if ui.button("Point cloud file…").clicked() {
                    let picked = self.run_dialog(|| {
                        rfd::FileDialog::new()
                            .add_filter("Point clouds", &["ply", "obj", "csv"])
                            .pick_file()
                    });
                    if let Some(p) = picked {
                        spec.model = p.display().to_string();
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
            spec.pixel_size = self.doc().and_then(|d| d.info.pixel_size_nm);
        }
        self.model_edit = spec;
        let changed = self.model_edit != self.settings.model;
        ui.horizontal(|ui| {
            if ui
                .add_enabled(changed, egui::Button::new("Apply model"))
                .clicked()
            {
                let spec: ModelSpec = self.model_edit.clone();
                self.set_model(spec);
            }
            ui.label(RichText::new(self.settings.model.describe()).small());
        });
    }

    /// The 64-bin histogram of frame `f` (the current one), computed once
    /// per frame shown rather than on every repaint.
    fn frame_histogram(&mut self, f: &crate::io::Frame) -> std::sync::Arc<display::Histogram> {
        let key = (self.doc().map_or(0, |d| d.id), self.frame);
        match &self.histogram {
            Some((k, h)) if *k == key => h.clone(),
            _ => {
                let h = std::sync::Arc::new(display::histogram(&f.data, 64));
                self.histogram = Some((key, h.clone()));
                h
            }
        }
    }

    fn display_section(&mut self, ui: &mut egui::Ui) {
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
        let Some(frames) = self.doc().map(|d| d.frames.clone()) else {
            return;
        };
        let (Some(f), Some(mut c)) = (frames.get(self.frame), self.effective_contrast()) else {
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
                self.contrast = Some(c);
            }
        });
        ui.horizontal(|ui| {
            let pct = 100.0 * auto_contrast_fraction(self.auto_presses);
            if ui
                .button("Auto")
                .on_hover_text(format!(
                    "Saturate {pct:.2} % of pixels; press again to saturate more"
                ))
                .clicked()
            {
                self.auto_presses += 1;
                let frac = auto_contrast_fraction(self.auto_presses);
                self.contrast = Some(auto_contrast(&f.data, frac));
            }
            if ui
                .button("Reset")
                .on_hover_text("Full range of this frame")
                .clicked()
            {
                self.auto_presses = 0;
                self.contrast = Some(Contrast::full(&f.data));
            }
        });
        let h = self.frame_histogram(f);
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
            .show_background(!self.lean)
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

    fn explorer_panel(&mut self, ui: &mut egui::Ui) {
        ui.heading("Symmetry explorer");
        let sym = self.model.symmetry;
        ui.label(format!("model symmetry: {sym}"));
        ui.label(
            RichText::new(
                "Score as each angle sweeps 360° with the others fixed. Flat curves and \
                 repeated peaks are poses the image cannot tell apart.",
            )
            .small(),
        );
        for (k, name) in EULER_NAMES.iter().enumerate() {
            let current = self.controls.euler[k];
            let curve = self.sweeps.as_ref().map(|s| s.curves[k].clone());
            Plot::new(format!("sweep-{name}"))
                .show_background(!self.lean)
                .x_grid_spacer(coarse_grid)
                .y_grid_spacer(coarse_grid)
                .x_axis_formatter(tick_label)
                .y_axis_formatter(tick_label)
                .height(80.0)
                .include_y(0.0)
                .include_y(1.0)
                .allow_drag(false)
                .allow_zoom(false)
                .allow_scroll(false)
                .show(ui, |p| {
                    if let Some(c) = curve {
                        p.line(Line::new(format!("score vs {name}"), PlotPoints::from(c)));
                    }
                    p.vline(
                        VLine::new(format!("{name} = {current:.1}°"), current)
                            .color(Color32::YELLOW),
                    );
                });
        }
        if self.sweep_rx.is_some() {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("computing sweeps…");
            });
        }
        ui.separator();
        ui.label(RichText::new("Equivalent poses").strong());
        ui.label(
            RichText::new(
                "These poses project to the same image: rotating the model by its own symmetry \
                 changes nothing, and an orthographic view cannot tell z from −z (the mirror).",
            )
            .small(),
        );
        let q = self.controls.state().pose.q;
        // A continuous symmetry (the torus spins freely about its axis) is
        // listed once, with the spin stated, instead of as a list of samples.
        let continuous = sym.group.is_continuous();
        if continuous {
            ui.label(
                RichText::new(
                    "Each row also stands for every spin about the model's own axis: any psi \
                     gives the same image (the flat psi curve above).",
                )
                .small(),
            );
        }
        let mut eq = sym.equivalent_poses(q, if continuous { 1 } else { 4 });
        // this pose, then the mirror, then the group: the most surprising first
        eq.sort_by_key(|e| match e.kind {
            EquivalenceKind::Identity => 0,
            EquivalenceKind::ProjectionMirror => 1,
            EquivalenceKind::Group => 2,
            EquivalenceKind::GroupAndMirror => 3,
        });
        let mut jump = None;
        ui.label(RichText::new("rot, tilt, psi (°)").small());
        egui::Grid::new("equivalents")
            .striped(!self.lean)
            .show(ui, |ui| {
                for (i, e) in eq.iter().enumerate() {
                    let (a, b, c) = e.q.to_euler_zyz_deg();
                    let tag = match e.kind {
                        EquivalenceKind::Identity => "this pose",
                        EquivalenceKind::Group => "symmetry",
                        EquivalenceKind::ProjectionMirror => "mirror",
                        EquivalenceKind::GroupAndMirror => "symmetry + mirror",
                    };
                    ui.label(tag).on_hover_text(&e.description);
                    // rounded as shown, and without a "−0.0"
                    let tidy = |v: f64| (v * 10.0).round() / 10.0 + 0.0;
                    let (a, b, c) = (tidy(a), tidy(b), tidy(c));
                    ui.monospace(format!("{a:7.1} {b:6.1} {c:7.1}"));
                    if ui
                        .add_enabled(e.kind != EquivalenceKind::Identity, egui::Button::new("Go"))
                        .on_hover_text(&e.description)
                        .clicked()
                    {
                        jump = Some(i);
                    }
                    ui.end_row();
                }
            });
        if let Some(i) = jump {
            let (a, b, c) = eq[i].q.to_euler_zyz_deg();
            self.controls.euler = [a, b, c];
        }
    }

    fn results_table(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.label(RichText::new("Results").strong());
            if ui.button("Save CSV…").clicked() {
                self.save_results_dialog();
            }
        });
        let Some(doc) = self.doc() else { return };
        let mut go = None;
        egui::Grid::new("results")
            .striped(!self.lean)
            .show(ui, |ui| {
                ui.label("frame");
                ui.label("score");
                ui.label("rot");
                ui.label("tilt");
                ui.label("psi");
                ui.end_row();
                for (k, r) in doc.results.iter().enumerate() {
                    let Some(r) = r else { continue };
                    let here = k == self.frame;
                    if ui.selectable_label(here, format!("{k}")).clicked() {
                        go = Some(k);
                    }
                    match r {
                        Ok(fit) => {
                            let (a, b, c) = fit.outcome.state.pose.q.to_euler_zyz_deg();
                            ui.colored_label(
                                score_colour(fit.outcome.score),
                                format!("{:.3}", fit.outcome.score),
                            );
                            ui.monospace(format!("{a:.1}"));
                            ui.monospace(format!("{b:.1}"));
                            ui.monospace(format!("{c:.1}"));
                        }
                        Err(e) => {
                            ui.colored_label(Color32::LIGHT_RED, "failed")
                                .on_hover_text(e);
                            ui.label("");
                            ui.label("");
                            ui.label("");
                        }
                    }
                    ui.end_row();
                }
            });
        if let Some(k) = go {
            self.go_to_frame(k);
        }
    }

    fn central(&mut self, ui: &mut egui::Ui, ctx: &egui::Context, frame: &eframe::Frame) {
        // the side panels may have moved the pose (sliders, Go, table rows)
        self.update_render();
        self.notices_ui(ui);
        let n = self.frame_count();
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
            if ui.button("◀").on_hover_text("Previous frame (←)").clicked() && self.frame > 0 {
                self.go_to_frame(self.frame - 1);
            }
            let mut k = self.frame;
            ui.add(egui::Slider::new(&mut k, 0..=n - 1).text("frame"));
            if k != self.frame {
                self.go_to_frame(k);
            }
            if ui.button("▶").on_hover_text("Next frame (→)").clicked() {
                self.go_to_frame(self.frame + 1);
            }
            ui.label(format!("of {n}"));
            if let Some(p) = self.current_path() {
                ui.label(
                    RichText::new(
                        p.file_name()
                            .map(|f| f.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                    )
                    .weak(),
                );
            }
            if self.docs.len() > 1 {
                let mut cur = self.current;
                egui::ComboBox::from_id_salt("documents")
                    .selected_text("switch file")
                    .show_ui(ui, |ui| {
                        for (i, d) in self.docs.iter().enumerate() {
                            ui.selectable_value(&mut cur, i, d.path.display().to_string());
                        }
                    });
                if cur != self.current {
                    self.current = cur;
                    self.go_to_frame(0);
                    self.contrast = None;
                    self.view.fit_pending = true;
                }
            }
        });
        let Some(raw_img) = self.raw_image(ctx) else {
            return;
        };
        let model_img = self.model_image(ctx, frame);
        let Some(f) = self.current_frame() else {
            return;
        };
        let size = (f.width, f.height);
        let pixel_size = self.doc().and_then(|d| d.info.pixel_size_nm);
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
                let out = image_view(ui, raw_img, size, &mut self.view, half);
                if let Some((x, y)) = out.hover_pixel {
                    hover = Some((x, y));
                }
                if let Some(bar) = pixel_size.and_then(|p| display::scale_bar(p, size.0 as f64)) {
                    paint_scale_bar(ui, out.rect, self.view.zoom, bar.length_px, &bar.label);
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
                    let st = self.controls.state();
                    super::orbit::orbit_view(
                        ui,
                        &mut self.orbit,
                        &self.model_points,
                        st.pose.q,
                        st.scale,
                        half,
                    );
                } else if let Some(img) = model_img {
                    let out = image_view(ui, img, size, &mut self.view, half);
                    if let Some((x, y)) = out.hover_pixel {
                        hover = Some((x, y));
                    }
                }
            });
        });
        self.hover = hover.and_then(|(x, y)| {
            let f = self.current_frame()?;
            Some((x, y, *f.data.get(y * f.width + x)?))
        });
    }

    fn notices_ui(&mut self, ui: &mut egui::Ui) {
        let mut dismiss = None;
        for (i, n) in self.notices.iter().enumerate().rev().take(4) {
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
            self.notices.remove(i);
        }
    }
}

/// Plot grid marks at one "nice" step (1, 2 or 5 × 10ⁿ, about four per
/// axis), instead of egui_plot's three fading levels: the same labels, far
/// fewer thin lines to rasterise.
fn coarse_grid(input: egui_plot::GridInput) -> Vec<egui_plot::GridMark> {
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
fn tick_label(mark: egui_plot::GridMark, _range: &std::ops::RangeInclusive<f64>) -> String {
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
