//! Where the particles are: a table's own picks (its `group` column,
//! [`groups`]), automatic picking of particles of a known size
//! — on a localisation table by localisation density ([`table`]), on an
//! image by a scale-matched filter ([`image`]) — the particle frame each
//! pick becomes, and matching picks to a known truth.
//!
//! "Too close" is the same everywhere: two picks whose centres are nearer
//! than `min_separation` (by default 1.5 × the particle's outer radius R + r,
//! so their discs would overlap by more than half a radius); the stronger
//! one stays.

mod detect;
pub mod groups;
pub mod image;
pub mod table;

pub use groups::{picks_from_groups, table_picks, PickSource};
pub use image::{image_particle_frame, pick_image, ImagePick, ImagePickConfig};
pub use table::{particle_frame, pick_table, Grid, PickConfig};

pub use crate::io::locs::Pick;

/// Errors of picking.
#[derive(Debug, thiserror::Error)]
pub enum PickError {
    #[error("invalid picking settings: {0}")]
    Config(String),
    #[error("the field is too large to pick at this particle size: {0}")]
    TooLarge(String),
}

/// Matches picks to true centres within `tolerance_nm` (greedy, closest
/// pairs first): `(matched, false picks, missed)`.
pub fn match_picks(picks: &[Pick], truth: &[[f64; 2]], tolerance_nm: f64) -> (usize, usize, usize) {
    let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
    for (i, p) in picks.iter().enumerate() {
        for (j, t) in truth.iter().enumerate() {
            let d = (p.x_nm - t[0]).hypot(p.y_nm - t[1]);
            if d <= tolerance_nm {
                pairs.push((d, i, j));
            }
        }
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut used_p, mut used_t) = (vec![false; picks.len()], vec![false; truth.len()]);
    let mut matched = 0;
    for (_, i, j) in pairs {
        if !used_p[i] && !used_t[j] {
            used_p[i] = true;
            used_t[j] = true;
            matched += 1;
        }
    }
    (matched, picks.len() - matched, truth.len() - matched)
}
