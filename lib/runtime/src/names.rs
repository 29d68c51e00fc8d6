//! Addresses: namespace, component and endpoint names, `dyn://` URLs and instance ids.
//!
//! An endpoint is addressed by `namespace/component/endpoint` plus the u64 instance id of
//! the process serving it. The formats follow Dynamo 1.6.1: `EndpointId` displays as
//! `ns/comp/ep`, its URL form is `dyn://ns.comp.ep`, and the TCP request plane routes by the
//! instance path `"{id:x}/{ns}/{comp}/{ep}"`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// URL scheme prefix of endpoint addresses.
pub const DYN_SCHEME: &str = "dyn://";
/// Namespace used when an address names none.
pub const DEFAULT_NAMESPACE: &str = "NS";
/// Component used when an address names none.
pub const DEFAULT_COMPONENT: &str = "C";
/// Endpoint used when an address names none.
pub const DEFAULT_ENDPOINT: &str = "E";
/// The namespace Dynamo uses when none is configured.
pub const GLOBAL_NAMESPACE: &str = "dynamo";

/// A name or address that does not follow the naming rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// A name was empty.
    #[error("{kind} name must not be empty")]
    Empty {
        /// What was being named (namespace, component, endpoint).
        kind: &'static str,
    },
    /// A name contained a character outside `[a-z0-9-_]`.
    #[error(
        "invalid {kind} name {name:?}: only lowercase ASCII letters, digits, '-' and '_' are allowed"
    )]
    InvalidCharacter {
        /// What was being named.
        kind: &'static str,
        /// The offending name.
        name: String,
    },
    /// An address had more than three parts.
    #[error("invalid endpoint address {0:?}: expected at most namespace, component and endpoint")]
    TooManyParts(String),
    /// An instance id was not a hexadecimal u64.
    #[error("invalid instance id {0:?}: expected a hexadecimal u64")]
    InvalidInstanceId(String),
}

/// Checks a namespace, component or endpoint name against `^[a-z0-9-_]+$`.
pub fn validate_name(kind: &'static str, name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty { kind });
    }
    let valid = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(NameError::InvalidCharacter {
            kind,
            name: name.to_owned(),
        })
    }
}

/// Fully qualified endpoint address: namespace, component and endpoint name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EndpointId {
    /// Namespace name.
    pub namespace: String,
    /// Component name.
    pub component: String,
    /// Endpoint name.
    pub name: String,
}

impl EndpointId {
    /// Builds an endpoint id after validating all three names.
    pub fn new(
        namespace: impl Into<String>,
        component: impl Into<String>,
        name: impl Into<String>,
    ) -> Result<Self, NameError> {
        let id = Self {
            namespace: namespace.into(),
            component: component.into(),
            name: name.into(),
        };
        id.validate()?;
        Ok(id)
    }

    /// Validates the three names.
    pub fn validate(&self) -> Result<(), NameError> {
        validate_name("namespace", &self.namespace)?;
        validate_name("component", &self.component)?;
        validate_name("endpoint", &self.name)
    }

    /// Parses `dyn://ns.comp.ep`, `ns.comp.ep` or `ns/comp/ep`.
    ///
    /// Missing trailing parts default to [`DEFAULT_NAMESPACE`], [`DEFAULT_COMPONENT`] and
    /// [`DEFAULT_ENDPOINT`]; the parts that are present must be valid names.
    pub fn parse(address: &str) -> Result<Self, NameError> {
        let body = address.strip_prefix(DYN_SCHEME).unwrap_or(address);
        if body.is_empty() {
            return Err(NameError::Empty { kind: "namespace" });
        }
        let parts: Vec<&str> = body.split(['.', '/']).collect();
        if parts.len() > 3 {
            return Err(NameError::TooManyParts(address.to_owned()));
        }
        let kinds = ["namespace", "component", "endpoint"];
        for (kind, part) in kinds.iter().zip(&parts) {
            validate_name(kind, part)?;
        }
        let part = |i: usize, default: &str| parts.get(i).copied().unwrap_or(default).to_owned();
        Ok(Self {
            namespace: part(0, DEFAULT_NAMESPACE),
            component: part(1, DEFAULT_COMPONENT),
            name: part(2, DEFAULT_ENDPOINT),
        })
    }

    /// The URL form `dyn://ns.comp.ep`.
    pub fn url(&self) -> String {
        format!(
            "{DYN_SCHEME}{}.{}.{}",
            self.namespace, self.component, self.name
        )
    }

    /// The request-plane routing path of this endpoint served by `instance`.
    pub fn instance_path(&self, instance: InstanceId) -> String {
        instance_path(instance, self)
    }
}

impl fmt::Display for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.namespace, self.component, self.name)
    }
}

