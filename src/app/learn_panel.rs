//! The Learn tab's widgets: the run's settings, Start / Pause / Resume /
//! Cancel, the iteration count, time and loss curve, the learned cloud in
//! an orbit view that follows every iteration, and "Use as model". The
//! state is [`super::learning::Learning`]; the buttons push actions.

use egui::RichText;
use egui_plot::{Line, Plot, PlotPoints};

use super::actions::Action;
use super::orbit::orbit_view;
use super::PoseScopeApp;
use crate::geometry::Quat;

impl PoseScopeApp {
    pub(super) fn learn_panel(&mut self, ui: &mut egui::Ui, out: &mut Vec<Action>) {
        ui.label(
            RichText::new(
                "Learn the 3D structure and every frame's pose from many particle frames, \
                 with no model given (as `posescope learn`).",
            )
            .small(),
        );
        let l = &mut self.learning;
        let idle = !l.running;
        ui.add_enabled_ui(idle, |ui| {
            egui::Grid::new("learn_settings")
                .num_columns(2)
                .show(ui, |ui| {
                    ui.label("Points");
                    ui.add(egui::DragValue::new(&mut l.config.points).range(8..=20_000));
                    ui.end_row();
                    ui.label("Iterations");
                    ui.add(egui::DragValue::new(&mut l.config.iterations).range(1..=1000));
                    ui.end_row();
                    ui.label("PSF σ (px)");
                    ui.add(
                        egui::DragValue::new(&mut l.config.sigma)
                            .range(0.3..=30.0)
                            .speed(0.05),
                    );
                    ui.end_row();
                    ui.label("Symmetry prior");
                    ui.add(egui::TextEdit::singleline(&mut l.symmetry_text).desired_width(60.0))
                        .on_hover_text("c1 (none), cN or dN about the model z axis");
                    ui.end_row();
                    ui.label("Seed");
                    ui.add(egui::DragValue::new(&mut l.config.seed));
                    ui.end_row();
                });
        });
        let paused = l.paused.load(std::sync::atomic::Ordering::Relaxed);
        ui.horizontal(|ui| {
            if ui
                .add_enabled(idle, egui::Button::new("Start learning"))
                .on_hover_text(
                    "Learn from the frames of the document on screen (a table: its accepted picks)",
                )
                .clicked()
            {
                out.push(Action::StartLearning);
            }
            let pause_label = if paused { "Resume" } else { "Pause" };
            if ui
                .add_enabled(!idle, egui::Button::new(pause_label))
                .clicked()
            {
                out.push(Action::PauseLearning(!paused));
            }
            if ui.add_enabled(!idle, egui::Button::new("Cancel")).clicked() {
                out.push(Action::CancelLearning);
            }
        });
        let p = &l.progress;
        if l.started.is_some() {
            let state = if l.running && paused {
                "paused"
            } else if l.running {
                "running"
            } else if l.learned.is_some() {
                "done"
            } else {
                "stopped"
            };
            let loss = p
                .losses
                .last()
                .map_or(String::from("–"), |v| format!("{v:.4}"));
            ui.label(format!(
                "{state}: iteration {}/{} · {} frames · loss {loss} · {:.0} s",
                p.iteration,
                p.of,
                p.frames,
                l.elapsed().as_secs_f64()
            ));
        }
        if !p.losses.is_empty() {
            let pts: PlotPoints = p
                .losses
                .iter()
                .enumerate()
                .map(|(i, &v)| [i as f64 + 1.0, v])
                .collect();
            Plot::new("learn_loss")
                .height(110.0)
                .allow_drag(false)
                .allow_zoom(false)
                .allow_scroll(false)
                .x_axis_label("iteration")
                .y_axis_label("loss")
                .show(ui, |plot| plot.line(Line::new("loss", pts)));
        }
        if !p.cloud.is_empty() {
            let w = ui.available_width().min(320.0);
            orbit_view(
                ui,
                &mut l.orbit,
                &p.cloud,
                Quat::IDENTITY,
                1.0,
                egui::vec2(w, w),
                &[],
            );
        }
        if l.learned.is_some()
            && ui
                .button("Use as model")
                .on_hover_text("Fit with the learned cloud and put its poses in the results")
                .clicked()
        {
            out.push(Action::UseLearnedModel);
        }
    }
}
