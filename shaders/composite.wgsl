// PoseScope GPU composite pass (see src/render/gpu.rs).
//
// A full-screen triangle over the display texture (same size as the
// accumulation texture). Every fragment reads its own texel with
// textureLoad (no filtering) and writes gamma-space RGBA8 with alpha 1.
//
// Modes:
//   0 model:    LUT[(model − model_lo)·model_inv]
//   1 overlay:  raw normalised by the raw contrast in magenta (R + B) plus
//               the model normalised by the model contrast in green
//   2 residual: LUT[0.5 + 0.5·(raw − (a·model + b))/limit]
//   3 raw:      LUT[(raw − raw_lo)·raw_inv]
// The raw frame is read at the same (col, row); outside it reads 0.

struct Composite {
    // Weights of the accumulation channels that sum to the model:
    // (1,0,0,0) for R32Float, (1,1,1,1) for Rgba16Float.
    model_mask: vec4<f32>,
    mode: u32,
    raw_lo: f32,
    raw_inv: f32,
    model_lo: f32,
    model_inv: f32,
    res_a: f32,
    res_b: f32,
    // 0.5/limit
    res_half_inv: f32,
};

@group(0) @binding(0) var<uniform> c: Composite;
@group(0) @binding(1) var accum: texture_2d<f32>;
@group(0) @binding(2) var raw: texture_2d<f32>;
@group(0) @binding(3) var lut: texture_2d<f32>;

@vertex
fn vs_full(@builtin(vertex_index) vi: u32) -> @builtin(position) vec4<f32> {
    // (-1,-1), (3,-1), (-1,3): one triangle covering the viewport
    let x = f32((vi << 1u) & 2u) * 2.0 - 1.0;
    let y = f32(vi & 2u) * 2.0 - 1.0;
    return vec4<f32>(x, y, 0.0, 1.0);
}

fn unit(t: f32) -> f32 {
    // NaN → 0, then clamp to [0, 1]
    return clamp(select(t, 0.0, t != t), 0.0, 1.0);
}

fn lookup(t: f32) -> vec4<f32> {
    let i = i32(unit(t) * 255.0 + 0.5);
    return vec4<f32>(textureLoad(lut, vec2<i32>(i, 0), 0).rgb, 1.0);
}

@fragment
fn fs_composite(@builtin(position) pos: vec4<f32>) -> @location(0) vec4<f32> {
    let p = vec2<i32>(floor(pos.xy));
    let model = dot(textureLoad(accum, p, 0), c.model_mask);
    let dims = vec2<i32>(textureDimensions(raw));
    var r = 0.0;
    if (p.x < dims.x && p.y < dims.y) {
        r = textureLoad(raw, p, 0).r;
    }
    switch c.mode {
        case 1u: {
            let rn = unit((r - c.raw_lo) * c.raw_inv);
            let mn = unit((model - c.model_lo) * c.model_inv);
            return vec4<f32>(rn, mn, rn, 1.0);
        }
        case 2u: {
            let res = r - (c.res_a * model + c.res_b);
            return lookup(0.5 + res * c.res_half_inv);
        }
        case 3u: {
            return lookup((r - c.raw_lo) * c.raw_inv);
        }
        default: {
            return lookup((model - c.model_lo) * c.model_inv);
        }
    }
}
