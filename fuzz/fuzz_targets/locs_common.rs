//! Shared driver of the table targets: the bytes become a file (the table
//! readers take paths), opened with a small row cap; a table that opens is
//! summarised and picked, as the viewer does on open.

use posescope::estimate::pick::{pick_table, PickConfig};
use posescope::io::locs::{open_table, TableLimits, TableOptions};

pub fn run(ext: &str, data: &[u8], yaml: Option<&str>) {
    let dir = std::env::temp_dir().join(format!("posescope-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("t.{ext}"));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Some(y) = yaml {
        let _ = std::fs::write(path.with_extension("yaml"), y);
    }
    let opts = TableOptions {
        pixel_size_nm: None,
        limits: TableLimits { max_rows: 100_000 },
    };
    if let Ok(t) = open_table(&path, &opts) {
        assert!(t.len() <= 100_000);
        assert_eq!(t.x_nm.len(), t.y_nm.len());
        let s = t.summary();
        assert_eq!(s.rows, t.len());
        let _ = pick_table(&t, &PickConfig::for_radius(220.0));
    }
}
