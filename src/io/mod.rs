//! Image I/O: reading microscopy image stacks (TIFF, BigTIFF, FITS, PNG, JPEG) and writing
//! TIFF stacks and 16-bit PNG previews; the pose CSV schema ([`PoseRow`], [`write_pose_csv`],
//! [`read_pose_csv`]) and atomic writes ([`atomic_write`]) that every output goes through.
//!
//! Owns: file formats, [`Limits`], [`IoError`] and [`OutputError`]. Must not import `render`,
//! `estimate`, `export`, `app`, candle, wgpu or egui (it uses only `geometry`'s pose type).
//!
//! # Reading
//!
//! [`open`] (or [`open_with_limits`], or [`open_bytes`] for data already in memory) looks at the
//! first bytes of the file — not only its extension — to pick a decoder, reads the headers and
//! returns a [`Stack`]. Every frame is returned as a [`Frame`] of `f32` values in row-major
//! order, keeping the original sample values (no rescaling to 0..1). Colour images are converted
//! to luminance (`0.2126 R + 0.7152 G + 0.0722 B`), with a note in [`StackInfo::warnings`].
//!
//! TIFF is read in four files: `tiff_ifd` (our own walk of the directory chain and tag
//! checks), `tiff_read` (the backend: pages, layouts, the `tiff` crate's decoder),
//! `tiff_disguise` (pages the crate refuses to interpret but can decompress: palettes and
//! packed depths, shown to it through rewritten directory entries) and `tiff_samples`
//! (decoded samples → one grey value: unpacking, luminance, CMYK).
//!
//! ## Lazy reading
//!
//! Opening a stack never decodes pixel data. For TIFF, opening walks the chain of image file
//! directories (IFDs) once, reading only each directory's entry table, and records the offset of
//! every page; [`Stack::frame`] then decodes only the requested page, starting a decoder directly
//! at that page's directory. For FITS, opening parses the header and computes where the data of
//! each plane begins; [`Stack::frame`] seeks there and reads exactly one plane. Opening a
//! multi-gigabyte stack and reading frame 0 therefore needs about one frame of memory (plus
//! eight bytes per TIFF page for the offset table). A page that is corrupt makes only
//! `frame(that page)` fail.
//!
//! ## Limits
//!
//! Files are untrusted input. [`Limits`] caps the size of one decoded frame (counted as `f32`
//! bytes, `width * height * 4`) and the number of frames. Declared sizes are checked against
//! these limits, and against the length of the file, *before* any buffer is allocated, so a
//! 100-byte file that claims to hold a 100000×100000 image is rejected at once. The raw sample
//! buffer of one page (before conversion to `f32`) may be at most twice `max_frame_bytes`,
//! which covers every grey-scale layout and 8/16-bit colour; the same bound is handed to the
//! `tiff` and `image` decoders as their own allocation limits. IFD chains are capped at
//! `max_frames` entries and checked for loops, so a malicious file cannot make opening hang.
//! Decoding by third-party crates runs under [`std::panic::catch_unwind`] as a last line of
//! defence: a panic inside a decoder becomes [`IoError::Corrupt`].
//!
//! Bad input — truncated, corrupt, empty, absurdly large files or unsupported layouts — gives an
//! [`IoError`] whose message starts with the file's path and names the problem, e.g.
//! `foo.tif: truncated: page 3: strip 0 (offset 81234, 65536 bytes) extends past the end of the
//! file (90000 bytes)`.
//!
//! NaN pixels in floating-point data are kept; the first frames found to contain them are noted
//! in [`StackInfo::warnings`] when they are read.
//!
//! ```no_run
//! use std::path::Path;
//! use posescope::io;
//!
//! let mut stack = io::open(Path::new("movie.tif"))?;
//! let info = stack.info();
//! println!("{}: {} frames of {}×{} {}", info.format, info.frames, info.width, info.height, info.sample_type);
//! let last = stack.frame(stack.len() - 1)?; // decodes only that page
//! let (lo, hi) = last.min_max();
//! # let _ = (lo, hi);
//! # Ok::<(), io::IoError>(())
//! ```
//!
//! ## Image sequences
//!
//! [`ImageSequence`] reads single-frame files of one size (a folder of cut-outs) as one
//! stack: frame `k` is file `k`'s frame, each file opened only when its frame is read.
//!
//! # Writing
//!
//! [`write_tiff_stack`] writes a multi-page grey-scale TIFF (16-bit unsigned or 32-bit float),
//! with an ImageJ-style description and the pixel size stored so that ImageJ, Fiji and this
//! reader all find it. [`write_png_gray16`] writes one frame as a 16-bit PNG. Both write to
//! `<path>.tmp` first and rename it over `<path>` when complete.

