//! The viewer, driven through egui_kittest as a user would: keys, clicks and
//! drags on a headless wgpu renderer (lavapipe on CI).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;

use posescope::app::PoseScopeApp;
use posescope::io::read_pose_csv;
use posescope::io::WriteSample;
use posescope::synth::{write_dataset, SynthConfig};

/// The app's own wgpu setup, made once per test process and shared by
/// every harness. One device per harness meant lavapipe devices created and
/// destroyed on several test threads at once, and a CI run died of a
/// SIGSEGV inside the driver doing that (in tests/gpu_render.rs); a wgpu
/// device is itself safe to share between threads.
fn shared_wgpu() -> egui_wgpu::WgpuSetup {
    static SHARED: OnceLock<egui_wgpu::WgpuSetupExisting> = OnceLock::new();
    let existing = SHARED.get_or_init(|| {
        let state = egui_kittest::wgpu::create_render_state(
            posescope::app::gpu_view::wgpu_setup(),
            egui_wgpu::RendererOptions::PREDICTABLE,
        );
        egui_wgpu::WgpuSetupExisting {
            instance: state.instance,
            adapter: state.adapter,
            device: state.device,
            queue: state.queue,
        }
    });
    egui_wgpu::WgpuSetup::Existing(existing.clone())
}

/// A synthetic thin-torus stack with its truth.
fn dataset(dir: &Path, frames: usize) -> (PathBuf, PathBuf) {
    let cfg = SynthConfig::thin_torus(frames, 4242);
    let out = write_dataset(&cfg, dir, WriteSample::U16, false, || {}).expect("synth");
    (out.stack, out.truth)
}

fn harness(files: Vec<PathBuf>) -> Harness<'static, PoseScopeApp> {
    // exercise the WGSL model view even on lavapipe, where the app defaults
    // to the CPU renderer
    harness_with(files, |app| app.set_gpu_model_view(true))
}

/// The app on `files` in a 1400×900 wgpu harness, adjusted by `setup`.
fn harness_with(
    files: Vec<PathBuf>,
    setup: impl FnOnce(&mut PoseScopeApp) + 'static,
) -> Harness<'static, PoseScopeApp> {
    Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .wgpu_setup(shared_wgpu())
        .build_eframe(move |cc| {
            let mut app = PoseScopeApp::new(cc, files);
            // the harness clears to transparent, not to eframe's clear colour
            app.set_paint_background(true);
            setup(&mut app);
            app
        })
}

/// The app on `files` with no automatic Estimate (frames stay unfitted
/// until the test fits them), and with autosave as `autosave` says.
fn by_hand(files: Vec<PathBuf>, autosave: bool) -> Harness<'static, PoseScopeApp> {
    harness_with(files, move |app| {
        app.settings_mut().auto_estimate = false;
        app.settings_mut().autosave = autosave;
    })
}

/// The app on a synthetic stack of `frames` frames in `dir`, after a click
/// on Estimate all has fitted them.
fn estimated_all(dir: &Path, frames: usize) -> Harness<'static, PoseScopeApp> {
    let (stack, _) = dataset(dir, frames);
    let mut h = harness(vec![stack]);
    settle(&mut h);
    h.get_by_label("Estimate all").click();
    settle(&mut h);
    h
}

/// Opens the menu `menu` and clicks its item `item`, as a user would.
fn menu_click(h: &mut Harness<'_, PoseScopeApp>, menu: &str, item: &str) {
    h.get_by_role_and_label(Role::Button, menu).click();
    h.step();
    h.step();
    h.get_by_label(item).click();
    h.step();
    h.step();
}

/// Whether a notice on screen passes `test`.
fn noticed(h: &Harness<'_, PoseScopeApp>, test: impl Fn(&str) -> bool) -> bool {
    h.state().notices().iter().any(|n| test(&n.text))
}

/// Steps the UI until background work (loading, model, estimation, sweeps)
/// is done. Bounded, so a hang fails the test instead of blocking CI.
fn settle(h: &mut Harness<'_, PoseScopeApp>) {
    for _ in 0..6000 {
        h.step();
        if !h.state().busy() && h.state().fitter_ready() {
            h.step();
            h.step();
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("the viewer was still busy after 60 s");
}

/// The fitted orientation of frame `k` (which must have a fit).
fn fitted_q(h: &Harness<'_, PoseScopeApp>, k: usize) -> posescope::geometry::Quat {
    let fit = h.state().result(k).unwrap().as_ref().unwrap();
    fit.outcome.state.pose.q
}

/// The fitted axes of the first `n` frames (each must have a fit).
fn fitted_axes(h: &Harness<'_, PoseScopeApp>, n: usize) -> Vec<[f64; 3]> {
    (0..n).map(|k| fitted_q(h, k).axis()).collect()
}

/// Whether a widget whose label contains `text` is shown.
fn shows(h: &Harness<'_, PoseScopeApp>, text: &str) -> bool {
    h.query_by_label_contains(text).is_some()
}

/// Scrolls the last widget with this role and label into view and clicks it.
fn click_last(h: &mut Harness<'_, PoseScopeApp>, role: Role, label: &str) {
    h.get_all_by_role_and_label(role, label)
        .last()
        .expect("widget")
        .scroll_to_me();
    h.step();
    h.step();
    h.get_all_by_role_and_label(role, label)
        .last()
        .expect("widget")
        .click();
    h.step();
}

/// Drags the slider labelled `label` by `dx` points.
fn drag_slider(h: &mut Harness<'_, PoseScopeApp>, label: &str, dx: f32) {
    let rect = h.get_by_role_and_label(Role::Slider, label).rect();
    let start = rect.center();
    let end = start + egui::vec2(dx, 0.0);
    h.hover_at(start);
    h.step();
    h.drag_at(start);
    h.step();
    for i in 1..=5 {
        h.hover_at(start + egui::vec2(dx * i as f32 / 5.0, 0.0));
        h.step();
    }
    h.drop_at(end);
    h.step();
}

#[test]
fn open_step_drag_estimate_and_export() {
    let tmp = tempfile::tempdir().unwrap();
    let (stack, truth) = dataset(tmp.path(), 4);
    let truth = read_pose_csv(&truth).unwrap();
    let mut h = harness(vec![stack.clone()]);
    settle(&mut h);
    assert_eq!(h.state().document_count(), 1, "{:?}", h.state().notices());
    assert_eq!(h.state().frame_count(), 4);
    assert_eq!(h.state().current_path(), Some(stack.as_path()));
    assert!(
        h.state().gpu_active(),
        "the model view should draw on the GPU"
    );

    // step frames with the keys and the buttons
    h.key_press(egui::Key::ArrowRight);
    h.step();
    assert_eq!(h.state().frame_index(), 1);
    h.get_by_label("▶").click();
    h.step();
    assert_eq!(h.state().frame_index(), 2);
    h.key_press(egui::Key::ArrowLeft);
    h.step();
    h.key_press(egui::Key::ArrowLeft);
    h.step();
    assert_eq!(h.state().frame_index(), 0);
    h.key_press(egui::Key::ArrowLeft);
    h.step();
    assert_eq!(h.state().frame_index(), 0, "no frame before the first");

    // drag the tilt slider: the pose and the live score change
    let before = h.state().controls();
    let score_before = h.state().score();
    assert!(score_before.is_finite());
    drag_slider(&mut h, "tilt (°)", 60.0);
    let after = h.state().controls();
    assert!(
        (after.euler[1] - before.euler[1]).abs() > 5.0,
        "tilt {} → {}",
        before.euler[1],
        after.euler[1]
    );
    assert_ne!(
        h.state().score(),
        score_before,
        "the score follows the slider"
    );

    // Estimate: the sliders move to within a few degrees of the truth (once
    // the frames stepped through above are fitted, the button is enabled)
    settle(&mut h);
    h.get_by_label("Estimate").click();
    settle(&mut h);
    let st = h.state().controls().state();
    let t = &truth[0];
    let err = posescope::geometry::Symmetry::TORUS
        .axis_error(st.pose.q, t.pose.q)
        .to_degrees();
    assert!(err < 4.0, "axis error after Estimate {err:.2}°");
    assert!(h.state().score() > 0.8, "score {}", h.state().score());
    assert!(matches!(h.state().result(0), Some(Ok(_))));

    // Export: the annotated PNG exists and has the export layout's size
    let out = tmp.path().join("png");
    std::fs::create_dir_all(&out).unwrap();
    h.state_mut().settings_mut().export_dir = Some(out.clone());
    h.state_mut().settings_mut().export_zoom = 2;
    h.get_by_label("Export PNG").click();
    h.step();
    let png = h.state().last_export().expect("an export").to_path_buf();
    assert!(png.starts_with(&out) && png.exists(), "{}", png.display());
    let img = image::open(&png).unwrap();
    assert!(img.width() >= 3 * 128 * 2, "width {}", img.width());
    assert!(img.height() > 128 * 2, "height {}", img.height());
    // nothing partial left behind
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn estimate_all_fills_the_table_and_rows_navigate() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = estimated_all(tmp.path(), 3);
    for k in 0..3 {
        assert!(
            matches!(h.state().result(k), Some(Ok(_))),
            "frame {k}: {:?}",
            h.state().result(k)
        );
    }
    // clicking a row of the results table goes to that frame
    h.get_by_label("Results").click();
    h.step();
    // image fits cannot tell which way an axis tilts: no such column
    assert!(h.query_by_label("toward").is_none());
    click_last(&mut h, Role::Button, "2");
    assert_eq!(h.state().frame_index(), 2);
    // and shows that frame's fit on the sliders
    let fit = h.state().result(2).unwrap().as_ref().unwrap().outcome.state;
    let c = h.state().controls().state();
    assert!(c.pose.q.angle_to(fit.pose.q) < 1e-6);
    // the table saves as the CSV `posescope fit` writes
    let csv = tmp.path().join("poses.csv");
    h.state_mut().save_results(&csv);
    let rows = read_pose_csv(&csv).unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.score > 0.5));
}

