//! Automatic particle picking on a localisation table, and the particle
//! frame of a table pick.
//!
//! # Method (a scale-matched density detector)
//! 1. Localisations are binned at `diameter / 8` and the histogram is
//!    smoothed with a Gaussian of σ = 0.6 × the particle's outer radius
//!    (R + r): a ring of any tilt becomes one blob whose peak sits near its
//!    centre.
//! 2. Local maxima of the smoothed density, one per `min_separation`
//!    neighbourhood, are the candidates.
//! 3. Each candidate's centre is refined to the mean of the localisations
//!    within the outer radius plus twice the median precision (three
//!    rounds), and its localisations are counted there.
//! 4. Candidates with fewer than `min_locs` localisations are dropped;
//!    of two candidates closer than `min_separation` ("too close": their
//!    discs would overlap by more than half a radius) the one with more
//!    localisations stays.
//!
//! Deterministic and independent of thread count.

use serde::{Deserialize, Serialize};

use crate::io::locs::LocTable;
use crate::io::Frame;
use crate::render::locs::{render_locs, LocMode, LocView};

use super::detect::{blur, local_maxima};
use super::{Pick, PickError};

/// Settings of the picker.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PickConfig {
    /// The particle's outer radius (torus R + r), nm.
    pub radius_nm: f64,
    /// Least localisations of a pick.
    pub min_locs: usize,
    /// Least centre distance of two picks, nm (default: 1.5 × radius).
    pub min_separation_nm: f64,
}

impl PickConfig {
    /// Defaults for a particle of outer radius `radius_nm`.
    pub fn for_radius(radius_nm: f64) -> Self {
        Self {
            radius_nm,
            min_locs: 30,
            min_separation_nm: 1.5 * radius_nm,
        }
    }
}

/// Largest density image of the detector (pixels).
const MAX_DENSITY_PX: usize = 1 << 26;

/// The density image may have this many pixels per localisation (at least
/// [`MIN_DENSITY_CAP`]): a few stray localisations millimetres away must not
/// make the detector blur a huge, empty image. A real field of 10⁴ rows may
/// still span 1,600 bins a side (88 µm for a CEP152-sized particle).
const DENSITY_PX_PER_ROW: usize = 256;
const MIN_DENSITY_CAP: usize = 1 << 22;

/// Most cells of a [`Grid`]; coarser cells beyond that.
const MAX_GRID_CELLS: f64 = (1 << 22) as f64;

/// Picks particles of `cfg`'s size in `table`, ordered by descending
/// localisation count.
pub fn pick_table(table: &LocTable, cfg: &PickConfig) -> Result<Vec<Pick>, PickError> {
    let usable = cfg.radius_nm.is_finite()
        && cfg.radius_nm > 0.0
        && cfg.min_separation_nm.is_finite()
        && cfg.min_separation_nm >= 0.0;
    if !usable {
        return Err(PickError::Config(
            "the radius must be positive and the separation not negative".into(),
        ));
    }
    if table.is_empty() {
        return Ok(Vec::new());
    }
    let bin = cfg.radius_nm / 4.0;
    let s = table.summary();
    let candidates = density_maxima(table, s.extent_nm, cfg, bin)?;
    let precision = s.median_precision_nm.map_or(10.0, f64::from);
    let reach = cfg.radius_nm + 2.0 * precision;
    let grid = Grid::new(table, s.extent_nm, reach);
    let mut picks: Vec<Pick> = candidates
        .into_iter()
        .filter_map(|[mut x, mut y]| {
            let mut n = 0;
            for _ in 0..3 {
                let (mx, my, k) = grid.mean_within(table, x, y, reach);
                if k == 0 {
                    return None;
                }
                (x, y, n) = (mx, my, k);
            }
            (n >= cfg.min_locs).then_some(Pick {
                x_nm: x,
                y_nm: y,
                n_locs: n,
            })
        })
        .collect();
    picks.sort_by(|a, b| b.n_locs.cmp(&a.n_locs).then(a.x_nm.total_cmp(&b.x_nm)));
    let mut kept: Vec<Pick> = Vec::with_capacity(picks.len());
    for p in picks {
        if kept
            .iter()
            .all(|k| (k.x_nm - p.x_nm).hypot(k.y_nm - p.y_nm) >= cfg.min_separation_nm)
        {
            kept.push(p);
        }
    }
    Ok(kept)
}

