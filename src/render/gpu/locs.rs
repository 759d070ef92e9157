//! Localisation tables rendered on the GPU: the wgpu twin of the CPU
//! reference [`render_locs`](crate::render::locs::render_locs) in
//! individual-blur mode (`shaders/locs.wgsl`: one instanced quad per
//! localisation, additive blending into a float target).
//!
//! The table is uploaded once ([`GpuLocRenderer::set_locs`], relative to
//! its first finite row so f32 keeps sub-nm precision across a 100 µm
//! field); each [`render`](GpuLocRenderer::render) of a view only writes a
//! 32-byte uniform, draws and reads the image back. Rows are uploaded in
//! chunks of at most [`CHUNK_ROWS`], so no buffer exceeds the device's
//! limit whatever the table's size.
//!
//! Agreement with the CPU: the same σ, the same ±3σ square cut at pixel
//! centres, the same analytic normalisation; the differences are f32
//! rounding (`exp`, summation order) with an `R32Float` target, and f16
//! accumulation on devices without `FLOAT32_BLENDABLE` (see the module
//! docs of [`super`]); `tests/gpu_render.rs` bounds both.

use bytemuck::{Pod, Zeroable};

use super::device::{read_accumulation_texture, texture_2d};
use super::{GpuError, Result, MAX_SIDE};
use crate::render::locs::LocView;

/// Most rows in one vertex buffer (16 bytes each: 64 MiB).
pub const CHUNK_ROWS: usize = 1 << 22;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct ViewUniform {
    origin: [f32; 2],
    size: [f32; 2],
    inv_pixel: f32,
    min_blur: f32,
    channels: u32,
    _pad: u32,
}

/// The GPU localisation renderer of one device.
pub struct GpuLocRenderer {
    pipeline: wgpu::RenderPipeline,
    uniform: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    accum_format: wgpu::TextureFormat,
    /// Vertex buffers of the uploaded rows and their row counts.
    chunks: Vec<(wgpu::Buffer, u32)>,
    /// The upload's origin, nm (subtracted from every row).
    base: [f64; 2],
    /// The accumulation target and its size.
    target: Option<(wgpu::Texture, wgpu::TextureView, u32, u32)>,
}

