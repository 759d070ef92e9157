//! `posescope render`: a model at a pose, to PNG (16-bit) or float TIFF,
//! and optionally the posed cloud as PLY; or, given a localisation table,
//! the table rendered as SMLM software does (individual blur or histogram).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use super::args::{parse_floats, parse_size, ModelArgs};
use posescope::geometry::{Pose, Quat};
use posescope::io::{self, Frame, WriteSample};
use posescope::render::{cpu::render_frame, SplatParams};

#[derive(Clone, Copy, ValueEnum)]
pub enum LocModeArg {
    /// A normalised Gaussian per localisation, σ = max(precision, --min-blur-nm).
    Blur,
    /// Localisations per pixel.
    Histogram,
}

#[derive(Args)]
pub struct RenderArgs {
    /// A localisation table (Picasso .hdf5, ThunderSTORM or plain .csv/.tsv)
    /// to render instead of a model.
    table: Option<PathBuf>,
    /// Display pixel size of the table render, nm.
    #[arg(long, default_value_t = 10.0)]
    pixel_size_nm: f64,
    /// Table render mode.
    #[arg(long, value_enum, default_value = "blur")]
    mode: LocModeArg,
    /// Smallest blur of a localisation, nm (Picasso's "min. blur").
    #[arg(long, default_value_t = 5.0)]
    min_blur_nm: f32,
    /// Camera pixel size in nm, for tables in pixels that do not state it.
    #[arg(long)]
    camera_pixel_size: Option<f64>,
    /// Render the table on the GPU (wgpu, `shaders/locs.wgsl`; any adapter,
    /// a software one included) instead of the CPU reference; blur mode only.
    #[arg(long)]
    gpu: bool,
    /// Render only this region of the table, "x0,y0,x1,y1" in nm (default:
    /// the whole table plus a 5-pixel margin).
    #[arg(long, allow_hyphen_values = true)]
    region: Option<String>,
    #[command(flatten)]
    model: ModelArgs,
    /// Euler angles "rot,tilt,psi" in degrees (intrinsic ZYZ).
    #[arg(long, conflicts_with = "quat", allow_hyphen_values = true)]
    euler: Option<String>,
    /// Quaternion "w,x,y,z" (model → camera).
    #[arg(long, allow_hyphen_values = true)]
    quat: Option<String>,
    /// Shift "x,y" in pixels from the image centre.
    #[arg(long, default_value = "0,0", allow_hyphen_values = true)]
    shift: String,
    /// PSF sigma in pixels.
    #[arg(long, default_value_t = 1.6)]
    sigma: f32,
    /// Model scale.
    #[arg(long, default_value_t = 1.0)]
    scale: f32,
    /// Image size: N or WxH pixels.
    #[arg(long, default_value = "128")]
    size: String,
    /// Output image: .png (16-bit, scaled to the maximum) or .tif/.tiff (float32, raw values).
    #[arg(long)]
    out: PathBuf,
    /// Also write the posed model as a PLY point cloud.
    #[arg(long)]
    ply: Option<PathBuf>,
}

/// Largest table render, pixels (16k × 16k).
const MAX_TABLE_RENDER_PX: usize = 1 << 28;

/// Writes `frame` as 16-bit PNG (scaled to its maximum) or float TIFF.
fn write_image(out: &std::path::Path, frame: &Frame, pixel_size_nm: Option<f64>) -> Result<()> {
    let ext = out
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => {
            let (_, hi) = frame.min_max();
            io::write_png_gray16(out, frame, 0.0, if hi > 0.0 { hi } else { 1.0 })?
        }
        "tif" | "tiff" => io::write_tiff_stack(
            out,
            std::slice::from_ref(frame),
            WriteSample::F32,
            pixel_size_nm,
        )?,
        _ => bail!("{}: output must end in .png, .tif or .tiff", out.display()),
    }
    Ok(())
}