/// Steps 1–2 of the detector: the centres (nm) of the local maxima of the
/// smoothed localisation density, in row-major order of its bins. One
/// density image when the field fits the cap; otherwise ([`tiled_maxima`])
/// only the tiles around localisations, which find the same maxima, so a
/// few stray localisations far away or a wide sparse field still pick.
fn density_maxima(
    table: &LocTable,
    extent_nm: [f32; 4],
    cfg: &PickConfig,
    bin: f64,
) -> Result<Vec<[f64; 2]>, PickError> {
    let cap = table
        .len()
        .saturating_mul(DENSITY_PX_PER_ROW)
        .clamp(MIN_DENSITY_CAP, MAX_DENSITY_PX);
    let margin = 2.0 * cfg.radius_nm;
    let sigma_px = (0.6 * cfg.radius_nm / bin) as f32;
    let window = ((cfg.min_separation_nm / bin).round() as isize).max(1);
    let Some(view) = LocView::covering(extent_nm, bin, margin, cap) else {
        return tiled_maxima(table, extent_nm, margin, bin, sigma_px, window).ok_or_else(|| {
            PickError::TooLarge(format!(
                "{:.0} × {:.0} µm at {bin:.0} nm bins",
                (extent_nm[2] - extent_nm[0]) / 1000.0,
                (extent_nm[3] - extent_nm[1]) / 1000.0
            ))
        });
    };
    let hist = render_locs(&table.x_nm, &table.y_nm, None, &view, LocMode::Histogram);
    let density = blur(&hist, view.width, view.height, sigma_px);
    Ok(local_maxima(&density, view.width, view.height, window)
        .into_iter()
        .map(|(c, r)| {
            [
                view.origin_nm[0] + (c as f64 + 0.5) * bin,
                view.origin_nm[1] + (r as f64 + 0.5) * bin,
            ]
        })
        .collect())
}

/// Core side of a density tile, bins.
const TILE: usize = 256;

/// [`density_maxima`] over the tiles of the density grid that hold
/// localisations and their neighbours, each blurred with a halo wide
/// enough for the blur and the maxima's window, so every maximum and its
/// value are those of the whole image. `None` when even the tiles exceed
/// [`MAX_DENSITY_PX`].
fn tiled_maxima(
    table: &LocTable,
    extent_nm: [f32; 4],
    margin: f64,
    bin: f64,
    sigma_px: f32,
    window: isize,
) -> Option<Vec<[f64; 2]>> {
    // the whole image's origin and size
    let ([x0, y0], w, h) = LocView::covering_size(extent_nm, bin, margin);
    if !(w * h).is_finite() || w > 1e15 || h > 1e15 {
        return None;
    }
    let (w, h) = (w as i64, h as i64);
    let halo = (3.0 * sigma_px).ceil().max(1.0) as usize + window as usize;
    let tile = TILE.max(halo) as i64;
    // every localisation's bin, by the tile that holds it (binned as
    // render_locs bins, so the counts are the whole image's)
    let inv = 1.0 / bin;
    let mut tiles: std::collections::HashMap<(i64, i64), Vec<(i64, i64)>> = Default::default();
    for (&x, &y) in table.x_nm.iter().zip(&table.y_nm) {
        let u = (((f64::from(x) - x0) * inv) as f32).floor();
        let v = (((f64::from(y) - y0) * inv) as f32).floor();
        if !(u >= 0.0 && v >= 0.0 && (u as i64) < w && (v as i64) < h) {
            continue;
        }
        let (u, v) = (u as i64, v as i64);
        tiles.entry((v / tile, u / tile)).or_default().push((u, v));
    }
    let mut todo: Vec<(i64, i64)> = tiles
        .keys()
        .flat_map(|&(ty, tx)| {
            (-1..=1).flat_map(move |dy| (-1..=1).map(move |dx| (ty + dy, tx + dx)))
        })
        .filter(|&(ty, tx)| ty >= 0 && tx >= 0 && ty * tile < h && tx * tile < w)
        .collect();
    todo.sort_unstable();
    todo.dedup();
    let side = tile as usize + 2 * halo;
    if todo.len().saturating_mul(side * side) > MAX_DENSITY_PX {
        return None;
    }
    let found: Vec<Vec<(i64, i64)>> = todo
        .iter()
        .map(|&(ty, tx)| {
            let (ox, oy) = (tx * tile - halo as i64, ty * tile - halo as i64);
            let mut hist = vec![0f32; side * side];
            for dy in -1..=1 {
                for dx in -1..=1 {
                    for &(u, v) in tiles.get(&(ty + dy, tx + dx)).into_iter().flatten() {
                        let (lu, lv) = (u - ox, v - oy);
                        if (0..side as i64).contains(&lu) && (0..side as i64).contains(&lv) {
                            hist[lv as usize * side + lu as usize] += 1.0;
                        }
                    }
                }
            }
            let mut density = blur(&hist, side, side, sigma_px);
            // outside the whole image there is nothing to compare with
            for lv in 0..side {
                for lu in 0..side {
                    let (u, v) = (ox + lu as i64, oy + lv as i64);
                    if u < 0 || v < 0 || u >= w || v >= h {
                        density[lv * side + lu] = 0.0;
                    }
                }
            }
            let core = halo as i64..halo as i64 + tile;
            local_maxima(&density, side, side, window)
                .into_iter()
                .filter(|&(c, r)| core.contains(&(c as i64)) && core.contains(&(r as i64)))
                .map(|(c, r)| (ox + c as i64, oy + r as i64))
                .filter(|&(u, v)| u < w && v < h)
                .collect()
        })
        .collect();
    let mut peaks: Vec<(i64, i64)> = found.into_iter().flatten().collect();
    // row-major, as the whole image's maxima come
    peaks.sort_unstable_by_key(|&(u, v)| (v, u));
    Some(
        peaks
            .into_iter()
            .map(|(u, v)| [x0 + (u as f64 + 0.5) * bin, y0 + (v as f64 + 0.5) * bin])
            .collect(),
    )
}

