//! Tests of the shape generators and point-cloud file formats.

use std::f64::consts::{PI, TAU};
use std::path::{Path, PathBuf};

use posescope::geometry::{Pose, Quat, Symmetry, SymmetryGroup};
use posescope::shapes::{Model, ShapeError, TorusSpec, Units};

fn spec(big: f64, small: f64) -> TorusSpec {
    TorusSpec {
        major_radius: big,
        tube_radius: small,
        units: Units::Px,
    }
}

/// Tube angle coordinates of a torus point: (azimuth u in [0, 2π), cos v,
/// distance from the tube centre circle).
fn torus_coords(p: [f32; 3], big: f64) -> (f64, f64, f64) {
    let [x, y, z] = p.map(f64::from);
    let rho = x.hypot(y);
    let d = (rho - big).hypot(z);
    let cos_v = if d > 0.0 { (rho - big) / d } else { 1.0 };
    (y.atan2(x).rem_euclid(TAU), cos_v, d)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Loads a file that must fail; checks the message names the file and
/// contains each of `needles`.
fn load_err(path: &Path, needles: &[&str]) -> ShapeError {
    let err = Model::load(path).expect_err("load should fail");
    let msg = err.to_string();
    let file = path.file_name().unwrap().to_string_lossy();
    assert!(
        msg.contains(&*file),
        "message does not name the file: {msg}"
    );
    for n in needles {
        assert!(msg.contains(n), "message lacks '{n}': {msg}");
    }
    err
}

// ---------------------------------------------------------------- generators

#[test]
fn torus_is_area_uniform() {
    let (big, small) = (20.0, 15.0);
    let n = 40_000;
    let m = Model::torus(spec(big, small), n, 1).unwrap();
    assert_eq!(m.len(), n);
    assert_eq!(m.symmetry, Symmetry::TORUS);
    assert!(m.weights.iter().all(|&w| w == 1.0));
    let (mut outer, mut sum_cos, mut quad, mut sum_z) = (0usize, 0.0, 0usize, 0.0);
    for p in &m.points {
        let (u, cos_v, _) = torus_coords(*p, big);
        if cos_v > 0.0 {
            outer += 1;
        }
        sum_cos += cos_v;
        if u < PI / 2.0 {
            quad += 1;
        }
        sum_z += f64::from(p[2]);
    }
    let nf = n as f64;
    // The area element is ∝ R + r·cos v, so the outer half (cos v > 0) holds
    // ∫_{-π/2}^{π/2}(R + r cos v)dv / ∫_0^{2π}(R + r cos v)dv = (πR + 2r)/(2πR)
    // ≈ 0.739 of the area (0.5 if v were uniform). Standard error ≈ 0.0022.
    let want_outer = (PI * big + 2.0 * small) / (2.0 * PI * big);
    let got_outer = outer as f64 / nf;
    assert!(
        (got_outer - want_outer).abs() < 0.01,
        "outer {got_outer} vs {want_outer}"
    );
    // E[cos v] = π r / (2π R) = r/(2R) = 0.375 (0 if uniform); s.e. ≈ 0.0035.
    let mean_cos = sum_cos / nf;
    assert!(
        (mean_cos - small / (2.0 * big)).abs() < 0.015,
        "E[cos v] {mean_cos}"
    );
    // Azimuth uniform; z symmetric.
    assert!((quad as f64 / nf - 0.25).abs() < 0.01);
    assert!((sum_z / nf).abs() < 0.2);
}

#[test]
fn torus_points_lie_on_the_surface() {
    let (big, small) = (30.0, 4.0);
    let m = Model::torus(spec(big, small), 5_000, 3).unwrap();
    for p in &m.points {
        let (_, _, d) = torus_coords(*p, big);
        assert!(
            (d - small).abs() < 1e-4,
            "distance {d} from the tube centre"
        );
    }
    let c = m.centroid();
    assert!(c.iter().all(|v| v.abs() < 1.0), "centroid {c:?}");
    assert!((m.radius() - (big + small)).abs() < 1.0);
}

#[test]
fn torus_is_deterministic_for_a_seed() {
    let a = Model::torus(spec(20.0, 5.0), 1000, 42).unwrap();
    let b = Model::torus(spec(20.0, 5.0), 1000, 42).unwrap();
    let c = Model::torus(spec(20.0, 5.0), 1000, 43).unwrap();
    assert_eq!(a.points, b.points);
    assert_ne!(a.points, c.points);
}

#[test]
fn torus_rejects_bad_parameters() {
    for (s, n) in [
        (spec(0.0, 0.0), 10),
        (spec(-1.0, 0.0), 10),
        (spec(5.0, 5.0), 10),
        (spec(5.0, -0.1), 10),
        (spec(f64::INFINITY, 1.0), 10),
        (spec(5.0, f64::NAN), 10),
        (spec(5.0, 1.0), 0),
        (spec(5.0, 1.0), 10_000_001),
    ] {
        assert!(Model::torus(s, n, 0).is_err(), "{s:?} n={n}");
    }
    let r = Model::torus(spec(5.0, 0.0), 10, 0).unwrap();
    assert!(r.points.iter().all(|p| p[2] == 0.0));
}

#[test]
fn torus_missing_arc_leaves_the_arc_empty() {
    let (big, small) = (20.0, 5.0);
    let m = Model::torus_missing_arc(spec(big, small), 4000, 90.0, 9).unwrap();
    assert_eq!(m.len(), 4000);
    assert_eq!(m.symmetry, Symmetry::new(SymmetryGroup::C1, true));
    let mut in_last_quadrant = 0;
    for p in &m.points {
        let (u, _, d) = torus_coords(*p, big);
        assert!((d - small).abs() < 1e-4);
        // No azimuth in [0°, 90°), up to f32 rounding at the edges.
        assert!(!(1e-5..PI / 2.0 - 1e-5).contains(&u), "azimuth {u}");
        if u > 1.5 * PI {
            in_last_quadrant += 1;
        }
    }
    // The rest is uniform: 1/3 of the points in each remaining quadrant.
    assert!((in_last_quadrant as f64 / 4000.0 - 1.0 / 3.0).abs() < 0.03);
    assert!(Model::torus_missing_arc(spec(big, small), 10, 360.0, 0).is_err());
    let full = Model::torus_missing_arc(spec(big, small), 10, 0.0, 0).unwrap();
    assert_eq!(full.len(), 10);
}

#[test]
fn torus_with_marker_adds_one_point() {
    let m = Model::torus_with_marker(spec(20.0, 5.0), 100, [25.0, 0.0, 0.0], 10.0, 1).unwrap();
    assert_eq!(m.len(), 101);
    assert_eq!(m.points[100], [25.0, 0.0, 0.0]);
    assert_eq!(m.weights[100], 10.0);
    assert_eq!(m.symmetry, Symmetry::new(SymmetryGroup::C1, true));
    let m = Model::torus_with_marker(spec(20.0, 5.0), 100, [20.0, 0.0, 5.0], 2.0, 1).unwrap();
    assert_eq!(m.symmetry, Symmetry::NONE);
    assert!(Model::torus_with_marker(spec(20.0, 5.0), 100, [20.0, 0.0, 5.0], f64::NAN, 1).is_err());
}

#[test]
fn torus_grid_is_stratified_and_on_the_surface() {
    let (big, small) = (20.0, 15.0);
    let m = Model::torus_grid(spec(big, small), 36, 200).unwrap();
    assert_eq!(m.len(), 36 * 200);
    let mut outer = 0;
    for p in &m.points {
        let (_, cos_v, d) = torus_coords(*p, big);
        assert!((d - small).abs() < 1e-4);
        if cos_v > 0.0 {
            outer += 1;
        }
    }
    let want = (PI * big + 2.0 * small) / (2.0 * PI * big);
    assert!((outer as f64 / m.len() as f64 - want).abs() < 0.01);
}

#[test]
fn ring_of_blobs_layout() {
    let m = Model::ring_of_blobs(50.0, 8, 16, 3.0, Units::Nm, 5).unwrap();
    assert_eq!(m.len(), 8 * 16);
    assert_eq!(m.units, Units::Nm);
    assert_eq!(m.symmetry, Symmetry::new(SymmetryGroup::Dihedral(8), true));
    // Blob k is centred at azimuth 45°·k on the circle of radius 50.
    for k in 0..8 {
        let blob = &m.points[k * 16..(k + 1) * 16];
        let mut c = [0.0f64; 3];
        for p in blob {
            for i in 0..3 {
                c[i] += f64::from(p[i]) / 16.0;
            }
        }
        let a = TAU * k as f64 / 8.0;
        assert!((c[0] - 50.0 * a.cos()).abs() < 1e-3 + 3.0 * 3.0 / 2.0);
        assert!(c[2].abs() < 1e-4, "blob is symmetric in z");
    }
    let m = Model::ring_of_blobs(50.0, 8, 5, 0.0, Units::Nm, 5).unwrap();
    assert_eq!(m.len(), 8 * 8, "rounded up to a multiple of 4");
}

// ---------------------------------------------------------------- transforms

#[test]
fn posed_rotates_scales_and_shifts() {
    let m = Model::from_points("p", vec![[1.0, 0.0, 0.0], [0.0, 2.0, 3.0]], Units::Px)
        .unwrap()
        .with_symmetry(Symmetry::TORUS);
    let q = Quat::from_axis_angle([0.0, 0.0, 1.0], PI / 2.0);
    let pose = Pose::new(q, [10.0, -5.0]);
    let out = m.posed(&pose, 2.0);
    let want = [[10.0, -3.0, 0.0], [6.0, -5.0, 6.0]];
    for (p, w) in out.points.iter().zip(want) {
        for i in 0..3 {
            assert!((f64::from(p[i]) - w[i]).abs() < 1e-5, "{p:?} vs {w:?}");
        }
    }
    assert_eq!(out.symmetry, Symmetry::NONE);
    assert_eq!(out.weights, m.weights);
}

#[test]
fn to_pixels_divides_nm_only() {
    let m = Model::from_points("n", vec![[100.0, -50.0, 20.0]], Units::Nm).unwrap();
    let px = m.to_pixels(10.0).unwrap();
    assert_eq!(px.units, Units::Px);
    assert_eq!(px.points[0], [10.0, -5.0, 2.0]);
    let again = px.to_pixels(10.0).unwrap();
    assert_eq!(again.points, px.points);
    assert!(m.to_pixels(0.0).is_err());
    assert!(m.to_pixels(f64::NAN).is_err());
}

#[test]
fn model_new_validates() {
    assert!(Model::new("a", vec![[0.0; 3]], vec![], Units::Px, Symmetry::NONE).is_err());
    assert!(Model::from_points("a", vec![[f32::NAN, 0.0, 0.0]], Units::Px).is_err());
    assert!(Model::new("a", vec![[0.0; 3]], vec![-1.0], Units::Px, Symmetry::NONE).is_err());
    let empty = Model::from_points("e", vec![], Units::Px).unwrap();
    assert!(empty.is_empty());
    assert_eq!(empty.centroid(), [0.0; 3]);
    assert_eq!(empty.radius(), 0.0);
}

// ---------------------------------------------------------------- files

#[test]
fn save_ply_then_load_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = Model::torus_with_marker(
        TorusSpec {
            major_radius: 80.0,
            tube_radius: 20.0,
            units: Units::Nm,
        },
        500,
        [90.0, 1.0, 0.0],
        5.0,
        3,
    )
    .unwrap();
    m.weights[7] = 0.25;
    let path = dir.path().join("model.ply");
    m.save_ply(&path).unwrap();
    let back = Model::load(&path).unwrap();
    assert_eq!(back.points, m.points);
    assert_eq!(back.weights, m.weights);
    assert_eq!(back.units, Units::Nm);
    assert_eq!(back.symmetry, m.symmetry);
    assert_eq!(back.name, "model");
    // No temporary files are left behind, and overwriting works.
    m.save_ply(&path).unwrap();
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1);
    // The torus symmetry survives too.
    let t = Model::torus(spec(10.0, 2.0), 50, 1).unwrap();
    let tp = dir.path().join("t.PLY");
    t.save_ply(&tp).unwrap();
    assert_eq!(Model::load(&tp).unwrap().symmetry, Symmetry::TORUS);
}