/// The environment variable that turns [`estimate_all_until_killed`] from a
/// no-op into the child process of [`a_viewer_killed_mid_estimate_all_loses_no_written_result`].
const KILL_CHILD: &str = "POSESCOPE_TEST_KILL_CHILD";

/// Child half of the kill test: runs "Estimate all" on the stack named by
/// [`KILL_CHILD`] and keeps the UI stepping until the parent kills it.
#[test]
fn estimate_all_until_killed() {
    let Some(stack) = std::env::var_os(KILL_CHILD) else {
        return; // an ordinary test run
    };
    let mut h = harness_with(vec![PathBuf::from(stack)], |app| {
        app.settings_mut().auto_estimate = false
    });
    settle(&mut h);
    h.get_by_label("Estimate all").click();
    loop {
        h.step();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn a_viewer_killed_mid_estimate_all_loses_no_written_result() {
    let tmp = tempfile::tempdir().unwrap();
    let (stack, _) = dataset(tmp.path(), 48);
    let sidecar = posescope::app::autosave::sidecar_path(&stack);
    // the viewer runs in a process of its own: this test binary, running
    // only the child half above
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "estimate_all_until_killed", "--test-threads=1"])
        .env(KILL_CHILD, &stack)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the child viewer");
    // wait (bounded, so a hang fails instead of blocking CI) until some
    // results are on disk, then kill it as a crash or a power cut would
    let mut saved = 0;
    for _ in 0..12_000 {
        saved = read_pose_csv(&sidecar).map_or(0, |r| r.len());
        if saved > 0 {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the child viewer ended by itself: {status}");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().expect("kill the child viewer");
    child.wait().unwrap();
    assert!(saved > 0, "nothing was autosaved within 120 s");
    // the sidecar is whole (atomic writes): it parses, with the rows written
    // before the kill
    let on_disk = read_pose_csv(&sidecar).expect("the sidecar parses after the kill");
    assert!(on_disk.len() >= saved, "{} < {saved}", on_disk.len());
    eprintln!("killed with {} of 48 results on disk", on_disk.len());
    // reopening the file restores every result that was written
    let mut h = harness_with(vec![stack], |app| app.settings_mut().auto_estimate = false);
    settle(&mut h);
    for row in &on_disk {
        let got = h.state().result(row.frame).expect("restored");
        let fit = got.as_ref().expect("a fit");
        assert!(fit.outcome.state.pose.q.angle_to(row.pose.q) < 1e-6);
        assert!((fit.outcome.score - row.score).abs() < 1e-9);
    }
    // the notice counts exactly what was on disk
    let restored = h
        .state()
        .notices()
        .iter()
        .find_map(|n| {
            n.text
                .strip_prefix("restored ")
                .and_then(|t| t.split_whitespace().next())
                .and_then(|k| k.parse::<usize>().ok())
        })
        .unwrap_or_else(|| panic!("no restore notice: {:?}", h.state().notices()));
    assert_eq!(restored, on_disk.len(), "{:?}", h.state().notices());
}

#[test]
fn a_corrupt_file_shows_a_notice_and_the_app_keeps_running() {
    let tmp = tempfile::tempdir().unwrap();
    let (stack, _) = dataset(tmp.path(), 2);
    let bad = tmp.path().join("broken.tif");
    let bytes = std::fs::read(&stack).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() / 3]).unwrap();
    let mut h = harness(vec![bad.clone()]);
    settle(&mut h);
    let notices = h.state().notices().to_vec();
    assert!(
        notices
            .iter()
            .any(|n| n.is_error && n.text.contains("broken.tif")),
        "{notices:?}"
    );
    assert_eq!(h.state().document_count(), 0);
    assert!(
        h.state().settings().recent.is_empty(),
        "a failed file is not recent"
    );
    // the notice is visible and can be dismissed
    h.get_by_label_contains("broken.tif");
    for _ in 0..notices.len() {
        h.get_all_by_label("×")
            .next()
            .expect("a dismiss button")
            .click();
        h.step();
    }
    assert!(h.state().notices().is_empty(), "{:?}", h.state().notices());
    // and a good file still opens afterwards
    h.state_mut().open_paths(vec![stack.clone()]);
    settle(&mut h);
    assert_eq!(h.state().frame_count(), 2);
    assert_eq!(h.state().settings().recent, vec![stack]);
}

#[test]
fn equivalent_poses_score_the_same_and_layouts_switch() {
    let tmp = tempfile::tempdir().unwrap();
    let (stack, _) = dataset(tmp.path(), 1);
    let mut h = harness(vec![stack]);
    settle(&mut h);
    h.get_by_label("Estimate").click();
    settle(&mut h);
    let s0 = h.state().score();
    let q0 = h.state().controls().state().pose.q;
    // jump to the projection mirror: a different rotation, the same image
    // the first enabled Go: the projection mirror (listed right after this pose)
    h.get_all_by_role_and_label(Role::Button, "Go")
        .nth(1)
        .expect("a Go button")
        .click();
    h.step();
    h.step();
    let q1 = h.state().controls().state().pose.q;
    assert!(q1.angle_to(q0) > 0.1, "the jump changed the rotation");
    assert!(
        (h.state().score() - s0).abs() < 1e-3,
        "equivalent pose scores {} vs {s0}",
        h.state().score()
    );
    // layouts and LUTs change without errors
    for label in ["Overlay", "Residual", "3D", "Side by side"] {
        h.get_by_label(label).click();
        h.step();
        if std::env::var_os("POSESCOPE_SAVE_LAYOUTS").is_some() {
            h.render()
                .unwrap()
                .save(format!("/tmp/layout_{label}.png"))
                .unwrap();
        }
    }
    assert!(h.state().gpu_active());
    assert!(h.state().notices().iter().all(|n| !n.is_error));
    // auto-contrast: pressing again saturates more (a narrower range)
    let c0 = h.state().contrast().unwrap();
    h.get_by_label("Auto").click();
    h.step();
    h.get_by_label("Auto").click();
    h.step();
    let c1 = h.state().contrast().unwrap();
    assert!(c1.max - c1.min < c0.max - c0.min, "{c0:?} → {c1:?}");
    h.get_by_label("Reset").click();
    h.step();
    let c2 = h.state().contrast().unwrap();
    assert!(c2.max - c2.min > c0.max - c0.min);
}