/// Localisation indices bucketed in square cells, for disc queries.
pub struct Grid {
    cell: f64,
    origin: [f64; 2],
    cols: usize,
    rows: usize,
    cells: Vec<Vec<u32>>,
}

impl Grid {
    /// The grid of `t`, whose extent (`[x_min, y_min, x_max, y_max]`) the
    /// caller has from [`LocTable::summary`] already.
    pub fn new(t: &LocTable, extent_nm: [f32; 4], cell: f64) -> Grid {
        let origin = [f64::from(extent_nm[0]), f64::from(extent_nm[1])];
        // bounded memory whatever the extent: coarser cells for huge ones
        let area = (f64::from(extent_nm[2]) - origin[0]).max(0.0)
            * (f64::from(extent_nm[3]) - origin[1]).max(0.0);
        let cell = if cell.is_finite() && cell > 0.0 {
            cell.max((area / MAX_GRID_CELLS).sqrt())
        } else {
            (area / MAX_GRID_CELLS).sqrt().max(1.0)
        };
        let cols = (((f64::from(extent_nm[2]) - origin[0]) / cell) as usize + 1).min(1 << 14);
        let rows = (((f64::from(extent_nm[3]) - origin[1]) / cell) as usize + 1).min(1 << 14);
        let cell = cell
            .max((f64::from(extent_nm[2]) - origin[0]) / cols as f64)
            .max((f64::from(extent_nm[3]) - origin[1]) / rows as f64);
        let mut cells = vec![Vec::new(); cols * rows];
        for (i, (&x, &y)) in t.x_nm.iter().zip(&t.y_nm).enumerate() {
            let c = (((f64::from(x) - origin[0]) / cell) as usize).min(cols - 1);
            let r = (((f64::from(y) - origin[1]) / cell) as usize).min(rows - 1);
            cells[r * cols + c].push(i as u32);
        }
        Grid {
            cell,
            origin,
            cols,
            rows,
            cells,
        }
    }

