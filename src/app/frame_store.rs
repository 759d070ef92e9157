//! The frames of a document. Small files are held in memory whole; stacks
//! too large for that (a 2 GB camera movie) stay in their file and are read
//! on demand through the lazy page index of [`crate::io`], and a table's
//! particle frames are rendered from its localisations on demand, as an
//! image sequence's frames are read from their own files (any
//! [`FrameSource`]). Lazy frames pass through a small LRU cache, and the
//! frames next to the one shown are read ahead in the background, so
//! stepping with the arrow keys does not wait for the disk.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::io::{Frame, ImageSequence, Stack};

/// Frames read ahead of (and behind) the one shown.
const PREFETCH: [isize; 3] = [1, 2, -1];

/// Where lazily read frames come from.
pub trait FrameSource: Send + Sync {
    /// Number of frames.
    fn len(&self) -> usize;
    /// True when there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Frame `k` (`k < len()`), or why it cannot be had.
    fn read(&self, k: usize) -> Result<Frame, String>;
}

/// A stack file, read one frame at a time.
struct StackSource {
    stack: Mutex<Stack>,
    len: usize,
}

impl FrameSource for StackSource {
    fn len(&self) -> usize {
        self.len
    }

    fn read(&self, k: usize) -> Result<Frame, String> {
        let mut stack = self
            .stack
            .lock()
            .map_err(|_| "the file reader failed".to_string())?;
        stack.frame(k).map_err(|e| e.to_string())
    }
}

/// An image sequence, one file per frame.
impl FrameSource for ImageSequence {
    fn len(&self) -> usize {
        ImageSequence::len(self)
    }

    fn read(&self, k: usize) -> Result<Frame, String> {
        self.frame(k).map_err(|e| e.to_string())
    }
}

/// A document's frames.
pub struct FrameStore {
    inner: Inner,
    len: usize,
}

enum Inner {
    Memory(Vec<Arc<Frame>>),
    Lazy(Lazy),
}

struct Lazy {
    source: Arc<dyn FrameSource>,
    cache: Mutex<Lru>,
    prefetching: AtomicBool,
}

/// Least-recently-used frames, at most `capacity`.
struct Lru {
    frames: HashMap<usize, (Arc<Frame>, u64)>,
    tick: u64,
    capacity: usize,
}

impl Lru {
    fn get(&mut self, k: usize) -> Option<Arc<Frame>> {
        self.tick += 1;
        let tick = self.tick;
        self.frames.get_mut(&k).map(|(f, t)| {
            *t = tick;
            f.clone()
        })
    }

    fn put(&mut self, k: usize, f: Arc<Frame>) {
        self.tick += 1;
        self.frames.insert(k, (f, self.tick));
        while self.frames.len() > self.capacity {
            let oldest = self
                .frames
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(&k, _)| k);
            match oldest {
                Some(k) => self.frames.remove(&k),
                None => break,
            };
        }
    }
}

impl FrameStore {
    /// Frames already in memory.
    pub fn memory(frames: Vec<Frame>) -> Self {
        let len = frames.len();
        Self {
            inner: Inner::Memory(frames.into_iter().map(Arc::new).collect()),
            len,
        }
    }

    /// The frames of `stack`, read on demand; at most `cache_bytes` of them
    /// are kept (at least three frames).
    pub fn lazy(stack: Stack, cache_bytes: usize) -> Self {
        let info = stack.info();
        let frame_bytes = info.width * info.height * 4;
        let len = stack.len();
        let source = StackSource {
            stack: Mutex::new(stack),
            len,
        };
        Self::from_source(Arc::new(source), frame_bytes, cache_bytes)
    }

