//! The pixels of the two image views: the raw frame coloured by its LUT and
//! contrast, and the model (side by side, overlay or residual) drawn by the
//! WGSL shaders or, on software rasterisers, by the CPU renderer. Colours are
//! recomputed only when what they depend on changed.

use std::sync::Arc;

use egui::{ColorImage, TextureOptions};

use super::gpu_view::ModelImage;
use super::view::ViewImage;
use super::{pixel_view, PoseScopeApp};
use crate::render::display::{self, auto_contrast, auto_contrast_fraction, Contrast};

impl PoseScopeApp {
    /// The contrast of the frame on screen: the user's, or the frame's
    /// auto-contrast, computed once per frame shown (it is asked for several
    /// times a UI frame).
    pub(super) fn effective_contrast(&self) -> Option<Contrast> {
        if let Some(c) = self.session.display.contrast {
            return Some(c);
        }
        let key = self.session.frame_key()?;
        match self.ui.auto_contrast_cache.get() {
            Some((k, c)) if k == key => Some(c),
            _ => {
                let c = auto_contrast(
                    &self.session.current_frame()?.data,
                    auto_contrast_fraction(0),
                );
                self.ui.auto_contrast_cache.set(Some((key, c)));
                Some(c)
            }
        }
    }

    /// Colours CPU-made pixels for a view: wgpu pixels, or an egui texture.
    fn cpu_view_image(
        &mut self,
        ctx: &egui::Context,
        which: pixel_view::Slot,
        rgba: Vec<u8>,
        [w, h]: [usize; 2],
    ) -> ViewImage {
        self.ui.pixel_generation += 1;
        if self.ui.pixel_views {
            let data: Arc<[u8]> = rgba.into();
            if which == pixel_view::Slot::Raw {
                self.ui.raw_pixels = Some((data.clone(), self.ui.pixel_generation));
            }
            return ViewImage::Gpu(
                which,
                pixel_view::PixelSource::Bytes {
                    data,
                    generation: self.ui.pixel_generation,
                },
            );
        }
        let img = ColorImage::from_rgba_unmultiplied([w, h], &rgba);
        let (slot, name) = match which {
            pixel_view::Slot::Raw => (&mut self.ui.raw_tex, "raw"),
            // the field draws itself (field_view)
            pixel_view::Slot::Model | pixel_view::Slot::Field => {
                (&mut self.ui.cpu_model_tex, "model")
            }
        };
        match slot {
            Some(t) => t.set(img, TextureOptions::NEAREST),
            None => *slot = Some(ctx.load_texture(name, img, TextureOptions::NEAREST)),
        }
        ViewImage::Texture(slot.as_ref().expect("texture just set").id())
    }

    pub(super) fn raw_image(&mut self, ctx: &egui::Context) -> Option<ViewImage> {
        let c = self.effective_contrast()?;
        let key = (
            self.session.doc()?.id,
            self.session.frame,
            [c.min.to_bits(), c.max.to_bits()],
            self.settings.lut,
        );
        if self.ui.raw_key == Some(key) {
            if let Some((data, generation)) = &self.ui.raw_pixels {
                let source = pixel_view::PixelSource::Bytes {
                    data: data.clone(),
                    generation: *generation,
                };
                return Some(ViewImage::Gpu(pixel_view::Slot::Raw, source));
            }
            if let Some(t) = &self.ui.raw_tex {
                return Some(ViewImage::Texture(t.id()));
            }
        }
        let f = self.session.current_frame()?;
        // a palette image is shown in its own colours (the LUT and contrast
        // do not apply to indices)
        let rgba = match self.session.doc().and_then(|d| d.info.palette.as_deref()) {
            Some(p) => display::colorize_palette(&f.data, p),
            None => display::colorize(&f.data, c, self.settings.lut),
        };
        let size = [f.width, f.height];
        self.ui.raw_key = Some(key);
        Some(self.cpu_view_image(ctx, pixel_view::Slot::Raw, rgba, size))
    }

    pub(super) fn model_image(
        &mut self,
        ctx: &egui::Context,
        frame: &eframe::Frame,
    ) -> Option<ViewImage> {
        // the frames are shared (Arc), so the frame is borrowed, not copied
        let frames = self.session.doc()?.frames.clone();
        let f = frames.get(self.session.frame)?;
        let doc_id = self.session.doc()?.id;
        let raw_contrast = self.effective_contrast()?;
        let st = self.session.controls.state();
        let img = ModelImage {
            points: &self.live.points,
            weights: &self.live.model.weights,
            rot: st.pose.q.to_matrix(),
            shift: st.pose.shift,
            params: crate::render::SplatParams {
                width: f.width,
                height: f.height,
                sigma: st.sigma as f32,
                scale: st.scale as f32,
            },
            raw: &f.data,
            raw_contrast,
            cpu_render: &self.live.render,
            lut: self.settings.lut,
            layout: self.settings.layout,
        };
        if self.ui.gpu_error.is_none() && self.ui.gpu_model {
            if let (Some(gpu), Some(rs)) = (self.ui.gpu.as_mut(), frame.wgpu_render_state()) {
                match gpu.draw(rs, &img, doc_id.0 ^ ((self.session.frame as u64) << 40)) {
                    Ok(texture) if self.ui.pixel_views => {
                        let source = pixel_view::PixelSource::Texture(texture);
                        return Some(ViewImage::Gpu(pixel_view::Slot::Model, source));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let msg = format!("GPU model view failed, drawing on the CPU instead: {e}");
                        self.ui.gpu_error = Some(e);
                        self.session.error(msg);
                        return None;
                    }
                }
            }
        }
        let rgba = img.cpu_rgba();
        let size = [f.width, f.height];
        Some(self.cpu_view_image(ctx, pixel_view::Slot::Model, rgba, size))
    }
}
