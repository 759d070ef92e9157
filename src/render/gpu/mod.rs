//! The GPU renderer: the same image as [`super::cpu`], drawn with wgpu for
//! the viewer; and in [`locs`] the GPU twin of the localisation-table
//! renderer [`super::locs`].
//!
//! # What it draws
//! Two passes per [`GpuRenderer::render`], recorded in one encoder:
//!
//! 1. **Splat** (`shaders/splat.wgsl`): one instanced octagon per model point.
//!    The vertex shader projects the point as in the [module docs](super)
//!    (`(u, v) = (W/2 + shift_x, H/2 + shift_y) + s·(R·p)_xy`; the offset is
//!    summed in f64 on the CPU, `R` and `s` are f32 uniforms) and spans a
//!    regular octagon around it whose inscribed circle has radius
//!    [`CUT_SIGMAS`]`·σ` (every pixel within that radius; 17 % fewer
//!    fragments than the square around the circle). The fragment shader
//!    evaluates `w/(2πσ²)·exp(−|x − (u, v)|²/2σ²)` at the fragment centre
//!    (`@builtin(position).xy` is `(c + ½, r + ½)` without multisampling),
//!    and additive `(One, One)` blending sums the points into the
//!    *accumulation* texture, cleared to 0 first.
//! 2. **Composite** (`shaders/composite.wgsl`): a full-screen triangle that
//!    reads the accumulation, the raw frame ([`GpuRenderer::set_raw`]) and a
//!    256×1 LUT with `textureLoad` and writes the *display* texture, see
//!    [`CompositeMode`].
//!
//! # Formats
//! * Accumulation: `R32Float` when the device has
//!   [`wgpu::Features::FLOAT32_BLENDABLE`] (blending into 32-bit float
//!   targets is an optional feature), otherwise `Rgba16Float` (points
//!   spread over the four channels, see below).
//!   [`headless_device`] requests the feature when the adapter has it; a
//!   device created elsewhere (the egui one) is used as it is.
//! * Raw frame: `R32Float`. LUT: `Rgba8Unorm`, 256×1.
//! * Display: `Rgba8Unorm`, `W×H`, usage `TEXTURE_BINDING | RENDER_ATTACHMENT
//!   | COPY_SRC`; the LUT bytes as they are (gamma-space), alpha 1, so it
//!   can be registered with egui as a premultiplied native texture.
//!
//! # Agreement with the CPU renderer
//! The GPU cuts each Gaussian at a radius of [`CUT_SIGMAS`]` = 6` σ (the
//! octagon's inscribed circle), the CPU fast path at a square of the same
//! half-width ([`super::kernel::TRUNCATE_SIGMAS`]); what either drops is
//! below `e^-18 ≈ 1.5e-8` of a point's peak. The remaining
//! differences are f32 rounding: the projection (f32 here, f64 then f32 on
//! the CPU), the `exp` of the shader compiler, and the summation order.
//! With an `R32Float` accumulation `tests/gpu_render.rs` requires
//! `max|gpu − cpu| ≤ 1e-3·max(cpu) + 1e-6` and totals within 1e-4
//! relative; lavapipe measures about 2e-6 of the peak.
//!
//! `Rgba16Float` is much coarser: every blend rounds a running sum to 11
//! significant bits, and a contribution below half an ulp of the sum is
//! lost, so the image comes out biased low where many points overlap. To
//! shrink this, point `i` goes to channel `i mod 4` (each f16 sum is about 4×
//! smaller) and the composite pass and [`GpuRenderer::read_accumulation`]
//! add the four channels in f32. The test bound for this fallback is
//! `5e-2·max(cpu) + 1e-3` (totals 5e-2); lavapipe measures up to 3e-2 of the
//! peak (2% of the total) for 2000 points at σ = 2.5, 5e-3 at σ = 1.2. Good
//! enough for display. For a quantitative residual view, create the device
//! with [`wgpu::Features::FLOAT32_BLENDABLE`] (all desktop Vulkan, DX12 and
//! Metal adapters offer it).
//!
//! Validation errors of wgpu itself (programming errors in this module)
//! panic as usual in wgpu; everything a caller can get wrong is a
//! [`GpuError`].

use bytemuck::{Pod, Zeroable};

use super::SplatParams;

