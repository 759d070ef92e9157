// PoseScope localisation splat pass (see src/render/gpu/locs.rs).
//
// One instanced quad per localisation, the GPU twin of the CPU reference
// `render_locs` (src/render/locs.rs) in "individual blur" mode: each
// localisation at (x, y) nm with precision p nm is a Gaussian of
// σ = max(p, min_blur) in display pixels, 1/(2πσ²)·exp(−d²/2σ²) evaluated
// at pixel centres (c + ½, r + ½) within ±3σ on each axis (the same cut as
// the CPU), summed by additive (One, One) blending into a float target.
// A localisation whose σ is 0 adds 1 to the pixel it falls in (histogram).
// With an Rgba16Float target, localisation i goes to channel i mod 4, as in
// splat.wgsl; the readback adds the four channels.

struct View {
    // The view's origin minus the upload's base, nm.
    origin: vec2<f32>,
    // (W, H) in pixels.
    size: vec2<f32>,
    // Display pixels per nm.
    inv_pixel: f32,
    // Least σ, nm.
    min_blur: f32,
    // Accumulation channels: 1 (R32Float) or 4 (Rgba16Float).
    channels: u32,
    _pad: u32,
};

@group(0) @binding(0) var<uniform> u: View;

struct VsOut {
    @builtin(position) clip: vec4<f32>,
    @location(0) @interpolate(flat) centre: vec2<f32>,
    // σ in pixels (0: histogram), and the cut 3σ
    @location(1) @interpolate(flat) sigma: vec2<f32>,
    @location(2) @interpolate(flat) channel: u32,
};

@vertex
fn vs_locs(
    @builtin(vertex_index) vi: u32,
    @builtin(instance_index) ii: u32,
    // x, y relative to the base (nm), precision (nm), unused
    @location(0) loc: vec4<f32>,
) -> VsOut {
    let centre = (loc.xy - u.origin) * u.inv_pixel;
    let s = max(loc.z, u.min_blur) * u.inv_pixel;
    // triangle strip: (0,0) (1,0) (0,1) (1,1)
    let corner = vec2<f32>(f32(vi & 1u), f32(vi >> 1u));
    var lo: vec2<f32>;
    var hi: vec2<f32>;
    if (s > 0.0) {
        // one pixel beyond the cut; the fragment shader applies the cut
        lo = centre - vec2<f32>(3.0 * s + 1.0);
        hi = centre + vec2<f32>(3.0 * s + 1.0);
    } else {
        lo = floor(centre);
        hi = lo + vec2<f32>(1.0);
    }
    let pix = mix(lo, hi, corner);
    var out: VsOut;
    out.clip = vec4<f32>(pix.x / u.size.x * 2.0 - 1.0, 1.0 - pix.y / u.size.y * 2.0, 0.5, 1.0);
    out.centre = centre;
    out.sigma = vec2<f32>(s, 3.0 * s);
    out.channel = ii % max(u.channels, 1u);
    return out;
}

@fragment
fn fs_locs(in: VsOut) -> @location(0) vec4<f32> {
    var g = 1.0;
    let s = in.sigma.x;
    if (s > 0.0) {
        let d = in.clip.xy - in.centre;
        if (abs(d.x) > in.sigma.y || abs(d.y) > in.sigma.y) {
            discard;
        }
        let k = -0.5 / (s * s);
        g = exp(k * d.x * d.x) * exp(k * d.y * d.y) / (6.283185307179586 * s * s);
    }
    let lanes = vec4<u32>(0u, 1u, 2u, 3u) == vec4<u32>(in.channel);
    return select(vec4<f32>(0.0), vec4<f32>(g), lanes);
}
