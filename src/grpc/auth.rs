//! Bearer-token authentication for the two roles: admin (everything) and read (`MetricsService` only).
use std::sync::Arc;

use tonic::{Request, Status};

use crate::secrets::TokenDigest;

/// Who a caller is once their token is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// May call every RPC.
    Admin,
    /// May call `MetricsService` only.
    Read,
}

/// The tokens the daemon accepts, held as digests.
#[derive(Debug, Clone)]
pub struct Tokens {
    admin: TokenDigest,
    read: Option<TokenDigest>,
}

impl Tokens {
    /// Tokens from their plain values.
    pub fn new(admin: &str, read: Option<&str>) -> Self {
        Self {
            admin: TokenDigest::of(admin),
            read: read.map(TokenDigest::of),
        }
    }

    /// The role of a presented token; every comparison runs so timing does not tell which failed.
    pub fn role_of(&self, token: &str) -> Option<Role> {
        let presented = TokenDigest::of(token);
        let is_admin = self.admin.is(&presented);
        let is_read = self.read.as_ref().is_some_and(|read| read.is(&presented));
        if is_admin {
            Some(Role::Admin)
        } else if is_read {
            Some(Role::Read)
        } else {
            None
        }
    }
}

/// An interceptor that lets through callers whose role is at least `required`.
#[derive(Debug, Clone)]
pub struct RequireRole {
    tokens: Arc<Tokens>,
    required: Role,
}

impl RequireRole {
    /// Requires the admin token.
    pub fn admin(tokens: Arc<Tokens>) -> Self {
        Self {
            tokens,
            required: Role::Admin,
        }
    }

    /// Requires the read or the admin token.
    pub fn read(tokens: Arc<Tokens>) -> Self {
        Self {
            tokens,
            required: Role::Read,
        }
    }

    /// Checks the `authorization` metadata of a request.
    pub fn check<T>(&self, request: &Request<T>) -> Result<Role, Status> {
        let header = request.metadata().get("authorization").ok_or_else(|| {
            Status::unauthenticated("missing `authorization: Bearer <token>` metadata")
        })?;
        let value = header.to_str().map_err(|_| {
            Status::unauthenticated("`authorization` metadata is not printable ASCII")
        })?;
        // The auth scheme is case-insensitive (RFC 9110 section 11.1): `Bearer`, `bearer`, `BEARER`.
        let token = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token)
            .ok_or_else(|| {
                Status::unauthenticated("`authorization` metadata must be `Bearer <token>`")
            })?;
        let role = self
            .tokens
            .role_of(token.trim())
            .ok_or_else(|| Status::unauthenticated("the bearer token is not valid"))?;
        match (self.required, role) {
            (Role::Admin, Role::Read) => Err(Status::permission_denied(
                "the read token may call only zdsync.v1.MetricsService; this RPC needs the admin token",
            )),
            _ => Ok(role),
        }
    }
}

impl tonic::service::Interceptor for RequireRole {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let role = self.check(&request)?;
        let mut request = request;
        request.extensions_mut().insert(role);
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_with(value: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        if let Some(value) = value {
            request
                .metadata_mut()
                .insert("authorization", value.parse().expect("ascii"));
        }
        request
    }

    #[test]
    fn admin_rpcs_tell_unauthenticated_from_permission_denied() {
        let tokens = Arc::new(Tokens::new(
            "admin-token-0123456789",
            Some("read-token-0123456789"),
        ));
        let admin = RequireRole::admin(tokens.clone());
        let read = RequireRole::read(tokens);
        let code = |guard: &RequireRole, value: Option<&str>| {
            guard.check(&request_with(value)).map_err(|s| s.code())
        };
        assert_eq!(code(&admin, None), Err(tonic::Code::Unauthenticated));
        assert_eq!(
            code(&admin, Some("Bearer nope")),
            Err(tonic::Code::Unauthenticated)
        );
        assert_eq!(
            code(&admin, Some("Basic abc")),
            Err(tonic::Code::Unauthenticated)
        );
        assert_eq!(
            code(&admin, Some("Bearer read-token-0123456789")),
            Err(tonic::Code::PermissionDenied)
        );
        assert_eq!(
            code(&admin, Some("Bearer admin-token-0123456789")),
            Ok(Role::Admin)
        );
        assert_eq!(
            code(&read, Some("Bearer read-token-0123456789")),
            Ok(Role::Read)
        );
        assert_eq!(
            code(&read, Some("Bearer admin-token-0123456789")),
            Ok(Role::Admin)
        );
        assert_eq!(code(&read, None), Err(tonic::Code::Unauthenticated));
        for scheme in ["bearer", "BEARER", "BeArEr"] {
            assert_eq!(
                code(&admin, Some(&format!("{scheme} admin-token-0123456789"))),
                Ok(Role::Admin),
                "{scheme}"
            );
        }
        assert_eq!(
            code(&admin, Some("Bearerxadmin-token-0123456789")),
            Err(tonic::Code::Unauthenticated)
        );
    }

    #[test]
    fn without_a_read_token_only_admin_passes() {
        let tokens = Tokens::new("admin-token-0123456789", None);
        assert_eq!(tokens.role_of(""), None);
        assert_eq!(tokens.role_of("admin-token-0123456789"), Some(Role::Admin));
    }
}
