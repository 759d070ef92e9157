//! Outputs for people: annotated PNGs of fitted frames (raw, model, overlay,
//! pose text, scale bar), the one code path behind `posescope fit --png-dir`,
//! `posescope export` and the viewer's Ctrl+E; and the overview of a whole
//! field with every particle's fitted model drawn in place ([`overview`]);
//! and the orientation figure of a sample ([`orientations`]).
//!
//! Owns: the PNG layout and text ([`annotate`]) and a fitted frame's export
//! ([`frames`]). Data files (the pose CSV, TIFF) are written by [`crate::io`];
//! this module draws what `estimate` summarises (its public results, not
//! its internals) and must not import egui or wgpu.

pub mod annotate;
pub mod frames;
pub mod orientations;
pub mod overview;