/// `render TABLE`: the table at `--pixel-size-nm`, covering its extent.
fn render_table(a: &RenderArgs, table: &std::path::Path) -> Result<()> {
    use posescope::render::locs::{render_locs, LocMode, LocView};
    let opts = io::locs::TableOptions {
        pixel_size_nm: a.camera_pixel_size,
        ..io::locs::TableOptions::default()
    };
    let t = io::locs::open_table(table, &opts)?;
    let s = t.summary();
    let (extent, margin) = match &a.region {
        Some(r) => {
            let [x0, y0, x1, y1] = parse_floats::<4>(r, "--region")?;
            if !(x1 > x0 && y1 > y0) {
                bail!("--region {r}: need x0 < x1 and y0 < y1");
            }
            // the view's far edge stays at x1, y1 (rounded up to whole pixels)
            let e = [
                x0,
                y0,
                x1 - 0.5 * a.pixel_size_nm,
                y1 - 0.5 * a.pixel_size_nm,
            ];
            (e.map(|v| v as f32), 0.0)
        }
        None => (s.extent_nm, 5.0 * a.pixel_size_nm),
    };
    let view = LocView::covering(extent, a.pixel_size_nm, margin, MAX_TABLE_RENDER_PX)
        .with_context(|| {
            format!(
                "{}: a {:.1} × {:.1} µm table at {} nm per pixel exceeds {} pixels; choose a larger --pixel-size-nm",
                table.display(),
                (s.extent_nm[2] - s.extent_nm[0]) / 1000.0,
                (s.extent_nm[3] - s.extent_nm[1]) / 1000.0,
                a.pixel_size_nm,
                MAX_TABLE_RENDER_PX
            )
        })?;
    let mode = match a.mode {
        LocModeArg::Blur => LocMode::Blur {
            min_blur_nm: a.min_blur_nm,
        },
        LocModeArg::Histogram => LocMode::Histogram,
    };
    let t0 = std::time::Instant::now();
    let (img, ms, on) = if a.gpu {
        let LocMode::Blur { min_blur_nm } = mode else {
            bail!("--gpu renders in blur mode only");
        };
        gpu_render(&t, &view, min_blur_nm)?
    } else {
        let img = render_locs(&t.x_nm, &t.y_nm, t.precision_nm.as_deref(), &view, mode);
        (img, t0.elapsed().as_secs_f64() * 1e3, String::new())
    };
    let frame = Frame {
        width: view.width,
        height: view.height,
        data: img,
    };
    write_image(&a.out, &frame, Some(a.pixel_size_nm))?;
    println!(
        "rendered {} localisations into {}×{} px at {} nm/px (origin {:.0}, {:.0} nm) in {ms:.0} ms{on} → {}",
        t.len(),
        view.width,
        view.height,
        a.pixel_size_nm,
        view.origin_nm[0],
        view.origin_nm[1],
        a.out.display()
    );
    Ok(())
}

/// The table rendered by the GPU renderer: the image, the render's
/// milliseconds (draw + readback; the upload is reported apart) and a note
/// naming the adapter.
#[cfg(feature = "gui")]
fn gpu_render(
    t: &io::locs::LocTable,
    view: &posescope::render::locs::LocView,
    min_blur_nm: f32,
) -> Result<(Vec<f32>, f64, String)> {
    use posescope::render::gpu::{headless_device, GpuLocRenderer};
    let (device, queue, info) = headless_device().context("--gpu")?;
    let mut r = GpuLocRenderer::new(&device);
    let t0 = std::time::Instant::now();
    r.set_locs(&device, &queue, &t.x_nm, &t.y_nm, t.precision_nm.as_deref());
    let upload = t0.elapsed().as_secs_f64() * 1e3;
    let t1 = std::time::Instant::now();
    let img = r
        .render(&device, &queue, view, min_blur_nm)
        .context("--gpu")?;
    let ms = t1.elapsed().as_secs_f64() * 1e3;
    Ok((
        img,
        ms,
        format!(
            " on {} ({:?}; upload {upload:.0} ms)",
            info.name, info.backend
        ),
    ))
}

#[cfg(not(feature = "gui"))]
fn gpu_render(
    _: &io::locs::LocTable,
    _: &posescope::render::locs::LocView,
    _: f32,
) -> Result<(Vec<f32>, f64, String)> {
    bail!("--gpu: this build has no GPU renderer (built without the `gui` feature)")
}

pub fn run(a: RenderArgs) -> Result<()> {
    if let Some(table) = &a.table {
        return render_table(&a, table);
    }
    let spec = a.model.spec()?;
    let model = spec
        .build_model()
        .with_context(|| format!("model '{}'", spec.model))?;
    let q = match (&a.euler, &a.quat) {
        (Some(e), _) => {
            let [rot, tilt, psi] = parse_floats::<3>(e, "--euler")?;
            Quat::from_euler_zyz_deg(rot, tilt, psi)
        }
        (None, Some(q)) => {
            let [w, x, y, z] = parse_floats::<4>(q, "--quat")?;
            Quat::try_new(w, x, y, z).context("--quat: not a rotation (zero length)")?
        }
        (None, None) => Quat::IDENTITY,
    };
    let shift = parse_floats::<2>(&a.shift, "--shift")?;
    let (width, height) = parse_size(&a.size)?;
    let params = SplatParams {
        width,
        height,
        sigma: a.sigma,
        scale: a.scale,
    };
    let pose = Pose::new(q, shift);
    let img = render_frame(
        &model.points,
        &model.weights,
        &q.to_matrix(),
        shift,
        &params,
    )?;
    let frame = Frame {
        width,
        height,
        data: img,
    };
    write_image(&a.out, &frame, None)?;
    let (rot, tilt, psi) = q.to_euler_zyz_deg();
    let axis = q.axis();
    println!(
        "rendered {} ({} points, {}) at rot {rot:.2}° tilt {tilt:.2}° psi {psi:.2}°, axis ({:.4}, {:.4}, {:.4}) → {}",
        model.name,
        model.len(),
        model.symmetry,
        axis[0],
        axis[1],
        axis[2],
        a.out.display()
    );
    if let Some(ply) = &a.ply {
        model.posed(&pose, a.scale as f64).save_ply(ply)?;
        println!("posed model → {}", ply.display());
    }
    Ok(())
}