#[test]
fn lean_drawing_follows_the_adapter_and_the_view_menu() {
    let tmp = tempfile::tempdir().unwrap();
    let (stack, _) = dataset(tmp.path(), 1);
    let mut h = harness(vec![stack]);
    settle(&mut h);
    assert!(h.state().pixel_views(), "image views draw through wgpu");
    let software = h.state().lean_drawing();
    let feathered = |h: &Harness<'_, PoseScopeApp>| h.ctx.tessellation_options(|o| o.feathering);
    assert_eq!(feathered(&h), !software);
    // the menu flips it, and with it feathering and rounded corners
    menu_click(&mut h, "View", "Lean drawing");
    assert_eq!(h.state().lean_drawing(), !software);
    assert_eq!(feathered(&h), software);
    let square =
        h.ctx.global_style().visuals.widgets.inactive.corner_radius == egui::CornerRadius::ZERO;
    assert_eq!(square, !software);
}

#[test]
fn the_gpu_model_view_follows_the_adapter_and_the_view_menu() {
    let tmp = tempfile::tempdir().unwrap();
    let (stack, _) = dataset(tmp.path(), 1);
    // the app's own default renderer choice
    let mut h = harness_with(vec![stack], |_| {});
    settle(&mut h);
    // on a software rasteriser the CPU renderer draws the model by default
    let software = h.state().lean_drawing();
    assert_eq!(h.state().gpu_model_view(), !software);
    assert_eq!(h.state().gpu_active(), !software);
    // the status bar and the view's caption name the renderer
    let status = |h: &Harness<'_, PoseScopeApp>, gpu: bool| {
        let (bar, caption) = if gpu {
            ("model view: GPU (wgpu)", "model (GPU render)")
        } else {
            ("model view: CPU", "model (CPU render)")
        };
        h.query_by_label(bar).is_some() && h.query_by_label(caption).is_some()
    };
    assert!(status(&h, !software));
    let model_view = |h: &mut Harness<'_, PoseScopeApp>| {
        let img = h.render().expect("render");
        // the right half of the central area: some model pixels are lit
        let (w, hgt) = img.dimensions();
        (w / 2..w * 3 / 4)
            .flat_map(|x| (hgt / 4..hgt * 3 / 4).map(move |y| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y)[1] > 128)
            .count()
    };
    let lit_before = model_view(&mut h);
    menu_click(&mut h, "View", "GPU model view");
    assert_eq!(h.state().gpu_model_view(), software);
    assert_eq!(h.state().gpu_active(), software);
    h.key_press(egui::Key::Escape);
    h.step();
    h.step();
    assert!(status(&h, software));
    assert!(h.state().notices().iter().all(|n| !n.is_error));
    // both renderers draw the model
    let lit_after = model_view(&mut h);
    assert!(
        lit_before > 100 && lit_after > 100,
        "{lit_before} {lit_after}"
    );
}

#[test]
fn main_layout_snapshot() {
    let sample = posescope::app::sample_stack().expect("the bundled sample");
    let mut h = harness_with(vec![sample], |app| {
        // a fixed pose, so the picture tests the UI and the renderers, not the fit's last digits
        app.settings_mut().auto_estimate = false;
        // and no results a developer's own run left beside the sample
        app.settings_mut().autosave = false;
        // pinned to what the committed picture shows (GPU model view, lean
        // drawing), whatever kind of adapter this harness got: the defaults
        // follow the adapter, and a cold CI run once drew the CPU view
        app.set_gpu_model_view(true);
        app.set_lean_drawing(true);
        app.set_controls(posescope::app::PoseControls {
            euler: [-77.5, 79.7, 0.0],
            shift: [-4.3, -3.05],
            sigma: 2.6,
            scale: 1.29,
            tube_px: 11.0,
        });
    });
    settle(&mut h);
    // fit the image to its view once the layout is final: under load the
    // first fit can land while a progress bar still takes room
    h.key_press(egui::Key::Home);
    h.step();
    h.remove_cursor();
    h.step();
    h.snapshot_options(
        "main_layout",
        &egui_kittest::SnapshotOptions::new()
            .threshold(2.0)
            .max_failed_pixels(4000),
    );
}

#[test]
fn a_frame_with_non_finite_pixels_opens_scores_and_fits() {
    use tiff::encoder::{colortype, TiffEncoder};
    let tmp = tempfile::tempdir().unwrap();
    let cfg = SynthConfig::thin_torus(1, 77);
    let synth = posescope::synth::generate_frame(&cfg, 0).unwrap();
    let (w, h_px) = (synth.image.width, synth.image.height);
    let mut data = synth.image.data.clone();
    // a 6×6 masked corner (NaN) and one saturated pixel (+∞): 37 in all
    for y in 0..6 {
        for x in 0..6 {
            data[y * w + x] = f32::NAN;
        }
    }
    data[100 * w + 3] = f32::INFINITY;
    // written by the tiff crate's encoder, not by PoseScope
    let path = tmp.path().join("masked.tif");
    let mut file = std::fs::File::create(&path).unwrap();
    TiffEncoder::new(&mut file)
        .unwrap()
        .write_image::<colortype::Gray32Float>(w as u32, h_px as u32, &data)
        .unwrap();
    drop(file);

    let mut h = harness(vec![path]);
    settle(&mut h);
    assert_eq!(h.state().frame_count(), 1, "{:?}", h.state().notices());
    assert!(
        h.state().score().is_finite(),
        "live score {}",
        h.state().score()
    );
    assert!(
        h.query_by_label_contains("37 non-finite pixels").is_some(),
        "the status bar reports the pixels"
    );
    h.get_by_label("Estimate").click();
    settle(&mut h);
    match h.state().result(0) {
        Some(Ok(fit)) => {
            assert_eq!(fit.nonfinite_px, 37);
            let err = posescope::geometry::Symmetry::TORUS
                .axis_error(fit.outcome.state.pose.q, synth.truth.pose.q)
                .to_degrees();
            assert!(err < 5.0, "axis error {err:.2}°");
        }
        other => panic!("frame 0 was not fitted: {other:?}"),
    }
}

#[test]
fn a_palette_tiff_opens_in_its_own_colours() {
    let tmp = tempfile::tempdir().unwrap();
    let path = fixture_copy(tmp.path(), "tiff/palette8.tif");
    let mut h = harness(vec![path]);
    settle(&mut h);
    assert_eq!(h.state().frame_count(), 1, "{:?}", h.state().notices());
    assert!(
        h.query_by_label_contains("palette image, 256 colours")
            .is_some(),
        "the status bar says the image keeps its palette"
    );
}

/// Presses and releases the primary button at `pos` (a click on a painted
/// area that has no accessibility node, such as the field view).
fn click_at(h: &mut Harness<'_, PoseScopeApp>, pos: egui::Pos2) {
    h.hover_at(pos);
    h.step();
    for pressed in [true, false] {
        h.event(egui::Event::PointerButton {
            pos,
            button: egui::PointerButton::Primary,
            pressed,
            modifiers: egui::Modifiers::NONE,
        });
        h.step();
    }
}

/// A synthetic field of four particles in 40×40 camera pixels, written as
/// Picasso HDF5 and ThunderSTORM CSV into `dir`.
/// A copy of the fixture `rel` (under tests/fixtures) in `dir`: the viewer
/// autosaves beside what it opens.
fn fixture_copy(dir: &Path, rel: &str) -> PathBuf {
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    let to = dir.join(from.file_name().unwrap());
    std::fs::copy(&from, &to).unwrap();
    to
}

/// Picks tab → Accept all → Fit accepted, until the fits are in.
fn accept_and_fit(h: &mut Harness<'_, PoseScopeApp>) {
    h.get_by_label("Picks").click();
    h.step();
    h.get_by_label("Accept all").click();
    h.step();
    h.get_by_label("Fit accepted").click();
    settle(h);
}

fn small_field(
    dir: &std::path::Path,
    seed: u64,
) -> (
    posescope::synth::locs::Field,
    posescope::synth::locs::FieldFiles,
) {
    use posescope::synth::locs::{generate_field, write_field, FieldConfig};
    let cfg = FieldConfig {
        particles: 4,
        field_px: [40, 40],
        seed,
        ..FieldConfig::default()
    };
    let field = generate_field(&cfg).unwrap();
    let files = write_field(&cfg, &field, dir).unwrap();
    (field, files)
}

