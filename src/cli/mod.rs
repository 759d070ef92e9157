//! The `posescope` command line: one file per command, each a thin call into
//! the library (the viewer runs the same library orchestration). `main.rs`
//! only parses and dispatches; the arguments several commands share (model,
//! PNG look, progress bars, number lists) are in [`args`].

pub mod args;
pub mod bench;
pub mod eval;
pub mod export;
pub mod failures;
pub mod fit;
pub mod fit_image;
pub mod fit_table;
pub mod info;
pub mod learn;
pub mod merge;
pub mod orientations;
pub mod pick;
pub mod render;
pub mod synth;
pub mod train;
pub mod truth;
#[cfg(feature = "gui")]
pub mod view;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "posescope",
    version,
    about = "3D orientation of symmetric particles (tori, rings) from single super-resolution frames",
    long_about = "PoseScope estimates the 3D orientation of particles of known shape from 2D \
                  super-resolution images, shows the symmetry-equivalent poses, and renders models.\n\n\
                  Conventions: x = column (right), y = row (down), z into the screen; a pose is a unit \
                  quaternion rotating model coordinates into the camera frame plus a shift in pixels \
                  from the image centre; Euler angles are intrinsic ZYZ (rot, tilt, psi) in degrees, \
                  as in RELION. Without a subcommand, `view` is run: `posescope FILES` opens \
                  them in the viewer (as a desktop's \"Open with\" does).",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Without a subcommand: files or folders to open in the viewer.
    #[arg(value_name = "FILES")]
    pub files: Vec<std::path::PathBuf>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Open the viewer (the default): the bundled sample stack when no files are given.
    #[cfg(feature = "gui")]
    View(view::ViewArgs),
    /// Describe image files: size, frames, sample type, pixel size and value range.
    Info(info::InfoArgs),
    /// Generate a synthetic stack with ground truth.
    Synth(synth::SynthArgs),
    /// Render a model at a pose into a PNG or TIFF.
    Render(render::RenderArgs),
    /// Fit poses to every frame of image files (start + render-and-compare refinement).
    Fit(fit::FitArgs),
    /// Train the orientation network on synthetic frames generated on the fly.
    Train(train::TrainArgs),
    /// Compare predicted poses with the truth (symmetry-aware errors).
    Eval(eval::EvalArgs),
    /// How the particles of pose CSVs are oriented: the tilt histogram against random
    /// orientation, and whether the sample is isotropic.
    Orientations(orientations::OrientationsArgs),
    /// Measure this machine: CNN forward and training throughput, renderer and refinement times.
    Bench(bench::BenchArgs),
    /// Write an annotated PNG (raw, model, overlay, pose text, scale bar) per
    /// frame of a stack at the poses of a pose CSV.
    Export(export::ExportArgs),
    /// Join the pose CSVs of `fit --shard K/N` runs, checking for overlaps and gaps.
    Merge(merge::MergeArgs),
    /// Pick particles of a known size on a localisation table or an image (picks CSV).
    Pick(pick::PickArgs),
    /// Learn the 3D structure and every frame's pose from many particles, with no model given.
    Learn(learn::LearnArgs),
}

impl Command {
    /// The command run without a subcommand: the viewer, or a one-line
    /// message in a build without it.
    #[cfg(feature = "gui")]
    pub fn default_command(files: Vec<std::path::PathBuf>) -> anyhow::Result<Self> {
        Ok(Command::View(view::ViewArgs::of(files)))
    }

    /// The command run without a subcommand: the viewer, or a one-line
    /// message in a build without it.
    #[cfg(not(feature = "gui"))]
    pub fn default_command(_files: Vec<std::path::PathBuf>) -> anyhow::Result<Self> {
        anyhow::bail!(
            "this posescope was built without the viewer (--no-default-features); \
             run a command: posescope --help"
        )
    }

    /// True for commands that run the network (they keep big buffers mapped).
    pub fn uses_network(&self) -> bool {
        matches!(
            self,
            Command::Train(_) | Command::Bench(_) | Command::Fit(_)
        )
    }

    /// Runs the command.
    pub fn run(self) -> anyhow::Result<()> {
        match self {
            #[cfg(feature = "gui")]
            Command::View(a) => view::run(a),
            Command::Info(a) => info::run(a),
            Command::Synth(a) => synth::run(a),
            Command::Render(a) => render::run(a),
            Command::Fit(a) => fit::run(a),
            Command::Train(a) => train::run(a),
            Command::Eval(a) => eval::run(a),
            Command::Orientations(a) => orientations::run(a),
            Command::Bench(a) => bench::run(a),
            Command::Export(a) => export::run(a),
            Command::Merge(a) => merge::run(a),
            Command::Pick(a) => pick::run(a),
            Command::Learn(a) => learn::run(a),
        }
    }
}
