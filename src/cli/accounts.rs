//! `zdsync accounts`: import, list, show and delete accounts of the directory.
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::proto::v1 as pb;
use crate::proto::v1::account_directory_service_client::AccountDirectoryServiceClient;

use super::{CliError, ConnectArgs, Connection, Output};

/// Accounts sent per streamed message during an import.
const IMPORT_MESSAGE_SIZE: usize = 500;

/// `zdsync accounts ...`
#[derive(Debug, clap::Args)]
pub struct AccountsArgs {
    #[command(subcommand)]
    command: AccountsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AccountsCommand {
    /// Import accounts from a CSV or JSON file (by extension); existing ids are replaced.
    ///
    /// CSV columns: id, name, owner, users (`Name <email>` or `email`, separated by `;`), and one column per
    /// attribute: `attr:NAME` (text), `num:NAME` (number) or `date:NAME` (YYYY-MM-DD or RFC 3339); empty cells
    /// are left out. JSON: an array of {"id", "name", "owner", "attributes": {NAME: "text" | 12.5 |
    /// {"date": "2026-01-31"}}, "users": [{"email", "name"}]}.
    Import {
        /// The file to import (`.csv` or `.json`).
        file: PathBuf,
    },
    /// List accounts in id order.
    List {
        /// Accounts per request.
        #[arg(long, default_value_t = 500)]
        page_size: u32,
    },
    /// Show one account.
    Get {
        /// The account id.
        id: String,
    },
    /// Delete accounts by id.
    Delete {
        /// The account ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

/// An account as written in a JSON import file or printed by `--json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountFile {
    /// Account id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Owner email.
    #[serde(default)]
    pub owner: String,
    /// Attributes by name.
    #[serde(default)]
    pub attributes: HashMap<String, AttributeFile>,
    /// Users of the account.
    #[serde(default)]
    pub users: Vec<UserFile>,
}

impl From<UserFile> for pb::User {
    fn from(user: UserFile) -> Self {
        pb::User {
            email: user.email,
            name: user.name,
        }
    }
}

impl From<pb::User> for UserFile {
    fn from(user: pb::User) -> Self {
        UserFile {
            email: user.email,
            name: user.name,
        }
    }
}

/// An attribute value in a JSON file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttributeFile {
    /// A text value.
    Text(String),
    /// A number.
    Number(f64),
    /// A date, as `{"date": "..."}`.
    Date {
        /// YYYY-MM-DD or RFC 3339.
        date: String,
    },
}

/// A user in a JSON file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserFile {
    /// Email address.
    pub email: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
}

fn parse_date(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Ok(instant.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|naive| naive.and_utc())
        .ok_or_else(|| format!("{text:?} is not a date (YYYY-MM-DD or RFC 3339)"))
}

impl AccountFile {
    /// The protobuf account; `where_` names the record in errors.
    pub fn into_proto(self, where_: &str) -> Result<pb::Account, String> {
        let mut attributes = HashMap::new();
        for (name, value) in self.attributes {
            let value = match value {
                AttributeFile::Text(text) => pb::attribute_value::Value::Text(text),
                AttributeFile::Number(number) => pb::attribute_value::Value::Number(number),
                AttributeFile::Date { date } => {
                    pb::attribute_value::Value::Date(crate::grpc::convert::timestamp_to_proto(
                        parse_date(&date)
                            .map_err(|err| format!("{where_}: attribute {name}: {err}"))?,
                    ))
                }
            };
            attributes.insert(name, pb::AttributeValue { value: Some(value) });
        }
        Ok(pb::Account {
            id: self.id,
            name: self.name,
            owner: self.owner,
            attributes,
            users: self.users.into_iter().map(pb::User::from).collect(),
        })
    }

    /// The file form of a protobuf account.
    pub fn from_proto(account: pb::Account) -> Self {
        let attributes = account
            .attributes
            .into_iter()
            .filter_map(|(name, value)| {
                let value = match value.value? {
                    pb::attribute_value::Value::Text(text) => AttributeFile::Text(text),
                    pb::attribute_value::Value::Number(number) => AttributeFile::Number(number),
                    pb::attribute_value::Value::Date(date) => AttributeFile::Date {
                        date: crate::grpc::convert::timestamp_from_proto(&date)?.to_rfc3339(),
                    },
                };
                Some((name, value))
            })
            .collect();
        Self {
            id: account.id,
            name: account.name,
            owner: account.owner,
            attributes,
            users: account.users.into_iter().map(UserFile::from).collect(),
        }
    }
}

