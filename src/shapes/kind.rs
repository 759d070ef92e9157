//! [`ModelKind`]: the models a user can name, on the command line
//! (`--model torus`, `--model ring:8`, `--model cloud.ply`) and in the
//! viewer's shape list. One enum instead of strings in every front end.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A model as a user names it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum ModelKind {
    /// The parametric torus whose tube radius is fitted (the bundled network's model).
    #[default]
    Torus,
    /// A torus with a 90° arc missing (no rotational symmetry).
    TorusGap,
    /// A torus plus one bright marker on the outer equator.
    TorusMarker,
    /// A ring of `n` blobs (e.g. the 8-fold nuclear pore).
    Ring(u32),
    /// A point cloud file: PLY, OBJ or CSV.
    File(PathBuf),
}

impl ModelKind {
    /// The built-in models, in the order the viewer lists them.
    pub const ALL: [ModelKind; 4] = [
        ModelKind::Torus,
        ModelKind::TorusGap,
        ModelKind::TorusMarker,
        ModelKind::Ring(8),
    ];

    /// True for the parametric torus whose tube radius is fitted.
    pub fn is_torus(&self) -> bool {
        matches!(self, ModelKind::Torus)
    }

    /// True for the three torus shapes (they take `R, r`).
    pub fn is_torus_family(&self) -> bool {
        matches!(
            self,
            ModelKind::Torus | ModelKind::TorusGap | ModelKind::TorusMarker
        )
    }
}

/// Why a model name was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("model '{0}': expected torus, torus-gap, torus-marker, ring:N (N a whole number ≥ 1) or a point-cloud file")]
pub struct ModelKindError(pub String);

impl FromStr for ModelKind {
    type Err = ModelKindError;

    /// `torus`, `torus-gap`, `torus-marker`, `ring:N`; anything else is a file path.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "torus" => ModelKind::Torus,
            "torus-gap" => ModelKind::TorusGap,
            "torus-marker" => ModelKind::TorusMarker,
            "" => return Err(ModelKindError(s.into())),
            m if m.starts_with("ring:") => match m[5..].parse::<u32>() {
                Ok(n) if n >= 1 => ModelKind::Ring(n),
                _ => return Err(ModelKindError(s.into())),
            },
            path => ModelKind::File(PathBuf::from(path)),
        })
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelKind::Torus => f.write_str("torus"),
            ModelKind::TorusGap => f.write_str("torus-gap"),
            ModelKind::TorusMarker => f.write_str("torus-marker"),
            ModelKind::Ring(n) => write!(f, "ring:{n}"),
            ModelKind::File(p) => write!(f, "{}", p.display()),
        }
    }
}

// Stored as its name (the viewer's persisted settings keep their format).
impl serde::Serialize for ModelKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ModelKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in ModelKind::ALL
            .into_iter()
            .chain([ModelKind::Ring(12), ModelKind::File("a/b.ply".into())])
        {
            assert_eq!(k.to_string().parse::<ModelKind>().unwrap(), k);
        }
    }

    #[test]
    fn bad_rings_are_refused() {
        for s in ["ring:", "ring:x", "ring:0", "ring:-3", ""] {
            let e = s.parse::<ModelKind>().unwrap_err();
            assert_eq!(e.0, s);
        }
        assert_eq!("ring:8".parse::<ModelKind>().unwrap(), ModelKind::Ring(8));
    }

    #[test]
    fn serde_keeps_the_name() {
        let j = serde_json::to_string(&ModelKind::Ring(8)).unwrap();
        assert_eq!(j, "\"ring:8\"");
        let k: ModelKind = serde_json::from_str("\"torus-gap\"").unwrap();
        assert_eq!(k, ModelKind::TorusGap);
    }
}
