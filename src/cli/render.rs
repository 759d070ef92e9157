//! `posescope render`: a model at a pose, to PNG (16-bit) or float TIFF,
//! and optionally the posed cloud as PLY.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::args::{parse_floats, parse_size, ModelArgs};
use posescope::geometry::{Pose, Quat};
use posescope::io::{self, Frame, WriteSample};
use posescope::render::{cpu::render_frame, SplatParams};

#[derive(Args)]
pub struct RenderArgs {
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

pub fn run(a: RenderArgs) -> Result<()> {
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
    let ext = a
        .out
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => {
            let (_, hi) = frame.min_max();
            io::write_png_gray16(&a.out, &frame, 0.0, if hi > 0.0 { hi } else { 1.0 })?
        }
        "tif" | "tiff" => io::write_tiff_stack(&a.out, &[frame], WriteSample::F32, None)?,
        _ => bail!(
            "{}: output must end in .png, .tif or .tiff",
            a.out.display()
        ),
    }
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