#[test]
fn save_ply_into_missing_directory_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let m = Model::torus(spec(10.0, 2.0), 5, 1).unwrap();
    let path = dir.path().join("nope").join("m.ply");
    let e = m.save_ply(&path).unwrap_err().to_string();
    assert!(e.contains("m.ply") && e.contains("cannot write"), "{e}");
}

const ASCII_PLY: &str = "ply\r
format ascii 1.0\r
comment made by hand\r
comment units nm\r
element vertex 3\r
property float x\r
property float y\r
property double z\r
property uchar red\r
property float intensity\r
element face 1\r
property list uchar int vertex_indices\r
end_header\r
1.5 2 3 255 0.5\r
-1 0 1e2 0 2\r
\r
0 0 0 10 1\r
3 0 1 2\r
";

#[test]
fn loads_ascii_ply_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "hand.ply", ASCII_PLY.as_bytes());
    let m = Model::load(&p).unwrap();
    assert_eq!(
        m.points,
        vec![[1.5, 2.0, 3.0], [-1.0, 0.0, 100.0], [0.0, 0.0, 0.0]]
    );
    assert_eq!(m.weights, vec![0.5, 2.0, 1.0]);
    assert_eq!(m.units, Units::Nm);
    assert_eq!(m.symmetry, Symmetry::NONE);
    assert_eq!(m.name, "hand");
}

