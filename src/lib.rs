//! PoseScope: 3D orientation of symmetric particles from single super-resolution frames.
//!
//! The modules follow the data flow:
//! `io` → `geometry`/`shapes` → `render` → `synth`/`estimate` → `export` → app and CLI.
//! Nothing here knows about egui; nothing in `render::cpu` or `estimate` knows about wgpu.

pub mod app;
pub mod estimate;
pub mod export;
pub mod geometry;
pub mod io;
pub mod render;
pub mod shapes;
pub mod synth;
