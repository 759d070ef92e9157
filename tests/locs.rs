//! Localisation tables from other tools: Picasso HDF5 + YAML (written by
//! h5py) and ThunderSTORM, Zeiss ZEN, SMAP, SMLM-challenge and plain CSV
//! (written by Python's csv module), see
//! tests/fixtures/locs/make_locs.py. Row i: x = 10 + 0.5 i, y = 20 + 0.25 i
//! camera px at 130 nm/px, precision 13 nm, frame i / 4.

use std::path::PathBuf;

use posescope::io::locs::{open_table, picasso, LocTable, TableLimits, TableOptions};
use posescope::io::IoError;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/locs")
        .join(name)
}

fn open(name: &str) -> Result<LocTable, IoError> {
    open_table(&fixture(name), &TableOptions::default())
}

/// x and y of row `i` in nm.
fn truth(i: usize) -> (f32, f32) {
    let i = i as f32;
    ((10.0 + 0.5 * i) * 130.0, (20.0 + 0.25 * i) * 130.0)
}

fn assert_rows(t: &LocTable, rows: &[usize]) {
    assert_eq!(t.len(), rows.len(), "{:?}", t.warnings);
    for (k, &i) in rows.iter().enumerate() {
        let (x, y) = truth(i);
        assert!(
            (t.x_nm[k] - x).abs() < 0.01,
            "row {i}: x {} vs {x}",
            t.x_nm[k]
        );
        assert!(
            (t.y_nm[k] - y).abs() < 0.01,
            "row {i}: y {} vs {y}",
            t.y_nm[k]
        );
    }
}

#[test]
fn picasso_file_with_its_sidecar() {
    let t = open("picasso.hdf5").unwrap();
    assert_eq!(t.format, "Picasso HDF5");
    assert_rows(&t, &(0..40).collect::<Vec<_>>());
    assert_eq!(t.pixel_size_nm, Some(130.0));
    assert_eq!(t.camera_px, Some((48, 64)));
    assert_eq!(t.frames, Some(10));
    let p = t.precision_nm.as_ref().unwrap();
    assert!((p[3] - 13.0).abs() < 1e-3, "{}", p[3]);
    assert_eq!(t.frame.as_ref().unwrap()[13], 3);
    assert_eq!(t.photons.as_ref().unwrap()[2], 1002.0);
    assert!(t.group.is_none() && t.z_nm.is_none());
    let s = t.summary();
    assert_eq!(s.rows, 40);
    assert_eq!(s.frames_seen, Some(10));
    assert!((s.median_precision_nm.unwrap() - 13.0).abs() < 1e-3);
    assert!((s.extent_nm[0] - 1300.0).abs() < 0.01 && (s.extent_nm[2] - 3835.0).abs() < 0.01);
}

#[test]
fn picked_picasso_file_chunked_with_group_and_z() {
    let t = open("picasso_picked.hdf5").unwrap();
    let rows: Vec<usize> = (0..40).filter(|&i| i != 5).collect();
    assert_rows(&t, &rows);
    assert_eq!(t.skipped_rows, 1);
    assert!(t.warnings.iter().any(|w| w.contains("1 row skipped")));
    assert_eq!(t.group.as_ref().unwrap()[38], 3);
    // z and lpz are in nm in Picasso files, not scaled by the pixel size
    assert!((t.z_nm.as_ref().unwrap()[0] + 50.0).abs() < 1e-4);
    let lpz = t.precision_z_nm.as_ref().expect("lpz is read");
    assert_eq!(lpz.len(), rows.len());
    for (k, &i) in rows.iter().enumerate() {
        if i == 7 {
            assert!(lpz[k].is_nan(), "a NaN lpz stays unknown: {}", lpz[k]);
        } else {
            assert_eq!(lpz[k], (20 + i % 7) as f32, "row {i}");
        }
    }
}

