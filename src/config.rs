//! The daemon's configuration: a TOML file plus `ZDSYNC_*` environment overrides, validated once at start.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveTime;
use serde::Deserialize;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has an unknown key.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file that failed to parse.
        path: PathBuf,
        /// What the TOML parser reported, including the key.
        message: String,
    },
    /// A key has a value zdsync cannot use.
    #[error("config key `{key}` has an invalid value {value:?}: {reason}")]
    Invalid {
        /// The dotted key (or environment variable) that is wrong.
        key: String,
        /// The value as given.
        value: String,
        /// What a valid value looks like.
        reason: String,
    },
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Where the gRPC tokens come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthConfig {
    /// File holding the admin token; when unset and `admin_token` is unset, one is generated in the data directory.
    pub admin_token_file: Option<PathBuf>,
    /// File holding the read-only token.
    pub read_token_file: Option<PathBuf>,
    /// The admin token itself, from `ZDSYNC_ADMIN_TOKEN`.
    pub admin_token: Option<String>,
    /// The read token itself, from `ZDSYNC_READ_TOKEN`.
    pub read_token: Option<String>,
}

/// TLS for the gRPC listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key.
    pub key_file: PathBuf,
}

/// How zdsync reaches Zendesk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZendeskConfig {
    /// Overrides `https://{subdomain}.zendesk.com`; for tests and the simulator only.
    pub base_url: Option<String>,
    /// Client-side request budget for the incremental export endpoints; 0 turns it off.
    pub requests_per_minute: u32,
    /// Client-side request budget for every other endpoint (lists, `users/me`, tokens); 0 turns it off.
    pub other_requests_per_minute: u32,
    /// Percent of the account's limit (`x-rate-limit`) left to the customer's other apps.
    pub reserve_for_other_apps: u32,
    /// Timeout of one HTTP request.
    pub timeout: Duration,
}

/// When syncs run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleConfig {
    /// Time between incremental syncs.
    pub incremental_interval: Duration,
    /// Time of day (UTC) of the nightly validation.
    pub full_validation_at: NaiveTime,
    /// Fetched pages applied per write transaction at most (1 = one transaction per page).
    pub pages_per_commit: u32,
}

/// The validated configuration of the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Address the gRPC server listens on.
    pub listen: SocketAddr,
    /// Directory holding the database, generated tokens and secrets.
    pub data_dir: PathBuf,
    /// Log line format.
    pub log_format: LogFormat,
    /// gRPC tokens.
    pub auth: AuthConfig,
    /// Optional TLS for the gRPC listener.
    pub tls: Option<TlsConfig>,
    /// Zendesk access.
    pub zendesk: ZendeskConfig,
    /// Sync schedule.
    pub schedule: ScheduleConfig,
    /// `[prometheus] listen`: where `GET /metrics` is served; off when unset.
    pub prometheus_listen: Option<SocketAddr>,
}

/// Default gRPC listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
/// Default data directory when neither the config nor systemd's `STATE_DIRECTORY` says otherwise.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/zdsync";
/// Default export budget per minute: Zendesk's documented limit for the incremental exports.
pub const DEFAULT_REQUESTS_PER_MINUTE: u32 = 10;
/// Default budget per minute of the other endpoints: the smallest plan's account-wide limit.
pub const DEFAULT_OTHER_REQUESTS_PER_MINUTE: u32 =
    crate::zendesk::settings::DEFAULT_OTHER_REQUESTS_PER_MINUTE;
/// Default share (percent) of the account's limit zdsync leaves to the customer's other apps.
pub const DEFAULT_RESERVE_FOR_OTHER_APPS: u32 =
    crate::zendesk::settings::DEFAULT_RESERVE_FOR_OTHER_APPS;
