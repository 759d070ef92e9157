//! The field of a table document: the whole localisation table rendered at
//! the zoom on screen — re-rendered from the localisations whenever the view
//! settles, as Picasso does, so a 30 µm field stays sharp at any zoom — with
//! every pick drawn as a numbered circle (yellow: candidate, green:
//! accepted, white: selected) and, once fitted, its posed torus outline.
//! Wheel zooms about the cursor, dragging pans, double-click fits the field;
//! a click on a pick selects it, a click elsewhere adds a pick there.
//!
//! While the view moves, the last render is drawn stretched (a texture
//! draw, so panning and zooming cost no rendering); when it settles, the
//! table is rendered again for the new view — on the UI thread for small
//! tables, on a background thread above [`SYNC_ROWS`] rows, so a 10⁶-row
//! table never blocks the window.

use egui::{
    Align2, Color32, ColorImage, FontId, Pos2, Rect, Sense, Shape, Stroke, TextureHandle, Vec2,
};

use std::sync::mpsc::{channel, Receiver, TryRecvError};

use super::particles::{ParticleDoc, PickState};
use super::state::DocId;
use crate::estimate::pose::results::FitResults;
use crate::geometry::Quat;
use crate::io::locs::LocTable;
use crate::render::display::{auto_contrast, colorize, Lut};
use crate::render::locs::{render_locs, LocMode, LocView};

/// Most pixels of one field render.
const MAX_RENDER_PX: usize = 4 << 20;

/// Below this disc radius (points) picks are drawn as dots.
const MIN_OUTLINE_PT: f32 = 5.0;
/// Below this disc radius (points) picks are not numbered.
const MIN_LABEL_PT: f32 = 10.0;

/// Tables up to this many rows are rendered on the UI thread (a few ms).
pub const SYNC_ROWS: usize = 50_000;

/// Where the field view looks, and its last render.
#[derive(Default)]
pub struct FieldView {
    /// Field position at the view's centre, nm.
    pub centre_nm: [f64; 2],
    /// nm per screen point.
    pub nm_per_pt: f64,
    /// Fit the whole table to the view at the next draw.
    pub fit_pending: bool,
    /// The pick shown selected.
    pub selected: Option<usize>,
    render: Option<FieldRender>,
    /// A render on a background thread, with the view it is for.
    pending: Option<(DocId, LocView, Lut, Receiver<Vec<u8>>)>,
    /// Renders made (tests check that zooming re-renders).
    pub renders: u64,
}

struct FieldRender {
    doc: DocId,
    view: LocView,
    lut: Lut,
    tex: TextureHandle,
}

/// What the user did in the field view.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FieldEvent {
    /// Clicked a pick.
    Select(usize),
    /// Double-clicked a pick: show its particle.
    Open(usize),
    /// Clicked where there is no pick: add one there (nm).
    Add([f64; 2]),
}

impl FieldView {
    /// Centres the view on a point of the field, nm.
    pub fn centre_on(&mut self, x_nm: f64, y_nm: f64) {
        self.centre_nm = [x_nm, y_nm];
    }

    fn to_screen(&self, rect: Rect, x_nm: f64, y_nm: f64) -> Pos2 {
        rect.center()
            + Vec2::new(
                ((x_nm - self.centre_nm[0]) / self.nm_per_pt) as f32,
                ((y_nm - self.centre_nm[1]) / self.nm_per_pt) as f32,
            )
    }

    fn to_nm(&self, rect: Rect, p: Pos2) -> [f64; 2] {
        let d = p - rect.center();
        [
            self.centre_nm[0] + f64::from(d.x) * self.nm_per_pt,
            self.centre_nm[1] + f64::from(d.y) * self.nm_per_pt,
        ]
    }

    fn fit(&mut self, rect: Rect, extent: [f32; 4]) {
        let (w, h) = (
            f64::from(extent[2] - extent[0]).max(1.0),
            f64::from(extent[3] - extent[1]).max(1.0),
        );
        self.centre_nm = [
            f64::from(extent[0]) + w / 2.0,
            f64::from(extent[1]) + h / 2.0,
        ];
        let fit = (w / f64::from(rect.width().max(1.0))).max(h / f64::from(rect.height().max(1.0)));
        self.nm_per_pt = fit / 0.96;
        self.fit_pending = false;
    }