/// Radius of each splat (the inscribed circle of its octagon) in units of σ;
/// matches the CPU truncation
/// ([`super::kernel::TRUNCATE_SIGMAS`]).
pub const CUT_SIGMAS: f32 = 6.0;

/// The cut the viewer uses ([`GpuRenderer::set_cut_sigmas`]): a point's
/// Gaussian is below `e^-8 ≈ 3.4e-4` of its peak at 4 σ, invisible on an
/// 8-bit display, and a splat of radius 4 σ has 0.44× the fragments of 6 σ, which
/// matters on software rasterisers.
pub const DISPLAY_CUT_SIGMAS: f32 = 4.0;

/// Largest image side accepted (also capped by the device limit).
pub const MAX_SIDE: u32 = 8192;

/// Errors from the GPU renderer.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// No wgpu adapter (hardware or software) was found.
    #[error("no GPU adapter found: {0}")]
    NoAdapter(String),
    /// The adapter refused to create a device.
    #[error("GPU device request failed: {0}")]
    Device(String),
    /// The arguments do not describe a valid render or upload.
    #[error("invalid GPU render input: {0}")]
    Invalid(String),
    /// Reading a texture back to the CPU failed.
    #[error("GPU readback failed: {0}")]
    Readback(String),
}

type Result<T> = std::result::Result<T, GpuError>;

mod device;
pub mod locs;
pub(crate) use device::texture_2d;
pub use device::{f16_to_f32, headless_device};
use device::{read_accumulation_texture, read_texture};
pub use locs::GpuLocRenderer;

/// A model and pose to splat, in the terms of [`super::cpu::render_frame`].
#[derive(Clone, Copy, Debug)]
pub struct SplatScene<'a> {
    /// Model points in pixels, model frame.
    pub points: &'a [[f32; 3]],
    /// One weight per point.
    pub weights: &'a [f32],
    /// Rotation matrix (row-major), e.g. from [`crate::geometry::Quat::to_matrix`].
    pub rot: [[f64; 3]; 3],
    /// Image-plane shift in pixels (x along columns, y along rows).
    pub shift: [f64; 2],
    /// Image size, σ and scale.
    pub params: SplatParams,
}

/// What the composite pass shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompositeMode {
    /// The model through the LUT, `t = (model − lo)/(hi − lo)` with
    /// [`Composite::model_contrast`].
    Model,
    /// Raw (normalised by [`Composite::raw_contrast`]) in magenta plus the
    /// model (normalised by [`Composite::model_contrast`]) in green, added.
    Overlay,
    /// `raw − (a·model + b)` through the LUT at `t = 0.5 + 0.5·res/limit`
    /// ([`Composite::residual_ab`], [`Composite::residual_limit`]); pass a
    /// diverging LUT.
    Residual,
    /// The raw frame through the LUT with [`Composite::raw_contrast`].
    Raw,
}

/// Composite settings. Contrast pairs are `(lo, hi)`: `lo` maps to LUT entry
/// 0 and `hi` to entry 255; values outside are clamped. A zero or non-finite
/// range shows everything at entry 0.
#[derive(Clone, Copy, Debug)]
pub struct Composite {
    /// What to show.
    pub mode: CompositeMode,
    /// Colour table, gamma-space RGBA bytes (alpha is ignored, output alpha is 1).
    pub lut: [[u8; 4]; 256],
    /// `(lo, hi)` of the raw frame.
    pub raw_contrast: (f32, f32),
    /// `(lo, hi)` of the model.
    pub model_contrast: (f32, f32),
    /// `(a, b)` of the residual `raw − (a·model + b)`.
    pub residual_ab: (f32, f32),
    /// Residual magnitude mapped to the ends of the LUT.
    pub residual_limit: f32,
}

