//! The annotated PNG export end to end: a rendered torus is annotated,
//! written, read back and checked pixel by pixel against the layout.

use posescope::export::annotate::{
    annotate, annotation_lines, layout, write_png, AnnotateOptions, Annotation, BACKGROUND,
};
use posescope::geometry::{Pose, Quat};
use posescope::io::Frame;
use posescope::render::cpu::render_frame;
use posescope::render::display::{auto_contrast, colorize, Contrast, Lut};
use posescope::render::SplatParams;
use posescope::shapes::{Model, TorusSpec, Units};

const W: usize = 48;
const H: usize = 40;

fn torus_frame(pose: &Pose) -> Vec<f32> {
    let spec = TorusSpec {
        major_radius: 10.0,
        tube_radius: 2.5,
        units: Units::Px,
    };
    let model = Model::torus(spec, 3000, 5).unwrap();
    render_frame(
        &model.points,
        &model.weights,
        &pose.q.to_matrix(),
        pose.shift,
        &SplatParams::new(W, H, 1.5),
    )
    .unwrap()
}

fn annotation(pose: Pose, pixel_size_nm: Option<f64>) -> Annotation {
    Annotation {
        file: "sample/stack.tif".into(),
        frame: 3,
        frames: 10,
        pose,
        sigma: 1.5,
        score: Some(0.97),
        axis_sd_deg: None,
        model: "torus".into(),
        pixel_size_nm,
    }
}

struct Case {
    img: image::RgbaImage,
    raw: Vec<f32>,
    opts: AnnotateOptions,
    lines: Vec<String>,
}

/// Annotates a torus frame (counts: model × 40 + 3 background), writes the
/// PNG and reads it back.
fn export(pixel_size_nm: Option<f64>, upscale: u32) -> Case {
    let pose = Pose::new(Quat::from_euler_zyz_deg(20.0, 50.0, 0.0), [0.5, -1.0]);
    let model = torus_frame(&pose);
    let raw: Vec<f32> = model.iter().map(|v| v * 40.0 + 3.0).collect();
    let frame = Frame::new(W, H, raw.clone());
    let a = annotation(pose, pixel_size_nm);
    let opts = AnnotateOptions {
        lut: Lut::Magma,
        contrast: auto_contrast(&raw, 0.0035),
        upscale,
    };
    let img = annotate(&frame, &model, &a, &opts).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.png");
    write_png(&path, &img).unwrap();
    assert!(path.is_file());
    // only the PNG: the temp file was renamed
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let back = image::open(&path).unwrap().to_rgba8();
    assert_eq!(back, img, "PNG round trip changed pixels");
    Case {
        img: back,
        raw,
        opts,
        lines: annotation_lines(&a),
    }
}

/// Pixels of the raw tile that differ from `colorize` of the frame, as
/// `(x, y)` in output pixels.
fn raw_tile_mismatches(c: &Case) -> Vec<(u32, u32)> {
    let lay = layout(W, H, &c.opts, &c.lines).unwrap();
    let expected = colorize(&c.raw, c.opts.contrast, c.opts.lut);
    let u = c.opts.upscale;
    let [x0, y0] = lay.tiles[0];
    let mut bad = Vec::new();
    for y in 0..lay.tile_height {
        for x in 0..lay.tile_width {
            let i = ((y / u) as usize * W + (x / u) as usize) * 4;
            let got = c.img.get_pixel(x0 + x, y0 + y).0;
            if got[..] != expected[i..i + 4] {
                bad.push((x, y));
            }
        }
    }
    bad
}

#[test]
fn png_layout_and_raw_tile_match_the_display_mapping() {
    let c = export(None, 3);
    let lay = layout(W, H, &c.opts, &c.lines).unwrap();
    assert_eq!(c.img.dimensions(), (lay.width, lay.height));
    assert_eq!(
        (lay.tile_width, lay.tile_height),
        (3 * W as u32, 3 * H as u32)
    );
    // three tiles side by side, text below
    assert!(lay.width >= 3 * lay.tile_width);
    assert!(lay.text_top >= lay.tiles[0][1] + lay.tile_height);
    assert!(lay.height >= lay.text_top + c.lines.len() as u32 * lay.line_height);
    // without a pixel size the raw tile is exactly the colour-mapped frame
    assert_eq!(raw_tile_mismatches(&c), Vec::<(u32, u32)>::new());
    // the model tile uses the same LUT: its brightest pixel is the top of magma
    let [mx, my] = lay.tiles[1];
    let top = Lut::Magma.map(1.0);
    let found = (0..lay.tile_height)
        .any(|y| (0..lay.tile_width).any(|x| c.img.get_pixel(mx + x, my + y).0 == top));
    assert!(found, "model tile has no full-scale pixel");
    // the overlay of a model that matches the frame is mostly grey/white where bright
    let [ox, oy] = lay.tiles[2];
    let bright: Vec<[u8; 4]> = (0..lay.tile_height)
        .flat_map(|y| (0..lay.tile_width).map(move |x| (x, y)))
        .map(|(x, y)| c.img.get_pixel(ox + x, oy + y).0)
        .filter(|p| p[1] > 200)
        .collect();
    assert!(!bright.is_empty());
    assert!(
        bright.iter().all(|p| p[0] > 120 && p[2] > 120),
        "bright overlay pixels are not neutral"
    );
}

