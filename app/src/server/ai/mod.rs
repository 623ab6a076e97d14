//! Drafting usage guides with a language model behind any OpenAI-compatible chat-completions
//! endpoint (Ollama, llama.cpp's server, vLLM, OpenAI). The endpoint is the operator's choice
//! (`AGENTKEY_AI_URL`), so unlike webhooks it may be on loopback or a private network; the
//! page a draft reads is someone's choice and goes through the guarded client instead.
//!
//! A draft streams: the text is handed on as it arrives, a model that stays silent for the
//! idle timeout is given up on, and dropping the stream (the admin cancelled or left) drops
//! the connection to the model.

mod docs;
mod prompt;
mod sse;

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use url::Url;

pub use docs::{TEXT_CAP, page_text};
pub use prompt::{AgentReason, DraftInput, Message};
use sse::{ChatStream, Piece};

/// Drafts running at once in one process; more wait for a free slot (429).
pub const MAX_DRAFTS: usize = 4;
/// No draft runs longer than this, however steadily the model writes.
pub const LONGEST: Duration = Duration::from_secs(300);
/// A draft ends at the guide's own limit.
const DRAFT_CAP: usize = crate::server::service::validate::limits::INSTRUCTIONS;
/// How much of a non-streamed answer or an error body is read.
const BODY_CAP: usize = 1 << 20;

/// Where the model is and how long it may stay silent.
#[derive(Clone)]
pub struct AiSettings {
    /// The base URL as OpenAI clients take it (`http://127.0.0.1:11434/v1`), or the full
    /// `…/chat/completions` endpoint.
    pub url: Url,
    pub model: String,
    /// Sent as `Authorization: Bearer`; never logged or shown.
    pub key: Option<SecretString>,
    /// Silence after which a draft is given up (waiting for the answer, or between chunks).
    pub idle: Duration,
}

impl std::fmt::Debug for AiSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Scheme, host and path only: a URL may carry a password or an `?api-key=`.
        let url = format!(
            "{}://{}{}",
            self.url.scheme(),
            self.url.host_str().unwrap_or(""),
            self.url.path()
        );
        f.debug_struct("AiSettings")
            .field("url", &url)
            .field("model", &self.model)
            .field("key", &self.key.as_ref().map(|_| "[redacted]"))
            .field("idle", &self.idle)
            .finish()
    }
}

/// The model client, built once per process.
#[derive(Clone)]
pub struct Drafter(Arc<Inner>);

struct Inner {
    client: reqwest::Client,
    endpoint: Url,
    model: String,
    key: Option<SecretString>,
    idle: Duration,
    slots: Arc<Semaphore>,
}

/// Text as it arrives; an `Err` is the last item and says why the draft stopped.
pub type Draft = Pin<Box<dyn Stream<Item = Result<String, String>> + Send>>;

/// Why a draft could not start.
#[derive(Debug)]
pub enum DraftError {
    /// Every slot is taken.
    Busy,
    /// The model endpoint could not be reached or answered with an error.
    Upstream(String),
}

impl Drafter {
    pub fn new(settings: AiSettings) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.idle.min(Duration::from_secs(10)))
            .no_proxy()
            .user_agent(concat!("AgentKey/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Drafter(Arc::new(Inner {
            client,
            endpoint: endpoint(&settings.url),
            model: settings.model,
            key: settings.key,
            idle: settings.idle,
            slots: Arc::new(Semaphore::new(MAX_DRAFTS)),
        })))
    }

    pub fn model(&self) -> &str {
        &self.0.model
    }

    /// Starts a draft: the request is sent and its answer's head read before this returns.
    pub async fn draft(&self, messages: &[Message]) -> Result<Draft, DraftError> {
        let permit = self
            .0
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| DraftError::Busy)?;
        let body = serde_json::json!({
            "model": self.0.model,
            "messages": messages,
            "stream": true,
            "temperature": 0.2,
        });
        let mut request = self
            .0
            .client
            .post(self.0.endpoint.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        if let Some(key) = &self.0.key {
            request = request.bearer_auth(key.expose_secret());
        }
        let response = tokio::time::timeout(self.0.idle, request.send())
            .await
            .map_err(|_| self.upstream(format!("no answer within {} s", self.0.idle.as_secs())))?
            .map_err(|e| self.upstream(transport(&e)))?;
        let status = response.status();
        if !status.is_success() {
            // Redacted before it is cut, so no part of a key is left at the cut.
            let body = self.redact(&read_text(response, 4096, self.0.idle).await);
            let excerpt: String = body.chars().take(300).collect();
            return Err(self.upstream(format!("HTTP {}: {excerpt}", status.as_u16())));
        }
        let json = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/json"));
        if json {
            // A server that ignores `stream` answers in one piece.
            let text = read_text(response, BODY_CAP, self.0.idle).await;
            let answer = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| sse::content_of(&v).map(str::to_owned))
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    self.upstream("the answer is not a chat completion with text".into())
                })?;
            let cut: String = answer.chars().take(DRAFT_CAP).collect();
            return Ok(Box::pin(futures_util::stream::iter([Ok(cut)])));
        }
        let state = Reading {
            body: Box::pin(response.bytes_stream()),
            parser: ChatStream::default(),
            queue: VecDeque::new(),
            finished: false,
            written: 0,
            idle: self.0.idle,
            deadline: Instant::now() + LONGEST,
            _slot: permit,
        };
        // What the model says in an error or a garbled line goes to the browser: never the key.
        let this = self.clone();
        Ok(Box::pin(
            futures_util::stream::unfold(state, Reading::next)
                .map(move |item| item.map_err(|why| this.redact(&why))),
        ))
    }

    fn upstream(&self, what: String) -> DraftError {
        let host = self.0.endpoint.host_str().unwrap_or("the model endpoint");
        DraftError::Upstream(format!("the model endpoint at {host} failed: {what}"))
    }

    /// An error body may echo what it was sent; the key never goes further.
    fn redact(&self, text: &str) -> String {
        match &self.0.key {
            Some(key) if !key.expose_secret().is_empty() => {
                text.replace(key.expose_secret(), "[redacted]")
            }
            _ => text.to_owned(),
        }
    }
}

