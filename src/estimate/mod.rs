//! Orientation estimation, in two rooms:
//!
//! - [`nn`]: the CNN engine — fast CPU convolutions (direct, im2col + GEMM,
//!   Winograd), the orientation network built from a `VarBuilder`, the
//!   autograd-free trainer, fused AdamW and the throughput bench. It knows
//!   tensors, not poses.
//! - [`pose`]: pose fitting — the trained estimator, render-and-compare
//!   refinement, the coarse search, the fit of one frame, the batch fit with
//!   cancel and progress that the CLI and the viewer share, its results, the
//!   training of the pose network and symmetry-aware evaluation.
//! - [`pick`]: where the particles are — automatic picking of particles of
//!   a known size on a localisation table, and matching picks to a truth.
//!
//! Nothing here knows wgpu or egui.

pub mod nn;
pub mod pick;
pub mod pose;