#[test]
fn a_table_is_picked_accepted_fitted_and_exported_as_an_overview() {
    use posescope::geometry::symmetry::axis_error;
    let tmp = tempfile::tempdir().unwrap();
    let (field, files) = small_field(tmp.path(), 21);
    let out = tmp.path().join("png");
    std::fs::create_dir_all(&out).unwrap();
    let out2 = out.clone();
    let mut h = harness_with(vec![files.picasso.clone()], move |app| {
        app.settings_mut().auto_estimate = false;
        app.settings_mut().export_dir = Some(out2);
    });
    settle(&mut h);
    // the table opens on its field, with the automatic picks as candidates
    assert_eq!(h.state().frame_count(), 4, "{:?}", h.state().notices());
    assert!(h.state().showing_field());
    assert!(h.state().field_renders() >= 1);
    assert!(noticed(&h, |t| t.contains("4 candidate particles")));
    // nothing is fitted before the picks are accepted
    accept_and_fit(&mut h);
    for (k, t) in field.truth.iter().enumerate() {
        let _ = t;
        assert!(matches!(h.state().result(k), Some(Ok(_))), "pick {k}");
    }
    // every fitted particle is near a true one, with its axis within 12°
    let doc_truth: Vec<_> = field.truth.iter().collect();
    for k in 0..4 {
        let fit = h.state().result(k).unwrap().as_ref().unwrap();
        let axis = fit.outcome.state.pose.q.axis();
        let best = doc_truth
            .iter()
            .map(|t| axis_error(axis, t.q.axis()).to_degrees())
            .fold(f64::INFINITY, f64::min);
        assert!(best < 12.0, "pick {k}: axis error {best:.1}°");
    }
    // selecting a particle in the results shows it with its fit
    h.get_by_label("Results").click();
    h.step();
    click_last(&mut h, Role::Button, "2");
    assert_eq!(h.state().frame_index(), 2);
    let fit = h.state().result(2).unwrap().as_ref().unwrap().outcome.state;
    assert!(h.state().controls().state().pose.q.angle_to(fit.pose.q) < 1e-6);
    // the overview PNG has the field at 10 nm per pixel
    h.get_by_label("Picks").click();
    h.step();
    h.get_by_label("Export overview").click();
    h.step();
    let png = h.state().last_export().expect("an overview").to_path_buf();
    assert!(png.starts_with(&out) && png.ends_with("field_overview.png"));
    let img = image::open(&png).unwrap();
    assert!(
        img.width() > 400 && img.height() > 400,
        "{}×{}",
        img.width(),
        img.height()
    );
    // a click on an empty part of the field adds a pick; Delete removes it
    let field_button = h.get_by_label("Field").rect();
    click_at(&mut h, field_button.left_bottom() + egui::vec2(12.0, 40.0));
    assert_eq!(h.state().frame_count(), 5, "{:?}", h.state().notices());
    h.key_press(egui::Key::Delete);
    h.step();
    assert_eq!(
        h.state().pick_state(4),
        Some(posescope::app::particles::PickState::Removed)
    );
}

#[test]
fn fit_size_learns_the_tables_torus_and_undo_brings_the_fits_and_torus_back() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, files) = small_field(tmp.path(), 21);
    // the torus guessed 17 % small (the setting, made before the table opens)
    let mut h = harness_with(vec![], |app| {
        app.settings_mut().auto_estimate = false;
        app.settings_mut().particle_torus_nm = [150.0, 30.0];
    });
    h.state_mut().open_paths(vec![files.picasso.clone()]);
    settle(&mut h);
    assert_eq!(h.state().frame_count(), 4, "{:?}", h.state().notices());
    let doc = h.state().session().doc().unwrap();
    let torus = doc.particles.as_ref().unwrap().table_torus_nm().unwrap();
    assert_eq!(torus, [150.0, 30.0]);
    accept_and_fit(&mut h);
    let before = fitted_axes(&h, 4);
    h.get_by_label("Fit size").click();
    h.step();
    settle(&mut h);
    let note = h
        .state()
        .notices()
        .iter()
        .map(|n| n.text.clone())
        .find(|t| t.starts_with("torus size from 4 particles: R "))
        .unwrap_or_else(|| panic!("{:?}", h.state().notices()));
    let major: f64 = note["torus size from 4 particles: R ".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (major - 180.0).abs() < 6.0 && note.contains("from R 150, r 30"),
        "{note}"
    );
    // the table's fits use the size from now on
    let doc = h.state().session().doc().unwrap();
    let torus = doc.particles.as_ref().unwrap().table_torus_nm().unwrap();
    assert!((torus[0] - major).abs() < 0.06, "{torus:?} vs {note}");
    assert!(h
        .state()
        .notices()
        .iter()
        .all(|n| !n.text.contains("failed")));
    // the poses were fitted again with it; Undo brings the old fits back
    let after = fitted_axes(&h, 4);
    assert_ne!(before, after);
    menu_click(
        &mut h,
        "Edit",
        "Undo fit the torus size (4 particles) Ctrl+Z",
    );
    assert_eq!(fitted_axes(&h, 4), before);
    // and the torus they were fitted with
    let doc = h.state().session().doc().unwrap();
    let torus = doc.particles.as_ref().unwrap().table_torus_nm().unwrap();
    assert_eq!(torus, [150.0, 30.0]);
}

/// A whole-field image (not a table): the field of `small_field` (5.2 µm
/// square) rendered at `pixel_nm` (5 nm: 1040 × 1040 px; origin at 0 nm),
/// written as a float TIFF that states its pixel size.
fn field_image(
    dir: &std::path::Path,
    seed: u64,
    pixel_nm: f64,
) -> (posescope::synth::locs::Field, std::path::PathBuf) {
    use posescope::render::locs::{render_locs, LocMode, LocView};
    let (field, _) = small_field(dir, seed);
    let side = (5200.0 / pixel_nm).round() as usize;
    let view = LocView {
        origin_nm: [0.0, 0.0],
        pixel_nm,
        width: side,
        height: side,
    };
    let x: Vec<f32> = field.locs.iter().map(|l| l.x_nm).collect();
    let y: Vec<f32> = field.locs.iter().map(|l| l.y_nm).collect();
    let p: Vec<f32> = field.locs.iter().map(|l| l.precision_nm).collect();
    let data = render_locs(&x, &y, Some(&p), &view, LocMode::Blur { min_blur_nm: 5.0 });
    let frame = posescope::io::Frame {
        width: side,
        height: side,
        data,
    };
    let path = dir.join("field.tif");
    posescope::io::write_tiff_stack(
        &path,
        &[frame],
        posescope::io::WriteSample::F32,
        Some(pixel_nm),
    )
    .unwrap();
    (field, path)
}

#[test]
fn a_small_image_opens_as_frames_and_is_picked_on_request() {
    let tmp = tempfile::tempdir().unwrap();
    // 520 × 520 px: below the size that opens as a field by itself
    let (_, path) = field_image(tmp.path(), 24, 10.0);
    let mut h = by_hand(vec![path], true);
    settle(&mut h);
    assert!(!h.state().showing_field());
    assert_eq!(h.state().frame_count(), 1);
    h.get_by_label("Picks").click();
    h.step();
    h.get_by_label("Pick particles in this image").click();
    h.step();
    settle(&mut h);
    assert!(h.state().showing_field(), "{:?}", h.state().notices());
    assert_eq!(h.state().frame_count(), 4, "{:?}", h.state().notices());
}

#[test]
fn a_table_field_renders_on_the_gpu_when_asked_and_zooming_renders_again() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, files) = small_field(tmp.path(), 23);
    let mut h = Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .wgpu_setup(shared_wgpu())
        .build_eframe(move |cc| {
            let mut app = PoseScopeApp::new(cc, vec![files.picasso.clone()]);
            app.set_paint_background(true);
            app.settings_mut().auto_estimate = false;
            app.use_field_gpu(cc.wgpu_render_state.as_ref().expect("a wgpu harness"));
            app
        });
    settle(&mut h);
    assert!(h.state().showing_field());
    // the first render runs on the field's thread through the GPU
    for _ in 0..500 {
        h.step();
        if h.state().field_gpu_renders() >= 1 && h.state().field_renders() >= 1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(h.state().field_gpu_renders() >= 1, "no GPU render");
    let before = (h.state().field_renders(), h.state().field_gpu_renders());
    // zoom in over the field: once the view settles it is rendered again, on the GPU
    let centre = h.get_by_label("Field").rect().left_bottom() + egui::vec2(300.0, 300.0);
    h.hover_at(centre);
    h.event(egui::Event::MouseWheel {
        unit: egui::MouseWheelUnit::Point,
        delta: egui::vec2(0.0, 200.0),
        phase: egui::TouchPhase::Move,
        source: egui::MouseWheelSource::Unknown,
        modifiers: egui::Modifiers::NONE,
    });
    for _ in 0..500 {
        h.step();
        if h.state().field_gpu_renders() > before.1 && h.state().field_renders() > before.0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        h.state().field_gpu_renders() > before.1,
        "zooming did not render on the GPU again: {before:?}"
    );
}