#[test]
fn text_and_captions_are_drawn() {
    let c = export(None, 2);
    let lay = layout(W, H, &c.opts, &c.lines).unwrap();
    let bg = BACKGROUND;
    let non_bg = |x0: u32, y0: u32, x1: u32, y1: u32| {
        (y0..y1)
            .flat_map(|y| (x0..x1).map(move |x| (x, y)))
            .filter(|&(x, y)| c.img.get_pixel(x, y).0 != bg)
            .count()
    };
    // every text line has ink
    for i in 0..c.lines.len() as u32 {
        let y = lay.text_top + i * lay.line_height;
        let ink = non_bg(0, y, lay.width, y + lay.line_height);
        assert!(
            ink > 20,
            "line {i} ({}) has {ink} text pixels",
            c.lines[i as usize]
        );
    }
    // a caption above each tile
    for [x, y] in lay.tiles {
        let ink = non_bg(x, lay.caption_top, x + lay.tile_width, y);
        assert!(ink > 10, "caption above tile at x {x} has {ink} pixels");
    }
    // margins stay background
    assert_eq!(non_bg(0, 0, lay.width, 2), 0);
    assert_eq!(non_bg(0, lay.height - 2, lay.width, lay.height), 0);
}

#[test]
fn scale_bar_only_with_a_pixel_size() {
    let white = [255, 255, 255, 255];
    for u in [1, 4] {
        let without = export(None, u);
        let with = export(Some(100.0), u);
        let lay = layout(W, H, &with.opts, &with.lines).unwrap();
        assert_eq!(with.img.dimensions(), without.img.dimensions());
        let [x0, y0] = lay.tiles[0];
        let count_white = |img: &image::RgbaImage| {
            (y0..y0 + lay.tile_height)
                .flat_map(|y| (x0..x0 + lay.tile_width).map(move |x| (x, y)))
                .filter(|&(x, y)| img.get_pixel(x, y).0 == white)
                .count()
        };
        // 48 px of 100 nm: the bar is 1 µm = 10 image px, at least 2 px thick
        assert_eq!(count_white(&without.img), 0, "upscale {u}");
        let bar = count_white(&with.img) as u32;
        assert!(bar >= 10 * u * 2, "upscale {u}: {bar} bar pixels");
        // the bar and its label stay in the bottom-right part of the raw tile
        let changed = raw_tile_mismatches(&with);
        assert!(!changed.is_empty());
        for &(x, y) in &changed {
            assert!(
                x >= lay.tile_width / 3 && y >= lay.tile_height / 3,
                "upscale {u}: bar pixel at ({x}, {y})"
            );
        }
        // the other tiles are untouched by the bar
        for k in 1..3 {
            let [tx, ty] = lay.tiles[k];
            for y in ty..ty + lay.tile_height {
                for x in tx..tx + lay.tile_width {
                    assert_eq!(with.img.get_pixel(x, y), without.img.get_pixel(x, y));
                }
            }
        }
    }
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let pose = Pose::default();
    let model = torus_frame(&pose);
    let frame = Frame::new(W, H, model.clone());
    let a = annotation(pose, Some(100.0));
    let opts = AnnotateOptions {
        contrast: Contrast::full(&model),
        ..AnnotateOptions::default()
    };
    // wrong-length model
    let e = annotate(&frame, &model[1..], &a, &opts).unwrap_err();
    assert!(e.to_string().contains("model"), "{e}");
    // absurd upscale
    let big = AnnotateOptions {
        upscale: 1000,
        ..opts
    };
    assert!(annotate(&frame, &model, &a, &big).is_err());
    // a missing directory: an error naming the file, and nothing written
    let img = annotate(&frame, &model, &a, &opts).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing").join("out.png");
    let e = write_png(&path, &img).unwrap_err();
    assert!(e.to_string().contains("out.png"), "{e}");
    assert!(!path.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
