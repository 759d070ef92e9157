//! Integration tests for `posescope::io`: every fixture is generated here, with our own writer,
//! the `tiff` and `image` encoders, or by hand (FITS, odd TIFF layouts).

use std::io::Cursor;

use posescope::io::{
    open, open_bytes, open_with_limits, write_png_gray16, write_tiff_stack, Frame, IoError, Limits,
    SampleType, Stack, WriteSample,
};
use tiff::encoder::{colortype, Compression, DeflateLevel, TiffEncoder, TiffValue};
use tiff::tags::Tag;

// ---------------------------------------------------------------------------------------------
// helpers

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// Deterministic test pattern: distinct values per pixel and frame.
fn pattern(w: usize, h: usize, k: usize) -> Vec<f64> {
    (0..w * h)
        .map(|i| ((i * 7 + k * 131) % 251) as f64 + k as f64)
        .collect()
}

fn frame_from(w: usize, h: usize, v: Vec<f32>) -> Frame {
    Frame::new(w, h, v)
}

/// Encodes pages with the `tiff` crate.
fn encode<C: colortype::ColorType>(
    w: u32,
    h: u32,
    pages: &[Vec<C::Inner>],
    compression: Compression,
    big: bool,
) -> Vec<u8>
where
    [C::Inner]: TiffValue,
{
    let mut buf = Cursor::new(Vec::new());
    if big {
        let mut enc = TiffEncoder::new_big(&mut buf)
            .unwrap()
            .with_compression(compression);
        for p in pages {
            enc.write_image::<C>(w, h, p).unwrap();
        }
    } else {
        let mut enc = TiffEncoder::new(&mut buf)
            .unwrap()
            .with_compression(compression);
        for p in pages {
            enc.write_image::<C>(w, h, p).unwrap();
        }
    }
    buf.into_inner()
}

/// Reads every frame; returns the first error.
fn read_all(stack: &mut Stack, max: usize) -> Result<Vec<Frame>, IoError> {
    (0..stack.len().min(max)).map(|i| stack.frame(i)).collect()
}

fn open_all(name: &str, bytes: &[u8]) -> Result<Vec<Frame>, IoError> {
    let mut s = open_bytes(name, bytes.to_vec(), &Limits::default())?;
    read_all(&mut s, usize::MAX)
}

fn assert_close(a: f32, b: f32, tol: f32) {
    assert!((a - b).abs() <= tol, "{a} vs {b}");
}

/// Tiny xorshift generator for reproducible corruptions.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Offsets of the IFDs of a little-endian classic TIFF.
fn ifd_offsets(b: &[u8]) -> Vec<usize> {
    assert_eq!(&b[..4], b"II*\0");
    let mut out = Vec::new();
    let mut off = u32::from_le_bytes(b[4..8].try_into().unwrap()) as usize;
    while off != 0 {
        out.push(off);
        let n = u16::from_le_bytes(b[off..off + 2].try_into().unwrap()) as usize;
        let next = off + 2 + n * 12;
        off = u32::from_le_bytes(b[next..next + 4].try_into().unwrap()) as usize;
    }
    out
}

/// Byte position of the value field of `tag` in the classic LE IFD at `ifd`.
fn entry_value_pos(b: &[u8], ifd: usize, tag: u16) -> usize {
    let n = u16::from_le_bytes(b[ifd..ifd + 2].try_into().unwrap()) as usize;
    for k in 0..n {
        let e = ifd + 2 + k * 12;
        if u16::from_le_bytes(b[e..e + 2].try_into().unwrap()) == tag {
            return e + 8;
        }
    }
    panic!("tag {tag} not found");
}

/// Builds a classic little-endian single-page TIFF by hand. `entries` are (tag, type, count,
/// value bytes); values over 4 bytes are stored after the IFD. A StripOffsets entry pointing at
/// `data` (appended at the end) is added.
fn build_tiff(entries: &[(u16, u16, u32, Vec<u8>)], data: &[u8]) -> Vec<u8> {
    let mut entries: Vec<(u16, u16, u32, Vec<u8>)> = entries.to_vec();
    entries.push((273, 4, 1, vec![0; 4])); // patched below
    entries.sort_by_key(|e| e.0);
    let ifd_len = 2 + 12 * entries.len() + 4;
    let mut ool = Vec::new();
    let ool_start = 8 + ifd_len;
    let mut ifd = Vec::new();
    ifd.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    let mut strip_field = 0;
    for (tag, typ, count, value) in &entries {
        ifd.extend_from_slice(&tag.to_le_bytes());
        ifd.extend_from_slice(&typ.to_le_bytes());
        ifd.extend_from_slice(&count.to_le_bytes());
        if *tag == 273 {
            strip_field = 8 + ifd.len();
        }
        if value.len() <= 4 {
            let mut v = value.clone();
            v.resize(4, 0);
            ifd.extend_from_slice(&v);
        } else {
            let at = (ool_start + ool.len()) as u32;
            ifd.extend_from_slice(&at.to_le_bytes());
            ool.extend_from_slice(value);
            if ool.len() % 2 == 1 {
                ool.push(0);
            }
        }
    }
    ifd.extend_from_slice(&0u32.to_le_bytes());
    let mut out = b"II*\0".to_vec();
    out.extend_from_slice(&8u32.to_le_bytes());
    out.extend_from_slice(&ifd);
    out.extend_from_slice(&ool);
    let data_at = out.len() as u32;
    out[strip_field..strip_field + 4].copy_from_slice(&data_at.to_le_bytes());
    out.extend_from_slice(data);
    out
}

fn short(tag: u16, v: u16) -> (u16, u16, u32, Vec<u8>) {
    (tag, 3, 1, v.to_le_bytes().to_vec())
}
fn long(tag: u16, v: u32) -> (u16, u16, u32, Vec<u8>) {
    (tag, 4, 1, v.to_le_bytes().to_vec())
}
fn ascii(tag: u16, s: &str) -> (u16, u16, u32, Vec<u8>) {
    let mut b = s.as_bytes().to_vec();
    b.push(0);
    (tag, 2, b.len() as u32, b)
}
fn rational(tag: u16, n: u32, d: u32) -> (u16, u16, u32, Vec<u8>) {
    let mut b = n.to_le_bytes().to_vec();
    b.extend_from_slice(&d.to_le_bytes());
    (tag, 5, 1, b)
}

/// A hand-built 16-bit grey TIFF with extra tags.
fn gray16_tiff(w: u32, h: u32, extra: &[(u16, u16, u32, Vec<u8>)], data: &[u8]) -> Vec<u8> {
    let mut e = vec![
        long(256, w),
        long(257, h),
        short(258, 16),
        short(259, 1),
        short(262, 1),
        short(277, 1),
        long(278, h),
        long(279, w * h * 2),
    ];
    e.extend_from_slice(extra);
    build_tiff(&e, data)
}

/// One 80-character FITS card.
fn card(text: &str) -> Vec<u8> {
    let mut c = text.as_bytes().to_vec();
    assert!(c.len() <= 80);
    c.resize(80, b' ');
    c
}

fn kv(key: &str, value: &str) -> Vec<u8> {
    card(&format!("{key:<8}= {value:>20}"))
}

/// A FITS HDU: header cards (END added, padded) and data (padded with zeros).
fn fits_hdu(cards: &[Vec<u8>], data: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = cards.concat();
    out.extend(card("END"));
    out.resize(out.len().div_ceil(2880) * 2880, b' ');
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(2880) * 2880, 0);
    out
}

fn fits_image(bitpix: i32, axes: &[usize], extra: &[Vec<u8>], data: &[u8]) -> Vec<u8> {
    let mut cards = vec![kv("SIMPLE", "T"), kv("BITPIX", &bitpix.to_string())];
    cards.push(kv("NAXIS", &axes.len().to_string()));
    for (i, a) in axes.iter().enumerate() {
        cards.push(kv(&format!("NAXIS{}", i + 1), &a.to_string()));
    }
    cards.extend_from_slice(extra);
    fits_hdu(&cards, data)
}

fn encode_png(img: image::DynamicImage) -> Vec<u8> {
    let mut c = Cursor::new(Vec::new());
    img.write_to(&mut c, image::ImageFormat::Png).unwrap();
    c.into_inner()
}

