//! Orientation estimation: the CNN (`net`, `conv`), training, render-and-compare
//! refinement, batch fitting and evaluation. Nothing here knows about wgpu or egui.

pub mod conv;
mod conv_c1;
mod conv_cpu;
mod conv_wino;
pub mod eval;
pub mod fit;
pub mod net;
pub mod net_bench;
pub mod net_optim;
pub mod net_train;
pub mod pipeline;
pub mod preprocess;
pub mod refine;
pub mod search;
pub mod train;
