//! Agent keys: `ak_` + 32 random bytes (base64url). Only the SHA-256 is stored; the key is
//! shown once. Authentication looks the hash up and refuses suspended agents.

use std::collections::HashMap;
use std::sync::Mutex;

use aes_gcm::aead::{OsRng, rand_core::RngCore};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

use super::actor::{AgentCtx, RequestMeta};
use crate::model::{ActorType, AgentStatus, ErrorBody};
use crate::server::audit::AuditEntry;
use crate::server::service::actor::Actor;
use crate::server::{ServiceError, ServiceResult, Services, clock, store};

/// Prefix of every agent key.
pub const KEY_PREFIX: &str = "ak_";
/// How often a suspended agent's refused calls are audited, at most.
const REJECT_AUDIT_EVERY_MS: i64 = 60_000;

/// A freshly generated key: the plaintext (shown once), its hash and display prefix.
pub struct NewKey {
    pub key: String,
    pub hash: String,
    pub prefix: String,
}

/// Generates a key.
pub fn generate() -> NewKey {
    let mut bytes = [0_u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let key = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    NewKey {
        hash: hash(&key),
        prefix: key.chars().take(10).collect(),
        key,
    }
}

/// SHA-256 hex of a presented key. The key carries 256 random bits, so no salt is needed.
pub fn hash(key: &str) -> String {
    crate::server::crypto::token_hash(key)
}

/// Remembers when a suspended agent's refusal was last audited.
#[derive(Default)]
pub struct RejectThrottle(Mutex<HashMap<String, i64>>);

impl RejectThrottle {
    fn should_audit(&self, agent_id: &str, now: i64) -> bool {
        let mut seen = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() > 10_000 {
            seen.retain(|_, t| now - *t < REJECT_AUDIT_EVERY_MS);
        }
        match seen.get(agent_id) {
            Some(last) if now - last < REJECT_AUDIT_EVERY_MS => false,
            _ => {
                seen.insert(agent_id.to_owned(), now);
                true
            }
        }
    }
}

fn unauthenticated(error: &str) -> ServiceError {
    ServiceError::Unauthenticated(ErrorBody::new(error).hint(
        "Send `Authorization: Bearer <your ak_ key>`; the key is in the AGENTKEY_API_KEY environment variable. \
         If it was rotated, ask an admin for the new one.",
    ))
}

/// Extracts the key from an `Authorization` header value.
pub fn bearer(header: Option<&str>) -> ServiceResult<&str> {
    let value = header.ok_or_else(|| unauthenticated("Missing bearer token."))?;
    let key = value
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|k| !k.is_empty());
    key.ok_or_else(|| unauthenticated("Missing bearer token."))
}

/// Authenticates a presented key. Unknown → 401; suspended → 403 (audited at most once a
/// minute per agent).
pub async fn authenticate(svc: &Services, key: &str, meta: RequestMeta) -> ServiceResult<AgentCtx> {
    if !key.starts_with(KEY_PREFIX) || key.len() > 200 {
        return Err(unauthenticated("Invalid API key."));
    }
    authenticate_hash(svc, &hash(key), meta).await
}

/// [`authenticate`] for a key already hashed.
pub async fn authenticate_hash(
    svc: &Services,
    key_hash: &str,
    meta: RequestMeta,
) -> ServiceResult<AgentCtx> {
    let key_hash = key_hash.to_owned();
    let Some(agent) = store::agents::find_agent_by_key_hash(svc.store.reader(), &key_hash).await?
    else {
        tracing::info!(
            ip = meta.ip.as_deref().unwrap_or("-"),
            "agent authentication failed: unknown key"
        );
        return Err(unauthenticated("Invalid API key."));
    };
    // The lookup was by hash; compare again in constant time so the check never depends on
    // how the index compares strings.
    if !bool::from(agent.key_hash.as_bytes().ct_eq(key_hash.as_bytes())) {
        return Err(unauthenticated("Invalid API key."));
    }
    let ctx = AgentCtx {
        org_id: agent.organization_id.clone(),
        agent_id: agent.id.clone(),
        agent_name: agent.name.clone(),
        description: agent.description.clone(),
        created_at: agent.created_at,
        key_hash,
        meta,
    };
    if agent.status != AgentStatus::Active {
        let now = clock::now_ms();
        if svc.reject_throttle.should_audit(&agent.id, now) {
            let actor = Actor {
                kind: ActorType::Agent,
                id: agent.id.clone().into(),
                label: agent.name.clone(),
            };
            let entry = AuditEntry::new(
                &agent.organization_id,
                &actor,
                &ctx.meta,
                "auth.rejected_suspended",
            )
            .target("agent", &agent.id)
            .agent(&agent.id);
            if let Err(err) = svc.audit.commit(entry, None).await {
                tracing::warn!(error = %err, "could not audit a suspended agent's refused call");
            }
        }
        return Err(ServiceError::forbidden(
            "This agent has been suspended.",
            "An admin suspended this agent; nothing can be fetched until an admin reactivates it.",
        ));
    }
    let now = clock::now_ms();
    if agent.last_used_at.is_none_or(|t| now - t > 60_000) {
        // Best effort and at most once a minute: a failure here must not fail the call.
        if let Err(err) = store::agents::touch_agent(svc.store.writer(), &agent.id, now).await {
            tracing::debug!(error = %err, "could not record last use");
        }
    }
    Ok(ctx)
}
