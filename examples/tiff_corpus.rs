//! Opens each file given and decodes its first frame, for comparing
//! PoseScope's loaders with libtiff/Pillow over a corpus of test images
//! (`scripts/tiff_corpus.py` runs it).
//!
//! `cargo run --release --example tiff_corpus -- OUT_DIR FILE…` prints one
//! tab-separated line per file (`file`, `ok`/`error`/`panic`, frames, width,
//! height, message) and writes frame 0 of each opened file to
//! `OUT_DIR/<file name>.f32` (little-endian f32, row by row).

use std::io::Write;
use std::path::{Path, PathBuf};

fn one(path: &Path, out: &Path) -> Result<(usize, usize, usize, Vec<String>), String> {
    let mut stack = posescope::io::open(path).map_err(|e| e.to_string())?;
    let frame = stack.frame(0).map_err(|e| e.to_string())?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let bytes: Vec<u8> = frame.data.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(out.join(format!("{name}.f32")), bytes).map_err(|e| e.to_string())?;
    Ok((
        stack.len(),
        frame.width,
        frame.height,
        stack.info().warnings.clone(),
    ))
}

fn main() {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let Some(out) = args.next() else {
        eprintln!("usage: tiff_corpus OUT_DIR FILE…");
        std::process::exit(2);
    };
    std::fs::create_dir_all(&out).expect("output folder");
    // a panic is a finding, reported like any other outcome
    std::panic::set_hook(Box::new(|_| {}));
    let stdout = std::io::stdout();
    let mut w = stdout.lock();
    for path in args {
        let line = match std::panic::catch_unwind(|| one(&path, &out)) {
            Ok(Ok((n, wd, ht, warn))) => format!("ok\t{n}\t{wd}\t{ht}\t{}", warn.join("; ")),
            Ok(Err(e)) => format!("error\t\t\t\t{e}"),
            Err(_) => "panic\t\t\t\t".to_string(),
        };
        let line = line.replace('\n', " ");
        writeln!(w, "{}\t{line}", path.display()).expect("stdout");
    }
}
