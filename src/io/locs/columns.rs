//! Column headers of localisation tables: `name [unit]` (ThunderSTORM),
//! `name (unit)`, `name_unit` or a bare name, mapped to the quantities
//! PoseScope uses, with the unit's factor to nanometres.

/// What a column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Quantity {
    X,
    Y,
    Z,
    /// Localisation precision (uncertainty), lateral.
    Precision,
    Frame,
    Photons,
    Group,
}

/// A length unit, or none stated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Unit {
    Nm,
    Um,
    /// Camera pixels: needs the pixel size.
    Px,
    /// Not a length (photons, frames …) or not stated.
    None,
}

impl Unit {
    fn parse(s: &str) -> Option<Unit> {
        match s.trim().to_ascii_lowercase().as_str() {
            "nm" => Some(Unit::Nm),
            "um" | "µm" | "μm" | "micron" | "microns" => Some(Unit::Um),
            "px" | "pixel" | "pixels" | "pix" => Some(Unit::Px),
            _ => None,
        }
    }

    /// Nanometres per unit (`pixel_nm` for pixels); `None` for pixels without
    /// a pixel size.
    pub(super) fn to_nm(self, pixel_nm: Option<f64>) -> Option<f64> {
        match self {
            Unit::Nm | Unit::None => Some(1.0),
            Unit::Um => Some(1000.0),
            Unit::Px => pixel_nm,
        }
    }
}

/// One parsed header.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Header {
    /// The header as written (quotes removed).
    pub raw: String,
    pub quantity: Option<Quantity>,
    pub unit: Unit,
}

/// Parses one header cell.
pub(super) fn parse_header(cell: &str) -> Header {
    let raw = cell.trim().trim_matches('"').trim().to_string();
    let lower = raw.to_ascii_lowercase();
    // "x [nm]" or "x (nm)"
    let (name, mut unit) = match lower.find(['[', '(']) {
        Some(i) => {
            let inner = lower[i + 1..].trim_end_matches([']', ')']);
            (
                lower[..i].trim().to_string(),
                Unit::parse(inner).unwrap_or(Unit::None),
            )
        }
        None => (lower.clone(), Unit::None),
    };
    // "x_nm", "xnm", "x_px", "locprecnm"
    let mut base = name.as_str();
    if unit == Unit::None {
        for (suffix, u) in [("_nm", Unit::Nm), ("_um", Unit::Um), ("_px", Unit::Px)] {
            if let Some(b) = base.strip_suffix(suffix) {
                base = b;
                unit = u;
                break;
            }
        }
        if unit == Unit::None && base.len() > 2 {
            if let Some(b) = base.strip_suffix("nm") {
                base = b;
                unit = Unit::Nm;
            }
        }
    }
    let quantity = match base {
        "x" | "xc" | "x0" | "pos_x" | "position_x" => Some(Quantity::X),
        "y" | "yc" | "y0" | "pos_y" | "position_y" => Some(Quantity::Y),
        "z" | "zc" | "pos_z" | "position_z" => Some(Quantity::Z),
        "uncertainty"
        | "uncertainty_xy"
        | "precision"
        | "locprec"
        | "loc_prec"
        | "lp"
        | "localization_precision"
        | "localisation_precision"
        | "sigma_loc" => Some(Quantity::Precision),
        "frame" | "frames" | "t" | "frame_idx" | "frame_number" => Some(Quantity::Frame),
        "intensity" | "photons" | "phot" | "photon_count" => Some(Quantity::Photons),
        "group" | "particle" | "cluster" => Some(Quantity::Group),
        _ => None,
    };
    Header {
        raw,
        quantity,
        unit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thunderstorm_and_plain_headers() {
        let h = parse_header("\"x [nm]\"");
        assert_eq!((h.quantity, h.unit), (Some(Quantity::X), Unit::Nm));
        let h = parse_header("uncertainty_xy [nm]");
        assert_eq!((h.quantity, h.unit), (Some(Quantity::Precision), Unit::Nm));
        let h = parse_header("\"intensity [photon]\"");
        assert_eq!((h.quantity, h.unit), (Some(Quantity::Photons), Unit::None));
        let h = parse_header("y (µm)");
        assert_eq!((h.quantity, h.unit), (Some(Quantity::Y), Unit::Um));
        let h = parse_header("x_px");
        assert_eq!((h.quantity, h.unit), (Some(Quantity::X), Unit::Px));
        let h = parse_header("locprecnm");
        assert_eq!((h.quantity, h.unit), (Some(Quantity::Precision), Unit::Nm));
        let h = parse_header("chi2");
        assert_eq!(h.quantity, None);
        assert_eq!(Unit::Px.to_nm(None), None);
        assert_eq!(Unit::Um.to_nm(None), Some(1000.0));
    }
}
