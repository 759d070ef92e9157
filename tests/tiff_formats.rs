//! TIFF variants that microscopes and common tools write: packed bit depths,
//! float16, palettes, bilevel and CCITT G4, JPEG, CMYK and L*a*b* (WebP is
//! refused by name), ImageJ and OME hyperstacks. The fixtures
//! come from independent writers (tests/fixtures/tiff/make_formats.py:
//! tifffile and Pillow/libtiff); every grey one holds
//! `v(x, y) = (7x + 13y) mod 2^bits`, 37 × 5 px.

use std::path::PathBuf;

use posescope::io::{open, Frame, SampleType};

const W: usize = 37;
const H: usize = 5;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tiff")
        .join(name)
}

fn pattern(bits: u32) -> Vec<f32> {
    (0..H)
        .flat_map(|y| (0..W).map(move |x| ((7 * x + 13 * y) % (1usize << bits)) as f32))
        .collect()
}

fn first_frame(name: &str) -> (Frame, posescope::io::StackInfo) {
    let mut s = open(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let f = s.frame(0).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!((f.width, f.height), (W, H), "{name}");
    (f, s.info().clone())
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn packed_depths_decode_exactly() {
    for (name, bits, ty) in [
        ("gray2.tif", 2, SampleType::U8),
        ("gray4.tif", 4, SampleType::U8),
        ("gray12.tif", 12, SampleType::U16),
        ("gray12_be.tif", 12, SampleType::U16),
        ("gray14.tif", 14, SampleType::U16),
        ("gray24.tif", 24, SampleType::U32),
    ] {
        let (f, info) = first_frame(name);
        assert_eq!(f.data, pattern(bits), "{name}");
        assert_eq!(info.bits_per_sample, bits as u8, "{name}");
        assert_eq!(info.sample_type, ty, "{name}");
    }
}

#[test]
fn float16_is_widened() {
    let (f, info) = first_frame("float16.tif");
    let expect: Vec<f32> = pattern(8).iter().map(|v| v / 4.0 - 10.0).collect();
    assert_eq!(f.data, expect);
    assert_eq!(info.sample_type, SampleType::F32);
    assert!(info.warnings.iter().any(|w| w.contains("16-bit float")));
}

#[test]
fn palette_images_give_indices_and_their_colours() {
    let (f, info) = first_frame("palette8.tif");
    // Pillow's convert("P") of a grey image keeps the grey level as the index
    assert_eq!(f.data, pattern(8));
    let palette = info.palette.expect("palette");
    assert_eq!(palette.len(), 256);
    assert_eq!(palette[10], [10, 5, 245]);
    assert!(info.warnings.iter().any(|w| w.contains("palette")));
}

#[test]
fn bilevel_plain_and_ccitt_group4() {
    for name in ["bilevel.tif", "bilevel_g4.tif"] {
        let (f, info) = first_frame(name);
        assert_eq!(f.data, pattern(1), "{name}");
        assert_eq!(info.bits_per_sample, 1, "{name}");
    }
}

#[test]
fn jpeg_grey_and_rgb() {
    let smooth: Vec<f32> = (0..H)
        .flat_map(|y| (0..W).map(move |x| (4 * x + 9 * y) as f32))
        .collect();
    let (g, _) = first_frame("jpeg_gray.tif");
    // lossy at quality 95: a few grey levels at most
    assert!(
        max_diff(&g.data, &smooth) <= 4.0,
        "{}",
        max_diff(&g.data, &smooth)
    );
    let (c, info) = first_frame("jpeg_rgb.tif");
    let luma: Vec<f32> = smooth
        .iter()
        .map(|&v| 0.2126 * v + 0.7152 * ((v as u32 / 2 + 40) as f32) + 0.0722 * (255.0 - v))
        .collect();
    assert!(
        max_diff(&c.data, &luma) <= 6.0,
        "{}",
        max_diff(&c.data, &luma)
    );
    assert!(
        info.warnings.iter().any(|w| w.contains("lumin")),
        "{info:?}"
    );
}

#[test]
fn cmyk_becomes_luminance_with_a_warning() {
    let (f, info) = first_frame("cmyk.tif");
    // C = pattern, M = Y = 0, K = 64 → R = (255 − C)(255 − 64)/255, G = B = 255 − 64
    let k = 255.0 - 64.0;
    let expect: Vec<f32> = pattern(8)
        .iter()
        .map(|c| 0.2126 * (255.0 - c) * k / 255.0 + (0.7152 + 0.0722) * k)
        .collect();
    assert!(
        max_diff(&f.data, &expect) < 0.01,
        "{}",
        max_diff(&f.data, &expect)
    );
    assert!(info.warnings.iter().any(|w| w.contains("CMYK")), "{info:?}");
}

#[test]
fn webp_is_refused_by_name() {
    // the crate's WebP decoder sizes its buffer from the WebP stream's own
    // header, unchecked against the tile: a 2 kB file asked for 4.3 GB under
    // the fuzzer (docs/FUZZING.md), so WebP stays off
    let e = open(&fixture("webp_rgb.tif"))
        .and_then(|mut s| s.frame(0))
        .unwrap_err();
    assert!(e.to_string().contains("WebP"), "{e}");
}

#[test]
fn cie_lab_gives_its_lightness() {
    let (f, info) = first_frame("lab.tif");
    assert_eq!(f.data, pattern(8));
    assert!(info.warnings.iter().any(|w| w.contains("L*")), "{info:?}");
}

#[test]
fn hyperstacks_read_every_page_as_a_frame_and_say_so() {
    for (name, note) in [
        (
            "hyper_imagej.tif",
            "2 channels × 1 slice × 3 time points: every page is read as one frame (channel fastest, then slice, then time)",
        ),
        (
            "hyper_ome.tif",
            "3 channels × 2 slices × 1 time point: every page is read as one frame (channel fastest, then slice, then time)",
        ),
    ] {
        let mut s = open(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(s.len(), 6, "{name}");
        let w = s.info().warnings.join("; ");
        assert!(w.contains(note), "{name}: {w}");
        // page k holds (pattern + 10 k) mod 256, in the file's order
        for k in 0..6 {
            let f = s.frame(k).unwrap();
            let want: Vec<f32> = pattern(8)
                .iter()
                .map(|v| ((*v as usize + 10 * k) % 256) as f32)
                .collect();
            assert_eq!(f.data, want, "{name} frame {k}");
        }
    }
}
