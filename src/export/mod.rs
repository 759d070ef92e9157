//! Outputs for people: annotated PNGs of fitted frames (raw, model, overlay,
//! pose text, scale bar), the one code path behind `posescope fit --png-dir`,
//! `posescope export` and the viewer's Ctrl+E; and the overview of a whole
//! field with every particle's fitted model drawn in place ([`overview`]).
//!
//! Owns: the PNG layout and text ([`annotate`]) and a fitted frame's export
//! ([`frames`]). Data files (the pose CSV, TIFF) are written by [`crate::io`];
//! this module must not import `estimate` internals, egui or wgpu.

pub mod annotate;
pub mod frames;
pub mod overview;
