//! The field of a field document: the whole localisation table rendered at
//! the zoom on screen — re-rendered from the localisations whenever the view
//! settles, as Picasso does, so a 30 µm field stays sharp at any zoom — or
//! the window of a large image on screen, from its mip pyramid (so a 16k²
//! image never becomes one texture), with
//! every pick drawn as a numbered circle (yellow: candidate, green:
//! accepted, white: selected) and, once fitted, its posed torus outline.
//! Wheel zooms about the cursor, dragging pans, double-click fits the field;
//! a click on a pick selects it, a click elsewhere adds a pick there, and
//! dragging a pick moves it.
//!
//! A table is rendered on the GPU where the viewer has a hardware one
//! (`field_gpu`), else by the CPU reference.
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

use std::sync::Arc;

use super::particles::{FieldSource, ParticleDoc, PickState};
use super::pixel_view::{PixelImage, PixelSource, Slot};
use super::state::DocId;
use crate::estimate::pose::results::FitResults;
use crate::geometry::Quat;
use crate::render::display::{auto_contrast, colorize, Lut};
use crate::render::locs::LocView;
use crate::render::mip::OUTSIDE;

/// Most pixels of one field render.
const MAX_RENDER_PX: usize = 4 << 20;

/// The view must stay still this long before the table is rendered again.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(150);

/// Below this disc radius (points) picks are drawn as dots.
const MIN_OUTLINE_PT: f32 = 5.0;
/// Below this disc radius (points) picks are not numbered.
const MIN_LABEL_PT: f32 = 7.0;
/// A particle reviewed from the keyboard is shown at least this large
/// (disc radius, points).
pub const FOCUS_RADIUS_PT: f32 = 20.0;

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
    /// The Picks list should scroll to the selected pick at its next draw
    /// (set by the keyboard review, which moves the selection on).
    pub reveal_selected: bool,
    render: Option<FieldRender>,
    /// A render on a background thread, with the view it is for.
    pending: Option<Pending>,
    /// The view last drawn (centre, zoom, size) and when it last changed.
    last_view: Option<([f64; 2], f64, Vec2)>,
    moved_at: Option<std::time::Instant>,
    /// Renders made (tests check that zooming re-renders).
    pub renders: u64,
    /// The pick being dragged and where it is now, nm.
    drag_pick: Option<(usize, [f64; 2])>,
    /// Where the view was last drawn.
    last_rect: Option<Rect>,
    /// The GPU path for tables, when the viewer has a GPU worth it.
    pub gpu: Option<super::field_gpu::FieldGpu>,
}

/// A render on a background thread.
struct Pending {
    doc: DocId,
    view: LocView,
    lut: Lut,
    dots: u64,
    rx: Receiver<Vec<u8>>,
}

struct FieldRender {
    doc: DocId,
    view: LocView,
    lut: Lut,
    /// Which picks are baked in as dots (0: none).
    dots: u64,
    /// The pixels, for PoseScope's own wgpu pass, with their generation.
    rgba: Arc<[u8]>,
    generation: u64,
    /// The same as an egui texture, made only without the wgpu pass.
    tex: Option<TextureHandle>,
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
    /// Dragged a pick and let go: move it there (nm).
    Move(usize, [f64; 2]),
}

impl FieldView {
    /// Where a field position (nm) was drawn in the last frame, screen points.
    pub fn screen_pos(&self, x_nm: f64, y_nm: f64) -> Option<Pos2> {
        self.last_rect.map(|r| self.to_screen(r, x_nm, y_nm))
    }

    /// The field position (nm) under a screen point in the last frame.
    pub fn point_nm(&self, pos: Pos2) -> Option<[f64; 2]> {
        self.last_rect.map(|r| self.to_nm(r, pos))
    }

    /// Centres the view on a point of the field, nm.
    pub fn centre_on(&mut self, x_nm: f64, y_nm: f64) {
        self.centre_nm = [x_nm, y_nm];
    }