mod atomic;
mod error;
mod fits;
mod frame;
mod jpeg_guard;
pub mod locs;
mod metadata;
mod paths;
mod pose_csv;
mod raster;
mod raw;
mod sequence;
mod tiff_disguise;
mod tiff_ifd;
mod tiff_read;
mod tiff_samples;
mod write;

use std::collections::BTreeSet;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

pub use atomic::{atomic_write, temp_sibling, OutputError};
pub use error::IoError;
pub use frame::{Frame, Limits, SampleType, StackInfo};
pub use metadata::unit_to_nm;
pub use paths::{expand_paths, is_image_path, natural_cmp, IMAGE_EXTENSIONS};
pub use pose_csv::{read_pose_csv, write_pose_csv, PoseRow, POSE_COLUMNS};
pub use sequence::{ImageSequence, SequenceOpen};
pub use write::{write_png_gray16, write_tiff_stack, WriteSample};

/// Byte stream a [`Stack`] reads from: a buffered file or an in-memory buffer.
pub(crate) trait Source: BufRead + Seek + Send {}
impl<T: BufRead + Seek + Send> Source for T {}

/// The per-format part of a [`Stack`].
enum Backend {
    Tiff(tiff_read::TiffBackend),
    Fits(fits::FitsBackend),
    Raster(raster::RasterBackend),
}

/// At most this many frames with NaN pixels are listed individually in the warnings.
const MAX_NAN_WARNINGS: usize = 16;

/// An opened image stack. Owns its file handle (or buffer); frames are decoded on demand.
pub struct Stack {
    info: StackInfo,
    source: Box<dyn Source>,
    backend: Backend,
    limits: Limits,
    nan_frames: BTreeSet<usize>,
}

impl fmt::Debug for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stack")
            .field("info", &self.info)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Stack {
    /// Metadata gathered when opening (and warnings added by frames read since).
    pub fn info(&self) -> &StackInfo {
        &self.info
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.info.frames
    }

    /// Whether the stack has no frames (never the case for a successfully opened file).
    pub fn is_empty(&self) -> bool {
        self.info.frames == 0
    }

    /// The limits this stack was opened with.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Decodes frame `index` (random access; only that page or plane is read).
    pub fn frame(&mut self, index: usize) -> Result<Frame, IoError> {
        if index >= self.info.frames {
            return Err(IoError::FrameOutOfRange {
                path: self.info.path.clone(),
                index,
                frames: self.info.frames,
            });
        }
        let ctx = Ctx {
            path: &self.info.path,
            limits: &self.limits,
        };
        let source: &mut dyn Source = &mut *self.source;
        let frame = match &self.backend {
            Backend::Tiff(b) => b.read_frame(source, &ctx, index)?,
            Backend::Fits(b) => b.read_frame(source, &ctx, index)?,
            Backend::Raster(b) => b.read_frame(source, &ctx)?,
        };
        if frame.width != self.info.width
            || frame.height != self.info.height
            || frame.data.len() != frame.width * frame.height
        {
            return Err(IoError::corrupt(
                &self.info.path,
                format!(
                    "frame {index} decoded as {}×{} ({} values), expected {}×{}",
                    frame.width,
                    frame.height,
                    frame.data.len(),
                    self.info.width,
                    self.info.height
                ),
            ));
        }
        self.note_nans(index, &frame);
        Ok(frame)
    }

    /// Iterates over all frames in order.
    pub fn frames(&mut self) -> impl Iterator<Item = Result<Frame, IoError>> + '_ {
        (0..self.len()).map(move |i| self.frame(i))
    }

    fn note_nans(&mut self, index: usize, frame: &Frame) {
        if self.nan_frames.contains(&index) || self.nan_frames.len() > MAX_NAN_WARNINGS {
            return;
        }
        let nans = frame.data.iter().filter(|v| v.is_nan()).count();
        if nans == 0 {
            return;
        }
        self.nan_frames.insert(index);
        if self.nan_frames.len() > MAX_NAN_WARNINGS {
            self.info
                .warnings
                .push("more frames contain NaN pixels (not listed)".to_string());
        } else {
            self.info.warnings.push(format!(
                "frame {index} contains {nans} NaN pixel(s); they are kept as NaN"
            ));
        }
    }
}