    /// Frames of `frame_bytes` each made by `source` on demand; at most
    /// `cache_bytes` of them are kept (at least three frames).
    pub fn from_source(
        source: Arc<dyn FrameSource>,
        frame_bytes: usize,
        cache_bytes: usize,
    ) -> Self {
        let frame_bytes = frame_bytes.max(1);
        let len = source.len();
        Self {
            inner: Inner::Lazy(Lazy {
                source,
                cache: Mutex::new(Lru {
                    frames: HashMap::new(),
                    tick: 0,
                    capacity: (cache_bytes / frame_bytes).max(3),
                }),
                prefetching: AtomicBool::new(false),
            }),
            len,
        }
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when frames are read from the file on demand.
    pub fn is_lazy(&self) -> bool {
        matches!(self.inner, Inner::Lazy(_))
    }

    /// Frames held in memory now (all of them, or those cached).
    pub fn resident(&self) -> usize {
        match &self.inner {
            Inner::Memory(v) => v.len(),
            Inner::Lazy(l) => l.cache.lock().map_or(0, |c| c.frames.len()),
        }
    }

    /// Frame `k`, read from the file if it is not cached; `None` when out of
    /// range or unreadable (see [`frame`](Self::frame) for why).
    pub fn get(&self, k: usize) -> Option<Arc<Frame>> {
        self.frame(k).ok()
    }

    /// Frame `k`, or why it cannot be had.
    pub fn frame(&self, k: usize) -> Result<Arc<Frame>, String> {
        if k >= self.len {
            return Err(format!(
                "frame {k} is not in the document ({} frames)",
                self.len
            ));
        }
        match &self.inner {
            Inner::Memory(v) => Ok(v[k].clone()),
            Inner::Lazy(l) => {
                if let Some(f) = l.cache.lock().ok().and_then(|mut c| c.get(k)) {
                    return Ok(f);
                }
                let f = Arc::new(l.source.read(k)?);
                if let Ok(mut c) = l.cache.lock() {
                    c.put(k, f.clone());
                }
                Ok(f)
            }
        }
    }

    /// Reads the frames next to `k` into the cache on a background thread
    /// (one prefetch at a time; nothing to do for frames in memory).
    pub fn prefetch(self: &Arc<Self>, k: usize) {
        let Inner::Lazy(l) = &self.inner else {
            return;
        };
        if l.prefetching.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("posescope-prefetch".into())
            .spawn(move || {
                for d in PREFETCH {
                    let j = k as isize + d;
                    if j >= 0 && (j as usize) < me.len {
                        let _ = me.frame(j as usize);
                    }
                }
                if let Inner::Lazy(l) = &me.inner {
                    l.prefetching.store(false, Ordering::Release);
                }
            });
        if spawned.is_err() {
            l.prefetching.store(false, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack_file(dir: &std::path::Path, frames: usize) -> std::path::PathBuf {
        let path = dir.join("s.tif");
        let fs: Vec<Frame> = (0..frames)
            .map(|k| Frame {
                width: 16,
                height: 8,
                data: vec![k as f32; 128],
            })
            .collect();
        crate::io::write_tiff_stack(&path, &fs, crate::io::WriteSample::U16, None).unwrap();
        path
    }

    #[test]
    fn a_lazy_store_reads_frames_on_demand_and_keeps_only_a_few() {
        let dir = tempfile::tempdir().unwrap();
        let path = stack_file(dir.path(), 20);
        // room for four 16×8 f32 frames
        let store = Arc::new(FrameStore::lazy(crate::io::open(&path).unwrap(), 4 * 512));
        assert!(store.is_lazy() && store.len() == 20);
        assert_eq!(store.resident(), 0);
        for k in 0..20 {
            assert_eq!(store.frame(k).unwrap().data[0], k as f32);
            assert!(store.resident() <= 4);
        }
        assert!(store.frame(20).unwrap_err().contains("not in the document"));
        // the most recent frames stay; a prefetch fills the neighbours
        let again = store.get(19).unwrap();
        assert_eq!(again.data[3], 19.0);
        store.prefetch(5);
        let Inner::Lazy(l) = &store.inner else {
            unreachable!()
        };
        for _ in 0..5000 {
            if !l.prefetching.load(Ordering::Acquire) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let mut cached: Vec<usize> = l.cache.lock().unwrap().frames.keys().copied().collect();
        cached.sort_unstable();
        assert_eq!(cached, vec![4, 6, 7, 19]);
    }
}