    /// Centres on a particle of `radius` (field units) and zooms in until
    /// its disc is at least [`FOCUS_RADIUS_PT`] on screen (never out), so a
    /// keyboard review of a 10⁶-localisation field shows each particle.
    pub fn focus_on(&mut self, x_nm: f64, y_nm: f64, radius: f64) {
        self.centre_on(x_nm, y_nm);
        if radius.is_finite() && radius > 0.0 {
            self.nm_per_pt = self.nm_per_pt.min(radius / f64::from(FOCUS_RADIUS_PT));
        }
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
/// `pixel_views`: draw the field through PoseScope's own wgpu pass (see
/// [`pixel_view`](super::pixel_view)), much cheaper than egui's image path on
/// a software rasteriser.
#[allow(clippy::too_many_arguments)]
pub fn field_view(
    ui: &mut egui::Ui,
    fv: &mut FieldView,
    doc: DocId,
    particles: &ParticleDoc,
    results: &FitResults,
    lut: Lut,
    lean: bool,
    pixel_views: bool,
    size: Vec2,
) -> Vec<FieldEvent> {
    let (rect, response) = ui.allocate_exact_size(size, Sense::click_and_drag());
    fv.last_rect = Some(rect);
    let extent = particles.extent();
    let stale_doc = fv.render.as_ref().is_some_and(|r| r.doc != doc);
    let usable = fv.nm_per_pt.is_finite() && fv.nm_per_pt > 0.0;
    if fv.fit_pending || stale_doc || !usable {
        fv.fit(rect, extent);
    }
    let mut events = Vec::new();
    if response.drag_started() {
        // a drag that starts on a pick moves it; anywhere else it pans
        let origin = ui.input(|i| i.pointer.press_origin());
        fv.drag_pick = origin
            .map(|p| fv.to_nm(rect, p))
            .and_then(|[x, y]| particles.pick_at(x, y))
            .and_then(|k| {
                particles
                    .picks
                    .get(k)
                    .map(|e| (k, [e.pick.x_nm, e.pick.y_nm]))
            });
    }
    if response.dragged() {
        let d = response.drag_delta();
        let (dx, dy) = (f64::from(d.x) * fv.nm_per_pt, f64::from(d.y) * fv.nm_per_pt);
        match &mut fv.drag_pick {
            Some((_, at)) => {
                at[0] += dx;
                at[1] += dy;
            }
            None => {
                fv.centre_nm[0] -= dx;
                fv.centre_nm[1] -= dy;
            }
        }
    }
    if response.drag_stopped() {
        if let Some((k, at)) = fv.drag_pick.take() {
            events.push(FieldEvent::Move(k, at));
        }
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
    let now = std::time::Instant::now();
    let here = (fv.centre_nm, fv.nm_per_pt, rect.size());
    if fv.last_view != Some(here) {
        fv.last_view = Some(here);
        fv.moved_at = Some(now);
    }
    let still_for = fv.moved_at.map_or(SETTLE, |t| now - t);
    let settled = !response.dragged() && still_for >= SETTLE;
    if !settled {
        // come back when it has settled, to render the new view
        ui.ctx()
            .request_repaint_after(SETTLE.saturating_sub(still_for));
    }
    if let Some(want) = fv.wanted(rect, ppp) {
        // zoomed far out, the picks are dots baked into the render: thousands of
        // shapes a frame cost a software rasteriser more than the rest of the window
        let [major, tube] = particles.torus();
        let dots_mode = (((major + tube) / fv.nm_per_pt) as f32) < MIN_OUTLINE_PT;
        let dots = if dots_mode { dots_key(particles) } else { 0 };
        let current = fv
            .render
            .as_ref()
            .filter(|r| r.doc == doc && r.lut == lut && r.dots == dots);
        let needs = current.is_none_or(|r| {
            let moved = (r.view.origin_nm[0] - want.origin_nm[0]).abs()
                + (r.view.origin_nm[1] - want.origin_nm[1]).abs();
            (r.view.pixel_nm / want.pixel_nm - 1.0).abs() > 1e-3
                || moved > 0.5 * want.pixel_nm
                || r.view.width != want.width
                || r.view.height != want.height
        });
        if needs && (settled || current.is_none()) && fv.pending.is_none() {
            let source = particles.source.clone();
            let marks = if dots_mode {
                dot_list(particles)
            } else {
                Vec::new()
            };
            // a table goes to the GPU when there is one worth it (field_gpu)
            let gpu = match &source {
                FieldSource::Table { table, .. } => fv.gpu.clone().map(|g| (g, table.clone())),
                FieldSource::Image { .. } => None,
            };
            if !source.heavy() && gpu.is_none() {
                let rgba = field_rgba(&source.render(&want), &want, lut, &marks);
                fv.show(doc, want, lut, dots, rgba);
            } else {
                let (tx, rx) = channel();
                let ctx = ui.ctx().clone();
                let spawned = std::thread::Builder::new()
                    .name("posescope-field".into())
                    .spawn(move || {
                        let data = gpu
                            .and_then(|(g, table)| g.render(doc, &table, &want))
                            .unwrap_or_else(|| source.render(&want));
                        let _ = tx.send(field_rgba(&data, &want, lut, &marks));
                        ctx.request_repaint();
                    });
                if spawned.is_ok() {
                    fv.pending = Some(Pending {
                        doc,
                        view: want,
                        lut,
                        dots,
                        rx,
                    });
                }
            }
        }
    }
    if let Some(p) = fv.pending.take() {
        match p.rx.try_recv() {
            Ok(rgba) => fv.show(p.doc, p.view, p.lut, p.dots, rgba),
            Err(TryRecvError::Empty) => fv.pending = Some(p),
            Err(TryRecvError::Disconnected) => {}
        }
    }
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 0.0, Color32::BLACK);
    if let Some(r) = &mut fv.render {
        let v = r.view;
        let min = rect.center()
            + Vec2::new(
                ((v.origin_nm[0] - fv.centre_nm[0]) / fv.nm_per_pt) as f32,
                ((v.origin_nm[1] - fv.centre_nm[1]) / fv.nm_per_pt) as f32,
            );
        let zoom = (v.pixel_nm / fv.nm_per_pt) as f32;
        let img_rect = Rect::from_min_size(
            min,
            Vec2::new(v.width as f32 * zoom, v.height as f32 * zoom),
        );
        if pixel_views {
            let shown = img_rect.intersect(rect);
            if shown.is_positive() {
                painter.add(egui_wgpu::Callback::new_paint_callback(
                    shown,
                    PixelImage {
                        slot: Slot::Field,
                        source: PixelSource::Bytes {
                            data: r.rgba.clone(),
                            generation: r.generation,
                        },
                        width: v.width as u32,
                        height: v.height as u32,
                        origin: min,
                        zoom,
                        shown,
                    },
                ));
            }
        } else {
            let tex = r.tex.get_or_insert_with(|| {
                let img = ColorImage::from_rgba_unmultiplied([v.width, v.height], &r.rgba);
                ui.ctx()
                    .load_texture("field", img, egui::TextureOptions::NEAREST)
            });
            painter.image(
                tex.id(),
                img_rect,
                Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
                Color32::WHITE,
            );
        }
    }
    // the picks
    let [major, tube] = particles.torus();
    let disc = ((major + tube) / fv.nm_per_pt) as f32;
    let ring = (major / fv.nm_per_pt) as f32;
    let width = if lean { 1.0 } else { 1.5 };
    for (k, p) in particles.picks.iter().enumerate() {
        if p.state == PickState::Removed {
            continue;
        }
        let dragged = fv.drag_pick.filter(|d| d.0 == k).map(|d| d.1);
        let [x, y] = dragged.unwrap_or([p.pick.x_nm, p.pick.y_nm]);
        let c = fv.to_screen(rect, x, y);
        if !rect.expand(disc).contains(c) {
            continue;
        }
        let selected = fv.selected == Some(k) || dragged.is_some();
        let colour = if selected {
            Color32::WHITE
        } else if p.state == PickState::Accepted {
            ACCEPTED
        } else {
            CANDIDATE
        };
        let stroke = Stroke::new(if selected { 2.0 * width } else { width }, colour);
        // zoomed far out, a particle is a dot: thousands of circles and numbers would hide the field
        if disc < MIN_OUTLINE_PT {
            // baked into the render as a dot; only the selected pick is drawn here
            if selected {
                painter.circle_stroke(c, 4.0, Stroke::new(2.0, colour));
            }
            continue;
        }
        painter.circle_stroke(c, disc, Stroke::new(width, colour.gamma_multiply(0.5)));
        // while dragged, the fitted outline no longer applies
        if let Some(fit) = results.fit(k).filter(|_| dragged.is_none()) {
            let q = fit.outcome.state.pose.q;
            let shift = fit.outcome.state.pose.shift;
            let px = particles.frame_pixel() / fv.nm_per_pt;
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
    /// Makes `rgba` (a render of `view`) the image on screen.
    fn show(&mut self, doc: DocId, view: LocView, lut: Lut, dots: u64, rgba: Vec<u8>) {
        self.renders += 1;
        self.render = Some(FieldRender {
            doc,
            view,
            lut,
            dots,
            rgba: rgba.into(),
            // distinct from the raw and model views' generations
            generation: u64::MAX / 2 + self.renders,
            tex: None,
        });
    }
}

/// Colours of picks by state.
const CANDIDATE: Color32 = Color32::from_rgb(255, 214, 10);
const ACCEPTED: Color32 = Color32::from_rgb(64, 220, 96);

/// Identifies the picks' positions and states (for baked dots; never 0).
fn dots_key(particles: &ParticleDoc) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for p in &particles.picks {
        (p.state as u8).hash(&mut h);
        p.pick.x_nm.to_bits().hash(&mut h);
        p.pick.y_nm.to_bits().hash(&mut h);
    }
    h.finish() | 1
}

/// The picks to bake in as dots: position (nm) and colour.
fn dot_list(particles: &ParticleDoc) -> Vec<([f64; 2], [u8; 4])> {
    particles
        .picks
        .iter()
        .filter(|p| p.state != PickState::Removed)
        .map(|p| {
            let c = if p.state == PickState::Accepted {
                ACCEPTED
            } else {
                CANDIDATE
            };
            ([p.pick.x_nm, p.pick.y_nm], c.to_array())
        })
        .collect()
}

/// A field render of `view` with auto-contrast, as RGBA (outside an
/// image: dark grey), with `dots` drawn as 3-pixel squares.
fn field_rgba(data: &[f32], view: &LocView, lut: Lut, dots: &[([f64; 2], [u8; 4])]) -> Vec<u8> {
    let mut rgba = colorize(data, auto_contrast(data, 0.005), lut);
    for (px, &v) in rgba.chunks_exact_mut(4).zip(data) {
        if v == OUTSIDE {
            px.copy_from_slice(&[24, 24, 24, 255]);
        }
    }
    let (w, h) = (view.width as i64, view.height as i64);
    for (c, colour) in dots {
        let x = ((c[0] - view.origin_nm[0]) / view.pixel_nm).floor() as i64;
        let y = ((c[1] - view.origin_nm[1]) / view.pixel_nm).floor() as i64;
        for yy in (y - 1).max(0)..=(y + 1).min(h - 1) {
            for xx in (x - 1).max(0)..=(x + 1).min(w - 1) {
                let i = 4 * (yy * w + xx) as usize;
                rgba[i..i + 4].copy_from_slice(colour);
            }
        }
    }
    rgba
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn focusing_on_a_particle_centres_it_and_only_zooms_in() {
        let mut fv = FieldView {
            nm_per_pt: 100.0,
            ..FieldView::default()
        };
        fv.focus_on(1000.0, 2000.0, 220.0);
        assert_eq!(fv.centre_nm, [1000.0, 2000.0]);
        assert!((220.0 / fv.nm_per_pt - f64::from(FOCUS_RADIUS_PT)).abs() < 1e-9);
        // already closer: the zoom stays
        fv.nm_per_pt = 2.0;
        fv.focus_on(0.0, 0.0, 220.0);
        assert_eq!(fv.nm_per_pt, 2.0);
        // no usable radius: centred only
        fv.focus_on(5.0, 6.0, f64::NAN);
        assert_eq!((fv.centre_nm, fv.nm_per_pt), ([5.0, 6.0], 2.0));
    }
}
