//! The picks a table brings with it: Picasso's picked files ("Save picked
//! localizations") and clustering tools give every localisation a `group`,
//! one per particle. Each group becomes a pick at its centroid, so what a
//! user picked in Picasso is what PoseScope fits, instead of a new picking.

use std::collections::BTreeMap;

use super::table::{pick_table, PickConfig};
use super::PickError;
use crate::io::locs::{LocTable, Pick};

/// Where a table's picks came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PickSource {
    /// The table's `group` column: this many groups.
    Groups(usize),
    /// The automatic picker.
    Detected,
}

impl PickSource {
    /// "the table's 12 groups (Picasso picks)", or "picked automatically".
    pub fn describe(self) -> String {
        match self {
            PickSource::Groups(n) => format!(
                "the table's {n} group{} (its group column, as Picasso's picked files have)",
                if n == 1 { "" } else { "s" }
            ),
            PickSource::Detected => "picked automatically".into(),
        }
    }
}

/// One pick per group, at the centroid of its localisations, in group
/// order; `None` for a table without a group column. Negative groups
/// (unassigned, as clustering tools write noise) are left out.
pub fn picks_from_groups(table: &LocTable) -> Option<Vec<Pick>> {
    let groups = table.group.as_ref()?;
    let mut sums: BTreeMap<i32, (f64, f64, usize)> = BTreeMap::new();
    for ((&g, &x), &y) in groups.iter().zip(&table.x_nm).zip(&table.y_nm) {
        if g < 0 {
            continue;
        }
        let s = sums.entry(g).or_default();
        s.0 += f64::from(x);
        s.1 += f64::from(y);
        s.2 += 1;
    }
    Some(
        sums.into_values()
            .map(|(x, y, n)| Pick {
                x_nm: x / n as f64,
                y_nm: y / n as f64,
                n_locs: n,
            })
            .collect(),
    )
}

/// A table's picks: its groups when it has any (unless `ignore_groups`),
/// otherwise the automatic picker's.
pub fn table_picks(
    table: &LocTable,
    cfg: &PickConfig,
    ignore_groups: bool,
) -> Result<(Vec<Pick>, PickSource), PickError> {
    if !ignore_groups {
        if let Some(picks) = picks_from_groups(table).filter(|p| !p.is_empty()) {
            let n = picks.len();
            return Ok((picks, PickSource::Groups(n)));
        }
    }
    Ok((pick_table(table, cfg)?, PickSource::Detected))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(group: Option<Vec<i32>>) -> LocTable {
        LocTable {
            x_nm: vec![0.0, 2.0, 100.0, 104.0, 50.0],
            y_nm: vec![10.0, 12.0, 0.0, 2.0, 50.0],
            group,
            ..LocTable::default()
        }
    }

    #[test]
    fn each_group_is_a_pick_at_its_centroid() {
        let picks = picks_from_groups(&table(Some(vec![7, 7, 2, 2, -1]))).unwrap();
        // group order, noise (-1) left out
        assert_eq!(
            picks,
            [
                Pick {
                    x_nm: 102.0,
                    y_nm: 1.0,
                    n_locs: 2
                },
                Pick {
                    x_nm: 1.0,
                    y_nm: 11.0,
                    n_locs: 2
                },
            ]
        );
        assert_eq!(picks_from_groups(&table(None)), None);
    }

    #[test]
    fn groups_win_unless_ignored() {
        let cfg = PickConfig::for_radius(220.0);
        let t = table(Some(vec![0, 0, 1, 1, 1]));
        let (picks, source) = table_picks(&t, &cfg, false).unwrap();
        assert_eq!((picks.len(), source), (2, PickSource::Groups(2)));
        let (_, source) = table_picks(&t, &cfg, true).unwrap();
        assert_eq!(source, PickSource::Detected);
        // only noise: picked automatically
        let (_, source) = table_picks(&table(Some(vec![-1; 5])), &cfg, false).unwrap();
        assert_eq!(source, PickSource::Detected);
    }
}
