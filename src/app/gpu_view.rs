//! The model view drawn by the GPU: the WGSL splat and composite passes of
//! [`crate::render::gpu`] render into an offscreen Rgba8Unorm texture that is
//! registered with egui as a native texture and painted like any image.
//!
//! When eframe runs without wgpu (or the GPU renderer fails), the same
//! composite is made on the CPU by [`crate::render::display`], so the viewer
//! always shows something.

use egui_wgpu::RenderState;

pub use super::state::Layout;
use crate::render::display::{self, Contrast, Lut};
use crate::render::gpu::{Composite, CompositeMode, GpuRenderer, SplatScene, DISPLAY_CUT_SIGMAS};
use crate::render::SplatParams;

/// The wgpu setup of the viewer (and its tests): egui's defaults, plus
/// float32 blending when the adapter has it, so the splat accumulates in
/// R32Float and matches the CPU renderer to ~1e-6 (else Rgba16Float, ~3 %).
pub fn wgpu_setup() -> egui_wgpu::WgpuSetup {
    let mut setup = egui_wgpu::WgpuSetupCreateNew::without_display_handle();
    let base = setup.device_descriptor.clone();
    setup.device_descriptor = std::sync::Arc::new(move |adapter| {
        let mut desc = base(adapter);
        if adapter
            .features()
            .contains(wgpu::Features::FLOAT32_BLENDABLE)
        {
            desc.required_features |= wgpu::Features::FLOAT32_BLENDABLE;
        }
        desc
    });
    egui_wgpu::WgpuSetup::CreateNew(setup)
}

/// Everything one model-panel image depends on.
pub struct ModelImage<'a> {
    /// Posed model points (model frame, pixels) and weights.
    pub points: &'a [[f32; 3]],
    /// Point weights.
    pub weights: &'a [f32],
    /// Rotation matrix.
    pub rot: [[f64; 3]; 3],
    /// Shift from the image centre.
    pub shift: [f64; 2],
    /// Size, σ and scale.
    pub params: SplatParams,
    /// The raw frame (for overlay and residual).
    pub raw: &'a [f32],
    /// Raw contrast.
    pub raw_contrast: Contrast,
    /// The CPU render of the same model (for contrast, residual fit and the fallback).
    pub cpu_render: &'a [f32],
    /// LUT for the model and raw.
    pub lut: Lut,
    /// What to show.
    pub layout: Layout,
}

impl ModelImage<'_> {
    fn model_contrast(&self) -> Contrast {
        Contrast::full(self.cpu_render)
    }

    fn residual_limit(res: impl IntoIterator<Item = f32>) -> f32 {
        let m = res
            .into_iter()
            .filter(|v| v.is_finite())
            .fold(0.0f32, |m, v| m.max(v.abs()));
        if m > 0.0 {
            m
        } else {
            1.0
        }
    }

    /// The composite, computed on the CPU (fallback and export).
    pub fn cpu_rgba(&self) -> Vec<u8> {
        match self.layout {
            Layout::SideBySide | Layout::Orbit3d => {
                display::colorize(self.cpu_render, self.model_contrast(), self.lut)
            }
            Layout::Overlay => display::overlay_rgba(
                self.raw,
                self.raw_contrast,
                self.cpu_render,
                self.model_contrast(),
            ),
            Layout::Residual => {
                let res = display::residual(self.raw, self.cpu_render);
                display::residual_rgba(&res, Self::residual_limit(res.iter().copied()))
            }
        }
    }
}

/// The GPU renderer of the model view; its output texture is drawn by
/// [`super::pixel_view`].
pub struct GpuModelView {
    renderer: GpuRenderer,
    raw_key: Option<(usize, usize, u64)>,
}

impl GpuModelView {
    /// Creates the pipelines on eframe's device.
    pub fn new(rs: &RenderState) -> Self {
        let mut renderer = GpuRenderer::new(&rs.device);
        renderer.set_cut_sigmas(DISPLAY_CUT_SIGMAS);
        Self {
            renderer,
            raw_key: None,
        }
    }

    /// R32Float (exact) or Rgba16Float (fallback).
    pub fn accumulation_format(&self) -> wgpu::TextureFormat {
        self.renderer.accumulation_format()
    }

    /// Renders `img` on the GPU and returns the display texture (`Rgba8Unorm`).
    /// `raw_key` identifies the raw frame so it is uploaded only when it changes.
    pub fn draw(
        &mut self,
        rs: &RenderState,
        img: &ModelImage<'_>,
        raw_key: u64,
    ) -> Result<wgpu::Texture, String> {
        let (w, h) = (img.params.width, img.params.height);
        let key = (w, h, raw_key);
        if self.raw_key != Some(key) {
            self.renderer
                .set_raw(&rs.device, &rs.queue, img.raw, w, h)
                .map_err(|e| e.to_string())?;
            self.raw_key = Some(key);
        }
        let mc = img.model_contrast();
        let (mode, lut, residual_ab, residual_limit) = match img.layout {
            Layout::SideBySide | Layout::Orbit3d => {
                (CompositeMode::Model, img.lut.table(), (0.0, 0.0), 1.0)
            }
            Layout::Overlay => (CompositeMode::Overlay, img.lut.table(), (0.0, 0.0), 1.0),
            Layout::Residual => {
                // one fit, used for both the composite and its colour limit
                let ab = display::fit_linear(img.raw, img.cpu_render);
                let res = display::residual_values(img.raw, img.cpu_render, ab);
                (
                    CompositeMode::Residual,
                    display::diverging_table(),
                    ab,
                    ModelImage::residual_limit(res),
                )
            }
        };
        let composite = Composite {
            mode,
            lut,
            raw_contrast: (img.raw_contrast.min, img.raw_contrast.max),
            model_contrast: (mc.min, mc.max),
            residual_ab,
            residual_limit,
        };
        let scene = SplatScene {
            points: img.points,
            weights: img.weights,
            rot: img.rot,
            shift: img.shift,
            params: img.params,
        };
        self.renderer
            .render(&rs.device, &rs.queue, &scene, &composite)
            .map_err(|e| e.to_string())?;
        self.renderer
            .display_texture()
            .cloned()
            .ok_or_else(|| "the GPU renderer has no output".to_string())
    }
}
