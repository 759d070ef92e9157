//! Rendering a posed point model into an image.
//!
//! Owns: the splat definition ([`SplatParams`], below), the separable kernel ([`kernel`]),
//! the CPU renderer ([`cpu`], candle, differentiable), the posed-model scene shared by
//! refinement, viewer and export ([`scene`]: model, fit state, render, NCC), display maps
//! ([`display`]), localisation tables rendered as SMLM software does ([`locs`]), large images
//! drawn at any zoom from a mip pyramid ([`mip`]) and, with the `gui` feature, the wgpu renderer (`gpu`, WGSL shaders in
//! `shaders/`). Must not import `estimate`, `export`, `app` or egui; only `gpu` knows wgpu.
//!
//! # The one definition both renderers implement
//! A model point `p` (pixels, model frame) with weight `w` lands at
//! `(u, v) = (W/2 + shift_x + s·(R·p)_x,  H/2 + shift_y + s·(R·p)_y)`:
//! an orthographic projection along camera z of the rotated, scaled point,
//! with the image centre at `(W/2, H/2)`. Pixel `(col c, row r)` covers
//! `[c, c+1) × [r, r+1)` and is sampled at its centre `(c+½, r+½)`:
//!
//! `I(r, c) = Σᵢ wᵢ · 1/(2πσ²) · exp(−((c+½−uᵢ)² + (r+½−vᵢ)²) / 2σ²)`
//!
//! so each point contributes (very nearly) its weight in total intensity.
//! [`cpu`] evaluates this with candle (batched and differentiable);
//! [`mod@reference`] evaluates it pixel by pixel in f64 for tests.

pub mod cpu;
pub mod display;
#[cfg(feature = "gui")]
pub mod gpu;
pub mod kernel;
pub mod locs;
pub mod mip;
pub mod reference;
pub mod scene;

use serde::{Deserialize, Serialize};

/// Image size and PSF of a render.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplatParams {
    /// Image width in pixels.
    pub width: usize,
    /// Image height in pixels.
    pub height: usize,
    /// Gaussian PSF standard deviation in pixels.
    pub sigma: f32,
    /// Isotropic scale applied to the model before projection.
    pub scale: f32,
}

impl SplatParams {
    /// A `width × height` render with PSF `sigma` and unit scale.
    pub fn new(width: usize, height: usize, sigma: f32) -> Self {
        Self {
            width,
            height,
            sigma,
            scale: 1.0,
        }
    }
}

/// Errors from the renderers.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The arguments do not describe a valid render.
    #[error("invalid render: {0}")]
    Invalid(String),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}
