//! Which URLs the server will send a browser to: registered redirect URIs (RFC 7591
//! §2, RFC 8252 §7–8, RFC 9700 §4.1) and the launcher's app URLs; and which URL it
//! will fetch itself: a client's `jwks_uri`.
//!
//! Each is parsed with the `url` crate, never matched by prefix: `http://127.0.0.1:1@evil.example/`
//! starts like a loopback URL but its host is evil.example. The raw text must also be
//! printable ASCII, because the server later puts it in a `Location` header as it is
//! (the parser would quietly drop a newline, the header would not).

use std::net::{IpAddr, Ipv4Addr};

use url::{Host, Url};

/// A redirect URI a client may register. Plain http only for a loopback host;
/// a private-use scheme (`com.example.app:/cb`, reverse DNS) only for public clients,
/// since any app on a phone can claim a scheme and only PKCE protects the code.
pub(crate) fn check_redirect_uri(uri: &str, public_client: bool) -> Result<(), String> {
    let url = parse(uri)?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => return Err("plain http is only allowed for localhost or a loopback address".into()),
        scheme if scheme.contains('.') && public_client => {}
        scheme if scheme.contains('.') => {
            return Err("a private-use scheme is only for public (native) clients".into());
        }
        _ => return Err("must be https, loopback http, or a reverse-DNS private-use scheme".into()),
    }
    if url.fragment().is_some() {
        return Err("must not contain a fragment".into());
    }
    Ok(())
}

/// An app launch URL for the launcher: absolute http(s), where the EHR opens the app.
pub(crate) fn check_launch_url(uri: &str) -> Result<(), String> {
    let url = parse(uri)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an absolute http(s) URL".into());
    }
    Ok(())
}

/// A client's `jwks_uri` (RFC 7591 §2), which this server fetches: https, or plain
/// http on a loopback host for a key server on the developer's own machine.
/// Anyone may register, so plain http elsewhere is refused, and so is an address
/// of a private or link-local network even over https: the mock would otherwise
/// fetch (and report on) any host and port of the networks it can reach.
pub(crate) fn check_jwks_uri(uri: &str) -> Result<Url, String> {
    let url = parse(uri)?;
    match url.scheme() {
        "https" if is_internal_address(&url) => {
            return Err("must not name a private, link-local or unspecified address".into());
        }
        "https" => {}
        "http" if is_loopback(&url) => {}
        _ => return Err("must be https, or http on localhost or a loopback address".into()),
    }
    if url.fragment().is_some() {
        return Err("must not contain a fragment".into());
    }
    Ok(url)
}

fn parse(uri: &str) -> Result<Url, String> {
    if let Some(bad) = uri.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "contains {bad:?}: only printable ASCII is allowed (percent-encode the rest)"
        ));
    }
    let url = Url::parse(uri).map_err(|e| format!("is not an absolute URL: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain user information (user:password@)".into());
    }
    if matches!(url.scheme(), "http" | "https") && url.host().is_none() {
        return Err("has no host".into());
    }
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// An IP literal of a network other than the internet and this machine: private
/// (RFC 1918, RFC 4193), shared (RFC 6598), link-local, unspecified or broadcast.
fn is_internal_address(url: &Url) -> bool {
    let internal_v4 = |ip: Ipv4Addr| {
        ip.is_private()
            || ip.is_link_local()
            || ip.is_unspecified()
            || ip.is_broadcast()
            || (ip.octets()[0] == 100 && ip.octets()[1] & 0xc0 == 64)
    };
    match url.host() {
        Some(Host::Ipv4(ip)) => internal_v4(ip),
        Some(Host::Ipv6(ip)) => match ip.to_ipv4_mapped() {
            Some(v4) => internal_v4(v4),
            None => ip.is_unique_local() || ip.is_unicast_link_local() || ip.is_unspecified(),
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_read_by_a_parser_not_a_prefix() {
        for (uri, public, ok) in [
            ("http://127.0.0.1:1@evil.example/cb", true, false),
            ("http://localhost:@evil.example/", true, false),
            ("http://[::1]:x@evil.example/", true, false),
            ("http://127.0.0.1.evil.example/", true, false),
            ("http://127.0.0.2:8000/cb", true, true),
            ("http://LOCALHOST/cb", true, true),
            ("http://[::1]/cb", true, true),
            ("https://app.example/cb?x=1", false, true),
            ("https://app.example/cb#f", false, false),
            ("com.example.app:/cb", true, true),
            ("com.example.app:/cb", false, false),
            ("javascript:alert(1)", true, false),
            ("http://127.0.0.1/a\tb", true, false),
            ("relative/cb", true, false),
        ] {
            assert_eq!(
                check_redirect_uri(uri, public).is_ok(),
                ok,
                "{uri} public={public}"
            );
        }
    }

    #[test]
    fn key_set_urls_are_https_or_loopback() {
        for (uri, ok) in [
            ("https://keys.example/jwks.json", true),
            ("http://127.0.0.1:9000/jwks", true),
            ("http://localhost/jwks", true),
            ("http://keys.example/jwks.json", false),
            ("http://10.0.0.1/jwks", false),
            ("https://10.0.0.5:22/", false),
            ("https://192.168.1.10/jwks", false),
            ("https://169.254.169.254/latest/meta-data", false),
            ("https://100.64.0.1/jwks", false),
            ("https://0.0.0.0/jwks", false),
            ("https://[fd00::1]/jwks", false),
            ("https://[fe80::1]/jwks", false),
            ("https://[::ffff:10.0.0.1]/jwks", false),
            ("https://93.184.216.34/jwks", true),
            ("https://[2606:4700::1]/jwks", true),
            ("http://127.0.0.1:1@evil.example/jwks", false),
            ("https://keys.example/jwks#k", false),
            ("file:///etc/passwd", false),
            ("jwks.json", false),
        ] {
            assert_eq!(check_jwks_uri(uri).is_ok(), ok, "{uri}");
        }
    }
}
