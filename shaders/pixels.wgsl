// Draws an RGBA8 image, nearest neighbour, straight from a storage buffer
// into egui's render pass: the magnified raw and model views.
//
// egui's own image path samples a texture through a sampler in a general
// shader with blending; on a software rasteriser (lavapipe) that costs about
// 90 ns per screen pixel. This pass reads one u32 per pixel from a buffer,
// draws opaque (no blending) and has no texture unit to emulate.

struct View {
    // top-left corner of the image, framebuffer pixels
    origin: vec2<f32>,
    // framebuffer pixels per image pixel
    zoom: f32,
    // row stride of `pixels`, in u32 words
    stride: u32,
    // image size in pixels
    size: vec2<u32>,
    _pad: vec2<u32>,
};

@group(0) @binding(0) var<uniform> view: View;
@group(0) @binding(1) var<storage, read> pixels: array<u32>;

// One triangle that covers the whole viewport (egui sets the viewport to the
// callback's rectangle and the scissor to its clip rectangle).
@vertex
fn vs_main(@builtin(vertex_index) i: u32) -> @builtin(position) vec4<f32> {
    let x = f32(i32(i & 1u) * 4 - 1);
    let y = f32(i32(i >> 1u) * 4 - 1);
    return vec4<f32>(x, y, 0.0, 1.0);
}

fn texel(frag: vec4<f32>) -> vec4<f32> {
    let q = (frag.xy - view.origin) / view.zoom;
    let c = clamp(vec2<i32>(floor(q)), vec2<i32>(0, 0), vec2<i32>(view.size) - vec2<i32>(1, 1));
    return unpack4x8unorm(pixels[u32(c.y) * view.stride + u32(c.x)]);
}

// The image bytes are gamma-encoded (sRGB), like everything egui draws.
@fragment
fn fs_gamma_target(@builtin(position) frag: vec4<f32>) -> @location(0) vec4<f32> {
    return vec4<f32>(texel(frag).rgb, 1.0);
}

// For an sRGB framebuffer the hardware encodes on write, so decode first.
@fragment
fn fs_srgb_target(@builtin(position) frag: vec4<f32>) -> @location(0) vec4<f32> {
    let c = texel(frag).rgb;
    let lo = c / 12.92;
    let hi = pow((c + vec3<f32>(0.055)) / 1.055, vec3<f32>(2.4));
    return vec4<f32>(select(hi, lo, c <= vec3<f32>(0.04045)), 1.0);
}
