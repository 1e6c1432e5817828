//! `zdsync.v1.AccountDirectoryService`: the team's accounts, validated and stored atomically.
use std::collections::HashSet;

use tokio::sync::watch;
use tonic::{Request, Response, Status, Streaming};

use crate::domain::account::{self, FieldError};
use crate::proto::v1 as pb;
use crate::proto::v1::account_directory_service_server::AccountDirectoryService;
use crate::store::Store;

use super::convert::{account_to_proto, accounts_from_proto};
use super::status::{from_store, invalid_field};

/// Most accounts one `UpsertAccounts` or `DeleteAccounts` call may carry.
pub const MAX_BATCH: usize = 1000;
/// Accounts committed per transaction by `ImportAccounts`.
pub const IMPORT_CHUNK: usize = 1000;
/// Default and largest `ListAccounts` page.
pub const DEFAULT_PAGE_SIZE: usize = 100;
pub use super::paging::MAX_PAGE_SIZE;

const PAGE_TOKEN_PREFIX: &str = "acct:";

/// The account directory service.
#[derive(Debug, Clone)]
pub struct AccountDirectory {
    store: Store,
    shutdown: watch::Receiver<bool>,
}

impl AccountDirectory {
    /// A service over `store` that ends long imports when `shutdown` turns true.
    pub fn new(store: Store, shutdown: watch::Receiver<bool>) -> Self {
        Self { store, shutdown }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(Store) -> Result<T, Status> + Send + 'static,
    ) -> Result<T, Status> {
        super::status::on_store(&self.store, work).await
    }
}

fn encode_page_token(last_id: &str) -> String {
    super::paging::encode_token(PAGE_TOKEN_PREFIX, last_id)
}

fn decode_page_token(token: &str) -> Result<String, Status> {
    super::paging::decode_token(token, PAGE_TOKEN_PREFIX, || {
        Status::invalid_argument("page_token: not a token returned by ListAccounts")
    })
}

fn validate_ids(ids: &[String]) -> Result<(), Status> {
    super::status::check_batch("ids", ids.len(), MAX_BATCH, "")?;
    for (index, id) in ids.iter().enumerate() {
        account::validate_id(id)
            .map_err(|reason| invalid_field(&FieldError::new(format!("ids[{index}]"), reason)))?;
    }
    Ok(())
}

/// The state of one streamed import.
struct Import {
    seen: HashSet<String>,
    pending: Vec<account::Account>,
    received: usize,
    outcome: pb::ImportAccountsResponse,
}

impl Import {
    fn take_message(&mut self, message: pb::ImportAccountsRequest) -> Result<(), Status> {
        let base = self.received;
        self.received += message.accounts.len();
        let accounts =
            accounts_from_proto(message.accounts, base).map_err(|err| invalid_field(&err))?;
        for (offset, account) in accounts.into_iter().enumerate() {
            let prefix = format!("accounts[{}]", base + offset);
            account::validate_account(&account)
                .map_err(|err| invalid_field(&err.within(&prefix)))?;
            if !self.seen.insert(account.id.clone()) {
                return Err(invalid_field(&FieldError::new(
                    format!("{prefix}.id"),
                    format!("{:?} appears more than once in this import", account.id),
                )));
            }
            self.pending.push(account);
        }
        Ok(())
    }

    fn committed_note(&self) -> String {
        format!(
            "{} chunk(s) with {} account(s) were committed before this",
            self.outcome.chunks,
            self.outcome.created + self.outcome.updated
        )
    }
}

#[tonic::async_trait]
impl AccountDirectoryService for AccountDirectory {
    async fn upsert_accounts(
        &self,
        request: Request<pb::UpsertAccountsRequest>,
    ) -> Result<Response<pb::UpsertAccountsResponse>, Status> {
        let messages = request.into_inner().accounts;
        super::status::check_batch(
            "accounts",
            messages.len(),
            MAX_BATCH,
            "; use ImportAccounts for bulk",
        )?;
        let accounts = accounts_from_proto(messages, 0).map_err(|err| invalid_field(&err))?;
        account::validate_batch(&accounts).map_err(|err| invalid_field(&err))?;
        let outcome = self
            .blocking(move |store| store.upsert_accounts(&accounts, 0).map_err(from_store))
            .await?;
        tracing::info!(
            created = outcome.created,
            updated = outcome.updated,
            "accounts upserted"
        );
        Ok(Response::new(pb::UpsertAccountsResponse {
            created: u32::try_from(outcome.created).unwrap_or(u32::MAX),
            updated: u32::try_from(outcome.updated).unwrap_or(u32::MAX),
        }))
    }

