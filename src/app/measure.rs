//! `posescope view --measure-fps`: drags the tilt slider every frame for a
//! while, then prints the frame rate and the CPU time per frame (for
//! docs/PERFORMANCE.md) and closes the window. With `--measure-stepping`
//! it steps to the next frame of the stack every UI frame instead (as
//! holding the → key does), and also prints when the first frame showed;
//! with `--measure-field` it zooms and pans a table's field every UI frame.

use std::time::Instant;

/// What the measurement animates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MeasureMode {
    /// The tilt slider (render + score every frame).
    #[default]
    Pose,
    /// The frame (→ held down).
    Stepping,
    /// A table's field: zoom and pan.
    Field,
}

use super::actions::Action;
use super::PoseScopeApp;

pub(super) struct MeasureFps {
    start: Instant,
    seconds: f64,
    frames: u64,
    ui_time: f64,
    with_batch: bool,
    batch_started: bool,
    slowest: f64,
    last: Option<Instant>,
    /// Process CPU seconds (all threads, the software rasteriser's included) at `start`.
    cpu_start: Option<f64>,
    mode: MeasureMode,
    created: Instant,
    first_shown: Option<f64>,
    /// When a field's picks (detector's or saved) were first in.
    first_picked: Option<f64>,
}

impl MeasureFps {
    pub(super) fn new(seconds: f64, with_batch: bool, mode: MeasureMode) -> Self {
        Self {
            start: Instant::now(),
            seconds,
            frames: 0,
            ui_time: 0.0,
            with_batch,
            batch_started: false,
            slowest: 0.0,
            last: None,
            cpu_start: None,
            mode,
            created: Instant::now(),
            first_shown: None,
            first_picked: None,
        }
    }
}

/// CPU time of the whole process so far (user + system, all threads), where
/// the platform tells it cheaply (Linux: `/proc/self/stat`, 10 ms ticks).
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // fields after the parenthesised command name; utime and stime are the 14th and 15th
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

impl PoseScopeApp {
    /// One measured frame: the actions that stand for the user's drag.
    pub(super) fn tick_measure(&mut self, ctx: &egui::Context, ui_seconds: f64) -> Vec<Action> {
        let gpu = self.gpu_active();
        let shown = !self.session.docs.is_empty();
        let picked = self
            .session
            .doc()
            .and_then(|d| d.particles.as_ref())
            .is_some_and(|p| !p.picking && !p.picks.is_empty());
        let ready = shown && self.fitter.is_some();
        let frame = self.session.frame;
        let Some(m) = self.measure.as_mut() else {
            return Vec::new();
        };
        if shown && m.first_shown.is_none() {
            m.first_shown = Some(m.created.elapsed().as_secs_f64());
        }
        if picked && m.first_picked.is_none() {
            m.first_picked = Some(m.created.elapsed().as_secs_f64());
        }
        ctx.request_repaint();
        if !ready || (m.with_batch && !m.batch_started) {
            // time from the first frame that shows an image (and, with a batch, runs it)
            m.start = Instant::now();
            m.cpu_start = process_cpu_seconds();
            if ready && m.with_batch {
                m.batch_started = true;
                return vec![Action::EstimateAll];
            }
            return Vec::new();
        }
        let now = Instant::now();
        if let Some(last) = m.last {
            m.slowest = m.slowest.max((now - last).as_secs_f64());
        }
        m.last = Some(now);
        m.frames += 1;
        m.ui_time += ui_seconds;
        // drag the tilt slider: a new pose (render + score) every frame
        let mut c = self.session.controls;
        c.euler[1] = (c.euler[1] + 1.0) % 180.0;
        let elapsed = m.start.elapsed().as_secs_f64();
        if elapsed >= m.seconds {
            let batch = if m.with_batch {
                let fitted = self.session.doc().map_or(0, |d| d.results.done());
                format!(
                    "; batch running: {} ({fitted} frames fitted)",
                    self.jobs.running(super::jobs::JobKind::Estimate)
                )
            } else {
                String::new()
            };
            let m = self.measure.take().expect("measuring");
            let process = match (m.cpu_start, process_cpu_seconds()) {
                (Some(a), Some(b)) => format!(
                    "; whole process (rasteriser included) {:.1} ms CPU/frame",
                    1e3 * (b - a) / m.frames as f64
                ),
                _ => String::new(),
            };
            if m.mode != MeasureMode::Pose {
                println!(
                    "first frame shown {:.3} s after the window opened; stepped to frame {frame}",
                    m.first_shown.unwrap_or(f64::NAN)
                );
                if let Some(t) = m.first_picked {
                    println!("the field's picks were in {t:.3} s after the window opened");
                }
            }
            println!(
                "fps {:.1} over {elapsed:.1} s ({} frames, slowest frame {:.1} ms); UI+render CPU time {:.2} ms/frame{process}; model view on {}{batch}",
                m.frames as f64 / elapsed,
                m.frames,
                1e3 * m.slowest,
                1e3 * m.ui_time / m.frames as f64,
                if gpu { "the GPU (wgpu)" } else { "the CPU" }
            );
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            return vec![Action::CancelJobs];
        }
        match m.mode {
            MeasureMode::Pose => vec![Action::SetControls(c)],
            MeasureMode::Stepping => vec![Action::GoToFrame(frame + 1)],
            MeasureMode::Field => {
                // in for 2 s, out for 2 s, drifting right: the view never settles
                let phase = (elapsed / 2.0) as u64 % 2;
                let f = &mut self.ui.field;
                f.nm_per_pt *= if phase == 0 { 0.99 } else { 1.0 / 0.99 };
                f.centre_nm[0] += 0.5 * f.nm_per_pt;
                vec![Action::ShowField(true)]
            }
        }
    }
}
