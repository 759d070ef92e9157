#![no_main]

//! A ThunderSTORM / plain CSV table from arbitrary bytes.

use libfuzzer_sys::fuzz_target;

#[path = "locs_common.rs"]
mod locs_common;

fuzz_target!(|data: &[u8]| {
    locs_common::run("csv", data, None);
});
