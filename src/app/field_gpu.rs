//! The field of a localisation table rendered on the GPU: the viewer's
//! device and queue (shared with egui) and one [`GpuLocRenderer`] holding
//! the table last uploaded. Renders run on the field's background thread
//! (a readback waits for the GPU); a failed GPU render falls back to the
//! CPU reference for that render and is logged.
//!
//! Used when the adapter is a hardware GPU; on a software rasteriser
//! (lavapipe) the CPU renderer is ~4× faster (docs/PERFORMANCE.md), so the
//! CPU is used there unless `POSESCOPE_FIELD_GPU=1` asks for the GPU
//! (`POSESCOPE_FIELD_GPU=0` turns it off everywhere).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::state::DocId;
use crate::io::locs::LocTable;
use crate::render::gpu::GpuLocRenderer;
use crate::render::locs::LocView;

/// The GPU path of the field.
#[derive(Clone)]
pub struct FieldGpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
    renderer: Arc<Mutex<(GpuLocRenderer, Option<DocId>)>>,
    /// Renders made on the GPU (tests check the path is taken).
    renders: Arc<AtomicU64>,
}

impl FieldGpu {
    /// The GPU path for the viewer's device, or `None` where the CPU is the
    /// better choice (a software adapter) or the environment turns it off.
    pub fn new(rs: &egui_wgpu::RenderState) -> Option<Self> {
        let software = rs.adapter.get_info().device_type == wgpu::DeviceType::Cpu;
        let wanted = match std::env::var("POSESCOPE_FIELD_GPU").as_deref() {
            Ok("1") => true,
            Ok("0") => false,
            _ => !software,
        };
        wanted.then(|| Self::on(rs))
    }

    /// The GPU path on the viewer's device, whatever the adapter.
    pub fn on(rs: &egui_wgpu::RenderState) -> Self {
        Self {
            device: rs.device.clone(),
            queue: rs.queue.clone(),
            renderer: Arc::new(Mutex::new((GpuLocRenderer::new(&rs.device), None))),
            renders: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Renders made on the GPU so far.
    pub fn renders(&self) -> u64 {
        self.renders.load(Ordering::Relaxed)
    }

    /// Renders `table` (document `doc`) into `view` with individual blur of
    /// at least one display pixel, uploading the table first when another
    /// one was uploaded last. `None` when the GPU render failed.
    pub fn render(&self, doc: DocId, table: &LocTable, view: &LocView) -> Option<Vec<f32>> {
        let mut guard = self.renderer.lock().ok()?;
        let (renderer, uploaded) = &mut *guard;
        if *uploaded != Some(doc) {
            renderer.set_locs(
                &self.device,
                &self.queue,
                &table.x_nm,
                &table.y_nm,
                table.precision_nm.as_deref(),
            );
            *uploaded = Some(doc);
        }
        match renderer.render(&self.device, &self.queue, view, view.pixel_nm as f32) {
            Ok(img) => {
                self.renders.fetch_add(1, Ordering::Relaxed);
                Some(img)
            }
            Err(e) => {
                tracing::warn!("GPU field render failed, the CPU renders instead: {e}");
                None
            }
        }
    }
}
