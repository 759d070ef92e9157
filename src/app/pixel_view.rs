//! Magnified images drawn by our own wgpu pass inside egui's render pass.
//!
//! The raw and model views show a 128×128 frame magnified to hundreds of
//! screen pixels. Through egui's image path every screen pixel runs egui's
//! general shader (a filtered texture sample and blending); on a software
//! rasteriser (lavapipe, the GPU of machines without one) that made the two
//! views cost about 17 ms of CPU per frame. Here an egui paint callback draws
//! each view with `shaders/pixels.wgsl`: a blit of the image texture over the
//! visible part of the view, nearest neighbour, opaque. Image pixels stay
//! crisp squares, as in Fiji.
//!
//! Each view owns a *slot* (a texture, its uniform and bind group) in
//! egui_wgpu's callback resources. The pixels come either from the CPU
//! ([`PixelSource::Bytes`], uploaded only when their generation changes) or
//! from a GPU texture ([`PixelSource::Texture`], the model renderer's display
//! texture, copied on the GPU into the slot every frame it is drawn).

use std::collections::HashMap;
use std::sync::Arc;

use egui_wgpu::{CallbackResources, CallbackTrait, RenderState, ScreenDescriptor};

/// Which view a slot belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    Raw,
    Model,
    /// A table's field.
    Field,
}

/// Where a view's pixels come from.
#[derive(Clone)]
pub enum PixelSource {
    /// `width × height` RGBA8 bytes (gamma-space), row-major; uploaded when
    /// `generation` differs from the slot's.
    Bytes { data: Arc<[u8]>, generation: u64 },
    /// An `Rgba8Unorm` texture of `width × height` with `COPY_SRC` usage.
    Texture(wgpu::Texture),
}

/// One view's draw: what to show and where (framebuffer pixels).
#[derive(Clone)]
pub struct PixelImage {
    pub slot: Slot,
    pub source: PixelSource,
    pub width: u32,
    pub height: u32,
    /// Top-left corner of the image on screen, in points.
    pub origin: egui::Pos2,
    /// Screen points per image pixel.
    pub zoom: f32,
    /// The part of the screen drawn (the callback's rectangle), in points.
    pub shown: egui::Rect,
}