fn encode_jpeg(img: image::DynamicImage) -> Vec<u8> {
    let mut c = Cursor::new(Vec::new());
    img.write_to(&mut c, image::ImageFormat::Jpeg).unwrap();
    c.into_inner()
}

// ---------------------------------------------------------------------------------------------
// TIFF

#[test]
fn writer_round_trip_u16_and_f32_with_pixel_size() {
    let dir = tempdir();
    let (w, h) = (37, 23);
    let frames: Vec<Frame> = (0..4)
        .map(|k| {
            frame_from(
                w,
                h,
                pattern(w, h, k).iter().map(|&v| v as f32 * 3.5).collect(),
            )
        })
        .collect();

    let p = dir.path().join("stack_f32.tif");
    write_tiff_stack(&p, &frames, WriteSample::F32, Some(108.3)).unwrap();
    assert!(!dir.path().join("stack_f32.tif.tmp").exists());
    let mut s = open(&p).unwrap();
    let info = s.info().clone();
    assert_eq!(info.format, "TIFF");
    assert_eq!((info.width, info.height, info.frames), (w, h, 4));
    assert_eq!(info.sample_type, SampleType::F32);
    assert!((info.pixel_size_nm.unwrap() - 108.3).abs() < 1e-9);
    assert!(info.warnings.is_empty(), "{:?}", info.warnings);
    for k in [3, 0, 2, 1] {
        assert_eq!(s.frame(k).unwrap().data, frames[k].data);
    }

    let p = dir.path().join("stack_u16.tif");
    let mut odd = frames[0].clone();
    odd.data[0] = -5.0;
    odd.data[1] = 70000.0;
    odd.data[2] = 1.6;
    odd.data[3] = f32::NAN;
    odd.data[4] = 2.4;
    write_tiff_stack(
        &p,
        &[odd.clone(), frames[1].clone()],
        WriteSample::U16,
        None,
    )
    .unwrap();
    let mut s = open(&p).unwrap();
    assert_eq!(s.info().sample_type, SampleType::U16);
    assert_eq!(s.info().pixel_size_nm, None);
    assert_eq!(s.len(), 2);
    let f = s.frame(0).unwrap();
    assert_eq!(&f.data[..5], &[0.0, 65535.0, 2.0, 0.0, 2.0]);
    for i in 5..w * h {
        assert_eq!(f.data[i], odd.data[i].round().clamp(0.0, 65535.0));
    }
}

#[test]
fn writer_rejects_bad_input() {
    let dir = tempdir();
    let p = dir.path().join("bad.tif");
    let e = write_tiff_stack(&p, &[], WriteSample::U16, None).unwrap_err();
    assert!(matches!(e, IoError::InvalidInput { .. }), "{e}");
    assert!(e.to_string().contains("bad.tif"));
    let e = write_tiff_stack(
        &p,
        &[Frame::zeros(4, 4), Frame::zeros(5, 4)],
        WriteSample::F32,
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("frame 1"), "{e}");
    let e = write_tiff_stack(&p, &[Frame::zeros(4, 4)], WriteSample::F32, Some(-1.0)).unwrap_err();
    assert!(e.to_string().contains("pixel size"), "{e}");
    assert!(!p.exists());
    assert!(!dir.path().join("bad.tif.tmp").exists());
}

#[test]
fn every_tiff_sample_type_round_trips() {
    let (w, h) = (9u32, 5u32);
    let n = (w * h) as usize;
    let base = pattern(w as usize, h as usize, 1);
    macro_rules! check {
        ($ct:ty, $t:ty, $conv:expr, $st:expr) => {{
            let conv = $conv;
            let pages: Vec<Vec<$t>> = (0..2)
                .map(|k| base.iter().map(|&v| conv(v, k)).collect())
                .collect();
            let bytes = encode::<$ct>(w, h, &pages, Compression::Uncompressed, false);
            let mut s = open_bytes("t.tif", bytes, &Limits::default()).unwrap();
            assert_eq!(s.info().sample_type, $st, stringify!($ct));
            assert_eq!(s.len(), 2);
            for k in [1usize, 0] {
                let f = s.frame(k).unwrap();
                assert_eq!(f.data.len(), n);
                for i in 0..n {
                    assert_eq!(
                        f.data[i],
                        pages[k][i] as f32,
                        "{} pixel {i}",
                        stringify!($ct)
                    );
                }
            }
        }};
    }
    check!(
        colortype::Gray8,
        u8,
        |v: f64, k| v as u8 + k as u8,
        SampleType::U8
    );
    check!(
        colortype::GrayI8,
        i8,
        |v: f64, k| (v as i32 - 128 + k) as i8,
        SampleType::I8
    );
    check!(
        colortype::Gray16,
        u16,
        |v: f64, k| (v * 200.0) as u16 + k as u16,
        SampleType::U16
    );
    check!(
        colortype::GrayI16,
        i16,
        |v: f64, k| (v * 100.0) as i16 - 12000 + k as i16,
        SampleType::I16
    );
    check!(
        colortype::Gray32,
        u32,
        |v: f64, k| (v * 1000.0) as u32 + k as u32,
        SampleType::U32
    );
    check!(
        colortype::GrayI32,
        i32,
        |v: f64, k| -(v * 1000.0) as i32 + k,
        SampleType::I32
    );
    check!(
        colortype::Gray32Float,
        f32,
        |v: f64, k| (v * 0.25) as f32 - k as f32,
        SampleType::F32
    );
    check!(
        colortype::Gray64Float,
        f64,
        |v: f64, k| v * -0.5 + k as f64,
        SampleType::F64
    );
}

