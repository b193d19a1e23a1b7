//! Where Sluice may connect: one policy for every outbound connection the
//! API and the workers make (destination checks, table browsing, source
//! probes, pipes). Pure: the callers resolve names and ask about each
//! address they would connect to.
//!
//! The rules, in order:
//! 1. a host or address on the deny list (`SLUICE_EGRESS_DENY`) is denied;
//! 2. one on the allow list (`SLUICE_EGRESS_ALLOW`) is allowed;
//! 3. link-local addresses and the cloud metadata services are denied
//!    (unless rule 2 allowed them by name);
//! 4. with an allow list, anything not on it is denied;
//! 5. anything else is allowed.
//!
//! Lists are comma-separated entries, each a CIDR block (`10.0.0.0/8`,
//! `fd00::/8`), an address, a host name, or a host pattern with a leading
//! `*.` (`*.internal` matches `a.internal` and `b.a.internal`).

use std::net::IpAddr;

use ipnet::IpNet;

/// Addresses denied unless allowed by name: link-local blocks (which hold
/// the AWS, GCP and Azure metadata services at 169.254.169.254) and the
/// other clouds' metadata addresses.
const DENIED_BY_DEFAULT: &[&str] = &[
    "169.254.0.0/16",
    "fe80::/10",
    "fd00:ec2::254/128",
    "100.100.100.200/32",
];
const DENIED_HOSTS_BY_DEFAULT: &[&str] = &["metadata.google.internal", "metadata", "instance-data"];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Net(IpNet),
    Host(String),
    /// `*.suffix`: the suffix with its leading dot.
    Suffix(String),
}