/// The messages of a draft of `input`, fenced with a fresh random name.
pub fn prompt_for(input: &DraftInput) -> Vec<Message> {
    use aes_gcm::aead::{OsRng, rand_core::RngCore};
    let mut bytes = [0_u8; 12];
    OsRng.fill_bytes(&mut bytes);
    let fence: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    prompt::messages(input, &fence)
}

/// `…/chat/completions` under the base URL, unless the URL already names it.
fn endpoint(base: &Url) -> Url {
    let mut url = base.clone();
    if !url
        .path()
        .trim_end_matches('/')
        .ends_with("/chat/completions")
    {
        let path = format!("{}/chat/completions", url.path().trim_end_matches('/'));
        url.set_path(&path);
    }
    url
}

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<axum::body::Bytes>> + Send>>;

/// The state of a streamed answer being read.
struct Reading {
    body: Body,
    parser: ChatStream,
    queue: VecDeque<Result<String, String>>,
    finished: bool,
    /// Characters handed on so far.
    written: usize,
    idle: Duration,
    deadline: Instant,
    _slot: OwnedSemaphorePermit,
}

impl Reading {
    async fn next(mut self) -> Option<(Result<String, String>, Self)> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Some((item, self));
            }
            if self.finished {
                return None;
            }
            let now = Instant::now();
            let wait = self.idle.min(self.deadline.saturating_duration_since(now));
            match tokio::time::timeout(wait, self.body.next()).await {
                Err(_) if Instant::now() >= self.deadline => self.stop(format!(
                    "the draft was stopped after {} minutes",
                    LONGEST.as_secs() / 60
                )),
                Err(_) => self.stop(format!(
                    "the model sent nothing for {} s, so the draft was stopped; try again or check the model server",
                    self.idle.as_secs()
                )),
                Ok(None) => {
                    let last = self.parser.finish();
                    self.take(last.map(|p| p.into_iter().collect()));
                    if !self.finished {
                        self.finished = true;
                        if self.written == 0 {
                            self.queue
                                .push_back(Err("the model's answer ended without any text".into()));
                        }
                    }
                }
                Ok(Some(Err(e))) => {
                    self.stop(format!("the connection to the model broke: {}", transport(&e)))
                }
                Ok(Some(Ok(bytes))) => {
                    let pieces = self.parser.push(&bytes);
                    self.take(pieces);
                }
            }
        }
    }

    fn take(&mut self, pieces: Result<Vec<Piece>, String>) {
        match pieces {
            Err(e) => self.stop(e),
            Ok(pieces) => {
                for piece in pieces {
                    match piece {
                        Piece::Done => {
                            self.finished = true;
                            if self.written == 0 {
                                self.queue.push_back(Err(
                                    "the model's answer ended without any text".into(),
                                ));
                            }
                            return;
                        }
                        Piece::Text(text) => {
                            let room = DRAFT_CAP - self.written;
                            let count = text.chars().count();
                            if count > room {
                                self.queue.push_back(Ok(text.chars().take(room).collect()));
                                self.stop(format!(
                                    "the draft reached a guide's limit of {DRAFT_CAP} characters and was cut there"
                                ));
                                return;
                            }
                            self.written += count;
                            self.queue.push_back(Ok(text));
                        }
                    }
                }
            }
        }
    }

    /// Ends the draft with `why`, closing the connection now.
    fn stop(&mut self, why: String) {
        self.finished = true;
        self.body = Box::pin(futures_util::stream::empty());
        self.queue.push_back(Err(why));
    }
}

fn transport(err: &reqwest::Error) -> String {
    let what = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    crate::server::outbound::with_cause(what.to_owned(), err)
}

/// Up to `cap` bytes of a body as text, within the idle timeout.
async fn read_text(mut response: reqwest::Response, cap: usize, idle: Duration) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < cap {
        match tokio::time::timeout(idle, response.chunk()).await {
            Ok(Ok(Some(chunk))) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(cap);
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_chat_completions_under_the_base_url() {
        for (base, want) in [
            (
                "http://127.0.0.1:11434/v1",
                "http://127.0.0.1:11434/v1/chat/completions",
            ),
            (
                "https://api.openai.com/v1/",
                "https://api.openai.com/v1/chat/completions",
            ),
            (
                "http://localhost:8080/v1/chat/completions",
                "http://localhost:8080/v1/chat/completions",
            ),
            (
                "http://localhost:8080",
                "http://localhost:8080/chat/completions",
            ),
        ] {
            let url = Url::parse(base).expect("url");
            assert_eq!(endpoint(&url).as_str(), want, "{base}");
        }
    }

    #[test]
    fn settings_debug_hides_the_key() {
        let s = AiSettings {
            url: Url::parse("http://127.0.0.1:1/v1").expect("url"),
            model: "m".into(),
            key: Some(SecretString::from("sk-very-secret")),
            idle: Duration::from_secs(1),
        };
        assert!(!format!("{s:?}").contains("sk-very-secret"));
    }
}