impl GpuLocRenderer {
    /// The pipeline for `device`: an `R32Float` target when the device has
    /// [`wgpu::Features::FLOAT32_BLENDABLE`], `Rgba16Float` otherwise.
    pub fn new(device: &wgpu::Device) -> Self {
        let accum_format = if device
            .features()
            .contains(wgpu::Features::FLOAT32_BLENDABLE)
        {
            wgpu::TextureFormat::R32Float
        } else {
            wgpu::TextureFormat::Rgba16Float
        };
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("posescope locs.wgsl"),
            source: wgpu::ShaderSource::Wgsl(include_str!("../../../shaders/locs.wgsl").into()),
        });
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("posescope locs"),
            entries: &[wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::VERTEX_FRAGMENT,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            }],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("posescope locs"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let add = wgpu::BlendComponent {
            src_factor: wgpu::BlendFactor::One,
            dst_factor: wgpu::BlendFactor::One,
            operation: wgpu::BlendOperation::Add,
        };
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("posescope locs"),
            layout: Some(&pipeline_layout),
            vertex: wgpu::VertexState {
                module: &module,
                entry_point: Some("vs_locs"),
                compilation_options: Default::default(),
                buffers: &[Some(wgpu::VertexBufferLayout {
                    array_stride: 16,
                    step_mode: wgpu::VertexStepMode::Instance,
                    attributes: &wgpu::vertex_attr_array![0 => Float32x4],
                })],
            },
            fragment: Some(wgpu::FragmentState {
                module: &module,
                entry_point: Some("fs_locs"),
                compilation_options: Default::default(),
                targets: &[Some(wgpu::ColorTargetState {
                    format: accum_format,
                    blend: Some(wgpu::BlendState {
                        color: add,
                        alpha: add,
                    }),
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
        let uniform = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("posescope locs view"),
            size: std::mem::size_of::<ViewUniform>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("posescope locs"),
            layout: &layout,
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: uniform.as_entire_binding(),
            }],
        });
        Self {
            pipeline,
            uniform,
            bind_group,
            accum_format,
            chunks: Vec::new(),
            base: [0.0; 2],
            target: None,
        }
    }

    /// The accumulation format in use.
    pub fn accumulation_format(&self) -> wgpu::TextureFormat {
        self.accum_format
    }

    /// Uploads a table's rows (non-finite ones left out); returns how many
    /// were uploaded.
    pub fn set_locs(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        x_nm: &[f32],
        y_nm: &[f32],
        precision_nm: Option<&[f32]>,
    ) -> usize {
        let n = x_nm.len().min(y_nm.len());
        let finite = |i: usize| x_nm[i].is_finite() && y_nm[i].is_finite();
        self.base = (0..n)
            .find(|&i| finite(i))
            .map_or([0.0; 2], |i| [f64::from(x_nm[i]), f64::from(y_nm[i])]);
        let rows: Vec<[f32; 4]> = (0..n)
            .filter(|&i| finite(i))
            .map(|i| {
                let p = precision_nm
                    .and_then(|p| p.get(i))
                    .copied()
                    .filter(|p| p.is_finite())
                    .unwrap_or(0.0);
                [
                    (f64::from(x_nm[i]) - self.base[0]) as f32,
                    (f64::from(y_nm[i]) - self.base[1]) as f32,
                    p,
                    0.0,
                ]
            })
            .collect();
        self.chunks = rows
            .chunks(CHUNK_ROWS)
            .map(|c| {
                let buffer = device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("posescope locs rows"),
                    size: (c.len() * 16) as u64,
                    usage: wgpu::BufferUsages::VERTEX | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                queue.write_buffer(&buffer, 0, bytemuck::cast_slice(c));
                (buffer, c.len() as u32)
            })
            .collect();
        rows.len()
    }

    /// Renders the uploaded rows into `view` with σ at least `min_blur_nm`
    /// and reads the image back: `width × height` f32, row-major. Waits
    /// for the GPU.
    pub fn render(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        view: &LocView,
        min_blur_nm: f32,
    ) -> Result<Vec<f32>> {
        let max = MAX_SIDE.min(device.limits().max_texture_dimension_2d) as usize;
        if view.width == 0 || view.height == 0 || view.width > max || view.height > max {
            return Err(GpuError::Invalid(format!(
                "a {} × {} localisation render (sides 1 to {max})",
                view.width, view.height
            )));
        }
        if !(view.pixel_nm.is_finite() && view.pixel_nm > 0.0 && min_blur_nm >= 0.0) {
            return Err(GpuError::Invalid(format!(
                "pixel size {} nm, minimum blur {min_blur_nm} nm",
                view.pixel_nm
            )));
        }
        let (w, h) = (view.width as u32, view.height as u32);
        if self.target.as_ref().is_none_or(|t| t.2 != w || t.3 != h) {
            let (tex, tv) = texture_2d(
                device,
                "posescope locs accumulation",
                w,
                h,
                self.accum_format,
                wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
            );
            self.target = Some((tex, tv, w, h));
        }
        let channels = match self.accum_format {
            wgpu::TextureFormat::R32Float => 1,
            _ => 4,
        };
        let u = ViewUniform {
            origin: [
                (view.origin_nm[0] - self.base[0]) as f32,
                (view.origin_nm[1] - self.base[1]) as f32,
            ],
            size: [w as f32, h as f32],
            inv_pixel: (1.0 / view.pixel_nm) as f32,
            min_blur: min_blur_nm,
            channels,
            _pad: 0,
        };
        queue.write_buffer(&self.uniform, 0, bytemuck::bytes_of(&u));
        let (tex, tv, _, _) = self.target.as_ref().expect("target just ensured");
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("posescope locs"),
        });
        {
            let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("posescope locs"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: tv,
                    depth_slice: None,
                    resolve_target: None,
                    ops: wgpu::Operations {
                        load: wgpu::LoadOp::Clear(wgpu::Color::TRANSPARENT),
                        store: wgpu::StoreOp::Store,
                    },
                })],
                ..Default::default()
            });
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &self.bind_group, &[]);
            for (buffer, count) in &self.chunks {
                pass.set_vertex_buffer(0, buffer.slice(..));
                pass.draw(0..4, 0..*count);
            }
        }
        queue.submit([encoder.finish()]);
        read_accumulation_texture(device, queue, tex, w, h)
    }
}