impl FromStr for EndpointId {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The discovery identity of a process (etcd lease id, or a random u64 for mem/file).
///
/// Serialized as a plain u64 (JSON records), displayed as lowercase hex (keys and paths).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct InstanceId(pub u64);

impl InstanceId {
    /// A fresh random instance id, as the mem and file backends use.
    pub fn random() -> Self {
        Self(rand::random())
    }

    /// Parses the lowercase (or uppercase) hex form used in keys and paths.
    pub fn from_hex(s: &str) -> Result<Self, NameError> {
        if s.is_empty() || s.len() > 16 {
            return Err(NameError::InvalidInstanceId(s.to_owned()));
        }
        u64::from_str_radix(s, 16)
            .map(Self)
            .map_err(|_| NameError::InvalidInstanceId(s.to_owned()))
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

impl fmt::LowerHex for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

impl From<u64> for InstanceId {
    fn from(value: u64) -> Self {
        Self(value)
    }
}

impl From<InstanceId> for u64 {
    fn from(value: InstanceId) -> Self {
        value.0
    }
}

/// Escapes `%` and `/` in one path segment so the segment cannot change the path's shape.
pub fn escape_path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for c in segment.chars() {
        match c {
            '%' => out.push_str("%25"),
            '/' => out.push_str("%2F"),
            c => out.push(c),
        }
    }
    out
}

/// The TCP request-plane instance path `"{id:x}/{ns}/{comp}/{ep}"`, segments escaped.
pub fn instance_path(instance: InstanceId, endpoint: &EndpointId) -> String {
    format!(
        "{instance:x}/{}/{}/{}",
        escape_path_segment(&endpoint.namespace),
        escape_path_segment(&endpoint.component),
        escape_path_segment(&endpoint.name)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_url_and_path_forms() {
        let want = EndpointId::new("dynamo", "backend", "generate").unwrap();
        assert_eq!(
            EndpointId::parse("dyn://dynamo.backend.generate").unwrap(),
            want
        );
        assert_eq!(EndpointId::parse("dynamo/backend/generate").unwrap(), want);
        assert_eq!(EndpointId::parse("dynamo.backend.generate").unwrap(), want);
        assert_eq!(want.to_string(), "dynamo/backend/generate");
        assert_eq!(want.url(), "dyn://dynamo.backend.generate");
    }

    #[test]
    fn missing_parts_take_defaults() {
        let id = EndpointId::parse("dyn://ns1").unwrap();
        assert_eq!(id.namespace, "ns1");
        assert_eq!(id.component, DEFAULT_COMPONENT);
        assert_eq!(id.name, DEFAULT_ENDPOINT);
        let id = EndpointId::parse("ns1/comp").unwrap();
        assert_eq!(id.component, "comp");
        assert_eq!(id.name, DEFAULT_ENDPOINT);
    }

    #[test]
    fn rejects_bad_names() {
        assert!(matches!(
            EndpointId::parse("dyn://Dynamo.backend.generate"),
            Err(NameError::InvalidCharacter {
                kind: "namespace",
                ..
            })
        ));
        assert!(matches!(
            EndpointId::parse("a.b.c.d"),
            Err(NameError::TooManyParts(_))
        ));
        assert!(matches!(
            EndpointId::parse("a..c"),
            Err(NameError::Empty { kind: "component" })
        ));
        assert!(EndpointId::parse("dyn://").is_err());
        assert!(validate_name("endpoint", "gen-erate_2").is_ok());
        let msg = validate_name("endpoint", "a b").unwrap_err().to_string();
        assert!(msg.contains("lowercase"), "{msg}");
    }

    #[test]
    fn instance_id_hex_and_serde() {
        let id = InstanceId(0x694d_9a3c_0b37_6816);
        assert_eq!(id.to_string(), "694d9a3c0b376816");
        assert_eq!(InstanceId::from_hex("694d9a3c0b376816").unwrap(), id);
        assert_eq!(serde_json::to_string(&id).unwrap(), "7587890529866049558");
        assert!(InstanceId::from_hex("xyz").is_err());
        assert!(InstanceId::from_hex("").is_err());
        assert!(InstanceId::from_hex("10000000000000000").is_err());
    }

    #[test]
    fn instance_path_escapes_segments() {
        let ep = EndpointId {
            namespace: "a/b".into(),
            component: "c%d".into(),
            name: "generate".into(),
        };
        assert_eq!(
            instance_path(InstanceId(0x00ab_c123), &ep),
            "abc123/a%2Fb/c%25d/generate"
        );
        let ep = EndpointId::new("fakens", "backend", "generate").unwrap();
        assert_eq!(
            ep.instance_path(InstanceId(0x00ab_c123)),
            "abc123/fakens/backend/generate"
        );
    }
}
