//! The Picks tab and the central field of a table document: the picks
//! listed with their state (accept, remove, select), the buttons that act on
//! all of them, and the field view's events turned into actions.

use egui::{Color32, RichText};

use super::actions::Action;
use super::field_view::{field_view, FieldEvent};
use super::particles::PickState;
use super::PoseScopeApp;

impl PoseScopeApp {
    pub(super) fn picks_panel(&mut self, ui: &mut egui::Ui, out: &mut Vec<Action>) {
        self.table_settings(ui);
        let Some(doc) = self.session.doc() else {
            return;
        };
        let Some(p) = doc.particles.as_ref() else {
            ui.label(
                "Open a localisation table (Picasso HDF5, ThunderSTORM CSV) or a whole-field image (a single image of 1024 px or more) to pick particles.",
            );
            let single = doc.info.frames == 1;
            if single
                && ui
                    .button("Pick particles in this image")
                    .on_hover_text(
                        "Open this image as a field: find the particles of the particle model's size and fit each",
                    )
                    .clicked()
            {
                out.push(Action::OpenAsField);
            }
            return;
        };
        let count = |s| p.picks.iter().filter(|e| e.state == s).count();
        let (cand, acc) = (count(PickState::Candidate), count(PickState::Accepted));
        ui.label(p.describe());
        if p.picking {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(format!("finding particles… ({acc} picked by hand so far)"));
            });
        } else {
            ui.label(format!("{cand} candidates, {acc} accepted"));
        }
        ui.horizontal_wrapped(|ui| {
            if ui
                .add_enabled(cand > 0, egui::Button::new("Accept all"))
                .on_hover_text("Accept every candidate pick")
                .clicked()
            {
                out.push(Action::AcceptAllPicks);
            }
            if ui
                .add_enabled(acc > 0, egui::Button::new("Fit accepted"))
                .on_hover_text("Network + refinement on the localisations, for every accepted pick")
                .clicked()
            {
                out.push(Action::EstimateAll);
            }
            if p.is_table()
                && ui
                    .add_enabled(
                        acc >= crate::estimate::torus_size::MIN_PARTICLES,
                        egui::Button::new("Fit size"),
                    )
                    .on_hover_text(
                        "Fit the torus's own R and r to the accepted picks' localisations, \
                         every pose fitted again at each trial R (from the torus in Opening tables)",
                    )
                    .clicked()
            {
                out.push(Action::FitTorusSize);
            }
            if ui.button("Save picks…").clicked() {
                out.push(Action::SavePicksDialog);
            }
            if ui
                .button("Load picks…")
                .on_hover_text("Replace the picks with a picks CSV's (x_nm, y_nm columns)")
                .clicked()
            {
                out.push(Action::LoadPicksDialog);
            }
            if ui
                .button("Export overview")
                .on_hover_text("PNG of the field with every fitted particle outlined and numbered")
                .clicked()
            {
                out.push(Action::ExportOverview);
            }
        });
        ui.label(
            RichText::new(
                "Click the field to add a pick. Review by keyboard: N next candidate, A accept, \
                 Delete remove (each moves on to the next candidate), Ctrl+Z undo.",
            )
            .small(),
        );
        ui.separator();
        let shown: Vec<usize> = (0..p.picks.len())
            .filter(|&k| p.picks[k].state != PickState::Removed)
            .collect();
        let row_height = ui.spacing().interact_size.y + ui.spacing().item_spacing.y;
        let mut list = egui::ScrollArea::vertical().auto_shrink([false, false]);
        if std::mem::take(&mut self.ui.field.reveal_selected) {
            // the keyboard review moved on: its row, three rows from the top
            if let Some(row) = shown
                .iter()
                .position(|&k| Some(k) == self.ui.field.selected)
            {
                list = list.vertical_scroll_offset((row as f32 - 3.0).max(0.0) * row_height);
            }
        }
        list.show_rows(ui, row_height, shown.len(), |ui, rows| {
            egui::Grid::new("picks")
                .striped(!self.ui.lean)
                .min_row_height(ui.spacing().interact_size.y)
                .show(ui, |ui| {
                    for &k in &shown[rows] {
                        let e = &p.picks[k];
                        let selected = self.ui.field.selected == Some(k);
                        if ui
                            .selectable_label(selected, format!("#{k}"))
                            .on_hover_text("Show this particle")
                            .clicked()
                        {
                            out.push(Action::SelectPick(k));
                        }
                        // an image's picks have no localisations to count
                        ui.monospace(if p.is_table() {
                            e.pick.n_locs.to_string()
                        } else {
                            "·".into()
                        });
                        let fitted = doc.results.fit(k).is_some();
                        match (e.state, fitted) {
                            (_, true) => ui.colored_label(Color32::from_rgb(64, 220, 96), "fitted"),
                            (PickState::Accepted, false) => ui.label("accepted"),
                            _ => ui.colored_label(Color32::from_rgb(255, 214, 10), "candidate"),
                        };
                        ui.horizontal(|ui| {
                            if e.state == PickState::Candidate
                                && ui
                                    .small_button("accept")
                                    .on_hover_text("Accept this pick")
                                    .clicked()
                            {
                                out.push(Action::SetPickState(k, PickState::Accepted));
                            }
                            if ui
                                .small_button("remove")
                                .on_hover_text("Remove this pick (Delete)")
                                .clicked()
                            {
                                out.push(Action::SetPickState(k, PickState::Removed));
                            }
                        });
                        ui.end_row();
                    }
                });
        });
    }

    /// How tables are opened: the particle and the camera pixel size for
    /// files that do not state one (applied when a table is next opened).
    fn table_settings(&mut self, ui: &mut egui::Ui) {
        egui::CollapsingHeader::new("Opening tables")
            .default_open(false)
            .show(ui, |ui| {
                let [mut r, mut t] = self.settings.particle_torus_nm;
                ui.horizontal(|ui| {
                    ui.label("torus R");
                    ui.add(egui::DragValue::new(&mut r).range(10.0..=5000.0).suffix(" nm"));
                    ui.label("r");
                    ui.add(egui::DragValue::new(&mut t).range(0.0..=4000.0).suffix(" nm"));
                });
                if t < r {
                    self.settings.particle_torus_nm = [r, t];
                }
                let mut known = self.settings.table_pixel_nm.is_some();
                let mut px = self.settings.table_pixel_nm.unwrap_or(130.0);
                ui.horizontal(|ui| {
                    ui.checkbox(&mut known, "camera pixel");
                    ui.add_enabled(
                        known,
                        egui::DragValue::new(&mut px).range(1.0..=10_000.0).suffix(" nm"),
                    );
                })
                .response
                .on_hover_text("For tables in camera pixels that do not state the pixel size (a Picasso .hdf5 without its .yaml)");
                self.settings.table_pixel_nm = known.then_some(px);
                ui.horizontal(|ui| {
                    ui.checkbox(&mut self.settings.table_use_z, "fit z")
                        .on_hover_text(
                            "3D tables: fit each particle's localisations with their z, which \
                             tells its axis from its mirror in z (no 2D view can)",
                        );
                    ui.add_enabled(
                        self.settings.table_use_z,
                        egui::DragValue::new(&mut self.settings.table_z_scale)
                            .range(0.1..=10.0)
                            .speed(0.01)
                            .prefix("z × "),
                    )
                    .on_hover_text(
                        "a factor on z for tables not corrected for refractive-index mismatch \
                         (about 0.7–0.9 for oil objectives in water); fit TABLE prints the factor \
                         the particles suggest",
                    );
                    ui.add_enabled(
                        self.settings.table_use_z,
                        egui::Checkbox::new(&mut self.settings.table_flip_z, "flip z"),
                    )
                    .on_hover_text(
                        "for software whose z grows toward the viewer: PoseScope's z points \
                         into the image (x right, y down). A flipped z mirrors every tilt \
                         direction, and the data cannot tell",
                    );
                });
                ui.label(RichText::new("Applies to tables opened from now on.").small());
            });
    }

    /// The central field view of a table document.
    pub(super) fn field_central(&mut self, ui: &mut egui::Ui, out: &mut Vec<Action>) {
        let Some(doc) = self.session.docs.get(self.session.current) else {
            return;
        };
        let Some(p) = doc.particles.as_ref() else {
            return;
        };
        let size = ui.available_size().max(egui::vec2(50.0, 50.0));
        let events = field_view(
            ui,
            &mut self.ui.field,
            doc.id,
            p,
            &doc.results,
            self.settings.lut,
            self.ui.lean,
            self.ui.pixel_views,
            size,
        );
        for e in events {
            match e {
                FieldEvent::Select(k) => out.push(Action::SelectPick(k)),
                FieldEvent::Add(at) => out.push(Action::AddPick(at)),
                FieldEvent::Move(k, at) => out.push(Action::MovePick(k, at)),
                FieldEvent::Open(k) => {
                    out.push(Action::SelectPick(k));
                    out.push(Action::ShowField(false));
                }
            }
        }
    }
}
