#![no_main]

//! A Picasso HDF5 table (with a fixed, valid YAML sidecar) from arbitrary
//! bytes: `open_table` must return a table or an error, never panic, hang
//! or allocate without bound.

use libfuzzer_sys::fuzz_target;

#[path = "locs_common.rs"]
mod locs_common;

fuzz_target!(|data: &[u8]| {
    locs_common::run("hdf5", data, Some("Width: 128\nHeight: 128\nFrames: 1000\nPixelsize: 130\n"));
});