fn parse_user(cell: &str) -> UserFile {
    let cell = cell.trim();
    match (cell.rfind('<'), cell.ends_with('>')) {
        (Some(open), true) => UserFile {
            name: cell[..open].trim().to_owned(),
            email: cell[open + 1..cell.len() - 1].trim().to_owned(),
        },
        _ => UserFile {
            email: cell.to_owned(),
            name: String::new(),
        },
    }
}

/// Reads accounts from a CSV file in the documented layout.
pub fn read_csv(path: &Path) -> Result<Vec<pb::Account>, CliError> {
    let input_error = |message: String| CliError::Input {
        path: path.to_owned(),
        message,
    };
    let mut reader = csv::Reader::from_path(path).map_err(|err| input_error(err.to_string()))?;
    let headers = reader
        .headers()
        .map_err(|err| input_error(err.to_string()))?
        .clone();
    if !headers.iter().any(|h| h == "id") {
        return Err(input_error("the header row has no `id` column".into()));
    }
    let mut accounts = Vec::new();
    for (row, record) in reader.records().enumerate() {
        let line = row + 2;
        let record = record.map_err(|err| input_error(err.to_string()))?;
        let mut account = AccountFile::default();
        for (header, cell) in headers.iter().zip(record.iter()) {
            match header {
                "id" => account.id = cell.to_owned(),
                "name" => account.name = cell.to_owned(),
                "owner" => account.owner = cell.to_owned(),
                "users" => {
                    account.users = cell
                        .split(';')
                        .filter(|u| !u.trim().is_empty())
                        .map(parse_user)
                        .collect();
                }
                _ if cell.is_empty() => {}
                other => {
                    let (kind, name) = other.split_once(':').ok_or_else(|| {
                        input_error(format!(
                            "unknown column {other:?}: use attr:, num: or date: prefixes"
                        ))
                    })?;
                    let value = match kind {
                        "attr" => AttributeFile::Text(cell.to_owned()),
                        "num" => AttributeFile::Number(cell.trim().parse().map_err(|_| {
                            input_error(format!(
                                "line {line}, column {other}: {cell:?} is not a number"
                            ))
                        })?),
                        "date" => AttributeFile::Date {
                            date: cell.to_owned(),
                        },
                        _ => {
                            return Err(input_error(format!(
                                "unknown column {other:?}: use attr:, num: or date: prefixes"
                            )))
                        }
                    };
                    account.attributes.insert(name.to_owned(), value);
                }
            }
        }
        accounts.push(
            account
                .into_proto(&format!("line {line}"))
                .map_err(input_error)?,
        );
    }
    Ok(accounts)
}

/// Reads accounts from a JSON array file.
pub fn read_json(path: &Path) -> Result<Vec<pb::Account>, CliError> {
    let input_error = |message: String| CliError::Input {
        path: path.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|err| input_error(err.to_string()))?;
    let files: Vec<AccountFile> =
        serde_json::from_str(&text).map_err(|err| input_error(err.to_string()))?;
    files
        .into_iter()
        .enumerate()
        .map(|(index, file)| file.into_proto(&format!("[{index}]")).map_err(&input_error))
        .collect()
}