impl Composite {
    /// A grey ramp LUT (`[i, i, i, 255]`).
    pub fn grey_lut() -> [[u8; 4]; 256] {
        std::array::from_fn(|i| [i as u8, i as u8, i as u8, 255])
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct SplatUniforms {
    rot0: [f32; 4],
    rot1: [f32; 4],
    offset: [f32; 2],
    size: [f32; 2],
    scale: f32,
    inv_two_sigma2: f32,
    radius: f32,
    norm: f32,
    channels: u32,
    _pad: [u32; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct CompositeUniforms {
    model_mask: [f32; 4],
    mode: u32,
    raw_lo: f32,
    raw_inv: f32,
    model_lo: f32,
    model_inv: f32,
    res_a: f32,
    res_b: f32,
    res_half_inv: f32,
}

/// The accumulation and display textures of one size.
struct Targets {
    width: u32,
    height: u32,
    accum: wgpu::Texture,
    accum_view: wgpu::TextureView,
    display: wgpu::Texture,
    display_view: wgpu::TextureView,
}

/// The raw-frame texture.
struct RawTexture {
    width: u32,
    height: u32,
    texture: wgpu::Texture,
    view: wgpu::TextureView,
}

/// Splat + composite pipelines and their textures. Create once per device;
/// call [`GpuRenderer::render`] every frame.
pub struct GpuRenderer {
    accum_format: wgpu::TextureFormat,
    splat_pipeline: wgpu::RenderPipeline,
    splat_uniforms: wgpu::Buffer,
    splat_bind_group: wgpu::BindGroup,
    composite_pipeline: wgpu::RenderPipeline,
    composite_layout: wgpu::BindGroupLayout,
    composite_uniforms: wgpu::Buffer,
    composite_bind_group: Option<wgpu::BindGroup>,
    lut_texture: wgpu::Texture,
    lut_view: wgpu::TextureView,
    lut: Option<[[u8; 4]; 256]>,
    raw: RawTexture,
    points: wgpu::Buffer,
    points_capacity: usize,
    staging: Vec<[f32; 4]>,
    targets: Option<Targets>,
    generation: u64,
    max_side: u32,
    cut_sigmas: f32,
}

const POINT_STRIDE: u64 = std::mem::size_of::<[f32; 4]>() as u64;

fn raw_texture(device: &wgpu::Device, width: u32, height: u32) -> RawTexture {
    let (texture, view) = texture_2d(
        device,
        "posescope raw frame",
        width,
        height,
        wgpu::TextureFormat::R32Float,
        wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
    );
    RawTexture {
        width,
        height,
        texture,
        view,
    }
}

fn points_buffer(device: &wgpu::Device, capacity: usize) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("posescope points"),
        size: capacity as u64 * POINT_STRIDE,
        usage: wgpu::BufferUsages::VERTEX | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// `(lo, 1/(hi − lo))`, with 0 for a degenerate range.
fn contrast(range: (f32, f32)) -> (f32, f32) {
    let span = range.1 - range.0;
    let inv = if span.is_finite() && span != 0.0 && (1.0 / span).is_finite() {
        1.0 / span
    } else {
        0.0
    };
    (if range.0.is_finite() { range.0 } else { 0.0 }, inv)
}

impl GpuRenderer {
    /// Pipelines and placeholder textures for `device`. The accumulation is
    /// `R32Float` when the device has [`wgpu::Features::FLOAT32_BLENDABLE`]
    /// enabled, `Rgba16Float` otherwise.
    pub fn new(device: &wgpu::Device) -> Self {
        let format = if device
            .features()
            .contains(wgpu::Features::FLOAT32_BLENDABLE)
        {
            wgpu::TextureFormat::R32Float
        } else {
            wgpu::TextureFormat::Rgba16Float
        };
        Self::build(device, format)
    }

    /// Like [`GpuRenderer::new`] with a chosen accumulation format:
    /// `Rgba16Float`, or `R32Float` if the device has
    /// [`wgpu::Features::FLOAT32_BLENDABLE`].
    pub fn with_accumulation_format(
        device: &wgpu::Device,
        format: wgpu::TextureFormat,
    ) -> Result<Self> {
        match format {
            wgpu::TextureFormat::Rgba16Float => Ok(Self::build(device, format)),
            wgpu::TextureFormat::R32Float
                if device
                    .features()
                    .contains(wgpu::Features::FLOAT32_BLENDABLE) =>
            {
                Ok(Self::build(device, format))
            }
            other => Err(GpuError::Invalid(format!(
                "accumulation format {other:?} is not available on this device"
            ))),
        }
    }

    fn build(device: &wgpu::Device, accum_format: wgpu::TextureFormat) -> Self {
        let splat_module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("posescope splat.wgsl"),
            source: wgpu::ShaderSource::Wgsl(include_str!("../../../shaders/splat.wgsl").into()),
        });
        let composite_module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("posescope composite.wgsl"),
            source: wgpu::ShaderSource::Wgsl(
                include_str!("../../../shaders/composite.wgsl").into(),
            ),
        });

        let uniform_entry = |visibility| wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let splat_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("posescope splat"),
            entries: &[uniform_entry(
                wgpu::ShaderStages::VERTEX | wgpu::ShaderStages::FRAGMENT,
            )],
        });
        let texture_entry = |binding| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::FRAGMENT,
            ty: wgpu::BindingType::Texture {
                sample_type: wgpu::TextureSampleType::Float { filterable: false },
                view_dimension: wgpu::TextureViewDimension::D2,
                multisampled: false,
            },
            count: None,
        };
        let composite_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("posescope composite"),
            entries: &[
                uniform_entry(wgpu::ShaderStages::FRAGMENT),
                texture_entry(1),
                texture_entry(2),
                texture_entry(3),
            ],
        });

        let splat_pipeline_layout =
            device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some("posescope splat"),
                bind_group_layouts: &[Some(&splat_layout)],
                immediate_size: 0,
            });
        let additive = wgpu::BlendComponent {
            src_factor: wgpu::BlendFactor::One,
            dst_factor: wgpu::BlendFactor::One,
            operation: wgpu::BlendOperation::Add,
        };
        let splat_pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("posescope splat"),
            layout: Some(&splat_pipeline_layout),
            vertex: wgpu::VertexState {
                module: &splat_module,
                entry_point: Some("vs_splat"),
                compilation_options: Default::default(),
                buffers: &[Some(wgpu::VertexBufferLayout {
                    array_stride: POINT_STRIDE,
                    step_mode: wgpu::VertexStepMode::Instance,
                    attributes: &wgpu::vertex_attr_array![0 => Float32x4],
                })],
            },
            primitive: wgpu::PrimitiveState {
                topology: wgpu::PrimitiveTopology::TriangleStrip,
                cull_mode: None,
                ..Default::default()
            },
            depth_stencil: None,
            multisample: wgpu::MultisampleState::default(),
            fragment: Some(wgpu::FragmentState {
                module: &splat_module,
                entry_point: Some("fs_splat"),
                compilation_options: Default::default(),
                targets: &[Some(wgpu::ColorTargetState {
                    format: accum_format,
                    blend: Some(wgpu::BlendState {
                        color: additive,
                        alpha: additive,
                    }),
                    write_mask: wgpu::ColorWrites::ALL,
                })],
            }),
            multiview_mask: None,
            cache: None,
        });

        let composite_pipeline_layout =
            device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some("posescope composite"),
                bind_group_layouts: &[Some(&composite_layout)],
                immediate_size: 0,
            });
        let composite_pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("posescope composite"),
            layout: Some(&composite_pipeline_layout),
            vertex: wgpu::VertexState {
                module: &composite_module,
                entry_point: Some("vs_full"),
                compilation_options: Default::default(),
                buffers: &[],
            },
            primitive: wgpu::PrimitiveState {
                topology: wgpu::PrimitiveTopology::TriangleList,
                cull_mode: None,
                ..Default::default()
            },
            depth_stencil: None,
            multisample: wgpu::MultisampleState::default(),
            fragment: Some(wgpu::FragmentState {
                module: &composite_module,
                entry_point: Some("fs_composite"),
                compilation_options: Default::default(),
                targets: &[Some(wgpu::ColorTargetState {
                    format: wgpu::TextureFormat::Rgba8Unorm,
                    blend: None,
                    write_mask: wgpu::ColorWrites::ALL,
                })],
            }),
            multiview_mask: None,
            cache: None,
        });

        let uniform_buffer = |label, size: usize| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: size as u64,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        };
        let splat_uniforms = uniform_buffer(
            "posescope splat uniforms",
            std::mem::size_of::<SplatUniforms>(),
        );
        let composite_uniforms = uniform_buffer(
            "posescope composite uniforms",
            std::mem::size_of::<CompositeUniforms>(),
        );
        let splat_bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("posescope splat"),
            layout: &splat_layout,
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: splat_uniforms.as_entire_binding(),
            }],
        });
        let (lut_texture, lut_view) = texture_2d(
            device,
            "posescope LUT",
            256,
            1,
            wgpu::TextureFormat::Rgba8Unorm,
            wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        );
        let points_capacity = 1024;
        Self {
            accum_format,
            splat_pipeline,
            splat_uniforms,
            splat_bind_group,
            composite_pipeline,
            composite_layout,
            composite_uniforms,
            composite_bind_group: None,
            lut_texture,
            lut_view,
            lut: None,
            // zero-initialised placeholder until `set_raw`
            raw: raw_texture(device, 1, 1),
            points: points_buffer(device, points_capacity),
            points_capacity,
            staging: Vec::new(),
            targets: None,
            generation: 0,
            max_side: MAX_SIDE.min(device.limits().max_texture_dimension_2d),
            cut_sigmas: CUT_SIGMAS,
        }
    }

    /// Sets the radius of the splats in σ (default [`CUT_SIGMAS`],
    /// the CPU renderer's); values are clamped to 3…6. Below 6 the image
    /// drops up to `e^(-k²/2)` of each point's peak at the splat's edge.
    pub fn set_cut_sigmas(&mut self, k: f32) {
        self.cut_sigmas = if k.is_finite() {
            k.clamp(3.0, 6.0)
        } else {
            CUT_SIGMAS
        };
    }

    /// The radius of the splats in σ.
    pub fn cut_sigmas(&self) -> f32 {
        self.cut_sigmas
    }

    /// Format of the accumulation texture (`R32Float` or `Rgba16Float`).
    pub fn accumulation_format(&self) -> wgpu::TextureFormat {
        self.accum_format
    }

    /// Accumulation channels the splat spreads the points over.
    fn channels(&self) -> u32 {
        match self.accum_format {
            wgpu::TextureFormat::R32Float => 1,
            _ => 4,
        }
    }

    fn check_size(&self, width: usize, height: usize) -> Result<(u32, u32)> {
        let max = self.max_side as usize;
        if width == 0 || height == 0 || width > max || height > max {
            return Err(GpuError::Invalid(format!(
                "image size {width}×{height} (each side must be 1..={max})"
            )));
        }
        Ok((width as u32, height as u32))
    }

    /// Uploads the raw frame (`width·height` values, row-major) shown by the
    /// overlay, residual and raw modes. Call when the frame changes.
    pub fn set_raw(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        data: &[f32],
        width: usize,
        height: usize,
    ) -> Result<()> {
        let (w, h) = self.check_size(width, height)?;
        if data.len() != width * height {
            return Err(GpuError::Invalid(format!(
                "raw frame holds {} values for {width}×{height}",
                data.len()
            )));
        }
        if (self.raw.width, self.raw.height) != (w, h) {
            self.raw = raw_texture(device, w, h);
            self.composite_bind_group = None;
        }
        // write_texture has no 256-byte row alignment requirement
        queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture: &self.raw.texture,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            bytemuck::cast_slice(data),
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(4 * w),
                rows_per_image: Some(h),
            },
            wgpu::Extent3d {
                width: w,
                height: h,
                depth_or_array_layers: 1,
            },
        );
        Ok(())
    }

    fn validate(&self, scene: &SplatScene) -> Result<(u32, u32)> {
        let p = &scene.params;
        let size = self.check_size(p.width, p.height)?;
        if scene.points.len() != scene.weights.len() {
            return Err(GpuError::Invalid(format!(
                "{} points but {} weights",
                scene.points.len(),
                scene.weights.len()
            )));
        }
        if !(p.sigma.is_finite() && p.sigma > 0.0) {
            return Err(GpuError::Invalid(format!(
                "PSF sigma must be positive, got {}",
                p.sigma
            )));
        }
        if !p.scale.is_finite() {
            return Err(GpuError::Invalid(format!("scale is {}", p.scale)));
        }
        if !scene.rot.iter().flatten().all(|x| x.is_finite())
            || !scene.shift.iter().all(|x| x.is_finite())
        {
            return Err(GpuError::Invalid(format!(
                "non-finite pose (rotation {:?}, shift {:?})",
                scene.rot, scene.shift
            )));
        }
        if let Some(i) = scene
            .points
            .iter()
            .position(|q| !q.iter().all(|x| x.is_finite()))
        {
            return Err(GpuError::Invalid(format!(
                "point {i} is {:?}",
                scene.points[i]
            )));
        }
        if let Some(i) = scene.weights.iter().position(|w| !w.is_finite()) {
            return Err(GpuError::Invalid(format!(
                "weight {i} is {}",
                scene.weights[i]
            )));
        }
        Ok(size)
    }

    fn ensure_targets(&mut self, device: &wgpu::Device, width: u32, height: u32) {
        if let Some(t) = &self.targets {
            if (t.width, t.height) == (width, height) {
                return;
            }
        }
        let (accum, accum_view) = texture_2d(
            device,
            "posescope accumulation",
            width,
            height,
            self.accum_format,
            wgpu::TextureUsages::RENDER_ATTACHMENT
                | wgpu::TextureUsages::TEXTURE_BINDING
                | wgpu::TextureUsages::COPY_SRC,
        );
        let (display, display_view) = texture_2d(
            device,
            "posescope display",
            width,
            height,
            wgpu::TextureFormat::Rgba8Unorm,
            wgpu::TextureUsages::RENDER_ATTACHMENT
                | wgpu::TextureUsages::TEXTURE_BINDING
                | wgpu::TextureUsages::COPY_SRC,
        );
        self.targets = Some(Targets {
            width,
            height,
            accum,
            accum_view,
            display,
            display_view,
        });
        self.composite_bind_group = None;
        self.generation += 1;
    }

    /// Splats `scene` into the accumulation texture and composites it into
    /// the display texture (both `W×H` of `scene.params`, recreated when the
    /// size changes, which bumps [`GpuRenderer::generation`]). One encoder,
    /// one submit; does not wait for the GPU.
    pub fn render(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        scene: &SplatScene,
        composite: &Composite,
    ) -> Result<()> {
        let (width, height) = self.validate(scene)?;
        self.ensure_targets(device, width, height);

        // points
        let n = scene.points.len();
        if n > self.points_capacity {
            self.points_capacity = n.next_power_of_two();
            self.points = points_buffer(device, self.points_capacity);
        }
        self.staging.clear();
        self.staging.extend(
            scene
                .points
                .iter()
                .zip(scene.weights)
                .map(|(p, &w)| [p[0], p[1], p[2], w]),
        );
        if n > 0 {
            queue.write_buffer(&self.points, 0, bytemuck::cast_slice(&self.staging));
        }

        // uniforms
        let p = &scene.params;
        let sigma = p.sigma;
        let r = scene.rot;
        let row = |i: usize| [r[i][0] as f32, r[i][1] as f32, r[i][2] as f32, 0.0];
        let splat = SplatUniforms {
            rot0: row(0),
            rot1: row(1),
            offset: [
                (0.5 * p.width as f64 + scene.shift[0]) as f32,
                (0.5 * p.height as f64 + scene.shift[1]) as f32,
            ],
            size: [width as f32, height as f32],
            scale: p.scale,
            inv_two_sigma2: 0.5 / (sigma * sigma),
            radius: self.cut_sigmas * sigma,
            norm: super::kernel::gauss_norm(sigma),
            channels: self.channels(),
            _pad: [0; 3],
        };
        queue.write_buffer(&self.splat_uniforms, 0, bytemuck::bytes_of(&splat));
        let (raw_lo, raw_inv) = contrast(composite.raw_contrast);
        let (model_lo, model_inv) = contrast(composite.model_contrast);
        let limit = composite.residual_limit;
        let comp = CompositeUniforms {
            model_mask: if self.channels() == 4 {
                [1.0; 4]
            } else {
                [1.0, 0.0, 0.0, 0.0]
            },
            mode: match composite.mode {
                CompositeMode::Model => 0,
                CompositeMode::Overlay => 1,
                CompositeMode::Residual => 2,
                CompositeMode::Raw => 3,
            },
            raw_lo,
            raw_inv,
            model_lo,
            model_inv,
            res_a: composite.residual_ab.0,
            res_b: composite.residual_ab.1,
            res_half_inv: if limit.is_finite() && limit > 0.0 {
                0.5 / limit
            } else {
                0.0
            },
        };
        queue.write_buffer(&self.composite_uniforms, 0, bytemuck::bytes_of(&comp));
        if self.lut.as_ref() != Some(&composite.lut) {
            queue.write_texture(
                wgpu::TexelCopyTextureInfo {
                    texture: &self.lut_texture,
                    mip_level: 0,
                    origin: wgpu::Origin3d::ZERO,
                    aspect: wgpu::TextureAspect::All,
                },
                composite.lut.as_flattened(),
                wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(256 * 4),
                    rows_per_image: Some(1),
                },
                wgpu::Extent3d {
                    width: 256,
                    height: 1,
                    depth_or_array_layers: 1,
                },
            );
            self.lut = Some(composite.lut);
        }

        let targets = self.targets.as_ref().expect("targets were just ensured");
        let bind_group = self.composite_bind_group.get_or_insert_with(|| {
            device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("posescope composite"),
                layout: &self.composite_layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: self.composite_uniforms.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: wgpu::BindingResource::TextureView(&targets.accum_view),
                    },
                    wgpu::BindGroupEntry {
                        binding: 2,
                        resource: wgpu::BindingResource::TextureView(&self.raw.view),
                    },
                    wgpu::BindGroupEntry {
                        binding: 3,
                        resource: wgpu::BindingResource::TextureView(&self.lut_view),
                    },
                ],
            })
        });

        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("posescope render"),
        });
        let clear_pass = |view| wgpu::RenderPassColorAttachment {
            view,
            depth_slice: None,
            resolve_target: None,
            ops: wgpu::Operations {
                load: wgpu::LoadOp::Clear(wgpu::Color::TRANSPARENT),
                store: wgpu::StoreOp::Store,
            },
        };
        {
            let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("posescope splat"),
                color_attachments: &[Some(clear_pass(&targets.accum_view))],
                ..Default::default()
            });
            if n > 0 {
                pass.set_pipeline(&self.splat_pipeline);
                pass.set_bind_group(0, &self.splat_bind_group, &[]);
                pass.set_vertex_buffer(0, self.points.slice(..n as u64 * POINT_STRIDE));
                // one octagon (a strip of 8 vertices) per point
                pass.draw(0..8, 0..n as u32);
            }
        }
        {
            let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("posescope composite"),
                color_attachments: &[Some(clear_pass(&targets.display_view))],
                ..Default::default()
            });
            pass.set_pipeline(&self.composite_pipeline);
            pass.set_bind_group(0, &*bind_group, &[]);
            pass.draw(0..3, 0..1);
        }
        queue.submit([encoder.finish()]);
        Ok(())
    }

    /// The display texture (`Rgba8Unorm`), once [`GpuRenderer::render`] has run.
    pub fn display_view(&self) -> Option<&wgpu::TextureView> {
        self.targets.as_ref().map(|t| &t.display_view)
    }

    /// The display texture itself, once [`GpuRenderer::render`] has run.
    pub fn display_texture(&self) -> Option<&wgpu::Texture> {
        self.targets.as_ref().map(|t| &t.display)
    }

    /// `(width, height)` of the display texture, `(0, 0)` before the first render.
    pub fn display_size(&self) -> (u32, u32) {
        self.targets
            .as_ref()
            .map_or((0, 0), |t| (t.width, t.height))
    }

    /// Incremented whenever the display texture is recreated; re-register
    /// [`GpuRenderer::display_view`] with the GUI when it changes.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Reads the accumulation texture back: `W·H` f32 values, row-major
    /// (the sum of the four channels for `Rgba16Float`). Waits for the GPU.
    pub fn read_accumulation(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
    ) -> Result<Vec<f32>> {
        let t = self
            .targets
            .as_ref()
            .ok_or_else(|| GpuError::Readback("nothing rendered yet".into()))?;
        read_accumulation_texture(device, queue, &t.accum, t.width, t.height)
    }

    /// Reads the display texture back: `W·H·4` RGBA bytes, row-major. Waits for the GPU.
    pub fn read_display(&self, device: &wgpu::Device, queue: &wgpu::Queue) -> Result<Vec<u8>> {
        let t = self
            .targets
            .as_ref()
            .ok_or_else(|| GpuError::Readback("nothing rendered yet".into()))?;
        read_texture(device, queue, &t.display, t.width, t.height, 4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degenerate_contrast_maps_to_zero() {
        assert_eq!(contrast((1.0, 1.0)), (1.0, 0.0));
        assert_eq!(contrast((0.0, f32::NAN)), (0.0, 0.0));
        assert_eq!(contrast((0.0, 4.0)), (0.0, 0.25));
        assert_eq!(contrast((4.0, 0.0)), (4.0, -0.25));
    }
}
