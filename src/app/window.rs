//! Opening the viewer's native window: eframe and wgpu options, the window
//! size, the surface's present mode and the fonts.

use std::path::PathBuf;

use super::{gpu_view, PoseScopeApp};

/// Why the viewer cannot open a window here, if it cannot.
pub fn display_problem() -> Option<String> {
    if cfg!(target_os = "linux")
        && std::env::var_os("DISPLAY").is_none()
        && std::env::var_os("WAYLAND_DISPLAY").is_none()
    {
        return Some(
            "no display found (DISPLAY and WAYLAND_DISPLAY are unset): the viewer needs a desktop; \
             headless, use `posescope fit`, `posescope export`, `posescope info` (see `posescope --help`)"
                .into(),
        );
    }
    None
}

/// The initial window size: 1440×900, or `POSESCOPE_WINDOW=WxH` (for measurements).
fn window_size() -> [f32; 2] {
    std::env::var("POSESCOPE_WINDOW")
        .ok()
        .and_then(|v| {
            let (w, h) = v.split_once('x')?;
            Some([w.trim().parse().ok()?, h.trim().parse().ok()?])
        })
        .filter(|[w, h]: &[f32; 2]| *w >= 320.0 && *h >= 240.0)
        .unwrap_or([1440.0, 900.0])
}

/// The window surface: vsync and one frame in flight, unless
/// `POSESCOPE_PRESENT` says `novsync` or `lowlatency` (for measurements).
fn surface_config() -> egui_wgpu::SurfaceConfig {
    match std::env::var("POSESCOPE_PRESENT").as_deref() {
        Ok("novsync") => egui_wgpu::SurfaceConfig {
            present_mode: wgpu::PresentMode::AutoNoVsync,
            desired_maximum_frame_latency: Some(2),
        },
        Ok("lowlatency") => egui_wgpu::SurfaceConfig::LOW_LATENCY,
        // two frames in flight: the UI thread builds the next frame while a
        // software rasteriser still draws this one (lavapipe: 38 → 41–46 fps)
        _ => egui_wgpu::SurfaceConfig::HIGH_THROUGHPUT,
    }
}

/// Opens the viewer window on `files` (the bundled sample when empty).
/// `measure_fps`: animate the pose for that many seconds, print the frame rate and
/// exit; `with_batch`: run Estimate all meanwhile; `mode`: what moves.
pub fn run(
    files: Vec<PathBuf>,
    measure_fps: Option<f64>,
    with_batch: bool,
    mode: super::MeasureMode,
) -> anyhow::Result<()> {
    if let Some(p) = display_problem() {
        anyhow::bail!(p);
    }
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("PoseScope")
            .with_inner_size(window_size())
            .with_min_inner_size([640.0, 480.0])
            .with_drag_and_drop(true),
        renderer: eframe::Renderer::Wgpu,
        // dithering costs per pixel on software rasterisers and is invisible on this dark UI
        dithering: false,
        wgpu_options: egui_wgpu::WgpuConfiguration {
            wgpu_setup: gpu_view::wgpu_setup(),
            surface: surface_config(),
            ..Default::default()
        },
        ..Default::default()
    };
    eframe::run_native(
        "PoseScope",
        options,
        Box::new(move |cc| {
            let mut app = PoseScopeApp::new(cc, files);
            if let Some(s) = measure_fps {
                app.measure_fps(s, with_batch, mode);
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("could not open the viewer window: {e}"))
}

/// Lets proportional text fall back to egui's monospace font (Hack), which
/// has the arrows and triangles the proportional font lacks.
pub(super) fn add_fallback_fonts(ctx: &egui::Context) {
    let mut fonts = egui::FontDefinitions::default();
    let mono = fonts
        .families
        .get(&egui::FontFamily::Monospace)
        .and_then(|v| v.first().cloned());
    if let Some(mono) = mono {
        let prop = fonts
            .families
            .entry(egui::FontFamily::Proportional)
            .or_default();
        if !prop.contains(&mono) {
            prop.push(mono);
        }
    }
    ctx.set_fonts(fonts);
}
