//! The node's platform and the choice of a manifest from a multi-arch index, following
//! containerd's matcher: same OS and architecture; for arm64 the variant `v8` and an absent
//! variant are equivalent; an exact variant match is preferred.

use crate::manifest::{Descriptor, PlatformSpec};
use std::fmt;

/// An OS/architecture/variant triple in Go's spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`, `arm`, ...
    pub architecture: String,
    /// `v8` for arm64, `v7`/`v6` for arm, `None` elsewhere.
    pub variant: Option<String>,
}

impl Platform {
    /// The platform of the running binary (`amd64` here, `arm64`/`v8` on the boards).
    pub fn current() -> Self {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "riscv64" => ("riscv64", None),
            "powerpc64" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            other => (other, None),
        };
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
        }
    }

    /// A platform from `os/arch[/variant]`, e.g. `linux/arm64/v8`.
    pub fn parse(s: &str) -> Option<Self> {
        let mut it = s.split('/');
        let os = it.next().filter(|x| !x.is_empty())?.to_string();
        let architecture = it.next().filter(|x| !x.is_empty())?.to_string();
        let variant = it.next().map(str::to_string);
        if it.next().is_some() {
            return None;
        }
        Some(Platform {
            os,
            architecture,
            variant,
        })
    }

    fn normalized_variant(arch: &str, v: Option<&str>) -> Option<String> {
        match (arch, v) {
            ("arm64", None) | ("arm64", Some("8")) => Some("v8".into()),
            ("arm", None) => Some("v7".into()),
            (_, Some(v)) if !v.is_empty() => Some(v.to_string()),
            _ => None,
        }
    }

    /// Whether an index entry's platform can run here; `Some(true)` when the variant matched
    /// exactly (preferred), `Some(false)` for a compatible match, `None` for no match.
    pub fn matches(&self, p: &PlatformSpec) -> Option<bool> {
        if p.os != self.os || p.architecture != self.architecture {
            return None;
        }
        let want = Self::normalized_variant(&self.architecture, self.variant.as_deref());
        let have = Self::normalized_variant(&p.architecture, p.variant.as_deref());
        if want == have {
            Some(p.variant == self.variant)
        } else {
            None
        }
    }

    /// Picks the manifest for this platform from an index's entries: the first exact match,
    /// else the first compatible one.
    pub fn select<'a>(&self, entries: &'a [Descriptor]) -> Option<&'a Descriptor> {
        let mut compatible = None;
        for e in entries {
            let Some(p) = &e.platform else { continue };
            match self.matches(p) {
                Some(true) => return Some(e),
                Some(false) if compatible.is_none() => compatible = Some(e),
                _ => {}
            }
        }
        compatible
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(arch: &str, variant: Option<&str>, d: &str) -> Descriptor {
        Descriptor {
            media_type: crate::manifest::OCI_MANIFEST.into(),
            digest: d.into(),
            size: 1,
            platform: Some(PlatformSpec {
                architecture: arch.into(),
                os: "linux".into(),
                variant: variant.map(Into::into),
            }),
            annotations: Default::default(),
        }
    }

    #[test]
    fn current_platform_of_this_binary() {
        let p = Platform::current();
        assert_eq!(p.os, "linux");
        #[cfg(target_arch = "x86_64")]
        assert_eq!(p.to_string(), "linux/amd64");
        #[cfg(target_arch = "aarch64")]
        assert_eq!(p.to_string(), "linux/arm64/v8");
    }

    #[test]
    fn arm64_accepts_v8_or_no_variant_preferring_exact() {
        let arm64 = Platform::parse("linux/arm64/v8").unwrap();
        let entries = vec![
            entry("amd64", None, "a"),
            entry("arm64", None, "b"),
            entry("arm64", Some("v8"), "c"),
        ];
        assert_eq!(arm64.select(&entries).unwrap().digest, "c");
        assert_eq!(arm64.select(&entries[..2]).unwrap().digest, "b");
        let amd64 = Platform::parse("linux/amd64").unwrap();
        assert_eq!(amd64.select(&entries).unwrap().digest, "a");
        assert!(amd64.select(&entries[1..]).is_none());
    }

    #[test]
    fn arm_variants_must_agree() {
        let v7 = Platform::parse("linux/arm/v7").unwrap();
        assert!(v7.select(&[entry("arm", Some("v6"), "x")]).is_none());
        assert_eq!(v7.select(&[entry("arm", None, "y")]).unwrap().digest, "y");
        assert!(Platform::parse("linux").is_none());
    }
}
