//! Pixel size from TIFF metadata: OME-XML or ImageJ `ImageDescription`, or the baseline
//! `XResolution` / `ResolutionUnit` tags.
//!
//! Precedence: OME-XML `PhysicalSizeX` (unit `PhysicalSizeXUnit`, default µm), then an ImageJ
//! description's `unit=` with `XResolution` as pixels per unit, then `XResolution` with
//! `ResolutionUnit` inch (2) or centimetre (3). `ResolutionUnit` none (1) gives no pixel size.

/// A TIFF `XResolution` value kept as a fraction (pixels per unit = `num / den`), so that the
/// pixel size `den / num` is computed with a single rounding.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Resolution {
    pub num: f64,
    pub den: f64,
}

impl Resolution {
    /// Units per pixel, if the resolution is positive and finite.
    fn units_per_pixel(self) -> Option<f64> {
        let v = self.den / self.num;
        (v.is_finite() && v > 0.0).then_some(v)
    }
}

/// Nanometres in one `unit`, for the spellings found in OME-XML and ImageJ metadata
/// (`nm`, `µm`/`um`/`micron`/ImageJ's `\u00B5m`, `mm`, `cm`, `m`, `Å`, `pm`, …).
/// Returns `None` for unknown units (including ImageJ's `pixel`).
pub fn unit_to_nm(unit: &str) -> Option<f64> {
    let u = unit.trim();
    // Ångström is case-sensitive in spirit ("A"), handle before lowercasing.
    if matches!(
        u,
        "Å" | "\u{212B}" | "A" | "\\u00C5" | "\\u00c5" | "&#197;" | "&#xC5;"
    ) {
        return Some(0.1);
    }
    let lower = u.to_lowercase();
    Some(match lower.as_str() {
        "nm" | "nanometer" | "nanometers" | "nanometre" | "nanometres" => 1.0,
        "µm" | "μm" | "um" | "micron" | "microns" | "micrometer" | "micrometers" | "micrometre"
        | "micrometres" | "\\u00b5m" | "\\u03bcm" | "&#181;m" | "&#xb5;m" => 1e3,
        "mm" | "millimeter" | "millimeters" | "millimetre" | "millimetres" => 1e6,
        "cm" | "centimeter" | "centimeters" | "centimetre" | "centimetres" => 1e7,
        "m" | "meter" | "meters" | "metre" | "metres" => 1e9,
        "å" | "angstrom" | "angstroms" | "ångström" | "ångströms" => 0.1,
        "pm" | "picometer" | "picometers" | "picometre" | "picometres" => 1e-3,
        _ => return None,
    })
}

/// Pixel size in nm from whatever the first page carries. Adds notes to `warnings` when
/// metadata is present but unusable.
pub(crate) fn pixel_size_nm(
    description: Option<&str>,
    x_resolution: Option<Resolution>,
    resolution_unit: Option<u16>,
    warnings: &mut Vec<String>,
) -> Option<f64> {
    if let Some(desc) = description {
        if is_ome(desc) {
            match ome_pixel_size_nm(desc) {
                Ok(Some(p)) => return Some(p),
                Ok(None) => {}
                Err(msg) => warnings.push(msg),
            }
        }
        if is_imagej(desc) {
            match imagej_pixel_size_nm(desc, x_resolution) {
                Ok(Some(p)) => return Some(p),
                Ok(None) => {}
                Err(msg) => warnings.push(msg),
            }
            // ImageJ writes ResolutionUnit = none next to its own unit; nothing else to try.
            return None;
        }
    }
    let res = x_resolution?;
    // TIFF 6.0: ResolutionUnit defaults to inch.
    let unit_nm = match resolution_unit.unwrap_or(2) {
        2 => 25.4e6,
        3 => 1e7,
        _ => return None,
    };
    let per_pixel = res.units_per_pixel()?;
    let p = per_pixel * unit_nm;
    if resolution_unit.unwrap_or(2) == 2 {
        let dpi = res.num / res.den;
        if [72.0, 96.0].contains(&dpi) {
            warnings.push(format!(
                "pixel size {p} nm comes from XResolution = {dpi} dpi, a common default of \
                 image editors; it may not describe the sample"
            ));
        }
    }
    Some(p)
}

fn is_ome(desc: &str) -> bool {
    desc.contains("<OME")
        || desc.contains(":OME")
        || desc.contains("openmicroscopy.org/Schemas/OME")
}

