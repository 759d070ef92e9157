//! The right panel: the symmetry explorer (score sweeps of each Euler angle
//! and the list of poses the image cannot tell apart, each with Go) and the
//! per-frame results table. Widgets push [`Action`]s.

use egui::{Color32, RichText};
use egui_plot::{Line, Plot, PlotPoints, VLine};

use super::actions::Action;
use super::controls::EULER_NAMES;
use super::jobs::JobKind;
use super::panels::{coarse_grid, score_colour, tick_label};
use super::PoseScopeApp;
use crate::estimate::pose::orientations::ViewAxis;
use crate::geometry::symmetry::EquivalenceKind;

impl PoseScopeApp {
    pub(super) fn explorer_panel(&mut self, ui: &mut egui::Ui, out: &mut Vec<Action>) {
        ui.heading("Symmetry explorer");
        let sym = self.live.model.symmetry;
        ui.label(format!("model symmetry: {sym}"));
        ui.label(
            RichText::new(
                "Score as each angle sweeps 360° with the others fixed. Flat curves and \
                 repeated peaks are poses the image cannot tell apart.",
            )
            .small(),
        );
        for (k, name) in EULER_NAMES.iter().enumerate() {
            let current = self.session.controls.euler[k];
            let curve = self.live.sweeps.as_ref().map(|s| s.curves[k].clone());
            Plot::new(format!("sweep-{name}"))
                .show_background(!self.ui.lean)
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
        if self.jobs.running(JobKind::Sweep) {
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
        let q = self.session.controls.state().pose.q;
        // a fit to 3D localisations knows which way the axis tilts
        let z_locs = self
            .session
            .result(self.session.frame)
            .and_then(|r| r.as_ref().ok())
            .map_or(0, |f| f.outcome.z_locs);
        if z_locs > 0 {
            ui.label(
                RichText::new(format!(
                    "This particle's fit used the z of {z_locs} localisations: the mirror \
                     poses are ruled out (the z of its localisations fits only this tilt)."
                ))
                .small()
                .color(Color32::LIGHT_GREEN),
            );
        }
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
            .striped(!self.ui.lean)
            .show(ui, |ui| {
                for (i, e) in eq.iter().enumerate() {
                    let (a, b, c) = e.q.to_euler_zyz_deg();
                    let tag = kind_name(e.kind);
                    let mirrored = matches!(
                        e.kind,
                        EquivalenceKind::ProjectionMirror | EquivalenceKind::GroupAndMirror
                    );
                    if z_locs > 0 && mirrored {
                        ui.label(RichText::new(format!("{tag} (ruled out by z)")).weak())
                            .on_hover_text(format!(
                                "{}; the localisations' z fits the pose above, not this one",
                                e.description
                            ));
                    } else {
                        ui.label(tag).on_hover_text(&e.description);
                    }
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
            let mut controls = self.session.controls;
            controls.euler = [a, b, c];
            out.push(Action::EditPose {
                controls,
                what: format!("jump to the {} pose", kind_name(eq[i].kind)),
            });
        }
    }

    pub(super) fn results_table(&self, ui: &mut egui::Ui, out: &mut Vec<Action>) {
        ui.horizontal(|ui| {
            ui.label(RichText::new("Results").strong());
            if ui.button("Save CSV…").clicked() {
                out.push(Action::SaveResultsDialog);
            }
        });
        let Some(doc) = self.session.doc() else {
            return;
        };
        egui::CollapsingHeader::new("Orientations")
            .default_open(true)
            .show(ui, |ui| self.orientations_section(ui, out));
        let mut go = None;
        // thousands of rows: only those in view are laid out, the rest are
        // blank space of the same height, so the panel scrolls as before
        let rows: Vec<_> = doc.results.iter().collect();
        let row_h = ui.spacing().interact_size.y;
        let pitch = row_h + ui.spacing().item_spacing.y;
        let grid = |id: &str| {
            egui::Grid::new(id)
                .striped(!self.ui.lean)
                .min_col_width(52.0)
                .min_row_height(row_h)
        };
        // fits of a 3D table know which way their axis tilts: a column more
        let directed = rows
            .iter()
            .any(|(_, r)| r.as_ref().is_ok_and(|f| f.outcome.z_locs > 0));
        let blanks = if directed { 4 } else { 3 };
        grid("results head").show(ui, |ui| {
            for name in ["frame", "score", "rot", "tilt", "psi"] {
                ui.label(name);
            }
            if directed {
                ui.label("toward").on_hover_text(
                    "Direction of the axis's far end (+z, into the sample), degrees from \
                     image +x toward +y: known only for fits that used the localisations' z",
                );
            }
            ui.end_row();
        });
        let top = ui.cursor().top();
        let clip = ui.clip_rect();
        let at = |y: f32| (((y - top) / pitch).max(0.0) as usize).min(rows.len());
        let (first, last) = (at(clip.top()), at(clip.bottom() + pitch));
        ui.add_space(first as f32 * pitch);
        grid("results").show(ui, |ui| {
            for &(k, r) in &rows[first..last] {
                let here = k == self.session.frame;
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
                        if directed {
                            let q = fit.outcome.state.pose.q;
                            ui.monospace(if fit.outcome.z_locs > 0 {
                                format!("{:.0}°", ViewAxis::directed(q).azimuth_deg)
                            } else {
                                "–".to_owned()
                            });
                        }
                    }
                    Err(e) => {
                        ui.colored_label(Color32::LIGHT_RED, "failed")
                            .on_hover_text(e);
                        for _ in 0..blanks {
                            ui.label("");
                        }
                    }
                }
                ui.end_row();
            }
        });
        ui.add_space((rows.len() - last) as f32 * pitch);
        if let Some(k) = go {
            out.push(Action::GoToFrame(k));
        }
    }
}

/// What an equivalent pose is, as its row and its undo name it.
fn kind_name(kind: EquivalenceKind) -> &'static str {
    match kind {
        EquivalenceKind::Identity => "this pose",
        EquivalenceKind::Group => "symmetry",
        EquivalenceKind::ProjectionMirror => "mirror",
        EquivalenceKind::GroupAndMirror => "symmetry + mirror",
    }
}
