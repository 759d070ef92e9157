//! PoseScope: 3D orientation of symmetric particles from single super-resolution frames.
//!
//! The modules follow the data flow:
//! `io` → `geometry`/`shapes` → `render` → `synth`/`estimate` → `export` → app and CLI.
//! Only `app` knows egui; nothing in `render::cpu` or `estimate` knows wgpu.
//! The viewer and the wgpu renderer are behind the `gui` feature (on by
//! default); without it the library and the CLI are headless.

#[cfg(feature = "gui")]
pub mod app;
pub mod estimate;
pub mod export;
pub mod geometry;
pub mod io;
pub mod render;
pub mod shapes;
pub mod simd;
pub mod synth;

/// Helpers shared by the library's unit tests.
#[cfg(test)]
pub(crate) mod test_util {
    use candle_core::Tensor;

    /// max |a − b| over all elements (same shapes).
    pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .and_then(|d| d.abs())
            .and_then(|d| d.max_all())
            .and_then(|d| d.to_scalar::<f32>())
            .expect("max |a - b|")
    }
}