fn binary_header(format: &str, count: u64, extra: &str) -> Vec<u8> {
    format!(
        "ply\nformat {format} 1.0\n{extra}element vertex {count}\nproperty float x\nproperty float y\nproperty float z\nend_header\n"
    )
    .into_bytes()
}

#[test]
fn loads_big_endian_and_skips_elements_before_vertex() {
    let dir = tempfile::tempdir().unwrap();
    // A list element before the vertices must be skipped record by record.
    let mut bytes = b"ply\nformat binary_big_endian 1.0\nelement junk 2\nproperty list uchar short ids\nproperty double t\nelement vertex 2\nproperty short x\nproperty int y\nproperty double z\nproperty ushort weight\nend_header\n".to_vec();
    bytes.push(2);
    bytes.extend(7i16.to_be_bytes());
    bytes.extend(8i16.to_be_bytes());
    bytes.extend(1.0f64.to_be_bytes());
    bytes.push(0);
    bytes.extend(2.0f64.to_be_bytes());
    for (x, y, z, w) in [(-3i16, 40_000i32, 0.5f64, 3u16), (1, 2, -7.25, 0)] {
        bytes.extend(x.to_be_bytes());
        bytes.extend(y.to_be_bytes());
        bytes.extend(z.to_be_bytes());
        bytes.extend(w.to_be_bytes());
    }
    let p = write(dir.path(), "be.ply", &bytes);
    let m = Model::load(&p).unwrap();
    assert_eq!(m.points, vec![[-3.0, 40_000.0, 0.5], [1.0, 2.0, -7.25]]);
    assert_eq!(m.weights, vec![3.0, 0.0]);
    assert_eq!(m.units, Units::Px);
}

