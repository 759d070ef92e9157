//! The geometry of a convolution, shared by every CPU kernel: the layer's
//! shape ([`ConvGeometry`]), a strided NHWC input view ([`NhwcView`]) and
//! where each output pixel reads its patch ([`Patch`], [`Patches`]).
//!
//! It has a file of its own so the kernels (`conv_cpu`, `conv_c1`,
//! `conv_wino`) depend on it and not on each other's internals.

/// The shape of one convolution, NHWC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConvGeometry {
    pub batch: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub in_c: usize,
    pub out_c: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
    pub out_h: usize,
    pub out_w: usize,
}

/// Output length along one axis, `None` when the kernel does not fit.
pub(crate) fn out_len(input: usize, kernel: usize, stride: usize, pad: usize) -> Option<usize> {
    if stride == 0 || kernel == 0 || input + 2 * pad < kernel {
        return None;
    }
    Some((input + 2 * pad - kernel) / stride + 1)
}

impl ConvGeometry {
    /// `None` when the stride is zero or the kernel does not fit in the padded input.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        batch: usize,
        (in_h, in_w, in_c): (usize, usize, usize),
        out_c: usize,
        (kh, kw): (usize, usize),
        stride: usize,
        pad: usize,
    ) -> Option<Self> {
        let out_h = out_len(in_h, kh, stride, pad)?;
        let out_w = out_len(in_w, kw, stride, pad)?;
        Some(Self {
            batch,
            in_h,
            in_w,
            in_c,
            out_c,
            kh,
            kw,
            stride,
            pad,
            out_h,
            out_w,
        })
    }

    /// Length of one patch: `kh·kw·C`.
    pub fn kdim(&self) -> usize {
        self.kh * self.kw * self.in_c
    }

    /// Output pixels per image.
    pub fn pixels(&self) -> usize {
        self.out_h * self.out_w
    }

    /// Output pixels in the batch (GEMM rows).
    pub fn rows(&self) -> usize {
        self.batch * self.pixels()
    }

    /// Elements of one input image.
    pub fn in_image(&self) -> usize {
        self.in_h * self.in_w * self.in_c
    }
}

/// A read-only strided view of an NHWC tensor (element strides, any order).
#[derive(Clone, Copy, Debug)]
pub(crate) struct NhwcView<'a> {
    pub data: &'a [f32],
    pub offset: usize,
    pub strides: [usize; 4],
}

impl<'a> NhwcView<'a> {
    /// A view of contiguous NHWC data.
    #[cfg(test)]
    pub fn contiguous(data: &'a [f32], g: &ConvGeometry) -> Self {
        Self {
            data,
            offset: 0,
            strides: [g.in_image(), g.in_w * g.in_c, g.in_c, 1],
        }
    }

    /// Whether `(x, c)` runs of one input row are contiguous in memory.
    pub(crate) fn row_runs_contiguous(&self, g: &ConvGeometry) -> bool {
        (g.in_c == 1 || self.strides[3] == 1) && (g.in_w == 1 || self.strides[2] == g.in_c)
    }

    /// Whether the channels of one pixel are contiguous in memory.
    pub(crate) fn pixels_contiguous(&self, g: &ConvGeometry) -> bool {
        g.in_c == 1 || self.strides[3] == 1
    }
}

/// Where output pixel `row` reads its patch: image, top-left input corner and
/// the range of kernel columns that fall inside the input.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Patch {
    pub b: usize,
    pub iy0: isize,
    pub ix0: isize,
    pub kx_lo: usize,
    pub kx_hi: usize,
}

impl Patch {
    pub(crate) fn at(g: &ConvGeometry, b: usize, oy: usize, ox: usize) -> Self {
        let iy0 = (oy * g.stride) as isize - g.pad as isize;
        let ix0 = (ox * g.stride) as isize - g.pad as isize;
        let kx_lo = (-ix0).clamp(0, g.kw as isize) as usize;
        let kx_hi = (g.in_w as isize - ix0).clamp(kx_lo as isize, g.kw as isize) as usize;
        Self {
            b,
            iy0,
            ix0,
            kx_lo,
            kx_hi,
        }
    }

    /// The input row read by kernel row `ky`, if it is inside the image.
    pub fn input_row(&self, g: &ConvGeometry, ky: usize) -> Option<usize> {
        let iy = self.iy0 + ky as isize;
        (iy >= 0 && (iy as usize) < g.in_h).then_some(iy as usize)
    }

    /// First input column read by the valid kernel columns.
    pub(crate) fn first_col(&self) -> usize {
        (self.ix0 + self.kx_lo as isize) as usize
    }
}

/// The patches of consecutive output rows, without a division per row.
pub(crate) struct Patches<'g> {
    g: &'g ConvGeometry,
    b: usize,
    oy: usize,
    ox: usize,
}

impl<'g> Patches<'g> {
    pub fn from_row(g: &'g ConvGeometry, row: usize) -> Self {
        let p = g.pixels().max(1);
        let rem = row % p;
        Self {
            g,
            b: row / p,
            oy: rem / g.out_w.max(1),
            ox: rem % g.out_w.max(1),
        }
    }
}

impl Iterator for Patches<'_> {
    type Item = Patch;

    fn next(&mut self) -> Option<Patch> {
        let patch = Patch::at(self.g, self.b, self.oy, self.ox);
        self.ox += 1;
        if self.ox == self.g.out_w {
            self.ox = 0;
            self.oy += 1;
            if self.oy == self.g.out_h {
                self.oy = 0;
                self.b += 1;
            }
        }
        Some(patch)
    }
}