    /// Indices of the localisations in the cells within `reach` of `(x, y)`
    /// (a superset of those within the square of half-side `reach`).
    pub fn indices_near(&self, x: f64, y: f64, reach: f64) -> Vec<usize> {
        let span = (reach / self.cell).ceil() as isize;
        let c0 = ((x - self.origin[0]) / self.cell).floor() as isize;
        let r0 = ((y - self.origin[1]) / self.cell).floor() as isize;
        let mut out = Vec::new();
        for r in (r0 - span).max(0)..=(r0 + span).min(self.rows as isize - 1) {
            for c in (c0 - span).max(0)..=(c0 + span).min(self.cols as isize - 1) {
                out.extend(
                    self.cells[r as usize * self.cols + c as usize]
                        .iter()
                        .map(|&i| i as usize),
                );
            }
        }
        out
    }

    /// Mean position and count of the localisations within `radius` of `(x, y)`.
    fn mean_within(&self, t: &LocTable, x: f64, y: f64, radius: f64) -> (f64, f64, usize) {
        let span = (radius / self.cell).ceil() as isize;
        let c0 = ((x - self.origin[0]) / self.cell).floor() as isize;
        let r0 = ((y - self.origin[1]) / self.cell).floor() as isize;
        let (mut sx, mut sy, mut n) = (0.0, 0.0, 0usize);
        for r in r0 - span..=r0 + span {
            if r < 0 || r as usize >= self.rows {
                continue;
            }
            for c in c0 - span..=c0 + span {
                if c < 0 || c as usize >= self.cols {
                    continue;
                }
                for &i in &self.cells[r as usize * self.cols + c as usize] {
                    let (px, py) = (f64::from(t.x_nm[i as usize]), f64::from(t.y_nm[i as usize]));
                    if (px - x).hypot(py - y) <= radius {
                        sx += px;
                        sy += py;
                        n += 1;
                    }
                }
            }
        }
        if n == 0 {
            (x, y, 0)
        } else {
            (sx / n as f64, sy / n as f64, n)
        }
    }
}

