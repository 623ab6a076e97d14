//! Dashboard authentication plumbing: the SQL session store and sign-in rate limits. The
//! sign-in flows themselves are service functions (`service::auth`).

pub mod limiter;
pub mod session_store;

/// Session data key of the selected organization.
pub const ORG_KEY: &str = "org";
/// Session data key of the sign-in time (ms), for the absolute lifetime.
pub const SIGNED_IN_AT_KEY: &str = "at";
/// A session ends 12 hours after its last use…
pub const IDLE_SECS: i64 = 12 * 60 * 60;
/// …and 7 days after sign-in, whatever the use.
pub const ABSOLUTE_MS: i64 = 7 * 24 * 60 * 60 * 1000;

use tower_sessions::Session;

use crate::model::{MemberView, UserId};
use crate::server::service::actor::{AdminCtx, RequestMeta};
use crate::server::{ServiceError, ServiceResult, Services, clock};

/// The member behind a session, or `None` when it is anonymous, past its absolute lifetime or
/// no longer a member (the session is then emptied). Server functions and the live event
/// stream both authorize through this.
pub async fn current(
    svc: &Services,
    session: &Session,
    meta: RequestMeta,
) -> ServiceResult<Option<(AdminCtx, MemberView)>> {
    let user_id: Option<String> = session.get(session_store::USER_KEY).await.ok().flatten();
    let Some(user_id) = user_id else {
        return Ok(None);
    };
    let signed_in_at: i64 = session
        .get(SIGNED_IN_AT_KEY)
        .await
        .ok()
        .flatten()
        .unwrap_or(0);
    if clock::now_ms() - signed_in_at > ABSOLUTE_MS {
        let _ = session.flush().await;
        return Ok(None);
    }
    let org: Option<String> = session.get(ORG_KEY).await.ok().flatten();
    match crate::server::service::auth::member(svc, &UserId::new(user_id), org.as_deref(), meta)
        .await
    {
        Ok(found) => Ok(Some(found)),
        Err(ServiceError::Unauthenticated(_)) => {
            let _ = session.flush().await;
            Ok(None)
        }
        Err(err) => Err(err),
    }
}
