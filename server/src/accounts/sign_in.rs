//! Signing in and out, for the JSON API and the console's form alike: the password check
//! (throttled per account and per address, the same cost for unknown and disabled accounts,
//! audited), then a new device or a renewed one; and the end of a session. Nothing here knows
//! HTTP: callers pass the client's address and turn [`SignInError`] into their own answer.

use std::sync::Arc;

use saksi_shared::time::days;
use saksi_shared::{DeviceId, Timestamp};

use super::{Username, new_device_id, new_token, token_hash};
use crate::app::AppState;
use crate::storage::{AuditAction, AuditEvent, Device, StorageError, User};

/// What a client sends to sign in.
#[derive(Clone, Copy)]
pub struct SignIn<'a> {
    pub username: &'a str,
    pub password: &'a str,
    /// The name of the new device (ignored when renewing).
    pub device_name: &'a str,
    /// The token of one of the user's devices whose session expired: that device gets a new
    /// token instead of a new device being registered.
    pub renew: Option<&'a str>,
    /// The client's address, for the throttle and the audit log.
    pub address: &'a str,
}

impl std::fmt::Debug for SignIn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn")
            .field("address", &self.address)
            .field("renew", &self.renew.is_some())
            .finish_non_exhaustive()
    }
}

/// A successful sign-in: the device and its token (shown to the client once).
pub struct SignedIn {
    pub token: String,
    pub device_id: DeviceId,
    pub user: User,
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn")
            .field("token", &"<redacted>")
            .field("device_id", &self.device_id)
            .field("user", &self.user.id)
            .finish()
    }
}

/// Why a sign-in was refused.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// The request breaks a rule (username, lengths, a missing device name).
    #[error("{0}")]
    Invalid(&'static str),
    /// Too many failures for this account or address: try again in this many seconds.
    #[error("too many attempts; try again in {0} seconds")]
    Throttled(u64),
    /// Unknown account, disabled account or wrong password: one answer for all three.
    #[error("wrong username or password")]
    WrongCredentials,
    /// The session to renew belongs to a revoked device: the phone wipes itself.
    #[error("this device has been revoked")]
    DeviceRevoked,
    /// The session to renew is not one of this user's devices.
    #[error("that session cannot be renewed; sign in without it")]
    NotRenewable,
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The password check could not run (its blocking task failed).
    #[error("the password check failed")]
    Check(#[source] tokio::task::JoinError),
}

/// Checks `request`'s username and password and registers a new device for the user, or
/// renews the expired session of `request.renew`'s device.
pub async fn sign_in(state: &Arc<AppState>, request: SignIn<'_>) -> Result<SignedIn, SignInError> {
    let SignIn {
        username,
        password,
        device_name,
        renew,
        address,
    } = request;
    let device_name = device_name.trim().to_owned();
    // The same rule as when accounts are made: no account has another name.
    Username::parse(username).map_err(SignInError::Invalid)?;
    if password.len() > 1024 || device_name.is_empty() || device_name.chars().count() > 100 {
        return Err(SignInError::Invalid(
            "username, password and a device name (at most 100 characters) are required",
        ));
    }
    let now = state.now();
    // Counted as a failure before the password is checked (one step, under the throttle's
    // lock): concurrent guesses cannot all pass a check made before any of them was counted.
    if let Err(wait) = state.throttle.begin(username, address, now) {
        tracing::warn!(address = %address, "login throttled");
        return Err(SignInError::Throttled(wait));
    }
    let user = check_password(state, username, password).await?;
    let Some(user) = user else {
        state
            .metrics
            .logins_failed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        state
            .audit(AuditEvent {
                at: now,
                username: None,
                device_id: None,
                action: AuditAction::LoginFailed,
                target: Some(username.chars().take(64).collect()),
                detail: format!("from {address}"),
            })
            .await;
        return Err(SignInError::WrongCredentials);
    };
    state.throttle.succeeded(username, address, now);
    let (token, hash) = new_token();
    let expires_at = now + days(state.config.session_days);
    let (device_id, detail) = match renew {
        Some(previous) => {
            let previous = token_hash(previous);
            let found = state.db.run(move |s| s.device_by_token(&previous)).await?;
            let device = match found {
                Some((d, u)) if u.id == user.id && d.revoked_at.is_none() => d,
                // A revoked phone learns it now, and wipes itself.
                Some((d, u)) if u.id == user.id => {
                    tracing::info!(device = %d.id, "renewal of a revoked device refused");
                    return Err(SignInError::DeviceRevoked);
                }
                _ => return Err(SignInError::NotRenewable),
            };
            let id = device.id.clone();
            state
                .db
                .run(move |s| s.renew_device(&id, &hash, expires_at))
                .await?;
            (device.id, "session renewed")
        }
        None => {
            let device_id = new_device_id();
            let (id, uid) = (device_id.clone(), user.id);
            state
                .db
                .run(move |s| s.create_device(&id, uid, &device_name, &hash, now, expires_at))
                .await?;
            (device_id, "device registered")
        }
    };
    state
        .audit(AuditEvent {
            at: now,
            username: Some(user.username.clone()),
            device_id: Some(device_id.clone()),
            action: AuditAction::Login,
            target: Some(device_id.to_string()),
            detail: detail.into(),
        })
        .await;
    tracing::info!(user = user.id, device = %device_id, "signed in");
    Ok(SignedIn {
        token,
        device_id,
        user,
        expires_at,
    })
}

/// The account if `password` is its password and it is not disabled. Checks wait their turn
/// (one per core); unknown and disabled accounts cost the same check: no timing oracle.
async fn check_password(
    state: &Arc<AppState>,
    username: &str,
    password: &str,
) -> Result<Option<User>, SignInError> {
    let name = username.to_owned();
    let found = state.db.run(move |s| s.user_by_name(&name)).await?;
    let mut turn = state.passwords.turn().await;
    let (state, password) = (state.clone(), password.to_owned());
    tokio::task::spawn_blocking(move || match &found {
        Some((user, hash)) if !user.disabled => state
            .passwords
            .verify(&mut turn, &password, hash)
            .then(|| user.clone()),
        _ => {
            state.passwords.verify_nothing(&mut turn, &password);
            None
        }
    })
    .await
    .map_err(SignInError::Check)
}

/// Ends a session: revokes `device` (of `user`), closes its sockets, writes the audit entry.
pub async fn sign_out(state: &AppState, device: &Device, user: &User) -> Result<(), StorageError> {
    let (id, now) = (device.id.clone(), state.now());
    state.db.run(move |s| s.revoke_device(&id, now)).await?;
    state.connections.close_device(&device.id, "signed out");
    state
        .audit(AuditEvent {
            at: now,
            username: Some(user.username.clone()),
            device_id: Some(device.id.clone()),
            action: AuditAction::Logout,
            target: Some(device.id.to_string()),
            detail: String::new(),
        })
        .await;
    Ok(())
}