/// Largest share (percent) `reserve_for_other_apps` may keep back: zdsync must still be able to sync.
pub const MAX_RESERVE_FOR_OTHER_APPS: u32 = crate::zendesk::settings::MAX_RESERVE_FOR_OTHER_APPS;
/// Default timeout of one Zendesk request.
pub const DEFAULT_ZENDESK_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time between incremental syncs.
pub const DEFAULT_INCREMENTAL_INTERVAL: Duration = Duration::from_secs(3600);
/// Default time of day (UTC) of the nightly validation.
pub const DEFAULT_FULL_VALIDATION_AT: NaiveTime = match NaiveTime::from_hms_opt(2, 0, 0) {
    Some(time) => time,
    None => NaiveTime::MIN,
};
/// Pages a sync applies per write transaction unless configured.
pub const DEFAULT_PAGES_PER_COMMIT: u32 = 100;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    log_format: Option<String>,
    #[serde(default)]
    auth: RawAuth,
    #[serde(default)]
    tls: RawTls,
    #[serde(default)]
    zendesk: RawZendesk,
    #[serde(default)]
    schedule: RawSchedule,
    #[serde(default)]
    prometheus: RawPrometheus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrometheus {
    listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    admin_token_file: Option<PathBuf>,
    read_token_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawZendesk {
    base_url: Option<String>,
    requests_per_minute: Option<i64>,
    other_requests_per_minute: Option<i64>,
    reserve_for_other_apps: Option<i64>,
    timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    incremental_interval: Option<String>,
    full_validation_at: Option<String>,
    pages_per_commit: Option<i64>,
}

/// A source of environment variables, so tests need not touch the process environment.
pub trait Env {
    /// The value of `name`, if set and not empty.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl<const N: usize> Env for [(&str, &str); N] {
    fn var(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| (*value).to_owned())
    }
}

impl Config {
    /// Loads the config file (if any), applies `ZDSYNC_*` overrides from `env`, and validates every key.
    pub fn load(path: Option<&Path>, env: &dyn Env) -> Result<Self, ConfigError> {
        let raw = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                toml::from_str::<RawConfig>(&text).map_err(|err| ConfigError::Parse {
                    path: path.to_owned(),
                    message: err.to_string(),
                })?
            }
            None => RawConfig::default(),
        };
        Self::from_raw(raw, env)
    }

    /// Parses TOML text (no file) and applies `env`; used by tests and by `load`.
    pub fn from_toml(text: &str, env: &dyn Env) -> Result<Self, ConfigError> {
        let raw = toml::from_str::<RawConfig>(text).map_err(|err| ConfigError::Parse {
            path: PathBuf::from("<inline>"),
            message: err.to_string(),
        })?;
        Self::from_raw(raw, env)
    }

    fn from_raw(raw: RawConfig, env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Config {
            listen: listen_from(env, raw.listen)?,
            data_dir: data_dir_from(env, raw.data_dir)?,
            log_format: log_format_from(env, raw.log_format)?,
            auth: AuthConfig::from_raw(env, raw.auth)?,
            tls: TlsConfig::from_raw(env, raw.tls)?,
            zendesk: ZendeskConfig::from_raw(env, raw.zendesk)?,
            schedule: ScheduleConfig::from_raw(env, raw.schedule)?,
            prometheus_listen: prometheus_listen_from(env, raw.prometheus.listen)?,
        })
    }
}

fn prometheus_listen_from(
    env: &dyn Env,
    file_value: Option<String>,
) -> Result<Option<SocketAddr>, ConfigError> {
    pick(
        env,
        "ZDSYNC_PROMETHEUS_LISTEN",
        file_value,
        "prometheus.listen",
    )
    .map(|(key, value)| {
        crate::prometheus::parse_listen(&value).map_err(|reason| invalid(&key, &value, &reason))
    })
    .transpose()
}

fn listen_from(env: &dyn Env, file_value: Option<String>) -> Result<SocketAddr, ConfigError> {
    let (key, text) = pick(env, "ZDSYNC_LISTEN", file_value, "listen")
        .unwrap_or_else(|| ("listen".into(), DEFAULT_LISTEN.into()));
    text.parse::<SocketAddr>().map_err(|_| {
        invalid(
            &key,
            &text,
            "expected an IP address and port, e.g. 127.0.0.1:50051 or [::1]:50051 (a host name such as localhost is not resolved)",
        )
    })
}

