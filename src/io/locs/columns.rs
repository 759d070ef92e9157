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
    /// Localisation precision, axial (3D tables).
    PrecisionZ,
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
    // "Position X", "First Frame", "frame-ix": words joined by "_"
    let name = name
        .split(|c: char| c.is_whitespace() || c == '-')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("_");
    // names whose unit is part of another word: the SMLM challenge's
    // "xnano", SMAP's "xnmerr" (its lateral precision)
    let name = match name.as_str() {
        "xnano" | "ynano" | "znano" => format!("{}_nm", &name[..1]),
        "xnmerr" => "locprec_nm".into(),
        "znmerr" => "precision_z_nm".into(),
        _ => name,
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
        "x" | "xc" | "x0" | "pos_x" | "position_x" | "x_position" => Some(Quantity::X),
        "y" | "yc" | "y0" | "pos_y" | "position_y" | "y_position" => Some(Quantity::Y),
        "z" | "zc" | "pos_z" | "position_z" | "z_position" => Some(Quantity::Z),
        "uncertainty"
        | "uncertainty_xy"
        | "precision"
        | "locprec"
        | "loc_prec"
        | "lp"
        | "localization_precision"
        | "localisation_precision"
        | "sigma_loc" => Some(Quantity::Precision),
        "uncertainty_z" | "precision_z" | "locprec_z" | "locprecz" | "lpz" | "z_precision" => {
            Some(Quantity::PrecisionZ)
        }
        "frame" | "frames" | "t" | "frame_idx" | "frame_ix" | "frame_number" | "first_frame" => {
            Some(Quantity::Frame)
        }
        "intensity" | "photons" | "phot" | "photon_count" | "number_photons" => {
            Some(Quantity::Photons)
        }
        "group" | "particle" | "cluster" => Some(Quantity::Group),
        _ => None,
    };
    Header {
        raw,
        quantity,
        unit,
    }
}

/// The tool a table's headers come from, for `info` and the viewer:
/// `"ThunderSTORM CSV"`, `"Zeiss ZEN (Elyra)"`, `"SMAP CSV"`, `"SMLM
/// challenge CSV"`, or `None` for a plain table.
pub(super) fn dialect(headers: &[Header]) -> Option<&'static str> {
    let has = |name: &str| headers.iter().any(|h| h.raw.eq_ignore_ascii_case(name));
    if has("Position X [nm]") && has("First Frame") {
        Some("Zeiss ZEN (Elyra)")
    } else if has("xnm") && has("ynm") {
        Some("SMAP CSV")
    } else if has("xnano") && has("ynano") {
        Some("SMLM challenge CSV")
    } else if headers.iter().any(|h| h.raw.contains('[')) {
        Some("ThunderSTORM CSV")
    } else {
        None
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
        // Zeiss ZEN (Elyra), SMAP, the SMLM challenge, ONI Nanoimager, DECODE
        for (cell, q, unit) in [
            ("Position X [nm]", Quantity::X, Unit::Nm),
            ("Position Y [nm]", Quantity::Y, Unit::Nm),
            ("Precision [nm]", Quantity::Precision, Unit::Nm),
            ("First Frame", Quantity::Frame, Unit::None),
            ("Number Photons", Quantity::Photons, Unit::None),
            ("xnmerr", Quantity::Precision, Unit::Nm),
            ("ynm", Quantity::Y, Unit::Nm),
            ("xnano", Quantity::X, Unit::Nm),
            ("znano", Quantity::Z, Unit::Nm),
            ("uncertainty_z [nm]", Quantity::PrecisionZ, Unit::Nm),
            ("znmerr", Quantity::PrecisionZ, Unit::Nm),
            ("x_position", Quantity::X, Unit::None),
            ("X (nm)", Quantity::X, Unit::Nm),
            ("frame_ix", Quantity::Frame, Unit::None),
        ] {
            let h = parse_header(cell);
            assert_eq!((h.quantity, h.unit), (Some(q), unit), "{cell}");
        }
        for cell in [
            "Number Frames",
            "Frames Missing",
            "ynmerr",
            "nano",
            "Z Slice",
        ] {
            assert_eq!(parse_header(cell).quantity, None, "{cell}");
        }
        let h = parse_header("chi2");
        assert_eq!(h.quantity, None);
        assert_eq!(Unit::Px.to_nm(None), None);
        assert_eq!(Unit::Um.to_nm(None), Some(1000.0));
    }
}
