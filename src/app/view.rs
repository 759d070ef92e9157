//! A zoomable, pannable image view: wheel zooms about the cursor, dragging
//! pans, double-click (or Home) fits the image to the view. The raw and model
//! panels share one transform, so they stay aligned side by side.

use egui::{Color32, Pos2, Rect, Sense, Stroke, TextureId, Vec2};

use super::pixel_view::{PixelImage, PixelSource, Slot};

/// What an image view shows.
#[derive(Clone)]
pub enum ViewImage {
    /// An egui texture (used when eframe runs without wgpu).
    Texture(TextureId),
    /// Pixels drawn by our own wgpu pass (`shaders/pixels.wgsl`).
    Gpu(Slot, PixelSource),
}

/// Where the image sits in a view.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ViewTransform {
    /// Screen points per image pixel.
    pub zoom: f32,
    /// The image point (pixels) at the view's centre.
    pub centre: Vec2,
    /// Fit on the next draw (set by Home and when a new image arrives).
    pub fit_pending: bool,
}

impl Default for ViewTransform {
    fn default() -> Self {
        Self {
            zoom: 1.0,
            centre: Vec2::ZERO,
            fit_pending: true,
        }
    }
}

impl ViewTransform {
    /// Screen position of image point `p` in a view `rect`.
    pub fn to_screen(&self, rect: Rect, p: Vec2) -> Pos2 {
        rect.center() + (p - self.centre) * self.zoom
    }

    /// Image point under screen position `s`.
    pub fn to_image(&self, rect: Rect, s: Pos2) -> Vec2 {
        (s - rect.center()) / self.zoom + self.centre
    }

    /// Fits a `w × h` image into `rect` with a small margin.
    pub fn fit(&mut self, rect: Rect, w: usize, h: usize) {
        let (w, h) = (w.max(1) as f32, h.max(1) as f32);
        self.zoom = (rect.width() / w).min(rect.height() / h).max(0.01) * 0.96;
        self.centre = Vec2::new(w / 2.0, h / 2.0);
        self.fit_pending = false;
    }

    /// Zooms by `factor` keeping the image point under `anchor` fixed.
    pub fn zoom_about(&mut self, rect: Rect, anchor: Pos2, factor: f32) {
        let before = self.to_image(rect, anchor);
        self.zoom = (self.zoom * factor).clamp(0.05, 400.0);
        let after = self.to_image(rect, anchor);
        self.centre += before - after;
    }
}

/// What happened in a view this frame.
pub struct ViewOutput {
    /// The view's screen rectangle.
    pub rect: Rect,
    /// The image pixel under the cursor, when it is over the image.
    pub hover_pixel: Option<(usize, usize)>,
    /// The widget response (for hover text, etc.).
    pub response: egui::Response,
}

/// Draws `image` (`w × h` pixels) in a view of `size`, handling zoom and
/// pan on `tf`.
pub fn image_view(
    ui: &mut egui::Ui,
    image: ViewImage,
    (w, h): (usize, usize),
    tf: &mut ViewTransform,
    size: Vec2,
) -> ViewOutput {
    let (rect, response) = ui.allocate_exact_size(size, Sense::click_and_drag());
    if tf.fit_pending {
        tf.fit(rect, w, h);
    }
    if response.dragged() {
        tf.centre -= response.drag_delta() / tf.zoom;
    }
    if response.double_clicked() {
        tf.fit(rect, w, h);
    }
    if let Some(pos) = response.hover_pos() {
        let scroll = ui.input(|i| i.smooth_scroll_delta.y);
        let pinch = ui.input(|i| i.zoom_delta());
        let factor = (scroll / 200.0).exp() * pinch;
        if (factor - 1.0).abs() > 1e-4 {
            tf.zoom_about(rect, pos, factor);
        }
    }
    let painter = ui.painter_at(rect);
    outline(&painter, rect);
    let img_rect = Rect::from_min_max(
        tf.to_screen(rect, Vec2::ZERO),
        tf.to_screen(rect, Vec2::new(w as f32, h as f32)),
    );
    match image {
        ViewImage::Texture(texture) => {
            painter.image(
                texture,
                img_rect,
                Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
                Color32::WHITE,
            );
        }
        ViewImage::Gpu(slot, source) => {
            let shown = img_rect.intersect(rect);
            if shown.is_positive() {
                painter.add(egui_wgpu::Callback::new_paint_callback(
                    shown,
                    PixelImage {
                        slot,
                        source,
                        width: w as u32,
                        height: h as u32,
                        origin: img_rect.min,
                        zoom: tf.zoom,
                        shown,
                    },
                ));
            }
        }
    }
    painter.rect_stroke(
        img_rect,
        0.0,
        Stroke::new(1.0, Color32::from_gray(70)),
        egui::StrokeKind::Outside,
    );
    let hover_pixel = response.hover_pos().and_then(|s| {
        let p = tf.to_image(rect, s);
        (p.x >= 0.0 && p.y >= 0.0 && p.x < w as f32 && p.y < h as f32)
            .then_some((p.x as usize, p.y as usize))
    });
    ViewOutput {
        rect,
        hover_pixel,
        response,
    }
}

/// A view's frame: an outline, not a fill (on a software rasteriser every
/// filled pixel costs).
pub fn outline(painter: &egui::Painter, rect: Rect) {
    painter.rect_stroke(
        rect,
        0.0,
        Stroke::new(1.0, Color32::from_gray(45)),
        egui::StrokeKind::Inside,
    );
}

/// Paints a scale bar of `length_px` image pixels with `label` in the
/// bottom-right corner of `rect`.
pub fn paint_scale_bar(ui: &egui::Ui, rect: Rect, zoom: f32, length_px: f64, label: &str) {
    let painter = ui.painter_at(rect);
    let len = (length_px as f32 * zoom).max(4.0);
    let right = rect.right() - 14.0;
    let y = rect.bottom() - 14.0;
    let bar = Rect::from_min_max(Pos2::new(right - len, y - 4.0), Pos2::new(right, y));
    painter.rect_filled(bar.expand(1.0), 0.0, Color32::from_black_alpha(200));
    painter.rect_filled(bar, 0.0, Color32::WHITE);
    painter.text(
        Pos2::new(bar.center().x, y - 7.0),
        egui::Align2::CENTER_BOTTOM,
        label,
        egui::FontId::proportional(13.0),
        Color32::WHITE,
    );
}