/// Context handed to the format back-ends.
pub(crate) struct Ctx<'a> {
    pub path: &'a Path,
    pub limits: &'a Limits,
}

/// Opens an image stack with default [`Limits`].
///
/// The format is chosen from the file's first bytes (the extension is only used in error
/// messages). See the [module documentation](self) for what is read when.
pub fn open(path: &Path) -> Result<Stack, IoError> {
    open_with_limits(path, &Limits::default())
}

/// Opens an image stack, rejecting files whose declared sizes exceed `limits`.
pub fn open_with_limits(path: &Path, limits: &Limits) -> Result<Stack, IoError> {
    let file = File::open(path).map_err(|e| IoError::io(path, e))?;
    let meta = file.metadata().map_err(|e| IoError::io(path, e))?;
    if !meta.is_file() {
        return Err(IoError::unsupported(path, "not a regular file"));
    }
    let len = meta.len();
    open_source(
        path.to_path_buf(),
        Box::new(FileSource::new(file)),
        len,
        limits,
    )
}

/// A buffered file reader whose seeks stay inside the buffer when they can (unlike
/// `std::io::BufReader`, which drops its buffer on every seek). Walking a chain of small TIFF
/// directories then costs one read per buffer, not one per directory.
struct FileSource {
    file: File,
    buf: Box<[u8]>,
    /// File offset of `buf[0]`; the file's own cursor is always at `start + filled`.
    start: u64,
    filled: usize,
    pos: usize,
}

impl FileSource {
    fn new(file: File) -> Self {
        FileSource {
            file,
            buf: vec![0; 16 * 1024].into_boxed_slice(),
            start: 0,
            filled: 0,
            pos: 0,
        }
    }
}

impl Read for FileSource {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.filled && out.len() >= self.buf.len() {
            // Large read with an empty buffer: bypass it.
            let n = self.file.read(out)?;
            self.start += (self.filled + n) as u64;
            self.filled = 0;
            self.pos = 0;
            return Ok(n);
        }
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for FileSource {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.pos >= self.filled {
            self.start += self.filled as u64;
            self.filled = 0;
            self.pos = 0;
            self.filled = self.file.read(&mut self.buf)?;
        }
        Ok(&self.buf[self.pos..self.filled])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.filled);
    }
}

impl Seek for FileSource {
    fn seek(&mut self, target: SeekFrom) -> std::io::Result<u64> {
        let here = self.start + self.pos as u64;
        let absolute = match target {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => here.checked_add_signed(d),
            SeekFrom::End(_) => None,
        };
        if let Some(t) = absolute {
            if t >= self.start && t <= self.start + self.filled as u64 {
                self.pos = (t - self.start) as usize;
                return Ok(t);
            }
        }
        let t = match absolute {
            Some(t) => self.file.seek(SeekFrom::Start(t))?,
            None => self.file.seek(target)?,
        };
        self.start = t;
        self.filled = 0;
        self.pos = 0;
        Ok(t)
    }
}

/// Opens an image held in memory; `name` is used as the path in [`StackInfo`] and in errors.
pub fn open_bytes(name: &str, bytes: Vec<u8>, limits: &Limits) -> Result<Stack, IoError> {
    let len = bytes.len() as u64;
    open_source(
        PathBuf::from(name),
        Box::new(Cursor::new(bytes)),
        len,
        limits,
    )
}

/// Recognised file signatures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Tiff,
    Fits,
    Png,
    Jpeg,
}

fn sniff(magic: &[u8]) -> Option<Kind> {
    if magic.starts_with(b"II*\0")
        || magic.starts_with(b"MM\0*")
        || magic.starts_with(b"II+\0")
        || magic.starts_with(b"MM\0+")
    {
        Some(Kind::Tiff)
    } else if magic.starts_with(b"SIMPLE  =") {
        Some(Kind::Fits)
    } else if magic.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(Kind::Png)
    } else if magic.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Kind::Jpeg)
    } else {
        None
    }
}