    /// The render the view needs now: its window of the field at screen resolution.
    fn wanted(&self, rect: Rect, pixels_per_point: f32) -> Option<LocView> {
        let pixel_nm = self.nm_per_pt / f64::from(pixels_per_point.max(0.1));
        let w = (rect.width() * pixels_per_point).ceil().max(1.0) as usize;
        let h = (rect.height() * pixels_per_point).ceil().max(1.0) as usize;
        if w * h > MAX_RENDER_PX || !(pixel_nm.is_finite() && pixel_nm > 0.0) {
            return None;
        }
        let origin = self.to_nm(rect, rect.min);
        Some(LocView {
            origin_nm: origin,
            pixel_nm,
            width: w,
            height: h,
        })
    }
}

/// Draws the field of `particles` into `size` and returns what the user did.
#[allow(clippy::too_many_arguments)]
pub fn field_view(
    ui: &mut egui::Ui,
    fv: &mut FieldView,
    doc: DocId,
    particles: &ParticleDoc,
    results: &FitResults,
    lut: Lut,
    lean: bool,
    size: Vec2,
) -> Vec<FieldEvent> {
    let (rect, response) = ui.allocate_exact_size(size, Sense::click_and_drag());
    let extent = particles.table.summary().extent_nm;
    let stale_doc = fv.render.as_ref().is_some_and(|r| r.doc != doc);
    let usable = fv.nm_per_pt.is_finite() && fv.nm_per_pt > 0.0;
    if fv.fit_pending || stale_doc || !usable {
        fv.fit(rect, extent);
    }
    if response.dragged() {
        let d = response.drag_delta();
        fv.centre_nm[0] -= f64::from(d.x) * fv.nm_per_pt;
        fv.centre_nm[1] -= f64::from(d.y) * fv.nm_per_pt;
    }
    if let Some(pos) = response.hover_pos() {
        let scroll = ui.input(|i| i.smooth_scroll_delta.y);
        let pinch = ui.input(|i| i.zoom_delta());
        let factor = f64::from((scroll / 200.0).exp() * pinch);
        if (factor - 1.0).abs() > 1e-4 {
            let before = fv.to_nm(rect, pos);
            fv.nm_per_pt = (fv.nm_per_pt / factor).clamp(0.05, 1e6);
            let after = fv.to_nm(rect, pos);
            fv.centre_nm[0] += before[0] - after[0];
            fv.centre_nm[1] += before[1] - after[1];
        }
    }
    // re-render from the table once the view has settled
    let ppp = ui.ctx().pixels_per_point();
    let settled = !response.dragged() && ui.input(|i| i.smooth_scroll_delta == Vec2::ZERO);
    if let Some(want) = fv.wanted(rect, ppp) {
        let current = fv.render.as_ref().filter(|r| r.doc == doc && r.lut == lut);
        let needs = current.is_none_or(|r| {
            let moved = (r.view.origin_nm[0] - want.origin_nm[0]).abs()
                + (r.view.origin_nm[1] - want.origin_nm[1]).abs();
            (r.view.pixel_nm / want.pixel_nm - 1.0).abs() > 1e-3
                || moved > 0.5 * want.pixel_nm
                || r.view.width != want.width
                || r.view.height != want.height
        });
        if needs && (settled || current.is_none()) && fv.pending.is_none() {
            let table = particles.table.clone();
            if table.len() <= SYNC_ROWS {
                let rgba = field_rgba(&table, &want, lut);
                fv.show(ui.ctx(), doc, want, lut, &rgba);
            } else {
                let (tx, rx) = channel();
                let ctx = ui.ctx().clone();
                let spawned = std::thread::Builder::new()
                    .name("posescope-field".into())
                    .spawn(move || {
                        let _ = tx.send(field_rgba(&table, &want, lut));
                        ctx.request_repaint();
                    });
                if spawned.is_ok() {
                    fv.pending = Some((doc, want, lut, rx));
                }
            }
        }
    }
    if let Some((d, view, l, rx)) = fv.pending.take() {
        match rx.try_recv() {
            Ok(rgba) => fv.show(ui.ctx(), d, view, l, &rgba),
            Err(TryRecvError::Empty) => fv.pending = Some((d, view, l, rx)),
            Err(TryRecvError::Disconnected) => {}
        }
    }
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 0.0, Color32::BLACK);
    if let Some(r) = &fv.render {
        let v = &r.view;
        let min = fv.to_screen(rect, v.origin_nm[0], v.origin_nm[1]);
        let max = fv.to_screen(
            rect,
            v.origin_nm[0] + v.width as f64 * v.pixel_nm,
            v.origin_nm[1] + v.height as f64 * v.pixel_nm,
        );
        painter.image(
            r.tex.id(),
            Rect::from_min_max(min, max),
            Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
            Color32::WHITE,
        );
    }
    // the picks
    let [major, tube] = particles.setup.torus_nm;
    let disc = ((major + tube) / fv.nm_per_pt) as f32;
    let ring = (major / fv.nm_per_pt) as f32;
    let width = if lean { 1.0 } else { 1.5 };
    for (k, p) in particles.picks.iter().enumerate() {
        if p.state == PickState::Removed {
            continue;
        }
        let c = fv.to_screen(rect, p.pick.x_nm, p.pick.y_nm);
        if !rect.expand(disc).contains(c) {
            continue;
        }
        let selected = fv.selected == Some(k);
        let colour = if selected {
            Color32::WHITE
        } else if p.state == PickState::Accepted {
            Color32::from_rgb(64, 220, 96)
        } else {
            Color32::from_rgb(255, 214, 10)
        };
        let stroke = Stroke::new(if selected { 2.0 * width } else { width }, colour);
        // zoomed far out, a particle is a dot: thousands of circles and numbers would hide the field
        if disc < MIN_OUTLINE_PT {
            painter.circle_filled(c, if selected { 3.0 } else { 1.5 }, colour);
            continue;
        }
        painter.circle_stroke(c, disc, Stroke::new(width, colour.gamma_multiply(0.5)));
        if let Some(fit) = results.fit(k) {
            let q = fit.outcome.state.pose.q;
            let shift = fit.outcome.state.pose.shift;
            let px = particles.setup.pixel_nm / fv.nm_per_pt;
            let centre = c + Vec2::new((shift[0] * px) as f32, (shift[1] * px) as f32);
            painter.add(Shape::closed_line(outline(q, ring, centre), stroke));
        } else {
            painter.circle_stroke(c, ring, stroke);
        }
        if disc < MIN_LABEL_PT && !selected {
            continue;
        }
        painter.text(
            c + Vec2::new(0.75 * disc, -0.75 * disc),
            Align2::LEFT_BOTTOM,
            k.to_string(),
            FontId::proportional(13.0),
            colour,
        );
    }
    let mut events = Vec::new();
    if response.double_clicked() {
        match response
            .interact_pointer_pos()
            .map(|p| fv.to_nm(rect, p))
            .and_then(|[x, y]| particles.pick_at(x, y))
        {
            Some(k) => events.push(FieldEvent::Open(k)),
            None => fv.fit(rect, extent),
        }
    } else if response.clicked() {
        if let Some(pos) = response.interact_pointer_pos() {
            let [x, y] = fv.to_nm(rect, pos);
            match particles.pick_at(x, y) {
                Some(k) => events.push(FieldEvent::Select(k)),
                None => events.push(FieldEvent::Add([x, y])),
            }
        }
    }
    events
}

