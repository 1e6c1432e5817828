//! Admin subcommands: a tonic client of the running daemon.
use std::io::Write;
use std::path::PathBuf;

use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

pub mod accounts;
pub mod events;
pub mod integration;
pub mod login;
pub mod metrics;
pub mod progress;

/// Why an admin command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The daemon could not be reached.
    #[error("cannot reach zdsync at {addr}: {source}")]
    Connect {
        /// The address tried.
        addr: String,
        /// What the transport reported.
        source: tonic::transport::Error,
    },
    /// No admin token could be found.
    #[error(
        "no admin token: pass --token-file, set ZDSYNC_ADMIN_TOKEN, or run where {0} is readable"
    )]
    NoToken(String),
    /// A local file could not be read or parsed.
    #[error("{path}: {message}")]
    Input {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The daemon answered with an error.
    #[error("{}: {}", .0.code(), .0.message())]
    Rpc(#[from] tonic::Status),
    /// Writing the output failed.
    #[error("output: {0}")]
    Output(#[from] std::io::Error),
    /// The OAuth login could not complete.
    #[error("login: {0}")]
    Login(String),
    /// A run `sync --wait` followed ended other than successfully.
    #[error("{run_id} {outcome}{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    RunEnded {
        /// The run.
        run_id: String,
        /// How it ended.
        outcome: &'static str,
        /// Why, when it failed.
        message: String,
    },
}

/// How to reach the daemon; shared by every admin subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// gRPC address of the daemon (`http://` or `https://` may be given).
    #[arg(
        long,
        env = "ZDSYNC_ADDR",
        default_value = "127.0.0.1:50051",
        global = true
    )]
    pub addr: String,
    /// File holding the admin token (default: ZDSYNC_ADMIN_TOKEN, else /var/lib/zdsync/admin.token).
    #[arg(long, value_name = "PATH", global = true)]
    pub token_file: Option<PathBuf>,
    /// PEM CA certificate to trust when the daemon serves TLS (implies https).
    #[arg(long, value_name = "PATH", global = true)]
    pub ca_cert: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Standard output, in the form the command line chose: `--json` or the human layout.
pub(crate) struct Output {
    out: std::io::StdoutLock<'static>,
    /// `--json` was given.
    pub(crate) json: bool,
}

impl Output {
    /// Standard output, locked for the command's life.
    pub(crate) fn new(args: &ConnectArgs) -> Self {
        Self {
            out: std::io::stdout().lock(),
            json: args.json,
        }
    }

    /// Writes `value` as one line under `--json`, else what `human` writes: the two forms every command offers.
    pub(crate) fn print<E: Into<CliError>>(
        &mut self,
        value: &serde_json::Value,
        human: impl FnOnce(&mut Self) -> Result<(), E>,
    ) -> Result<(), CliError> {
        if self.json {
            writeln!(self, "{value}")?;
            Ok(())
        } else {
            human(self).map_err(Into::into)
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// One `label:  value` line of a human layout whose values start at column `width`.
pub(crate) fn labelled(
    out: &mut impl Write,
    width: usize,
    label: &str,
    value: impl std::fmt::Display,
) -> std::io::Result<()> {
    writeln!(out, "{:<width$}{value}", format!("{label}:"))
}

/// An authenticated connection to the daemon.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The gRPC channel.
    pub channel: Channel,
    /// The `authorization` metadata value.
    pub authorization: MetadataValue<tonic::metadata::Ascii>,
}

impl Connection {
    /// Connects using `args`.
    pub async fn open(args: &ConnectArgs) -> Result<Self, CliError> {
        let token = match (
            &args.token_file,
            std::env::var("ZDSYNC_ADMIN_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
        ) {
            (Some(path), _) => {
                crate::secrets::read_token_file(path).map_err(|err| CliError::Input {
                    path: path.clone(),
                    message: err.to_string(),
                })?
            }
            (None, Some(token)) => token,
            (None, None) => {
                let default = crate::secrets::generated_admin_token_path(std::path::Path::new(
                    crate::config::DEFAULT_DATA_DIR,
                ));
                crate::secrets::read_token_file(&default)
                    .map_err(|_| CliError::NoToken(default.display().to_string()))?
            }
        };
        let authorization = format!("Bearer {token}")
            .parse()
            .map_err(|_| CliError::NoToken("a token of printable ASCII".into()))?;
        let scheme_given = args.addr.starts_with("http://") || args.addr.starts_with("https://");
        let url = match (scheme_given, args.ca_cert.is_some()) {
            (true, _) => args.addr.clone(),
            (false, true) => format!("https://{}", args.addr),
            (false, false) => format!("http://{}", args.addr),
        };
        let connect_error = |source| CliError::Connect {
            addr: url.clone(),
            source,
        };
        let mut endpoint = Endpoint::from_shared(url.clone()).map_err(connect_error)?;
        if let Some(ca) = &args.ca_cert {
            let pem = std::fs::read(ca).map_err(|err| CliError::Input {
                path: ca.clone(),
                message: err.to_string(),
            })?;
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)))
                .map_err(connect_error)?;
        }
        let channel = endpoint.connect().await.map_err(connect_error)?;
        Ok(Self {
            channel,
            authorization,
        })
    }

    /// Connects using `args`, with a client of one service (`new` is the client type's `new`) on the channel.
    pub async fn client<C>(
        args: &ConnectArgs,
        new: impl FnOnce(Channel) -> C,
    ) -> Result<(Self, C), CliError> {
        let connection = Self::open(args).await?;
        let client = new(connection.channel.clone());
        Ok((connection, client))
    }

    /// Wraps a request message with the admin token.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", self.authorization.clone());
        request
    }
}