impl PixelImage {
    /// Texture coordinates of the corners of the viewport egui sets for
    /// [`shown`](Self::shown) (rounded to whole framebuffer pixels and
    /// clamped to the screen), so image pixel edges land where the view's
    /// screen-to-image transform puts them.
    fn uv_rect(&self, pixels_per_point: f32, screen_px: [u32; 2]) -> ([f32; 2], [f32; 2]) {
        let vp =
            egui::epaint::ViewportInPixels::from_points(&self.shown, pixels_per_point, screen_px);
        let corner = |x: i32, y: i32| egui::pos2(x as f32, y as f32) / pixels_per_point;
        let size = egui::vec2(self.width as f32, self.height as f32) * self.zoom;
        let uv = |p: egui::Pos2| {
            let d = (p - self.origin) / size;
            [d.x, d.y]
        };
        (
            uv(corner(vp.left_px, vp.top_px)),
            uv(corner(vp.left_px + vp.width_px, vp.top_px + vp.height_px)),
        )
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ViewUniform {
    uv_min: [f32; 2],
    uv_max: [f32; 2],
}

struct SlotState {
    texture: wgpu::Texture,
    uniform: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    /// Generation of the bytes in `texture` (`None` after a texture copy).
    generation: Option<u64>,
}

/// The pipeline and the per-view slots, kept in egui_wgpu's callback resources.
pub struct PixelViews {
    pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
    sampler: wgpu::Sampler,
    slots: HashMap<Slot, SlotState>,
}

impl PixelViews {
    /// Creates the pipeline for egui's target format and stores it in the
    /// renderer's callback resources (eframe: once, at start-up). Assumes
    /// egui's pass is single-sampled without depth, eframe's default.
    pub fn install(rs: &RenderState) {
        let views = Self::new(&rs.device, rs.target_format);
        rs.renderer.write().callback_resources.insert(views);
    }

    fn new(device: &wgpu::Device, target: wgpu::TextureFormat) -> Self {
        let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("posescope pixels"),
            source: wgpu::ShaderSource::Wgsl(include_str!("../../shaders/pixels.wgsl").into()),
        });
        let entry = |binding, ty| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::VERTEX_FRAGMENT,
            ty,
            count: None,
        };
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("posescope pixels"),
            entries: &[
                entry(
                    0,
                    wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                ),
                entry(
                    1,
                    wgpu::BindingType::Texture {
                        sample_type: wgpu::TextureSampleType::Float { filterable: true },
                        view_dimension: wgpu::TextureViewDimension::D2,
                        multisampled: false,
                    },
                ),
                entry(
                    2,
                    wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
                ),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("posescope pixels"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let fs = if target.is_srgb() {
            "fs_srgb_target"
        } else {
            "fs_gamma_target"
        };
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("posescope pixels"),
            layout: Some(&pipeline_layout),
            vertex: wgpu::VertexState {
                module: &shader,
                entry_point: Some("vs_main"),
                compilation_options: Default::default(),
                buffers: &[],
            },
            fragment: Some(wgpu::FragmentState {
                module: &shader,
                entry_point: Some(fs),
                compilation_options: Default::default(),
                targets: &[Some(wgpu::ColorTargetState {
                    format: target,
                    blend: None,
                    write_mask: wgpu::ColorWrites::ALL,
                })],
            }),
            primitive: wgpu::PrimitiveState {
                topology: wgpu::PrimitiveTopology::TriangleStrip,
                ..Default::default()
            },
            depth_stencil: None,
            multisample: wgpu::MultisampleState::default(),
            multiview_mask: None,
            cache: None,
        });
        let sampler = device.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("posescope pixels"),
            mag_filter: wgpu::FilterMode::Nearest,
            min_filter: wgpu::FilterMode::Nearest,
            ..Default::default()
        });
        Self {
            pipeline,
            layout,
            sampler,
            slots: HashMap::new(),
        }
    }

    fn slot(
        &mut self,
        device: &wgpu::Device,
        slot: Slot,
        width: u32,
        height: u32,
    ) -> &mut SlotState {
        let stale = self
            .slots
            .get(&slot)
            .is_none_or(|s| s.texture.width() != width || s.texture.height() != height);
        if stale {
            let (texture, view) = crate::render::gpu::texture_2d(
                device,
                "posescope pixels",
                width,
                height,
                wgpu::TextureFormat::Rgba8Unorm,
                wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            );
            let uniform = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("posescope pixels view"),
                size: std::mem::size_of::<ViewUniform>() as u64,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("posescope pixels"),
                layout: &self.layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: uniform.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: wgpu::BindingResource::TextureView(&view),
                    },
                    wgpu::BindGroupEntry {
                        binding: 2,
                        resource: wgpu::BindingResource::Sampler(&self.sampler),
                    },
                ],
            });
            self.slots.insert(
                slot,
                SlotState {
                    texture,
                    uniform,
                    bind_group,
                    generation: None,
                },
            );
        }
        self.slots.get_mut(&slot).expect("slot just ensured")
    }
}

/// Checks that a source holds `width × height` pixels; `None` when it does not
/// (the view is then left undrawn rather than reading out of bounds).
fn source_fits(img: &PixelImage) -> bool {
    match &img.source {
        PixelSource::Bytes { data, .. } => {
            data.len() == img.width as usize * img.height as usize * 4
        }
        PixelSource::Texture(t) => {
            t.width() == img.width
                && t.height() == img.height
                && t.format() == wgpu::TextureFormat::Rgba8Unorm
                && t.usage().contains(wgpu::TextureUsages::COPY_SRC)
        }
    }
}

