//! Organizations: creation sets up the data key and the audit chain in one transaction.

use secrecy::SecretString;
use serde_json::json;

use super::actor::{Actor, AdminCtx, Permission, RequestMeta};
use super::new_id;
use super::validate::{Check, limits};
use crate::model::{OrgId, Organization, Role};
use crate::server::audit::{self, AuditEntry};
use crate::server::crypto::DataKey;
use crate::server::events::EventKind;
use crate::server::store::{self, keys::DataKeyRow};
use crate::server::{ServiceError, ServiceResult, Services, clock};

/// Creates an organization with its data key, audit chain and, when given, its first owner.
pub async fn create(
    svc: &Services,
    name: &str,
    owner_email: Option<&str>,
) -> ServiceResult<Organization> {
    let ctx = AdminCtx::operator("");
    let mut tx = svc.store.begin().await?;
    let (org, dek) = create_in(svc, &mut tx, &ctx.actor, &ctx.meta, name, owner_email).await?;
    tx.commit().await?;
    svc.keys.insert(&org.id, dek);
    Ok(org)
}

/// The body of [`create`] inside the caller's transaction; the caller commits and then hands
/// the returned data key to the keyring. Returns the owner's user id too when an email was given.
pub async fn create_in(
    svc: &Services,
    tx: &mut store::Tx,
    actor: &Actor,
    meta: &RequestMeta,
    name: &str,
    owner_email: Option<&str>,
) -> ServiceResult<(Organization, DataKey)> {
    let mut check = Check::new();
    let name = check.text("name", name, limits::NAME, false);
    let email = owner_email.map(normalize_email);
    if let Some(email) = &email
        && !is_email(email)
    {
        check.fail("owner_email", "must be an email address");
    }
    check.finish("Give the organization a name of 2–120 characters.")?;

    // Another process may have rotated the master key since this one started (several
    // instances): a data key wrapped with the old key would lock the new organization out.
    if let Some(current) = store::keys::other_kek_id(&mut **tx, svc.keys.master().id()).await? {
        return Err(ServiceError::conflict(
            "the master key was rotated by another process",
            &format!(
                "Data keys now use master key {current}; restart this instance with the new key, then try again."
            ),
        ));
    }
    let now = clock::now_ms();
    let org_id = OrgId::generate();
    let dek = DataKey::generate();
    let wrapped = svc.keys.master().wrap(&org_id, &dek);

    store::orgs::insert_organization(tx, &org_id, &name, now).await?;
    store::keys::insert_data_key(
        tx,
        &DataKeyRow {
            id: dek.id().to_owned(),
            organization_id: org_id.clone(),
            kek_id: svc.keys.master().id().to_owned(),
            wrapped_key: wrapped,
        },
        now,
    )
    .await?;
    store::audit::insert_head(tx, &org_id).await?;
    let mut entries = vec![
        AuditEntry::new(&org_id, actor, meta, "organization.created")
            .target("organization", &org_id)
            .meta(json!({ "name": name })),
    ];
    if let Some(email) = &email {
        let user_id = store::orgs::upsert_user(tx, &new_id(), email, now).await?;
        store::orgs::insert_membership(tx, &new_id(), &org_id, &user_id, Role::Owner, now).await?;
        entries.push(
            AuditEntry::new(&org_id, actor, meta, "member.added")
                .target("user", &user_id)
                .meta(json!({ "email": email, "role": "owner" })),
        );
    }
    audit::append(tx, svc.store.heads(), &entries).await?;
    Ok((
        Organization {
            id: org_id.into(),
            name,
            created_at: clock::iso(now),
        },
        dek,
    ))
}

/// Lower-cased, trimmed email address.
pub fn normalize_email(text: &str) -> String {
    text.trim().to_lowercase()
}

/// A plausible single address: one `@`, text on both sides, a dot in the domain, no spaces.
pub fn is_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'))
        && !domain.contains('@')
}

/// Every organization (operator view).
pub async fn list(svc: &Services) -> ServiceResult<Vec<Organization>> {
    let rows = store::orgs::list_organizations(svc.store.reader()).await?;
    Ok(rows
        .into_iter()
        .map(|r| Organization {
            id: r.id.into(),
            name: r.name,
            created_at: clock::iso(r.created_at),
        })
        .collect())
}

/// Finds an organization by id or exact name; with none given, the only one there is.
pub async fn resolve(svc: &Services, id_or_name: Option<&str>) -> ServiceResult<Organization> {
    let orgs = list(svc).await?;
    let found = match id_or_name {
        Some(key) => orgs
            .into_iter()
            .filter(|o| o.id == key || o.name == key)
            .collect::<Vec<_>>(),
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
    RequestMeta {
        ip: None,
        user_agent: Some("agentkey-cli".into()),
    }
}

/// Parses a secret from operator input without echoing it anywhere.
pub fn secret(text: String) -> SecretString {
    SecretString::from(text)
}

/// Deletes the caller's organization (owners only, confirmed by typing its name). Its audit
/// log stays readable to the operator; agents, members, secrets and webhooks stop at once.
pub async fn delete(svc: &Services, ctx: &AdminCtx, confirm_name: &str) -> ServiceResult<()> {
    ctx.require(Permission::ManageMembers)?;
    let org = store::orgs::find_organization(svc.store.reader(), &ctx.org_id)
        .await?
        .ok_or_else(|| ServiceError::not_found("Organization not found.", "Reload the page."))?;
    if confirm_name.trim() != org.name {
        return Err(ServiceError::field(
            "name",
            "does not match the organization's name",
            "Type the organization's name exactly to confirm.",
        ));
    }
    let now = clock::now_ms();
    let mut tx = svc.store.begin().await?;
    let entry = AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "organization.deleted")
        .target("organization", &ctx.org_id)
        .meta(json!({ "name": org.name }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    store::orgs::delete_organization(&mut tx, &ctx.org_id, now).await?;
    tx.commit().await?;
    svc.keys.forget(&ctx.org_id);
    svc.vend_cache.clear();
    for kind in [
        EventKind::AgentChanged,
        EventKind::ToolChanged,
        EventKind::RequestChanged,
        EventKind::OrganizationDeleted,
    ] {
        svc.events.publish(&ctx.org_id, kind);
    }
    Ok(())
}
