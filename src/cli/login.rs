//! `zdsync login`: the OAuth authorization-code flow from a terminal.
//!
//! `BeginOAuth` with a loopback `redirect_uri` (`http://127.0.0.1:PORT/callback`, an ephemeral port unless
//! `--redirect-port` fixes one), the authorize URL printed for the admin to open, the browser's redirect
//! received on that port, and `CompleteOAuth`. With `--paste`, no listener: the admin pastes the redirected
//! URL (or just its `code`) on stdin.
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::proto::v1 as pb;
use crate::proto::v1::integration_service_client::IntegrationServiceClient;

use super::integration::SetupArgs;
use super::{CliError, ConnectArgs, Connection, Output};

/// Flags of `zdsync login`.
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// Zendesk subdomain (the instance is https://SUBDOMAIN.zendesk.com).
    #[arg(long)]
    subdomain: String,
    /// The OAuth client's unique identifier in Zendesk.
    #[arg(long)]
    client_id: String,
    /// File holding the OAuth client secret (`-` for stdin).
    #[arg(long, value_name = "PATH")]
    client_secret_file: PathBuf,
    /// Read the redirected URL (or the code) from stdin instead of receiving the redirect on a loopback port.
    #[arg(long)]
    paste: bool,
    /// Loopback port of the redirect (register http://127.0.0.1:PORT/callback on the OAuth client); default: a free port.
    #[arg(long, value_name = "PORT", conflicts_with = "redirect_uri")]
    redirect_port: Option<u16>,
    /// With --paste: the redirect URI registered on the OAuth client.
    #[arg(long, value_name = "URI", requires = "paste")]
    redirect_uri: Option<String>,
    /// How long to wait for the browser's redirect.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    timeout: Duration,
    #[command(flatten, next_help_heading = "When this login creates the integration")]
    setup: SetupArgs,
}

/// The loopback path the browser is redirected to.
pub const CALLBACK_PATH: &str = "/callback";

/// What the redirect carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// The authorization code.
    pub code: String,
    /// The `state` echoed by Zendesk.
    pub state: Option<String>,
}

/// Reads `code` and `state` (or Zendesk's `error`) from a redirect's query string.
pub fn parse_redirect_query(query: &str) -> Result<Redirect, String> {
    let mut code = None;
    let mut state = None;
    let mut error = None;
    let mut description = None;
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "code" => code = Some(value.into_owned()),
            "state" => state = Some(value.into_owned()),
            "error" => error = Some(value.into_owned()),
            "error_description" => description = Some(value.into_owned()),
            _ => {}
        }
    }
    if let Some(error) = error {
        return Err(match description {
            Some(description) => {
                format!("Zendesk refused the authorization: {error}: {description}")
            }
            None => format!("Zendesk refused the authorization: {error}"),
        });
    }
    code.filter(|c| !c.is_empty())
        .map(|code| Redirect { code, state })
        .ok_or_else(|| "the redirect carries no code".into())
}

/// Reads what the admin pasted: the redirected URL, its query string, or the bare code.
pub fn parse_pasted(text: &str) -> Result<Redirect, String> {
    let text = text.trim();
    if let Some((_, query)) = text.split_once('?') {
        return parse_redirect_query(query.split('#').next().unwrap_or_default());
    }
    if text.contains("code=") {
        return parse_redirect_query(text);
    }
    if text.is_empty() || text.contains(char::is_whitespace) {
        return Err("paste the URL the browser was sent to, or its code".into());
    }
    Ok(Redirect {
        code: text.to_owned(),
        state: None,
    })
}

const DONE_PAGE: &str = "<!doctype html><title>zdsync</title><p>zdsync received the authorization. You can close this tab and return to the terminal.</p>";

/// Serves the loopback redirect until one arrives; returns it.
async fn receive_redirect(
    listener: tokio::net::TcpListener,
    timeout: Duration,
) -> Result<Redirect, CliError> {
    let (tx, mut rx) = mpsc::channel::<Result<Redirect, String>>(1);
    let router = axum::Router::new().route(
        CALLBACK_PATH,
        axum::routing::get(move |uri: axum::http::Uri| {
            let tx = tx.clone();
            async move {
                let result = parse_redirect_query(uri.query().unwrap_or_default());
                let page = match &result {
                    Ok(_) => DONE_PAGE.to_owned(),
                    Err(message) => format!("<!doctype html><title>zdsync</title><p>{message}</p>"),
                };
                let _ = tx.send(result).await;
                axum::response::Html(page)
            }
        }),
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.await;
            })
            .await
    });
    let received = tokio::time::timeout(timeout, rx.recv()).await;
    let _ = stop_tx.send(());
    // The page is answered before the server stops; a failure to stop cleanly changes nothing here.
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    match received {
        Ok(Some(Ok(redirect))) => Ok(redirect),
        Ok(Some(Err(message))) => Err(CliError::Login(message)),
        Ok(None) => Err(CliError::Login("the redirect listener stopped".into())),
        Err(_) => Err(CliError::Login(format!(
            "no redirect within {}: run zdsync login again (or use --paste)",
            humantime::format_duration(timeout)
        ))),
    }
}