impl FieldView {
    /// Makes `rgba` (a render of `view`) the texture on screen.
    fn show(&mut self, ctx: &egui::Context, doc: DocId, view: LocView, lut: Lut, rgba: &[u8]) {
        let img = ColorImage::from_rgba_unmultiplied([view.width, view.height], rgba);
        let tex = ctx.load_texture("field", img, egui::TextureOptions::NEAREST);
        self.render = Some(FieldRender {
            doc,
            view,
            lut,
            tex,
        });
        self.renders += 1;
    }
}

/// The table rendered into `view` (individual blur, at least one pixel)
/// with auto-contrast, as RGBA.
fn field_rgba(table: &LocTable, view: &LocView, lut: Lut) -> Vec<u8> {
    let data = render_locs(
        &table.x_nm,
        &table.y_nm,
        table.precision_nm.as_deref(),
        view,
        LocMode::Blur {
            min_blur_nm: view.pixel_nm as f32,
        },
    );
    colorize(&data, auto_contrast(&data, 0.005), lut)
}

/// The projected centre circle of a torus posed by `q`, `r` points wide, about `c`.
fn outline(q: Quat, r: f32, c: Pos2) -> Vec<Pos2> {
    (0..64)
        .map(|k| {
            let u = std::f64::consts::TAU * f64::from(k) / 64.0;
            let v = q.rotate([u.cos(), u.sin(), 0.0]);
            c + Vec2::new(v[0] as f32 * r, v[1] as f32 * r)
        })
        .collect()
}