fn is_imagej(desc: &str) -> bool {
    desc.trim_start().starts_with("ImageJ=")
}

/// `PhysicalSizeX` of the first OME `Pixels` element, in nm. `Ok(None)` if absent.
pub(crate) fn ome_pixel_size_nm(desc: &str) -> Result<Option<f64>, String> {
    let Some(attrs) = find_element_attrs(desc, "Pixels") else {
        return Ok(None);
    };
    let mut size = None;
    let mut unit = None;
    for (name, value) in parse_attrs(attrs) {
        match name {
            "PhysicalSizeX" => size = Some(value),
            "PhysicalSizeXUnit" => unit = Some(value),
            _ => {}
        }
    }
    let Some(size) = size else {
        return Ok(None);
    };
    let value: f64 = size.trim().parse().map_err(|_| {
        format!("OME-XML PhysicalSizeX {size:?} is not a number; pixel size ignored")
    })?;
    let unit = unit.unwrap_or_else(|| "µm".to_string());
    let factor = unit_to_nm(&unit).ok_or_else(|| {
        format!("OME-XML PhysicalSizeXUnit {unit:?} is not a length unit; pixel size ignored")
    })?;
    let p = value * factor;
    if p.is_finite() && p > 0.0 {
        Ok(Some(p))
    } else {
        Err(format!(
            "OME-XML PhysicalSizeX {size} {unit} is not positive; pixel size ignored"
        ))
    }
}

/// Pixel size from an ImageJ description (`unit=`) and `XResolution` in pixels per unit.
pub(crate) fn imagej_pixel_size_nm(
    desc: &str,
    x_resolution: Option<Resolution>,
) -> Result<Option<f64>, String> {
    let Some(unit) = imagej_field(desc, "unit") else {
        return Ok(None);
    };
    if unit.eq_ignore_ascii_case("pixel") || unit.eq_ignore_ascii_case("pixels") {
        return Ok(None);
    }
    let factor = unit_to_nm(unit)
        .ok_or_else(|| format!("ImageJ unit {unit:?} is not a length unit; pixel size ignored"))?;
    let Some(res) = x_resolution else {
        return Ok(None);
    };
    match res.units_per_pixel() {
        Some(per_pixel) => Ok(Some(per_pixel * factor)),
        None => Err("ImageJ XResolution is zero or invalid; pixel size ignored".to_string()),
    }
}

/// A note when an ImageJ or OME description says the pages are a
/// hyperstack (several channels or z slices besides time): PoseScope reads
/// every page as one frame, so the user should know how they interleave.
pub(crate) fn hyperstack_note(description: Option<&str>) -> Option<String> {
    let desc = description?;
    let size = |v: Option<&str>| v.and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(1);
    let (c, z, t, order) = if is_imagej(desc) {
        let f = |k| size(imagej_field(desc, k));
        (f("channels"), f("slices"), f("frames"), "XYCZT".to_string())
    } else if is_ome(desc) {
        let attrs = parse_attrs(find_element_attrs(desc, "Pixels")?);
        let get = |k: &str| attrs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        let order = get("DimensionOrder")
            .unwrap_or("XYZCT")
            .to_ascii_uppercase();
        (
            size(get("SizeC")),
            size(get("SizeZ")),
            size(get("SizeT")),
            order,
        )
    } else {
        return None;
    };
    // "XYCZT" → "channel fastest, then slice, then time"
    let names: Vec<&str> = order
        .chars()
        .filter_map(|a| match a {
            'C' => Some("channel"),
            'Z' => Some("slice"),
            'T' => Some("time"),
            _ => None,
        })
        .collect();
    let order = match names.as_slice() {
        [a, b, c] => format!("{a} fastest, then {b}, then {c}"),
        _ => format!("in the order {order}"),
    };
    (c > 1 || z > 1).then(|| {
        format!(
            "a hyperstack of {c} channel{} × {z} slice{} × {t} time point{}: every page is read \
             as one frame ({order})",
            if c == 1 { "" } else { "s" },
            if z == 1 { "" } else { "s" },
            if t == 1 { "" } else { "s" },
        )
    })
}

/// The value of `key=value` in an ImageJ description.
pub(crate) fn imagej_field<'a>(desc: &'a str, key: &str) -> Option<&'a str> {
    desc.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        (k.trim() == key).then(|| v.trim())
    })
}