#[test]
fn a_whole_field_image_is_picked_fitted_and_exported_as_an_overview() {
    use posescope::geometry::symmetry::axis_error;
    let tmp = tempfile::tempdir().unwrap();
    let (field, path) = field_image(tmp.path(), 22, 5.0);
    let out = tmp.path().join("png");
    std::fs::create_dir_all(&out).unwrap();
    let out2 = out.clone();
    let mut h = harness_with(vec![path], move |app| {
        app.settings_mut().auto_estimate = false;
        app.settings_mut().export_dir = Some(out2);
    });
    settle(&mut h);
    // one 1040² image opens as a field, its particles picked by the image detector
    assert!(h.state().showing_field(), "{:?}", h.state().notices());
    assert_eq!(h.state().frame_count(), 4, "{:?}", h.state().notices());
    assert!(h.state().notices().iter().any(|n| n
        .text
        .contains("1040 × 1040 px image, 4 candidate particles")));
    accept_and_fit(&mut h);
    // every particle fitted, its axis within 15° of a true one
    for k in 0..4 {
        let fit = h
            .state()
            .result(k)
            .expect("a result")
            .as_ref()
            .expect("a pose");
        let axis = fit.outcome.state.pose.q.axis();
        let best = field
            .truth
            .iter()
            .map(|t| axis_error(axis, t.q.axis()).to_degrees())
            .fold(f64::INFINITY, f64::min);
        assert!(best < 15.0, "pick {k}: axis error {best:.1}°");
    }
    // selecting a particle shows its particle frame with its fit
    h.get_by_label("Results").click();
    h.step();
    click_last(&mut h, Role::Button, "1");
    assert_eq!(h.state().frame_index(), 1);
    let fit = h.state().result(1).unwrap().as_ref().unwrap().outcome.state;
    assert!(h.state().controls().state().pose.q.angle_to(fit.pose.q) < 1e-6);
    // the overview is the image at its own pixels, with the picks drawn
    h.get_by_label("Picks").click();
    h.step();
    h.get_by_label("Export overview").click();
    h.step();
    let png = h.state().last_export().expect("an overview").to_path_buf();
    assert!(png.ends_with("field_overview.png"), "{}", png.display());
    let img = image::open(&png).unwrap();
    assert_eq!((img.width(), img.height()), (1040, 1040));
    // and the picks are saved in image pixels, and load back
    let picks = tmp.path().join("picks.csv");
    h.state_mut().save_picks(&picks);
    h.state_mut().load_picks(&picks);
    h.step();
    assert_eq!(h.state().frame_count(), 4, "{:?}", h.state().notices());
    let centres = posescope::io::locs::read_pick_centres_px(&picks, None).unwrap();
    for c in centres {
        let near = field
            .truth
            .iter()
            .any(|t| (c[0] * 5.0 - t.x_nm).hypot(c[1] * 5.0 - t.y_nm) < 150.0);
        assert!(near, "pick at {c:?} px is near no particle");
    }
}

/// No estimation on opening, and a short learning run: `[points,
/// iterations, search, steps]` (the Learn tab's fields).
fn short_learning(app: &mut PoseScopeApp, [points, iterations, search, steps]: [usize; 4]) {
    app.settings_mut().auto_estimate = false;
    let l = app.learning_mut();
    l.config.points = points;
    l.config.iterations = iterations;
    l.config.search = search;
    l.config.steps = steps;
}

#[test]
fn learning_from_a_3d_table_says_that_its_z_goes_unused() {
    let tmp = tempfile::tempdir().unwrap();
    let table = fixture_copy(tmp.path(), "locs/thunderstorm_3d.csv");
    let mut h = harness_with(vec![table], |app| short_learning(app, [16, 1, 100, 1]));
    settle(&mut h);
    assert_eq!(h.state().frame_count(), 3, "{:?}", h.state().notices());
    h.get_by_label("Learn").click();
    h.step();
    h.get_by_label("Start learning").click();
    h.step();
    assert!(
        noticed(&h, |t| t.contains("thunderstorm_3d.csv")
            && t.contains("the localisations' z is not used")),
        "{:?}",
        h.state().notices()
    );
    settle(&mut h);
}

#[test]
fn learning_runs_in_the_learn_tab_and_its_model_is_taken_for_fitting() {
    let tmp = tempfile::tempdir().unwrap();
    let (stack, _) = dataset(tmp.path(), 12);
    let mut h = harness_with(vec![stack.clone()], |app| {
        short_learning(app, [64, 3, 400, 4])
    });
    settle(&mut h);
    // fits with the torus first: the learned poses will replace them
    h.get_by_label("Estimate all").click();
    settle(&mut h);
    let torus_pose = |h: &Harness<'_, PoseScopeApp>, k: usize| {
        h.state()
            .result(k)
            .and_then(|r| r.as_ref().ok())
            .map(|f| f.outcome.state.pose.q)
    };
    let fitted: Vec<_> = (0..12).map(|k| torus_pose(&h, k)).collect();
    assert!(
        fitted.iter().all(Option::is_some),
        "Estimate all fitted every frame"
    );
    h.get_by_label("Learn").click();
    h.step();
    h.get_by_label("Start learning").click();
    h.step();
    assert!(h.state().busy(), "the run is a background job");
    // pause holds it; resume lets it finish
    h.get_by_label("Pause").click();
    // one frame applies the action, the next draws the button it changed
    h.step();
    h.step();
    h.get_by_label("Resume").click();
    let mut done = false;
    for _ in 0..12_000 {
        h.step();
        if h.query_by_label("Use as model").is_some() {
            done = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(done, "learning did not finish");
    assert!(
        h.state().notices().iter().any(|n| n
            .text
            .starts_with("learned a 64-point structure from 12 frames")),
        "{:?}",
        h.state().notices()
    );
    h.get_by_label("Use as model").click();
    h.step();
    // the learned cloud is written beside the data and becomes the model
    let ply = stack.with_file_name("stack.tif.learned.ply");
    assert!(ply.is_file(), "no {}", ply.display());
    let spec = &h.state().settings().model;
    assert_eq!(spec.model, posescope::shapes::ModelKind::File(ply.clone()));
    // and its poses fill the results
    for k in 0..12 {
        let fit = h
            .state()
            .result(k)
            .expect("a result")
            .as_ref()
            .expect("a pose");
        assert!(
            fit.outcome.score > 0.5,
            "frame {k}: score {}",
            fit.outcome.score
        );
    }
    settle(&mut h);
    assert!(
        h.state().fitter_ready(),
        "the learned model builds a fitter"
    );
    // the notice names the model it replaced, and Undo brings the torus
    // fits back
    assert!(
        h.state()
            .notices()
            .iter()
            .any(|n| n.text.contains("(it was torus R")),
        "{:?}",
        h.state().notices()
    );
    assert_ne!(
        torus_pose(&h, 0),
        fitted[0],
        "the learned pose replaced the fit"
    );
    menu_click(&mut h, "Edit", "Undo use the learned model Ctrl+Z");
    h.step();
    let undone: Vec<_> = (0..12).map(|k| torus_pose(&h, k)).collect();
    assert_eq!(undone, fitted);
}

#[test]
fn a_pick_dragged_in_the_field_moves_and_loses_its_old_fit() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, files) = small_field(tmp.path(), 23);
    let mut h = harness_with(vec![files.thunderstorm.clone()], |app| {
        app.settings_mut().auto_estimate = false
    });
    settle(&mut h);
    assert_eq!(h.state().frame_count(), 4, "{:?}", h.state().notices());
    accept_and_fit(&mut h);
    assert!(
        matches!(h.state().result(1), Some(Ok(_))),
        "pick 1 is fitted"
    );
    let before = h.state().pick_nm(1).unwrap();
    let start = h.state().pick_on_screen(1).expect("pick 1 is on screen");
    let end = start + egui::vec2(30.0, 20.0);
    let want = h.state().field_point_nm(end).unwrap();
    // one screen point in nm: the tolerance of a drag
    let pt = h
        .state()
        .field_point_nm(end + egui::vec2(1.0, 0.0))
        .unwrap()[0]
        - want[0];
    // press on the pick, move in steps, let go: a drag, as a hand makes it
    h.hover_at(start);
    h.step();
    h.drag_at(start);
    h.step();
    for i in 1..=5 {
        h.hover_at(start + (end - start) * i as f32 / 5.0);
        h.step();
    }
    h.drop_at(end);
    h.step();
    h.step();
    let after = h.state().pick_nm(1).unwrap();
    assert!(
        (after[0] - want[0]).abs() < pt && (after[1] - want[1]).abs() < pt,
        "pick 1 at {after:?}, dropped at {want:?} (1 pt = {pt} nm; it was at {before:?})"
    );
    // a move, not a pan or a new pick: the other picks stay, nothing is added
    assert_eq!(h.state().frame_count(), 4);
    assert!(
        noticed(&h, |t| t.starts_with("moved pick 1 (")),
        "{:?}",
        h.state().notices()
    );
    // the fit was of the particle at the old place
    assert!(h.state().result(1).is_none(), "pick 1 keeps a stale fit");
    assert!(
        matches!(h.state().result(0), Some(Ok(_))),
        "pick 0 keeps its fit"
    );
}

