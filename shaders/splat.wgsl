// PoseScope GPU splat pass (see src/render/gpu.rs).
//
// One instanced quad per model point. The vertex shader projects the point
// exactly like the CPU renderer (src/render/mod.rs):
//   (u, v) = (W/2 + shift_x, H/2 + shift_y) + s · (R·p)_xy
// and covers a regular octagon whose inscribed circle has radius `radius`
// = K·σ around it (K = 6, the CPU truncation, or the viewer's 4): every
// pixel within K·σ is drawn, and the square's corners, where the Gaussian is
// below e^(−K²/2), are not (17 % fewer fragments than the square). The fragment shader evaluates the normalised
// Gaussian w/(2πσ²)·exp(−|x − (u, v)|²/2σ²) at the fragment centre; with no
// multisampling `@builtin(position).xy` is (c + ½, r + ½) for the pixel in
// column c, row r (framebuffer y points down, row 0 at the top). Outputs are
// summed by additive (One, One) blending into a float target: the R channel
// of an R32Float target, or, for an Rgba16Float target, channel i mod 4 for
// instance i (the composite pass and the readback add the four channels).

struct Splat {
    // Rows 0 and 1 of the rotation R (xyz; w unused). The projection is
    // orthographic along camera z, so row 2 never reaches the image.
    rot0: vec4<f32>,
    rot1: vec4<f32>,
    // (W/2 + shift_x, H/2 + shift_y), summed in f64 on the CPU.
    offset: vec2<f32>,
    // (W, H) in pixels.
    size: vec2<f32>,
    // Model scale s.
    scale: f32,
    // 1/(2σ²).
    inv_two_sigma2: f32,
    // Half-width of each quad in pixels, K·σ.
    radius: f32,
    // 1/(2πσ²).
    norm: f32,
    // Accumulation channels used: 1 (R32Float) or 4 (Rgba16Float, point i
    // goes to channel i mod 4 so that each f16 running sum stays 4× smaller).
    channels: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
};

@group(0) @binding(0) var<uniform> u: Splat;

struct VsOut {
    @builtin(position) clip: vec4<f32>,
    @location(0) @interpolate(flat) centre: vec2<f32>,
    @location(1) @interpolate(flat) weight: f32,
    @location(2) @interpolate(flat) channel: u32,
};

@vertex
fn vs_splat(
    @builtin(vertex_index) vi: u32,
    @builtin(instance_index) ii: u32,
    @location(0) point: vec4<f32>,
) -> VsOut {
    let p = point.xyz;
    let centre = u.offset + u.scale * vec2<f32>(dot(u.rot0.xyz, p), dot(u.rot1.xyz, p));
    // octagon as a triangle strip zig-zagging between its two sides:
    // vertex k of the strip is polygon vertex 0, 1, 7, 2, 6, 3, 5, 4
    let k = select(8u - vi / 2u, (vi + 1u) / 2u, (vi & 1u) == 1u || vi == 0u) % 8u;
    let angle = (f32(k) + 0.5) * 0.7853981633974483;
    // circumradius of the octagon whose inscribed radius is `radius`
    let corner = vec2<f32>(cos(angle), sin(angle)) * 1.0823922002923940;
    let pix = centre + corner * u.radius;
    let ndc = vec2<f32>(pix.x / u.size.x * 2.0 - 1.0, 1.0 - pix.y / u.size.y * 2.0);
    var out: VsOut;
    out.clip = vec4<f32>(ndc, 0.5, 1.0);
    out.centre = centre;
    out.weight = point.w;
    out.channel = ii % max(u.channels, 1u);
    return out;
}

@fragment
fn fs_splat(in: VsOut) -> @location(0) vec4<f32> {
    let d = in.clip.xy - in.centre;
    let g = in.weight * u.norm * exp(-dot(d, d) * u.inv_two_sigma2);
    let lanes = vec4<u32>(0u, 1u, 2u, 3u) == vec4<u32>(in.channel);
    return select(vec4<f32>(0.0), vec4<f32>(g), lanes);
}
