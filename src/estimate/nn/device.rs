//! Naming the compute device a network runs on.

use candle_core::Device;

/// `cpu`, `cuda` or `metal`.
pub fn device_name(dev: &Device) -> &'static str {
    if dev.is_cpu() {
        "cpu"
    } else if dev.is_cuda() {
        "cuda"
    } else {
        "metal"
    }
}