/// Runs `zdsync login`.
pub async fn run(args: LoginArgs, connect: &ConnectArgs) -> Result<(), CliError> {
    let client_secret = super::integration::read_secret(&args.client_secret_file)?;
    let (connection, mut client) =
        Connection::client(connect, IntegrationServiceClient::new).await?;

    let (listener, redirect_uri) = if args.paste {
        let uri = args
            .redirect_uri
            .clone()
            .unwrap_or_else(|| format!("http://127.0.0.1{CALLBACK_PATH}"));
        (None, uri)
    } else {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.redirect_port.unwrap_or(0)));
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|err| {
            CliError::Login(format!("cannot listen on {addr} for the redirect: {err}"))
        })?;
        let bound = listener.local_addr()?;
        (Some(listener), format!("http://{bound}{CALLBACK_PATH}"))
    };

    let begun = client
        .begin_o_auth(connection.request(pb::BeginOAuthRequest {
            client_id: args.client_id.clone(),
            client_secret,
            redirect_uri: redirect_uri.clone(),
            subdomain: args.subdomain.clone(),
            match_key: Some(args.setup.match_key()),
            timeframe_days: args.setup.timeframe_days,
            include_satisfaction: args.setup.satisfaction,
        }))
        .await?
        .into_inner();

    // The instructions go to stderr, so stdout holds only the result (text or --json).
    let mut err = std::io::stderr().lock();
    writeln!(
        err,
        "Open this URL in a browser and approve zdsync's read access:"
    )?;
    writeln!(err)?;
    writeln!(err, "  {}", begun.authorize_url)?;
    writeln!(err)?;
    if args.paste {
        writeln!(
            err,
            "Then paste the URL the browser was sent to ({redirect_uri}?code=...), or its code, and press Enter:"
        )?;
    } else {
        writeln!(err, "Waiting for the redirect to {redirect_uri} ...")?;
    }
    drop(err);

    let redirect = match listener {
        Some(listener) => receive_redirect(listener, args.timeout).await?,
        None => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            parse_pasted(&line).map_err(CliError::Login)?
        }
    };
    if let Some(state) = &redirect.state {
        if *state != begun.state {
            return Err(CliError::Login(
                "the redirect's state does not match this login (a stale or forged redirect)"
                    .into(),
            ));
        }
    }
    let completed = client
        .complete_o_auth(connection.request(pb::CompleteOAuthRequest {
            code: redirect.code,
            state: begun.state,
        }))
        .await?
        .into_inner();
    let integration = completed.integration.unwrap_or_default();
    let value = serde_json::json!({
        "subdomain": integration.subdomain,
        "authenticated_as": integration.authenticated_as,
        "configured": completed.configured,
        "run_id": completed.run_id,
    });
    Output::new(connect).print(&value, |out| {
        let who = format!(
            "logged in to {} as {}",
            integration.subdomain, integration.authenticated_as
        );
        if completed.configured {
            writeln!(
                out,
                "{who}; configured the integration, first full sync started as {}",
                completed.run_id
            )
        } else {
            writeln!(out, "{who}; the integration's login changed")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_and_pastes_yield_the_code() {
        assert_eq!(
            parse_redirect_query("code=abc%2B1&state=s1"),
            Ok(Redirect {
                code: "abc+1".into(),
                state: Some("s1".into())
            })
        );
        assert!(
            parse_redirect_query("error=access_denied&error_description=no")
                .expect_err("refused")
                .contains("access_denied: no")
        );
        assert_eq!(
            parse_pasted("http://127.0.0.1/callback?code=xyz&state=s2\n")
                .expect("url")
                .code,
            "xyz"
        );
        assert_eq!(parse_pasted(" xyz \n").expect("code").state, None);
        assert!(parse_pasted("").is_err());
    }
}