    async fn import_accounts(
        &self,
        request: Request<Streaming<pb::ImportAccountsRequest>>,
    ) -> Result<Response<pb::ImportAccountsResponse>, Status> {
        let mut stream = request.into_inner();
        let mut shutdown = self.shutdown.clone();
        let mut import = Import {
            seen: HashSet::new(),
            pending: Vec::with_capacity(IMPORT_CHUNK),
            received: 0,
            outcome: pb::ImportAccountsResponse::default(),
        };
        loop {
            let next = tokio::select! {
                next = stream.message() => next,
                _ = shutdown.wait_for(|stopping| *stopping) => {
                    return Err(Status::unavailable(format!(
                        "zdsync is shutting down; the import stopped: {}; the {} account(s) received since were not stored",
                        import.committed_note(),
                        import.pending.len()
                    )));
                }
            };
            let finished = match next {
                Ok(Some(message)) => {
                    import.take_message(message).map_err(|status| {
                        Status::new(
                            status.code(),
                            format!("{} ({})", status.message(), import.committed_note()),
                        )
                    })?;
                    false
                }
                Ok(None) => true,
                Err(status) => return Err(status),
            };
            while import.pending.len() >= IMPORT_CHUNK || (finished && !import.pending.is_empty()) {
                let take = import.pending.len().min(IMPORT_CHUNK);
                let chunk: Vec<account::Account> = import.pending.drain(..take).collect();
                let base = import.received - import.pending.len() - chunk.len();
                let outcome = self
                    .blocking(move |store| store.upsert_accounts(&chunk, base).map_err(from_store))
                    .await
                    .map_err(|status| {
                        Status::new(
                            status.code(),
                            format!("{} ({})", status.message(), import.committed_note()),
                        )
                    })?;
                import.outcome.created += outcome.created;
                import.outcome.updated += outcome.updated;
                import.outcome.chunks += 1;
            }
            if finished {
                break;
            }
        }
        tracing::info!(
            created = import.outcome.created,
            updated = import.outcome.updated,
            chunks = import.outcome.chunks,
            "accounts imported"
        );
        Ok(Response::new(import.outcome))
    }

    async fn delete_accounts(
        &self,
        request: Request<pb::DeleteAccountsRequest>,
    ) -> Result<Response<pb::DeleteAccountsResponse>, Status> {
        let ids = request.into_inner().ids;
        validate_ids(&ids)?;
        let outcome = self
            .blocking(move |store| store.delete_accounts(&ids).map_err(from_store))
            .await?;
        tracing::info!(deleted = outcome.deleted, "accounts deleted");
        Ok(Response::new(pb::DeleteAccountsResponse {
            deleted: u32::try_from(outcome.deleted).unwrap_or(u32::MAX),
            not_found: outcome.not_found,
        }))
    }

    async fn get_account(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::Account>, Status> {
        let id = request.into_inner().id;
        account::validate_id(&id)
            .map_err(|reason| invalid_field(&FieldError::new("id", reason)))?;
        let lookup = id.clone();
        let found = self
            .blocking(move |store| store.get_account(&lookup).map_err(from_store))
            .await?;
        found
            .map(|account| Response::new(account_to_proto(account)))
            .ok_or_else(|| Status::not_found(format!("id: no account {id:?}")))
    }

    async fn list_accounts(
        &self,
        request: Request<pb::ListAccountsRequest>,
    ) -> Result<Response<pb::ListAccountsResponse>, Status> {
        let request = request.into_inner();
        let page_size = super::paging::page_size(request.page_size, DEFAULT_PAGE_SIZE)?;
        let after = if request.page_token.is_empty() {
            None
        } else {
            Some(decode_page_token(&request.page_token)?)
        };
        let page = self
            .blocking(move |store| {
                store
                    .list_accounts(after.as_deref(), page_size)
                    .map_err(from_store)
            })
            .await?;
        Ok(Response::new(pb::ListAccountsResponse {
            accounts: page.accounts.into_iter().map(account_to_proto).collect(),
            next_page_token: page
                .last_id_if_more
                .as_deref()
                .map(encode_page_token)
                .unwrap_or_default(),
            total: page.total,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        let token = encode_page_token("acct/42 é");
        assert_eq!(decode_page_token(&token).expect("valid"), "acct/42 é");
        assert_eq!(
            decode_page_token("!!").expect_err("garbage").code(),
            tonic::Code::InvalidArgument
        );
        let foreign = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("other:1");
        assert!(decode_page_token(&foreign).is_err());
    }
}