/// A folder of single-frame images of one size (cut-outs, one file per
/// particle) opens as one document: its files in natural order as frames,
/// stepped with the arrow keys, fitted by Estimate all, and saved with each
/// row naming its own file, so that reopening the folder restores them.
#[test]
fn a_folder_of_single_images_opens_as_one_sequence_and_keeps_each_files_results() {
    use tiff::encoder::{colortype, TiffEncoder};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cutouts");
    std::fs::create_dir(&dir).unwrap();
    let cfg = SynthConfig::thin_torus(3, 4243);
    // written by the tiff crate's encoder, not by PoseScope; natural order
    // is cut_1, cut_2, cut_10 (not the byte order cut_1, cut_10, cut_2)
    let names = ["cut_1.tif", "cut_2.tif", "cut_10.tif"];
    let mut first_pixels = Vec::new();
    for (k, name) in names.iter().enumerate() {
        let f = posescope::synth::generate_frame(&cfg, k).unwrap().image;
        first_pixels.push(f.data.clone());
        let mut file = std::fs::File::create(dir.join(name)).unwrap();
        TiffEncoder::new(&mut file)
            .unwrap()
            .write_image::<colortype::Gray32Float>(f.width as u32, f.height as u32, &f.data)
            .unwrap();
    }
    let mut h = harness(vec![dir.clone()]);
    settle(&mut h);
    assert_eq!(h.state().document_count(), 1, "{:?}", h.state().notices());
    assert_eq!(h.state().frame_count(), 3);
    let shown =
        |h: &Harness<'_, PoseScopeApp>| h.state().session().current_frame().unwrap().data.clone();
    assert_eq!(shown(&h), first_pixels[0]);
    // the frame bar names the frame's own file
    h.get_by_label_contains("cutouts/cut_1.tif");
    h.key_press(egui::Key::ArrowRight);
    settle(&mut h);
    h.key_press(egui::Key::ArrowRight);
    settle(&mut h);
    assert_eq!(h.state().frame_index(), 2);
    assert_eq!(shown(&h), first_pixels[2]);
    h.get_by_label_contains("cutouts/cut_10.tif");

    h.get_by_label("Estimate all").click();
    settle(&mut h);
    for k in 0..3 {
        assert!(matches!(h.state().result(k), Some(Ok(_))), "frame {k}");
    }
    // the PNG of frame 2 is named after its own file
    let out = tmp.path().join("png");
    std::fs::create_dir_all(&out).unwrap();
    h.state_mut().settings_mut().export_dir = Some(out.clone());
    h.get_by_label("Export PNG").click();
    h.step();
    let png = h.state().last_export().expect("an export").to_path_buf();
    assert_eq!(png, out.join("cut_10_f0000.png"));
    assert!(png.is_file());

    let csv = tmp.path().join("poses.csv");
    h.state_mut().save_results(&csv);
    let rows = read_pose_csv(&csv).unwrap();
    let files: Vec<String> = rows
        .iter()
        .map(|r| {
            let f = PathBuf::from(r.file.clone().unwrap());
            f.file_name().unwrap().to_string_lossy().into_owned()
        })
        .collect();
    assert_eq!(files, names);
    assert!(rows.iter().all(|r| r.frame == 0));
    let saved_q: Vec<f64> = rows.iter().map(|r| r.pose.q.w).collect();
    drop(h);

    // the sidecar beside the folder brings every result back
    let sidecar = posescope::app::autosave::sidecar_path(&std::fs::canonicalize(&dir).unwrap());
    assert!(sidecar.is_file(), "{}", sidecar.display());
    let mut h = harness(vec![dir]);
    settle(&mut h);
    for (k, q) in saved_q.iter().enumerate() {
        let r = h.state().result(k).unwrap().as_ref().unwrap();
        assert!((r.outcome.state.pose.q.w - q).abs() < 1e-9, "frame {k}");
    }
}

/// A four-particle field opened for review (no fits while stepping).
fn small_field_for_review(dir: &std::path::Path) -> Harness<'static, PoseScopeApp> {
    let (_, files) = small_field(dir, 21);
    let mut h = by_hand(vec![files.picasso.clone()], true);
    settle(&mut h);
    assert_eq!(h.state().frame_count(), 4, "{:?}", h.state().notices());
    h
}

/// A key pressed and one frame drawn.
fn press(h: &mut Harness<'_, PoseScopeApp>, key: egui::Key) {
    h.key_press(key);
    h.step();
}

/// A field's candidates reviewed from the keyboard: N selects the next
/// candidate, A accepts the selected one and Delete removes it, each moving
/// on; when none is left a notice says so.
#[test]
fn a_fields_candidates_are_reviewed_from_the_keyboard() {
    use posescope::app::particles::PickState;
    let tmp = tempfile::tempdir().unwrap();
    let mut h = small_field_for_review(tmp.path());
    assert_eq!(h.state().selected_pick(), None);
    press(&mut h, egui::Key::N);
    assert_eq!(h.state().selected_pick(), Some(0));
    assert_eq!(h.state().frame_index(), 0);
    // the field zooms in until the particle's disc (R + r = 220 nm) is at
    // least 20 points across its radius
    h.step();
    let (a, b) = (h.state().pick_on_screen(0), h.state().pick_on_screen(1));
    let (na, nb) = (h.state().pick_nm(0).unwrap(), h.state().pick_nm(1).unwrap());
    let pt_per_nm =
        (a.unwrap() - b.unwrap()).length() as f64 / (na[0] - nb[0]).hypot(na[1] - nb[1]);
    assert!(
        220.0 * pt_per_nm >= 19.9,
        "disc radius {:.1} pt",
        220.0 * pt_per_nm
    );
    press(&mut h, egui::Key::A);
    assert_eq!(h.state().pick_state(0), Some(PickState::Accepted));
    assert_eq!(h.state().selected_pick(), Some(1));
    assert_eq!(h.state().frame_index(), 1);
    press(&mut h, egui::Key::Delete);
    assert_eq!(h.state().pick_state(1), Some(PickState::Removed));
    assert_eq!(h.state().selected_pick(), Some(2));
    // N skips without deciding; the review wraps round to what is left
    press(&mut h, egui::Key::N);
    assert_eq!(h.state().selected_pick(), Some(3));
    assert_eq!(h.state().pick_state(2), Some(PickState::Candidate));
    press(&mut h, egui::Key::A);
    assert_eq!(h.state().pick_state(3), Some(PickState::Accepted));
    assert_eq!(h.state().selected_pick(), Some(2));
    press(&mut h, egui::Key::A);
    assert_eq!(h.state().pick_state(2), Some(PickState::Accepted));
    assert!(noticed(&h, |t| t.contains("no candidates left")));
    let states: Vec<_> = (0..4).map(|k| h.state().pick_state(k).unwrap()).collect();
    assert_eq!(
        states,
        [
            PickState::Accepted,
            PickState::Removed,
            PickState::Accepted,
            PickState::Accepted
        ]
    );
}

