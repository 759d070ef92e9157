//! The `posescope` binary end to end: synth → info → render, and clean errors.

use std::process::Command;

fn posescope(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_posescope"))
        .args(args)
        .output()
        .expect("run posescope")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts that a run succeeded, showing its stderr if not.
fn ok(o: &std::process::Output) {
    assert!(o.status.success(), "{}", text(&o.stderr));
}

#[test]
fn synth_then_info_and_truth() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("set");
    let synth = |dest: &std::path::Path| {
        posescope(&[
            "synth",
            "--n",
            "12",
            "--size",
            "64",
            "--radius",
            "8..14",
            "--seed",
            "7",
            "--pixel-size",
            "65",
            "--out",
            dest.to_str().unwrap(),
        ])
    };
    let o = synth(&out);
    assert!(o.status.success(), "synth failed: {}", text(&o.stderr));
    let stack = out.join("stack.tif");
    // headers only by default: no value range
    let o = posescope(&["info", "--json", stack.to_str().unwrap()]);
    assert!(o.status.success(), "info failed: {}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v[0]["min"].is_null() && v[0]["max"].is_null(), "{v}");
    let o = posescope(&["info", "--json", "--stats", stack.to_str().unwrap()]);
    assert!(o.status.success(), "info failed: {}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let s = &v[0];
    assert_eq!(s["frames"], 12);
    assert_eq!(s["width"], 64);
    assert_eq!(s["height"], 64);
    assert_eq!(s["sample_type"], "uint16");
    let px = s["pixel_size_nm"]
        .as_f64()
        .expect("pixel size written and read back");
    assert!((px - 65.0).abs() < 1e-3, "pixel size {px}");
    assert!(s["max"].as_f64().unwrap() > s["min"].as_f64().unwrap());
    // the truth table has one row per frame with the standard columns
    let rows = posescope::io::read_pose_csv(&out.join("truth.csv")).unwrap();
    assert_eq!(rows.len(), 12);
    assert!(rows.iter().enumerate().all(|(i, r)| r.frame == i));
    let r: f64 = rows[0].get("major_radius_px").unwrap().parse().unwrap();
    assert!((8.0..=14.0).contains(&r));
    // the same seed gives the same data
    let again = dir.path().join("again");
    assert!(synth(&again).status.success());
    assert_eq!(
        std::fs::read(out.join("stack.tif")).unwrap(),
        std::fs::read(again.join("stack.tif")).unwrap()
    );
}

#[test]
fn render_writes_png_tiff_and_ply() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("r.png");
    let tif = dir.path().join("r.tif");
    let ply = dir.path().join("posed.ply");
    let o = posescope(&[
        "render",
        "--euler",
        "30,60,0",
        "--size",
        "96x80",
        "--out",
        png.to_str().unwrap(),
        "--ply",
        ply.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut stack = posescope::io::open(&png).unwrap();
    assert_eq!((stack.info().width, stack.info().height), (96, 80));
    assert!(
        stack.frame(0).unwrap().min_max().1 > 60000.0,
        "PNG is scaled to its maximum"
    );
    let posed = posescope::shapes::Model::load(&ply).unwrap();
    assert_eq!(posed.len(), 2000);
    let o = posescope(&[
        "render",
        "--quat",
        "1,0,0,0",
        "--sigma",
        "2",
        "--out",
        tif.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let f = posescope::io::open(&tif).unwrap().frame(0).unwrap();
    // float TIFF keeps raw intensities: 2000 unit-weight points sum to ≈ 2000
    let total: f32 = f.data.iter().sum();
    assert!((total - 2000.0).abs() < 20.0, "total {total}");
}

#[test]
fn errors_are_one_clear_line_and_nonzero() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.tif");
    std::fs::write(&bad, b"II*\0garbage").unwrap();
    let o = posescope(&["info", bad.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("broken.tif"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let o = posescope(&["render", "--euler", "1,2", "--out", "x.png"]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("expected 3"),
        "{}",
        text(&o.stderr)
    );
    let o = posescope(&[
        "synth",
        "--n",
        "0",
        "--out",
        dir.path().join("z").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("frames"));
    let o = posescope(&["--help"]);
    assert!(o.status.success());
    for cmd in [
        "info", "synth", "render", "view", "fit", "train", "eval", "export", "merge",
    ] {
        assert!(text(&o.stdout).contains(cmd), "--help lacks {cmd}");
    }
}

#[test]
fn fit_with_the_bundled_network_then_eval() {
    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("thin");
    let o = posescope(&[
        "synth",
        "--n",
        "6",
        "--radius",
        "20",
        "--ratio",
        "0.25",
        "--sigma",
        "1.6",
        "--sites",
        "2000",
        "--dropout",
        "0",
        "--blinks",
        "1",
        "--jitter",
        "0",
        "--seed",
        "31",
        "--out",
        set.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let pred = dir.path().join("pred.csv");
    let o = posescope(&[
        "fit",
        set.join("stack.tif").to_str().unwrap(),
        "--csv",
        pred.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let rows = posescope::io::read_pose_csv(&pred).unwrap();
    assert_eq!(rows.len(), 6);
    assert!(
        rows.iter().all(|r| r.get("start") == Some("network")),
        "the bundled network was not used"
    );
    assert!(
        rows.iter().all(|r| r.score > 0.8),
        "low scores: {:?}",
        rows.iter().map(|r| r.score).collect::<Vec<_>>()
    );
    let o = posescope(&[
        "eval",
        "--json",
        "--truth",
        set.join("truth.csv").to_str().unwrap(),
        "--pred",
        pred.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["matched"], 6);
    let median = v["axis_error"]["median"].as_f64().unwrap();
    assert!(median < 3.0, "median axis error {median}°");
}

#[test]
fn fit_reports_a_bad_file_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.fits");
    std::fs::write(&bad, b"SIMPLE  =                    T").unwrap();
    let set = dir.path().join("ok");
    assert!(posescope(&[
        "synth",
        "--n",
        "2",
        "--seed",
        "3",
        "--out",
        set.to_str().unwrap()
    ])
    .status
    .success());
    let pred = dir.path().join("pred.csv");
    let o = posescope(&[
        "fit",
        bad.to_str().unwrap(),
        set.join("stack.tif").to_str().unwrap(),
        "--csv",
        pred.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let rows = posescope::io::read_pose_csv(&pred).unwrap();
    assert_eq!(rows.len(), 3);
    let failed: Vec<_> = rows
        .iter()
        .filter(|r| r.get("error").is_some_and(|e| !e.is_empty()))
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].file.as_deref().unwrap().ends_with("bad.fits"));
}

#[test]
fn fit_png_dir_and_export_write_the_same_annotated_pngs() {
    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("set");
    assert!(posescope(&[
        "synth",
        "--n",
        "3",
        "--seed",
        "11",
        "--pixel-size",
        "65",
        "--out",
        set.to_str().unwrap()
    ])
    .status
    .success());
    let stack = set.join("stack.tif");
    let pred = dir.path().join("pred.csv");
    let pngs = dir.path().join("pngs");
    let o = posescope(&[
        "fit",
        stack.to_str().unwrap(),
        "--csv",
        pred.to_str().unwrap(),
        "--png-dir",
        pngs.to_str().unwrap(),
        "--zoom",
        "2",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let fitted: Vec<_> = (0..3)
        .map(|k| pngs.join(format!("stack_f{k:04}.png")))
        .collect();
    for p in &fitted {
        let img = image::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(img.width() >= 3 * 128 * 2 && img.height() > 128 * 2);
    }
    // export reads the poses back and writes identical images through the same code
    let out = dir.path().join("export");
    let o = posescope(&[
        "export",
        stack.to_str().unwrap(),
        "--poses",
        pred.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--zoom",
        "2",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("wrote 3"), "{}", text(&o.stdout));
    for (k, p) in fitted.iter().enumerate() {
        let a = image::open(p).unwrap().to_rgba8();
        let b = image::open(out.join(format!("stack_f{k:04}.png")))
            .unwrap()
            .to_rgba8();
        assert_eq!(a.dimensions(), b.dimensions());
        // the CSV rounds the pose a little: allow a few differing pixels
        let differ = a.pixels().zip(b.pixels()).filter(|(x, y)| x != y).count();
        assert!(
            differ < (a.width() * a.height() / 50) as usize,
            "frame {k}: {differ} pixels differ"
        );
    }
    // bad arguments are clear errors
    let o = posescope(&[
        "export",
        stack.to_str().unwrap(),
        "--poses",
        pred.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--lut",
        "rainbow",
    ]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("rainbow"), "{}", text(&o.stderr));
    // a missing pose CSV: one line naming it, the cause said once
    let missing = dir.path().join("nope.csv");
    let o = posescope(&[
        "export",
        stack.to_str().unwrap(),
        "--poses",
        missing.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("nope.csv"), "{err}");
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
}

#[test]
fn view_without_a_display_says_so_in_one_line() {
    let o = Command::new(env!("CARGO_BIN_EXE_posescope"))
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .expect("run posescope");
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("no display") && err.contains("posescope fit"),
        "{err}"
    );
}

#[test]
fn fit_a_folder_in_shards_then_merge() {
    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("set");
    let o = posescope(&[
        "synth",
        "--n",
        "3",
        "--seed",
        "8",
        "--out",
        set.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    // a folder of particles, numbered as people number them
    let folder = dir.path().join("particles");
    std::fs::create_dir(&folder).unwrap();
    for name in ["p10.tif", "p2.tif"] {
        std::fs::copy(set.join("stack.tif"), folder.join(name)).unwrap();
    }
    std::fs::write(folder.join("README.txt"), "not an image").unwrap();
    let shard = |k: usize| {
        let csv = dir.path().join(format!("shard{k}.csv"));
        let o = posescope(&[
            "fit",
            folder.to_str().unwrap(),
            "--shard",
            &format!("{k}/2"),
            "--csv",
            csv.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        csv
    };
    let (a, b) = (shard(0), shard(1));
    // 6 frames over both files: shard 0 has global frames 0, 2, 4
    assert_eq!(posescope::io::read_pose_csv(&a).unwrap().len(), 3);
    assert_eq!(posescope::io::read_pose_csv(&b).unwrap().len(), 3);
    let all = dir.path().join("all.csv");
    let o = posescope(&[
        "merge",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--out",
        all.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let rows = posescope::io::read_pose_csv(&all).unwrap();
    let order: Vec<(String, usize)> = rows
        .iter()
        .map(|r| {
            let f = r.file.as_deref().unwrap();
            (f.rsplit('/').next().unwrap().to_string(), r.frame)
        })
        .collect();
    let want: Vec<(String, usize)> = ["p2.tif", "p10.tif"]
        .iter()
        .flat_map(|f| (0..3).map(move |k| (f.to_string(), k)))
        .collect();
    assert_eq!(order, want);
    // a missing shard is a gap, the same shard twice an overlap
    let o = posescope(&["merge", a.to_str().unwrap(), "--out", all.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("in none of the shards"),
        "{}",
        text(&o.stderr)
    );
    let o = posescope(&[
        "merge",
        a.to_str().unwrap(),
        a.to_str().unwrap(),
        "--out",
        all.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("overlap"), "{}", text(&o.stderr));
    // an empty folder is a clear error
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = posescope(&["info", empty.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("no image files"),
        "{}",
        text(&o.stderr)
    );
}

/// From a synthetic SMLM field to a pose per particle: synth --locs, info,
/// `synth --locs` writes a field of 8 particles (seed 31, 96 px) into `d/f`.
fn synth_field(d: &std::path::Path) {
    let out = d.join("f").display().to_string();
    ok(&posescope(&[
        "synth",
        "--locs",
        "--size",
        "96",
        "--particles",
        "8",
        "--seed",
        "31",
        "--out",
        &out,
    ]));
}

/// `fit TABLE --fit-size` learns the torus's size from the particles:
/// started 17 % small it finds synth's R 180, r 40 nm, writes each
/// particle's own R (a start too far off is refused: the unit tests).
#[test]
fn the_torus_size_is_fitted_to_a_tables_particles() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = |p: &str| d.join(p).display().to_string();
    synth_field(d);
    let fit = |torus: &str| {
        posescope(&[
            "fit",
            &s("f/field.hdf5"),
            "--torus",
            torus,
            "--units",
            "nm",
            "--device",
            "cpu",
            "--fit-size",
            "--csv",
            &s("sized.csv"),
        ])
    };
    let o = fit("150,30");
    ok(&o);
    let out = text(&o.stdout);
    let line = out
        .lines()
        .find(|l| l.starts_with("torus size from 8 particles: R "))
        .unwrap_or_else(|| panic!("{out}"));
    let number_after = |key: &str| -> f64 {
        let rest = &line[line.find(key).unwrap() + key.len()..];
        rest.split_whitespace().next().unwrap().parse().unwrap()
    };
    let (major, tube) = (number_after(": R "), number_after(", r "));
    assert!((major - 180.0).abs() < 3.0, "{line}");
    assert!((tube - 40.0).abs() < 3.0, "{line}");
    assert!(line.contains("from R 150, r 30"), "{line}");
    // the profile's points, on stderr
    assert!(
        text(&o.stderr).contains("size round 2: R 142.5 nm"),
        "{}",
        text(&o.stderr)
    );
    let rows = posescope::io::read_pose_csv(&d.join("sized.csv")).unwrap();
    assert_eq!(rows.len(), 8);
    let own: Vec<f64> = rows
        .iter()
        .filter_map(|r| r.get("major_nm")?.parse().ok())
        .collect();
    assert!(own.len() >= 6, "{rows:?}");
    assert!(own.iter().all(|r| (r - 180.0).abs() < 12.0), "{own:?}");
    // without --fit-size there are no size columns
    ok(&posescope(&[
        "fit",
        &s("f/field.hdf5"),
        "--torus",
        "180,40",
        "--units",
        "nm",
        "--device",
        "cpu",
        "--csv",
        &s("plain.csv"),
    ]));
    let plain = posescope::io::read_pose_csv(&d.join("plain.csv")).unwrap();
    assert_eq!(plain[0].get("major_nm"), None);
}

/// pick (against the truth), fit TABLE (auto-picked and from the picks CSV).
#[test]
fn a_localisation_field_is_picked_and_fitted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = |p: &str| d.join(p).display().to_string();
    synth_field(d);
    let o = posescope(&["info", &s("f/field.hdf5")]);
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stdout).contains("Picasso HDF5"));
    let o = posescope(&[
        "pick",
        &s("f/field_thunderstorm.csv"),
        "--out",
        &s("picks.csv"),
        "--truth",
        &s("f/truth.csv"),
    ]);
    ok(&o);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("8 of 8 particles picked") && out.contains("0 false picks"),
        "{out}"
    );
    // Picasso's picked format: the picked localisations with a group per pick
    ok(&posescope(&[
        "pick",
        &s("f/field.hdf5"),
        "--out",
        &s("picks_h5.csv"),
        "--picasso-out",
        &s("picked.hdf5"),
    ]));
    let picked = posescope::io::locs::open_table(
        &d.join("picked.hdf5"),
        &posescope::io::locs::TableOptions::default(),
    )
    .unwrap();
    let mut groups = picked.group.clone().expect("a group column");
    groups.sort_unstable();
    groups.dedup();
    assert_eq!(groups, (0..8).collect::<Vec<i32>>());
    assert_eq!(picked.pixel_size_nm, Some(130.0));
    // synth's Picasso file is 3D (z and lpz, nm), and the picked file keeps
    // each localisation's z and axial precision
    let field = posescope::io::locs::open_table(
        &d.join("f/field.hdf5"),
        &posescope::io::locs::TableOptions::default(),
    )
    .unwrap();
    let (fz, flpz) = (field.z_nm.unwrap(), field.precision_z_nm.unwrap());
    let fprec = field.precision_nm.unwrap();
    // synth's axial error is twice the lateral precision
    assert!((0..field.x_nm.len()).all(|i| (flpz[i] - 2.0 * fprec[i]).abs() < 1e-3));
    assert!(fz.iter().any(|&z| z.abs() > 100.0));
    let (pz, plpz) = (picked.z_nm.unwrap(), picked.precision_z_nm.unwrap());
    assert_eq!(pz.len(), picked.x_nm.len());
    for i in 0..pz.len() {
        let same = (0..fz.len()).any(|j| {
            fz[j] == pz[i]
                && flpz[j] == plpz[i]
                && (field.x_nm[j] - picked.x_nm[i]).abs() < 1e-3
                && (field.y_nm[j] - picked.y_nm[i]).abs() < 1e-3
        });
        assert!(
            same,
            "picked localisation {i} (z {}) is not in the field",
            pz[i]
        );
    }
    // the default particle (named on stderr), and the same torus given explicitly
    for extra in [vec![], vec!["--picks".to_string(), s("picks.csv")]] {
        let mut args = vec!["fit".to_string(), s("f/field.hdf5")];
        if !extra.is_empty() {
            args.extend(["--torus".into(), "180,40".into()]);
            args.extend(["--units".into(), "nm".into()]);
        }
        args.extend([
            "--device".into(),
            "cpu".into(),
            "--csv".into(),
            s("poses.csv"),
        ]);
        let default_model = extra.is_empty();
        args.extend(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = posescope(&args);
        ok(&o);
        assert_eq!(
            text(&o.stderr).contains("model: torus R 180 nm, r 40 nm (the default particle"),
            default_model,
            "{}",
            text(&o.stderr)
        );
        let rows = posescope::io::read_pose_csv(&d.join("poses.csv")).unwrap();
        assert_eq!(rows.len(), 8);
        for r in &rows {
            assert!(r.get("error").is_some_and(str::is_empty), "{r:?}");
            assert!(r.get("x_nm").is_some() && r.get("n_locs").is_some());
            assert!(r.score > 0.5, "score {}", r.score);
        }
    }
    // learn takes the table's picked particles as its frames
    let o = posescope(&[
        "learn",
        &s("f/field.hdf5"),
        "--picks",
        &s("picks.csv"),
        "--out",
        &s("learned.ply"),
        "--poses",
        &s("learned.csv"),
        "--points",
        "48",
        "--iterations",
        "2",
        "--search",
        "300",
        "--steps",
        "3",
    ]);
    ok(&o);
    let err = text(&o.stderr);
    assert!(
        err.contains("8 picked particles, rendered at 9.00 nm per pixel"),
        "{err}"
    );
    // the table is 3D: the user is told that learning leaves its z unused
    assert!(
        err.contains("warning: ") && err.contains("the localisations' z is not used"),
        "{err}"
    );
    let rows = posescope::io::read_pose_csv(&d.join("learned.csv")).unwrap();
    assert_eq!(
        rows.iter().map(|r| r.frame).collect::<Vec<_>>(),
        (0..8).collect::<Vec<_>>()
    );
    assert_eq!(
        posescope::shapes::Model::load(&d.join("learned.ply"))
            .unwrap()
            .len(),
        48
    );
    // the model must be in nm for a table
    let o = posescope(&[
        "fit",
        &s("f/field.hdf5"),
        "--units",
        "px",
        "--csv",
        &s("p.csv"),
    ]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("give the torus in nm") && err.contains("field.hdf5"),
        "{err}"
    );
}

/// A whole-field image instead of a table: the field rendered (origin at
/// 0 nm, 20 nm pixels, stated in the TIFF), picked by the image detector
/// against the truth, and fitted particle by particle.
#[test]
fn an_image_field_is_picked_and_fitted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = |p: &str| d.join(p).display().to_string();
    ok(&posescope(&[
        "synth",
        "--locs",
        "--size",
        "96",
        "--particles",
        "8",
        "--seed",
        "32",
        "--out",
        &s("f"),
    ]));
    ok(&posescope(&[
        "render",
        &s("f/field.hdf5"),
        "--pixel-size-nm",
        "20",
        "--region",
        "0,0,12480,12480",
        "--out",
        &s("field.tif"),
    ]));
    let o = posescope(&[
        "pick",
        &s("field.tif"),
        "--out",
        &s("picks.csv"),
        "--truth",
        &s("f/truth.csv"),
    ]);
    ok(&o);
    let out = text(&o.stdout);
    assert!(
        out.contains("8 of 8 particles picked") && out.contains("0 false picks"),
        "{out}"
    );
    let picks = std::fs::read_to_string(d.join("picks.csv")).unwrap();
    assert!(
        picks.starts_with("particle,x_px,y_px,x_nm,y_nm,diameter_nm,n_locs,signal,snr,size\n"),
        "{picks}"
    );
    assert_eq!(picks.lines().count(), 9);
    // --pick with the default particle (R 180, r 40 nm), --picks with it given
    for extra in ["--pick", "--picks"] {
        let mut args = vec!["fit".to_string(), s("field.tif")];
        if extra == "--picks" {
            args.extend(["--torus", "180,40", "--units", "nm"].map(String::from));
        }
        args.extend([
            "--device".into(),
            "cpu".into(),
            "--csv".into(),
            s("poses.csv"),
            "--truth".into(),
            s("f/truth.csv"),
            extra.into(),
        ]);
        if extra == "--picks" {
            args.push(s("picks.csv"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = posescope(&args);
        ok(&o);
        let rows = posescope::io::read_pose_csv(&d.join("poses.csv")).unwrap();
        assert_eq!(rows.len(), 8);
        for r in &rows {
            assert!(r.get("error").is_some_and(str::is_empty), "{r:?}");
            let x: f64 = r.get("x_px").unwrap().parse().unwrap();
            assert!((0.0..624.0).contains(&x), "{r:?}");
        }
        // "axis error over 8 matched particles: median 4.1°, …"
        let out = text(&o.stdout);
        let median: f64 = out
            .split("axis error")
            .nth(1)
            .and_then(|t| t.split("median ").nth(1))
            .and_then(|t| t.split('°').next())
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("{out}"));
        assert!(out.contains("over 8 matched"), "{out}");
        assert!(median < 10.0, "{out}");
    }
    // an nm model on an image of unknown pixel size is refused, clearly
    ok(&posescope(&[
        "render",
        "--size",
        "200",
        "--euler",
        "0,40,0",
        "--out",
        &s("torus.png"),
    ]));
    let o = posescope(&["pick", &s("torus.png"), "--out", &s("p.csv")]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("--pixel-size"),
        "{}",
        text(&o.stderr)
    );
    // in pixels it needs none: the one torus (R 20 px, r 5 px) is found
    let o = posescope(&[
        "pick",
        &s("torus.png"),
        "--torus-px",
        "20,5",
        "--out",
        &s("p.csv"),
    ]);
    ok(&o);
    assert!(
        text(&o.stdout).starts_with("1 particles picked"),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn learn_writes_a_model_that_fit_accepts_and_resumes_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("set");
    ok(&posescope(&[
        "synth",
        "--n",
        "10",
        "--size",
        "40",
        "--radius",
        "9",
        "--ratio",
        "0.3",
        "--sigma",
        "1.2",
        "--shift",
        "1",
        "--seed",
        "3",
        "--out",
        set.to_str().unwrap(),
    ]));
    let stack = set.join("stack.tif");
    let model = dir.path().join("learned.ply");
    let poses = dir.path().join("poses.csv");
    let learn = |extra: &[&str]| {
        let mut args = vec![
            "learn",
            stack.to_str().unwrap(),
            "--out",
            model.to_str().unwrap(),
            "--poses",
            poses.to_str().unwrap(),
            "--points",
            "48",
            "--iterations",
            "2",
            "--search",
            "300",
            "--steps",
            "3",
            "--sigma",
            "1.2",
        ];
        args.extend_from_slice(extra);
        posescope(&args)
    };
    let o = learn(&[]);
    ok(&o);
    assert!(
        text(&o.stdout).contains("learned 48 points from 10 frames"),
        "{}",
        text(&o.stdout)
    );
    // the PLY carries a weight per point and loads as a model
    let m = posescope::shapes::Model::load(&model).unwrap();
    assert_eq!(m.len(), 48);
    assert!(
        m.weights.iter().any(|&w| (w - 1.0).abs() > 1e-3),
        "learned weights"
    );
    let rows = posescope::io::read_pose_csv(&poses).unwrap();
    assert_eq!(rows.len(), 10);
    assert!(rows
        .iter()
        .all(|r| r.pose.q.is_finite() && r.score.is_finite()));
    // fit takes the learned cloud as a custom model right away
    let fitted = dir.path().join("fit.csv");
    ok(&posescope(&[
        "fit",
        stack.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--csv",
        fitted.to_str().unwrap(),
        "--search",
        "200",
    ]));
    assert_eq!(posescope::io::read_pose_csv(&fitted).unwrap().len(), 10);
    // a finished run resumes to the same files
    let before = std::fs::read(&model).unwrap();
    let o = learn(&["--resume"]);
    ok(&o);
    assert!(
        text(&o.stderr).contains("resuming at iteration 2 of 2"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(std::fs::read(&model).unwrap(), before);
    // a bad prior is one clear line
    let o = learn(&["--symmetry", "torus"]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("finite prior"),
        "{}",
        text(&o.stderr)
    );
}

/// `fit` on a whole-field image without `--pick` fits it as one particle, as
/// asked, but says that it is a field and how to fit its particles; a small
/// image gets no such warning.
#[test]
fn fitting_a_whole_field_as_one_frame_warns_and_names_pick() {
    use tiff::encoder::{colortype, TiffEncoder};
    let dir = tempfile::tempdir().unwrap();
    // written by the tiff crate's encoder, not by PoseScope: 1024 × 24 px
    // is a whole field (a side of 1024 px or more), 64 × 64 px is not
    let write = |name: &str, w: u32, h: u32| {
        let path = dir.path().join(name);
        let data: Vec<u16> = (0..w * h).map(|i| 100 + (i * 7919 % 13) as u16).collect();
        let mut file = std::fs::File::create(&path).unwrap();
        TiffEncoder::new(&mut file)
            .unwrap()
            .write_image::<colortype::Gray16>(w, h, &data)
            .unwrap();
        path.display().to_string()
    };
    let csv = dir.path().join("poses.csv").display().to_string();
    for (path, field) in [
        (write("wide.tif", 1024, 24), true),
        (write("small.tif", 64, 64), false),
    ] {
        let o = posescope(&[
            "fit",
            &path,
            "--no-refine",
            "--device",
            "cpu",
            "--csv",
            &csv,
        ]);
        let err = text(&o.stderr);
        let hint = format!("posescope fit {path} --pick");
        assert_eq!(
            err.contains("is a whole field") && err.contains(&hint),
            field,
            "{path}: {err}"
        );
    }
}

/// `posescope FILE` (what a desktop's "Open with" runs) opens the viewer on
/// the file, as `posescope view FILE` does, instead of failing as an
/// unknown subcommand; with no display it says so.
#[cfg(feature = "gui")]
#[test]
fn a_file_without_a_subcommand_opens_the_viewer() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("some.tif").display().to_string();
    for args in [vec![file.as_str()], vec!["view", file.as_str()]] {
        let o = Command::new(env!("CARGO_BIN_EXE_posescope"))
            .args(&args)
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .output()
            .expect("run posescope");
        let err = text(&o.stderr);
        assert!(!o.status.success());
        assert!(err.contains("no display found"), "{args:?}: {err}");
    }
    // subcommands still win
    let o = posescope(&["info", &file]);
    assert!(text(&o.stderr).contains("some.tif"), "{}", text(&o.stderr));
}

/// `info` describes a file whose frame is above the frame limit (it reads
/// headers only) and says that the other commands refuse it; `--stats`,
/// which reads the frames, refuses it with the limit named.
#[test]
fn info_describes_a_frame_above_the_limit() {
    // a little-endian TIFF header, written here by hand: one 40000 × 40000
    // 8-bit Deflate page whose single strip (never decoded) is 400 kB, the
    // least the reader believes can hold 1.6 GB (at most 4096× expansion)
    let mut b: Vec<u8> = b"II*\0".to_vec();
    b.extend(8u32.to_le_bytes());
    let entries: [(u16, u16, u32); 9] = [
        (256, 4, 40_000),  // ImageWidth
        (257, 4, 40_000),  // ImageLength
        (258, 3, 8),       // BitsPerSample
        (259, 3, 8),       // Compression: Deflate
        (262, 3, 1),       // Photometric: black is zero
        (273, 4, 0),       // StripOffsets (patched below)
        (277, 3, 1),       // SamplesPerPixel
        (278, 4, 40_000),  // RowsPerStrip
        (279, 4, 400_000), // StripByteCounts
    ];
    let data_at = 8 + 2 + entries.len() as u32 * 12 + 4;
    b.extend((entries.len() as u16).to_le_bytes());
    for (tag, kind, value) in entries {
        let value = if tag == 273 { data_at } else { value };
        b.extend(tag.to_le_bytes());
        b.extend(kind.to_le_bytes());
        b.extend(1u32.to_le_bytes());
        if kind == 3 {
            b.extend((value as u16).to_le_bytes());
            b.extend([0, 0]);
        } else {
            b.extend(value.to_le_bytes());
        }
    }
    b.extend(0u32.to_le_bytes());
    b.resize(b.len() + 400_000, 0);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.tif");
    std::fs::write(&path, &b).unwrap();
    let p = path.to_str().unwrap();
    let o = posescope(&["info", p]);
    ok(&o);
    let out = text(&o.stdout);
    assert!(out.contains("40000 × 40000 px"), "{out}");
    assert!(
        out.contains("above the limit") && out.contains("refuse"),
        "{out}"
    );
    let o = posescope(&["info", "--stats", p]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("max_frame_bytes"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn fit_says_why_frames_failed_and_fails_when_nothing_was_fitted() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = |name: &str| format!("{}/tests/fixtures/tiff/{name}", env!("CARGO_MANIFEST_DIR"));
    let (nan, tiny) = (fixture("all_nan.tif"), fixture("tiny_5x3.tif"));
    let csv = dir.path().join("poses.csv");
    let csv = csv.to_str().unwrap();
    // nothing can be fitted: a failed command, each reason on stderr, and the CSV still written
    let o = posescope(&["fit", &nan, &tiny, "--csv", csv]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("all_nan.tif frame 0: every pixel is non-finite"),
        "{err}"
    );
    assert!(
        err.contains("tiny_5x3.tif frame 0: cannot fit this frame: a 5×3 frame is too small"),
        "{err}"
    );
    assert!(err.contains("nothing was fitted: 2 frames failed"), "{err}");
    assert_eq!(posescope::io::read_pose_csv(csv.as_ref()).unwrap().len(), 2);
    // one good frame beside them: the command succeeds and still names the failure
    let good = format!(
        "{}/tests/fixtures/tiff/gray12.tif",
        env!("CARGO_MANIFEST_DIR")
    );
    let o = posescope(&["fit", &nan, &good, "--csv", csv]);
    ok(&o);
    assert!(text(&o.stderr).contains("all_nan.tif frame 0"));
}

/// A Picasso picked file (h5py: tests/fixtures/locs/make_locs.py): each
/// group is a particle, at its centroid, unless --ignore-groups.
#[test]
fn a_picasso_picked_file_is_fitted_group_by_group() {
    let dir = tempfile::tempdir().unwrap();
    let table = format!(
        "{}/tests/fixtures/locs/picasso_groups.hdf5",
        env!("CARGO_MANIFEST_DIR")
    );
    let csv = dir.path().join("poses.csv");
    let o = posescope(&["info", &table]);
    ok(&o);
    assert!(
        text(&o.stdout).contains("groups      3"),
        "{}",
        text(&o.stdout)
    );
    let (o, rows) = fit_rows(&table, &csv, &[]);
    assert!(
        text(&o.stderr).contains("particles: the table's 3 groups"),
        "{}",
        text(&o.stderr)
    );
    // the groups' centres, camera px × 130 nm, in group order
    let centres = [(12.0, 14.0), (30.0, 16.0), (20.0, 34.0)];
    assert_eq!(rows.len(), 3);
    for (r, (cx, cy)) in rows.iter().zip(centres) {
        assert!(r.get("error").is_some_and(str::is_empty), "{r:?}");
        let x: f64 = r.get("x_nm").unwrap().parse().unwrap();
        let y: f64 = r.get("y_nm").unwrap().parse().unwrap();
        assert!(
            (x - cx * 130.0).hypot(y - cy * 130.0) < 5.0,
            "{r:?} vs ({cx}, {cy}) px"
        );
        // each torus is tilted 30° from the view (its axis up to ± and the mirror)
        let tilt = r.pose.q.axis()[2].abs().acos().to_degrees();
        assert!((tilt - 30.0).abs() < 6.0, "tilt {tilt}° {r:?}");
    }
    let o = posescope(&[
        "fit",
        &table,
        "--ignore-groups",
        "--device",
        "cpu",
        "--csv",
        csv.to_str().unwrap(),
    ]);
    ok(&o);
    assert!(text(&o.stderr).contains("particles: picked automatically"));
    // learn takes the groups as its particles too
    let o = posescope(&[
        "learn",
        &table,
        "--out",
        dir.path().join("learned.ply").to_str().unwrap(),
        "--poses",
        dir.path().join("learned.csv").to_str().unwrap(),
        "--points",
        "48",
        "--iterations",
        "1",
        "--search",
        "100",
        "--steps",
        "2",
    ]);
    ok(&o);
    assert!(
        text(&o.stderr).contains("3 picked particles"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn orientations_summarise_the_tilts_of_pose_csvs() {
    use posescope::geometry::{Pose, Quat};
    use posescope::io::{write_pose_csv, PoseRow};
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("poses.csv");
    // tilts 35°, 60° (seen from below: 120°) and 90°, and a failed row
    let rows: Vec<PoseRow> = [(10.0, 35.0), (-40.0, 120.0), (75.0, 90.0)]
        .iter()
        .enumerate()
        .map(|(k, &(rot, tilt))| {
            PoseRow::new(
                k,
                Pose::new(Quat::from_euler_zyz_deg(rot, tilt, 5.0), [0.0; 2]),
                1.5,
            )
        })
        .chain([PoseRow::failed(3, "no signal")])
        .collect();
    write_pose_csv(&csv, &rows).unwrap();
    let csv = csv.to_str().unwrap();
    let o = posescope(&["orientations", csv, "--bins", "3", "--json"]);
    ok(&o);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["n"], 3);
    assert!(
        (j["median_deg"].as_f64().unwrap() - 60.0).abs() < 1e-9,
        "{j}"
    );
    // 1 − cos: 0.18, 0.5, 1 against the steps 1/3, 2/3, 1: D = 1/3
    assert!(
        (j["ks_d"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9,
        "{j}"
    );
    let counts: Vec<u64> = (0..3)
        .map(|b| j["bins"][b]["count"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [0, 1, 2]);
    let png = dir.path().join("fig.png");
    let o = posescope(&["orientations", csv, "--png", png.to_str().unwrap()]);
    ok(&o);
    let fig = image::open(&png).unwrap();
    assert_eq!((fig.width(), fig.height()), (820, 446));
    let out = text(&o.stdout);
    assert!(out.contains("1 failed rows left out"), "{out}");
    assert!(out.contains("3 particles, median tilt 60.0°"), "{out}");
    // a 3D table's fits (z_locs > 0) know which way each axis tilts: far
    // ends (+z) toward 50–70° say so; the same axes as lines cannot
    let leaning = |z_locs: usize| -> Vec<PoseRow> {
        (0..12)
            .map(|k| {
                let (t, a) = (
                    (40.0 + 2.5 * k as f64).to_radians(),
                    (50.0 + 1.7 * k as f64).to_radians(),
                );
                let axis = [t.sin() * a.cos(), t.sin() * a.sin(), t.cos()];
                // the sign of the axis is free: half of them stored as −axis
                let axis = if k % 2 == 0 { axis } else { axis.map(|v| -v) };
                let q = Quat::from_symmetry_axis(axis, 0.1 * k as f64).unwrap();
                let mut row = PoseRow::new(k, Pose::new(q, [0.0; 2]), 1.5);
                row.set("z_locs", z_locs);
                row
            })
            .collect()
    };
    let z_csv = dir.path().join("z.csv");
    write_pose_csv(&z_csv, &leaning(300)).unwrap();
    let o = posescope(&["orientations", z_csv.to_str().unwrap()]);
    ok(&o);
    let out = text(&o.stdout);
    assert!(
        out.contains("tilt directions from z (12 axes tilted ≥ 30°): tilt toward 59°"),
        "{out}"
    );
    let o = posescope(&["orientations", z_csv.to_str().unwrap(), "--json"]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["in_plane"]["tilt_direction"]["n"], 12, "{j}");
    write_pose_csv(&z_csv, &leaning(0)).unwrap();
    let o = posescope(&["orientations", z_csv.to_str().unwrap()]);
    ok(&o);
    assert!(
        !text(&o.stdout).contains("tilt directions"),
        "{}",
        text(&o.stdout)
    );
    // nothing fitted: an error naming the file
    let failed = dir.path().join("failed.csv");
    write_pose_csv(&failed, &[PoseRow::failed(0, "no signal")]).unwrap();
    let o = posescope(&["orientations", failed.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("failed.csv"),
        "{}",
        text(&o.stderr)
    );
}

/// `posescope fit TABLE --device cpu --csv CSV EXTRA…`, which must succeed,
/// and the rows it wrote.
fn fit_rows(
    table: &str,
    csv: &std::path::Path,
    extra: &[&str],
) -> (std::process::Output, Vec<posescope::io::PoseRow>) {
    let mut args = vec!["fit", table, "--device", "cpu", "--csv"];
    args.push(csv.to_str().unwrap());
    args.extend(extra);
    let o = posescope(&args);
    ok(&o);
    (o, posescope::io::read_pose_csv(csv).unwrap())
}

/// The row of the particle fitted within 10 nm of (`cx`, `cy`).
fn row_at(rows: &[posescope::io::PoseRow], cx: f64, cy: f64) -> &posescope::io::PoseRow {
    rows.iter()
        .find(|r| {
            let x: f64 = r.get("x_nm").unwrap().parse().unwrap();
            let y: f64 = r.get("y_nm").unwrap().parse().unwrap();
            (x - cx).hypot(y - cy) < 10.0
        })
        .unwrap_or_else(|| panic!("no particle at ({cx}, {cy}): {rows:?}"))
}

#[test]
fn a_picasso_3d_table_is_fitted_with_its_z_and_lpz() {
    // make_locs.py's three tilted tori as Picasso writes them (h5py): x, y
    // in camera pixels, z and lpz in nm
    let dir = tempfile::tempdir().unwrap();
    let table = format!(
        "{}/tests/fixtures/locs/picasso_3d.hdf5",
        env!("CARGO_MANIFEST_DIR")
    );
    let (o, rows) = fit_rows(&table, &dir.path().join("poses.csv"), &[]);
    assert!(
        text(&o.stderr).contains("its axial precision column"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(rows.len(), 3);
    for ((cx, cy), tilt, azim) in [
        ((2000.0, 2000.0), 40.0f64, 30.0f64),
        ((4000.0, 2200.0), 55.0, 200.0),
        ((3000.0, 4200.0), 35.0, 120.0),
    ] {
        let r = row_at(&rows, cx, cy);
        let euler = r.pose.q.to_euler_zyz_deg().1;
        let got = euler.min(180.0 - euler);
        let toward: f64 = r.get("tilt_toward_deg").unwrap().parse().unwrap();
        let off = (toward - azim).rem_euclid(360.0);
        assert!(
            (got - tilt).abs() < 6.0 && off.min(360.0 - off) < 10.0,
            "tilt {got}° toward {toward}°, not {tilt}° toward {azim}°: {r:?}"
        );
        let z: f64 = r.get("z_nm").unwrap().parse().unwrap();
        assert!((z - 150.0).abs() < 10.0, "z centre {z} {r:?}");
    }
}

#[test]
fn z_of_a_3d_table_tells_each_axis_from_its_mirror() {
    let dir = tempfile::tempdir().unwrap();
    let table = format!(
        "{}/tests/fixtures/locs/thunderstorm_3d.csv",
        env!("CARGO_MANIFEST_DIR")
    );
    let o = posescope(&["info", &table]);
    ok(&o);
    assert!(
        text(&o.stdout).contains("axial precision from its column"),
        "{}",
        text(&o.stdout)
    );
    // make_locs.py's three particles: centre (nm), tilt and azimuth of the axis (°)
    let truth = [
        ((2000.0, 2000.0), 40.0f64, 30.0f64),
        ((4000.0, 2200.0), 55.0, 200.0),
        ((3000.0, 4200.0), 35.0, 120.0),
    ];
    let fit = |extra: &[&str]| fit_rows(&table, &dir.path().join("poses.csv"), extra);
    let (o, rows) = fit(&[]);
    assert!(text(&o.stderr).contains("uses z"), "{}", text(&o.stderr));
    assert_eq!(rows.len(), 3);
    for ((cx, cy), tilt, azim) in truth {
        let r = row_at(&rows, cx, cy);
        let z_locs: usize = r.get("z_locs").unwrap().parse().unwrap();
        assert!(z_locs >= 380, "{r:?}");
        let z: f64 = r.get("z_nm").unwrap().parse().unwrap();
        assert!((z - 150.0).abs() < 10.0, "z centre {z} {r:?}");
        // the localisation fit's axis standard error (the likelihood's sandwich)
        let sd: f64 = r.get("axis_sd_deg").unwrap().parse().unwrap();
        // the way the axis tilts, in its own column
        let toward: f64 = r.get("tilt_toward_deg").unwrap().parse().unwrap();
        let off = (toward - azim).rem_euclid(360.0);
        assert!(off.min(360.0 - off) < 10.0, "tilts toward {toward}° {r:?}");
        assert!(sd > 0.1 && sd < 5.0, "axis sd {sd}° {r:?}");
        let (t, a) = (tilt.to_radians(), azim.to_radians());
        let n = [t.sin() * a.cos(), t.sin() * a.sin(), t.cos()];
        let axis = r.pose.q.axis();
        let cos = |m: [f64; 3]| (axis[0] * m[0] + axis[1] * m[1] + axis[2] * m[2]).abs();
        // the axis itself (up to ±), not its mirror (x, y, −z), 70–110° away
        let error = cos(n).min(1.0).acos().to_degrees();
        assert!(error < 6.0, "axis {axis:?} is {error}° from {n:?}");
        assert!(cos(n) > cos([n[0], n[1], -n[2]]));
    }
    // three particles are too few to check z's scale against the model
    assert!(
        text(&o.stdout).contains("z scale: too few particles"),
        "{}",
        text(&o.stdout)
    );
    // --z-scale multiplies z first: the centres' z about halves (the
    // squeezed particles no longer match the torus, so not exactly)
    let (o, rows) = fit(&["--z-scale", "0.5"]);
    assert!(text(&o.stderr).contains("z × 0.5"), "{}", text(&o.stderr));
    for r in &rows {
        let z: f64 = r.get("z_nm").unwrap().parse().unwrap();
        assert!((z - 75.0).abs() < 25.0, "z centre {z} {r:?}");
    }
    let o = posescope(&["fit", &table, "--z-scale", "0", "--csv", "x.csv"]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("not a factor"),
        "{}",
        text(&o.stderr)
    );
    // --flip-z negates z first: every particle takes its mirror, and the
    // centres' z changes sign
    let (o, rows) = fit(&["--flip-z"]);
    assert!(text(&o.stderr).contains("z negated"), "{}", text(&o.stderr));
    for ((cx, cy), tilt, azim) in truth {
        let r = row_at(&rows, cx, cy);
        let z: f64 = r.get("z_nm").unwrap().parse().unwrap();
        assert!((z + 150.0).abs() < 10.0, "z centre {z} {r:?}");
        let (t, a) = (tilt.to_radians(), azim.to_radians());
        let mirror = [t.sin() * a.cos(), t.sin() * a.sin(), -t.cos()];
        let axis = r.pose.q.axis();
        let cos = (axis[0] * mirror[0] + axis[1] * mirror[1] + axis[2] * mirror[2]).abs();
        let error = cos.min(1.0).acos().to_degrees();
        assert!(
            error < 6.0,
            "axis {axis:?} is {error}° from the mirror {mirror:?}"
        );
    }
    // told to ignore z, the fit is the 2D one and says nothing of z
    let (o, rows) = fit(&["--ignore-z"]);
    assert!(!text(&o.stderr).contains("uses z"));
    assert!(
        rows.iter().all(|r| r.get("z_locs") == Some("0")),
        "{rows:?}"
    );
}