/// A pick's localisations — those within `radius_nm` of its centre, a
/// circular pick as in Picasso, so that neighbours stay out, found through
/// `grid` — rendered into a `size × size` particle frame centred on it at
/// `pixel_nm` (individual blur, at least one pixel, so the blur is a PSF the
/// network was trained on): what the pose fit sees.
pub fn particle_frame(
    table: &LocTable,
    grid: &Grid,
    pick: &Pick,
    radius_nm: f64,
    pixel_nm: f64,
    size: usize,
) -> Frame {
    let half = 0.5 * size as f64 * pixel_nm;
    let near: Vec<usize> = grid
        .indices_near(pick.x_nm, pick.y_nm, radius_nm)
        .into_iter()
        .filter(|&i| {
            let dx = f64::from(table.x_nm[i]) - pick.x_nm;
            let dy = f64::from(table.y_nm[i]) - pick.y_nm;
            dx.hypot(dy) <= radius_nm
        })
        .collect();
    let x: Vec<f32> = near.iter().map(|&i| table.x_nm[i]).collect();
    let y: Vec<f32> = near.iter().map(|&i| table.y_nm[i]).collect();
    let p: Option<Vec<f32>> = table
        .precision_nm
        .as_ref()
        .map(|p| near.iter().map(|&i| p[i]).collect());
    let view = LocView {
        origin_nm: [pick.x_nm - half, pick.y_nm - half],
        pixel_nm,
        width: size,
        height: size,
    };
    let data = render_locs(
        &x,
        &y,
        p.as_deref(),
        &view,
        LocMode::Blur {
            min_blur_nm: pixel_nm as f32,
        },
    );
    Frame {
        width: size,
        height: size,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimate::pick::match_picks;
    use crate::synth::locs::{generate_field, FieldConfig};

    fn table_of(field: &crate::synth::locs::Field) -> LocTable {
        LocTable {
            x_nm: field.locs.iter().map(|l| l.x_nm).collect(),
            y_nm: field.locs.iter().map(|l| l.y_nm).collect(),
            precision_nm: Some(field.locs.iter().map(|l| l.precision_nm).collect()),
            ..LocTable::default()
        }
    }

    #[test]
    fn synthetic_fields_are_picked() {
        let mut found = (0, 0, 0);
        for seed in [11, 12, 13] {
            let cfg = FieldConfig {
                seed,
                ..FieldConfig::default()
            };
            let field = generate_field(&cfg).unwrap();
            let picks = pick_table(&table_of(&field), &PickConfig::for_radius(220.0)).unwrap();
            let truth: Vec<[f64; 2]> = field.truth.iter().map(|t| [t.x_nm, t.y_nm]).collect();
            let (m, f, miss) = match_picks(&picks, &truth, 150.0);
            found = (found.0 + m, found.1 + f, found.2 + miss);
        }
        // 72 particles: ≥ 95 % picked, ≤ 1 false pick per 20 true ones
        assert!(found.0 >= 69, "{found:?}");
        assert!(found.1 * 20 <= found.0, "{found:?}");
    }

    /// The maxima of `t`'s density for a particle of R + r = 220 nm (55 nm
    /// bins): from the whole image (`t` must fit its cap) and from tiles.
    fn whole_and_tiled(t: &LocTable) -> (Vec<[f64; 2]>, Vec<[f64; 2]>) {
        let cfg = PickConfig::for_radius(220.0);
        let bin = cfg.radius_nm / 4.0;
        let extent = t.summary().extent_nm;
        let whole = density_maxima(t, extent, &cfg, bin).unwrap();
        let sigma = (0.6 * cfg.radius_nm / bin) as f32;
        let window = ((cfg.min_separation_nm / bin).round() as isize).max(1);
        let tiled = tiled_maxima(t, extent, 2.0 * cfg.radius_nm, bin, sigma, window).unwrap();
        (whole, tiled)
    }

    #[test]
    fn tiles_find_the_whole_images_maxima_exactly() {
        let field = generate_field(&FieldConfig {
            seed: 12,
            ..FieldConfig::default()
        })
        .unwrap();
        let t = table_of(&field);
        let (whole, tiled) = whole_and_tiled(&t);
        // the field spans more than one tile, so the seams are crossed
        let extent = t.summary().extent_nm;
        let w = (extent[2] - extent[0]) as f64 / 55.0;
        assert!(w > TILE as f64, "{w} bins");
        assert!(whole.len() > 24, "{}", whole.len());
        assert_eq!(tiled, whole);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// Clusters anywhere in a field a few tiles wide, near the seams
        /// or not: the tiles' maxima are the whole image's, bit for bit.
        #[test]
        fn tiles_agree_with_the_whole_image_on_random_clusters(
            seed in 0u64..1_000_000,
            clusters in 1usize..12,
            // under 2048 bins a side: one whole image within the smallest cap
            span_um in 20.0f64..100.0,
        ) {
            use rand::{Rng, SeedableRng};
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let (mut x, mut y) = (Vec::new(), Vec::new());
            for _ in 0..clusters {
                let cx = rng.random_range(0.0..span_um * 1e3);
                let cy = rng.random_range(0.0..span_um * 1e3);
                let spread = rng.random_range(20.0..400.0);
                for _ in 0..rng.random_range(5..200) {
                    x.push((cx + rng.random_range(-spread..spread)) as f32);
                    y.push((cy + rng.random_range(-spread..spread)) as f32);
                }
            }
            let t = LocTable { x_nm: x, y_nm: y, ..LocTable::default() };
            let (whole, tiled) = whole_and_tiled(&t);
            proptest::prop_assert_eq!(tiled, whole);
        }
    }

    #[test]
    fn stray_localisations_millimetres_away_leave_the_picks_as_they_were() {
        let field = generate_field(&FieldConfig {
            seed: 11,
            ..FieldConfig::default()
        })
        .unwrap();
        let cfg = PickConfig::for_radius(220.0);
        let clean = pick_table(&table_of(&field), &cfg).unwrap();
        let mut t = table_of(&field);
        for (x, y) in [(-4.0e6, 2.0e6), (9.0e6, -7.5e6)] {
            t.x_nm.push(x);
            t.y_nm.push(y);
            t.precision_nm.as_mut().unwrap().push(10.0);
        }
        let with_strays = pick_table(&t, &cfg).unwrap();
        // the density bins start elsewhere, so a centre may settle a little
        // differently; every particle is still picked, in the same place
        assert_eq!(with_strays.len(), clean.len());
        for b in &clean {
            let d = with_strays
                .iter()
                .map(|a| (a.x_nm - b.x_nm).hypot(a.y_nm - b.y_nm))
                .fold(f64::INFINITY, f64::min);
            // 6–15 nm measured: three mean-shift rounds from another start
            assert!(d < 30.0, "{b:?}: nearest pick {d} nm away");
        }
    }

    #[test]
    fn particle_frames_centre_the_pick() {
        let field = generate_field(&FieldConfig {
            particles: 3,
            seed: 5,
            ..FieldConfig::default()
        })
        .unwrap();
        let t = table_of(&field);
        let picks = pick_table(&t, &PickConfig::for_radius(220.0)).unwrap();
        // the picking disc: radius + 2 × median precision
        let reach = 220.0 + 2.0 * f64::from(t.summary().median_precision_nm.unwrap());
        let grid = Grid::new(&t, t.summary().extent_nm, reach);
        let frames: Vec<Frame> = picks
            .iter()
            .map(|p| particle_frame(&t, &grid, p, reach, 9.0, 128))
            .collect();
        assert_eq!(frames.len(), picks.len());
        for (f, p) in frames.iter().zip(&picks) {
            // the frame holds the pick's localisations (each integrates to
            // about one), centred
            let sum: f32 = f.data.iter().sum();
            assert!(
                (sum - p.n_locs as f32).abs() < 0.05 * p.n_locs as f32,
                "{sum} vs {}",
                p.n_locs
            );
            let (mut cx, mut cy) = (0.0, 0.0);
            for (i, v) in f.data.iter().enumerate() {
                cx += v * ((i % 128) as f32 + 0.5);
                cy += v * ((i / 128) as f32 + 0.5);
            }
            assert!((cx / sum - 64.0).abs() < 1.0 && (cy / sum - 64.0).abs() < 1.0);
        }
    }

    #[test]
    fn matching_is_one_to_one() {
        let picks = [
            Pick {
                x_nm: 0.0,
                y_nm: 0.0,
                n_locs: 1,
            },
            Pick {
                x_nm: 10.0,
                y_nm: 0.0,
                n_locs: 1,
            },
        ];
        assert_eq!(match_picks(&picks, &[[5.0, 0.0]], 150.0), (1, 1, 0));
        assert_eq!(match_picks(&picks, &[[500.0, 0.0]], 150.0), (0, 2, 1));
    }

    #[test]
    fn bad_settings_are_refused() {
        let t = LocTable::default();
        assert!(pick_table(&t, &PickConfig::for_radius(-1.0)).is_err());
        assert!(pick_table(&t, &PickConfig::for_radius(100.0))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_few_stray_localisations_far_away_cost_nothing() {
        // 21 rows spanning 17 mm (a fuzzer's find: the detector used to blur a
        // 21-megapixel empty image): only the tiles around them are blurred,
        // none is a particle, and the grid stays small
        let mut t = LocTable {
            x_nm: (0..21).map(|i| (i * 180) as f32).collect(),
            y_nm: (0..21).map(|i| (i as f32) * 850_000.0).collect(),
            ..LocTable::default()
        };
        assert!(pick_table(&t, &PickConfig::for_radius(220.0))
            .unwrap()
            .is_empty());
        // localisations everywhere over a metre: refused, not ground through
        let scattered = LocTable {
            x_nm: (0..20_000)
                .map(|i| ((i * 7919) % 20_000) as f32 * 50_000.0)
                .collect(),
            y_nm: (0..20_000).map(|i| i as f32 * 50_000.0).collect(),
            ..LocTable::default()
        };
        let e = pick_table(&scattered, &PickConfig::for_radius(220.0)).unwrap_err();
        assert!(e.to_string().contains("too large"), "{e}");
        t.x_nm[0] = 1.7e7;
        let g = Grid::new(&t, t.summary().extent_nm, 260.0);
        assert!(
            g.cells.len() <= (1 << 22) + 2 * (1 << 14),
            "{} cells",
            g.cells.len()
        );
        // and still finds every localisation at its own place
        for i in 0..t.len() {
            let (x, y) = (f64::from(t.x_nm[i]), f64::from(t.y_nm[i]));
            assert!(g.indices_near(x, y, 1.0).contains(&i), "row {i}");
        }
    }
}