/// A key pressed by mistake in a review costs nothing: Ctrl+Z (or Edit →
/// Undo, which names the edit) takes back removes, accepts, Accept all and
/// an added pick, newest first, and shows the pick it concerned.
#[test]
fn pick_edits_are_undone_from_the_keyboard_and_the_edit_menu() {
    use posescope::app::particles::PickState;
    let tmp = tempfile::tempdir().unwrap();
    let mut h = small_field_for_review(tmp.path());
    let undo = |h: &mut Harness<'_, PoseScopeApp>| {
        h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
        h.step();
    };
    press(&mut h, egui::Key::N);
    press(&mut h, egui::Key::Delete);
    assert_eq!(h.state().pick_state(0), Some(PickState::Removed));
    assert_eq!(h.state().selected_pick(), Some(1));
    undo(&mut h);
    assert_eq!(h.state().pick_state(0), Some(PickState::Candidate));
    assert_eq!(h.state().selected_pick(), Some(0));
    assert!(noticed(&h, |t| t == "undid: remove pick 0"));
    // Accept all, then one pick removed: undone newest first, from the menu
    h.get_by_label("Accept all").click();
    h.step();
    press(&mut h, egui::Key::Delete);
    assert_eq!(h.state().pick_state(0), Some(PickState::Removed));
    // the menu names the edit (the shortcut is part of the button's label)
    menu_click(&mut h, "Edit", "Undo remove pick 0 Ctrl+Z");
    assert_eq!(h.state().pick_state(0), Some(PickState::Accepted));
    undo(&mut h);
    let states: Vec<_> = (0..4).map(|k| h.state().pick_state(k).unwrap()).collect();
    assert_eq!(states, [PickState::Candidate; 4]);
    // the first remove was undone already: nothing is left to undo
    undo(&mut h);
    assert!(noticed(&h, |t| t == "nothing to undo"));
}

/// A fit that replaced another is undone from the Edit menu, which names
/// it; the frame's former fit comes back to the sliders. A first fit (of
/// an unfitted frame) replaces nothing and is not offered.
#[test]
fn a_fit_that_replaced_another_is_undone_from_the_edit_menu() {
    let tmp = tempfile::tempdir().unwrap();
    let (stack, _) = dataset(tmp.path(), 2);
    let mut h = by_hand(vec![stack], false);
    settle(&mut h);
    h.get_by_label("Estimate").click();
    settle(&mut h);
    let first = h.state().result(0).unwrap().as_ref().unwrap().outcome.state;
    assert_eq!(h.state().session().doc().unwrap().history.next_undo(), None);
    // Refine from a pose 20° off: a new fit (a hair apart) replaces the first
    let mut off = h.state().controls();
    off.euler[1] += 20.0;
    h.state_mut().set_controls(off);
    h.step();
    h.get_by_label("Refine").click();
    settle(&mut h);
    let second = h.state().result(0).unwrap().as_ref().unwrap().outcome.state;
    assert_ne!(second.pose.q, first.pose.q);
    menu_click(&mut h, "Edit", "Undo refine frame 0 Ctrl+Z");
    // the first fit, bit for bit; the sliders on it exactly (not rounded
    // to their displayed decimals), so the live score is the fit's
    let back = h.state().result(0).unwrap().as_ref().unwrap().outcome.state;
    assert_eq!(back.pose.q, first.pose.q);
    let sliders = h.state().controls().state();
    assert!(sliders.pose.q.angle_to(first.pose.q).to_degrees() < 1e-9);
    assert_eq!((sliders.sigma, sliders.scale), (first.sigma, first.scale));
    assert!(noticed(&h, |t| t == "undid: refine frame 0"));
}

/// A review of a field image survives closing the viewer: its picks are
/// autosaved with their states and come back over the detector's, with the
/// candidates counted after the restore.
#[test]
fn a_field_images_review_comes_back_when_it_is_opened_again() {
    use posescope::app::particles::PickState;
    let tmp = tempfile::tempdir().unwrap();
    let (_, path) = field_image(tmp.path(), 22, 5.0);
    let picks_file = tmp.path().join("field.tif.posescope-picks.csv");
    {
        let mut h = by_hand(vec![path.clone()], true);
        settle(&mut h);
        assert_eq!(h.state().frame_count(), 4, "{:?}", h.state().notices());
        press(&mut h, egui::Key::N);
        press(&mut h, egui::Key::Delete);
        assert_eq!(h.state().pick_state(0), Some(PickState::Removed));
        // bounded wait for the autosave (debounced, on its own thread)
        let saved = (0..1000).any(|_| {
            h.step();
            std::thread::sleep(std::time::Duration::from_millis(10));
            std::fs::read_to_string(&picks_file).is_ok_and(|t| t.contains("removed"))
        });
        assert!(saved, "the picks were not autosaved within 10 s");
    }
    let mut h = by_hand(vec![path], true);
    settle(&mut h);
    assert_eq!(h.state().frame_count(), 4);
    assert_eq!(h.state().pick_state(0), Some(PickState::Removed));
    let notices = h.state().notices();
    assert!(
        notices
            .iter()
            .any(|n| n.text.starts_with("restored 4 picks as reviewed")),
        "{notices:?}"
    );
    assert!(
        notices
            .iter()
            .any(|n| n.text.contains("3 candidate particles")),
        "{notices:?}"
    );
}

/// A Picasso picked file (h5py) opens with its groups as the picks,
/// accepted as the user made them in Picasso, not picked anew.
#[test]
fn a_picasso_picked_file_opens_with_its_groups_as_accepted_picks() {
    use posescope::app::particles::PickState;
    let table = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/locs/picasso_groups.hdf5");
    let mut h = harness_with(vec![table], |app| {
        app.settings_mut().auto_estimate = false;
        app.settings_mut().autosave = false;
    });
    settle(&mut h);
    assert_eq!(h.state().frame_count(), 3, "{:?}", h.state().notices());
    for k in 0..3 {
        assert_eq!(h.state().pick_state(k), Some(PickState::Accepted));
    }
    let centres = [(12.0, 14.0), (30.0, 16.0), (20.0, 34.0)];
    for (k, (cx, cy)) in centres.into_iter().enumerate() {
        let [x, y] = h.state().pick_nm(k).unwrap();
        assert!((x - cx * 130.0).abs() < 0.5 && (y - cy * 130.0).abs() < 0.5);
    }
    let notices = h.state().notices();
    assert!(
        notices
            .iter()
            .any(|n| n.text.contains("the table's 3 groups")),
        "{notices:?}"
    );
    assert!(!notices
        .iter()
        .any(|n| n.text.contains("candidate particles")));
}

/// Stacks opened together that are not one sequence open one by one, each
/// its own document, and the first one given is the one shown.
#[test]
fn stacks_opened_together_open_one_by_one_showing_the_first() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let (first, _) = dataset(&a, 3);
    let (second, _) = dataset(&b, 2);
    let mut h = harness(vec![first.clone(), second]);
    settle(&mut h);
    assert_eq!(h.state().document_count(), 2, "{:?}", h.state().notices());
    assert_eq!(h.state().current_path(), Some(first.as_path()));
    assert_eq!(h.state().frame_count(), 3);
}

