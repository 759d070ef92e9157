//! The CNN engine: the orientation network ([`net`], a struct of layers built
//! from a `VarBuilder`), its convolution layer ([`conv`]) and CPU kernels
//! (`conv_geometry`, `conv_cpu`, `conv_c1`, `conv_wino`), the autograd-free
//! training step and inference buffers ([`trainer`]), fused AdamW ([`optim`])
//! the throughput benchmark ([`mod@bench`], CPU or GPU) and device naming
//! ([`device`]).
//!
//! It owns tensors and layers, not poses: it must not import
//! [`crate::estimate::pose`], the renderers' GPU side or egui.

pub mod bench;
pub mod conv;
mod conv_c1;
mod conv_cpu;
mod conv_geometry;
mod conv_wino;
pub mod device;
pub mod net;
pub mod optim;
pub mod trainer;