impl Entry {
    fn parse(text: &str) -> Result<Entry, String> {
        let text = text.trim().trim_end_matches('.').to_ascii_lowercase();
        if let Ok(net) = text.parse::<IpNet>() {
            return Ok(Entry::Net(net));
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(Entry::Net(IpNet::from(ip)));
        }
        let (pattern, name) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text.as_str()),
        };
        let valid = !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            });
        if !valid {
            return Err(format!(
                "`{text}` is not a CIDR block, an address, a host name or a `*.` pattern"
            ));
        }
        Ok(if pattern {
            Entry::Suffix(format!(".{name}"))
        } else {
            Entry::Host(name.to_owned())
        })
    }

    fn matches_host(&self, host: &str) -> bool {
        match self {
            Entry::Host(name) => name == host,
            Entry::Suffix(suffix) => host.ends_with(suffix.as_str()),
            Entry::Net(net) => host
                .parse::<IpAddr>()
                .is_ok_and(|ip| net.contains(&canonical(ip))),
        }
    }

    fn matches_ip(&self, ip: IpAddr) -> bool {
        matches!(self, Entry::Net(net) if net.contains(&canonical(ip)))
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:169.254.169.254`) are their IPv4
/// address, so they cannot slip past an IPv4 block.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressPolicy {
    allow: Vec<Entry>,
    deny: Vec<Entry>,
    default_deny: Vec<Entry>,
}

impl Default for EgressPolicy {
    fn default() -> Self {
        EgressPolicy::new("", "").expect("the defaults parse")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{target} is not an address Sluice may connect to ({reason})")]
pub struct EgressDenied {
    pub target: String,
    pub reason: &'static str,
}

impl EgressPolicy {
    /// From the two lists' text (`SLUICE_EGRESS_ALLOW`, `SLUICE_EGRESS_DENY`).
    pub fn new(allow: &str, deny: &str) -> Result<Self, String> {
        let list = |text: &str| -> Result<Vec<Entry>, String> {
            text.split(',')
                .filter(|e| !e.trim().is_empty())
                .map(Entry::parse)
                .collect()
        };
        let default_deny = DENIED_BY_DEFAULT
            .iter()
            .chain(DENIED_HOSTS_BY_DEFAULT)
            .map(|e| Entry::parse(e))
            .collect::<Result<_, _>>()?;
        Ok(EgressPolicy {
            allow: list(allow)?,
            deny: list(deny)?,
            default_deny,
        })
    }

    /// From the environment; an unreadable list is an error at start, not
    /// a silently open policy.
    pub fn from_env() -> Result<Self, String> {
        let read = |name: &str| std::env::var(name).unwrap_or_default();
        Self::new(&read("SLUICE_EGRESS_ALLOW"), &read("SLUICE_EGRESS_DENY"))
            .map_err(|e| format!("SLUICE_EGRESS_ALLOW/SLUICE_EGRESS_DENY: {e}"))
    }

    /// Whether a host (a name or a literal address, as written in a URL or
    /// a broker list) may be connected to, before any name is resolved.
    pub fn check_host(&self, host: &str) -> Result<(), EgressDenied> {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let denied = |reason| {
            Err(EgressDenied {
                target: host.clone(),
                reason,
            })
        };
        if self.deny.iter().any(|e| e.matches_host(&host)) {
            return denied("on SLUICE_EGRESS_DENY");
        }
        if self.allow.iter().any(|e| e.matches_host(&host)) {
            return Ok(());
        }
        if self.default_deny.iter().any(|e| e.matches_host(&host)) {
            return denied(
                "a link-local or cloud metadata address; allow it with SLUICE_EGRESS_ALLOW",
            );
        }
        if !self.allow.is_empty() && host.parse::<IpAddr>().is_ok() {
            return denied("not on SLUICE_EGRESS_ALLOW");
        }
        Ok(())
    }

    /// Whether an address a host name resolved to may be connected to.
    /// `host` is the name it came from: a name on the allow list allows
    /// what it resolves to, except addresses on the deny list.
    pub fn check_resolved(&self, host: &str, ip: IpAddr) -> Result<(), EgressDenied> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let denied = |reason| {
            Err(EgressDenied {
                target: format!("{host} ({ip})"),
                reason,
            })
        };
        if self
            .deny
            .iter()
            .any(|e| e.matches_ip(ip) || e.matches_host(&host))
        {
            return denied("on SLUICE_EGRESS_DENY");
        }
        if self
            .allow
            .iter()
            .any(|e| e.matches_ip(ip) || e.matches_host(&host))
        {
            return Ok(());
        }
        if self.default_deny.iter().any(|e| e.matches_ip(ip)) {
            return denied(
                "a link-local or cloud metadata address; allow it with SLUICE_EGRESS_ALLOW",
            );
        }
        if !self.allow.is_empty() {
            return denied("not on SLUICE_EGRESS_ALLOW");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn metadata_and_link_local_are_denied_by_default() {
        let policy = EgressPolicy::default();
        for host in [
            "169.254.169.254",
            "[fe80::1]",
            "fd00:ec2::254",
            "100.100.100.200",
            "metadata.google.internal",
            "METADATA.google.internal.",
            "::ffff:169.254.169.254",
        ] {
            assert!(policy.check_host(host).is_err(), "{host}");
        }
        for host in ["127.0.0.1", "clickhouse.example.com", "10.0.0.5", "[::1]"] {
            assert_eq!(policy.check_host(host), Ok(()), "{host}");
        }
        // A harmless name that resolves to the metadata address.
        assert!(policy
            .check_resolved("rebind.example.com", ip("169.254.169.254"))
            .is_err());
        assert!(policy
            .check_resolved("rebind.example.com", ip("::ffff:169.254.169.254"))
            .is_err());
        assert_eq!(
            policy.check_resolved("ch.example.com", ip("10.1.2.3")),
            Ok(())
        );
    }

    #[test]
    fn lists_allow_and_deny_in_order() {
        let policy = EgressPolicy::new(
            "10.0.0.0/8, *.corp.example, 169.254.10.10",
            "10.9.0.0/16, bad.corp.example",
        )
        .unwrap();
        assert_eq!(policy.check_host("10.1.1.1"), Ok(()));
        assert!(policy.check_host("10.9.1.1").is_err(), "deny wins");
        assert!(policy.check_host("bad.corp.example").is_err());
        assert_eq!(policy.check_host("ch.corp.example"), Ok(()));
        assert_eq!(
            policy.check_host("169.254.10.10"),
            Ok(()),
            "allowed by name"
        );
        assert!(policy.check_host("169.254.169.254").is_err());
        assert!(
            policy.check_host("192.168.1.1").is_err(),
            "not on the allow list"
        );
        // Names off the list are judged by what they resolve to.
        assert_eq!(policy.check_host("elsewhere.example"), Ok(()));
        assert!(policy
            .check_resolved("elsewhere.example", ip("192.168.1.1"))
            .is_err());
        assert_eq!(
            policy.check_resolved("ch.corp.example", ip("192.168.1.1")),
            Ok(()),
            "a name on the allow list allows its addresses"
        );
        assert!(policy
            .check_resolved("ch.corp.example", ip("10.9.0.1"))
            .is_err());
    }

    #[test]
    fn bad_lists_are_refused() {
        assert!(EgressPolicy::new("10.0.0.0/33", "").is_err());
        assert!(EgressPolicy::new("", "a b").is_err());
        assert!(EgressPolicy::new("*.", "").is_err());
    }
}