#[test]
fn the_results_tab_shows_how_the_frames_are_oriented_and_an_axis_click_goes_to_its_frame() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = estimated_all(tmp.path(), 3);
    h.get_by_label("Results").click();
    h.step();
    h.step();
    let verdict = h.get_by_label_contains("3 particles, median tilt").rect();
    let save = h.get_by_label("Save figure…").rect();
    let caption = h.get_by_label_contains("axes, equal-area").rect();
    // the pole figure lies between the verdict's row and its caption: ±1.08 across
    let gap = h.ctx.global_style().spacing.item_spacing.y;
    let mut above = verdict.bottom().max(save.bottom());
    if let Some(line) = h.query_by_label_contains("in the image plane") {
        above = above.max(line.rect().bottom());
    }
    let side = caption.top() - above - 2.0 * gap;
    let origin = egui::pos2(caption.left(), above + gap);
    assert!(side > 100.0, "{verdict:?} {caption:?}");
    let q = fitted_q(&h, 2);
    let end = posescope::estimate::pose::orientations::ViewAxis::of(q)
        .equal_area()
        .next()
        .unwrap();
    let at = origin
        + egui::vec2(
            ((end[0] + 1.08) / 2.16) as f32 * side,
            ((1.08 - end[1]) / 2.16) as f32 * side,
        );
    assert_eq!(h.state().frame_index(), 0);
    click_at(&mut h, at);
    h.step();
    assert_eq!(h.state().frame_index(), 2, "clicked at {at:?}");
    // the figure, as Save figure… writes it
    let png = tmp.path().join("orientations.png");
    h.state_mut().save_orientation_figure(&png);
    let img = image::open(&png).unwrap();
    assert_eq!((img.width(), img.height()), (820, 446));
    assert!(noticed(&h, |t| t.starts_with("saved the orientations of 3 fits")));
}

#[test]
fn slider_drags_and_symmetry_jumps_are_undone_one_by_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (stack, _) = dataset(tmp.path(), 1);
    let mut h = by_hand(vec![stack], false);
    settle(&mut h);
    let c0 = h.state().controls();
    // one drag: many changes, one edit
    drag_slider(&mut h, "tilt (°)", 20.0);
    let c1 = h.state().controls();
    assert!(c1.euler[1] > c0.euler[1] + 5.0, "{c0:?} → {c1:?}");
    // a jump to the projection mirror (the first enabled Go)
    h.get_all_by_role_and_label(Role::Button, "Go")
        .nth(1)
        .expect("a Go button")
        .click();
    h.step();
    h.step();
    assert_ne!(h.state().controls(), c1);
    assert_eq!(
        h.state().session().doc().unwrap().history.next_undo(),
        Some("jump to the mirror pose")
    );
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    h.step();
    assert_eq!(h.state().controls(), c1);
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    h.step();
    assert_eq!(h.state().controls(), c0);
    assert!(noticed(&h, |t| t == "undid: pose change"));
}

#[test]
fn a_3d_tables_fits_know_their_tilt_direction_and_the_explorer_rules_out_the_mirror() {
    let tmp = tempfile::tempdir().unwrap();
    let table = fixture_copy(tmp.path(), "locs/thunderstorm_3d.csv");
    let mut h = harness_with(vec![table], |app| {
        app.settings_mut().auto_estimate = false;
    });
    settle(&mut h);
    assert_eq!(h.state().frame_count(), 3, "{:?}", h.state().notices());
    accept_and_fit(&mut h);
    let axes = fitted_axes(&h, 3);
    for k in 0..3 {
        let fit = h.state().result(k).unwrap().as_ref().unwrap();
        assert!(fit.outcome.z_locs >= 380, "particle {k}: {:?}", fit.outcome);
    }
    // make_locs.py's axes (tilt, azimuth): each is fitted itself (up to ±),
    // not as its mirror in z, which a 2D fit could not tell apart
    for (tilt, azim) in [(40.0f64, 30.0f64), (55.0, 200.0), (35.0, 120.0)] {
        let (t, a) = (tilt.to_radians(), azim.to_radians());
        let n = [t.sin() * a.cos(), t.sin() * a.sin(), t.cos()];
        let line = |m: [f64; 3], a: &[f64; 3]| {
            let c = (a[0] * m[0] + a[1] * m[1] + a[2] * m[2]).abs();
            c.min(1.0).acos().to_degrees()
        };
        let a = axes
            .iter()
            .find(|a| line(n, a) < 6.0)
            .unwrap_or_else(|| panic!("no axis near {n:?}: {axes:?}"));
        // the mirror is 70–110° from each of these axes
        assert!(line([n[0], n[1], -n[2]], a) > 60.0);
    }
    // the fit's panel says so, and the explorer marks the mirror ruled out
    assert!(shows(&h, "tilt direction from the z of"));
    // and its axis's standard error comes from the localisations
    assert!(shows(&h, "from its localisations"));
    // the 3D view draws the particle's localisations beside the posed model
    h.get_by_label("Particle").click();
    h.step();
    h.get_by_label("3D").click();
    h.step();
    h.step();
    assert!(shows(&h, "localisations in 3D (orange"));
    let locs = h.state().particle_locs_3d([0.0; 2]).expect("a 3D table");
    assert!(locs.len() >= 380, "{}", locs.len());
    h.get_by_label("Symmetry").click();
    h.step();
    // the mirror and the mirror of the flip, the two rows that are not this axis
    assert_eq!(h.query_all_by_label_contains("ruled out by z").count(), 2);
    assert!(shows(&h, "the mirror poses are ruled out"));
    // Results → Orientations tests which way the axes tilt, and the pole
    // figure shows each axis by its far end alone
    h.get_by_label("Results").click();
    h.step();
    h.step();
    assert!(shows(&h, "tilt directions from z (3 axes tilted ≥ 30°)"));
    assert!(shows(&h, "only its far end (the way it tilts)"));
    // and the results table has a column of tilt directions, one per fit
    assert!(h.query_by_label("toward").is_some());
    for k in 0..3 {
        let q = fitted_q(&h, k);
        let toward = posescope::estimate::pose::orientations::ViewAxis::directed(q);
        let cell = format!("{:.0}°", toward.azimuth_deg);
        assert!(h.query_by_label(&cell).is_some(), "no cell {cell}");
    }
}

#[test]
fn flip_z_in_opening_tables_mirrors_every_tilt_direction() {
    let tmp = tempfile::tempdir().unwrap();
    let table = fixture_copy(tmp.path(), "locs/thunderstorm_3d.csv");
    let mut h = harness_with(vec![], |app| {
        app.settings_mut().auto_estimate = false;
    });
    h.get_by_label("Picks").click();
    h.step();
    h.get_by_label("Opening tables").click();
    h.step();
    h.get_by_label("flip z").click();
    h.step();
    assert!(h.state().settings().table_flip_z);
    h.state_mut().open_paths(vec![table]);
    settle(&mut h);
    assert_eq!(h.state().frame_count(), 3, "{:?}", h.state().notices());
    accept_and_fit(&mut h);
    let axes = fitted_axes(&h, 3);
    // with z negated, each particle takes the mirror of make_locs.py's axis
    for (tilt, azim) in [(40.0f64, 30.0f64), (55.0, 200.0), (35.0, 120.0)] {
        let (t, a) = (tilt.to_radians(), azim.to_radians());
        let mirror = [t.sin() * a.cos(), t.sin() * a.sin(), -t.cos()];
        let near = axes.iter().any(|a| {
            let c = (a[0] * mirror[0] + a[1] * mirror[1] + a[2] * mirror[2]).abs();
            c.min(1.0).acos().to_degrees() < 6.0
        });
        assert!(near, "no axis near the mirror {mirror:?}: {axes:?}");
    }
}

#[test]
fn a_3d_tables_z_is_checked_against_the_model_and_the_z_factor_setting_applies() {
    use posescope::synth::locs::{generate_field, write_field, FieldConfig};
    let tmp = tempfile::tempdir().unwrap();
    let cfg = FieldConfig {
        particles: 10,
        field_px: [64, 64],
        seed: 23,
        ..FieldConfig::default()
    };
    let field = generate_field(&cfg).unwrap();
    let files = write_field(&cfg, &field, tmp.path()).unwrap();
    // z read as three quarters of what the file says (the setting, made
    // before the table is opened): squeezed
    let mut h = harness_with(vec![], |app| {
        app.settings_mut().auto_estimate = false;
        app.settings_mut().table_z_scale = 0.75;
    });
    h.state_mut().open_paths(vec![files.thunderstorm.clone()]);
    settle(&mut h);
    assert_eq!(h.state().frame_count(), 10, "{:?}", h.state().notices());
    accept_and_fit(&mut h);
    assert!(
        noticed(&h, |t| t
            .contains("z scale: the localisations fit best with z × 1.3")
            && t.contains("squeezed")
            && t.contains("Opening tables")),
        "{:?}",
        h.state().notices()
    );
}
