//! Settings of the etcd backend and their environment variables (Dynamo 1.6.1 names).

use std::path::PathBuf;
use std::time::Duration;

/// Comma-separated etcd endpoints.
pub const ENV_ETCD_ENDPOINTS: &str = "ETCD_ENDPOINTS";
/// Primary lease TTL in whole seconds.
pub const ENV_ETCD_LEASE_TTL: &str = "ETCD_LEASE_TTL";
/// User name for etcd authentication (with [`ENV_ETCD_AUTH_PASSWORD`]).
pub const ENV_ETCD_AUTH_USERNAME: &str = "ETCD_AUTH_USERNAME";
/// Password for etcd authentication.
pub const ENV_ETCD_AUTH_PASSWORD: &str = "ETCD_AUTH_PASSWORD";
/// PEM file of the CA that signed etcd's server certificate; setting it turns TLS on.
pub const ENV_ETCD_AUTH_CA: &str = "ETCD_AUTH_CA";
/// PEM client certificate for mutual TLS (with [`ENV_ETCD_AUTH_CLIENT_KEY`]).
pub const ENV_ETCD_AUTH_CLIENT_CERT: &str = "ETCD_AUTH_CLIENT_CERT";
/// PEM private key of the client certificate.
pub const ENV_ETCD_AUTH_CLIENT_KEY: &str = "ETCD_AUTH_CLIENT_KEY";
/// How long startup keeps retrying to reach etcd, in seconds.
pub const ENV_ETCD_STARTUP_TIMEOUT: &str = "ETCD_STARTUP_CONNECT_TIMEOUT_SECONDS";

/// Default endpoint when `ETCD_ENDPOINTS` is unset.
pub const DEFAULT_ENDPOINT: &str = "http://localhost:2379";
/// Default primary lease TTL.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);
/// Default bound on startup retries.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_mins(2);
/// Default bound on one etcd call (get, put, delete, grant, one keep-alive round trip).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// User name and password for etcd's built-in authentication.
#[derive(Clone, PartialEq, Eq)]
pub struct EtcdAuth {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for EtcdAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// TLS towards etcd: the CA to trust and, for mutual TLS, a client certificate and key
/// (PEM files, as Dynamo's `ETCD_AUTH_CA`, `ETCD_AUTH_CLIENT_CERT`, `ETCD_AUTH_CLIENT_KEY`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdTls {
    /// CA certificate(s) that signed etcd's server certificate.
    pub ca: PathBuf,
    /// Client certificate and private key, when etcd requires client authentication.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// Settings of an [`EtcdDiscovery`](super::EtcdDiscovery).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdConfig {
    /// Endpoints, e.g. `http://10.0.0.5:2379`; a bare `host:port` gets `http://`.
    pub endpoints: Vec<String>,
    /// TTL of the process's primary lease (whole seconds, at least 1).
    pub lease_ttl: Duration,
    /// Optional user/password authentication.
    pub auth: Option<EtcdAuth>,
    /// Optional TLS (bare `host:port` endpoints then get `https://`).
    pub tls: Option<EtcdTls>,
    /// How long startup retries (with backoff) before giving up.
    pub startup_timeout: Duration,
    /// Bound on each etcd call.
    pub request_timeout: Duration,
}

impl Default for EtcdConfig {
    fn default() -> Self {
        Self::new([DEFAULT_ENDPOINT])
    }
}

impl EtcdConfig {
    /// Settings for `endpoints` with the default TTL and timeouts.
    pub fn new<S: Into<String>>(endpoints: impl IntoIterator<Item = S>) -> Self {
        Self {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            lease_ttl: DEFAULT_LEASE_TTL,
            auth: None,
            tls: None,
            startup_timeout: DEFAULT_STARTUP_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// Defaults overridden by `ETCD_ENDPOINTS`, `ETCD_LEASE_TTL`, `ETCD_AUTH_USERNAME`/`PASSWORD`,
    /// `ETCD_AUTH_CA`/`CLIENT_CERT`/`CLIENT_KEY` and `ETCD_STARTUP_CONNECT_TIMEOUT_SECONDS`.
    pub fn from_env() -> Self {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Like [`EtcdConfig::from_env`] over any variable lookup (testable without the process env).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |key: &str| lookup(key).filter(|v| !v.trim().is_empty());
        let secs = |key: &str| {
            get(key)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs)
        };
        let mut config = Self::default();
        if let Some(list) = get(ENV_ETCD_ENDPOINTS) {
            let endpoints: Vec<String> = list
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect();
            if !endpoints.is_empty() {
                config.endpoints = endpoints;
            }
        }
        if let Some(ttl) = secs(ENV_ETCD_LEASE_TTL).filter(|t| !t.is_zero()) {
            config.lease_ttl = ttl;
        }
        if let Some(timeout) = secs(ENV_ETCD_STARTUP_TIMEOUT) {
            config.startup_timeout = timeout;
        }
        if let (Some(username), Some(password)) =
            (get(ENV_ETCD_AUTH_USERNAME), lookup(ENV_ETCD_AUTH_PASSWORD))
        {
            config.auth = Some(EtcdAuth { username, password });
        }
        config.tls = get(ENV_ETCD_AUTH_CA).map(|ca| EtcdTls {
            ca: PathBuf::from(ca),
            client: get(ENV_ETCD_AUTH_CLIENT_CERT)
                .zip(get(ENV_ETCD_AUTH_CLIENT_KEY))
                .map(|(cert, key)| (PathBuf::from(cert), PathBuf::from(key))),
        });
        config
    }

    /// Settings from a binary's shared runtime flags (`--etcd-endpoints`, `--etcd-lease-ttl`
    /// and their env twins); authentication and timeouts from the environment.
    pub fn from_runtime(runtime: &stator_config::RuntimeConfig) -> Self {
        let mut config = Self::from_env();
        if !runtime.etcd_endpoints.is_empty() {
            config.endpoints.clone_from(&runtime.etcd_endpoints);
        }
        if !runtime.etcd_lease_ttl.is_zero() {
            config.lease_ttl = runtime.etcd_lease_ttl;
        }
        config
    }

    /// The endpoints with a scheme (`http://`, or `https://` with TLS, added to bare
    /// `host:port`).
    pub fn endpoint_urls(&self) -> Vec<String> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        self.endpoints
            .iter()
            .map(|e| {
                if e.contains("://") {
                    e.clone()
                } else {
                    format!("{scheme}://{e}")
                }
            })
            .collect()
    }

