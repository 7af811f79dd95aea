//! Topology pictures of a conlink network configuration (spec §11).
//!
//! [`render`] draws a [`NetworkConfig`] (the `--show-config` JSON, read back
//! with serde) as GraphViz DOT, a Mermaid flowchart, an SVG laid out by this
//! crate, or a self-contained HTML page around that SVG with the link
//! properties on hover. All four show the same structure, built once by
//! [`topo::Topology::build`]: the host namespace with the parents of
//! *vlan/*vtap links, conlink's namespace with one box per bridge holding the
//! outer veth ends and tunnel interfaces, one box per service and container
//! holding its inner interfaces, and the remote hosts tunnels reach.

use std::fmt;
use std::str::FromStr;

use conlink_model::NetworkConfig;

pub mod dot;
pub mod html;
pub mod mermaid;
pub mod svg;
pub mod topo;

/// Output format of [`render`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// GraphViz DOT (`dot -Tsvg` draws it).
    Dot,
    /// Mermaid flowchart (GitHub/GitLab markdown render it).
    Mermaid,
    /// SVG laid out by conlink itself.
    Svg,
    /// One self-contained HTML page showing the SVG, properties on hover.
    Html,
}

impl Format {
    /// Every format, in the order the CLI lists them.
    pub const ALL: [Format; 4] = [Format::Dot, Format::Mermaid, Format::Svg, Format::Html];

    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Dot => "dot",
            Format::Mermaid => "mermaid",
            Format::Svg => "svg",
            Format::Html => "html",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown format name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseFormatError(pub String);

impl fmt::Display for ParseFormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown graph format {:?} (expected dot, mermaid, svg or html)",
            self.0
        )
    }
}

impl std::error::Error for ParseFormatError {}

impl FromStr for Format {
    type Err = ParseFormatError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| ParseFormatError(s.to_string()))
    }
}

/// Draws `cfg` in `format`. Never fails: any name is escaped for the format.
pub fn render(cfg: &NetworkConfig, format: Format) -> String {
    let t = topo::Topology::build(cfg);
    match format {
        Format::Dot => dot::render(&t),
        Format::Mermaid => mermaid::render(&t),
        Format::Svg => svg::render(&t),
        Format::Html => html::render(&t),
    }
}

/// Reads `--show-config` JSON and draws it.
pub fn render_json(json: &str, format: Format) -> Result<String, serde_json::Error> {
    let cfg: NetworkConfig = serde_json::from_str(json)?;
    Ok(render(&cfg, format))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_round_trip_and_unknown_is_refused() {
        for f in Format::ALL {
            assert_eq!(f.as_str().parse::<Format>(), Ok(f));
        }
        let e = "png".parse::<Format>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown graph format \"png\" (expected dot, mermaid, svg or html)"
        );
    }

    #[test]
    fn empty_config_renders_in_every_format() {
        let cfg = NetworkConfig::default();
        assert_eq!(render(&cfg, Format::Dot).lines().last(), Some("}"));
        assert_eq!(render(&cfg, Format::Mermaid), "flowchart LR\n");
        let svg = render(&cfg, Format::Svg);
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>\n"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        assert!(render(&cfg, Format::Html).contains(&svg));
    }

    #[test]
    fn inner_nodes_carry_the_live_page_key() {
        let json = include_str!("../tests/fixtures/basic.json");
        let svg = render_json(json, Format::Svg).unwrap();
        let cfg: NetworkConfig = serde_json::from_str(json).unwrap();
        let (svc, g) = cfg
            .services
            .iter()
            .next()
            .expect("basic.json has a service");
        let key = format!("data-key=\"service:{svc}/{}\"", g.links[0].dev);
        assert!(svg.contains(&key), "{key} not in {svg}");
        let n = svg.matches("data-key=").count();
        let links: usize = cfg
            .services
            .values()
            .chain(cfg.containers.values())
            .map(|g| g.links.len())
            .sum();
        assert_eq!(n, links, "one key per inner interface");
    }

    #[test]
    fn bad_json_is_an_error_naming_the_problem() {
        let e = render_json(
            r#"{"bridges": {"s1": {"bridge": "s1", "mode": "hub"}}}"#,
            Format::Dot,
        )
        .unwrap_err();
        assert!(e.to_string().contains("hub"), "{e}");
    }

    #[test]
    fn escaping_helpers() {
        assert_eq!(dot::quote("a\"b\\c\nd\u{7}"), r#""a\"b\\c\nd ""#);
        assert_eq!(mermaid::label("a\"#<b>"), "\"a#34;#35;#60;b#62;\"");
        assert_eq!(
            svg::esc("<a&'\"\u{1}>"),
            "&lt;a&amp;&#39;&quot;\u{FFFD}&gt;"
        );
    }
}
