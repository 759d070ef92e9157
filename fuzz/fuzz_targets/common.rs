//! Shared driver: open the bytes in memory and decode up to four frames.

use posescope::io::{open_bytes, Limits};

/// Small limits keep each run cheap; the code paths are the same as with the defaults.
pub fn run(name: &str, data: &[u8]) {
    let limits = Limits {
        max_frame_bytes: 64 << 20,
        max_frames: 100_000,
    };
    if let Ok(mut stack) = open_bytes(name, data.to_vec(), &limits) {
        let n = stack.len();
        for i in (0..n).take(3).chain(n.checked_sub(1)) {
            if let Ok(frame) = stack.frame(i) {
                assert_eq!(frame.data.len(), frame.width * frame.height);
                assert_eq!(
                    (frame.width, frame.height),
                    (stack.info().width, stack.info().height)
                );
            }
        }
    }
}