/// Runs an `accounts` subcommand.
pub async fn run(args: AccountsArgs, connect: &ConnectArgs) -> Result<(), CliError> {
    let (connection, mut client) =
        Connection::client(connect, AccountDirectoryServiceClient::new).await?;
    let mut out = Output::new(connect);
    match args.command {
        AccountsCommand::Import { file } => {
            let accounts = match file.extension().and_then(|e| e.to_str()) {
                Some("csv") => read_csv(&file)?,
                Some("json") => read_json(&file)?,
                _ => {
                    return Err(CliError::Input {
                        path: file,
                        message: "expected a .csv or .json file".into(),
                    })
                }
            };
            let messages: Vec<pb::ImportAccountsRequest> = accounts
                .chunks(IMPORT_MESSAGE_SIZE)
                .map(|chunk| pb::ImportAccountsRequest {
                    accounts: chunk.to_vec(),
                })
                .collect();
            let response = client
                .import_accounts(connection.request(tokio_stream::iter(messages)))
                .await?
                .into_inner();
            let value = serde_json::json!({"created": response.created, "updated": response.updated, "chunks": response.chunks});
            out.print(&value, |out| {
                writeln!(
                    out,
                    "imported {} account(s): {} created, {} updated",
                    response.created + response.updated,
                    response.created,
                    response.updated
                )
            })?;
        }
        AccountsCommand::List { page_size } => {
            let mut page_token = String::new();
            loop {
                let page = client
                    .list_accounts(connection.request(pb::ListAccountsRequest {
                        page_size,
                        page_token,
                    }))
                    .await?
                    .into_inner();
                for account in page.accounts {
                    print_account(&mut out, account)?;
                }
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
        }
        AccountsCommand::Get { id } => {
            let account = client
                .get_account(connection.request(pb::GetAccountRequest { id }))
                .await?
                .into_inner();
            print_account(&mut out, account)?;
        }
        AccountsCommand::Delete { ids } => {
            let response = client
                .delete_accounts(connection.request(pb::DeleteAccountsRequest { ids }))
                .await?
                .into_inner();
            let value =
                serde_json::json!({"deleted": response.deleted, "not_found": response.not_found});
            out.print(&value, |out| {
                writeln!(out, "deleted {} account(s)", response.deleted)?;
                response
                    .not_found
                    .iter()
                    .try_for_each(|id| writeln!(out, "not found: {id}"))
            })?;
        }
    }
    Ok(())
}

fn print_account(out: &mut Output, account: pb::Account) -> Result<(), CliError> {
    let file = AccountFile::from_proto(account);
    if out.json {
        writeln!(
            out,
            "{}",
            serde_json::to_string(&file).map_err(std::io::Error::other)?
        )?;
    } else {
        let users = file.users.len();
        writeln!(
            out,
            "{}\t{}\towner={}\tattributes={}\tusers={users}",
            file.id,
            file.name,
            if file.owner.is_empty() {
                "-"
            } else {
                &file.owner
            },
            file.attributes.len()
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file `name` holding `text` in a fresh directory, which lives as long as the returned guard.
    fn file(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        (dir, path)
    }

    #[test]
    fn csv_rows_become_accounts() {
        let (_dir, path) = file(
            "a.csv",
            "id,name,owner,users,attr:zendesk_org,num:seats,date:renewal\n\
             acct-1,Acme,am@example.com,Jane Doe <jane@acme.test>;bob@acme.test,Acme Inc,12,2027-01-31\n\
             acct-2,Beta,,,,,\n",
        );
        let accounts = read_csv(&path).expect("parse");
        assert_eq!(accounts.len(), 2);
        assert_eq!(accounts[0].users.len(), 2);
        assert_eq!(accounts[0].users[0].name, "Jane Doe");
        assert_eq!(accounts[0].users[0].email, "jane@acme.test");
        assert_eq!(accounts[0].attributes.len(), 3);
        assert!(accounts[1].attributes.is_empty());
        std::fs::write(&path, "id,num:seats\nx,many\n").expect("write");
        assert!(read_csv(&path)
            .expect_err("bad number")
            .to_string()
            .contains("line 2"));
    }

    #[test]
    fn json_files_become_accounts() {
        let (_dir, path) = file(
            "a.json",
            r#"[{"id":"a","name":"A","attributes":{"t":"x","n":2,"d":{"date":"2026-05-01"}},"users":[{"email":"u@a.test"}]}]"#,
        );
        let accounts = read_json(&path).expect("parse");
        assert_eq!(accounts[0].attributes.len(), 3);
        std::fs::write(&path, r#"[{"id":"a","nmae":"typo"}]"#).expect("write");
        assert!(read_json(&path).is_err());
    }
}