#[test]
fn the_summary_counts_frames_up_to_the_largest_index() {
    // found by cargo-fuzz: a frame index of u32::MAX overflowed `max + 1`
    let t = LocTable {
        x_nm: vec![0.0, 1.0],
        y_nm: vec![0.0, 1.0],
        frame: Some(vec![3, u32::MAX]),
        ..LocTable::default()
    };
    assert_eq!(t.summary().frames_seen, Some(1 << 32));
}

#[test]
fn picasso_without_sidecar_asks_for_the_pixel_size() {
    let e = open("picasso_noyaml.hdf5").unwrap_err();
    assert!(matches!(e, IoError::NeedsPixelSize { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("picasso_noyaml.yaml")
            && msg.contains("missing")
            && msg.contains("--pixel-size"),
        "{msg}"
    );
    let opts = TableOptions {
        pixel_size_nm: Some(130.0),
        ..TableOptions::default()
    };
    let t = open_table(&fixture("picasso_noyaml.hdf5"), &opts).unwrap();
    assert_rows(&t, &(0..40).collect::<Vec<_>>());
}

#[test]
fn bad_picasso_files_give_clear_errors() {
    let e = open("picasso_contradict.hdf5").unwrap_err();
    assert!(e.to_string().contains("contradictory Pixelsize"), "{e}");
    let e = open("picasso_truncated.hdf5").unwrap_err();
    assert!(e.to_string().contains("picasso_truncated.hdf5"), "{e}");
    let e = open("not_picasso.hdf5").unwrap_err();
    assert!(e.to_string().contains("no /locs dataset"), "{e}");
}

#[test]
fn tables_over_the_cap_are_refused_up_front() {
    let opts = TableOptions {
        limits: TableLimits { max_rows: 10 },
        ..TableOptions::default()
    };
    for name in ["picasso.hdf5", "thunderstorm.csv"] {
        let e = open_table(&fixture(name), &opts).unwrap_err();
        assert!(
            matches!(e, IoError::LimitExceeded { .. }) && e.to_string().contains("at most 10"),
            "{name}: {e}"
        );
    }
}

#[test]
fn thunderstorm_csv_reads_units_and_skips_bad_rows() {
    let t = open("thunderstorm.csv").unwrap();
    assert_eq!(t.format, "ThunderSTORM CSV");
    let rows: Vec<usize> = (0..40).filter(|&i| i != 7 && i != 8).collect();
    assert_rows(&t, &rows);
    assert_eq!(t.skipped_rows, 2);
    assert_eq!(t.precision_nm.as_ref().unwrap()[0], 13.0);
    assert_eq!(t.frame.as_ref().unwrap()[0], 1);
    assert_eq!(t.photons.as_ref().unwrap()[1], 1001.0);
    assert!(t.columns.iter().any(|c| c == "uncertainty_xy [nm]"));
}

#[test]
fn zeiss_smap_and_smlm_challenge_tables_read_their_own_columns() {
    let rows: Vec<usize> = (0..40).filter(|&i| i != 3).collect();
    for (name, format, precision, z) in [
        ("elyra.txt", "Zeiss ZEN (Elyra)", Some(13.0), false),
        ("smap.csv", "SMAP CSV", Some(13.0), true),
        ("smlm_challenge.csv", "SMLM challenge CSV", None, true),
    ] {
        let t = open(name).unwrap();
        assert_eq!(t.format, format, "{name}");
        assert_rows(&t, &rows);
        assert_eq!(t.skipped_rows, 1, "{name}");
        assert!(
            !t.warnings.iter().any(|w| w.contains("no unit")),
            "{name}: every column has its unit: {:?}",
            t.warnings
        );
        assert_eq!(t.precision_nm.as_ref().map(|p| p[0]), precision, "{name}");
        assert_eq!(t.z_nm.is_some(), z, "{name}");
        // Elyra's "First Frame", not its "Number Frames"; photons from
        // "Number Photons", "phot" and "intensity"
        assert_eq!(t.frame.as_ref().unwrap()[4], 2, "{name}");
        assert_eq!(t.photons.as_ref().unwrap()[1], 1001.0, "{name}");
    }
}

#[test]
fn a_thunderstorm_3d_table_has_z_and_its_axial_precision() {
    let t = open("thunderstorm_3d.csv").unwrap();
    assert_eq!(t.format, "ThunderSTORM CSV");
    assert_eq!(t.len(), 1260);
    let z = t.z_nm.as_ref().unwrap();
    assert!(z.iter().all(|z| (-400.0..600.0).contains(z)));
    let pz = t.precision_z_nm.as_ref().unwrap();
    assert_eq!(pz.len(), 1260);
    assert!(pz.iter().all(|&p| p == 25.0));
    assert_eq!(t.precision_nm.as_ref().unwrap()[0], 10.0);
    // an axial precision without a z means nothing and is not kept
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no_z.csv");
    std::fs::write(&path, "x [nm],y [nm],uncertainty_z [nm]\n1,2,30\n3,4,30\n").unwrap();
    let t = open_table(&path, &TableOptions::default()).unwrap();
    assert!(t.z_nm.is_none() && t.precision_z_nm.is_none());
}

#[test]
fn plain_tsv_in_micrometres() {
    let t = open("plain.tsv").unwrap();
    assert_eq!(t.format, "TSV");
    assert_rows(&t, &(0..40).collect::<Vec<_>>());
    assert_eq!(t.precision_nm.as_ref().unwrap()[5], 13.0);
}

#[test]
fn csv_errors_name_the_problem() {
    let e = open("wrong_columns.csv").unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("no x and y columns") && msg.contains("columns found: a, b, intensity"),
        "{msg}"
    );
    let e = open("header_only.csv").unwrap_err();
    assert!(e.to_string().contains("no localisations"), "{e}");
}

#[test]
fn picasso_writer_round_trips_through_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.hdf5");
    let locs: Vec<picasso::PicassoLoc> = (0..100)
        .map(|i| picasso::PicassoLoc {
            frame: i / 3,
            x: 5.0 + i as f32 * 0.1,
            y: 7.0,
            photons: 900.0,
            sx: 1.0,
            sy: 1.0,
            bg: 3.0,
            lpx: 0.05,
            lpy: 0.15,
            z: None,
        })
        .collect();
    let meta = picasso::Sidecar {
        width: Some(256),
        height: Some(128),
        frames: Some(34),
        pixel_size_nm: Some(100.0),
    };
    picasso::write(&path, &locs, &meta, "PoseScope test").unwrap();
    let t = open_table(&path, &TableOptions::default()).unwrap();
    assert_eq!(t.len(), 100);
    assert!((t.x_nm[10] - 600.0).abs() < 1e-3);
    assert!((t.precision_nm.as_ref().unwrap()[0] - 10.0).abs() < 1e-3);
    assert_eq!(t.frame.as_ref().unwrap()[99], 33);
    assert_eq!(t.camera_px, Some((256, 128)));
    assert_eq!(
        picasso::read_sidecar(&picasso::sidecar(&path)).unwrap(),
        meta
    );
}