#[test]
fn multi_page_random_access() {
    let (w, h) = (16u32, 12u32);
    let pages: Vec<Vec<u16>> = (0..6)
        .map(|k| (0..w * h).map(|i| (i + 1000 * k) as u16).collect())
        .collect();
    let bytes = encode::<colortype::Gray16>(w, h, &pages, Compression::Uncompressed, false);
    let mut s = open_bytes("multi.tif", bytes, &Limits::default()).unwrap();
    assert_eq!(s.len(), 6);
    assert!(!s.is_empty());
    let f2 = s.frame(2).unwrap();
    let f0 = s.frame(0).unwrap();
    let f5 = s.frame(5).unwrap();
    assert_eq!(f2.get(0, 0), 2000.0);
    assert_eq!(f2.get(3, 1), (2000 + 16 + 3) as f32);
    assert_eq!(f0.get(0, 0), 0.0);
    assert_eq!(f0.get(15, 11), (16 * 12 - 1) as f32);
    assert_eq!(f5.get(1, 0), 5001.0);
    assert_eq!(f5.min_max(), (5000.0, (5000 + 16 * 12 - 1) as f32));
    let e = s.frame(6).unwrap_err();
    assert!(
        matches!(
            e,
            IoError::FrameOutOfRange {
                index: 6,
                frames: 6,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().starts_with("multi.tif:"));
    // The iterator gives all frames in order.
    let all: Vec<Frame> = s.frames().collect::<Result<_, _>>().unwrap();
    assert_eq!(all.len(), 6);
    assert_eq!(all[3].get(0, 0), 3000.0);
}

#[test]
fn compressed_tiffs() {
    let (w, h) = (64u32, 40u32);
    let pages: Vec<Vec<u16>> = (0..3)
        // Runs of identical bytes so that PackBits has something to compress.
        .map(|k| {
            (0..w * h)
                .map(|i| 0x0101 * (((i / 16) % 50) + k) as u16)
                .collect()
        })
        .collect();
    for (name, c) in [
        ("lzw", Compression::Lzw),
        ("deflate", Compression::Deflate(DeflateLevel::Balanced)),
        ("packbits", Compression::Packbits),
    ] {
        let bytes = encode::<colortype::Gray16>(w, h, &pages, c, false);
        let uncompressed = (w * h * 2 * 3) as usize;
        assert!(bytes.len() < uncompressed, "{name} did not compress");
        let mut s = open_bytes(name, bytes, &Limits::default()).unwrap();
        assert_eq!(s.len(), 3);
        for k in [2usize, 0, 1] {
            let f = s.frame(k).unwrap();
            let want: Vec<f32> = pages[k].iter().map(|&v| f32::from(v)).collect();
            assert_eq!(f.data, want, "{name} page {k}");
        }
    }
    // LZW with horizontal predictor, float data with Deflate.
    let mut buf = Cursor::new(Vec::new());
    {
        let mut enc = TiffEncoder::new(&mut buf)
            .unwrap()
            .with_compression(Compression::Lzw)
            .with_predictor(tiff::encoder::Predictor::Horizontal);
        enc.write_image::<colortype::Gray16>(w, h, &pages[1])
            .unwrap();
    }
    let f = &open_all("pred.tif", &buf.into_inner()).unwrap()[0];
    assert_eq!(f.get(10, 3), f32::from(pages[1][(3 * w + 10) as usize]));
    let fl: Vec<f32> = (0..w * h).map(|i| i as f32 * 0.5 - 3.0).collect();
    let bytes = encode::<colortype::Gray32Float>(
        w,
        h,
        std::slice::from_ref(&fl),
        Compression::Deflate(DeflateLevel::Fast),
        false,
    );
    assert_eq!(open_all("f.tif", &bytes).unwrap()[0].data, fl);
}

#[test]
fn bigtiff() {
    let (w, h) = (20u32, 10u32);
    let pages: Vec<Vec<f32>> = (0..3)
        .map(|k| (0..w * h).map(|i| i as f32 + 0.25 * k as f32).collect())
        .collect();
    let bytes = encode::<colortype::Gray32Float>(w, h, &pages, Compression::Lzw, true);
    assert_eq!(&bytes[..4], b"II+\0");
    let mut s = open_bytes("big.tif", bytes, &Limits::default()).unwrap();
    assert_eq!(s.info().format, "BigTIFF");
    assert_eq!(s.len(), 3);
    assert_eq!(s.frame(2).unwrap().data, pages[2]);
    assert_eq!(s.frame(0).unwrap().data, pages[0]);
}

/// Fuzzing found that the `tiff` crate misreads a BigTIFF directory after an entry of unknown
/// field type (it skips 12 instead of 20 bytes), so it saw tags the validation never checked.
#[test]
fn bigtiff_entry_with_unknown_field_type_is_rejected() {
    let pages: Vec<Vec<u16>> = vec![vec![7; 24 * 10], vec![8; 24 * 10]];
    let mut bytes = encode::<colortype::Gray16>(24, 10, &pages, Compression::Lzw, true);
    // Second page's directory: find ResolutionUnit and give it field type 2051.
    let first = u64::from_le_bytes(bytes[8..16].try_into().unwrap()) as usize;
    let n = u64::from_le_bytes(bytes[first..first + 8].try_into().unwrap()) as usize;
    let next_at = first + 8 + n * 20;
    let second = u64::from_le_bytes(bytes[next_at..next_at + 8].try_into().unwrap()) as usize;
    let n2 = u64::from_le_bytes(bytes[second..second + 8].try_into().unwrap()) as usize;
    let entry = (0..n2)
        .map(|k| second + 8 + k * 20)
        .find(|&e| u16::from_le_bytes([bytes[e], bytes[e + 1]]) == 296)
        .unwrap();
    bytes[entry + 2..entry + 4].copy_from_slice(&2051u16.to_le_bytes());
    let mut s = open_bytes("unknown_type.tif", bytes, &Limits::default()).unwrap();
    assert_eq!(s.frame(0).unwrap().get(0, 0), 7.0);
    let e = s.frame(1).unwrap_err();
    assert!(
        matches!(e, IoError::Corrupt { .. }) && e.to_string().contains("field type"),
        "{e}"
    );

    // The input the fuzzer produced (committed as a tiny fixture).
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fuzz_bigtiff_unknown_field_type.tif");
    let e = open(&fixture).unwrap_err();
    assert!(
        matches!(e, IoError::Corrupt { .. }) && e.to_string().contains("field type"),
        "{e}"
    );
}

/// Opens a committed fuzzer input and reads every frame: the first error.
fn first_error_of_fuzz_input(name: &str) -> IoError {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    open(&fixture)
        .and_then(|mut s| (0..s.len()).try_for_each(|i| s.frame(i).map(drop)))
        .unwrap_err()
}

/// The fuzzer's input (20 kB) that made the `tiff` crate's WebP decoder ask for
/// 4.3 GB (docs/FUZZING.md): a clear error, and nothing large is allocated.
#[test]
fn fuzz_webp_allocation_input_is_a_clean_error() {
    let e = first_error_of_fuzz_input("fuzz_tiff_webp_oom.tif");
    assert!(e.to_string().contains("fuzz_tiff_webp_oom.tif"), "{e}");
}

/// The fuzzer's input that reached a packed "RGB" page with one sample per
/// pixel: an index past the end, caught as a panic before the fix; now a
/// clean error.
#[test]
fn fuzz_rgb_page_with_one_sample_is_a_clean_error() {
    let msg = first_error_of_fuzz_input("fuzz_tiff_rgb_one_sample.tif").to_string();
    // a panic would have been caught and reported as "decoder failed (…)"
    assert!(!msg.contains("decoder failed"), "{msg}");
    assert!(msg.contains("fuzz_tiff_rgb_one_sample.tif"), "{msg}");
}

#[test]
fn rgb_tiff_becomes_luminance_with_warning() {
    let (w, h) = (4u32, 3u32);
    let rgb: Vec<u8> = (0..w * h).flat_map(|i| [i as u8 * 10, 200, 7]).collect();
    let bytes = encode::<colortype::RGB8>(
        w,
        h,
        std::slice::from_ref(&rgb),
        Compression::Uncompressed,
        false,
    );
    let mut s = open_bytes("rgb.tif", bytes, &Limits::default()).unwrap();
    assert_eq!(s.info().sample_type, SampleType::U8);
    assert!(
        s.info().warnings.iter().any(|w| w.contains("luminance")),
        "{:?}",
        s.info().warnings
    );
    let f = s.frame(0).unwrap();
    for i in 0..(w * h) as usize {
        let want = 0.2126 * (i as f32 * 10.0) + 0.7152 * 200.0 + 0.0722 * 7.0;
        assert_close(f.data[i], want, 1e-3);
    }
    let rgba: Vec<u16> = (0..w * h)
        .flat_map(|i| [i as u16 * 1000, 0, 60000, 65535])
        .collect();
    let bytes = encode::<colortype::RGBA16>(w, h, &[rgba], Compression::Lzw, false);
    let mut s = open_bytes("rgba.tif", bytes, &Limits::default()).unwrap();
    assert_eq!(s.info().sample_type, SampleType::U16);
    let warnings = s.info().warnings.join("; ");
    assert!(
        warnings.contains("luminance") && warnings.contains("alpha"),
        "{warnings}"
    );
    let f = s.frame(0).unwrap();
    assert_close(f.get(1, 1), 0.2126 * 5000.0 + 0.0722 * 60000.0, 1e-2);
}

#[test]
fn planar_rgb_tiff() {
    // PlanarConfiguration = 2: all R, then all G, then all B, one strip per plane.
    let (w, h) = (3u32, 2u32);
    let n = (w * h) as usize;
    let planes: [Vec<u8>; 3] = [
        (0..n as u8).map(|i| i * 10).collect(),
        vec![100; n],
        vec![50; n],
    ];
    let mut buf = Cursor::new(Vec::new());
    {
        let mut enc = TiffEncoder::new(&mut buf).unwrap();
        let mut dir = enc.image_directory().unwrap();
        let offsets: Vec<u32> = planes
            .iter()
            .map(|p| dir.write_data(&p[..]).unwrap() as u32)
            .collect();
        dir.write_tag(Tag::ImageWidth, w).unwrap();
        dir.write_tag(Tag::ImageLength, h).unwrap();
        dir.write_tag(Tag::BitsPerSample, &[8u16, 8, 8][..])
            .unwrap();
        dir.write_tag(Tag::Compression, 1u16).unwrap();
        dir.write_tag(Tag::PhotometricInterpretation, 2u16).unwrap();
        dir.write_tag(Tag::StripOffsets, &offsets[..]).unwrap();
        dir.write_tag(Tag::SamplesPerPixel, 3u16).unwrap();
        dir.write_tag(Tag::RowsPerStrip, h).unwrap();
        dir.write_tag(Tag::StripByteCounts, &[n as u32; 3][..])
            .unwrap();
        dir.write_tag(Tag::PlanarConfiguration, 2u16).unwrap();
        dir.finish().unwrap();
    }
    let mut s = open_bytes("planar.tif", buf.into_inner(), &Limits::default()).unwrap();
    assert!(s.info().warnings.iter().any(|w| w.contains("luminance")));
    let f = s.frame(0).unwrap();
    for (&got, &r) in f.data.iter().zip(&planes[0]) {
        let want = 0.2126 * f32::from(r) + 0.7152 * 100.0 + 0.0722 * 50.0;
        assert_close(got, want, 1e-3);
    }
    assert_eq!(f.data.len(), n);
}

#[test]
fn pixel_size_from_ome_xml() {
    let ome = r#"<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint16" SizeX="4" SizeY="2" SizeZ="1" SizeC="1" SizeT="1" PhysicalSizeX="0.065" PhysicalSizeY="0.065"><TiffData/></Pixels></Image></OME>"#;
    let data: Vec<u8> = (0..16u8).collect();
    let bytes = gray16_tiff(4, 2, &[ascii(270, ome)], &data);
    let s = open_bytes("ome.tif", bytes, &Limits::default()).unwrap();
    assert!((s.info().pixel_size_nm.unwrap() - 65.0).abs() < 1e-9);

    for (size, unit, nm) in [
        ("160", "nm", 160.0),
        ("0.1", "µm", 100.0),
        ("1200", "Å", 120.0),
    ] {
        let ome = format!(
            "<OME><Image><Pixels PhysicalSizeX=\"{size}\" PhysicalSizeXUnit=\"{unit}\" SizeX=\"4\"/></Image></OME>"
        );
        // Resolution tags saying something else must lose against OME-XML.
        let bytes = gray16_tiff(
            4,
            2,
            &[ascii(270, &ome), rational(282, 1000, 1), short(296, 3)],
            &data,
        );
        let s = open_bytes("ome.tif", bytes, &Limits::default()).unwrap();
        assert!(
            (s.info().pixel_size_nm.unwrap() - nm).abs() < 1e-9,
            "{unit}"
        );
    }
}

#[test]
fn pixel_size_from_imagej_description() {
    let data = vec![0u8; 16];
    for (unit, nm) in [
        ("micron", 100.0),
        ("\\u00B5m", 100.0),
        ("um", 100.0),
        ("nm", 0.1),
    ] {
        let desc = format!("ImageJ=1.54f\nunit={unit}\nloop=false\n");
        // 10 pixels per unit, ResolutionUnit none as ImageJ writes it.
        let bytes = gray16_tiff(
            4,
            2,
            &[
                ascii(270, &desc),
                rational(282, 10, 1),
                rational(283, 10, 1),
                short(296, 1),
            ],
            &data,
        );
        let s = open_bytes("ij.tif", bytes, &Limits::default()).unwrap();
        assert!(
            (s.info().pixel_size_nm.unwrap() - nm).abs() < 1e-9,
            "{unit}"
        );
    }
    let bytes = gray16_tiff(
        4,
        2,
        &[
            ascii(270, "ImageJ=1.54f\nunit=pixel\n"),
            rational(282, 10, 1),
        ],
        &data,
    );
    assert_eq!(
        open_bytes("ij.tif", bytes, &Limits::default())
            .unwrap()
            .info()
            .pixel_size_nm,
        None
    );
}

#[test]
fn description_tag_is_validated_and_latin1_is_accepted() {
    let data = vec![0u8; 16];
    // ImageJ description in Latin-1 (µ = 0xB5), not UTF-8.
    let mut desc = b"ImageJ=1.54f\nunit=\xB5m\n".to_vec();
    desc.push(0);
    let entry = (270u16, 2u16, desc.len() as u32, desc);
    let bytes = gray16_tiff(4, 2, &[entry, rational(282, 20, 1), short(296, 1)], &data);
    let s = open_bytes("latin1.tif", bytes, &Limits::default()).unwrap();
    assert!((s.info().pixel_size_nm.unwrap() - 50.0).abs() < 1e-9);
    // A description whose declared length runs past the end of the file.
    let mut bytes = gray16_tiff(4, 2, &[ascii(270, "ImageJ=1.54f\nunit=nm\n")], &data);
    let ifd = ifd_offsets(&bytes)[0];
    let pos = entry_value_pos(&bytes, ifd, 270) - 4; // the count field
    bytes[pos..pos + 4].copy_from_slice(&2_000_000_000u32.to_le_bytes());
    let e = open_bytes("longdesc.tif", bytes, &Limits::default()).unwrap_err();
    assert!(
        matches!(e, IoError::Truncated { .. }) && e.to_string().contains("tag 270"),
        "{e}"
    );
}

#[test]
fn pixel_size_from_resolution_tags() {
    let data = vec![0u8; 16];
    // 50 000 pixels per cm → 200 nm.
    let bytes = gray16_tiff(4, 2, &[rational(282, 50_000, 1), short(296, 3)], &data);
    let s = open_bytes("cm.tif", bytes, &Limits::default()).unwrap();
    assert!((s.info().pixel_size_nm.unwrap() - 200.0).abs() < 1e-9);
    // 254 000 pixels per inch → 100 nm.
    let bytes = gray16_tiff(4, 2, &[rational(282, 254_000, 1), short(296, 2)], &data);
    let s = open_bytes("in.tif", bytes, &Limits::default()).unwrap();
    assert!((s.info().pixel_size_nm.unwrap() - 100.0).abs() < 1e-9);
    // ResolutionUnit none: no pixel size.
    let bytes = gray16_tiff(4, 2, &[rational(282, 254_000, 1), short(296, 1)], &data);
    assert_eq!(
        open_bytes("none.tif", bytes, &Limits::default())
            .unwrap()
            .info()
            .pixel_size_nm,
        None
    );
    // No resolution at all.
    let bytes = gray16_tiff(4, 2, &[], &data);
    assert_eq!(
        open_bytes("plain.tif", bytes, &Limits::default())
            .unwrap()
            .info()
            .pixel_size_nm,
        None
    );
}

#[test]
fn hand_built_tiff_values_and_big_endian() {
    // Little endian, values 0x0100, 0x0302, ...
    let data: Vec<u8> = (0..16u8).collect();
    let f = &open_all("le.tif", &gray16_tiff(4, 2, &[], &data)).unwrap()[0];
    assert_eq!(f.get(0, 0), 256.0);
    assert_eq!(f.get(1, 0), 0x0302 as f32);
    // Big endian version of a 2×1 16-bit image, built by hand.
    let mut b = b"MM\0*\0\0\0\x08".to_vec();
    let entries: [(u16, u16, u32); 9] = [
        (256, 3, 2),
        (257, 3, 1),
        (258, 3, 16),
        (259, 3, 1),
        (262, 3, 1),
        (273, 4, 8 + 2 + 9 * 12 + 4),
        (277, 3, 1),
        (278, 3, 1),
        (279, 4, 4),
    ];
    b.extend_from_slice(&(entries.len() as u16).to_be_bytes());
    for (tag, typ, v) in entries {
        b.extend_from_slice(&tag.to_be_bytes());
        b.extend_from_slice(&typ.to_be_bytes());
        b.extend_from_slice(&1u32.to_be_bytes());
        if typ == 3 {
            b.extend_from_slice(&(v as u16).to_be_bytes());
            b.extend_from_slice(&[0, 0]);
        } else {
            b.extend_from_slice(&v.to_be_bytes());
        }
    }
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&[0x12, 0x34, 0xAB, 0xCD]);
    let f = &open_all("be.tif", &b).unwrap()[0];
    assert_eq!(f.data, vec![0x1234 as f32, 0xABCD as f32]);
}

#[test]
fn imagej_contiguous_stack_over_one_directory() {
    // ImageJ's > 4 GiB layout: one IFD, images=3, planes back to back.
    let (w, h) = (3u32, 2u32);
    let mut data = Vec::new();
    for k in 0..3u16 {
        for i in 0..(w * h) as u16 {
            data.extend_from_slice(&(k * 100 + i).to_le_bytes());
        }
    }
    let desc = "ImageJ=1.54f\nimages=3\nframes=3\nunit=nm\nloop=false\n";
    let bytes = gray16_tiff(
        w,
        h,
        &[ascii(270, desc), rational(282, 1, 160), short(296, 1)],
        &data,
    );
    let mut s = open_bytes("ij_big.tif", bytes.clone(), &Limits::default()).unwrap();
    assert_eq!(s.len(), 3);
    assert!((s.info().pixel_size_nm.unwrap() - 160.0).abs() < 1e-9);
    assert_eq!(
        s.frame(2).unwrap().data,
        vec![200.0, 201.0, 202.0, 203.0, 204.0, 205.0]
    );
    assert_eq!(s.frame(0).unwrap().get(2, 1), 5.0);
    // Missing the last plane: truncated.
    let cut = &bytes[..bytes.len() - 2];
    let e = open_bytes("ij_big.tif", cut.to_vec(), &Limits::default()).unwrap_err();
    assert!(matches!(e, IoError::Truncated { .. }), "{e}");
}

#[test]
fn nan_pixels_are_kept_with_warning() {
    let mut v: Vec<f32> = (0..12).map(|i| i as f32).collect();
    v[5] = f32::NAN;
    let bytes = encode::<colortype::Gray32Float>(
        4,
        3,
        &[v.clone(), v.clone()],
        Compression::Uncompressed,
        false,
    );
    let mut s = open_bytes("nan.tif", bytes, &Limits::default()).unwrap();
    assert!(s.info().warnings.is_empty());
    let f = s.frame(1).unwrap();
    assert!(f.data[5].is_nan());
    assert_eq!(f.min_max(), (0.0, 11.0));
    let _ = s.frame(1).unwrap();
    let nan_warnings: Vec<&String> = s
        .info()
        .warnings
        .iter()
        .filter(|w| w.contains("NaN"))
        .collect();
    assert_eq!(nan_warnings.len(), 1, "{:?}", s.info().warnings);
    assert!(nan_warnings[0].contains("frame 1"));
}

#[test]
fn pages_of_different_sizes() {
    let mut buf = Cursor::new(Vec::new());
    {
        let mut enc = TiffEncoder::new(&mut buf).unwrap();
        enc.write_image::<colortype::Gray8>(4, 4, &[1u8; 16])
            .unwrap();
        enc.write_image::<colortype::Gray8>(2, 2, &[2u8; 4])
            .unwrap();
        enc.write_image::<colortype::Gray8>(4, 4, &[3u8; 16])
            .unwrap();
    }
    let mut s = open_bytes("mixed.tif", buf.into_inner(), &Limits::default()).unwrap();
    assert_eq!(s.len(), 3);
    assert!(s
        .info()
        .warnings
        .iter()
        .any(|w| w.contains("differ in size")));
    assert_eq!(s.frame(2).unwrap().get(0, 0), 3.0);
    let e = s.frame(1).unwrap_err();
    assert!(matches!(e, IoError::Unsupported { .. }), "{e}");
}

#[test]
fn reduced_resolution_pages_are_skipped() {
    let mut buf = Cursor::new(Vec::new());
    {
        let mut enc = TiffEncoder::new(&mut buf).unwrap();
        enc.write_image::<colortype::Gray8>(4, 4, &[1u8; 16])
            .unwrap();
        let mut img = enc.new_image::<colortype::Gray8>(2, 2).unwrap();
        img.encoder().write_tag(Tag::NewSubfileType, 1u32).unwrap();
        img.write_data(&[9u8; 4]).unwrap();
        enc.write_image::<colortype::Gray8>(4, 4, &[3u8; 16])
            .unwrap();
    }
    let mut s = open_bytes("pyr.tif", buf.into_inner(), &Limits::default()).unwrap();
    assert_eq!(s.len(), 2);
    assert!(s
        .info()
        .warnings
        .iter()
        .any(|w| w.contains("reduced-resolution")));
    assert_eq!(s.frame(1).unwrap().get(3, 3), 3.0);
}

#[test]
fn lazy_reading_only_touches_the_requested_page() {
    let dir = tempdir();
    let p = dir.path().join("long.tif");
    let (w, h, n) = (256, 256, 200);
    let frames: Vec<Frame> = (0..n)
        .map(|k| {
            let mut f = Frame::zeros(w, h);
            f.data
                .iter_mut()
                .enumerate()
                .for_each(|(i, v)| *v = ((i + k) % 60000) as f32);
            f
        })
        .collect();
    write_tiff_stack(&p, &frames, WriteSample::U16, Some(65.0)).unwrap();
    drop(frames);
    let mut bytes = std::fs::read(&p).unwrap();
    let ifds = ifd_offsets(&bytes);
    assert_eq!(ifds.len(), n);

    // Sound file: open + frame 0 is right.
    let mut s = open(&p).unwrap();
    assert_eq!(s.len(), n);
    assert_eq!(s.frame(0).unwrap().get(5, 0), 5.0);
    assert_eq!(s.frame(n - 1).unwrap().get(0, 0), (n - 1) as f32);

    // Point the last page's strip past the end of the file: opening and reading frame 0 still
    // work (the page's pixels are never looked at), frame N-1 fails.
    let last = ifds[n - 1];
    let pos = entry_value_pos(&bytes, last, 273);
    let len = bytes.len() as u32;
    bytes[pos..pos + 4].copy_from_slice(&(len - 100).to_le_bytes());
    let p2 = dir.path().join("long_bad_last.tif");
    std::fs::write(&p2, &bytes).unwrap();
    let mut s = open(&p2).unwrap();
    assert_eq!(s.len(), n);
    assert_eq!(s.frame(0).unwrap().get(7, 0), 7.0);
    let e = s.frame(n - 1).unwrap_err();
    assert!(matches!(e, IoError::Truncated { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("long_bad_last.tif")
            && msg.contains("page 199")
            && msg.contains("past the end"),
        "{msg}"
    );
    assert_eq!(s.frame(n - 2).unwrap().get(0, 0), (n - 2) as f32);

    // A byte-count array declared far longer than the file, on the last page only.
    let mut b2 = bytes.clone();
    let pos = entry_value_pos(&b2, last, 279) - 4; // the count field
    b2[pos..pos + 4].copy_from_slice(&50_000_000u32.to_le_bytes());
    let mut s = open_bytes("bad_counts.tif", b2, &Limits::default()).unwrap();
    assert_eq!(s.frame(0).unwrap().get(1, 0), 1.0);
    let e = s.frame(n - 1).unwrap_err();
    assert!(e.to_string().contains("tag 279"), "{e}");

    // An unsupported compression on the last page: same story.
    let pos = entry_value_pos(&bytes, last, 259);
    bytes[pos..pos + 2].copy_from_slice(&34712u16.to_le_bytes());
    let mut s = open_bytes("bad_compression.tif", bytes, &Limits::default()).unwrap();
    assert_eq!(s.frame(1).unwrap().get(0, 0), 1.0);
    let e = s.frame(n - 1).unwrap_err();
    assert!(
        matches!(e, IoError::Unsupported { .. }) && e.to_string().contains("JPEG 2000"),
        "{e}"
    );
}

#[test]
fn ifd_loop_is_detected() {
    let pages: Vec<Vec<u8>> = (0..3).map(|k| vec![k as u8; 16]).collect();
    let mut bytes = encode::<colortype::Gray8>(4, 4, &pages, Compression::Uncompressed, false);
    let ifds = ifd_offsets(&bytes);
    // Last page's "next" pointer back to the first page.
    let n = u16::from_le_bytes(bytes[ifds[2]..ifds[2] + 2].try_into().unwrap()) as usize;
    let next = ifds[2] + 2 + n * 12;
    bytes[next..next + 4].copy_from_slice(&(ifds[0] as u32).to_le_bytes());
    // the pages before the loop open (as libtiff does), with a warning
    let mut s = open_bytes("loop.tif", bytes.clone(), &Limits::default()).unwrap();
    assert_eq!(s.len(), 3);
    assert_eq!(s.frame(2).unwrap().get(0, 0), 2.0);
    assert!(
        s.info().warnings.iter().any(|w| w.contains("loops back")),
        "{:?}",
        s.info().warnings
    );
    // A directory inside the header.
    let mut b2 = bytes.clone();
    b2[4..8].copy_from_slice(&2u32.to_le_bytes());
    let e = open_bytes("hdr.tif", b2, &Limits::default()).unwrap_err();
    assert!(e.to_string().contains("inside the file header"), "{e}");
    // Self loop.
    bytes[next..next + 4].copy_from_slice(&(ifds[2] as u32).to_le_bytes());
    let s = open_bytes("loop.tif", bytes.clone(), &Limits::default()).unwrap();
    assert_eq!(s.len(), 3);
    assert!(s.info().warnings.iter().any(|w| w.contains("loops back")));
    // A "next" directory inside the current one.
    bytes[next..next + 4].copy_from_slice(&(ifds[2] as u32 + 2).to_le_bytes());
    let e = open_bytes("overlap.tif", bytes, &Limits::default()).unwrap_err();
    assert!(e.to_string().contains("overlaps"), "{e}");
}

#[test]
fn max_frames_limit() {
    let pages: Vec<Vec<u8>> = (0..5).map(|k| vec![k as u8; 4]).collect();
    let bytes = encode::<colortype::Gray8>(2, 2, &pages, Compression::Uncompressed, false);
    let limits = Limits {
        max_frames: 3,
        ..Limits::default()
    };
    let e = open_bytes("many.tif", bytes.clone(), &limits).unwrap_err();
    assert!(
        matches!(e, IoError::LimitExceeded { .. }) && e.to_string().contains("max_frames"),
        "{e}"
    );
    assert_eq!(
        open_bytes("many.tif", bytes, &Limits::default())
            .unwrap()
            .len(),
        5
    );
}

#[test]
fn huge_declared_tiff_is_rejected_quickly() {
    let dir = tempdir();
    let p = dir.path().join("huge.tif");
    let bytes = build_tiff(
        &[
            long(256, 100_000),
            long(257, 100_000),
            short(258, 8),
            short(259, 1),
            short(262, 1),
            short(277, 1),
            long(278, 100_000),
            long(279, 10),
        ],
        &[0u8; 10],
    );
    std::fs::write(&p, bytes).unwrap();
    let e = open(&p).unwrap_err();
    assert!(matches!(e, IoError::LimitExceeded { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("huge.tif") && msg.contains("limit") && msg.contains("100000×100000"),
        "{msg}"
    );

    // Within the limits but far more pixels than the file holds: rejected before decoding.
    let bytes = build_tiff(
        &[
            long(256, 8000),
            long(257, 8000),
            short(258, 8),
            short(259, 1),
            short(262, 1),
            long(279, 10),
        ],
        &[0u8; 10],
    );
    let e = open_bytes("short.tif", bytes, &Limits::default()).unwrap_err();
    assert!(
        matches!(e, IoError::Corrupt { .. } | IoError::Truncated { .. }),
        "{e}"
    );
    // A smaller frame limit applies too.
    let p = dir.path().join("small_limit.tif");
    std::fs::write(&p, gray16_tiff(64, 64, &[], &vec![0u8; 64 * 64 * 2])).unwrap();
    let limits = Limits {
        max_frame_bytes: 1000,
        ..Limits::default()
    };
    let e = open_with_limits(&p, &limits).unwrap_err();
    assert!(matches!(e, IoError::LimitExceeded { .. }), "{e}");
}

#[test]
fn unsupported_tiff_layouts_give_clear_errors() {
    // each names the feature: 24-bit floats, old-style JPEG, LZMA
    let cases: [(&str, u16, u16, u16, &str); 3] = [
        (
            "float24.tif",
            24,
            1,
            1,
            "24-bit samples with floating point",
        ),
        ("ojpeg.tif", 8, 6, 1, "old-style JPEG"),
        ("lzma.tif", 8, 34925, 1, "LZMA"),
    ];
    for (name, bits, compression, photometric, expect) in cases {
        let mut entries = vec![
            long(256, 2),
            long(257, 2),
            short(258, bits),
            short(259, compression),
            short(262, photometric),
            long(279, 12),
        ];
        if bits == 24 {
            entries.push(short(339, 3)); // SampleFormat: IEEE float
        }
        let bytes = build_tiff(&entries, &[0u8; 12]);
        let e = open_bytes(name, bytes, &Limits::default()).unwrap_err();
        assert!(
            matches!(e, IoError::Unsupported { .. }) && e.to_string().contains(expect),
            "{name}: {e}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// FITS

fn fits_bytes_for(bitpix: i32, values: &[f64]) -> Vec<u8> {
    let mut data = Vec::new();
    for &v in values {
        match bitpix {
            8 => data.push(v as u8),
            16 => data.extend_from_slice(&(v as i16).to_be_bytes()),
            32 => data.extend_from_slice(&(v as i32).to_be_bytes()),
            -32 => data.extend_from_slice(&(v as f32).to_be_bytes()),
            -64 => data.extend_from_slice(&v.to_be_bytes()),
            _ => unreachable!(),
        }
    }
    data
}

#[test]
fn fits_every_bitpix_2d_and_3d() {
    let (w, h, n) = (7usize, 5usize, 3usize);
    for (bitpix, st) in [
        (8, SampleType::U8),
        (16, SampleType::I16),
        (32, SampleType::I32),
        (-32, SampleType::F32),
        (-64, SampleType::F64),
    ] {
        let value = |k: usize, i: usize| -> f64 {
            let v = (i * 3 + k * 40) as f64;
            match bitpix {
                8 => v,
                16 => v * 100.0 - 3000.0,
                32 => v * 100_000.0 - 1e6,
                _ => v * 0.125 - 4.0,
            }
        };
        // NAXIS = 2
        let vals: Vec<f64> = (0..w * h).map(|i| value(0, i)).collect();
        let bytes = fits_image(bitpix, &[w, h], &[], &fits_bytes_for(bitpix, &vals));
        let mut s = open_bytes("img.fits", bytes, &Limits::default()).unwrap();
        assert_eq!(s.info().format, "FITS");
        assert_eq!(s.info().sample_type, st, "BITPIX {bitpix}");
        assert_eq!((s.info().width, s.info().height, s.len()), (w, h, 1));
        let f = s.frame(0).unwrap();
        for (i, (&got, &want)) in f.data.iter().zip(&vals).enumerate() {
            assert_eq!(got, want as f32, "BITPIX {bitpix} pixel {i}");
        }
        // Row 0 is the first stored row.
        assert_eq!(f.get(1, 0), vals[1] as f32);
        assert_eq!(f.get(0, 1), vals[w] as f32);
        // NAXIS = 3
        let vals: Vec<f64> = (0..n)
            .flat_map(|k| (0..w * h).map(move |i| value(k, i)))
            .collect();
        let bytes = fits_image(bitpix, &[w, h, n], &[], &fits_bytes_for(bitpix, &vals));
        let mut s = open_bytes("cube.fits", bytes, &Limits::default()).unwrap();
        assert_eq!(s.len(), n);
        for k in [2, 0, 1] {
            let f = s.frame(k).unwrap();
            assert_eq!(
                f.get(2, 3),
                vals[k * w * h + 3 * w + 2] as f32,
                "BITPIX {bitpix} frame {k}"
            );
        }
    }
}

#[test]
fn fits_bzero_bscale_blank() {
    // uint16 convention.
    let raw: Vec<f64> = vec![-32768.0, 0.0, 32767.0, 100.0];
    let bytes = fits_image(
        16,
        &[2, 2],
        &[kv("BZERO", "32768"), kv("BSCALE", "1")],
        &fits_bytes_for(16, &raw),
    );
    let mut s = open_bytes("u16.fits", bytes, &Limits::default()).unwrap();
    assert_eq!(s.info().sample_type, SampleType::U16);
    assert_eq!(
        s.frame(0).unwrap().data,
        vec![0.0, 32768.0, 65535.0, 32868.0]
    );
    // Scaled data with a BLANK value.
    let raw: Vec<f64> = vec![1.0, 2.0, -1.0, 10.0];
    let bytes = fits_image(
        16,
        &[4, 1],
        &[kv("BZERO", "1.5D0"), kv("BSCALE", "0.5"), kv("BLANK", "-1")],
        &fits_bytes_for(16, &raw),
    );
    let mut s = open_bytes("scaled.fits", bytes, &Limits::default()).unwrap();
    assert!(s.info().warnings.iter().any(|w| w.contains("BLANK")));
    let f = s.frame(0).unwrap();
    assert_eq!(f.data[0], 2.0);
    assert_eq!(f.data[1], 2.5);
    assert!(f.data[2].is_nan());
    assert_eq!(f.data[3], 6.5);
    // int8 convention.
    let bytes = fits_image(8, &[2, 1], &[kv("BZERO", "-128")], &[0, 255]);
    let mut s = open_bytes("i8.fits", bytes, &Limits::default()).unwrap();
    assert_eq!(s.info().sample_type, SampleType::I8);
    assert_eq!(s.frame(0).unwrap().data, vec![-128.0, 127.0]);
}

#[test]
fn fits_image_extension_and_unpadded_data() {
    let primary = fits_hdu(
        &[
            kv("SIMPLE", "T"),
            kv("BITPIX", "8"),
            kv("NAXIS", "0"),
            kv("EXTEND", "T"),
        ],
        &[],
    );
    let ext = fits_hdu(
        &[
            kv("XTENSION", "'IMAGE   '"),
            kv("BITPIX", "-32"),
            kv("NAXIS", "2"),
            kv("NAXIS1", "3"),
            kv("NAXIS2", "1"),
            kv("PCOUNT", "0"),
            kv("GCOUNT", "1"),
        ],
        &fits_bytes_for(-32, &[1.5, -2.0, 3.25]),
    );
    let bytes = [primary, ext].concat();
    let mut s = open_bytes("ext.fits", bytes, &Limits::default()).unwrap();
    assert_eq!(s.frame(0).unwrap().data, vec![1.5, -2.0, 3.25]);
    assert!(s.info().warnings.iter().any(|w| w.contains("extension")));

    // Data present but padding missing: accepted, with a warning.
    let full = fits_image(
        16,
        &[3, 2],
        &[],
        &fits_bytes_for(16, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
    );
    let unpadded = &full[..2880 + 12];
    let mut s = open_bytes("unpadded.fits", unpadded.to_vec(), &Limits::default()).unwrap();
    assert!(s.info().warnings.iter().any(|w| w.contains("padded")));
    assert_eq!(s.frame(0).unwrap().get(2, 1), 6.0);
}

#[test]
fn fits_bad_headers() {
    let e = open_bytes(
        "naxis1.fits",
        fits_image(16, &[5], &[], &[0u8; 10]),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(e, IoError::Unsupported { .. }), "{e}");
    let e = open_bytes(
        "bitpix.fits",
        fits_image(12, &[2, 2], &[], &[0u8; 8]),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("BITPIX"), "{e}");
    let e = open_bytes(
        "b64.fits",
        fits_image(64, &[2, 2], &[], &[0u8; 32]),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(e, IoError::Unsupported { .. }), "{e}");
    // No END card.
    let mut noend = kv("SIMPLE", "T");
    noend.resize(2880, b' ');
    let e = open_bytes("noend.fits", noend, &Limits::default()).unwrap_err();
    assert!(
        matches!(e, IoError::Truncated { .. }) && e.to_string().contains("END"),
        "{e}"
    );
    // Declared data longer than the file.
    let mut b = fits_image(16, &[100, 100], &[], &[]);
    b.truncate(2880 + 100);
    let e = open_bytes("short.fits", b, &Limits::default()).unwrap_err();
    assert!(matches!(e, IoError::Truncated { .. }), "{e}");
}

#[test]
fn huge_declared_fits_is_rejected_quickly() {
    let dir = tempdir();
    let p = dir.path().join("huge.fits");
    std::fs::write(&p, fits_image(16, &[100_000, 100_000], &[], &[])).unwrap();
    let e = open(&p).unwrap_err();
    assert!(matches!(e, IoError::LimitExceeded { .. }), "{e}");
    assert!(
        e.to_string().contains("limit") && e.to_string().contains("huge.fits"),
        "{e}"
    );
    // Frame count limit.
    let b = fits_image(8, &[1, 1, 50_000_000], &[], &[]);
    let e = open_bytes("deep.fits", b, &Limits::default()).unwrap_err();
    assert!(e.to_string().contains("max_frames"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// PNG / JPEG

#[test]
fn png_gray8_gray16_rgb() {
    let g8 = image::GrayImage::from_fn(5, 3, |x, y| image::Luma([(x * 10 + y) as u8]));
    let mut s = open_bytes("g8.png", encode_png(g8.into()), &Limits::default()).unwrap();
    assert_eq!(s.info().format, "PNG");
    assert_eq!(s.info().sample_type, SampleType::U8);
    assert!(s.info().warnings.is_empty());
    assert_eq!(s.frame(0).unwrap().get(4, 2), 42.0);

    let g16 = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_fn(5, 3, |x, y| {
        image::Luma([(x * 10000 + y) as u16])
    });
    let mut s = open_bytes("g16.png", encode_png(g16.into()), &Limits::default()).unwrap();
    assert_eq!(s.info().sample_type, SampleType::U16);
    assert_eq!(s.frame(0).unwrap().get(4, 1), 40001.0);

    let rgb = image::RgbImage::from_fn(2, 2, |x, _| image::Rgb([100 * x as u8, 50, 255]));
    let mut s = open_bytes("rgb.png", encode_png(rgb.into()), &Limits::default()).unwrap();
    assert!(s.info().warnings.iter().any(|w| w.contains("luminance")));
    assert_close(
        s.frame(0).unwrap().get(1, 0),
        0.2126 * 100.0 + 0.7152 * 50.0 + 0.0722 * 255.0,
        1e-3,
    );
    assert!(s.frame(1).is_err());
}

#[test]
fn format_is_chosen_by_content_not_extension() {
    let g8 = image::GrayImage::from_fn(2, 2, |x, _| image::Luma([x as u8]));
    let s = open_bytes(
        "actually_png.tif",
        encode_png(g8.into()),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(s.info().format, "PNG");
}

#[test]
fn jpeg_gray_and_rgb() {
    let g = image::GrayImage::from_pixel(16, 16, image::Luma([100]));
    let mut s = open_bytes("g.jpg", encode_jpeg(g.into()), &Limits::default()).unwrap();
    assert_eq!(s.info().format, "JPEG");
    assert!(s.info().warnings.is_empty());
    let f = s.frame(0).unwrap();
    assert_close(f.get(8, 8), 100.0, 2.0);
    let rgb = image::RgbImage::from_pixel(16, 16, image::Rgb([200, 100, 50]));
    let mut s = open_bytes("c.jpg", encode_jpeg(rgb.into()), &Limits::default()).unwrap();
    assert!(s.info().warnings.iter().any(|w| w.contains("luminance")));
    assert_close(
        s.frame(0).unwrap().get(3, 3),
        0.2126 * 200.0 + 0.7152 * 100.0 + 0.0722 * 50.0,
        4.0,
    );
}

#[test]
fn png_writer_maps_range() {
    let dir = tempdir();
    let p = dir.path().join("preview.png");
    let f = frame_from(4, 1, vec![-1.0, 0.0, 5.0, 10.0]);
    write_png_gray16(&p, &f, 0.0, 10.0).unwrap();
    assert!(!dir.path().join("preview.png.tmp").exists());
    let mut s = open(&p).unwrap();
    assert_eq!(s.info().sample_type, SampleType::U16);
    assert_eq!(s.frame(0).unwrap().data, vec![0.0, 0.0, 32768.0, 65535.0]);
    let e = write_png_gray16(&p, &f, 3.0, 3.0).unwrap_err();
    assert!(matches!(e, IoError::InvalidInput { .. }), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Bad input

#[test]
fn empty_missing_and_unknown_files() {
    let dir = tempdir();
    let p = dir.path().join("empty.tif");
    std::fs::write(&p, b"").unwrap();
    let e = open(&p).unwrap_err();
    assert!(matches!(e, IoError::Empty { .. }), "{e}");
    assert!(e.to_string().contains("empty.tif"));
    let e = open(&dir.path().join("missing.fits")).unwrap_err();
    assert!(
        matches!(e, IoError::Io { .. }) && e.to_string().contains("missing.fits"),
        "{e}"
    );
    let p = dir.path().join("notes.txt");
    std::fs::write(&p, b"hello").unwrap();
    let e = open(&p).unwrap_err();
    assert!(matches!(e, IoError::UnknownFormat { .. }), "{e}");
    let e = open(dir.path()).unwrap_err();
    assert!(
        e.to_string().contains(&*dir.path().to_string_lossy()),
        "{e}"
    );
    // Header only.
    for b in [
        &b"II*\0"[..],
        b"MM\0*\0\0",
        b"II+\0\x08\0\0\0",
        b"SIMPLE  =",
        b"\x89PNG\r\n\x1a\n",
        b"\xFF\xD8\xFF",
    ] {
        assert!(open_bytes("hdr", b.to_vec(), &Limits::default()).is_err());
    }
}

/// Valid files of every kind, with a name (whose extension is only cosmetic) and the length
/// below which every truncation must be an error.
fn valid_fixtures() -> Vec<(String, Vec<u8>, usize)> {
    let mut out = Vec::new();
    let (w, h) = (24u32, 10u32);
    let u16_pages: Vec<Vec<u16>> = (0..3)
        .map(|k| (0..w * h).map(|i| (i * 37 + k * 1000) as u16).collect())
        .collect();
    let mut add = |name: &str, b: Vec<u8>| {
        let n = b.len();
        out.push((name.to_string(), b, n));
    };
    add(
        "plain.tif",
        encode::<colortype::Gray16>(w, h, &u16_pages, Compression::Uncompressed, false),
    );
    add(
        "lzw.tif",
        encode::<colortype::Gray16>(w, h, &u16_pages, Compression::Lzw, false),
    );
    add(
        "deflate.tif",
        encode::<colortype::Gray16>(
            w,
            h,
            &u16_pages,
            Compression::Deflate(DeflateLevel::Balanced),
            false,
        ),
    );
    add(
        "packbits.tif",
        encode::<colortype::Gray16>(w, h, &u16_pages, Compression::Packbits, false),
    );
    add(
        "big.tif",
        encode::<colortype::Gray16>(w, h, &u16_pages, Compression::Lzw, true),
    );
    let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i % 251) as u8).collect();
    add(
        "rgb.tif",
        encode::<colortype::RGB8>(w, h, &[rgb], Compression::Uncompressed, false),
    );
    let fl: Vec<f32> = (0..w * h).map(|i| i as f32 * 0.1).collect();
    add(
        "float.tif",
        encode::<colortype::Gray32Float>(
            w,
            h,
            &[fl.clone(), fl],
            Compression::Deflate(DeflateLevel::Fast),
            false,
        ),
    );
    let g8 = image::GrayImage::from_fn(w, h, |x, y| image::Luma([(x * 7 + y) as u8]));
    add("g8.png", encode_png(g8.clone().into()));
    let g16 = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_fn(w, h, |x, y| {
        image::Luma([(x * 700 + y) as u16])
    });
    add("g16.png", encode_png(g16.into()));
    let rgb = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 9]));
    add("rgb.png", encode_png(rgb.clone().into()));
    add("g.jpg", encode_jpeg(g8.into()));
    add("rgb.jpg", encode_jpeg(rgb.into()));
    // tiled planar RGB written by tifffile (the tile-by-tile decode path)
    let tiff_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiff");
    for name in ["tiled_planar_rgb16.tif", "tiled_planar_rgb8_deflate.tif"] {
        add(name, std::fs::read(tiff_dir.join(name)).unwrap());
    }
    // FITS: truncating inside the final padding leaves all data intact (accepted with a
    // warning, tested above), so only lengths up to the end of the data count.
    let vals: Vec<f64> = (0..(w * h * 2) as usize)
        .map(|i| i as f64 - 100.0)
        .collect();
    for bitpix in [16, -32] {
        let data = fits_bytes_for(bitpix, &vals);
        let data_end = 2880 + data.len();
        let b = fits_image(bitpix, &[w as usize, h as usize, 2], &[], &data);
        out.push((format!("cube{bitpix}.fits"), b, data_end));
    }
    out
}

#[test]
fn fixtures_are_valid() {
    for (name, bytes, _) in valid_fixtures() {
        let frames = open_all(&name, &bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!frames.is_empty());
    }
}

#[test]
fn every_truncation_is_an_error() {
    for (name, bytes, must_fail_below) in valid_fixtures() {
        let lengths: Vec<usize> = if must_fail_below <= 3000 {
            (0..must_fail_below).collect()
        } else {
            // Every byte of the first and last 600, and 400 spread over the rest.
            (0..600)
                .chain((0..400).map(|i| 600 + i * (must_fail_below - 1200) / 400))
                .chain(must_fail_below - 600..must_fail_below)
                .collect()
        };
        for len in lengths {
            let r = open_all(&name, &bytes[..len]);
            assert!(
                r.is_err(),
                "{name} truncated to {len} of {} bytes was accepted",
                bytes.len()
            );
            let e = r.unwrap_err();
            assert!(e.to_string().starts_with(&format!("{name}: ")), "{e}");
        }
    }
}

#[test]
fn random_corruptions_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for (name, bytes, _) in valid_fixtures() {
        let mut ok = 0;
        for _ in 0..500 {
            let mut b = bytes.clone();
            let pos = rng.below(b.len());
            let flip = 1 + rng.below(255) as u8;
            b[pos] ^= flip;
            if let Ok(mut s) = open_bytes(&name, b, &Limits::default()) {
                if read_all(&mut s, 4).is_ok() {
                    ok += 1;
                }
            }
        }
        // Flips in uncompressed pixel data leave the file readable (PNG and compressed data
        // carry checksums, so there every flip may be an error).
        if name == "plain.tif" || name.ends_with(".fits") {
            assert!(ok > 0, "{name}: no corruption was survivable");
        }
    }
}

#[test]
fn repeated_bytes_and_junk_are_rejected() {
    let mut rng = Rng(42);
    for magic in [
        &b"II*\0"[..],
        b"MM\0*",
        b"II+\0",
        b"SIMPLE  =",
        b"\x89PNG\r\n\x1a\n",
        b"\xFF\xD8\xFF",
    ] {
        for _ in 0..50 {
            let n = rng.below(3000);
            let mut b = magic.to_vec();
            b.extend((0..n).map(|_| rng.next() as u8));
            let _ = open_all("junk", &b);
        }
    }
}

/// Writes the valid fixtures as seed corpora for the fuzz targets, under
/// `fuzz/corpus/<target>/`. Run by hand before fuzzing (see docs/FUZZING.md):
/// `cargo test --test io -- --ignored write_fuzz_seeds`.
#[test]
#[ignore = "writes seed files under fuzz/corpus"]
fn write_fuzz_seeds() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut written = 0;
    for (name, bytes, _) in valid_fixtures() {
        let target = if name.ends_with(".tif") {
            "fuzz_tiff"
        } else if name.ends_with(".fits") {
            "fuzz_fits"
        } else {
            "fuzz_png"
        };
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(format!("seed_{name}"));
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), bytes);
        written += 1;
    }
    assert!(written >= 10);
}

mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn u16_stack_round_trip(w in 1usize..20, h in 1usize..20, n in 1usize..4, seed in any::<u64>()) {
            let mut rng = Rng(seed | 1);
            let frames: Vec<Frame> = (0..n)
                .map(|_| Frame::new(w, h, (0..w * h).map(|_| (rng.next() % 65536) as f32).collect()))
                .collect();
            let dir = tempdir();
            let p = dir.path().join("p.tif");
            write_tiff_stack(&p, &frames, WriteSample::U16, Some(97.5)).unwrap();
            let mut s = open(&p).unwrap();
            prop_assert_eq!(s.len(), n);
            prop_assert!((s.info().pixel_size_nm.unwrap() - 97.5).abs() < 1e-9);
            for (k, f) in frames.iter().enumerate().rev() {
                prop_assert_eq!(&s.frame(k).unwrap().data, &f.data);
            }
        }
    }
}

/// Tiled, planar RGB TIFFs (PlanarConfiguration 2) whose edge tiles stick out
/// of the image: tiff 0.11's whole-image read asserts on them; PoseScope
/// decodes them tile by tile. Fixtures by tifffile
/// (tests/fixtures/tiff/make_tiled_planar.py), compared with the same pixels
/// written as interleaved strips.
#[test]
fn tiled_planar_tiffs_decode_like_their_interleaved_twins() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiff");
    for (tiled, strips) in [
        ("tiled_planar_rgb16.tif", "strips_rgb16.tif"),
        ("tiled_planar_rgb8_deflate.tif", "strips_rgb8.tif"),
    ] {
        let a = open(&dir.join(tiled)).unwrap().frame(0).unwrap();
        let b = open(&dir.join(strips)).unwrap().frame(0).unwrap();
        assert_eq!((a.width, a.height), (70, 50), "{tiled}");
        assert_eq!(a.data, b.data, "{tiled}");
        assert!(a.data.iter().any(|&v| v > 0.0));
    }
}