fn open_source(
    path: PathBuf,
    mut source: Box<dyn Source>,
    file_len: u64,
    limits: &Limits,
) -> Result<Stack, IoError> {
    if file_len == 0 {
        return Err(IoError::Empty { path });
    }
    let mut magic = Vec::with_capacity(16);
    source
        .by_ref()
        .take(16)
        .read_to_end(&mut magic)
        .map_err(|e| IoError::io(&path, e))?;
    source
        .seek(SeekFrom::Start(0))
        .map_err(|e| IoError::io(&path, e))?;
    let kind = sniff(&magic).ok_or_else(|| unknown_format(&path, &magic))?;
    let ctx = Ctx {
        path: &path,
        limits,
    };
    let (backend, header) = match kind {
        Kind::Tiff => {
            let (b, h) = tiff_read::TiffBackend::open(&mut *source, &ctx, file_len)?;
            (Backend::Tiff(b), h)
        }
        Kind::Fits => {
            let (b, h) = fits::FitsBackend::open(&mut *source, &ctx, file_len)?;
            (Backend::Fits(b), h)
        }
        Kind::Png | Kind::Jpeg => {
            let (b, h) =
                raster::RasterBackend::open(&mut *source, &ctx, file_len, kind == Kind::Png)?;
            (Backend::Raster(b), h)
        }
    };
    if header.frames == 0 {
        return Err(IoError::corrupt(&path, "no frames"));
    }
    let info = StackInfo {
        path,
        format: header.format,
        width: header.width,
        height: header.height,
        frames: header.frames,
        sample_type: header.sample_type,
        bits_per_sample: header.bits_per_sample,
        palette: header.palette,
        pixel_size_nm: header.pixel_size_nm,
        warnings: header.warnings,
    };
    tracing::debug!(
        path = %info.path.display(),
        format = info.format,
        width = info.width,
        height = info.height,
        frames = info.frames,
        sample_type = %info.sample_type,
        "opened image stack"
    );
    Ok(Stack {
        info,
        source,
        backend,
        limits: limits.clone(),
        nan_frames: BTreeSet::new(),
    })
}

fn unknown_format(path: &Path, magic: &[u8]) -> IoError {
    let hex: Vec<String> = magic.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    let hint = match ext.as_deref() {
        Some("tif" | "tiff" | "btf" | "tf8") => {
            " (the extension says TIFF but the TIFF signature is missing)"
        }
        Some("fits" | "fit" | "fts") => {
            " (the extension says FITS but the file does not start with SIMPLE  =)"
        }
        Some("png") => " (the extension says PNG but the PNG signature is missing)",
        Some("jpg" | "jpeg") => " (the extension says JPEG but the JPEG signature is missing)",
        _ => "",
    };
    IoError::UnknownFormat {
        path: path.to_path_buf(),
        detail: format!(
            "first bytes [{}] are not TIFF, BigTIFF, FITS, PNG or JPEG{hint}",
            hex.join(" ")
        ),
    }
}

/// What a back-end found when opening; becomes the [`StackInfo`].
pub(crate) struct Header {
    pub format: &'static str,
    pub width: usize,
    pub height: usize,
    pub frames: usize,
    pub sample_type: SampleType,
    pub bits_per_sample: u8,
    pub palette: Option<Vec<[u8; 3]>>,
    pub pixel_size_nm: Option<f64>,
    pub warnings: Vec<String>,
}

/// Seeks to `offset` and fills `buf`, mapping errors (end of file → [`IoError::Truncated`]).
pub(crate) fn read_exact_at(
    source: &mut dyn Source,
    path: &Path,
    offset: u64,
    buf: &mut [u8],
    what: &str,
) -> Result<(), IoError> {
    source
        .seek(SeekFrom::Start(offset))
        .map_err(|e| IoError::io(path, e))?;
    source
        .read_exact(buf)
        .map_err(|e| IoError::read(path, what, e))
}

/// Runs `f`, turning a panic inside a dependency into [`IoError::Corrupt`].
///
/// This is a last line of defence only: inputs are validated before they reach decoders.
pub(crate) fn guard<T>(
    path: &Path,
    what: &str,
    f: impl FnOnce() -> Result<T, IoError>,
) -> Result<T, IoError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            tracing::warn!(path = %path.display(), %msg, "decoder panicked");
            Err(IoError::corrupt(
                path,
                format!("{what}: decoder failed ({msg})"),
            ))
        }
    }
}

