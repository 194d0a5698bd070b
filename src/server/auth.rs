//! Local users and sessions: argon2id password hashes in the pool database, login and logout.
//!
//! A failed login is delayed (xapi waits 5 s) and logged; the delay runs on the async
//! runtime so it never holds up other callers, and hashing runs on the blocking pool.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use serde::{Deserialize, Serialize};

use super::{now_datetime, Server, Transport};
use crate::model::classes::{SESSION, USER};
use crate::model::errors::code;
use crate::model::{ApiError, Kind, Message, Role, Value, NULL_REF};

/// What the database keeps about a local user's credential.
#[derive(Serialize, Deserialize)]
struct Credential {
    /// PHC string of an argon2id hash.
    hash: String,
}

/// Hash a password with argon2id and a random salt.
pub fn hash_password(password: &str) -> String {
    Argon2::default()
        .hash_password(password.as_bytes())
        .expect("argon2 with default parameters and an OS random salt does not fail")
        .to_string()
}

fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Create a local user with a role, or reset an existing user's password (keeping its role).
/// Returns the user's ref.
pub fn set_password(
    server: &Server,
    user: &str,
    password: &str,
    role: Role,
) -> Result<String, ApiError> {
    let json = serde_json::to_vec(&Credential {
        hash: hash_password(password),
    })
    .expect("credential serialises");
    server.db.write(|t| {
        let existing = t
            .base()
            .all(USER.name)
            .find(|(_, r)| r["short_name"].as_str() == Some(user))
            .map(|(r, _)| r.clone());
        let r = match existing {
            Some(r) => r,
            None => t.create(
                &USER,
                [
                    ("short_name", Value::str(user)),
                    ("fullname", Value::str(user)),
                    ("role", Value::str(role.name())),
                ],
            ),
        };
        t.set_credential(user, json);
        Ok(r)
    })
}

/// Put back a credential kept from an earlier database (an ejected host's root).
pub fn restore_credential(
    server: &Server,
    user: &str,
    credential: Vec<u8>,
    role: Role,
) -> Result<(), ApiError> {
    server.db.write(|t| {
        if !t
            .base()
            .all(USER.name)
            .any(|(_, r)| r["short_name"].as_str() == Some(user))
        {
            t.create(
                &USER,
                [
                    ("short_name", Value::str(user)),
                    ("fullname", Value::str(user)),
                    ("role", Value::str(role.name())),
                ],
            );
        }
        t.set_credential(user, credential);
        Ok(())
    })
}

/// Delete a local user, its credential and its sessions.
pub fn remove_user(server: &Server, user: &str, name: &str) -> Result<(), ApiError> {
    server.db.write(|t| {
        let sessions: Vec<String> = t
            .base()
            .all(SESSION.name)
            .filter(|(_, s)| s.get("this_user").and_then(Value::as_str) == Some(user))
            .map(|(r, _)| r.clone())
            .collect();
        for s in sessions {
            t.delete(&SESSION, &s)?;
        }
        t.remove_credential(name);
        t.delete(&USER, user)
    })
}

/// The role of the user behind a session. The local superuser is always pool-admin.
pub fn session_role(server: &Server, session: &str) -> Role {
    let t = server.db.read();
    let Some(s) = t.get(SESSION.name, session) else {
        return Role::ReadOnly;
    };
    if s.get("is_local_superuser") == Some(&Value::Bool(true)) {
        return Role::PoolAdmin;
    }
    let user = s
        .get("this_user")
        .and_then(Value::as_str)
        .unwrap_or_default();
    t.field(USER.name, user, "role")
        .and_then(Value::as_str)
        .and_then(Role::parse)
        .unwrap_or(Role::ReadOnly)
}

fn user_ref(server: &Server, user: &str) -> String {
    server
        .db
        .read()
        .all(USER.name)
        .find(|(_, r)| r["short_name"].as_str() == Some(user))
        .map(|(r, _)| r.clone())
        .unwrap_or_else(|| NULL_REF.to_string())
}

/// `session.login_with_password` and friends: check the password (not over the Unix socket)
/// and open a session.
pub async fn login(
    server: &std::sync::Arc<Server>,
    transport: Transport,
    user: &str,
    password: &str,
    originator: &str,
) -> Result<Value, ApiError> {
    let authenticated = match transport {
        Transport::Unix => true,
        Transport::Tcp => {
            let stored = server.db.read().credential(user).map(<[u8]>::to_vec);
            let password = password.to_string();
            match stored.and_then(|s| serde_json::from_slice::<Credential>(&s).ok()) {
                Some(cred) => {
                    tokio::task::spawn_blocking(move || verify_password(&cred.hash, &password))
                        .await
                        .unwrap_or(false)
                }
                None => false,
            }
        }
    };
    if !authenticated {
        tracing::warn!(
            user,
            "failed login; answering after {:?}",
            server.config.auth_failure_delay
        );
        tokio::time::sleep(server.config.auth_failure_delay).await;
        return Err(ApiError::new(
            code::SESSION_AUTHENTICATION_FAILED,
            [user, "Authentication failure"],
        ));
    }
    // Over the local socket the caller is root whatever name it gave, as in xapi.
    let name = if transport == Transport::Unix {
        "root"
    } else {
        user
    };
    let this_user = user_ref(server, name);
    server
        .db
        .write(|t| {
            Ok(t.create(
                &SESSION,
                [
                    ("this_host", Value::str(server.this_host.clone())),
                    ("this_user", Value::str(this_user)),
                    ("last_active", Value::DateTime(now_datetime())),
                    ("is_local_superuser", Value::Bool(name == "root")),
                    ("auth_user_name", Value::str(name)),
                    ("originator", Value::str(originator)),
                ],
            ))
        })
        .map(Value::Str)
}

/// End a session.
pub fn logout(server: &Server, session: &str) -> Result<Value, ApiError> {
    server.db.write(|t| t.delete(&SESSION, session))?;
    Ok(Value::void())
}

/// Whether the caller of a generated `session.*` call may touch the session it names: its
/// own, or any as pool-admin. A session ref is a bearer token, so reading another session
/// (by ref or by uuid) would hand its rights to whoever asked. Calls on other classes, and
/// explicit session messages (login, logout), are not concerned.
pub fn may_use_session_object(
    server: &Server,
    caller: &str,
    msg: &Message,
    args: &[Value],
) -> bool {
    if msg.class.name != SESSION.name {
        return true;
    }
    let target = match msg.kind {
        Kind::Explicit(_) => return true,
        Kind::GetByUuid => {
            let uuid = args[0].as_str().unwrap_or_default();
            match server.db.read().by_uuid(uuid) {
                Some((class, r)) if class == SESSION.name => r.to_string(),
                // No such session: the call answers UUID_INVALID, revealing nothing.
                _ => return true,
            }
        }
        _ => args
            .first()
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    };
    target == caller || session_role(server, caller) >= Role::PoolAdmin
}

/// Check that `session` is a live session.
pub fn check_session(server: &Server, session: &Value) -> Result<String, ApiError> {
    let s = session.as_str().unwrap_or_default();
    if server.db.read().get(SESSION.name, s).is_some() {
        Ok(s.to_string())
    } else {
        Err(ApiError::session_invalid(s))
    }
}
