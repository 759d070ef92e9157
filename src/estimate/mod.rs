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
//!   a known size on a localisation table or an image, and matching picks
//!   to a truth.
//! - [`locfit`]: pose refinement on the localisations themselves — the
//!   likelihood of each localisation under the posed model (SMAP LocMoFit
//!   style, in 3D when the table has z), as the second path beside
//!   render-and-compare, with the axis's standard error and the check of a
//!   table's z against the model.
//! - [`learn`]: the 3D structure learned from many particles with no model
//!   given — pose assignment and structure descent in turn, checkpoints,
//!   and the comparison of a learned cloud with a known one.
//! - [`particles`]: a pose for every pick of a table — particle frames, the
//!   image fit, then the localisation fit — shared by the CLI and the viewer.
//! - [`torus_size`]: the torus's own size learned from a table's particles
//!   (the profile likelihood of R, their localisation fits run at each R).
//! - [`image_particles`]: the same for the picks of an image — crops
//!   resampled into particle frames, the fit, centres back in image pixels.
//!
//! Nothing here knows wgpu or egui.

pub mod image_particles;
pub mod learn;
pub mod locfit;
pub mod nn;
pub mod particles;
pub mod pick;
pub mod pose;
pub mod torus_size;