    /// The lease TTL in whole seconds as etcd takes it (at least 1).
    pub fn lease_ttl_secs(&self) -> i64 {
        i64::try_from(self.lease_ttl.as_secs().max(1)).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |key| map.get(key).cloned()
    }

    #[test]
    fn defaults_match_dynamo() {
        let config = EtcdConfig::from_lookup(lookup(&[]));
        assert_eq!(config.endpoints, vec!["http://localhost:2379"]);
        assert_eq!(config.lease_ttl, Duration::from_secs(30));
        assert_eq!(config.auth, None);
    }

    #[test]
    fn reads_the_environment() {
        let config = EtcdConfig::from_lookup(lookup(&[
            ("ETCD_ENDPOINTS", " 10.0.0.1:2379, http://10.0.0.2:2379 ,"),
            ("ETCD_LEASE_TTL", "3"),
            ("ETCD_AUTH_USERNAME", "root"),
            ("ETCD_AUTH_PASSWORD", "secret"),
            ("ETCD_STARTUP_CONNECT_TIMEOUT_SECONDS", "7"),
        ]));
        assert_eq!(
            config.endpoint_urls(),
            vec!["http://10.0.0.1:2379", "http://10.0.0.2:2379"]
        );
        assert_eq!(config.lease_ttl_secs(), 3);
        assert_eq!(config.startup_timeout, Duration::from_secs(7));
        let auth = config.auth.expect("auth from env");
        assert_eq!(auth.username, "root");
        assert!(!format!("{auth:?}").contains("secret"));
    }

    #[test]
    fn tls_files_come_from_the_environment() {
        let config = EtcdConfig::from_lookup(lookup(&[
            ("ETCD_ENDPOINTS", "10.0.0.1:2379"),
            ("ETCD_AUTH_CA", "/certs/ca.pem"),
            ("ETCD_AUTH_CLIENT_CERT", "/certs/client.pem"),
            ("ETCD_AUTH_CLIENT_KEY", "/certs/client-key.pem"),
        ]));
        assert_eq!(config.endpoint_urls(), vec!["https://10.0.0.1:2379"]);
        let tls = config.tls.expect("tls from env");
        assert_eq!(tls.ca, PathBuf::from("/certs/ca.pem"));
        assert_eq!(
            tls.client,
            Some((
                PathBuf::from("/certs/client.pem"),
                PathBuf::from("/certs/client-key.pem")
            ))
        );
        let server_auth_only =
            EtcdConfig::from_lookup(lookup(&[("ETCD_AUTH_CA", "/certs/ca.pem")]));
        assert_eq!(server_auth_only.tls.expect("tls").client, None);
    }

    #[test]
    fn runtime_flags_take_precedence() {
        let runtime = stator_config::RuntimeConfig {
            etcd_endpoints: vec!["http://10.1.1.1:2379".to_owned()],
            etcd_lease_ttl: Duration::from_secs(4),
            ..Default::default()
        };
        let config = EtcdConfig::from_runtime(&runtime);
        assert_eq!(config.endpoints, runtime.etcd_endpoints);
        assert_eq!(config.lease_ttl, Duration::from_secs(4));
    }

    #[test]
    fn ignores_bad_values() {
        let config = EtcdConfig::from_lookup(lookup(&[
            ("ETCD_ENDPOINTS", " , "),
            ("ETCD_LEASE_TTL", "0"),
            ("ETCD_AUTH_USERNAME", "root"),
        ]));
        assert_eq!(config, EtcdConfig::default());
    }
}
