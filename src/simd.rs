//! Vectorisable maths and run-time SIMD dispatch for the CPU kernels (the
//! splat renderer's profiles, the localisation likelihood): the crate is
//! built for generic x86-64, and [`simd_dispatch!`] compiles a kernel again
//! for AVX-512 and for AVX2 + FMA, choosing at run time.

/// Defines `$name`, which runs `$body` (an `#[inline(always)]` function)
/// compiled for AVX-512 or AVX2+FMA when the CPU has them (checked at run
/// time, cached by std), and for the baseline target otherwise.
macro_rules! simd_dispatch {
    ($(#[$doc:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) => $body:ident) => {
        $(#[$doc])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[allow(clippy::too_many_arguments)]
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512($($arg: $ty),*) {
                    $body($($arg),*)
                }
                #[allow(clippy::too_many_arguments)]
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU supports the enabled feature (checked above).
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: as above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

pub(crate) use simd_dispatch;

/// `exp(x)` for `x <= 0`, vectorisable (no libm call).
///
/// Range reduction to `2^n · e^f` with `f ∈ [-ln2/2, ln2/2]` and a degree-6 Taylor
/// polynomial for `e^f`; the relative error is below 5e-7 over `[-87, 0]`,
/// inputs below −87 return ≈ 1.6e-38 instead of 0, and NaN is treated as −87.
#[inline(always)]
pub fn exp_neg(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5·2^23: adding it rounds to an integer held in the low mantissa bits
                                     // clamp to [-87, 0]; `max` maps NaN to -87
    #[allow(clippy::manual_clamp)] // clamp would keep NaN
    let x = x.max(-87.0).min(0.0);
    let k = x * std::f32::consts::LOG2_E + ROUND;
    let n = k - ROUND;
    // the integer n, read from the mantissa (no float→int conversion, so this vectorises)
    let ni = k.to_bits().wrapping_sub(ROUND.to_bits());
    // Cody–Waite: subtract n·ln2 in two parts so f keeps full precision
    let f = (x - n * 0.693_359_4) - n * -2.121_944_4e-4;
    // e^f for f ∈ [-ln2/2, ln2/2]
    let p = 1.0
        + f * (1.0
            + f * (0.5
                + f * (1.0 / 6.0
                    + f * (1.0 / 24.0
                        + f * (1.0 / 120.0 + f * (1.0 / 720.0 + f * (1.0 / 5040.0)))))));
    p * f32::from_bits(ni.wrapping_add(127) << 23)
}