fn data_dir_from(env: &dyn Env, file_value: Option<PathBuf>) -> Result<PathBuf, ConfigError> {
    let data_dir = env
        .var("ZDSYNC_DATA_DIR")
        .map(PathBuf::from)
        .or(file_value)
        .or_else(|| env.var("STATE_DIRECTORY").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    if data_dir.as_os_str().is_empty() {
        return Err(invalid("data_dir", "", "must not be empty"));
    }
    Ok(data_dir)
}

fn log_format_from(env: &dyn Env, file_value: Option<String>) -> Result<LogFormat, ConfigError> {
    match pick(env, "ZDSYNC_LOG_FORMAT", file_value, "log_format") {
        None => Ok(LogFormat::Text),
        Some((_, value)) if value == "text" => Ok(LogFormat::Text),
        Some((_, value)) if value == "json" => Ok(LogFormat::Json),
        Some((key, value)) => Err(invalid(&key, &value, "expected `text` or `json`")),
    }
}

impl AuthConfig {
    fn from_raw(env: &dyn Env, raw: RawAuth) -> Result<Self, ConfigError> {
        let auth = AuthConfig {
            admin_token_file: path_override(env, "ZDSYNC_ADMIN_TOKEN_FILE", raw.admin_token_file),
            read_token_file: path_override(env, "ZDSYNC_READ_TOKEN_FILE", raw.read_token_file),
            admin_token: env.var("ZDSYNC_ADMIN_TOKEN"),
            read_token: env.var("ZDSYNC_READ_TOKEN"),
        };
        for (key, token) in [
            ("ZDSYNC_ADMIN_TOKEN", &auth.admin_token),
            ("ZDSYNC_READ_TOKEN", &auth.read_token),
        ] {
            if let Some(token) = token {
                // The value is a secret: name the variable, never echo it.
                crate::secrets::validate_token(token)
                    .map_err(|reason| invalid(key, "<hidden>", &reason))?;
            }
        }
        Ok(auth)
    }
}

impl TlsConfig {
    fn from_raw(env: &dyn Env, raw: RawTls) -> Result<Option<Self>, ConfigError> {
        let cert_file = path_override(env, "ZDSYNC_TLS_CERT_FILE", raw.cert_file);
        let key_file = path_override(env, "ZDSYNC_TLS_KEY_FILE", raw.key_file);
        match (cert_file, key_file) {
            (None, None) => Ok(None),
            (Some(cert_file), Some(key_file)) => Ok(Some(TlsConfig {
                cert_file,
                key_file,
            })),
            (Some(cert), None) => Err(invalid(
                "tls.key_file",
                "",
                &format!("required when tls.cert_file is set ({})", cert.display()),
            )),
            (None, Some(key)) => Err(invalid(
                "tls.cert_file",
                "",
                &format!("required when tls.key_file is set ({})", key.display()),
            )),
        }
    }
}

impl ZendeskConfig {
    fn from_raw(env: &dyn Env, raw: RawZendesk) -> Result<Self, ConfigError> {
        Ok(ZendeskConfig {
            base_url: setting(
                env,
                "ZDSYNC_ZENDESK_BASE_URL",
                raw.base_url,
                "zendesk.base_url",
                None,
                |key, value| validate_base_url(key, value).map(Some),
            )?,
            requests_per_minute: setting(
                env,
                "ZDSYNC_ZENDESK_REQUESTS_PER_MINUTE",
                raw.requests_per_minute.map(|value| value.to_string()),
                "zendesk.requests_per_minute",
                DEFAULT_REQUESTS_PER_MINUTE,
                parse_rpm,
            )?,
            other_requests_per_minute: setting(
                env,
                "ZDSYNC_ZENDESK_OTHER_REQUESTS_PER_MINUTE",
                raw.other_requests_per_minute.map(|value| value.to_string()),
                "zendesk.other_requests_per_minute",
                DEFAULT_OTHER_REQUESTS_PER_MINUTE,
                parse_rpm,
            )?,
            reserve_for_other_apps: setting(
                env,
                "ZDSYNC_ZENDESK_RESERVE_FOR_OTHER_APPS",
                raw.reserve_for_other_apps.map(|value| value.to_string()),
                "zendesk.reserve_for_other_apps",
                DEFAULT_RESERVE_FOR_OTHER_APPS,
                parse_reserve,
            )?,
            timeout: setting(
                env,
                "ZDSYNC_ZENDESK_TIMEOUT",
                raw.timeout,
                "zendesk.timeout",
                DEFAULT_ZENDESK_TIMEOUT,
                |key, value| {
                    parse_duration(key, value, Duration::from_secs(1), Duration::from_secs(600))
                },
            )?,
        })
    }
}

impl ScheduleConfig {
    fn from_raw(env: &dyn Env, raw: RawSchedule) -> Result<Self, ConfigError> {
        Ok(ScheduleConfig {
            incremental_interval: setting(
                env,
                "ZDSYNC_SCHEDULE_INCREMENTAL_INTERVAL",
                raw.incremental_interval,
                "schedule.incremental_interval",
                DEFAULT_INCREMENTAL_INTERVAL,
                |key, value| {
                    parse_duration(
                        key,
                        value,
                        Duration::from_secs(60),
                        Duration::from_secs(7 * 86_400),
                    )
                },
            )?,
            full_validation_at: setting(
                env,
                "ZDSYNC_SCHEDULE_FULL_VALIDATION_AT",
                raw.full_validation_at,
                "schedule.full_validation_at",
                DEFAULT_FULL_VALIDATION_AT,
                |key, value| {
                    NaiveTime::parse_from_str(value, "%H:%M").map_err(|_| {
                        invalid(key, value, "expected a UTC time of day HH:MM, e.g. 02:00")
                    })
                },
            )?,
            pages_per_commit: setting(
                env,
                "ZDSYNC_SCHEDULE_PAGES_PER_COMMIT",
                raw.pages_per_commit.map(|value| value.to_string()),
                "schedule.pages_per_commit",
                DEFAULT_PAGES_PER_COMMIT,
                parse_pages,
            )?,
        })
    }
}

/// The picked value (see [`pick`]) parsed by `parse` under the name it came by, else `default`.
fn setting<T>(
    env: &dyn Env,
    var: &str,
    file_value: Option<String>,
    key: &str,
    default: T,
    parse: impl FnOnce(&str, &str) -> Result<T, ConfigError>,
) -> Result<T, ConfigError> {
    pick(env, var, file_value, key).map_or(Ok(default), |(key, value)| parse(&key, &value))
}

/// The environment value if set (named by its variable), else the file value (named by its key).
fn pick(
    env: &dyn Env,
    var: &str,
    file_value: Option<String>,
    key: &str,
) -> Option<(String, String)> {
    env.var(var)
        .map(|value| (var.to_owned(), value))
        .or_else(|| file_value.map(|value| (key.to_owned(), value)))
}

fn path_override(env: &dyn Env, var: &str, file_value: Option<PathBuf>) -> Option<PathBuf> {
    env.var(var).map(PathBuf::from).or(file_value)
}

fn invalid(key: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

fn parse_pages(key: &str, text: &str) -> Result<u32, ConfigError> {
    match text.trim().parse::<u32>() {
        Ok(value) if (1..=100).contains(&value) => Ok(value),
        _ => Err(invalid(key, text, "expected a whole number from 1 to 100")),
    }
}

fn parse_rpm(key: &str, text: &str) -> Result<u32, ConfigError> {
    match text.trim().parse::<u32>() {
        Ok(value) if value <= 100_000 => Ok(value),
        _ => Err(invalid(
            key,
            text,
            "expected a whole number from 0 (budget off) to 100000",
        )),
    }
}

fn parse_reserve(key: &str, text: &str) -> Result<u32, ConfigError> {
    match text.trim().parse::<u32>() {
        Ok(value) if value <= MAX_RESERVE_FOR_OTHER_APPS => Ok(value),
        _ => Err(invalid(
            key,
            text,
            &format!("expected a percentage from 0 (use the whole account limit) to {MAX_RESERVE_FOR_OTHER_APPS}"),
        )),
    }
}

fn parse_duration(
    key: &str,
    text: &str,
    min: Duration,
    max: Duration,
) -> Result<Duration, ConfigError> {
    let parsed = humantime::parse_duration(text).map_err(|err| {
        invalid(
            key,
            text,
            &format!("expected a duration such as `30s`, `5m` or `1h` ({err})"),
        )
    })?;
    if parsed < min || parsed > max {
        return Err(invalid(
            key,
            text,
            &format!(
                "must be between {} and {}",
                humantime::format_duration(min),
                humantime::format_duration(max)
            ),
        ));
    }
    Ok(parsed)
}

fn validate_base_url(key: &str, text: &str) -> Result<String, ConfigError> {
    let url = reqwest::Url::parse(text).map_err(|err| {
        invalid(
            key,
            text,
            &format!("expected an absolute http(s) URL ({err})"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(invalid(
            key,
            text,
            "expected an absolute http(s) URL with a host",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(key, text, "must not carry credentials"));
    }
    Ok(text.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_ENV: [(&str, &str); 0] = [];

    fn error_of(text: &str) -> String {
        match Config::from_toml(text, &NO_ENV) {
            Ok(config) => panic!("expected an error, got {config:?}"),
            Err(err) => err.to_string(),
        }
    }

    /// Asserts the Zendesk budget and timeout and the schedule's interval and time of day.
    fn assert_timing(
        config: &Config,
        requests_per_minute: u32,
        timeout_secs: u64,
        interval_secs: u64,
        (hour, minute): (u32, u32),
    ) {
        assert_eq!(config.zendesk.requests_per_minute, requests_per_minute);
        assert_eq!(config.zendesk.timeout, Duration::from_secs(timeout_secs));
        assert_eq!(
            config.schedule.incremental_interval,
            Duration::from_secs(interval_secs)
        );
        assert_eq!(
            config.schedule.full_validation_at,
            NaiveTime::from_hms_opt(hour, minute, 0).expect("time")
        );
    }

    #[test]
    fn empty_config_takes_every_default() {
        let config = Config::from_toml("", &NO_ENV).expect("defaults");
        assert_eq!(config.listen, "127.0.0.1:50051".parse().expect("addr"));
        assert_eq!(config.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(config.log_format, LogFormat::Text);
        assert_timing(&config, 10, 30, 3600, (2, 0));
        assert_eq!(
            config.zendesk.other_requests_per_minute,
            DEFAULT_OTHER_REQUESTS_PER_MINUTE
        );
        assert_eq!(
            config.zendesk.reserve_for_other_apps,
            DEFAULT_RESERVE_FOR_OTHER_APPS
        );
        assert!(config.tls.is_none());
        assert_eq!(config.auth, AuthConfig::default());
    }

    #[test]
    fn every_key_is_read_from_the_file() {
        let config = Config::from_toml(
            r#"
            listen = "0.0.0.0:6000"
            data_dir = "/tmp/zd"
            log_format = "json"
            [auth]
            admin_token_file = "/etc/zdsync/admin"
            read_token_file = "/etc/zdsync/read"
            [tls]
            cert_file = "/etc/zdsync/cert.pem"
            key_file = "/etc/zdsync/key.pem"
            [zendesk]
            base_url = "http://127.0.0.1:9000/"
            requests_per_minute = 0
            other_requests_per_minute = 400
            reserve_for_other_apps = 35
            timeout = "5s"
            [schedule]
            incremental_interval = "15m"
            full_validation_at = "03:30"
            "#,
            &NO_ENV,
        )
        .expect("valid");
        assert_json_at(&config, 6000, "/tmp/zd");
        assert_eq!(
            config.auth.admin_token_file,
            Some(PathBuf::from("/etc/zdsync/admin"))
        );
        assert_eq!(
            config.auth.read_token_file,
            Some(PathBuf::from("/etc/zdsync/read"))
        );
        assert_eq!(
            config.tls.as_ref().expect("tls").key_file,
            PathBuf::from("/etc/zdsync/key.pem")
        );
        assert_eq!(
            config.zendesk.base_url.as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert_timing(&config, 0, 5, 900, (3, 30));
        assert_eq!(config.zendesk.other_requests_per_minute, 400);
        assert_eq!(config.zendesk.reserve_for_other_apps, 35);
    }

    /// The config listens on `port`, keeps its data in `data_dir` and logs JSON.
    fn assert_json_at(config: &Config, port: u16, data_dir: &str) {
        assert_eq!(
            (
                config.listen.port(),
                config.data_dir.as_path(),
                config.log_format
            ),
            (port, std::path::Path::new(data_dir), LogFormat::Json)
        );
    }

    #[test]
    fn environment_overrides_the_file() {
        let env = [
            ("ZDSYNC_LISTEN", "127.0.0.1:7000"),
            ("ZDSYNC_DATA_DIR", "/srv/zd"),
            ("ZDSYNC_LOG_FORMAT", "json"),
            ("ZDSYNC_ADMIN_TOKEN", "admin-token-from-env-0123456789"),
            ("ZDSYNC_ZENDESK_REQUESTS_PER_MINUTE", "50"),
            ("ZDSYNC_ZENDESK_OTHER_REQUESTS_PER_MINUTE", "0"),
            ("ZDSYNC_ZENDESK_RESERVE_FOR_OTHER_APPS", "0"),
            ("ZDSYNC_SCHEDULE_FULL_VALIDATION_AT", "04:15"),
        ];
        let config = Config::from_toml(
            "listen = \"127.0.0.1:1\"\ndata_dir = \"/a\"\n[zendesk]\nother_requests_per_minute = 700\nreserve_for_other_apps = 50",
            &env,
        )
        .expect("valid");
        assert_json_at(&config, 7000, "/srv/zd");
        assert_eq!(
            config.auth.admin_token.as_deref(),
            Some("admin-token-from-env-0123456789")
        );
        assert_eq!(config.zendesk.requests_per_minute, 50);
        assert_eq!(config.zendesk.other_requests_per_minute, 0, "0 = off");
        assert_eq!(config.zendesk.reserve_for_other_apps, 0);
        assert_eq!(
            config.schedule.full_validation_at,
            NaiveTime::from_hms_opt(4, 15, 0).expect("time")
        );
    }

    #[test]
    fn systemd_state_directory_is_the_default_data_dir() {
        let env = [("STATE_DIRECTORY", "/var/lib/private/zdsync")];
        let config = Config::from_toml("", &env).expect("valid");
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/private/zdsync"));
    }

    /// A file holding one setting: `key`, dotted for a table, set to the TOML `value`.
    fn one_key(key: &str, value: &str) -> String {
        match key.split_once('.') {
            Some((table, name)) => format!("[{table}]\n{name} = {value}"),
            None => format!("{key} = {value}"),
        }
    }

    #[test]
    fn each_bad_key_is_named_with_its_value() {
        let named = |key: &str, value: &str, shown: &str| {
            let text = one_key(key, value);
            let message = error_of(&text);
            assert!(message.contains(&format!("`{key}`")), "{text}: {message}");
            assert!(message.contains(shown), "{text}: {message}");
        };
        // Each key with TOML values it refuses, shown without their quotes.
        let cases: [(&str, &[&str]); 9] = [
            ("listen", &["\"nowhere\""]),
            ("log_format", &["\"xml\""]),
            ("zendesk.base_url", &["\"ftp://x\""]),
            ("zendesk.requests_per_minute", &["-1"]),
            ("zendesk.other_requests_per_minute", &["-5", "100001"]),
            ("zendesk.reserve_for_other_apps", &["91", "-1"]),
            ("zendesk.timeout", &["\"soon\"", "\"1ms\""]),
            ("schedule.incremental_interval", &["\"10s\""]),
            ("schedule.full_validation_at", &["\"25:00\""]),
        ];
        for (key, values) in cases {
            for value in values {
                named(key, value, value.trim_matches('"'));
            }
        }
        named("zendesk.base_url", "\"http://user:pw@x\"", "user");
        // Half a TLS pair names the half that is missing.
        assert!(error_of(&one_key("tls.cert_file", "\"/c.pem\"")).contains("`tls.key_file`"));
        assert!(error_of(&one_key("tls.key_file", "\"/k.pem\"")).contains("`tls.cert_file`"));
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_named() {
        assert!(error_of("listn = \"x\"").contains("listn"));
        assert!(error_of("[zendesk]\nbase_ur = \"x\"").contains("base_ur"));
        assert!(error_of("[schedule]\nincremental_interval = 5").contains("incremental_interval"));
    }

    #[test]
    fn bad_environment_values_name_the_variable() {
        let env = [("ZDSYNC_ZENDESK_TIMEOUT", "forever")];
        let message = Config::from_toml("", &env)
            .expect_err("invalid")
            .to_string();
        assert!(
            message.contains("ZDSYNC_ZENDESK_TIMEOUT") && message.contains("forever"),
            "{message}"
        );
        let env = [("ZDSYNC_ZENDESK_OTHER_REQUESTS_PER_MINUTE", "lots")];
        let message = Config::from_toml("", &env)
            .expect_err("invalid")
            .to_string();
        assert!(
            message.contains("ZDSYNC_ZENDESK_OTHER_REQUESTS_PER_MINUTE")
                && message.contains("lots")
                && !message.contains('\n'),
            "{message}"
        );
        let env = [("ZDSYNC_READ_TOKEN", "short")];
        let message = Config::from_toml("", &env)
            .expect_err("invalid")
            .to_string();
        assert!(message.contains("ZDSYNC_READ_TOKEN"), "{message}");
        assert!(
            !message.contains("short"),
            "a token must never be echoed: {message}"
        );
    }
}