#[test]
fn picasso_writer_writes_z_and_lpz_in_nm_for_3d_localisations() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w3.hdf5");
    let loc = |i: u32, lpz: f32| picasso::PicassoLoc {
        frame: i,
        x: 5.0,
        y: 7.0,
        photons: 900.0,
        lpx: 0.1,
        lpy: 0.1,
        z: Some(picasso::AxialLoc {
            z: -250.0 + i as f32,
            lpz,
        }),
        ..Default::default()
    };
    // an unknown axial precision (NaN) reads back as unknown
    let locs = vec![loc(0, 30.0), loc(1, f32::NAN), loc(2, 22.5)];
    let meta = picasso::Sidecar {
        pixel_size_nm: Some(100.0),
        ..Default::default()
    };
    picasso::write(&path, &locs, &meta, "PoseScope test").unwrap();
    let t = open_table(&path, &TableOptions::default()).unwrap();
    assert!(t.columns.iter().any(|c| c == "z") && t.columns.iter().any(|c| c == "lpz"));
    assert_eq!(t.z_nm.as_deref(), Some(&[-250.0f32, -249.0, -248.0][..]));
    let lpz = t.precision_z_nm.unwrap();
    assert_eq!((lpz[0], lpz[2]), (30.0, 22.5));
    assert!(lpz[1].is_nan());
    // a table is 3D or not: a mix is refused, naming the file
    let mixed = vec![loc(0, 30.0), picasso::PicassoLoc::default()];
    let e = picasso::write(&path, &mixed, &meta, "PoseScope test").unwrap_err();
    assert!(
        e.to_string().contains("w3.hdf5") && e.to_string().contains("a z"),
        "{e}"
    );
}

