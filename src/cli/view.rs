//! `posescope view`: opens the viewer.

use std::path::PathBuf;

use clap::Args;

#[derive(Args, Default)]
pub struct ViewArgs {
    /// Files or folders (every image inside, in natural order) to open.
    files: Vec<PathBuf>,
    /// Animate the pose for SECONDS, print the frame rate and exit (for docs/PERFORMANCE.md).
    #[arg(long, value_name = "SECONDS", hide = true)]
    measure_fps: Option<f64>,
    /// With --measure-fps: run Estimate all on the stack meanwhile.
    #[arg(long, hide = true)]
    measure_with_batch: bool,
    /// With --measure-fps: step to the next frame every UI frame instead of
    /// moving the pose (and print when the first frame showed).
    #[arg(long, hide = true)]
    measure_stepping: bool,
    /// With --measure-fps on a table: zoom and pan the field every UI frame.
    #[arg(long, hide = true)]
    measure_field: bool,
}

impl ViewArgs {
    /// The viewer on `files` (the bundled sample when empty).
    pub fn of(files: Vec<PathBuf>) -> Self {
        Self {
            files,
            ..Self::default()
        }
    }
}

pub fn run(a: ViewArgs) -> anyhow::Result<()> {
    let files = posescope::io::expand_paths(&a.files)?;
    use posescope::app::MeasureMode;
    let mode = match (a.measure_stepping, a.measure_field) {
        (true, _) => MeasureMode::Stepping,
        (_, true) => MeasureMode::Field,
        _ => MeasureMode::Pose,
    };
    posescope::app::run(files, a.measure_fps, a.measure_with_batch, mode)
}
