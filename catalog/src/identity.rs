//! Principals: SPIFFE IDs carried in certificates.
//!
//! `spiffe://<trust-domain>/dept/<dept-code>/<name>` names a person or system of a
//! department; `spiffe://<trust-domain>/node/<node-id>` names a cluster node. The
//! department of a principal is part of its identity; its roles are catalog state.

use std::fmt;

use crate::validate::is_code;

/// Default trust domain.
pub const DEFAULT_TRUST_DOMAIN: &str = "yiwang.local";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SpiffeId {
    Principal {
        trust_domain: String,
        dept: String,
        name: String,
    },
    Node {
        trust_domain: String,
        node_id: u64,
    },
}

fn is_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn is_trust_domain(s: &str) -> bool {
    (1..=255).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '_'))
}

impl SpiffeId {
    pub fn parse(s: &str) -> Option<SpiffeId> {
        let rest = s.strip_prefix("spiffe://")?;
        let mut parts = rest.split('/');
        let trust_domain = parts.next()?;
        if !is_trust_domain(trust_domain) {
            return None;
        }
        let kind = parts.next()?;
        let id = match kind {
            "dept" => {
                let dept = parts.next()?;
                let name = parts.next()?;
                if !is_code(dept) || !is_name(name) {
                    return None;
                }
                SpiffeId::Principal {
                    trust_domain: trust_domain.to_string(),
                    dept: dept.to_string(),
                    name: name.to_string(),
                }
            }
            "node" => {
                let node = parts.next()?;
                if node.is_empty() || !node.chars().all(|c| c.is_ascii_digit()) {
                    return None;
                }
                SpiffeId::Node {
                    trust_domain: trust_domain.to_string(),
                    node_id: node.parse().ok()?,
                }
            }
            _ => return None,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(id)
    }

    pub fn principal(trust_domain: &str, dept: &str, name: &str) -> SpiffeId {
        SpiffeId::Principal {
            trust_domain: trust_domain.to_string(),
            dept: dept.to_string(),
            name: name.to_string(),
        }
    }

    pub fn node(trust_domain: &str, node_id: u64) -> SpiffeId {
        SpiffeId::Node {
            trust_domain: trust_domain.to_string(),
            node_id,
        }
    }

    pub fn trust_domain(&self) -> &str {
        match self {
            SpiffeId::Principal { trust_domain, .. } | SpiffeId::Node { trust_domain, .. } => {
                trust_domain
            }
        }
    }

    /// The department code, for department principals.
    pub fn dept(&self) -> Option<&str> {
        match self {
            SpiffeId::Principal { dept, .. } => Some(dept),
            SpiffeId::Node { .. } => None,
        }
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpiffeId::Principal {
                trust_domain,
                dept,
                name,
            } => write!(f, "spiffe://{trust_domain}/dept/{dept}/{name}"),
            SpiffeId::Node {
                trust_domain,
                node_id,
            } => write!(f, "spiffe://{trust_domain}/node/{node_id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let s = "spiffe://yiwang.local/dept/320600-YJJ/steward";
        let id = SpiffeId::parse(s).unwrap();
        assert_eq!(id.dept(), Some("320600-YJJ"));
        assert_eq!(id.to_string(), s);
        let n = SpiffeId::parse("spiffe://yiwang.local/node/3").unwrap();
        assert_eq!(n, SpiffeId::node("yiwang.local", 3));
        for bad in [
            "spiffe://yiwang.local/dept/320600-YJJ",
            "spiffe://yiwang.local/dept/320600-YJJ/a/b",
            "spiffe://Yiwang.local/dept/X1/a",
            "https://yiwang.local/dept/X1/a",
            "spiffe://yiwang.local/node/x",
            "spiffe://yiwang.local/user/x",
            "spiffe://yiwang.local/dept/320600-YJJ/a b",
        ] {
            assert!(SpiffeId::parse(bad).is_none(), "{bad}");
        }
    }
}
