//! Magnified images drawn by our own wgpu pass inside egui's render pass.
//!
//! The raw and model views show a 128×128 frame magnified to hundreds of
//! screen pixels. Through egui's image path every screen pixel runs egui's
//! general shader (a filtered texture sample and blending); on a software
//! rasteriser (lavapipe, the GPU of machines without one) that made the two
//! views cost about 17 ms of CPU per frame. Here an egui paint callback draws
//! each view with `shaders/pixels.wgsl`, which reads one packed RGBA8 word per
//! pixel from a storage buffer, nearest neighbour, opaque. Image pixels stay
//! crisp squares, as in Fiji.
//!
//! Each view owns a *slot* (a storage buffer, its uniform and bind group) in
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
}

/// Rows of the slot buffers are padded to this many bytes, as texture copies require.
const ROW_ALIGN: u32 = wgpu::COPY_BYTES_PER_ROW_ALIGNMENT;

fn padded_row_bytes(width: u32) -> u32 {
    (width * 4).div_ceil(ROW_ALIGN) * ROW_ALIGN
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ViewUniform {
    origin: [f32; 2],
    zoom: f32,
    stride: u32,
    size: [u32; 2],
    _pad: [u32; 2],
}

struct SlotState {
    buffer: wgpu::Buffer,
    uniform: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    capacity: u64,
    /// Generation of the bytes in `buffer` (`None` after a texture copy).
    generation: Option<u64>,
}

/// The pipeline and the per-view slots, kept in egui_wgpu's callback resources.
pub struct PixelViews {
    pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
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
            visibility: wgpu::ShaderStages::FRAGMENT,
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
                    wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: true },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
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
            primitive: wgpu::PrimitiveState::default(),
            depth_stencil: None,
            multisample: wgpu::MultisampleState::default(),
            multiview_mask: None,
            cache: None,
        });
        Self {
            pipeline,
            layout,
            slots: HashMap::new(),
        }
    }

    fn slot(&mut self, device: &wgpu::Device, slot: Slot, bytes: u64) -> &mut SlotState {
        let stale = self.slots.get(&slot).is_none_or(|s| s.capacity < bytes);
        if stale {
            let buffer = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("posescope pixels"),
                size: bytes,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
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
                        resource: buffer.as_entire_binding(),
                    },
                ],
            });
            self.slots.insert(
                slot,
                SlotState {
                    buffer,
                    uniform,
                    bind_group,
                    capacity: bytes,
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
        if self.width == 0 || self.height == 0 || !source_fits(self) {
            return Vec::new();
        }
        let row = padded_row_bytes(self.width);
        let slot = views.slot(device, self.slot, u64::from(row) * u64::from(self.height));
        match &self.source {
            PixelSource::Bytes { data, generation } => {
                if slot.generation != Some(*generation) {
                    let src_row = self.width as usize * 4;
                    if row as usize == src_row {
                        queue.write_buffer(&slot.buffer, 0, data);
                    } else {
                        let mut padded = vec![0u8; row as usize * self.height as usize];
                        for (dst, src) in padded
                            .chunks_exact_mut(row as usize)
                            .zip(data.chunks_exact(src_row))
                        {
                            dst[..src_row].copy_from_slice(src);
                        }
                        queue.write_buffer(&slot.buffer, 0, &padded);
                    }
                    slot.generation = Some(*generation);
                }
            }
            PixelSource::Texture(texture) => {
                encoder.copy_texture_to_buffer(
                    texture.as_image_copy(),
                    wgpu::TexelCopyBufferInfo {
                        buffer: &slot.buffer,
                        layout: wgpu::TexelCopyBufferLayout {
                            offset: 0,
                            bytes_per_row: Some(row),
                            rows_per_image: None,
                        },
                    },
                    wgpu::Extent3d {
                        width: self.width,
                        height: self.height,
                        depth_or_array_layers: 1,
                    },
                );
                slot.generation = None;
            }
        }
        let ppp = screen.pixels_per_point;
        let uniform = ViewUniform {
            origin: [self.origin.x * ppp, self.origin.y * ppp],
            zoom: self.zoom * ppp,
            stride: row / 4,
            size: [self.width, self.height],
            _pad: [0; 2],
        };
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
        pass.draw(0..3, 0..1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_padded_for_texture_copies() {
        assert_eq!(padded_row_bytes(128), 512);
        assert_eq!(padded_row_bytes(96), 512);
        assert_eq!(padded_row_bytes(1), 256);
        assert_eq!(padded_row_bytes(65), 512);
    }
}