/// Every truncation and 300 seeded single-byte flips of the Picasso and CSV
/// fixtures: each open ends in a table or a clear error naming the file —
/// never a panic, not even one that the loader's `catch_unwind` turns into
/// an error (a panic hook counts them on this test's thread), and never
/// more rows than the file holds.
#[test]
fn truncated_and_bit_flipped_tables_fail_cleanly() {
    use rand::{Rng, SeedableRng};
    use std::sync::atomic::{AtomicUsize, Ordering};
    static PANICS: AtomicUsize = AtomicUsize::new(0);
    let me = std::thread::current().id();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() == me {
            PANICS.fetch_add(1, Ordering::Relaxed);
        }
        previous(info);
    }));
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
    for name in [
        "picasso.hdf5",
        "picasso_picked.hdf5",
        "thunderstorm.csv",
        "elyra.txt",
        "smap.csv",
    ] {
        let bytes = std::fs::read(fixture(name)).unwrap();
        let ext = name.rsplit('.').next().unwrap();
        let path = dir.path().join(format!("t.{ext}"));
        // the sidecar, so that HDF5 damage is what is tested
        std::fs::copy(fixture("picasso.yaml"), dir.path().join("t.yaml")).unwrap();
        let check = |b: &[u8], what: &str| {
            std::fs::write(&path, b).unwrap();
            match open_table(&path, &TableOptions::default()) {
                Ok(t) => assert!(t.len() <= 40, "{name} {what}: {} rows", t.len()),
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.contains("t."), "{name} {what}: {msg}");
                }
            }
        };
        let step = (bytes.len() / 400).max(1);
        for cut in (0..bytes.len()).step_by(step) {
            check(&bytes[..cut], &format!("cut at {cut}"));
        }
        for _ in 0..300 {
            let mut b = bytes.clone();
            let at = rng.random_range(0..b.len());
            b[at] ^= rng.random_range(1..=255u8);
            check(&b, &format!("flip at {at}"));
        }
    }
    assert_eq!(
        PANICS.load(Ordering::Relaxed),
        0,
        "panics inside the loaders"
    );
}

#[test]
fn a_fuzzed_header_claiming_huge_records_is_refused_before_reading() {
    // cargo-fuzz (fuzz_locs_hdf5) found this 2.7 kB file: a corrupt data
    // address made hdf5-pure's streaming reader allocate 2.6 GB before it
    // found the file too short. Small files are now read whole, where every
    // address is checked against the bytes held. In a process limited to
    // 1.5 GB of address space, `info` must end with the error, not abort.
    let e = open("fuzz_oom_record.hdf5").unwrap_err().to_string();
    assert!(e.contains("fuzz_oom_record.hdf5"), "{e}");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v 1500000; exec '{}' info '{}'",
            env!("CARGO_BIN_EXE_posescope"),
            fixture("fuzz_oom_record.hdf5").display()
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("corrupt"), "{stderr}");
}