impl CallbackTrait for PixelImage {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        screen: &ScreenDescriptor,
        encoder: &mut wgpu::CommandEncoder,
        resources: &mut CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        let Some(views) = resources.get_mut::<PixelViews>() else {
            return Vec::new();
        };
        let max = device.limits().max_texture_dimension_2d;
        if self.width == 0 || self.height == 0 || !source_fits(self) {
            return Vec::new();
        }
        if self.width > max || self.height > max {
            // larger than any texture this GPU holds (large images open as
            // fields, drawn by window): left undrawn rather than a wgpu panic
            tracing::warn!(
                "a {} × {} image exceeds the GPU's {max}-pixel texture limit; not drawn",
                self.width,
                self.height
            );
            return Vec::new();
        }
        let slot = views.slot(device, self.slot, self.width, self.height);
        let extent = wgpu::Extent3d {
            width: self.width,
            height: self.height,
            depth_or_array_layers: 1,
        };
        match &self.source {
            PixelSource::Bytes { data, generation } => {
                if slot.generation != Some(*generation) {
                    queue.write_texture(
                        slot.texture.as_image_copy(),
                        data,
                        wgpu::TexelCopyBufferLayout {
                            offset: 0,
                            bytes_per_row: Some(self.width * 4),
                            rows_per_image: None,
                        },
                        extent,
                    );
                    slot.generation = Some(*generation);
                }
            }
            PixelSource::Texture(texture) => {
                encoder.copy_texture_to_texture(
                    texture.as_image_copy(),
                    slot.texture.as_image_copy(),
                    extent,
                );
                slot.generation = None;
            }
        }
        let (uv_min, uv_max) = self.uv_rect(screen.pixels_per_point, screen.size_in_pixels);
        let uniform = ViewUniform { uv_min, uv_max };
        queue.write_buffer(&slot.uniform, 0, bytemuck::bytes_of(&uniform));
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        pass: &mut wgpu::RenderPass<'static>,
        resources: &CallbackResources,
    ) {
        let Some(views) = resources.get::<PixelViews>() else {
            return;
        };
        let Some(slot) = views.slots.get(&self.slot) else {
            return;
        };
        if !source_fits(self) {
            return;
        }
        pass.set_pipeline(&views.pipeline);
        pass.set_bind_group(0, &slot.bind_group, &[]);
        pass.draw(0..4, 0..1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texture_coordinates_span_the_shown_part() {
        let img = PixelImage {
            slot: Slot::Raw,
            source: PixelSource::Bytes {
                data: Arc::from(vec![0u8; 4 * 4 * 4]),
                generation: 0,
            },
            width: 4,
            height: 4,
            origin: egui::pos2(10.0, 20.0),
            zoom: 5.0,
            // the image spans 10..30 × 20..40; the view shows its right half
            shown: egui::Rect::from_min_max(egui::pos2(20.0, 20.0), egui::pos2(30.0, 40.0)),
        };
        assert_eq!(img.uv_rect(1.0, [100, 100]), ([0.5, 0.0], [1.0, 1.0]));
        // at 1.5 pixels per point the viewport is 30..45 × 30..60 pixels
        assert_eq!(img.uv_rect(1.5, [100, 100]), ([0.5, 0.0], [1.0, 1.0]));
        // a screen 40 pixels wide cuts the viewport at x = 40 px = 26.67 points
        let (lo, hi) = img.uv_rect(1.5, [40, 100]);
        assert_eq!(lo, [0.5, 0.0]);
        assert!((hi[0] - (40.0 / 1.5 - 10.0) / 20.0).abs() < 1e-6 && hi[1] == 1.0);
        // fractional edges round to whole pixels: 20.3 → 20 px
        let off = PixelImage {
            shown: egui::Rect::from_min_max(egui::pos2(20.3, 20.0), egui::pos2(30.0, 40.0)),
            ..img.clone()
        };
        assert_eq!(off.uv_rect(1.0, [100, 100]).0, [0.5, 0.0]);
        assert!(source_fits(&img));
    }
}