#[test]
fn loads_obj_vertices() {
    let dir = tempfile::tempdir().unwrap();
    let obj = "# exported\n# units: nm\no thing\nv 1 2 3\nv -1.5 0 2 0.1 0.2 0.3\nvn 0 0 1\nvt 0.5 0.5\nf 1 2 1\n\nv 0 0 -4\n";
    let p = write(dir.path(), "thing.obj", obj.as_bytes());
    let m = Model::load(&p).unwrap();
    assert_eq!(
        m.points,
        vec![[1.0, 2.0, 3.0], [-1.5, 0.0, 2.0], [0.0, 0.0, -4.0]]
    );
    assert_eq!(m.weights, vec![1.0; 3]);
    assert_eq!(m.units, Units::Nm);
    let p = write(dir.path(), "bad.obj", b"v 1 2 3\nv 1 two 3\n");
    load_err(&p, &[":2:", "two"]);
}

#[test]
fn loads_csv_with_and_without_weight() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "w.csv",
        b"id,X,Y,Z,Weight\n0,1,2,3,0.5\n1,4,5,6,2\n",
    );
    let m = Model::load(&p).unwrap();
    assert_eq!(m.points, vec![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    assert_eq!(m.weights, vec![0.5, 2.0]);
    assert_eq!(m.units, Units::Px);
    let p = write(dir.path(), "nw.csv", b"z,y,x\n3,2,1\n\n6,5,4\n");
    let m = Model::load(&p).unwrap();
    assert_eq!(m.points, vec![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    assert_eq!(m.weights, vec![1.0, 1.0]);
    let p = write(dir.path(), "t.tsv", b"x\ty\tz\n1\t2\t3\n");
    assert_eq!(Model::load(&p).unwrap().points, vec![[1.0, 2.0, 3.0]]);
}

#[test]
fn loads_thunderstorm_csv_in_nm() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "\"id\",\"frame\",\"x [nm]\",\"y [nm]\",\"z [nm]\",\"sigma [nm]\",\"intensity [photon]\",\"uncertainty_xy [nm]\"\n\
               1,1,1200.5,800.25,-35.0,120.0,2500.0,8.5\n\
               2,1,1210.0,805.0,40.5,118.0,2300.0,9.1\n";
    let p = write(dir.path(), "ts.csv", csv.as_bytes());
    let m = Model::load(&p).unwrap();
    assert_eq!(m.units, Units::Nm);
    assert_eq!(
        m.points,
        vec![[1200.5, 800.25, -35.0], [1210.0, 805.0, 40.5]]
    );
    assert_eq!(m.weights, vec![1.0, 1.0]);
    // Microns are converted to nm.
    let p = write(
        dir.path(),
        "um.csv",
        "x [µm],y [µm],z [µm]\n1.5,2,0.25\n".as_bytes(),
    );
    let m = Model::load(&p).unwrap();
    assert_eq!(m.units, Units::Nm);
    assert_eq!(m.points, vec![[1500.0, 2000.0, 250.0]]);
}

// ---------------------------------------------------------------- bad input

#[test]
fn truncated_binary_ply_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let m = Model::torus(spec(10.0, 2.0), 100, 1).unwrap();
    let p = dir.path().join("cut.ply");
    m.save_ply(&p).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 10]).unwrap();
    load_err(&p, &["truncated"]);
    // Cut inside the header.
    std::fs::write(&p, &bytes[..40]).unwrap();
    load_err(&p, &["end_header"]);
}

