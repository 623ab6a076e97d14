//! Organizations: creation sets up the data key and the audit chain in one transaction.

use secrecy::SecretString;
use serde_json::json;

use super::actor::{AdminCtx, RequestMeta};
use super::validate::{Check, limits};
use super::new_id;
use crate::model::{Organization, Role};
use crate::server::audit::{self, AuditEntry};
use crate::server::crypto::DataKey;
use crate::server::store::{self, keys::DataKeyRow};
use crate::server::{Services, ServiceError, ServiceResult, clock};

/// Creates an organization with its data key, audit chain and, when given, its first owner.
pub async fn create(svc: &Services, name: &str, owner_email: Option<&str>) -> ServiceResult<Organization> {
    let mut check = Check::new();
    let name = check.text("name", name, limits::NAME, false);
    let email = owner_email.map(|e| e.trim().to_lowercase());
    if let Some(email) = &email
        && (email.len() > 254 || !email.contains('@') || email.starts_with('@') || email.ends_with('@'))
    {
        check.fail("owner_email", "must be an email address");
    }
    check.finish("Give the organization a name of 2–120 characters.")?;

    let now = clock::now_ms();
    let org_id = new_id();
    let dek = DataKey::generate();
    let wrapped = svc.keys.master().wrap(&org_id, &dek);
    let ctx = AdminCtx::operator(&org_id);

    let mut tx = svc.store.begin().await?;
    store::orgs::insert_organization(&mut tx, &org_id, &name, now).await?;
    store::keys::insert_data_key(
        &mut tx,
        &DataKeyRow {
            id: dek.id().to_owned(),
            organization_id: org_id.clone(),
            kek_id: svc.keys.master().id().to_owned(),
            wrapped_key: wrapped,
        },
        now,
    )
    .await?;
    store::audit::insert_head(&mut tx, &org_id).await?;
    let mut entries = vec![
        AuditEntry::new(&org_id, &ctx.actor, &ctx.meta, "organization.created")
            .target("organization", &org_id)
            .meta(json!({ "name": name })),
    ];
    if let Some(email) = &email {
        let user_id = store::orgs::upsert_user(&mut tx, &new_id(), email, now).await?;
        store::orgs::insert_membership(&mut tx, &new_id(), &org_id, &user_id, Role::Owner.as_str(), now).await?;
        entries.push(
            AuditEntry::new(&org_id, &ctx.actor, &ctx.meta, "member.added")
                .target("user", &user_id)
                .meta(json!({ "email": email, "role": "owner" })),
        );
    }
    audit::append(&mut tx, svc.store.heads(), &entries).await?;
    tx.commit().await?;
    svc.keys.insert(&org_id, dek);
    Ok(Organization { id: org_id, name, created_at: clock::iso(now) })
}

/// Every organization (operator view).
pub async fn list(svc: &Services) -> ServiceResult<Vec<Organization>> {
    let rows = store::orgs::list_organizations(svc.store.reader()).await?;
    Ok(rows.into_iter().map(|r| Organization { id: r.id, name: r.name, created_at: clock::iso(r.created_at) }).collect())
}

/// Finds an organization by id or exact name; with none given, the only one there is.
pub async fn resolve(svc: &Services, id_or_name: Option<&str>) -> ServiceResult<Organization> {
    let orgs = list(svc).await?;
    let found = match id_or_name {
        Some(key) => orgs.into_iter().filter(|o| o.id == key || o.name == key).collect::<Vec<_>>(),
        None => orgs,
    };
    match found.len() {
        1 => Ok(found.into_iter().next().expect("one element")),
        0 => Err(ServiceError::not_found(
            "Organization not found.",
            "Create one with `agentkey admin create-org --name <name>` or pass --org <id>.",
        )),
        _ => Err(ServiceError::conflict(
            "Several organizations match.",
            "Pass --org <id> to choose one (see `agentkey admin list-orgs`).",
        )),
    }
}

/// Placeholder meta for operator-initiated actions.
pub fn operator_meta() -> RequestMeta {
    RequestMeta { ip: None, user_agent: Some("agentkey-cli".into()) }
}

/// Parses a secret from operator input without echoing it anywhere.
pub fn secret(text: String) -> SecretString {
    SecretString::from(text)
}
