//! Outgoing mail over SMTP (lettre). Without `AGENTKEY_SMTP_URL` the embedded default writes
//! the message to the server log instead, so a single-box install still lets people sign in.

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// One message: plain text plus an HTML alternative.
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// `<id@host>`; alerts set it from their outbox id so that a resent alert is the same message.
    pub message_id: Option<String>,
}

/// Where mail goes.
#[derive(Clone)]
pub enum Mailer {
    Smtp {
        transport: Box<AsyncSmtpTransport<Tokio1Executor>>,
        from: Mailbox,
    },
    /// No SMTP server configured: messages are logged (links included, by design).
    Log,
}

impl Mailer {
    /// From `smtp://host:port` (plain, for a local relay), `smtp://…?tls=required` (STARTTLS)
    /// or `smtps://user:pass@host` (implicit TLS); `None` logs instead.
    pub fn from_settings(url: Option<&str>, from: &str) -> anyhow::Result<Self> {
        let Some(url) = url else {
            return Ok(Mailer::Log);
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|err| anyhow::anyhow!("AGENTKEY_SMTP_URL is not a valid SMTP URL: {err}"))?
            .timeout(Some(std::time::Duration::from_secs(10)))
            .build();
        let from = from
            .parse()
            .map_err(|err| anyhow::anyhow!("AGENTKEY_SMTP_FROM is not a mailbox: {err}"))?;
        Ok(Mailer::Smtp {
            transport: Box::new(transport),
            from,
        })
    }

    /// True when messages really leave the process.
    pub fn is_smtp(&self) -> bool {
        matches!(self, Mailer::Smtp { .. })
    }

    /// Sends (or logs) one message.
    pub async fn send(&self, mail: Mail) -> anyhow::Result<()> {
        match self {
            Mailer::Log => {
                tracing::warn!(to = %mail.to, subject = %mail.subject, body = %mail.text, "no SMTP server configured (AGENTKEY_SMTP_URL); mail written to the log");
                Ok(())
            }
            Mailer::Smtp { transport, from } => {
                let to: Mailbox = mail
                    .to
                    .parse()
                    .map_err(|err| anyhow::anyhow!("invalid recipient: {err}"))?;
                let message = Message::builder()
                    .from(from.clone())
                    .to(to)
                    .subject(mail.subject)
                    .message_id(mail.message_id)
                    .multipart(MultiPart::alternative_plain_html(mail.text, mail.html))?;
                transport
                    .send(message)
                    .await
                    .map_err(|err| anyhow::anyhow!("SMTP delivery failed: {err}"))?;
                Ok(())
            }
        }
    }
}

/// Escapes text for an HTML mail body.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