#[test]
fn absurd_vertex_counts_are_rejected_without_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "huge.ply",
        &binary_header("binary_little_endian", 60_000_000, ""),
    );
    load_err(&p, &["60000000"]);
    // Below the limit but far beyond the file length: truncated, not OOM.
    let mut b = binary_header("binary_little_endian", 49_000_000, "");
    b.extend([0u8; 24]);
    let p = write(dir.path(), "liar.ply", &b);
    load_err(&p, &["truncated"]);
    let p = write(dir.path(), "liar_ascii.ply", &{
        let mut b = binary_header("ascii", 49_000_000, "");
        b.extend(b"1 2 3\n");
        b
    });
    load_err(&p, &["1 of 49000000"]);
    let p = write(
        dir.path(),
        "count.ply",
        b"ply\nformat ascii 1.0\nelement vertex 99999999999999999999999\nend_header\n",
    );
    load_err(&p, &[":3:"]);
}

#[test]
fn nan_coordinates_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "nan.csv", b"x,y,z\n1,2,3\n4,NaN,6\n");
    load_err(&p, &[":3:", "'y'"]);
    let p = write(dir.path(), "inf.obj", b"v 1 2 inf\n");
    load_err(&p, &[":1:"]);
    let mut b = binary_header("ascii", 2, "");
    b.extend(b"1 2 3\n4 5 nan\n");
    let p = write(dir.path(), "nan.ply", &b);
    load_err(&p, &["vertex 1", "z"]);
    let mut b = binary_header("binary_little_endian", 2, "");
    for v in [1.0f32, 2.0, 3.0, f32::INFINITY, 0.0, 0.0] {
        b.extend(v.to_le_bytes());
    }
    let p = write(dir.path(), "inf.ply", &b);
    load_err(&p, &["vertex 1", "x"]);
}

#[test]
fn missing_columns_and_bad_fields_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "noz.csv", b"x,y,weight\n1,2,3\n");
    load_err(&p, &["missing column 'z'"]);
    let p = write(dir.path(), "text.csv", b"x,y,z\n1,2,3\n1,abc,3\n");
    load_err(&p, &[":3:", "abc"]);
    let p = write(dir.path(), "short.csv", b"x,y,z\n1,2\n");
    load_err(&p, &[":2:", "'z'"]);
    let p = write(dir.path(), "negw.csv", b"x,y,z,weight\n1,2,3,-1\n");
    load_err(&p, &["weight"]);
    let p = write(dir.path(), "mixed.csv", b"x [nm],y [px],z [nm]\n1,2,3\n");
    load_err(&p, &["units"]);
    let p = write(dir.path(), "furlong.csv", b"x [furlong],y,z\n1,2,3\n");
    load_err(&p, &["furlong"]);
    let p = write(
        dir.path(),
        "noz.ply",
        b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\nend_header\n1 2\n",
    );
    load_err(&p, &["'z'"]);
    let mut b = binary_header("ascii", 2, "");
    b.extend(b"1 2 3\n4 5\n");
    let p = write(dir.path(), "few.ply", &b);
    load_err(&p, &["vertex 1"]);
    let p = write(dir.path(), "magic.ply", b"hello\n");
    load_err(&p, &["not a PLY"]);
}

#[test]
fn empty_and_unsupported_files_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["e.csv", "e.ply", "e.obj"] {
        let p = write(dir.path(), name, b"");
        load_err(&p, &[]);
    }
    let p = write(dir.path(), "header_only.csv", b"x,y,z\n");
    load_err(&p, &["no points"]);
    let p = write(dir.path(), "m.xyz", b"1 2 3\n");
    load_err(&p, &["unsupported"]);
    let missing = dir.path().join("missing.ply");
    load_err(&missing, &["cannot read"]);
}
