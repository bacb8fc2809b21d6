//! Where pushes may go. Endpoints are URLs that browsers (that is, anyone)
//! hand us, so they are never followed to this machine or its networks:
//! only HTTPS to public addresses, checked again when the name is resolved
//! (so a name that later points inward is refused too). A test setup may
//! name origins that are exempt.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// Why an endpoint is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    #[error("the endpoint is not a URL")]
    NotUrl,
    #[error("the endpoint must be an https:// URL")]
    NotHttps,
    #[error("the endpoint must not carry a user name or password")]
    Credentials,
    #[error("the endpoint's address is not a public one")]
    NotPublic,
}

/// The origins exempt from the rules (scheme://host:port, as configured).
#[derive(Debug, Clone, Default)]
pub struct Destinations {
    exempt: Arc<Vec<String>>,
}

impl Destinations {
    /// Rules with `exempt` origins (for a test's own push service).
    pub fn new(exempt: impl IntoIterator<Item = String>) -> Self {
        let exempt = exempt
            .into_iter()
            .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
            .filter(|o| !o.is_empty())
            .collect();
        Destinations {
            exempt: Arc::new(exempt),
        }
    }

    /// Checks an endpoint as given; names are checked again when resolved.
    pub fn check(&self, endpoint: &str) -> Result<reqwest::Url, Refused> {
        let url = reqwest::Url::parse(endpoint).map_err(|_| Refused::NotUrl)?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refused::Credentials);
        }
        if self.is_exempt(&url) {
            return Ok(url);
        }
        if url.scheme() != "https" {
            return Err(Refused::NotHttps);
        }
        match url.host() {
            Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") => {
                Err(Refused::NotPublic)
            }
            Some(url::Host::Domain(_)) => Ok(url),
            Some(url::Host::Ipv4(ip)) if is_public(IpAddr::V4(ip)) => Ok(url),
            Some(url::Host::Ipv6(ip)) if is_public(IpAddr::V6(ip)) => Ok(url),
            _ => Err(Refused::NotPublic),
        }
    }

    fn is_exempt(&self, url: &reqwest::Url) -> bool {
        let origin = url.origin().ascii_serialization().to_ascii_lowercase();
        self.exempt.contains(&origin)
    }

    /// Host names of the exempt origins, which the resolver lets through.
    fn exempt_hosts(&self) -> Vec<String> {
        self.exempt
            .iter()
            .filter_map(|o| reqwest::Url::parse(o).ok())
            .filter_map(|u| u.host_str().map(str::to_ascii_lowercase))
            .collect()
    }

    /// A resolver that keeps only public addresses.
    pub fn resolver(&self) -> PublicOnly {
        PublicOnly {
            exempt: Arc::new(self.exempt_hosts()),
        }
    }
}

/// Resolves names as the system does, refusing any that lead to a
/// loopback, private, link-local or otherwise non-public address.
#[derive(Clone)]
pub struct PublicOnly {
    exempt: Arc<Vec<String>>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let exempt = self.exempt.contains(&host);
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| Box::new(e) as BoxError)?
                .filter(|a| exempt || is_public(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(Box::new(Refused::NotPublic) as BoxError);
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

/// Whether an address is one anybody on the Internet could reach.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64 to any IPv4
        || s[0] == 0x2002 // 6to4, which can wrap a private IPv4
        || (s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 && s[4] == 0 && s[5] == 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_to_public_addresses_passes() {
        let d = Destinations::default();
        assert!(d.check("https://fcm.googleapis.com/fcm/send/abc").is_ok());
        assert!(d.check("https://8.8.8.8/x").is_ok());
        assert_eq!(
            d.check("http://push.example/x").unwrap_err(),
            Refused::NotHttps
        );
        assert_eq!(d.check("not a url").unwrap_err(), Refused::NotUrl);
        assert_eq!(
            d.check("https://u:p@push.example/").unwrap_err(),
            Refused::Credentials
        );
        for inward in [
            "https://127.0.0.1/",
            "https://localhost:8443/",
            "https://10.1.2.3/",
            "https://192.168.0.1/",
            "https://172.16.5.4/",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://[::1]/",
            "https://[fd00::1]/",
            "https://[fe80::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[64:ff9b::a00:1]/",
        ] {
            assert_eq!(d.check(inward).unwrap_err(), Refused::NotPublic, "{inward}");
        }
    }

    #[test]
    fn an_exempt_origin_passes_as_configured_and_no_other() {
        let d = Destinations::new(["http://127.0.0.1:4567/".to_string()]);
        assert!(d.check("http://127.0.0.1:4567/push/1").is_ok());
        assert_eq!(
            d.check("http://127.0.0.1:4568/push/1").unwrap_err(),
            Refused::NotHttps
        );
        assert_eq!(
            d.check("https://127.0.0.1:4568/").unwrap_err(),
            Refused::NotPublic
        );
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_that_lead_inward() {
        let r = Destinations::default().resolver();
        let name: Name = "localhost".parse().unwrap();
        assert!(r.resolve(name).await.is_err());
        let exempt = Destinations::new(["http://localhost:9".to_string()]).resolver();
        let name: Name = "localhost".parse().unwrap();
        assert!(exempt.resolve(name).await.is_ok());
    }
}
