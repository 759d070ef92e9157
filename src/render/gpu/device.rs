//! The wgpu plumbing the renderer and the viewer share: a headless device,
//! 2D textures, reading a texture back to the CPU and binary16 floats.

use std::sync::mpsc;

use super::{GpuError, Result};

/// A device and queue without a window, for tests, batch export and
/// benchmarks. Takes any adapter, a software one (lavapipe, llvmpipe, WARP)
/// included: first without, then with `force_fallback_adapter`. Requests
/// [`wgpu::Features::FLOAT32_BLENDABLE`] when the adapter supports it, and
/// the adapter's own limits. Honours the `WGPU_BACKEND` etc. environment
/// variables.
pub fn headless_device() -> Result<(wgpu::Device, wgpu::Queue, wgpu::AdapterInfo)> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let mut failures = Vec::new();
    let mut adapter = None;
    for force_fallback_adapter in [false, true] {
        let options = wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter,
            compatible_surface: None,
            ..Default::default()
        };
        match pollster::block_on(instance.request_adapter(&options)) {
            Ok(a) => {
                adapter = Some(a);
                break;
            }
            Err(e) => failures.push(format!("fallback={force_fallback_adapter}: {e}")),
        }
    }
    let adapter = adapter.ok_or_else(|| GpuError::NoAdapter(failures.join("; ")))?;
    let info = adapter.get_info();
    let required_features = adapter.features() & wgpu::Features::FLOAT32_BLENDABLE;
    let desc = wgpu::DeviceDescriptor {
        label: Some("posescope headless"),
        required_features,
        required_limits: adapter.limits(),
        ..Default::default()
    };
    let (device, queue) = pollster::block_on(adapter.request_device(&desc))
        .map_err(|e| GpuError::Device(format!("{} ({:?}): {e}", info.name, info.backend)))?;
    Ok((device, queue, info))
}

/// A 2D texture of one mip level and sample, and its default view.
pub(crate) fn texture_2d(
    device: &wgpu::Device,
    label: &str,
    width: u32,
    height: u32,
    format: wgpu::TextureFormat,
    usage: wgpu::TextureUsages,
) -> (wgpu::Texture, wgpu::TextureView) {
    let texture = device.create_texture(&wgpu::TextureDescriptor {
        label: Some(label),
        size: wgpu::Extent3d {
            width,
            height,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format,
        usage,
        view_formats: &[],
    });
    let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
    (texture, view)
}

/// Copies a whole texture into a buffer with rows padded to
/// [`wgpu::COPY_BYTES_PER_ROW_ALIGNMENT`], maps it, and returns the rows
/// without padding.
pub(super) fn read_texture(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    texture: &wgpu::Texture,
    width: u32,
    height: u32,
    texel_bytes: u32,
) -> Result<Vec<u8>> {
    // Wait for the submissions that wrote the texture first. On wgpu's GL
    // backend (llvmpipe) the copy otherwise raced the render submitted just
    // before it: `generation_tracks_size` read a stale accumulation in 2 of 6
    // runs with WGPU_BACKEND=gl, and in 0 of 20 with this wait. The readback
    // waits for the GPU anyway, so this costs next to nothing.
    let _ = device.poll(wgpu::PollType::Wait {
        submission_index: None,
        timeout: None,
    });
    let row = width * texel_bytes;
    let padded =
        row.div_ceil(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT) * wgpu::COPY_BYTES_PER_ROW_ALIGNMENT;
    let buffer = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("posescope readback"),
        size: u64::from(padded) * u64::from(height),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("posescope readback"),
    });
    encoder.copy_texture_to_buffer(
        wgpu::TexelCopyTextureInfo {
            texture,
            mip_level: 0,
            origin: wgpu::Origin3d::ZERO,
            aspect: wgpu::TextureAspect::All,
        },
        wgpu::TexelCopyBufferInfo {
            buffer: &buffer,
            layout: wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(padded),
                rows_per_image: Some(height),
            },
        },
        wgpu::Extent3d {
            width,
            height,
            depth_or_array_layers: 1,
        },
    );
    let submission = queue.submit([encoder.finish()]);
    let (tx, rx) = mpsc::channel();
    buffer.map_async(wgpu::MapMode::Read, .., move |r| {
        let _ = tx.send(r);
    });
    device
        .poll(wgpu::PollType::Wait {
            submission_index: Some(submission),
            timeout: None,
        })
        .map_err(|e| GpuError::Readback(format!("poll: {e}")))?;
    match rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(GpuError::Readback(format!("map: {e}"))),
        Err(_) => return Err(GpuError::Readback("map callback never ran".into())),
    }
    let out = {
        let view = buffer
            .get_mapped_range(..)
            .map_err(|e| GpuError::Readback(format!("mapped range: {e:?}")))?;
        let mut out = Vec::with_capacity((row * height) as usize);
        for r in view.chunks_exact(padded as usize) {
            out.extend_from_slice(&r[..row as usize]);
        }
        out
    };
    buffer.unmap();
    Ok(out)
}

/// Reads an accumulation texture back as one f32 per pixel, row-major:
/// an `R32Float` texture as it is, an `Rgba16Float` one as the sum of its
/// four channels (where splats are spread over them). Waits for the GPU.
pub(super) fn read_accumulation_texture(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    texture: &wgpu::Texture,
    width: u32,
    height: u32,
) -> Result<Vec<f32>> {
    if texture.format() == wgpu::TextureFormat::R32Float {
        let bytes = read_texture(device, queue, texture, width, height, 4)?;
        return Ok(bytemuck::pod_collect_to_vec(&bytes));
    }
    let bytes = read_texture(device, queue, texture, width, height, 8)?;
    Ok(bytes
        .chunks_exact(8)
        .map(|px| {
            px.chunks_exact(2)
                .map(|h| f16_to_f32(u16::from_le_bytes([h[0], h[1]])))
                .sum()
        })
        .collect())
}

/// Converts an IEEE binary16 value to f32.
pub fn f16_to_f32(h: u16) -> f32 {
    let negative = h & 0x8000 != 0;
    let exp = u32::from((h >> 10) & 0x1f);
    let mant = u32::from(h & 0x3ff);
    let magnitude = match exp {
        0 => mant as f32 * (1.0 / 16_777_216.0), // subnormal: mant·2^-24
        31 => f32::from_bits(0x7f80_0000 | (mant << 13)),
        _ => f32::from_bits(((exp + 112) << 23) | (mant << 13)),
    };
    if negative {
        -magnitude
    } else {
        magnitude
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_conversion() {
        assert_eq!(f16_to_f32(0x0000), 0.0);
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x03ff), 1023.0 * 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x0400), 2f32.powi(-14));
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
    }
}