/// The attribute text of the first element named `name` (with or without a namespace prefix).
fn find_element_attrs<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(pos) = xml[from..].find(name) {
        let start = from + pos;
        let end = start + name.len();
        from = end;
        let before = xml[..start].chars().next_back();
        let after = xml[end..].chars().next();
        let prefixed = match before {
            Some('<') => true,
            Some(':') => {
                // `<ns:Pixels`: walk back over the prefix to the '<'.
                let head = &xml[..start - 1];
                let prefix_start = head
                    .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-' || c == '.'))
                    .map(|i| i + 1)
                    .unwrap_or(0);
                prefix_start > 0 && head[..prefix_start].ends_with('<')
            }
            _ => false,
        };
        if prefixed && matches!(after, Some(c) if c.is_whitespace() || c == '>' || c == '/') {
            let rest = &xml[end..];
            let close = rest.find('>').unwrap_or(rest.len());
            return Some(&rest[..close]);
        }
    }
    None
}

/// `name="value"` / `name='value'` pairs, with entities in values decoded.
fn parse_attrs(s: &str) -> Vec<(&str, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
        let Some(eq) = rest.find('=') else { break };
        let name = rest[..eq].trim();
        let after = rest[eq + 1..].trim_start();
        let Some(quote) = after.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            break;
        };
        let body = &after[1..];
        let Some(close) = body.find(quote) else { break };
        out.push((name, decode_entities(&body[..close])));
        rest = &body[close + 1..];
    }
    out
}