/// Luminance weights (Rec. 709) used for colour → grey conversion.
pub(crate) const LUMA: [f32; 3] = [0.2126, 0.7152, 0.0722];

/// The warning added when colour is converted to luminance.
pub(crate) fn luminance_warning(what: &str) -> String {
    format!("{what} converted to luminance (0.2126 R + 0.7152 G + 0.0722 B)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<Stack>();
    }

    #[test]
    fn sample_type_display() {
        assert_eq!(SampleType::U16.to_string(), "uint16");
        assert_eq!(SampleType::F32.to_string(), "float32");
        assert_eq!(SampleType::I8.to_string(), "int8");
        assert_eq!(SampleType::F64.to_string(), "float64");
        assert_eq!(SampleType::U32.bytes(), 4);
    }

    #[test]
    fn frame_min_max_ignores_nan() {
        let f = Frame::new(2, 2, vec![f32::NAN, 3.0, -1.0, f32::NAN]);
        assert_eq!(f.min_max(), (-1.0, 3.0));
        assert_eq!(f.get(1, 0), 3.0);
        assert_eq!(f.get(0, 1), -1.0);
        let all_nan = Frame::new(1, 1, vec![f32::NAN]);
        let (lo, hi) = all_nan.min_max();
        assert!(lo.is_nan() && hi.is_nan());
    }

    #[test]
    fn sniff_signatures() {
        assert_eq!(sniff(b"II*\0\x08\0\0\0"), Some(Kind::Tiff));
        assert_eq!(sniff(b"MM\0+\0\x08\0\0"), Some(Kind::Tiff));
        assert_eq!(sniff(b"SIMPLE  =    T"), Some(Kind::Fits));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n"), Some(Kind::Png));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(Kind::Jpeg));
        assert_eq!(sniff(b"GIF89a"), None);
    }

    #[test]
    fn errors_name_the_file() {
        let e = open_bytes("x.tif", b"hello world".to_vec(), &Limits::default()).unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("x.tif: unrecognised format"), "{msg}");
        assert!(msg.contains("extension says TIFF"), "{msg}");
        let e = open_bytes("y.fits", Vec::new(), &Limits::default()).unwrap_err();
        assert!(matches!(e, IoError::Empty { .. }));
        assert_eq!(e.path(), Path::new("y.fits"));
    }

    #[test]
    fn file_source_matches_file_contents_under_random_seeks() {
        let bytes: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut tmp, &bytes).unwrap();
        let mut src = FileSource::new(File::open(tmp.path()).unwrap());
        let mut state = 12345u64;
        for _ in 0..2000 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let r = (state >> 33) as usize;
            let len = [1, 2, 12, 500, 20_000, 40_000][r % 6];
            let at = (r / 7) % (bytes.len() - len);
            match r % 3 {
                0 => src.seek(SeekFrom::Start(at as u64)).unwrap(),
                1 => {
                    let here = src.stream_position().unwrap() as i64;
                    src.seek(SeekFrom::Current(at as i64 - here)).unwrap()
                }
                _ => src
                    .seek(SeekFrom::End(at as i64 - bytes.len() as i64))
                    .unwrap(),
            };
            let mut buf = vec![0u8; len];
            src.read_exact(&mut buf).unwrap();
            assert_eq!(buf, &bytes[at..at + len]);
        }
        src.seek(SeekFrom::Start(bytes.len() as u64 - 3)).unwrap();
        let mut rest = Vec::new();
        src.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, &bytes[bytes.len() - 3..]);
    }

    #[test]
    fn limits_check_frame() {
        let l = Limits::default();
        assert!(l.check_frame(Path::new("a"), 1000, 1000).is_ok());
        // a 32768² whole-field image opens by default; one column more does not
        assert!(l.check_frame(Path::new("a"), 32768, 32768).is_ok());
        assert!(l.check_frame(Path::new("a"), 32769, 32768).is_err());
        let e = l.check_frame(Path::new("a"), 100_000, 100_000).unwrap_err();
        assert!(e.to_string().contains("max_frame_bytes"), "{e}");
        assert!(l.check_frame(Path::new("a"), u64::MAX, u64::MAX).is_err());
        assert!(l.check_frames(Path::new("a"), 10_000_001).is_err());
    }
}
