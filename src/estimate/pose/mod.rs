//! Pose fitting: from frames to poses.
//!
//! - [`estimator`]: the trained network at inference (the start of a fit);
//! - [`search`]: the coarse search over rotations (the start without a network);
//! - [`refine`]: Levenberg–Marquardt render-and-compare refinement;
//! - [`fit`]: one frame, start + refinement;
//! - [`pipeline`]: the model description ([`pipeline::ModelSpec`]) and the
//!   [`pipeline::Fitter`] that fits frames with it;
//! - [`batch`]: fitting many frames of many files with cancel, progress and a
//!   per-result callback — the one loop behind `posescope fit` and the
//!   viewer's Estimate all;
//! - [`results`]: per-frame results of a document, their CSV rows and which
//!   frames can be exported;
//! - [`train`]: training the pose network on synthetic frames, and its model file;
//! - [`eval`]: symmetry-aware errors against the truth;
//! - [`orientations`]: how the fitted particles are oriented as a whole —
//!   the axis an image determines, the tilt histogram against random
//!   orientation and its Kolmogorov–Smirnov test.
//!
//! It uses the CNN engine ([`crate::estimate::nn`]) and the CPU renderer and
//! scene ([`crate::render::scene`]); it must not import egui or wgpu.

pub mod batch;
pub mod estimator;
pub mod eval;
pub mod fit;
pub mod orientations;
pub mod pipeline;
pub mod preprocess;
pub mod refine;
pub mod results;
pub mod search;
pub mod train;
