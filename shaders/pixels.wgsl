// Draws an RGBA8 image, nearest neighbour, into egui's render pass: the
// magnified raw and model views.
//
// egui's own image path samples a texture through a general shader with a
// vertex colour and blending; on a software rasteriser (lavapipe) that costs
// about 90 ns per screen pixel. This pass is a plain blit: one quad over the
// callback's rectangle, texture coordinates interpolated across it, one
// nearest-neighbour sample, opaque (no blending). A storage-buffer lookup
// per pixel, which this replaced, cost about 13 ns per pixel on lavapipe;
// a blit is the case llvmpipe rasterises fastest.

struct View {
    // texture coordinates of the top-left and bottom-right corners of the
    // callback's rectangle (egui sets the viewport to that rectangle)
    uv_min: vec2<f32>,
    uv_max: vec2<f32>,
};

@group(0) @binding(0) var<uniform> view: View;
@group(0) @binding(1) var image: texture_2d<f32>;
@group(0) @binding(2) var nearest: sampler;

struct VsOut {
    @builtin(position) pos: vec4<f32>,
    @location(0) uv: vec2<f32>,
};

// A triangle strip of four vertices covering the viewport.
@vertex
fn vs_main(@builtin(vertex_index) i: u32) -> VsOut {
    let corner = vec2<f32>(f32(i & 1u), f32(i >> 1u));
    var out: VsOut;
    out.pos = vec4<f32>(corner.x * 2.0 - 1.0, 1.0 - corner.y * 2.0, 0.0, 1.0);
    out.uv = mix(view.uv_min, view.uv_max, corner);
    return out;
}

// The image bytes are gamma-encoded (sRGB), like everything egui draws.
@fragment
fn fs_gamma_target(in: VsOut) -> @location(0) vec4<f32> {
    return textureSample(image, nearest, in.uv);
}

// For an sRGB framebuffer the hardware encodes on write, so decode first.
@fragment
fn fs_srgb_target(in: VsOut) -> @location(0) vec4<f32> {
    let c = textureSample(image, nearest, in.uv).rgb;
    let lo = c / 12.92;
    let hi = pow((c + vec3<f32>(0.055)) / 1.055, vec3<f32>(2.4));
    return vec4<f32>(select(hi, lo, c <= vec3<f32>(0.04045)), 1.0);
}