/// Decodes the XML predefined entities and numeric character references.
fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let tail = &rest[amp..];
        let Some(semi) = tail.find(';') else {
            out.push_str(tail);
            return out;
        };
        let ent = &tail[1..semi];
        let decoded = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => ent
                .strip_prefix("#x")
                .or_else(|| ent.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| ent.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &tail[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() <= 1e-9 * b.abs().max(1.0))
    }

    #[test]
    fn hyperstacks_say_how_their_pages_interleave() {
        let ij = "ImageJ=1.11a\nimages=6\nchannels=2\nframes=3\nhyperstack=true\n";
        assert_eq!(
            hyperstack_note(Some(ij)).unwrap(),
            "a hyperstack of 2 channels × 1 slice × 3 time points: every page is read as one \
             frame (channel fastest, then slice, then time)"
        );
        let ome = r#"<OME><Image><Pixels DimensionOrder="XYZTC" SizeC="2" SizeZ="4" SizeT="1">"#;
        assert!(hyperstack_note(Some(ome))
            .unwrap()
            .ends_with("(slice fastest, then time, then channel)"));
        // a plain time series says nothing
        assert_eq!(
            hyperstack_note(Some("ImageJ=1.54f\nimages=12\nframes=12\n")),
            None
        );
        assert_eq!(hyperstack_note(None), None);
    }

    #[test]
    fn units() {
        assert_eq!(unit_to_nm("nm"), Some(1.0));
        assert_eq!(unit_to_nm("µm"), Some(1e3));
        assert_eq!(unit_to_nm("μm"), Some(1e3));
        assert_eq!(unit_to_nm("um"), Some(1e3));
        assert_eq!(unit_to_nm("micron"), Some(1e3));
        assert_eq!(unit_to_nm("\\u00B5m"), Some(1e3));
        assert_eq!(unit_to_nm("mm"), Some(1e6));
        assert_eq!(unit_to_nm("Å"), Some(0.1));
        assert_eq!(unit_to_nm("pixel"), None);
    }

    #[test]
    fn ome_default_unit_is_micrometre() {
        let xml = r#"<?xml version="1.0"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0"><Pixels DimensionOrder="XYZCT" ID="Pixels:0" PhysicalSizeX="0.107" PhysicalSizeY="0.107" SizeX="64"/></Image></OME>"#;
        assert!(close(ome_pixel_size_nm(xml).unwrap(), 107.0));
        let mut w = Vec::new();
        assert!(close(pixel_size_nm(Some(xml), None, None, &mut w), 107.0));
    }

    #[test]
    fn ome_units() {
        let mk = |size: &str, unit: &str| {
            format!(
                "<OME><Image><Pixels SizeX='4' PhysicalSizeXUnit='{unit}' PhysicalSizeX='{size}' PhysicalSizeY='9'></Pixels></Image></OME>"
            )
        };
        assert!(close(ome_pixel_size_nm(&mk("160", "nm")).unwrap(), 160.0));
        assert!(close(ome_pixel_size_nm(&mk("0.16", "µm")).unwrap(), 160.0));
        assert!(close(
            ome_pixel_size_nm(&mk("0.16", "&#181;m")).unwrap(),
            160.0
        ));
        assert!(close(ome_pixel_size_nm(&mk("0.16", "um")).unwrap(), 160.0));
        assert!(close(
            ome_pixel_size_nm(&mk("0.00016", "mm")).unwrap(),
            160.0
        ));
        assert!(close(ome_pixel_size_nm(&mk("1600", "Å")).unwrap(), 160.0));
        assert!(ome_pixel_size_nm(&mk("abc", "nm")).is_err());
        assert!(ome_pixel_size_nm(&mk("1", "parsec")).is_err());
        assert_eq!(
            ome_pixel_size_nm("<OME><Pixels SizeX='3'/></OME>").unwrap(),
            None
        );
    }

    #[test]
    fn ome_namespaced_element() {
        let xml = r#"<ome:OME xmlns:ome="x"><ome:Image><ome:Pixels PhysicalSizeX="65" PhysicalSizeXUnit="nm"/></ome:Image></ome:OME>"#;
        assert!(close(ome_pixel_size_nm(xml).unwrap(), 65.0));
        // `PixelsPerUnit` or `<Pixelsize` must not be mistaken for `<Pixels`.
        assert_eq!(
            ome_pixel_size_nm("<OME><Pixelsize PhysicalSizeX='3'/></OME>").unwrap(),
            None
        );
    }

    #[test]
    fn imagej_units() {
        let res = Some(Resolution {
            num: 10.0,
            den: 1.0,
        }); // 10 pixels per unit
        for (unit, nm) in [
            ("micron", 100.0),
            ("\\u00B5m", 100.0),
            ("µm", 100.0),
            ("um", 100.0),
            ("nm", 0.1),
        ] {
            let desc = format!("ImageJ=1.54f\nimages=3\nunit={unit}\nloop=false\n");
            let mut w = Vec::new();
            assert!(
                close(pixel_size_nm(Some(&desc), res, Some(1), &mut w), nm),
                "{unit}"
            );
            assert!(w.is_empty());
        }
        let mut w = Vec::new();
        let desc = "ImageJ=1.54f\nunit=pixel\n";
        assert_eq!(pixel_size_nm(Some(desc), res, Some(1), &mut w), None);
        // ImageJ without unit: XResolution with ResolutionUnit none means nothing.
        assert_eq!(
            pixel_size_nm(Some("ImageJ=1.54f\n"), res, Some(1), &mut w),
            None
        );
        assert_eq!(
            imagej_field("ImageJ=1.5\nimages=12\n", "images"),
            Some("12")
        );
    }

    #[test]
    fn resolution_unit_inch_and_cm() {
        let mut w = Vec::new();
        // 25400 dpi → 1 µm per pixel.
        let r = Some(Resolution {
            num: 25400.0,
            den: 1.0,
        });
        assert!(close(pixel_size_nm(None, r, Some(2), &mut w), 1000.0));
        // Unit absent → inch (TIFF default).
        assert!(close(pixel_size_nm(None, r, None, &mut w), 1000.0));
        // 50000 pixels per cm → 200 nm.
        let r = Some(Resolution {
            num: 50000.0,
            den: 1.0,
        });
        assert!(close(pixel_size_nm(None, r, Some(3), &mut w), 200.0));
        assert_eq!(pixel_size_nm(None, r, Some(1), &mut w), None);
        assert!(w.is_empty());
        // 72 dpi is suspicious: accepted with a warning.
        let r = Some(Resolution {
            num: 72.0,
            den: 1.0,
        });
        assert!(pixel_size_nm(None, r, Some(2), &mut w).is_some());
        assert_eq!(w.len(), 1);
        // Zero resolution is ignored.
        let r = Some(Resolution { num: 0.0, den: 1.0 });
        assert_eq!(pixel_size_nm(None, r, Some(3), &mut w), None);
    }

    #[test]
    fn ome_takes_precedence_over_resolution() {
        let xml = "<OME><Pixels PhysicalSizeX='0.3'/></OME>";
        let r = Some(Resolution {
            num: 50000.0,
            den: 1.0,
        });
        let mut w = Vec::new();
        assert!(close(pixel_size_nm(Some(xml), r, Some(3), &mut w), 300.0));
    }

    #[test]
    fn entities() {
        assert_eq!(
            decode_entities("a&amp;b&#181;&#xB5;&bogus;"),
            "a&bµµ&bogus;"
        );
        assert_eq!(decode_entities("&"), "&");
    }
}
