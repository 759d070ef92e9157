//! Turning what a user types (files and folders) into the list of image
//! files to open: folders are walked (one level) for the image types
//! PoseScope reads, and every list is in natural order (`p2` before `p10`),
//! so `posescope fit particles/` fits a folder of one-FITS-per-particle files
//! in the order a person would number them.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use super::IoError;

/// File extensions (lower case) of the image formats PoseScope opens.
pub const IMAGE_EXTENSIONS: [&str; 9] = [
    "tif", "tiff", "btf", "fits", "fit", "fts", "png", "jpg", "jpeg",
];

/// True when the path's extension is one of [`IMAGE_EXTENSIONS`].
pub fn is_image_path(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Files stay as given (in the order given); each folder is replaced by the
/// image files directly inside it, in natural order. A folder without images
/// is an error naming it, as is one that cannot be read.
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, IoError> {
    // files named explicitly are kept whatever they are (images or tables)
    let mut out = Vec::new();
    for p in paths {
        if !p.is_dir() {
            out.push(p.clone());
            continue;
        }
        let entries = std::fs::read_dir(p).map_err(|e| IoError::io(p, e))?;
        let mut files = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| IoError::io(p, e))?.path();
            if path.is_file() && is_image_path(&path) {
                files.push(path);
            }
        }
        if files.is_empty() {
            return Err(IoError::unsupported(
                p,
                format!(
                    "the folder holds no image files ({})",
                    IMAGE_EXTENSIONS.join(", ")
                ),
            ));
        }
        files.sort_by(|a, b| natural_cmp(&a.to_string_lossy(), &b.to_string_lossy()));
        out.extend(files);
    }
    Ok(out)
}

/// Natural order: runs of digits compare as numbers (`frame2` < `frame10`),
/// everything else character by character; ties fall back to plain order.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.chars().peekable(), b.chars().peekable());
    loop {
        match (x.peek().copied(), y.peek().copied()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let take = |it: &mut std::iter::Peekable<std::str::Chars<'_>>| {
                    let mut s = String::new();
                    while let Some(c) = it.peek().copied().filter(char::is_ascii_digit) {
                        s.push(c);
                        it.next();
                    }
                    s
                };
                let (m, n) = (take(&mut x), take(&mut y));
                let (m, n) = (m.trim_start_matches('0'), n.trim_start_matches('0'));
                match m.len().cmp(&n.len()).then_with(|| m.cmp(n)) {
                    Ordering::Equal => {}
                    o => return o,
                }
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(&d);
                }
                x.next();
                y.next();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_compares_numbers_as_numbers() {
        let mut v = vec![
            "p10.fits",
            "p2.fits",
            "p1.fits",
            "p02b.fits",
            "q.fits",
            "p100.fits",
        ];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            [
                "p1.fits",
                "p2.fits",
                "p02b.fits",
                "p10.fits",
                "p100.fits",
                "q.fits"
            ]
        );
        // huge numbers do not overflow
        assert_eq!(
            natural_cmp("a99999999999999999999999", "a100000000000000000000000"),
            Ordering::Less
        );
    }

    #[test]
    fn folders_expand_to_their_images_in_natural_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["p10.fits", "p2.FITS", "notes.txt", "p1.tif"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub.tif")).unwrap();
        let single = dir.path().join("p10.fits");
        let got = expand_paths(&[single.clone(), dir.path().to_path_buf()]).unwrap();
        let names: Vec<_> = got
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["p10.fits", "p1.tif", "p2.FITS", "p10.fits"]);
        let empty = tempfile::tempdir().unwrap();
        let e = expand_paths(&[empty.path().to_path_buf()]).unwrap_err();
        assert!(e.to_string().contains("no image files"), "{e}");
    }
}
